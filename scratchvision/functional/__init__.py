"""``scratchvision.functional`` (imported as ``F``): differentiable ops on Tensors.

Names, signatures, defaults and semantics follow ``torch.nn.functional``. The ops are
grouped one family per module (activations, losses and distances, normalisation,
convolution, unfold/fold, pooling, pixel_shuffle, interpolation, sparse: one_hot); each
module registers its gradient checks at the bottom.
"""
from scratchvision.functional.activation import (dropout, dropout2d, elu, gelu, hardsigmoid,
                                                 hardswish, hardtanh, leaky_relu, log_softmax,
                                                 logsigmoid, mish, prelu, relu, relu6,
                                                 sigmoid, silu, softmax, softplus, tanh)
from scratchvision.functional.linear import linear, pad
from scratchvision.functional.loss import (binary_cross_entropy,
                                           binary_cross_entropy_with_logits, cosine_similarity,
                                           cross_entropy, huber_loss, kl_div, l1_loss,
                                           mse_loss, nll_loss, pairwise_distance,
                                           smooth_l1_loss)
from scratchvision.functional.normalization import batch_norm, group_norm, layer_norm, normalize
from scratchvision.functional.sparse import one_hot
from scratchvision.functional.pooling import (adaptive_avg_pool2d, adaptive_max_pool2d,
                                              avg_pool2d, max_pool2d, max_unpool2d)
from scratchvision.functional.pixel_shuffle import pixel_shuffle, pixel_unshuffle
from scratchvision.functional.interpolate import interpolate
from scratchvision.functional.conv import conv2d, conv_transpose2d
from scratchvision.functional.fold import fold, unfold
