"""``scratchvision.onnx.export``: every model this project trains, exported with random
weights (and nonzero batch-norm statistics), run in onnxruntime, compared with our forward.

Tolerance: max |ours - onnxruntime| <= 1e-5 * max(1, max |ours|) in float32. The two
libraries sum convolutions in different orders: with He-scaled random weights the outputs
reach |y| ~ 13 (the sliding-window score map) and the errors 1e-5 there, 1e-7 to 5e-6
elsewhere, i.e. under 1e-6 relative; a plain atol of 1e-5 would sit on that edge.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import scratchvision as sv
import scratchvision.functional as F
from scratchvision import nn
from scratchvision.nets import SEGMENTERS, build_detector, build_segmenter
from scratchvision.onnx.export import UnsupportedOperatorError, export  # (see below*)
from scratchvision.train_seg import model_kwargs

# * the function itself: ``scratchvision.onnx.export`` is rebound to the submodule once the
#   submodule is imported (see test_package_level_export_stays_callable)

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

RTOL = 1e-5


def randomize(model: nn.Module, rng: np.random.Generator) -> nn.Module:
    """He-scaled random weights, random biases and BN affines, nonzero running stats."""
    for name, p in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if p.ndim > 1:
            fan_in = int(np.prod(p.shape[1:]))
            p.data[...] = rng.standard_normal(p.shape) * np.sqrt(2.0 / fan_in)
        elif leaf == "weight":                       # batch/layer norm scale
            p.data[...] = rng.uniform(0.5, 1.5, p.shape)
        else:
            p.data[...] = rng.standard_normal(p.shape) * 0.1
    for name, b in model.named_buffers():
        if name.endswith("running_mean"):
            b.data[...] = rng.standard_normal(b.shape) * 0.2
        elif name.endswith("running_var"):
            b.data[...] = rng.uniform(0.5, 2.0, b.shape)
    return model


def ours(fn, owner: nn.Module, x) -> list[np.ndarray]:
    """Our forward in eval mode: the Tensors of the output, flattened."""
    owner.eval()
    with sv.no_grad():
        out = fn(*(sv.tensor(a) for a in (x if isinstance(x, tuple) else (x,))))
    flat = out if isinstance(out, (tuple, list)) else [out]
    return [t.numpy() for t in flat if isinstance(t, sv.Tensor)]


def onnxruntime(path, x) -> list[np.ndarray]:
    sess = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    xs = x if isinstance(x, tuple) else (x,)
    return sess.run(None, {i.name: a for i, a in zip(sess.get_inputs(), xs)})


def assert_matches(refs, gots) -> float:
    """Every output within tolerance; returns the largest error."""
    assert len(refs) == len(gots)
    worst = 0.0
    for ref, got in zip(refs, gots):
        assert got.shape == ref.shape and got.dtype == ref.dtype
        err = float(np.abs(got.astype(np.float64) - ref).max()) if ref.size else 0.0
        assert err <= RTOL * max(1.0, float(np.abs(ref).max())), err
        worst = max(worst, err)
    return worst


def images(rng, n, c=3, h=64, w=64):
    return rng.standard_normal((n, c, h, w)).astype(np.float32)


# ----------------------------------------------------------------------------- models
@pytest.mark.parametrize("name", SEGMENTERS)
def test_segmenter_matches_onnxruntime_and_batch_is_dynamic(name, tmp_path):
    rng = np.random.default_rng(SEGMENTERS.index(name))
    model = randomize(build_segmenter(name, 4, **model_kwargs(name, "small")), rng)
    path = tmp_path / f"{name}.onnx"
    proto = export(model, images(rng, 2), path, dynamic_batch=True)
    assert model.training                     # the module's mode is given back
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    # weights keep their state_dict names
    inits = {i.name for i in proto.graph.initializer}
    assert {k for k, _ in model.named_parameters()} <= inits
    for n in (2, 3):                          # the export's batch, and another
        x = images(rng, n)
        ref = ours(model, model, x)
        assert ref[0].shape == (n, 4, 64, 64) and ref[0].std() > 1e-3   # not trivial
        assert_matches(ref, onnxruntime(path, x))


def _detector_parts():
    sw = build_detector("sliding_window", 4, "small")
    fr = build_detector("fast_rcnn", 4, "small")
    rc = build_detector("rcnn", 4, "small")
    heads = fr.roi_heads
    return {
        # crops (B, 3, W, W) -> logits, box offsets; and the convolutionalised version
        "sliding_window.classify_windows": (sw.classify_windows, sw, (3, 30, 30)),
        "sliding_window.score_map": (sw.score_map, sw, (3, 64, 64)),
        "fast_rcnn.backbone": (fr.backbone, fr, (3, 64, 64)),
        "fast_rcnn.box_head": (heads.box_head, fr, (128, 7, 7)),
        "fast_rcnn.box_predictor": (heads.box_predictor, fr, (256,)),
        "rcnn": (rc, rc, (3, 32, 32)),
    }


@pytest.mark.parametrize("part", list(_detector_parts()))
def test_detector_part_matches_onnxruntime(part, tmp_path):
    rng = np.random.default_rng(len(part))
    fn, owner, shape = _detector_parts()[part]
    randomize(owner, rng)
    path = tmp_path / "part.onnx"
    export(fn, rng.standard_normal((4, *shape)).astype(np.float32), path,
           dynamic_batch=True)
    for n in (4, 1):
        x = rng.standard_normal((n, *shape)).astype(np.float32)
        assert_matches(ours(fn, owner, x), onnxruntime(path, x))


def test_static_batch_and_names(tmp_path):
    rng = np.random.default_rng(5)
    model = randomize(build_segmenter("fcn8s", 3, **model_kwargs("fcn8s", "tiny")), rng)
    path = tmp_path / "no_suffix"             # written at exactly this path
    x = images(rng, 1, h=32, w=32)
    proto = export(model, x, path, input_names=["image"], output_names=["scores"])
    assert path.is_file()
    assert [i.name for i in proto.graph.input] == ["image"]
    assert [o.name for o in proto.graph.output] == ["scores"]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 32, 32]
    assert proto.opset_import[0].version == 17
    assert_matches(ours(model, model, x), onnxruntime(path, x))


def test_frozen_weights_are_exported(tmp_path):
    """requires_grad=False weights are no edge of the autograd graph; the recorded calls
    still name them (and the reshape of a frozen weight in score_map is followed)."""
    rng = np.random.default_rng(6)
    sw = randomize(build_detector("sliding_window", 4, "tiny"), rng)
    sw.requires_grad_(False)
    path = tmp_path / "frozen.onnx"
    x = images(rng, 2, h=40, w=40)
    proto = export(sw.score_map, x, path)
    assert "box_head.fc6.weight" in {i.name for i in proto.graph.initializer}
    assert_matches(ours(sw.score_map, sw, x), onnxruntime(path, x))
    assert not any(p.requires_grad for p in sw.parameters())


class Zoo(nn.Module):
    """Most converters in one net: 'same' conv, in-place relu, pads, resizes, pools,
    linear on 3-D input, layer norm, activations, reductions, indexing, cat/stack."""

    def __init__(self, layer_norm: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 4, padding="same")      # asymmetric: 1 + 2 pixels
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)                          # eval: no node
        self.fc = nn.Linear(28, 8)
        self.fc2 = nn.Linear(4, 5)
        self.ln = nn.LayerNorm(5) if layer_norm else nn.Identity()

    def forward(self, x):
        y = F.relu(self.bn(self.conv(x)), inplace=True)
        a = F.leaky_relu(y, 0.2) + F.avg_pool2d(F.pad(y, (1, 1, 1, 1), value=0.5), 3, 1)
        a = F.interpolate(a, scale_factor=2, mode="nearest")                 # 32 x 32
        a = F.interpolate(a, size=(20, 24), mode="bilinear", align_corners=True)
        a = F.interpolate(a, scale_factor=0.5, mode="bilinear")              # 10 x 12
        a = F.pad(a, (1, 1, 1, 1), mode="replicate")[:, :, 1:-1, ::-1]       # 10 x 14
        a = F.max_pool2d(self.drop(a), 2)                                    # 5 x 7
        g = F.adaptive_avg_pool2d(a, 1)
        h = F.adaptive_max_pool2d(a[:, :, :4, :6], (2, 3)) + g.expand(-1, -1, 2, 3)
        v = sv.cat([g.flatten(1), h.flatten(1)], dim=1)                      # (N, 28)
        w = self.fc(v)
        w = self.ln(self.fc2(w.reshape(w.shape[0], 2, 4)))                   # (N, 2, 5)
        s = (F.softmax(w, dim=-1) + F.log_softmax(w, dim=1) * 0.5 - w.sigmoid() / 3
             + w.tanh() ** 2 + F.silu(w) + F.gelu(w) + w.clamp(-0.5, 0.5)
             + F.hardtanh(w) - sv.maximum(w, w * 0.5))
        out1 = s.sum(dim=2, keepdim=True) * s.mean(dim=1, keepdim=True)
        out2 = sv.stack([s, -s.exp()], dim=1).permute(0, 2, 3, 1)
        return out1, out2, s[:, None, 0], (w.abs() + 1).sqrt() + (w * w + 1).log()


@pytest.mark.parametrize("opset", [13, 17, 18])
def test_op_zoo(opset, tmp_path):
    rng = np.random.default_rng(opset)
    model = randomize(Zoo(layer_norm=opset >= 17), rng)
    path = tmp_path / "zoo.onnx"
    export(model, images(rng, 2, h=16, w=16), path, opset_version=opset, dynamic_batch=True)
    for n in (2, 3):
        x = images(rng, n, h=16, w=16)
        assert_matches(ours(model, model, x), onnxruntime(path, x))


class PoolPair(nn.Module):
    """max_pool2d's indices as an output, and unpooled (SegNet/DeconvNet style)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)

    def forward(self, x):
        y, idx = F.max_pool2d(self.conv(x), 2, return_indices=True)
        return F.max_unpool2d(y * 2, idx, 2, output_size=x.shape[-2:]), idx


def test_pooling_indices_are_per_plane(tmp_path):
    rng = np.random.default_rng(8)
    model = PoolPair()
    path = tmp_path / "pool.onnx"
    export(model, images(rng, 2, c=2, h=9, w=8), path, dynamic_batch=True)
    for n in (2, 1):
        x = images(rng, n, c=2, h=9, w=8)             # odd height: output_size matters
        ref, got = ours(model, model, x), onnxruntime(path, x)
        assert got[1].dtype == np.int64
        np.testing.assert_array_equal(got[1], ref[1])
        assert_matches(ref[:1], got[:1])


# ----------------------------------------------------------------------------- errors
class WithGroupNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GroupNorm(2, 4))

    def forward(self, x):
        return self.body(x)


def test_unsupported_function_names_the_function_and_module(tmp_path):
    x = images(np.random.default_rng(9), 1, h=8, w=8)
    with pytest.raises(UnsupportedOperatorError, match=r"GroupNorm.*'body\.1' \(GroupNorm\)"):
        export(WithGroupNorm(), x, tmp_path / "gn.onnx")
    assert not (tmp_path / "gn.onnx").exists()


class Misused(nn.Module):
    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def forward(self, x):
        if self.what == "dropout":
            return F.dropout(x, 0.5, training=True)
        if self.what == "flatten":
            return x.reshape(-1)
        pooled = F.max_pool2d(x, 2)
        return F.max_unpool2d(pooled, np.zeros(pooled.shape, np.int64), 2)


@pytest.mark.parametrize("what, message", [
    ("dropout", "dropout in training mode"),
    ("flatten", "across the batch dim"),
    ("unpool", "must come from a max_pool2d"),
])
def test_misuses_raise_clearly(what, message, tmp_path):
    x = images(np.random.default_rng(10), 2, h=8, w=8)
    with pytest.raises(UnsupportedOperatorError, match=message):
        export(Misused(what), x, tmp_path / "m.onnx", dynamic_batch=True)


def test_bad_arguments():
    x = images(np.random.default_rng(11), 1, h=8, w=8)
    with pytest.raises(ValueError, match="opset_version"):
        export(nn.Conv2d(3, 2, 3), x, "unused.onnx", opset_version=9)
    with pytest.raises(ValueError, match="output_names"):
        export(nn.Conv2d(3, 2, 3), x, "unused.onnx", output_names=["a", "b"])
    with pytest.raises(TypeError, match="nn.Module"):
        export(lambda t: t, x, "unused.onnx")


def test_package_level_export_stays_callable(tmp_path):
    import scratchvision.onnx as package
    x = images(np.random.default_rng(13), 1, h=8, w=8)
    for k in range(2):
        package.export(nn.Conv2d(3, 2, 3), x, tmp_path / f"{k}.onnx")


# ------------------------------------------------------------------------- round trip
def test_round_trip_through_convert(tmp_path):
    try:
        from scratchvision.onnx.convert import convert
    except ImportError:
        pytest.skip("scratchvision.onnx.convert (the importer) is not available")
    rng = np.random.default_rng(12)
    model = randomize(build_segmenter("deconvnet", 4, **model_kwargs("deconvnet", "tiny")),
                      rng)
    path = tmp_path / "deconvnet.onnx"
    export(model, images(rng, 2, h=32, w=32), path, dynamic_batch=True)
    back = convert(path)
    x = images(rng, 3, h=32, w=32)
    with sv.no_grad():
        got = back(x)
    assert_matches(ours(model, model, x), [got.numpy()])
