"""A VGG-style backbone (Simonyan & Zisserman 2015), sized for CPU training.

Stages of 3x3 convolutions (+ batch norm, ReLU) each followed by 2x2 max pooling, so the
stage outputs ``pool1 .. pool5`` have strides 2, 4, 8, 16, 32. Width and depth are
parameters: the paper's VGG-16 is ``widths=(64, 128, 256, 512, 512), depths=(2, 2, 3, 3,
3)``; the defaults here are about 1/8 of its width so a model trains in minutes on a CPU.

"Convolutionalization" (Long et al.): VGG's classifier layers fc6/fc7 are fully connected
over a 7x7x512 map. Written as convolutions (fc6 = a 7x7 conv, fc7 = a 1x1 conv) the same
weights slide over a larger image and the classifier becomes a dense predictor: one score
vector per 32x32 input patch instead of one per image. ``ConvClassifier`` is that head,
with a configurable kernel (3 here, since a 128-pixel input gives a 4x4 pool5 map).
"""
from __future__ import annotations

from scratchvision import nn


def conv_bn_relu(c_in: int, c_out: int, kernel: int = 3, padding: int = 1, dilation: int = 1,
                 batch_norm: bool = True) -> nn.Sequential:
    """conv (no bias when a batch norm follows) -> [batch norm] -> ReLU."""
    layers = [nn.Conv2d(c_in, c_out, kernel, padding=padding, dilation=dilation,
                        bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class VGGBackbone(nn.Module):
    """Five conv stages; ``forward`` returns every stage's pooled output.

    Parameters
    ----------
    widths, depths : channels and number of 3x3 convs of each of the 5 stages
    batch_norm : add batch norm after each conv (trains far faster than the paper's VGG)
    dilations : per-stage dilation of the 3x3 convs; a stage with ``pool=False`` keeps its
        resolution (used by the dilated front end)
    pools : whether each stage ends with 2x2 max pooling
    return_indices : also return the pooling switches (DeconvNet's unpooling needs them)
    """

    def __init__(self, in_channels: int = 3, widths=(16, 32, 64, 96, 128),
                 depths=(2, 2, 2, 2, 2), batch_norm: bool = True, dilations=(1, 1, 1, 1, 1),
                 pools=(True, True, True, True, True), return_indices: bool = False) -> None:
        super().__init__()
        if not len(widths) == len(depths) == len(dilations) == len(pools):
            raise ValueError("VGGBackbone: widths, depths, dilations and pools need one entry "
                             "per stage")
        self.widths, self.pools = tuple(widths), tuple(pools)
        self.return_indices = return_indices
        self.stages = nn.ModuleList()
        c = in_channels
        for width, depth, dilation in zip(widths, depths, dilations):
            convs = [conv_bn_relu(c if i == 0 else width, width, 3, padding=dilation,
                                  dilation=dilation, batch_norm=batch_norm)
                     for i in range(depth)]
            self.stages.append(nn.Sequential(*convs))
            c = width
        self.pool = nn.MaxPool2d(2, 2, return_indices=return_indices)

    def forward(self, x):
        """Returns a list with one entry per stage: the pooled map, or (map, indices,
        pre-pool size) when ``return_indices``."""
        outs = []
        for stage, pool in zip(self.stages, self.pools):
            x = stage(x)
            if not pool:
                outs.append((x, None, x.shape[-2:]) if self.return_indices else x)
                continue
            size = x.shape[-2:]
            if self.return_indices:
                x, idx = self.pool(x)
                outs.append((x, idx, size))
            else:
                x = self.pool(x)
                outs.append(x)
        return outs


class ConvClassifier(nn.Module):
    """fc6/fc7 as convolutions: kxk conv -> ReLU -> dropout -> 1x1 conv -> ReLU -> dropout."""

    def __init__(self, c_in: int, width: int, kernel: int = 3, dropout: float = 0.5,
                 batch_norm: bool = True) -> None:
        super().__init__()
        self.fc6 = conv_bn_relu(c_in, width, kernel, padding=kernel // 2, batch_norm=batch_norm)
        self.drop6 = nn.Dropout2d(dropout)
        self.fc7 = conv_bn_relu(width, width, 1, padding=0, batch_norm=batch_norm)
        self.drop7 = nn.Dropout2d(dropout)

    def forward(self, x):
        return self.drop7(self.fc7(self.drop6(self.fc6(x))))
