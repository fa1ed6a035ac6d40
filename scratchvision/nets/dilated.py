"""Dilated convolutions for dense prediction (Yu & Koltun, ICLR 2016).

Front end: the VGG backbone with its last two pooling layers removed; to keep each
later filter's receptive field as in the pooled net, stage 4's convs are dilated by 2 and
stage 5's by 4. Output stride is 8 instead of 32, with no loss of receptive field.

Context module: 3x3 convs with dilations 1, 1, 2, 4, 8, 16 and a final 1x1, each
followed by max(., 0): the receptive field grows exponentially (3, 5, 9, 17, 33, 65 cells)
while the resolution stays. The paper's *identity initialisation* sets each 3x3 kernel to
pass its input straight through (weight[c, c, 1, 1] = 1, all else 0), so the untrained
module is the identity and training only adds context. Bilinear upsampling (x8) to the
input size ends the net.

One departure. The paper feeds the module the front end's C class-score maps. Identity
initialisation followed by max(., 0) is the identity only on non-negative inputs; on
scores it zeroes every negative logit, and a class whose score is negative at a pixel then
gets no gradient there through the module. Trained jointly from scratch (the paper trained
the front end first) that left our net stuck at a val mIoU of 0.35 on Shapes. So the module
here takes ``context_channels`` non-negative feature maps (a 1x1 conv + ReLU on fc7), where
the identity initialisation is exact, and a 1x1 classifier follows it.
"""
from __future__ import annotations

from scratchvision import functional as F
from scratchvision import nn
from scratchvision.nets.segmenter import Segmenter
from scratchvision.nets.vgg import VGGBackbone, conv_bn_relu


def identity_init_(conv: nn.Conv2d) -> nn.Conv2d:
    """weight[c, c, centre] = 1, everything else (and the bias) 0."""
    nn.init.zeros_(conv.weight)
    k = conv.weight.shape[-1] // 2
    for c in range(min(conv.weight.shape[0], conv.weight.shape[1])):
        conv.weight.data[c, c, k, k] = 1.0
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


class ContextModule(nn.Module):
    """The 'basic' context module: C channels throughout, dilations 1,1,2,4,8,16 then 1x1,
    each followed by ReLU; identity-initialised, so on non-negative input it starts as the
    identity."""

    DILATIONS = (1, 1, 2, 4, 8, 16)

    def __init__(self, channels: int, dilations=DILATIONS) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        for d in dilations:
            self.layers.append(identity_init_(nn.Conv2d(channels, channels, 3, padding=d,
                                                        dilation=d)))
        self.final = identity_init_(nn.Conv2d(channels, channels, 1))

    def forward(self, x):
        for conv in self.layers:
            x = F.relu(conv(x))
        return F.relu(self.final(x))


class DilatedNet(Segmenter, nn.Module):
    """Front end (output stride 8) + context module + bilinear upsampling."""

    def __init__(self, num_classes: int, in_channels: int = 3, widths=(16, 32, 64, 96, 128),
                 depths=(2, 2, 2, 2, 2), head_width: int = 128, batch_norm: bool = True,
                 dropout: float = 0.2, context: bool = True, context_channels: int = 32) -> None:
        super().__init__()
        self.frontend = VGGBackbone(in_channels, widths, depths, batch_norm,
                                    dilations=(1, 1, 1, 2, 4),
                                    pools=(True, True, True, False, False))
        # fc6 as a 3x3 conv dilated by 4 (the paper: 7x7 dilated by 4), fc7 as 1x1
        self.fc6 = conv_bn_relu(widths[-1], head_width, 3, padding=4, dilation=4,
                                batch_norm=batch_norm)
        self.drop = nn.Dropout2d(dropout)
        self.fc7 = conv_bn_relu(head_width, head_width, 1, padding=0, batch_norm=batch_norm)
        self.reduce = nn.Sequential(nn.Conv2d(head_width, context_channels, 1), nn.ReLU())
        self.context = ContextModule(context_channels) if context else nn.Identity()
        self.score = nn.Conv2d(context_channels, num_classes, 1)

    def forward(self, x):
        height, width = x.shape[-2:]
        h = self.frontend(x)[-1]                                         # stride 8
        features = self.reduce(self.fc7(self.drop(self.fc6(h))))        # >= 0
        scores = self.score(self.context(features))
        return F.interpolate(scores, size=(height, width), mode="bilinear", align_corners=False)
