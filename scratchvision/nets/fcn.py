"""Fully convolutional networks, FCN-32s / 16s / 8s (Long, Shelhamer & Darrell, CVPR 2015).

The idea: take a classification net, turn its fully connected layers into convolutions
(``vgg.ConvClassifier``) so it outputs a coarse map of class scores, then *learn to
upsample* that map back to the input size with transposed convolutions initialised to
bilinear interpolation (``nn.init.bilinear_upsampling_``).

- FCN-32s: score pool5's head (stride 32) and upsample x32 in one step: coarse blobs.
- FCN-16s: upsample those scores x2, add scores predicted from pool4 (stride 16) by a 1x1
  conv, upsample the sum x16: the skip brings back finer "where" information.
- FCN-8s: one more skip from pool3 (stride 8), then x8. The paper's ordering
  32s < 16s < 8s in mean IoU comes from these skips.

Crop alignment. The paper pads the first conv by 100 pixels and crops each upsampled map
by an offset derived from the layer geometry. Here every conv is 'same'-padded, so cell
``i`` of a stride-s map covers input pixels ``[i s, (i+1) s)``: maps are aligned at the
top-left. An x s transposed conv with kernel 2s, stride s and padding s/2 maps n cells to
exactly ``n s`` pixels, also aligned at the top-left, so the crop offset is 0: we crop
the bottom/right overhang (``crop_like``) and, where an odd input size made a pooling
floor away the last row, replicate-pad the missing row instead.
"""
from __future__ import annotations

from scratchvision import functional as F
from scratchvision import nn
from scratchvision.nets.segmenter import Segmenter
from scratchvision.nets.vgg import ConvClassifier, VGGBackbone


def crop_like(x, height: int, width: int):
    """Crop (or replicate-pad) the bottom/right of an (N, C, H, W) map to height x width."""
    h, w = x.shape[-2:]
    if h < height or w < width:
        x = F.pad(x, (0, max(width - w, 0), 0, max(height - h, 0)), mode="replicate")
    return x[:, :, :height, :width]


def upsampler(channels: int, factor: int, learnable: bool = True) -> nn.ConvTranspose2d:
    """A x ``factor`` transposed conv (kernel 2f, stride f, padding f/2), bilinear-initialised,
    acting per channel (the paper's weights are diagonal: class c only feeds class c)."""
    up = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, padding=factor // 2,
                            groups=channels, bias=False)
    nn.init.bilinear_upsampling_(up.weight)
    up.weight.requires_grad = learnable
    return up


class FCN(Segmenter, nn.Module):
    """FCN-32s/16s/8s over a ``VGGBackbone``.

    Parameters
    ----------
    num_classes : including background
    variant : '32s', '16s' or '8s'
    widths, depths, batch_norm : the backbone's (see ``VGGBackbone``)
    head_width : channels of the convolutionalized fc6/fc7
    """

    def __init__(self, num_classes: int, variant: str = "8s", in_channels: int = 3,
                 widths=(16, 32, 64, 96, 128), depths=(2, 2, 2, 2, 2), head_width: int = 128,
                 batch_norm: bool = True, dropout: float = 0.2) -> None:
        super().__init__()
        if variant not in ("32s", "16s", "8s"):
            raise ValueError(f"FCN variant must be '32s', '16s' or '8s', got {variant!r}")
        self.variant, self.num_classes = variant, num_classes
        self.backbone = VGGBackbone(in_channels, widths, depths, batch_norm)
        self.head = ConvClassifier(widths[4], head_width, 3, dropout, batch_norm)
        self.score_fr = nn.Conv2d(head_width, num_classes, 1)
        if variant == "32s":
            self.upscore = upsampler(num_classes, 32)
        else:
            self.score_pool4 = nn.Conv2d(widths[3], num_classes, 1)
            self.upscore2 = upsampler(num_classes, 2)
            if variant == "16s":
                self.upscore = upsampler(num_classes, 16)
            else:
                self.score_pool3 = nn.Conv2d(widths[2], num_classes, 1)
                self.upscore_pool4 = upsampler(num_classes, 2)
                self.upscore = upsampler(num_classes, 8)
        # The paper zero-initialises the skip score layers so training starts from the
        # coarser net's output and the skips learn a correction.
        for name in ("score_pool4", "score_pool3"):
            if name in self._modules:
                nn.init.zeros_(self._modules[name].weight)
                nn.init.zeros_(self._modules[name].bias)

    def forward(self, x):
        height, width = x.shape[-2:]
        _, _, pool3, pool4, pool5 = self.backbone(x)
        score = self.score_fr(self.head(pool5))                       # stride 32
        if self.variant != "32s":
            p4 = self.score_pool4(pool4)                                # stride 16
            score = crop_like(self.upscore2(score), *p4.shape[-2:]) + p4
            if self.variant == "8s":
                p3 = self.score_pool3(pool3)                            # stride 8
                score = crop_like(self.upscore_pool4(score), *p3.shape[-2:]) + p3
        return crop_like(self.upscore(score), height, width)


def fcn32s(num_classes: int, **kw) -> FCN:
    return FCN(num_classes, "32s", **kw)


def fcn16s(num_classes: int, **kw) -> FCN:
    return FCN(num_classes, "16s", **kw)


def fcn8s(num_classes: int, **kw) -> FCN:
    return FCN(num_classes, "8s", **kw)
