"""Conv-arithmetic diagrams: which input cells feed one output cell of a (transposed)
convolution, drawn in the style of Dumoulin & Visin, "A guide to convolution arithmetic
for deep learning" (2016): the input grid (blue) with its padding (white, dashed), the
output grid (cyan), the chosen output cell and the input cells it reads (dark), and the
kernel's taps outlined in red on the input side.

Nothing here re-derives the index arithmetic by hand: the cells are read off the conv
kernels themselves (``scratchvision.kernels.conv``, reference version). A one-hot output
gradient pushed back through the input-gradient kernel with an all-ones weight is nonzero
exactly at the inputs that output reads:

* ``conv``: ``conv2d_backward_input(onehot(out_cell), ones, x_shape, ...)``; the taps on
  the padded grid come from the same call on the padded input with ``padding=0``.
* ``transposed``: ``conv_transpose2d_backward_input(onehot(out_cell), ones, x_shape, ...)``.
  The drawn grid is the transposed conv's *equivalent direct convolution*: the input with
  ``stride - 1`` zeros inserted between cells (white, dotted), ``q = dilation*(k-1) -
  padding`` cells of zero padding around it (plus ``output_padding`` on the bottom/right),
  convolved with stride 1. Its taps come from ``conv2d_backward_input`` on that grid, and the
  tests check that the real input cells under those taps are exactly the cells found above.

Sizes: ``conv``: ``out = (in + 2p - d(k-1) - 1) // s + 1``; ``transposed``:
``out = (in - 1)s - 2p + d(k-1) + output_padding + 1``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scratchvision.kernels import conv as K
from scratchvision.validation import pair

__all__ = ["ConvDiagram", "conv_arithmetic", "conv_arithmetic_maps"]

# cell kinds of the drawn input-side grid
PAD, INPUT, ZERO = 0, 1, 2
_COLORS = dict(pad="#ffffff", zero="#e8e8e8", input="#9ecae1", feed="#08519c", out="#c7e9e9",
               out_sel="#016c59", tap="#d62728", edge="#555555")


@dataclass
class ConvDiagram:
    """Everything a diagram shows, as arrays (useful on its own, e.g. in tests)."""
    kind: str
    in_size: tuple[int, int]
    out_size: tuple[int, int]
    out_cell: tuple[int, int]
    feeds: np.ndarray        # (in_h, in_w) bool: input cells read by out_cell
    grid: np.ndarray         # (gh, gw) int: PAD / INPUT / ZERO, the drawn input-side grid
    grid_of_input: tuple[np.ndarray, np.ndarray]   # row / col of input i in the grid
    taps: np.ndarray | None  # (gh, gw) bool: kernel taps of out_cell on the grid (or None)
    params: dict


def _onehot(out_size, cell):
    gy = np.zeros((1, 1) + tuple(out_size))
    gy[0, 0, cell[0], cell[1]] = 1.0
    return gy


def conv_arithmetic_maps(kind: str, in_size, kernel, stride=1, padding=0, dilation=1,
                         output_padding=0, out_cell=None) -> ConvDiagram:
    """Compute (without drawing) what ``conv_arithmetic`` draws; see the module docstring."""
    if kind not in ("conv", "transposed"):
        raise ValueError(f"kind must be 'conv' or 'transposed', got {kind!r}")
    hw, k = pair(in_size, "in_size", minimum=1), pair(kernel, "kernel", minimum=1)
    s, p = pair(stride, "stride", minimum=1), pair(padding, "padding", minimum=0)
    d = pair(dilation, "dilation", minimum=1)
    op = pair(output_padding, "output_padding", minimum=0)
    ones = np.ones((1, 1) + k)
    x_shape = (1, 1) + hw
    params = dict(kernel=k, stride=s, padding=p, dilation=d, output_padding=op)
    if kind == "conv":
        if op != (0, 0):
            raise ValueError("output_padding applies to kind='transposed' only")
        out = tuple(K.conv2d_output_shape(x_shape, ones.shape, s, p, d, 1)[2:])
    else:
        out = tuple(K.conv_transpose2d_output_shape(x_shape, ones.shape, s, p, op, 1, d)[2:])
    if min(out) < 1:
        raise ValueError(f"{kind} of input {hw} with {params} has an empty output {out}")
    cell = (0, 0) if out_cell is None else pair(out_cell, "out_cell", minimum=0)
    if cell[0] >= out[0] or cell[1] >= out[1]:
        raise ValueError(f"out_cell {cell} is outside the output of size {out}")
    gy = _onehot(out, cell)

    if kind == "conv":
        # inputs read by out_cell: the input gradient of a one-hot output gradient
        feeds = K.conv2d_backward_input(gy, ones, x_shape, s, p, d, 1, impl="reference")
        # taps on the padded grid: the same conv on the explicitly padded input, padding 0
        g_shape = (hw[0] + 2 * p[0], hw[1] + 2 * p[1])
        taps = K.conv2d_backward_input(gy, ones, (1, 1) + g_shape, s, 0, d, 1,
                                       impl="reference")[0, 0] != 0
        rows, cols = np.arange(hw[0]) + p[0], np.arange(hw[1]) + p[1]
    else:
        feeds = K.conv_transpose2d_backward_input(gy, ones, x_shape, s, p, op, 1, d,
                                                  impl="reference")
        q = tuple(d[i] * (k[i] - 1) - p[i] for i in range(2))   # equivalent conv's padding
        if min(q) >= 0:
            g_shape = tuple((hw[i] - 1) * s[i] + 1 + 2 * q[i] + op[i] for i in range(2))
            taps = K.conv2d_backward_input(gy, ones, (1, 1) + g_shape, 1, 0, d, 1,
                                           impl="reference")[0, 0] != 0
            rows, cols = np.arange(hw[0]) * s[0] + q[0], np.arange(hw[1]) * s[1] + q[1]
        else:   # padding > d(k-1): the equivalent conv would crop; draw the plain input
            g_shape, taps = hw, None
            rows, cols = np.arange(hw[0]), np.arange(hw[1])
    grid = np.full(g_shape, PAD, np.int8)
    if kind == "transposed" and taps is not None:
        r0, c0 = rows[0], cols[0]
        grid[r0:rows[-1] + 1, c0:cols[-1] + 1] = ZERO         # between the inserted cells
    grid[np.ix_(rows, cols)] = INPUT
    return ConvDiagram(kind, hw, out, cell, feeds[0, 0] != 0, grid, (rows, cols), taps, params)


def _draw_grid(ax, colors, styles, taps=None, title=""):
    from matplotlib.patches import Rectangle  # noqa: PLC0415
    h, w = len(colors), len(colors[0])
    for i in range(h):
        for j in range(w):
            ax.add_patch(Rectangle((j, i), 1, 1, facecolor=colors[i][j],
                                   edgecolor=_COLORS["edge"], linestyle=styles[i][j],
                                   linewidth=0.8))
    if taps is not None:
        for i, j in zip(*np.nonzero(taps)):
            ax.add_patch(Rectangle((j + 0.08, i + 0.08), 0.84, 0.84, fill=False,
                                   edgecolor=_COLORS["tap"], linewidth=2.0))
    ax.set_xlim(-0.2, w + 0.2)
    ax.set_ylim(h + 0.2, -0.2)          # row 0 at the top, like an image
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=9)


def conv_arithmetic(kind: str, in_size, kernel, stride=1, padding=0, dilation=1,
                    output_padding=0, out_cell=None, path=None):
    """Draw one conv-arithmetic diagram; return the matplotlib Figure (saved as PNG if
    ``path`` is given).

    Parameters
    ----------
    kind : 'conv' or 'transposed' (``conv_transpose2d``).
    in_size, kernel, stride, padding, dilation, output_padding : int or (h, w), with
        torch's meaning (``output_padding`` for 'transposed' only).
    out_cell : (row, col) of the output cell to explain; default (0, 0).
    path : where to write the PNG (optional).

    Left: the input side. For 'conv' the padded input (padding dashed white, input blue);
    for 'transposed' the equivalent direct convolution's grid (input cells blue, inserted
    zeros dotted white, padding dashed white). Dark blue: the input cells that feed
    ``out_cell``; red outlines: the kernel's taps. Right: the output, ``out_cell`` dark.
    """
    import matplotlib  # noqa: PLC0415
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415
    del matplotlib
    m = conv_arithmetic_maps(kind, in_size, kernel, stride, padding, dilation, output_padding,
                             out_cell)
    gh, gw = m.grid.shape
    colors = [[_COLORS["pad"]] * gw for _ in range(gh)]
    styles = [["--"] * gw for _ in range(gh)]
    for i in range(gh):
        for j in range(gw):
            if m.grid[i, j] == ZERO:
                colors[i][j], styles[i][j] = _COLORS["zero"], ":"
    rows, cols = m.grid_of_input
    for a, i in enumerate(rows):
        for b, j in enumerate(cols):
            colors[i][j] = _COLORS["feed"] if m.feeds[a, b] else _COLORS["input"]
            styles[i][j] = "-"
    oh, ow = m.out_size
    out_colors = [[_COLORS["out_sel"] if (i, j) == m.out_cell else _COLORS["out"]
                   for j in range(ow)] for i in range(oh)]
    out_styles = [["-"] * ow for _ in range(oh)]

    scale = 0.42
    fig = Figure(figsize=(max(4.0, scale * (gw + ow) + 1.6), max(2.6, scale * max(gh, oh) + 1.5)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, gridspec_kw=dict(width_ratios=[max(gw, 1), max(ow, 1)]))
    p = m.params
    fmt = (lambda v: str(v[0]) if v[0] == v[1] else f"{v[0]}x{v[1]}")
    left = (f"input {m.in_size[0]}x{m.in_size[1]}"
            + (f", padding {fmt(p['padding'])}" if kind == "conv" and max(p["padding"]) else "")
            + (" as zero-inserted, padded grid" if kind == "transposed" and m.taps is not None
               else ""))
    _draw_grid(axes[0], colors, styles, m.taps, left)
    _draw_grid(axes[1], out_colors, out_styles, None,
               f"output {oh}x{ow}, cell {tuple(int(c) for c in m.out_cell)}")
    name = "convolution" if kind == "conv" else "transposed convolution"
    desc = (f"{name}: kernel {fmt(p['kernel'])}, stride {fmt(p['stride'])}, "
            f"padding {fmt(p['padding'])}, dilation {fmt(p['dilation'])}"
            + (f", output_padding {fmt(p['output_padding'])}" if kind == "transposed" else ""))
    fig.suptitle(desc, fontsize=9)
    legend = ("blue: input · dark blue: inputs read by the dark output cell · red: kernel taps"
              " · white dashed: padding" + (" · grey dotted: inserted zeros"
                                            if (m.grid == ZERO).any() else ""))
    fig.text(0.5, 0.015, legend, ha="center", va="bottom", fontsize=6.5, color="#444444")
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
