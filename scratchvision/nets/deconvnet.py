"""DeconvNet (Noh, Hong & Han, ICCV 2015): a mirrored deconvolution network.

The encoder is a VGG-style net whose max-pooling layers remember *where* each maximum
came from (the "switches", ``return_indices=True``). The decoder mirrors it: each
unpooling layer (``max_unpool2d``) puts every value back at its switch position in a
zero map twice the size - recovering the fine location that pooling threw away - and
the following transposed convolutions ("deconvolutions") densify that sparse map. The
paper's 7x7 fc6 and 1x1 fc7 sit in the middle; here they are a 3x3 and a 1x1 conv.
"""
from __future__ import annotations

from scratchvision import functional as F
from scratchvision import nn
from scratchvision.nets.segmenter import Segmenter
from scratchvision.nets.vgg import ConvClassifier, VGGBackbone


def deconv_bn_relu(c_in: int, c_out: int, batch_norm: bool = True) -> nn.Sequential:
    layers = [nn.ConvTranspose2d(c_in, c_out, 3, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class DeconvNet(Segmenter, nn.Module):
    """Encoder with pooling switches, fc6/fc7 as convs, mirrored unpool + deconv decoder."""

    def __init__(self, num_classes: int, in_channels: int = 3, widths=(16, 32, 64, 96, 128),
                 depths=(2, 2, 2, 2, 2), head_width: int = 128, batch_norm: bool = True,
                 dropout: float = 0.2) -> None:
        super().__init__()
        self.encoder = VGGBackbone(in_channels, widths, depths, batch_norm,
                                   return_indices=True)
        self.head = ConvClassifier(widths[-1], head_width, 3, dropout, batch_norm)
        self.head_out = deconv_bn_relu(head_width, widths[-1], batch_norm)
        self.decoder = nn.ModuleList()
        # stage s of the decoder mirrors encoder stage s: it ends with width[s-1] channels
        for s in reversed(range(len(widths))):
            c_out = widths[s - 1] if s > 0 else widths[0]
            layers = [deconv_bn_relu(widths[s], widths[s], batch_norm)
                      for _ in range(depths[s] - 1)]
            layers.append(deconv_bn_relu(widths[s], c_out, batch_norm))
            self.decoder.append(nn.Sequential(*layers))
        self.classifier = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x):
        stages = self.encoder(x)                 # [(pooled, switches, size before pool)]
        h = self.head_out(self.head(stages[-1][0]))
        for deconv, (_, switches, size) in zip(self.decoder, reversed(stages)):
            h = F.max_unpool2d(h, switches, 2, 2, output_size=size)
            h = deconv(h)
        return self.classifier(h)
