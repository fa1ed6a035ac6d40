"""Deep residual networks, ResNet-18 and ResNet-50 (He, Zhang, Ren & Sun, CVPR 2016,
"Deep Residual Learning for Image Recognition", arXiv 2015), in torchvision's layout.

The idea: a stack of layers learns the *residual* ``F(x) = H(x) - x`` of the mapping it
should compute and adds the input back, ``y = relu(F(x) + x)``, so a block that has
nothing to add can learn ``F = 0``: with shortcuts the 34-layer net beats the 18-layer one,
without them it is worse (the paper's "degradation", Table 2).

The paper's Table 1 (output sizes for a 224 x 224 input), with the names used here and by
torchvision (``layer1`` is the paper's conv2_x, and so on)::

    paper    here     size     ResNet-18 (BasicBlock)      ResNet-50 (Bottleneck)
    conv1    conv1    112x112  7x7, 64, stride 2 (+ bn1, relu)
    conv2_x  maxpool  56x56    3x3 max pool, stride 2
             layer1   56x56    [3x3, 64;  3x3, 64]  x 2    [1x1, 64;  3x3, 64;  1x1, 256]  x 3
    conv3_x  layer2   28x28    [3x3, 128; 3x3, 128] x 2    [1x1, 128; 3x3, 128; 1x1, 512]  x 4
    conv4_x  layer3   14x14    [3x3, 256; 3x3, 256] x 2    [1x1, 256; 3x3, 256; 1x1, 1024] x 6
    conv5_x  layer4   7x7      [3x3, 512; 3x3, 512] x 2    [1x1, 512; 3x3, 512; 1x1, 2048] x 3
             avgpool  1x1      global average pool
             fc                1000-d fully connected (softmax in the loss)
    FLOPs                      1.8e9 multiply-adds          3.8e9 multiply-adds

- ``BasicBlock`` (ResNet-18/34): two 3x3 convs, ``expansion = 1``.
- ``Bottleneck`` (ResNet-50/101/152): 1x1 reduces to ``planes`` channels, 3x3 works at that
  width, 1x1 expands to ``4 planes`` (``expansion = 4``): the 3x3 sees 4x fewer channels.
- Every conv is followed by batch norm, and has no bias (the norm's shift replaces it).
- Shortcuts are the paper's option B: identity where the shapes agree, a projection
  ``downsample = conv1x1(stride) + bn`` where the channels or the resolution change (the
  first block of each layer; in ResNet-50 also layer1's, which goes 64 -> 256 channels).
- "v1.5" (torchvision, after fb.resnet.torch and Goyal et al. 2017): in a Bottleneck that
  downsamples, the stride 2 sits on the 3x3 conv (``conv2``), not on the first 1x1 as in
  the paper's Caffe model, where a stride-2 1x1 conv would read only one pixel in four.

Index arithmetic of the strides. A conv or pool with kernel k, stride s and padding p maps
H to ``floor((H + 2p - k) / s) + 1``, and output pixel i reads inputs ``i s - p .. i s - p
+ k - 1``, centred on input ``i s`` when ``p = (k - 1) / 2``:

- conv1 (k 7, s 2, p 3): 224 -> (224 + 6 - 7) // 2 + 1 = 112, stride 2 from the image;
- maxpool (k 3, s 2, p 1): 112 -> (112 + 2 - 3) // 2 + 1 = 56, stride 4: layer1 = C2;
- the first block of layer2..4: its 3x3 conv (k 3, s 2, p 1) and its 1x1 projection (k 1,
  s 2, p 0) both map H to ``(H - 1) // 2 + 1`` (odd sizes too: 57 -> 29), and output i of
  both is centred on input 2i, so the residual sum adds aligned pixels. Strides 8, 16, 32:
  layer2..4 = C3, C4, C5 (FPN's naming: C_k has stride 2^k).

Composing the centres (2i at each stride-2 step), cell i of C_k is centred on input pixel
``2^k i``, not ``2^k i + (2^k - 1) / 2``: torchvision's anchors likewise sit at ``i * stride``.
A 67 x 75 image gives C2..C5 of 17x19, 9x10, 5x5, 3x3.

Use as a classifier (``forward`` -> logits, as torchvision) or as a backbone
(``forward_features`` -> ``{'c2', 'c3', 'c4', 'c5'}``, with ``feature_channels`` and
``feature_strides`` for the necks and heads that consume them). ``num_classes=0`` builds
the net without ``fc``: ``forward`` then returns the pooled (N, 512 * expansion) features.
Module names equal torchvision's, so its state_dict keys load unchanged
(``nets/torchvision_weights.py``).
"""
from __future__ import annotations

from scratchvision import nn

FEATURE_STRIDES = {"c2": 4, "c3": 8, "c4": 16, "c5": 32}


def conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    """3x3 conv, padding 1 (a 'same' conv at stride 1), no bias."""
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


def conv1x1(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    """1x1 conv, no bias (a projection; at stride 2 it keeps input pixels (2i, 2j))."""
    return nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``; conv1 carries the stride."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 (reduce to ``planes``) -> 3x3 (stride here: v1.5) -> 1x1 (expand to ``4 planes``),
    each with batch norm, plus the shortcut, then ReLU."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A residual network: stem, four layers of ``block``, global pool, fc.

    Parameters
    ----------
    block : ``BasicBlock`` or ``Bottleneck``
    layers : number of blocks in layer1..layer4, e.g. (2, 2, 2, 2) for ResNet-18
    num_classes : outputs of ``fc``; 0 builds no ``fc`` (``forward`` returns pooled features)
    in_channels : image channels

    Initialisation as torchvision: convs ``kaiming_normal_(mode='fan_out', relu)``, batch
    norms weight 1 and bias 0, ``fc`` torch's default.
    """

    def __init__(self, block: type, layers, num_classes: int = 1000,
                 in_channels: int = 3) -> None:
        super().__init__()
        if len(layers) != 4 or min(layers) < 1:
            raise ValueError(f"ResNet: layers needs 4 positive block counts, got {layers!r}")
        if num_classes < 0:
            raise ValueError(f"ResNet: num_classes must be >= 0, got {num_classes}")
        self.block, self.num_classes = block, num_classes
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        if num_classes:
            self.fc = nn.Linear(512 * block.expansion, num_classes)
        self.feature_channels = {f"c{k + 2}": w * block.expansion
                                 for k, w in enumerate((64, 128, 256, 512))}
        self.feature_strides = dict(FEATURE_STRIDES)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, block: type, planes: int, blocks: int,
                    stride: int = 1) -> nn.Sequential:
        """``blocks`` blocks; the first one takes the stride and, if the shape changes, a
        conv1x1 + bn projection shortcut (``downsample.0``, ``downsample.1``)."""
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_features(self, x) -> dict:
        """The backbone's outputs: ``{'c2': layer1, 'c3': layer2, 'c4': layer3, 'c5': layer4}``
        of shapes (N, ``feature_channels[k]``, ~H / s, ~W / s), s = ``feature_strides[k]``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))      # (N, 64, H/4, W/4)
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return {"c2": c2, "c3": c3, "c4": c4, "c5": c5}

    def forward(self, x):
        """(N, C, H, W) images -> (N, num_classes) logits (pooled features if no ``fc``)."""
        x = self.avgpool(self.forward_features(x)["c5"]).flatten(1)  # (N, 512 expansion)
        return self.fc(x) if self.num_classes else x


def resnet18(num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNet-18: BasicBlocks (2, 2, 2, 2), 11.7 M parameters with the 1000-class fc."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes, **kwargs)


def resnet50(num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNet-50 (v1.5): Bottlenecks (3, 4, 6, 3), 25.6 M parameters with the 1000-class fc."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, **kwargs)
