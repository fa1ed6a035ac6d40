"""``scratchvision.nn``: Module, Parameter, layers, losses-as-modules, init, optim.

Layers live one family per module (``layers.py``: linear, activations, batch/layer/group
norm, containers; ``conv.py``, ``pooling.py`` ...) and are all re-exported here, so
``nn.Conv2d`` reads as in PyTorch.
"""
from scratchvision.nn import init, optim
from scratchvision.nn.layers import (BatchNorm1d, BatchNorm2d, Dropout, Dropout2d, ELU, Flatten,
                                     GELU, GroupNorm, Hardsigmoid, Hardswish, Hardtanh, Identity,
                                     LayerNorm, LeakyReLU, Linear, LogSigmoid, Mish, ModuleDict,
                                     ModuleList, PReLU, ReLU, ReLU6, Sequential, SiLU, Sigmoid,
                                     Softmax, Softplus, Tanh)
from scratchvision.nn.losses import (BCELoss, BCEWithLogitsLoss, CosineSimilarity,
                                     CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss,
                                     NLLLoss, PairwiseDistance, SmoothL1Loss)
from scratchvision.nn.module import Module, Parameter
from scratchvision.nn.utils import clip_grad_norm_, clip_grad_value_, load, save
from scratchvision.nn.pooling import (AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d,
                                      MaxPool2d, MaxUnpool2d, PixelShuffle, PixelUnshuffle,
                                      Upsample)
from scratchvision.nn.conv import Conv2d, ConvTranspose2d, bilinear_upsampling_
# torch.nn.SyncBatchNorm's place; it lives with the rest of data-parallel training
from scratchvision.distributed.sync_batchnorm import SyncBatchNorm  # noqa: E402
