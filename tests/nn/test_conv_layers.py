"""nn.Conv2d / nn.ConvTranspose2d (torch constructor, init and semantics) and
nn.init's bilinear_upsampling_ (FCN)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import scratchvision as sv
import scratchvision.functional as F
from scratchvision import nn
from scratchvision.nn.conv import bilinear_upsampling_
from tests.helpers import assert_close


def test_conv2d_layer_shapes_init_and_forward():
    sv.manual_seed(0)
    m = nn.Conv2d(6, 8, (3, 5), stride=2, padding=(1, 2), groups=2)
    assert m.weight.shape == (8, 3, 3, 5) and m.bias.shape == (8,)
    assert m.weight.dtype == np.float32
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    # torch default: kaiming_uniform(a=sqrt(5)) == U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    bound = 1 / math.sqrt(3 * 3 * 5)
    assert np.abs(m.weight.data).max() <= bound and np.abs(m.bias.data).max() <= bound
    assert np.abs(m.weight.data).max() > 0.8 * bound               # actually spread out
    assert abs(m.weight.data.std() - bound / math.sqrt(3)) < 0.15 * bound
    x = sv.randn(2, 6, 9, 10, requires_grad=True)
    y = m(x)
    assert y.shape == (2, 8, 5, 5)
    assert_close(y.data, F.conv2d(x, m.weight, m.bias, 2, (1, 2), 1, 2).data)
    y.sum().backward()
    assert m.weight.grad.shape == m.weight.shape
    assert_close(m.bias.grad, np.full(8, 2 * 5 * 5, np.float32))
    assert "groups=2" in repr(m) and "stride=(2, 2)" in repr(m)


def test_conv2d_layer_options():
    m = nn.Conv2d(3, 3, 3, padding="same", dilation=2, bias=False, dtype=np.float64)
    assert m.bias is None and m.weight.dtype == np.float64
    assert m(sv.randn(1, 3, 7, 7, dtype=np.float64)).shape == (1, 3, 7, 7)
    assert list(dict(m.named_parameters())) == ["weight"]
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(4, 6, 3, groups=4)
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(4, 4, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="in_channels must be >= 1, got 0"):
        nn.Conv2d(0, 4, 3)


def test_conv_transpose2d_layer():
    sv.manual_seed(1)
    m = nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1, groups=2)
    assert m.weight.shape == (4, 3, 4, 4) and m.bias.shape == (6,)
    bound = 1 / math.sqrt(3 * 4 * 4)      # torch's fan_in uses weight.shape[1] = C_out/groups
    assert np.abs(m.weight.data).max() <= bound and np.abs(m.bias.data).max() <= bound
    x = sv.randn(2, 4, 5, 5, requires_grad=True)
    y = m(x)
    assert y.shape == (2, 6, 10, 10)
    assert_close(y.data, F.conv_transpose2d(x, m.weight, m.bias, 2, 1, 0, 2).data)
    assert m(x, output_size=(11, 11)).shape == (2, 6, 11, 11)
    assert m(x, output_size=(2, 6, 10, 11)).shape == (2, 6, 10, 11)
    with pytest.raises(ValueError, match="not reachable"):
        m(x, output_size=(12, 12))
    y.sum().backward()
    assert x.grad.shape == x.shape and m.weight.grad.shape == m.weight.shape
    with pytest.raises(ValueError, match="output_padding"):
        nn.ConvTranspose2d(4, 4, 3, stride=2, output_padding=2)
    assert "output_padding" in repr(nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=1))


def test_bilinear_upsampling_kernel_values():
    # k = 4 (factor 2): triangle 1 - |t - 1.5| / 2 = [0.25, 0.75, 0.75, 0.25]
    w = bilinear_upsampling_(np.zeros((3, 3, 4, 4)))
    tri = np.array([0.25, 0.75, 0.75, 0.25])
    assert_close(w[1, 1], np.outer(tri, tri))
    assert not w[0, 1].any() and not w[2, 0].any()          # channels do not mix
    # k = 3 (factor 2, odd): centre 1: [0.5, 1, 0.5]
    w = bilinear_upsampling_(np.zeros((2, 1, 3, 3)))
    assert_close(w[0, 0], np.outer([0.5, 1, 0.5], [0.5, 1, 0.5]))
    with pytest.raises(ValueError, match="weight must be"):
        bilinear_upsampling_(np.zeros((3, 2, 4, 4)))


def test_bilinear_upsampling_interpolates_a_ramp():
    # FCN's x2 layer (k=4, s=2, p=1) on a linear ramp reproduces bilinear interpolation with
    # half-pixel centres: output pixel r sits at input coordinate (r + 0.5)/2 - 0.5
    m = nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1, bias=False, dtype=np.float64)
    bilinear_upsampling_(m.weight)
    ramp = np.add.outer(np.arange(6.0), 10 * np.arange(5.0))            # x[i, j] = i + 10 j
    y = m(sv.tensor(np.stack([ramp, -ramp])[None])).data[0]
    r = (np.arange(12) + 0.5) / 2 - 0.5
    c = (np.arange(10) + 0.5) / 2 - 0.5
    expected = np.add.outer(r, 10 * c)
    assert_close(y[0, 1:-1, 1:-1], expected[1:-1, 1:-1])                 # interior
    assert_close(y[1, 1:-1, 1:-1], -expected[1:-1, 1:-1])
    # the same on a depthwise (groups=C) layer, through a Parameter
    d = nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1, groups=2, bias=False,
                           dtype=np.float64)
    assert bilinear_upsampling_(d.weight) is d.weight
    assert_close(d(sv.tensor(np.stack([ramp, -ramp])[None])).data[0], y)
