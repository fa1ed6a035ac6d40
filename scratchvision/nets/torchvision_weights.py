"""torchvision's ImageNet weights in our nets: one documented key mapping per backbone.

``load_torchvision_state_dict(model, state_dict)`` takes a torchvision ``state_dict``, as
the dict of NumPy arrays that ``scratchvision.io.load_torch("resnet50-0676ba61.pth")``
reads without torch (Tensors, or torch's own tensors, are accepted too), renames and
reshapes its entries for ``model`` and loads them::

    import scratchvision as sv
    from scratchvision.nets import resnet50
    from scratchvision.nets.torchvision_weights import load_torchvision_state_dict
    model = resnet50()
    load_torchvision_state_dict(model, sv.io.load_torch("resnet50-0676ba61.pth"))

The mappings (our key <- torchvision key):

**ResNet** (``nets/resnet.py``, any depth): the identity. Our modules carry torchvision's
names (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer2.0.downsample.0`` / ``.1``, ``fc``),
so every key maps to itself; a ResNet built with ``num_classes=0`` has no ``fc`` and
ignores ``fc.weight`` / ``fc.bias``. A different ``num_classes`` is a shape mismatch on
``fc.weight``: to fine-tune, drop the two ``fc`` keys and pass ``strict=False``.

**VGG** (``nets/vgg.py``). torchvision's ``vgg16`` is ``features`` (one flat Sequential:
conv, ReLU per 3x3 conv and a max pool after each of the 5 stages), ``avgpool``
(AdaptiveAvgPool2d(7), the identity on the 7x7 pool5 of a 224 input) and ``classifier``
(Linear 25088 -> 4096, ReLU, Dropout, Linear 4096 -> 4096, ReLU, Dropout, Linear 4096 ->
1000). Ours is split in two modules; VGG-16 is ``VGGBackbone(**VGG16)``, its
convolutionalized fc6/fc7 ``ConvClassifier(**VGG16_HEAD)``, and each loads the part of the
state_dict that is its own::

    torchvision vgg16                          ours
    features.0   conv 3 -> 64                  VGGBackbone  stages.0.0.0
    features.2   conv 64 -> 64                              stages.0.1.0
    features.4   max pool (pool1)                           (the pool after stage 0)
    features.5, 7                                           stages.1.0.0, stages.1.1.0
    features.10, 12, 14                                     stages.2.{0,1,2}.0
    features.17, 19, 21                                     stages.3.{0,1,2}.0
    features.24, 26, 28   (pool5 = features.30)             stages.4.{0,1,2}.0
    classifier.0  Linear(512*7*7, 4096)       ConvClassifier fc6.0: 7x7 conv, weight
                                                            reshaped to (4096, 512, 7, 7)
    classifier.3  Linear(4096, 4096)                        fc7.0: 1x1 conv, weight
                                                            reshaped to (4096, 4096, 1, 1)
    classifier.6  Linear(4096, 1000)          ignored (ImageNet's scores; a detector or
                                              FCN puts its own score layer there)

The index rule: the flat ``features`` holds ``per`` layers per conv (2: conv, ReLU; 3 for
``vgg16_bn``: conv, BatchNorm, ReLU) and one pool per stage, so stage s's conv j is
``features.{sum over t < s of (depth_t * per + 1) + j * per}`` and its batch norm the index
after. The walk takes the depths from the backbone, so vgg11/13/19 (depths (1, 1, 2, 2, 2),
(2, 2, 2, 2, 2), (2, 2, 4, 4, 4)) map the same way. A ``VGGBackbone`` ignores the
``classifier.*`` keys, a ``ConvClassifier`` the ``features.*`` and ``classifier.6.*`` ones.

- The flattening ``x.flatten(1)`` of a (512, 7, 7) pool5 orders the 25088 inputs as
  (channel, row, column): reshaping fc6's weight to (4096, 512, 7, 7) is exact, and the
  conv's output at the centre (3, 3) of a 7x7 pool5 *is* the fully connected fc6 (our fc6
  pads by 3, so off-centre outputs see zeros; on a larger map it slides as in FCN).
- ``vgg16_bn``: torchvision's convs keep a bias before the batch norm, ours have none
  (``conv_bn_relu``). It is folded into the norm's running mean, ``running_mean - bias``,
  exact in eval mode (``bn(conv(x) + b)`` normalises ``conv(x) + b - mean``) and in train
  mode too (batch statistics absorb a constant shift).
- torchvision's Dropout drops activations, our ConvClassifier's Dropout2d whole channels:
  equal in eval mode; fine-tuning drops differently.

Old checkpoints (torch < 0.4.1, like the original ``resnet50-19c8e357.pth`` and
``vgg16_bn-6c64b313.pth``) have no ``num_batches_tracked``: as torch, it is set to 0.

With ``strict`` (the default) every key the model needs must be present and every key of
the state_dict must be used or ignored by the mapping; a shape mismatch always raises.
Errors raise ``TorchvisionWeightsError`` (a ``RuntimeError`` as torch's load_state_dict
raises, and a ``ValueError``) naming both keys and both shapes, before anything is copied.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from scratchvision import backend, nn
from scratchvision.autograd.tensor import Tensor
from scratchvision.nets.resnet import ResNet
from scratchvision.nets.vgg import ConvClassifier, VGGBackbone

VGG16 = {"in_channels": 3, "widths": (64, 128, 256, 512, 512), "depths": (2, 2, 3, 3, 3),
         "batch_norm": False}
"""``VGGBackbone(**VGG16)`` is torchvision's ``vgg16().features`` (``batch_norm=True``:
``vgg16_bn``)."""
VGG16_HEAD = {"c_in": 512, "width": 4096, "kernel": 7, "batch_norm": False}
"""``ConvClassifier(**VGG16_HEAD)`` takes torchvision's ``classifier.0`` and ``.3``."""


class TorchvisionWeightsError(RuntimeError, ValueError):
    """A torchvision state_dict does not fit the model (missing or unexpected keys, a shape
    mismatch, a backbone configuration torchvision has no weights for)."""


class LoadResult(NamedTuple):
    """What ``load_torchvision_state_dict`` returns, all in torchvision's key names."""

    missing_keys: list
    """keys the model needs that the state_dict lacks"""
    unexpected_keys: list
    """keys of the state_dict the mapping neither uses nor ignores"""
    ignored_keys: list
    """keys the mapping leaves out on purpose (e.g. ``classifier.6.*`` for a backbone)"""


class Source(NamedTuple):
    """Where one of our entries comes from: torchvision keys and how to combine them."""

    keys: tuple
    convert: Callable | None = None   # arrays of ``keys`` -> our array; None: the first one


def resnet_mapping(model: ResNet) -> tuple[dict, Callable]:
    """The identity: our key <- the same torchvision key; ``fc.*`` ignored without fc."""
    mapping = {k: Source((k,)) for k in _shapes(model)}
    return mapping, lambda k: not model.num_classes and k.split(".")[0] == "fc"


def vgg_features_mapping(model: VGGBackbone) -> tuple[dict, Callable]:
    """``stages.s.j.0`` (conv) / ``.1`` (batch norm) <- ``features.<i>`` (walk: module
    docstring); a vgg_bn conv bias is folded into the running mean."""
    mapping, i = {}, 0
    for s, stage in enumerate(model.stages):
        for j, layer in enumerate(stage):                  # conv_bn_relu: conv, [bn,] relu
            batch_norm = isinstance(layer[1], nn.BatchNorm2d)
            ours, conv = f"stages.{s}.{j}", f"features.{i}"
            mapping[f"{ours}.0.weight"] = Source((f"{conv}.weight",))
            if batch_norm:
                bn = f"features.{i + 1}"
                for name in ("weight", "bias", "running_var", "num_batches_tracked"):
                    mapping[f"{ours}.1.{name}"] = Source((f"{bn}.{name}",))
                mapping[f"{ours}.1.running_mean"] = Source(      # in float64: exact
                    (f"{bn}.running_mean", f"{conv}.bias"), _fold_bias)
            else:
                mapping[f"{ours}.0.bias"] = Source((f"{conv}.bias",))
            i += 3 if batch_norm else 2
        i += 1                                              # the stage's max pool
    return mapping, lambda k: k.startswith("classifier.")


def vgg_classifier_mapping(model: ConvClassifier) -> tuple[dict, Callable]:
    """``fc6.0`` <- ``classifier.0`` and ``fc7.0`` <- ``classifier.3``, Linear weights
    reshaped to the convs' (out, in, k, k)."""
    own = _shapes(model)
    mapping = {}
    for ours, theirs in (("fc6.0", "classifier.0"), ("fc7.0", "classifier.3")):
        shape = own[f"{ours}.weight"]
        mapping[f"{ours}.weight"] = Source((f"{theirs}.weight",), _reshaper(shape))
        mapping[f"{ours}.bias"] = Source((f"{theirs}.bias",))
    return mapping, lambda k: k.startswith(("features.", "classifier.6."))


MAPPINGS = ((ResNet, resnet_mapping), (VGGBackbone, vgg_features_mapping),
            (ConvClassifier, vgg_classifier_mapping))


def _shapes(model) -> dict:
    """Our state_dict's keys -> shapes (without copying the values)."""
    return {k: tuple(v.shape) for k, v in model.state_dict(keep_vars=True).items()}


def _fold_bias(mean: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """bn(conv(x) + b) = bn'(conv(x)) with running mean ``mean - b`` (float64, then cast
    once to the model's dtype)."""
    return mean.astype(np.float64) - bias


def _reshaper(shape: tuple) -> Callable:
    """A Linear (out, in) weight -> a conv's (out, c, k, k), when the sizes agree."""
    def reshape(w):
        return w.reshape(shape) if w.size == int(np.prod(shape)) else w
    return reshape


def _to_numpy(value) -> np.ndarray:
    """A NumPy array, our Tensor or a torch tensor -> a host NumPy array."""
    if isinstance(value, Tensor):
        return np.asarray(backend.to_device(value.data, "cpu"))
    if hasattr(value, "detach") and hasattr(value, "cpu"):          # a torch.Tensor
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _hint(model, key: str) -> str:
    if isinstance(model, ResNet) and key.startswith("fc."):
        return (" (for another number of classes drop the fc keys and pass strict=False, "
                "or build the ResNet with num_classes=0, which ignores them)")
    return ""


def _check_vgg(model: VGGBackbone) -> None:
    widths = VGG16["widths"]
    if model.widths != widths or len(model.stages) != 5:
        raise TorchvisionWeightsError(
            f"load_torchvision_state_dict: torchvision's VGGs have stage widths {widths}; "
            f"this VGGBackbone has {model.widths} (build it as VGGBackbone(**VGG16))")


def load_torchvision_state_dict(model, state_dict: dict, strict: bool = True) -> LoadResult:
    """Load torchvision weights into one of our nets, renaming and reshaping as documented
    in this module's docstring.

    Parameters
    ----------
    model : ``ResNet`` (``resnet18``, ``resnet50`` ...), ``VGGBackbone`` (VGG-16:
        ``VGGBackbone(**VGG16)``; ``batch_norm=True`` for ``vgg16_bn``) or
        ``ConvClassifier(**VGG16_HEAD)`` (VGG's fc6/fc7)
    state_dict : torchvision key -> NumPy array, Tensor or torch tensor
    strict : raise if a key the model needs is missing or a key is neither used nor
        ignored; without it, load what is there and report the rest

    Returns
    -------
    LoadResult(missing_keys, unexpected_keys, ignored_keys), torchvision's names

    Raises
    ------
    TorchvisionWeightsError : (RuntimeError, ValueError) shape mismatches (always), missing
        or unexpected keys (``strict``), a VGGBackbone of other widths than torchvision's
    TypeError : a model with no mapping
    """
    for cls, make_mapping in MAPPINGS:  # noqa: B007  (the match is used after the loop)
        if isinstance(model, cls):
            break
    else:
        names = ", ".join(cls.__name__ for cls, _ in MAPPINGS)
        raise TypeError(f"load_torchvision_state_dict: no torchvision mapping for a "
                        f"{type(model).__name__}; supported: {names}")
    if isinstance(model, VGGBackbone):
        _check_vgg(model)
    if not hasattr(state_dict, "keys"):
        raise TypeError(f"load_torchvision_state_dict: state_dict must be a dict of arrays, "
                        f"got {type(state_dict).__name__}")
    mapping, ignore = make_mapping(model)
    own = _shapes(model)
    unmapped = [k for k in own if k not in mapping]
    if unmapped:
        raise TorchvisionWeightsError(f"load_torchvision_state_dict: no torchvision key "
                                      f"maps onto {', '.join(unmapped)}")
    values, missing, errors = {}, {}, []                  # missing: torchvision -> our key
    for ours, src in mapping.items():
        absent = [k for k in src.keys if k not in state_dict]
        if absent:
            if ours.endswith("num_batches_tracked"):   # old checkpoints: 0, as torch
                values[ours] = np.zeros((), np.int64)
            else:
                missing.update((k, missing.get(k, ours)) for k in absent)
            continue
        arrays = [_to_numpy(state_dict[k]) for k in src.keys]
        value = src.convert(*arrays) if src.convert else arrays[0]
        if value.shape != own[ours]:
            got = " and ".join(f"{k} {a.shape}" for k, a in zip(src.keys, arrays))
            errors.append(f"size mismatch: torchvision's {got} cannot become {ours}, whose "
                          f"shape in the {type(model).__name__} is {own[ours]}"
                          + _hint(model, ours))
        values[ours] = value
    used = {k for src in mapping.values() for k in src.keys}
    ignored = [k for k in state_dict if k not in used and ignore(k)]
    unexpected = [k for k in state_dict if k not in used and not ignore(k)]
    head = []
    if strict and missing:
        head.append("missing key(s) in the state_dict: " + ", ".join(
            k if k == ours else f"{k} (for {ours})" for k, ours in missing.items()))
    if strict and unexpected:
        head.append("unexpected key(s) in the state_dict: " + ", ".join(unexpected))
    errors = head + errors
    if errors:
        raise TorchvisionWeightsError(
            f"load_torchvision_state_dict: torchvision weights do not fit this "
            f"{type(model).__name__}:" + "".join("\n\t" + e for e in errors))
    model.load_state_dict(values, strict=False)
    return LoadResult(list(missing), unexpected, ignored)
