"""torchvision weights in our ResNet-18/50 and VGG-16 (``nets/torchvision_weights.py``).

torchvision is not a dependency (and too big for CI): below is a faithful re-implementation
of its ``resnet18``, ``resnet50``, ``vgg16`` and ``vgg16_bn`` modules (torchvision/models/
resnet.py and vgg.py, v0.13+, without the options those constructors do not use), with the
same module names and hence exactly torchvision's state_dict keys (counted below); where
torchvision is importable the real modules are used instead. Randomly initialised, with
random batch-norm affines and running statistics and random biases, in eval mode: our nets
given the same weights and input give the same outputs, logits and intermediate maps.
"""
import copy
from contextlib import contextmanager

import numpy as np
import pytest

import scratchvision as sv
from scratchvision.nets import resnet18, resnet50
from scratchvision.nets.resnet import BasicBlock, ResNet
from scratchvision.nets.torchvision_weights import (
    VGG16,
    VGG16_HEAD,
    LoadResult,
    TorchvisionWeightsError,
    load_torchvision_state_dict,
)
from scratchvision.nets.vgg import ConvClassifier, VGGBackbone

torch = pytest.importorskip("torch")
tnn = torch.nn
pytestmark = pytest.mark.peers

try:
    import torchvision.models as tvm
except ImportError:
    tvm = None

# len(state_dict()), num_batches_tracked included (one per BatchNorm2d):
# resnet18: stem 1 conv + 1 bn (5 entries) = 6; 8 BasicBlocks of 2 convs + 2 bns = 12 each;
#   3 downsamples (layer2..4) of conv + bn = 6 each; fc 2  ->  6 + 96 + 18 + 2 = 122
# resnet50: stem 6; 16 Bottlenecks of 3 convs + 3 bns = 18 each; 4 downsamples (layer1 too,
#   64 -> 256 channels) = 6 each; fc 2  ->  6 + 288 + 24 + 2 = 320
# vgg16: 13 convs (weight, bias) + 3 Linear (weight, bias) = 32
# vgg16_bn: 13 convs + 13 bns (5 each) + 3 Linear = 26 + 65 + 6 = 97
KEY_COUNTS = {"resnet18": 122, "resnet50": 320, "vgg16": 32, "vgg16_bn": 97}
VGG_D = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


# ---------------------------------------------------------------- torchvision, re-written
def conv3x3(in_planes, out_planes, stride=1):
    return tnn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1,
                      bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    return tnn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class TorchBasicBlock(tnn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.relu = tnn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class TorchBottleneck(tnn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        width = planes                                   # groups 1, base_width 64
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = tnn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride)       # v1.5: the stride is here
        self.bn2 = tnn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = tnn.BatchNorm2d(planes * self.expansion)
        self.relu = tnn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class TorchResNet(tnn.Module):
    def __init__(self, block, layers, num_classes=1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = tnn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3,
                                bias=False)
        self.bn1 = tnn.BatchNorm2d(self.inplanes)
        self.relu = tnn.ReLU(inplace=True)
        self.maxpool = tnn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
        self.fc = tnn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, tnn.Conv2d):
                tnn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, tnn.BatchNorm2d):
                tnn.init.constant_(m.weight, 1)
                tnn.init.constant_(m.bias, 0)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = tnn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                        tnn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return tnn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class TorchVGG(tnn.Module):
    """torchvision's VGG; ``width`` (4096 there) is ours, so the value tests can use a
    narrow classifier: at full width fc6 alone is 103 M floats, too slow to test here."""

    def __init__(self, features, num_classes=1000, dropout=0.5, width=4096):
        super().__init__()
        self.features = features
        self.avgpool = tnn.AdaptiveAvgPool2d((7, 7))
        self.classifier = tnn.Sequential(
            tnn.Linear(512 * 7 * 7, width), tnn.ReLU(True), tnn.Dropout(p=dropout),
            tnn.Linear(width, width), tnn.ReLU(True), tnn.Dropout(p=dropout),
            tnn.Linear(width, num_classes))
        for m in self.modules():
            if isinstance(m, tnn.Conv2d):
                tnn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                tnn.init.constant_(m.bias, 0)
            elif isinstance(m, tnn.BatchNorm2d):
                tnn.init.constant_(m.weight, 1)
                tnn.init.constant_(m.bias, 0)
            elif isinstance(m, tnn.Linear):
                tnn.init.normal_(m.weight, 0, 0.01)
                tnn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier(x)


def make_layers(cfg, batch_norm=False):
    layers, in_channels = [], 3
    for v in cfg:
        if v == "M":
            layers += [tnn.MaxPool2d(kernel_size=2, stride=2)]
        else:
            conv2d = tnn.Conv2d(in_channels, v, kernel_size=3, padding=1)
            if batch_norm:
                layers += [conv2d, tnn.BatchNorm2d(v), tnn.ReLU(inplace=True)]
            else:
                layers += [conv2d, tnn.ReLU(inplace=True)]
            in_channels = v
    return tnn.Sequential(*layers)


def torchvision_model(name):
    """torchvision's ``name`` model (the real one if importable), randomly initialised."""
    if tvm is not None:
        return getattr(tvm, name)()
    if name == "resnet18":
        return TorchResNet(TorchBasicBlock, [2, 2, 2, 2])
    if name == "resnet50":
        return TorchResNet(TorchBottleneck, [3, 4, 6, 3])
    return TorchVGG(make_layers(VGG_D, batch_norm=name == "vgg16_bn"))


def model_for_values(name):
    """``torchvision_model``, but VGG's classifier 64 wide (10 classes) instead of 4096."""
    if not name.startswith("vgg"):
        return torchvision_model(name)
    bn = name == "vgg16_bn"
    features = (tvm.vgg.make_layers(tvm.vgg.cfgs["D"], bn) if tvm is not None
                else make_layers(VGG_D, bn))
    return TorchVGG(features, num_classes=10, width=64)


# ---------------------------------------------------------------- fixtures and helpers
def randomised(model, seed=0, stats_input=(2, 3, 64, 64)):
    """Random biases and batch-norm affines, then running statistics from one train-mode
    forward (momentum 1: the statistics of that batch), then eval mode."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (tnn.Conv2d, tnn.Linear)) and m.bias is not None:
                m.bias.uniform_(-0.1, 0.1)
            if isinstance(m, tnn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.momentum = 1.0
        body = model.features if hasattr(model, "features") else model
        if any(isinstance(m, tnn.BatchNorm2d) for m in body.modules()):
            body.train()(torch.randn(stats_input))
        for m in model.modules():
            if isinstance(m, tnn.BatchNorm2d):
                m.momentum = 0.1
                m.num_batches_tracked.fill_(7)
    return model.eval()


@pytest.fixture(scope="module")
def tv_models():
    """``model_for_values(name)``, randomised, built on first use and kept for the module."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = randomised(model_for_values(name))
        return cache[name]
    return get


@contextmanager
def cast(module, dtype):
    """``module`` in ``dtype`` for the block, back to float32 after (exact: the weights
    were float32)."""
    try:
        yield module.to(TORCH_DTYPE[dtype])
    finally:
        module.float()


def numpy_state_dict(model):
    """What ``scratchvision.io.load_torch`` gives: key -> NumPy array."""
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def rel_err(ours, theirs) -> float:
    """max |ours - theirs| over the output's scale (max |theirs|)."""
    ours, theirs = (np.asarray(a.numpy() if hasattr(a, "numpy") else a, np.float64)
                    for a in (ours, theirs))
    assert ours.shape == theirs.shape
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


def torch_reference(module, run, x):
    """``run(module, input) -> dict`` of torch's outputs in x's dtype, and the exact answer:
    the same in float64 (weights cast up, exactly, and back)."""
    out = {}
    for dtype in (np.float64, x.dtype.type):
        with cast(module, dtype), torch.no_grad():
            y = run(module, torch.from_numpy(x.astype(dtype)))
            out[dtype] = {k: v.numpy().copy() for k, v in y.items()}
    return out[x.dtype.type], out[np.float64]


def check(ours, theirs, truth, what: str) -> float:
    """Ours agrees with torch: in float64 to 1e-12 of the output's scale; in float32 to
    1e-5 of it, or, where torch's own float32 result is further than that from the exact
    one (a deep random net amplifies rounding: ResNet-50's C5 is ~5e-5 off), no further
    from the exact result than twice torch's float32 error. Returns the error vs torch."""
    ours = np.asarray(ours.numpy())
    if ours.dtype == np.float64:
        assert rel_err(ours, theirs) <= 1e-12, what
    else:
        noise = rel_err(theirs, truth)
        assert rel_err(ours, truth) <= max(1e-5, 2 * noise), (what, rel_err(ours, truth), noise)
    return rel_err(ours, theirs)


DTYPES = [np.float32, np.float64]
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}


# ---------------------------------------------------------------- keys
@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_resnet_keys_and_shapes_are_torchvision_s(name, tv_models):
    theirs = tv_models(name).state_dict()
    assert len(theirs) == KEY_COUNTS[name]
    ours = {"resnet18": resnet18, "resnet50": resnet50}[name]().state_dict()
    assert list(ours) == list(theirs)                  # same names, same order
    assert all(ours[k].shape == tuple(v.shape) for k, v in theirs.items())


@pytest.mark.parametrize("name", ["vgg16", "vgg16_bn"])
def test_vgg_keys_are_torchvision_s(name):
    with torch.device("meta"):                          # full size, no memory
        theirs = torchvision_model(name).state_dict()
    assert len(theirs) == KEY_COUNTS[name]
    # the head our ConvClassifier(**VGG16_HEAD) reshapes them into
    k, c, width = VGG16_HEAD["kernel"], VGG16_HEAD["c_in"], VGG16_HEAD["width"]
    assert tuple(theirs["classifier.0.weight"].shape) == (width, c * k * k)
    assert tuple(theirs["classifier.3.weight"].shape) == (width, width)
    assert tuple(theirs["features.28.weight"].shape if name == "vgg16"
                 else theirs["features.40.weight"].shape) == (512, 512, 3, 3)
    convs = [k for k in theirs if k.startswith("features.") and k.endswith(".bias")
             and theirs[k.replace("bias", "weight")].ndim == 4]
    first = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]          # conv, relu; pools
    expected = first if name == "vgg16" else [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40]
    assert [int(k.split(".")[1]) for k in convs] == expected


# ---------------------------------------------------------------- same outputs
def resnet_outputs(tv, t):
    """torchvision's C2..C5 (layer1..4 outputs) and logits."""
    h, out = tv.maxpool(tv.relu(tv.bn1(tv.conv1(t)))), {}
    for k, layer in zip(("c2", "c3", "c4", "c5"), (tv.layer1, tv.layer2, tv.layer3, tv.layer4)):
        h = out[k] = layer(h)
    out["logits"] = tv(t)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_resnet_matches_torchvision(name, dtype, tv_models):
    """Logits and C2..C5 on a 67 x 75 batch of 2 (odd sizes: the floors of every stride)."""
    tv = tv_models(name)
    ours = {"resnet18": resnet18, "resnet50": resnet50}[name]().to(dtype).eval()
    assert load_torchvision_state_dict(ours, numpy_state_dict(tv)) == LoadResult([], [], [])
    x = np.random.default_rng(3).standard_normal((2, 3, 67, 75)).astype(dtype)
    theirs, truth = torch_reference(tv, resnet_outputs, x)
    with sv.no_grad():
        got = ours.forward_features(sv.tensor(x))
        got["logits"] = ours(sv.tensor(x))
    assert got["logits"].dtype == dtype and got["logits"].shape == (2, 1000)
    assert got["c5"].shape == (2, ours.feature_channels["c5"], 3, 3)
    for k in theirs:
        check(got[k], theirs[k], truth[k], k)


def vgg_pools(features, t):
    """The output of each of torchvision's 5 max pools (pool1..pool5)."""
    out = {}
    for layer in features:
        t = layer(t)
        if isinstance(layer, tnn.MaxPool2d):
            out[f"pool{len(out) + 1}"] = t
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["vgg16", "vgg16_bn"])
def test_vgg_features_match_torchvision(name, dtype, tv_models):
    """pool1..pool5 of torchvision's ``features`` = our VGGBackbone's 5 outputs (32 x 64)."""
    tv = tv_models(name)
    ours = VGGBackbone(**dict(VGG16, batch_norm=name == "vgg16_bn")).to(dtype).eval()
    result = load_torchvision_state_dict(ours, numpy_state_dict(tv))
    assert result.missing_keys == result.unexpected_keys == []
    assert result.ignored_keys == [f"classifier.{i}.{p}" for i in (0, 3, 6)
                                   for p in ("weight", "bias")]
    x = np.random.default_rng(4).standard_normal((2, 3, 32, 64)).astype(dtype)
    theirs, truth = torch_reference(tv.features, vgg_pools, x)
    with sv.no_grad():
        pools = ours(sv.tensor(x))
    assert len(pools) == len(theirs) == 5
    for i, k in enumerate(theirs):
        check(pools[i], theirs[k], truth[k], k)


@pytest.mark.parametrize("dtype", DTYPES)
def test_vgg16_classifier_as_convolutions(dtype, tv_models):
    """fc6 as a 7x7 conv, fc7 as a 1x1 conv: at the centre of a 7x7 pool5 our
    ConvClassifier gives torchvision's classifier[:6] (fc6, relu, drop, fc7, relu, drop).
    64 wide instead of 4096 (the mapping is the same reshape; the full-size shapes are
    checked in ``test_vgg_keys_are_torchvision_s``)."""
    tv = tv_models("vgg16")
    ours = ConvClassifier(**dict(VGG16_HEAD, width=64)).to(dtype).eval()
    sd = numpy_state_dict(tv)
    result = load_torchvision_state_dict(ours, sd)
    assert result.missing_keys == result.unexpected_keys == []
    assert sorted(result.ignored_keys) == sorted(
        [k for k in sd if k.startswith("features.")] + ["classifier.6.weight",
                                                        "classifier.6.bias"])
    x = np.maximum(np.random.default_rng(5).standard_normal((2, 512, 7, 7)), 0).astype(dtype)
    theirs, truth = torch_reference(tv.classifier,
                                    lambda c, t: {"fc7": c[:6](t.flatten(1))}, x)
    with sv.no_grad():
        y = ours(sv.tensor(x))                          # (2, 64, 7, 7)
    assert y.shape == (2, 64, 7, 7)
    check(y[:, :, 3, 3], theirs["fc7"], truth["fc7"], "fc7")



def test_tensor_and_torch_values_load_too(tv_models):
    tv = tv_models("resnet18")
    a, b, c = resnet18(), resnet18(), resnet18()
    load_torchvision_state_dict(a, numpy_state_dict(tv))
    load_torchvision_state_dict(b, {k: sv.tensor(v) for k, v in numpy_state_dict(tv).items()})
    load_torchvision_state_dict(c, tv.state_dict())
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    for k, v in sa.items():
        assert np.array_equal(v.numpy(), sb[k].numpy()) and np.array_equal(v.numpy(),
                                                                           sc[k].numpy())
    assert int(sa["bn1.num_batches_tracked"].numpy()) == 7


def test_vgg16_bn_folds_the_conv_bias_into_the_running_mean(tv_models):
    tv = tv_models("vgg16_bn")
    ours = VGGBackbone(**dict(VGG16, batch_norm=True))
    load_torchvision_state_dict(ours, numpy_state_dict(tv))
    sd = tv.state_dict()
    mean = ours.stages[1][0][1].running_mean.numpy()       # features.7 is conv 1 of stage 1
    expected = (sd["features.8.running_mean"] - sd["features.7.bias"]).numpy()
    np.testing.assert_array_equal(mean, expected)
    assert ours.stages[1][0][0].bias is None


# ---------------------------------------------------------------- keys left out, errors
def test_without_fc_the_fc_keys_are_ignored(tv_models):
    sd = numpy_state_dict(tv_models("resnet18"))
    model = resnet18(num_classes=0).eval()
    assert load_torchvision_state_dict(model, sd) == LoadResult([], [], ["fc.weight", "fc.bias"])
    with sv.no_grad():
        assert model(sv.randn(1, 3, 32, 32)).shape == (1, 512)        # pooled C5


def test_old_checkpoints_without_num_batches_tracked_load(tv_models):
    sd = {k: v for k, v in numpy_state_dict(tv_models("resnet18")).items()
          if not k.endswith("num_batches_tracked")}
    assert len(sd) == 102                               # torch < 0.4.1's resnet18 files
    model = resnet18()
    assert load_torchvision_state_dict(model, sd) == LoadResult([], [], [])
    assert int(model.state_dict()["layer1.0.bn1.num_batches_tracked"].numpy()) == 0


def test_missing_key_is_named(tv_models):
    sd = numpy_state_dict(tv_models("resnet18"))
    del sd["layer3.0.conv1.weight"]
    model = resnet18()
    before = model.conv1.weight.numpy().copy()
    with pytest.raises(TorchvisionWeightsError, match=r"missing key\(s\).*layer3\.0\.conv1"):
        load_torchvision_state_dict(model, sd)
    np.testing.assert_array_equal(model.conv1.weight.numpy(), before)   # nothing copied
    result = load_torchvision_state_dict(model, sd, strict=False)
    assert result.missing_keys == ["layer3.0.conv1.weight"]
    np.testing.assert_array_equal(model.conv1.weight.numpy(), sd["conv1.weight"])


def test_vgg_missing_key_names_both_sides(tv_models):
    sd = numpy_state_dict(tv_models("vgg16").features)
    sd = {f"features.{k}": v for k, v in sd.items()}
    del sd["features.28.weight"]
    with pytest.raises(ValueError, match=r"features\.28\.weight \(for stages\.4\.2\.0\.weight"):
        load_torchvision_state_dict(VGGBackbone(**VGG16), sd)


def test_shape_mismatch_names_the_key_and_both_shapes(tv_models):
    sd = numpy_state_dict(tv_models("resnet18"))
    with pytest.raises(RuntimeError, match=r"fc\.weight \(1000, 512\).*fc\.weight.*\(10, 512\)"):
        load_torchvision_state_dict(resnet18(num_classes=10), sd, strict=False)


def test_wrong_network_is_refused(tv_models):
    sd = numpy_state_dict(tv_models("resnet18"))
    with pytest.raises(TorchvisionWeightsError, match=r"missing.*layer1\.0\.conv3\.weight"):
        load_torchvision_state_dict(resnet50(), sd)
    with pytest.raises(TorchvisionWeightsError, match=r"unexpected.*conv1\.weight"):
        load_torchvision_state_dict(VGGBackbone(**VGG16), sd)
    vgg = {f"features.{k}": v for k, v in numpy_state_dict(tv_models("vgg16").features).items()}
    with pytest.raises(TorchvisionWeightsError, match=r"unexpected.*features\.0\.weight"):
        load_torchvision_state_dict(ResNet(BasicBlock, (2, 2, 2, 2)), vgg)
    with pytest.raises(TorchvisionWeightsError, match="widths"):
        load_torchvision_state_dict(VGGBackbone(), vgg)           # our CPU-sized default
    with pytest.raises(TypeError, match="no torchvision mapping"):
        load_torchvision_state_dict(sv.nn.Linear(2, 2), vgg)


def test_resnet18_train_step_matches_torchvision(tv_models):
    """Fine-tuning works the same: in train mode (batch statistics), float64, the input's
    and the weights' gradients and the updated running statistics equal torch's."""
    tv = copy.deepcopy(tv_models("resnet18")).double().train()
    ours = resnet18().double().train()
    load_torchvision_state_dict(ours, tv.state_dict())
    x = np.random.default_rng(6).standard_normal((2, 3, 35, 43))
    t = torch.from_numpy(x).requires_grad_(True)
    (tv(t) ** 2).mean().backward()
    xs = sv.tensor(x, requires_grad=True)
    (ours(xs) ** 2).mean().backward()
    assert rel_err(xs.grad, t.grad) <= 1e-10
    grads = dict(tv.named_parameters())
    for k, p in ours.named_parameters():
        assert rel_err(p.grad, grads[k].grad) <= 1e-10, k
    theirs = tv.state_dict()
    for k, v in ours.state_dict().items():
        if "running" in k:
            assert rel_err(v, theirs[k]) <= 1e-12, k
    assert int(ours.state_dict()["bn1.num_batches_tracked"].numpy()) == 8
