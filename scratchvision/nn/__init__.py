"""``scratchvision.nn``: Module, Parameter, layers, losses-as-modules, init, optim.

Layers live one family per module (``layers.py``: linear, activations, batch norm,
containers; ``conv.py``, ``pooling.py`` ...) and are all re-exported here, so
``nn.Conv2d`` reads as in PyTorch.
"""
from scratchvision.nn import init, optim
from scratchvision.nn.layers import (BatchNorm1d, BatchNorm2d, Dropout, Dropout2d, Flatten,
                                     Identity, LeakyReLU, Linear, ModuleList, ReLU, Sequential,
                                     Sigmoid, Softmax, Tanh)
from scratchvision.nn.losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, SmoothL1Loss
from scratchvision.nn.module import Module, Parameter
from scratchvision.nn.utils import clip_grad_norm_, load, save
from scratchvision.nn.pooling import (AdaptiveAvgPool2d, AvgPool2d, MaxPool2d, MaxUnpool2d,
                                      Upsample)
from scratchvision.nn.conv import Conv2d, ConvTranspose2d, bilinear_upsampling_
