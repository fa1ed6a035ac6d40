"""``scratchvision.functional`` (imported as ``F``): differentiable ops on Tensors.

Names, signatures, defaults and semantics follow ``torch.nn.functional``. The ops are
grouped one family per module (activations, losses, normalisation, convolution, pooling,
interpolation); each module registers its gradient checks at the bottom.
"""
from scratchvision.functional.activation import (dropout, dropout2d, leaky_relu, log_softmax,
                                                 relu, sigmoid, softmax, tanh)
from scratchvision.functional.linear import linear, pad
from scratchvision.functional.loss import (binary_cross_entropy_with_logits, cross_entropy,
                                           l1_loss, mse_loss, nll_loss, smooth_l1_loss)
from scratchvision.functional.normalization import batch_norm
from scratchvision.functional.pooling import (adaptive_avg_pool2d, avg_pool2d, max_pool2d,
                                              max_unpool2d)
from scratchvision.functional.interpolate import interpolate
from scratchvision.functional.conv import conv2d, conv_transpose2d
