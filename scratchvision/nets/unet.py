"""U-Net (Ronneberger, Fischer & Brox, MICCAI 2015).

A contracting path (two 3x3 convs + 2x2 max pooling per level, channels doubling) and
an expanding path that mirrors it: each level upsamples with a 2x2 transposed conv
("up-convolution", halving channels), *concatenates* the contracting path's map of the
same level (the skip connection that carries fine detail), and applies two 3x3 convs.
A 1x1 conv gives the class scores.

``padding='same'`` (default) pads every conv, so the output has the input's size (for
inputs divisible by 2**depth; other sizes are handled by cropping/padding the skip).
``padding='valid'`` is the paper's original: unpadded convs shrink each map by 2 pixels
per conv, the skip map is centre-cropped to the upsampled map's size before
concatenation, and the output is smaller than the input (572 -> 388 in the paper);
``output_size(h, w)`` tells by how much, and ``loss`` (``segmenter.Segmenter``) crops the
target to match.
"""
from __future__ import annotations

import scratchvision as sv
from scratchvision import nn
from scratchvision.nets.fcn import crop_like
from scratchvision.nets.segmenter import Segmenter, center_crop


def double_conv(c_in: int, c_out: int, padding: int, batch_norm: bool) -> nn.Sequential:
    layers = []
    for c in (c_in, c_out):
        layers.append(nn.Conv2d(c, c_out, 3, padding=padding, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class UNet(Segmenter, nn.Module):
    """U-Net with ``depth`` poolings and ``base`` channels at the first level."""

    def __init__(self, num_classes: int, in_channels: int = 3, base: int = 16, depth: int = 4,
                 padding: str = "same", batch_norm: bool = True) -> None:
        super().__init__()
        if padding not in ("same", "valid"):
            raise ValueError(f"UNet padding must be 'same' or 'valid', got {padding!r}")
        self.padding, self.depth = padding, depth
        pad = 1 if padding == "same" else 0
        widths = [base * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList([double_conv(in_channels if i == 0 else widths[i - 1],
                                               widths[i], pad, batch_norm)
                                   for i in range(depth + 1)])
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                 for i in reversed(range(depth))])
        self.up_convs = nn.ModuleList([double_conv(2 * widths[i], widths[i], pad, batch_norm)
                                       for i in reversed(range(depth))])
        self.classifier = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < self.depth:
                skips.append(x)
                x = self.pool(x)
        for up, block, skip in zip(self.up, self.up_convs, reversed(skips)):
            x = up(x)
            if self.padding == "valid":
                skip = center_crop(skip, *x.shape[-2:])
            else:  # odd sizes: the pooled path lost a row; match the skip's size
                x = crop_like(x, *skip.shape[-2:])
            x = block(sv.cat([skip, x], dim=1))
        return self.classifier(x)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Spatial size of the output for an input of height x width."""
        if self.padding == "same":
            return height, width
        h, w = height, width
        for i in range(self.depth + 1):
            h, w = h - 4, w - 4
            if i < self.depth:
                h, w = h // 2, w // 2
        for _ in range(self.depth):
            h, w = 2 * h - 4, 2 * w - 4
        return h, w
