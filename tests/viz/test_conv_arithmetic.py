"""Conv-arithmetic diagrams: the highlighted cells (read off the conv kernels) against
hand-worked cases and the textbook index formula, the two views of a transposed conv
agreeing, the PNG itself, and bad arguments."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from scratchvision.viz.conv_arithmetic import INPUT, ZERO, conv_arithmetic, conv_arithmetic_maps


def _cells(mask):
    return sorted((int(i), int(j)) for i, j in zip(*np.nonzero(mask)))


def test_conv_hand_worked():
    # 5x5, k3 s2 p1: output (1, 1) starts at padded row 1*2 = 2, i.e. input row 2 - 1 = 1,
    # and covers input rows/cols 1..3
    m = conv_arithmetic_maps("conv", 5, 3, 2, 1, out_cell=(1, 1))
    assert m.out_size == (3, 3)
    assert _cells(m.feeds) == [(i, j) for i in (1, 2, 3) for j in (1, 2, 3)]
    # output (0, 0) covers padded rows 0..2 = input rows -1..1: only rows/cols 0, 1 are real
    m = conv_arithmetic_maps("conv", 5, 3, 2, 1, out_cell=(0, 0))
    assert _cells(m.feeds) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert _cells(m.taps) == [(i, j) for i in (0, 1, 2) for j in (0, 1, 2)]
    assert m.grid.shape == (7, 7) and (m.grid[1:6, 1:6] == INPUT).all() and m.grid[0, 0] == 0


def test_dilated_hand_worked():
    # k3 dilation 2: taps 0, 2, 4 in each direction
    m = conv_arithmetic_maps("conv", 7, 3, 1, 0, 2, out_cell=(0, 0))
    assert m.out_size == (3, 3)
    assert _cells(m.feeds) == [(i, j) for i in (0, 2, 4) for j in (0, 2, 4)]


def test_transposed_hand_worked():
    # in 3, k3 s2 p1 output_padding 1: out = (3-1)*2 - 2 + 2 + 1 + 1 = 6. Input i writes
    # output rows i*2 - 1 + j (j = 0..2): output row 2 comes from i = 1 (j = 1); output
    # column 3 from i = 1 (j = 2) and i = 2 (j = 0)
    m = conv_arithmetic_maps("transposed", 3, 3, 2, 1, 1, 1, out_cell=(2, 3))
    assert m.out_size == (6, 6)
    assert _cells(m.feeds) == [(1, 1), (1, 2)]
    # the equivalent direct conv: zeros between inputs, padding d(k-1) - p = 1, +1 bottom
    assert m.grid.shape == (8, 8)
    assert list(m.grid_of_input[0]) == [1, 3, 5]
    assert m.grid[2, 1] == ZERO and m.grid[1, 1] == INPUT and m.grid[7, 7] == 0


@given(st.sampled_from(["conv", "transposed"]), st.integers(1, 6), st.integers(1, 4),
       st.integers(1, 3), st.integers(0, 3), st.integers(1, 3), st.integers(0, 2),
       st.integers(0, 50), st.integers(0, 50))
def test_feeds_match_index_formula_and_taps(kind, n, k, s, p, d, op, ci, cj):
    if kind == "conv":
        op = 0
        assume(n + 2 * p - d * (k - 1) - 1 >= 0)
    else:
        assume(op < max(s, d))
        assume((n - 1) * s - 2 * p + d * (k - 1) + op + 1 >= 1)
    try:
        out = conv_arithmetic_maps(kind, n, k, s, p, d, op).out_size
    except ValueError:
        return                               # geometry the conv kernels reject
    cell = (ci % out[0], cj % out[1])
    m = conv_arithmetic_maps(kind, n, k, s, p, d, op, out_cell=cell)
    # textbook formula: conv output o reads input o*s - p + j*d; transposed output o
    # receives input i when o = i*s - p + j*d, for j in 0..k-1
    if kind == "conv":
        rows = {cell[0] * s - p + j * d for j in range(k)} & set(range(n))
        cols = {cell[1] * s - p + j * d for j in range(k)} & set(range(n))
    else:
        rows = {i for i in range(n) for j in range(k) if i * s - p + j * d == cell[0]}
        cols = {i for i in range(n) for j in range(k) if i * s - p + j * d == cell[1]}
    assert _cells(m.feeds) == sorted((r, c) for r in rows for c in cols)
    # the drawn taps cover exactly the fed input cells (both read off the kernels)
    if m.taps is not None:
        r, c = m.grid_of_input
        assert np.array_equal(m.taps[np.ix_(r, c)], m.feeds)


def test_png_is_written(tmp_path):
    mpimg = pytest.importorskip("matplotlib.image")
    path = tmp_path / "strided.png"
    fig = conv_arithmetic("transposed", 3, 3, 2, 0, out_cell=(2, 3), path=path)
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 200
    # the dark "feeds" blue (#08519c) is in the picture
    rgb = (img[..., :3] * 255).round().astype(int)
    assert ((np.abs(rgb - [8, 81, 156]).sum(-1)) < 6).any()
    assert "transposed convolution" in fig._suptitle.get_text()


@pytest.mark.parametrize("args, kwargs, match", [
    (("deconv", 5, 3), {}, "kind must be 'conv' or 'transposed'"),
    (("conv", 5, 3), dict(out_cell=(3, 0)), r"out_cell \(3, 0\) is outside"),
    (("conv", 5, 3), dict(output_padding=1), "output_padding applies to kind='transposed'"),
    (("conv", 5, 0), {}, "kernel must be >= 1"),
    (("conv", 2, 3), {}, "larger than the padded input"),     # message of kernels.conv
])
def test_bad_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        conv_arithmetic_maps(*args, **kwargs)
