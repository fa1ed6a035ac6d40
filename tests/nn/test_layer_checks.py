"""Layers refuse impossible arguments when they are built, naming the layer, the argument
and the value (issue 19): a ``ValueError`` for a wrong value, a ``TypeError`` for a wrong
kind of thing. Each row is one construction and the message fragment it must produce."""
from __future__ import annotations

import numpy as np
import pytest

import scratchvision as sv
from scratchvision import nn

BAD_LAYERS = [
    # (construction, exception, message fragment)
    (lambda: nn.Conv2d(3, 8, kernel_size=0), ValueError, "Conv2d: kernel_size must be >= 1"),
    (lambda: nn.Conv2d(3, 8, (3, 0)), ValueError, "Conv2d: kernel_size must be >= 1"),
    (lambda: nn.Conv2d(3, 8, 3, padding=-1), ValueError, "Conv2d: padding must be >= 0"),
    (lambda: nn.Conv2d(3, 8, 3, stride=0), ValueError, "Conv2d: stride must be >= 1, got 0"),
    (lambda: nn.Conv2d(3, 8, 3, dilation=0), ValueError, "Conv2d: dilation must be >= 1"),
    (lambda: nn.Conv2d(3, 8, 3, groups=2), ValueError, "must be divisible by groups (2)"),
    (lambda: nn.Conv2d(3, 8, 3, groups=0), ValueError, "Conv2d: groups must be >= 1, got 0"),
    (lambda: nn.Conv2d(3, 0, 3), ValueError, "Conv2d: out_channels must be >= 1, got 0"),
    (lambda: nn.Conv2d(3, 8, kernel_size=2.5), TypeError, "Conv2d: kernel_size must be an int"),
    (lambda: nn.Conv2d(3, 8, kernel_size=True), TypeError, "kernel_size must be an int"),
    (lambda: nn.Conv2d(3.0, 8, 3), TypeError, "Conv2d: in_channels must be an int, got 3.0"),
    (lambda: nn.Conv2d(3, 8, (3, 3, 3)), TypeError, "Conv2d: kernel_size must be an int or a"),
    (lambda: nn.Conv2d(3, 8, 3, stride=2, padding="same"), ValueError,
     "padding='same' is not supported for strided"),
    (lambda: nn.Conv2d(3, 8, 3, padding="full"), ValueError, "invalid padding string 'full'"),
    (lambda: nn.ConvTranspose2d(3, 8, 3, stride=2, output_padding=2), ValueError,
     "ConvTranspose2d: output_padding (2, 2) must be smaller than max(stride, dilation)"),
    (lambda: nn.ConvTranspose2d(3, 8, 3, output_padding=-1), ValueError,
     "ConvTranspose2d: output_padding must be >= 0"),
    (lambda: nn.ConvTranspose2d(3, 8, 0), ValueError, "ConvTranspose2d: kernel_size must be"),
    (lambda: nn.Conv2d(2 ** 20, 2 ** 20, 64), ValueError, "Conv2d weight needs"),
    (lambda: nn.Linear(0, 3), ValueError, "Linear: in_features must be >= 1, got 0"),
    (lambda: nn.Linear(3, -2), ValueError, "Linear: out_features must be >= 1, got -2"),
    (lambda: nn.Linear(3.5, 2), TypeError, "Linear: in_features must be an int, got 3.5"),
    (lambda: nn.BatchNorm2d(0), ValueError, "BatchNorm2d: num_features must be >= 1, got 0"),
    (lambda: nn.BatchNorm1d(2.5), TypeError, "BatchNorm1d: num_features must be an int"),
    (lambda: nn.BatchNorm2d(3, eps=0), ValueError, "BatchNorm2d: eps must be > 0.0, got 0.0"),
    (lambda: nn.BatchNorm2d(3, momentum=2), ValueError,
     "BatchNorm2d: momentum must be <= 1.0, got 2.0"),
    (lambda: nn.BatchNorm2d(3, momentum=-0.1), ValueError, "momentum must be >= 0.0"),
    (lambda: nn.GroupNorm(3, 8), ValueError, "num_channels=8 and num_groups=3"),
    (lambda: nn.GroupNorm(0, 8), ValueError, "GroupNorm: num_groups must be >= 1, got 0"),
    (lambda: nn.GroupNorm(2, 8, eps=-1e-5), ValueError, "GroupNorm: eps must be > 0.0"),
    (lambda: nn.LayerNorm(0), ValueError, "LayerNorm: normalized_shape entry must be >= 1"),
    (lambda: nn.LayerNorm(()), ValueError, "LayerNorm: normalized_shape must be a non-empty"),
    (lambda: nn.LayerNorm((3, 2.5)), TypeError, "normalized_shape entry must be an int, got 2.5"),
    (lambda: nn.LayerNorm("ab"), TypeError, "LayerNorm: normalized_shape must be an int or"),
    (lambda: nn.LayerNorm(4, eps=0.0), ValueError, "LayerNorm: eps must be > 0.0, got 0.0"),
    (lambda: nn.Dropout(1.5), ValueError, "Dropout: p (the dropout probability) must be <= 1"),
    (lambda: nn.Dropout(-0.1), ValueError, "Dropout: p (the dropout probability) must be >= 0"),
    (lambda: nn.Dropout2d(2), ValueError, "Dropout2d: p (the dropout probability) must be <="),
    (lambda: nn.Dropout("0.5"), TypeError, "Dropout: p (the dropout probability) must be a real"),
    (lambda: nn.MaxPool2d(0), ValueError, "MaxPool2d: kernel_size must be >= 1, got 0"),
    (lambda: nn.MaxPool2d(2, stride=0), ValueError, "MaxPool2d: stride must be >= 1, got 0"),
    (lambda: nn.MaxPool2d(2, padding=2), ValueError,
     "MaxPool2d: padding should be at most half of the effective kernel size, got padding=2"),
    (lambda: nn.MaxPool2d(3, dilation=0), ValueError, "MaxPool2d: dilation must be >= 1"),
    (lambda: nn.MaxPool2d(2.0), TypeError, "MaxPool2d: kernel_size must be an int or a pair"),
    (lambda: nn.AvgPool2d(0), ValueError, "AvgPool2d: kernel_size must be >= 1, got 0"),
    (lambda: nn.AvgPool2d(3, padding=2), ValueError, "AvgPool2d: padding should be at most"),
    (lambda: nn.AvgPool2d(2, divisor_override=0), ValueError,
     "AvgPool2d: divisor_override must be non-zero"),
    (lambda: nn.MaxUnpool2d(0), ValueError, "MaxUnpool2d: kernel_size must be >= 1, got 0"),
    (lambda: nn.AdaptiveAvgPool2d(0), ValueError, "AdaptiveAvgPool2d: output_size must be >= 1"),
    (lambda: nn.AdaptiveMaxPool2d((2, -1)), ValueError,
     "AdaptiveMaxPool2d: output_size must be >= 1, got -1"),
    (lambda: nn.AdaptiveAvgPool2d(2.5), TypeError, "AdaptiveAvgPool2d: output_size must be an"),
    (lambda: nn.PixelShuffle(0), ValueError, "PixelShuffle: upscale_factor must be >= 1, got 0"),
    (lambda: nn.PixelUnshuffle(1.5), TypeError, "PixelUnshuffle: downscale_factor must be an"),
    (lambda: nn.Upsample(), ValueError, "Upsample: give exactly one of size and scale_factor"),
    (lambda: nn.Upsample(size=4, scale_factor=2), ValueError, "give exactly one of size and"),
    (lambda: nn.Upsample(scale_factor=-1), ValueError, "Upsample: scale_factor must be > 0.0"),
    (lambda: nn.Upsample(scale_factor=float("inf")), ValueError, "scale_factor must be finite"),
    (lambda: nn.Upsample(size=0), ValueError, "Upsample: size must be >= 1, got 0"),
    (lambda: nn.Upsample(scale_factor=2, mode="bicubic"), ValueError,
     "Upsample: mode must be 'nearest' or 'bilinear', got 'bicubic'"),
    (lambda: nn.Upsample(scale_factor=2, align_corners=True), ValueError,
     "align_corners can only be set with the interpolating mode 'bilinear'"),
    (lambda: nn.PReLU(0), ValueError, "PReLU: num_parameters must be >= 1, got 0"),
    (lambda: nn.LeakyReLU("0.1"), TypeError, "LeakyReLU: negative_slope must be a real number"),
    (lambda: nn.Hardtanh(1.0, -1.0), ValueError, "max_val (-1.0) must be greater than min_val"),
    (lambda: nn.Softmax(dim=1.0), TypeError, "Softmax: dim must be an int, got 1.0"),
    (lambda: nn.Flatten(start_dim=0.5), TypeError, "Flatten: start_dim must be an int"),
    (lambda: nn.CrossEntropyLoss(reduction="avg"), ValueError,
     "CrossEntropyLoss: 'avg' is not a valid value for reduction"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=1.5), ValueError,
     "CrossEntropyLoss: label_smoothing must be <= 1.0"),
    (lambda: nn.MSELoss(reduction="batchmean"), ValueError,
     "MSELoss: 'batchmean' is not a valid value for reduction"),
    (lambda: nn.KLDivLoss(reduction="avg"), ValueError, "KLDivLoss: 'avg' is not a valid"),
    (lambda: nn.HuberLoss(delta=0), ValueError, "HuberLoss: delta must be > 0.0, got 0.0"),
    (lambda: nn.SmoothL1Loss(beta=-1), ValueError, "SmoothL1Loss: beta must be >= 0.0"),
    (lambda: nn.NLLLoss(ignore_index=0.5), TypeError, "NLLLoss: ignore_index must be an int"),
]


@pytest.mark.parametrize("make, exc, fragment", BAD_LAYERS,
                         ids=[f"{i}-{row[2][:40]}" for i, row in enumerate(BAD_LAYERS)])
def test_bad_layer_is_refused_at_construction(make, exc, fragment):
    with pytest.raises(exc) as info:
        make()
    assert fragment in str(info.value)


GOOD_LAYERS = [
    lambda: nn.Conv2d(4, 8, (3, 1), stride=(2, 1), padding=(1, 0), groups=2),
    lambda: nn.Conv2d(4, 8, np.int64(3), padding="same", dilation=2),
    lambda: nn.ConvTranspose2d(4, 8, 4, stride=2, padding=1, output_padding=1),
    lambda: nn.ConvTranspose2d(4, 8, 3, stride=1, dilation=2, output_padding=1),
    lambda: nn.MaxPool2d(3, stride=2, padding=1),
    lambda: nn.MaxPool2d(3, padding=2, dilation=2),   # (3-1)*2+1 = 5: half is 2
    lambda: nn.AvgPool2d(3, 1, 1, divisor_override=4),
    lambda: nn.AdaptiveAvgPool2d((None, 7)),
    lambda: nn.Upsample(scale_factor=(2, 1.5), mode="bilinear", align_corners=False),
    lambda: nn.Upsample(size=(5, 6)),
    lambda: nn.BatchNorm2d(3, momentum=None),
    lambda: nn.LayerNorm([2, 3]),
    lambda: nn.Dropout(0), lambda: nn.Dropout(1),
    lambda: nn.KLDivLoss(reduction="batchmean"),
]


@pytest.mark.parametrize("make", GOOD_LAYERS)
def test_good_layers_still_build(make):
    assert isinstance(make(), nn.Module)


def test_batch_norm_momentum_none_is_a_cumulative_average():
    """torch's ``momentum=None``: the running stats are the plain mean over the batches."""
    bn = nn.BatchNorm1d(2, momentum=None, dtype=np.float64)
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((4, 2)) for _ in range(3)]
    for b in batches:
        bn(sv.tensor(b))
    np.testing.assert_allclose(bn.running_mean.numpy(),
                               np.mean([b.mean(0) for b in batches], axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(),
                               np.mean([b.var(0, ddof=1) for b in batches], axis=0),
                               rtol=1e-12)
    torch = pytest.importorskip("torch")
    tbn = torch.nn.BatchNorm1d(2, momentum=None).double()
    for b in batches:
        tbn(torch.from_numpy(b))
    np.testing.assert_allclose(bn.running_mean.numpy(), tbn.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), tbn.running_var.numpy(), rtol=1e-12)
