"""``scratchvision.onnx.convert`` operator by operator, against onnxruntime.

Each case builds a small graph with ``onnx.helper`` (one node, or a short chain), runs it
with onnxruntime and with the converted module on the same inputs, and compares every
output (float32: max abs error <= 1e-5; integers and booleans exactly). The cases walk the
attribute modes of each operator (padding rules, rounding modes, opset-dependent inputs
versus attributes). Then: unsupported operators and attribute values fail at convert
time; gradients reach the imported Parameters; state_dict names; the GPU when present.
"""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper

import scratchvision as sv
from scratchvision.onnx.convert import convert
from scratchvision.onnx.node import OnnxConversionError

F32, I64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
ATOL = 1e-5
_NP = {np.dtype(np.float32): F32, np.dtype(np.float64): TensorProto.DOUBLE,
       np.dtype(np.int64): I64, np.dtype(np.int32): TensorProto.INT32,
       np.dtype(np.bool_): BOOL}


def _rng(seed=0):
    return np.random.default_rng(seed)


def randn(*shape, seed=0):
    return _rng(seed).standard_normal(shape).astype(np.float32)


def model(nodes, feeds, outputs, inits=None, opset=13):
    """An ONNX model of ``nodes`` with inputs ``feeds`` (name -> array), float32 outputs
    unless ``outputs`` gives (name, elem_type) pairs, and ``inits`` as initializers."""
    ins = [helper.make_tensor_value_info(k, _NP[v.dtype], v.shape) for k, v in feeds.items()]
    outs = [helper.make_tensor_value_info(*(o if isinstance(o, tuple) else (o, F32)), None)
            for o in outputs]
    init = [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()]
    g = helper.make_graph(list(nodes), "g", ins, outs, init)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8
                             if opset <= 17 else 10)


def run_ort(m, feeds):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


def check(nodes, feeds, outputs=("y",), inits=None, opset=13, atol=ATOL):
    """Run both runtimes and compare all outputs; return ours."""
    m = model(nodes, feeds, outputs, inits, opset)
    ref = run_ort(m, feeds)
    ours = convert(m)(*feeds.values())
    ours = ours if isinstance(ours, tuple) else (ours,)
    assert len(ours) == len(ref)
    for o, r in zip(ours, ref):
        o = o.numpy()
        assert o.shape == r.shape, (o.shape, r.shape)
        if r.dtype.kind == "f":
            assert o.dtype == r.dtype, (o.dtype, r.dtype)
            err = float(np.abs(o - r).max()) if r.size else 0.0
            assert err <= atol, f"max abs error {err}"
        else:
            np.testing.assert_array_equal(o, r)
    return ours


def node(op, ins, outs=("y",), **attrs):
    return helper.make_node(op, list(ins), list(outs), **attrs)


# ---------------------------------------------------------------------- elementwise
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean"])
def test_binary_broadcast(op):
    check([node(op, ["a", "b"])], {"a": randn(2, 3, 4), "b": randn(3, 1, seed=1) + 3})


def test_variadic_three_inputs():
    feeds = {"a": randn(2, 3), "b": randn(3, seed=1), "c": randn(1, 1, seed=2)}
    for op in ("Max", "Min", "Sum", "Mean"):
        check([node(op, ["a", "b", "c"])], feeds)


def test_int_division_truncates_and_mod():
    a = np.array([-7, 7, -8, 9, -1], np.int64)
    b = np.array([2, -2, 3, 4, 5], np.int64)
    check([node("Div", ["a", "b"])], {"a": a, "b": b}, [("y", I64)])
    check([node("Mod", ["a", "b"])], {"a": a, "b": b}, [("y", I64)])
    check([node("Mod", ["a", "b"], fmod=1)], {"a": a, "b": b}, [("y", I64)])
    check([node("Mod", ["a", "b"], fmod=1)], {"a": randn(5) * 5, "b": randn(5, seed=1) + 3})


def test_legacy_broadcast_axis():
    """Opset 6 (which onnxruntime no longer runs): B aligned with A from dim ``axis``."""
    a, b = randn(2, 3, 4, 5), randn(3, 4, seed=1)
    net = convert(model([node("Add", ["a", "b"], broadcast=1, axis=1)], {"a": a, "b": b},
                        ["y"], opset=6))
    np.testing.assert_array_equal(net(a, b).numpy(), a + b[:, :, None])


def test_pow():
    check([node("Pow", ["a", "b"])], {"a": np.abs(randn(3, 4)) + 0.5, "b": randn(4, seed=1)})
    check([node("Pow", ["a", "e"])], {"a": randn(3, 4)}, inits={"e": np.float32(2.0)})
    check([node("Pow", ["a", "e"])], {"a": np.abs(randn(3, 4))}, inits={"e": np.float32(0.5)})


UNARY = ["Relu", "Sigmoid", "Tanh", "Exp", "Neg", "Abs", "Reciprocal", "Floor", "Ceil",
         "Round", "Sign", "Sin", "Cos", "Erf", "Softplus", "Softsign", "Elu",
         "Selu", "Celu", "ThresholdedRelu", "Identity"]


@pytest.mark.parametrize("op", UNARY)
def test_unary(op):
    x = randn(2, 3, 5) * 2
    x[0, 0, :3] = [0.5, -1.5, 2.5]          # Round's halves go to even
    check([node(op, ["x"])], {"x": x}, opset=14)


@pytest.mark.parametrize("op", ["Log", "Sqrt"])
def test_unary_positive(op):
    check([node(op, ["x"])], {"x": np.abs(randn(4, 5)) + 0.1})


def test_activations_with_attributes():
    x = randn(2, 4, 3) * 4
    check([node("LeakyRelu", ["x"], alpha=0.3)], {"x": x})
    check([node("LeakyRelu", ["x"])], {"x": x})
    check([node("HardSigmoid", ["x"])], {"x": x})                   # alpha 0.2, beta 0.5
    check([node("HardSigmoid", ["x"], alpha=1 / 6, beta=0.5)], {"x": x})
    check([node("HardSwish", ["x"])], {"x": x}, opset=14)
    check([node("Elu", ["x"], alpha=0.5)], {"x": x})
    check([node("Mish", ["x"])], {"x": x}, opset=18)
    for approximate in ("none", "tanh"):
        check([node("Gelu", ["x"], approximate=approximate)], {"x": x}, opset=20)


def test_prelu_slopes():
    x = randn(2, 3, 4, 4)
    check([node("PRelu", ["x", "s"])], {"x": x},
          inits={"s": np.array([0.1, 0.2, 0.3], np.float32).reshape(3, 1, 1)})
    check([node("PRelu", ["x", "s"])], {"x": x}, inits={"s": np.array([0.25], np.float32)})


def test_clip_attribute_and_input_forms():
    x = randn(3, 4) * 3
    check([node("Clip", ["x"], min=-1.0, max=0.5)], {"x": x}, opset=6)
    check([node("Clip", ["x", "lo", "hi"])], {"x": x},
          inits={"lo": np.float32(-0.5), "hi": np.float32(1.0)})
    check([node("Clip", ["x", "lo"])], {"x": x}, inits={"lo": np.float32(0.0)})
    check([node("Clip", ["x", "", "hi"])], {"x": x}, inits={"hi": np.float32(0.0)})
    check([node("Clip", ["x"])], {"x": x})


def test_comparisons_logic_where():
    a, b = randn(3, 4), randn(4, seed=1)
    for op in ("Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual"):
        check([node(op, ["a", "b"])], {"a": a, "b": b}, [("y", BOOL)], opset=16)
    check([node("Greater", ["a", "b"], ["g"]), node("Less", ["a", "z"], ["l"]),
           node("And", ["g", "l"], ["y1"]), node("Or", ["g", "l"], ["y2"]),
           node("Xor", ["g", "l"], ["y3"]), node("Not", ["g"], ["y4"]),
           node("Where", ["g", "a", "b"], ["y5"])],
          {"a": a, "b": b}, [("y1", BOOL), ("y2", BOOL), ("y3", BOOL), ("y4", BOOL), "y5"],
          inits={"z": np.float32(0.3)})


def test_cast():
    x = np.array([-2.7, -0.5, 0.0, 0.4, 3.9], np.float32)
    check([node("Cast", ["x"], to=I64)], {"x": x}, [("y", I64)])
    check([node("Cast", ["x"], to=BOOL)], {"x": x}, [("y", BOOL)])
    check([node("Cast", ["x"], to=TensorProto.DOUBLE)], {"x": x}, [("y", TensorProto.DOUBLE)])
    check([node("Cast", ["x"], to=F32)], {"x": np.arange(5, dtype=np.int64) - 2})
    check([node("CastLike", ["x", "t"])], {"x": np.arange(4, dtype=np.int64),
                                            "t": randn(1)}, opset=15)


# ---------------------------------------------------------------------- shapes
def test_shape_size_start_end():
    x = randn(2, 3, 4, 5)
    check([node("Shape", ["x"])], {"x": x}, [("y", I64)])
    check([node("Shape", ["x"], start=1, end=-1)], {"x": x}, [("y", I64)], opset=15)
    check([node("Shape", ["x"], start=-2)], {"x": x}, [("y", I64)], opset=15)
    check([node("Size", ["x"])], {"x": x}, [("y", I64)])


def test_reshape_zero_minus_one_allowzero():
    x = randn(2, 3, 4)
    check([node("Reshape", ["x", "s"])], {"x": x}, inits={"s": np.array([0, -1], np.int64)})
    check([node("Reshape", ["x", "s"])], {"x": x},
          inits={"s": np.array([4, 0, 2], np.int64)})
    check([node("Reshape", ["x", "s"], allowzero=1)], {"x": np.zeros((0, 3), np.float32)},
          inits={"s": np.array([3, 0], np.int64)}, opset=14)
    check([node("Reshape", ["x"], shape=[6, 4])], {"x": x}, opset=4)


def test_flatten_transpose():
    x = randn(2, 3, 4, 5)
    for axis in (0, 1, 2, -1, 4):
        check([node("Flatten", ["x"], axis=axis)], {"x": x})
    check([node("Transpose", ["x"], perm=[0, 2, 3, 1])], {"x": x})
    check([node("Transpose", ["x"])], {"x": x})


def test_squeeze_unsqueeze_attribute_and_input():
    x = randn(3, 1, 4, 1)
    check([node("Squeeze", ["x"], axes=[1, -1])], {"x": x}, opset=11)
    check([node("Squeeze", ["x"])], {"x": x}, opset=11)
    check([node("Squeeze", ["x", "a"])], {"x": x}, inits={"a": np.array([-3], np.int64)})
    check([node("Unsqueeze", ["x"], axes=[0, -1])], {"x": x}, opset=11)
    check([node("Unsqueeze", ["x", "a"])], {"x": x}, inits={"a": np.array([2, 0], np.int64)})


def test_concat_split():
    check([node("Concat", ["a", "b"], axis=-1)], {"a": randn(2, 3), "b": randn(2, 5, seed=1)})
    x = randn(2, 6, 3)
    check([node("Split", ["x"], ["y1", "y2", "y3"], axis=1)], {"x": x}, ["y1", "y2", "y3"])
    check([node("Split", ["x"], ["y1", "y2"], axis=1, split=[2, 4])], {"x": x}, ["y1", "y2"],
          opset=11)
    check([node("Split", ["x", "s"], ["y1", "y2"], axis=-2)], {"x": x}, ["y1", "y2"],
          inits={"s": np.array([5, 1], np.int64)})
    check([node("Split", ["x"], ["y1", "y2", "y3", "y4"], axis=1, num_outputs=4)], {"x": x},
          ["y1", "y2", "y3", "y4"], opset=18)


def test_slice_forms():
    x = randn(5, 6, 7)
    big = np.iinfo(np.int64).max
    check([node("Slice", ["x"], starts=[1, 0], ends=[4, 100], axes=[0, 2])], {"x": x},
          opset=9)
    cases = [([1], [-1], [1], [1]), ([-2, 0], [big, 5], [0, 2], [1, 2]),
             ([-1], [-big], [1], [-1]), ([4, 5], [0, 1], [0, 1], [-2, -3]),
             ([10], [-10], [2], [-1]), ([0], [0], [0], [1])]
    for st, en, ax, sp in cases:
        check([node("Slice", ["x", "st", "en", "ax", "sp"])], {"x": x},
              inits={"st": np.array(st), "en": np.array(en), "ax": np.array(ax),
                     "sp": np.array(sp)})
    check([node("Slice", ["x", "st", "en"])], {"x": x},
          inits={"st": np.array([1, 2]), "en": np.array([3, -1])})


def test_gather_forms():
    x = randn(4, 5, 3)
    for axis, idx in ((0, np.array(2)), (1, np.array([[0, -1], [3, 1]])),
                      (-1, np.array([2, 0, 0]))):
        check([node("Gather", ["x", "i"], axis=axis)], {"x": x}, inits={"i": idx})
    check([node("GatherElements", ["x", "i"], axis=1)], {"x": x},
          inits={"i": np.array([[[0, 1, -1]] * 2] * 4)})
    check([node("GatherND", ["x", "i"])], {"x": x}, inits={"i": np.array([[0, 1], [3, -1]])})


def test_expand_tile_constant_of_shape_range():
    x = randn(3, 1)
    check([node("Expand", ["x", "s"])], {"x": x}, inits={"s": np.array([2, 1, 4])})
    check([node("Tile", ["x", "r"])], {"x": x}, inits={"r": np.array([2, 3])})
    check([node("ConstantOfShape", ["s"])], {"s": np.array([2, 3])})
    v = numpy_helper.from_array(np.array([7], np.int64))
    check([node("ConstantOfShape", ["s"], value=v)], {"s": np.array([4])}, [("y", I64)])
    check([node("Range", ["a", "b", "c"])], {"a": np.array(1.0, np.float32),
                                             "b": np.array(5.5, np.float32),
                                             "c": np.array(1.5, np.float32)}, opset=11)
    check([node("Range", ["a", "b", "c"])], {"a": np.array(10), "b": np.array(1),
                                             "c": np.array(-3)}, [("y", I64)], opset=11)


def test_nonzero_cumsum():
    x = (randn(3, 4) > 0).astype(np.float32) * randn(3, 4, seed=3)
    check([node("NonZero", ["x"])], {"x": x}, [("y", I64)])
    for ex in (0, 1):
        for rev in (0, 1):
            check([node("CumSum", ["x", "a"], exclusive=ex, reverse=rev)], {"x": randn(3, 4)},
                  inits={"a": np.array(1)})


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_modes(mode):
    x = randn(1, 2, 4, 5)
    pads = np.array([0, 0, 1, 2, 0, 1, 2, 1])
    check([node("Pad", ["x", "p"], mode=mode)], {"x": x}, inits={"p": pads}, opset=11)
    check([node("Pad", ["x", "p"], mode=mode)], {"x": x},
          inits={"p": np.array([0, 1, -1, 2, 0, 0, 1, -2])}, opset=11)


def test_pad_value_axes_wrap_legacy():
    x = randn(2, 3, 4)
    check([node("Pad", ["x", "p", "v"])], {"x": x},
          inits={"p": np.array([1, 0, 2, 0, 1, 1]), "v": np.float32(-3.5)}, opset=13)
    check([node("Pad", ["x", "p", "", "a"])], {"x": x},
          inits={"p": np.array([1, 2, 0, 3]), "a": np.array([-1, 0])}, opset=18)
    check([node("Pad", ["x", "p"], mode="wrap")], {"x": x},
          inits={"p": np.array([0, 1, 2, 0, 2, 1])}, opset=19)
    check([node("Pad", ["x"], pads=[0, 1, 1, 0, 0, 2], value=2.0)], {"x": x}, opset=2)


def test_depth_space():
    x = randn(1, 8, 2, 3)
    for mode in ("DCR", "CRD"):
        check([node("DepthToSpace", ["x"], blocksize=2, mode=mode)], {"x": x})
    check([node("SpaceToDepth", ["x"], blocksize=2)], {"x": randn(1, 2, 4, 6)})


def test_dynamic_shape_chain():
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape runs on the actual input size."""
    nodes = [node("Shape", ["x"], ["s"]), node("Gather", ["s", "i0"], ["n"], axis=0),
             node("Unsqueeze", ["n", "ax"], ["n1"]),
             node("Concat", ["n1", "minus1"], ["shape"], axis=0),
             node("Reshape", ["x", "shape"], ["y"])]
    inits = {"i0": np.array(0), "ax": np.array([0]), "minus1": np.array([-1])}
    x_any = helper.make_tensor_value_info("x", F32, ["N", 3, "H", "W"])
    g = helper.make_graph(nodes, "g", [x_any], [helper.make_tensor_value_info("y", F32, None)],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    net = convert(m)
    for shape in ((2, 3, 4, 5), (1, 3, 7, 2)):
        x = randn(*shape)
        np.testing.assert_array_equal(net(x).numpy(), run_ort(m, {"x": x})[0])
    with pytest.raises(ValueError, match="expects shape"):
        net(randn(2, 4, 4, 5))


# ---------------------------------------------------------------------- reductions
@pytest.mark.parametrize("op", ["ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                                "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp"])
def test_reduce_axes_attribute_and_input(op):
    x = randn(2, 3, 4) * 0.5 + 1
    for keep in (0, 1):
        check([node(op, ["x"], axes=[0, -1], keepdims=keep)], {"x": x}, opset=13)
        check([node(op, ["x", "a"], keepdims=keep)], {"x": x},
              inits={"a": np.array([1])}, opset=18)
    check([node(op, ["x"])], {"x": x}, opset=13)                       # all dims


def test_reduce_sum_and_noop():
    x = randn(2, 3, 4)
    check([node("ReduceSum", ["x"], axes=[1], keepdims=0)], {"x": x}, opset=11)
    check([node("ReduceSum", ["x", "a"])], {"x": x}, inits={"a": np.array([0, 2])})
    check([node("ReduceSum", ["x", "a"], noop_with_empty_axes=1)], {"x": x},
          inits={"a": np.zeros(0, np.int64)})
    check([node("ReduceMean", ["x"], keepdims=0)], {"x": x}, opset=18)
    check([node("ReduceLogSum", ["x"], axes=[2])], {"x": np.abs(x) + 1}, opset=13)


def test_argmax_argmin_topk():
    x = np.array([[1, 3, 3, 0], [2, 2, 1, 5]], np.float32)
    for op in ("ArgMax", "ArgMin"):
        for last in (0, 1):
            for keep in (0, 1):
                check([node(op, ["x"], axis=1, keepdims=keep, select_last_index=last)],
                      {"x": x}, [("y", I64)])
    x = randn(3, 6)
    for largest in (0, 1):
        check([node("TopK", ["x", "k"], ["v", "i"], axis=-1, largest=largest)], {"x": x},
              ["v", ("i", I64)], inits={"k": np.array([3])}, opset=11)
    check([node("TopK", ["x"], ["v", "i"], axis=0, k=2)], {"x": x}, ["v", ("i", I64)],
          opset=9)


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
def test_softmax_axis_semantics(op, opset):
    x = randn(2, 3, 4) * 3
    for axis in (0, 1, -1):
        check([node(op, ["x"], axis=axis)], {"x": x}, opset=opset)
    check([node(op, ["x"])], {"x": x}, opset=opset)


# ---------------------------------------------------------------------- linear algebra
def test_matmul_gemm_einsum():
    check([node("MatMul", ["a", "b"])], {"a": randn(2, 1, 3, 4), "b": randn(5, 4, 6, seed=1)})
    check([node("MatMul", ["a", "b"])], {"a": randn(4), "b": randn(3, 4, 2, seed=1)})
    a, b = randn(3, 4), randn(5, 4, seed=1)
    check([node("Gemm", ["a", "b", "c"], transB=1)], {"a": a},
          inits={"b": b, "c": randn(5, seed=2)})
    check([node("Gemm", ["a", "b", "c"], transA=1, alpha=0.5, beta=2.0)], {"a": a.T.copy()},
          inits={"b": b.T.copy(), "c": randn(3, 1, seed=2)})
    check([node("Gemm", ["a", "b"], transB=1, alpha=1.5)], {"a": a}, inits={"b": b})
    check([node("Gemm", ["a", "b", "c"], transB=1)], {"a": a},
          inits={"b": b, "c": np.float32(0.7)})
    check([node("Einsum", ["a", "b"], equation="ij,kj->ik")], {"a": a, "b": b}, opset=12)


# ---------------------------------------------------------------------- convolution
CONV_CASES = [
    {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0, 1, 2, 1]},          # asymmetric
    {"kernel_shape": [3, 2], "dilations": [2, 1], "pads": [2, 0, 2, 1]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"},
    {"kernel_shape": [4, 4], "strides": [3, 2], "auto_pad": "SAME_LOWER"},
    {"kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "SAME_UPPER"},
    {"kernel_shape": [3, 3], "auto_pad": "VALID", "strides": [1, 2]},
    {"kernel_shape": [3, 3], "group": 2, "pads": [1, 1, 1, 1]},
    {"kernel_shape": [5, 5], "group": 4, "pads": [2, 2, 2, 2], "strides": [2, 2]},  # depthwise
]


@pytest.mark.parametrize("attrs", CONV_CASES)
def test_conv(attrs):
    g = attrs.get("group", 1)
    k = attrs["kernel_shape"]
    w = randn(4, 4 // g, *k, seed=1)
    check([node("Conv", ["x", "w", "b"], **attrs)], {"x": randn(2, 4, 9, 8)},
          inits={"w": w, "b": randn(4, seed=2)})


def test_conv_1d_and_no_bias():
    check([node("Conv", ["x", "w"], kernel_shape=[3], pads=[2, 1], strides=[2])],
          {"x": randn(2, 3, 11)}, inits={"w": randn(5, 3, 3, seed=1)})
    check([node("Conv", ["x", "w"])], {"x": randn(1, 3, 6, 6)},
          inits={"w": randn(2, 3, 1, 1, seed=1)})


CONVT_CASES = [
    {"strides": [2, 2]},
    {"strides": [2, 2], "pads": [1, 0, 0, 1], "output_padding": [1, 1]},
    {"strides": [3, 2], "pads": [1, 1, 1, 1], "output_padding": [2, 1]},
    {"strides": [2, 2], "output_shape": [10, 11]},
    {"strides": [2, 2], "output_shape": [9, 8]},
    {"strides": [2, 2], "output_shape": [10, 11], "auto_pad": "SAME_UPPER"},
    {"strides": [2, 2], "auto_pad": "SAME_UPPER"},
    {"strides": [2, 2], "auto_pad": "SAME_LOWER"},
    {"strides": [1, 1], "dilations": [2, 2], "pads": [1, 2, 2, 1]},
    {"strides": [2, 2], "group": 2, "pads": [1, 1, 1, 1]},
]


@pytest.mark.parametrize("attrs", CONVT_CASES)
def test_conv_transpose(attrs):
    g = attrs.get("group", 1)
    check([node("ConvTranspose", ["x", "w", "b"], kernel_shape=[3, 3], **attrs)],
          {"x": randn(2, 4, 4, 5)}, inits={"w": randn(4, 6 // g, 3, 3, seed=1),
                                           "b": randn(6, seed=2)})


def test_conv_transpose_1d():
    check([node("ConvTranspose", ["x", "w"], strides=[2], pads=[1, 0], output_padding=[1])],
          {"x": randn(1, 3, 5)}, inits={"w": randn(3, 2, 4, seed=1)})


# ---------------------------------------------------------------------- pooling
POOL_CASES = [
    {"kernel_shape": [2, 2], "strides": [2, 2]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
    {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1},
    {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [0, 1, 2, 0]},
    {"kernel_shape": [2, 2], "strides": [1, 1], "auto_pad": "SAME_UPPER"},
    {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_LOWER"},
    {"kernel_shape": [3, 3], "strides": [3, 3], "pads": [2, 2, 2, 2]},             # pad > k/2
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1},
]


@pytest.mark.parametrize("attrs", POOL_CASES)
def test_max_pool(attrs):
    x = randn(2, 3, 9, 8)
    check([node("MaxPool", ["x"], **attrs)], {"x": x})
    check([node("MaxPool", ["x"], ["y", "i"], **attrs)], {"x": x}, ["y", ("i", I64)])


def test_max_pool_dilation_1d():
    x = randn(2, 3, 10, 9)
    check([node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2, 3], dilations=[2, 2],
                strides=[1, 2], pads=[1, 0, 1, 2])], {"x": x}, ["y", ("i", I64)])
    check([node("MaxPool", ["x"], kernel_shape=[3], strides=[2], pads=[1, 1])],
          {"x": randn(2, 3, 10)})


@pytest.mark.parametrize("include", [0, 1])
@pytest.mark.parametrize("attrs", POOL_CASES)
def test_average_pool(attrs, include):
    check([node("AveragePool", ["x"], count_include_pad=include, **attrs)],
          {"x": randn(2, 3, 9, 8)})


def test_average_pool_1d_and_global():
    check([node("AveragePool", ["x"], kernel_shape=[3], pads=[1, 0], count_include_pad=1)],
          {"x": randn(2, 3, 10)})
    for op in ("GlobalAveragePool", "GlobalMaxPool"):
        check([node(op, ["x"])], {"x": randn(2, 3, 5, 4)})


def test_max_unpool_after_max_pool():
    nodes = [node("MaxPool", ["x"], ["p", "i"], kernel_shape=[2, 2], strides=[2, 2]),
             node("MaxUnpool", ["p", "i"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    check(nodes, {"x": randn(2, 3, 6, 8)}, opset=11)
    nodes[1] = node("MaxUnpool", ["p", "i", "s"], ["y"], kernel_shape=[2, 2], strides=[2, 2])
    check(nodes, {"x": randn(2, 3, 7, 9)}, inits={"s": np.array([2, 3, 7, 9])}, opset=11)


# ---------------------------------------------------------------------- normalisation
def test_batch_norm_and_friends():
    x = randn(2, 3, 4, 5)
    bn = {"s": randn(3, seed=1), "b": randn(3, seed=2), "m": randn(3, seed=3),
          "v": np.abs(randn(3, seed=4)) + 0.5}
    check([node("BatchNormalization", ["x", "s", "b", "m", "v"], epsilon=1e-3)], {"x": x},
          inits=bn, opset=15)
    check([node("BatchNormalization", ["x", "s", "b", "m", "v"], momentum=0.8)], {"x": x},
          inits=bn, opset=9)
    check([node("InstanceNormalization", ["x", "s", "b"], epsilon=1e-4)], {"x": x},
          inits={"s": bn["s"], "b": bn["b"]})
    check([node("LayerNormalization", ["x", "s", "b"], axis=-2)], {"x": x},
          inits={"s": randn(4, 5, seed=5), "b": randn(5, seed=6)}, opset=17)
    check([node("LayerNormalization", ["x", "s"], ["y", "mean", "inv"], axis=1)], {"x": x},
          ["y", "mean", "inv"], inits={"s": randn(3, 4, 5, seed=5)}, opset=17)
    check([node("LRN", ["x"], size=3, alpha=1e-2, beta=0.6, bias=1.5)], {"x": x})
    check([node("LRN", ["x"], size=5)], {"x": randn(1, 7, 3, 2)})


# ---------------------------------------------------------------------- resize
CTMS = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
        "tf_half_pixel_for_nn"]
NEAREST = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
SCALES = [(2.0, 2.0), (1.5, 0.6), (0.5, 3.0), (1.0, 1.7)]


@pytest.mark.parametrize("ctm", CTMS)
@pytest.mark.parametrize("nearest", NEAREST)
def test_resize_nearest_scales(ctm, nearest):
    x = randn(1, 2, 5, 6)
    for sh, sw in SCALES:
        check([node("Resize", ["x", "", "s"], mode="nearest", nearest_mode=nearest,
                    coordinate_transformation_mode=ctm)], {"x": x},
              inits={"s": np.array([1, 1, sh, sw], np.float32)})


@pytest.mark.parametrize("ctm", CTMS[:4])
def test_resize_linear_scales_and_sizes(ctm):
    x = randn(2, 3, 5, 6)
    for sh, sw in SCALES:
        check([node("Resize", ["x", "", "s"], mode="linear",
                    coordinate_transformation_mode=ctm)], {"x": x},
              inits={"s": np.array([1, 1, sh, sw], np.float32)})
    for size in ([2, 3, 7, 4], [2, 3, 1, 9], [2, 3, 10, 12]):
        check([node("Resize", ["x", "", "", "z"], mode="linear",
                    coordinate_transformation_mode=ctm)], {"x": x},
              inits={"z": np.array(size, np.int64)})


def test_resize_sizes_nearest_dynamic_and_other_axes():
    x = randn(1, 3, 4, 6)
    for size in ([1, 3, 9, 5], [1, 3, 3, 13], [2, 3, 4, 6]):
        check([node("Resize", ["x", "", "", "z"], mode="nearest")], {"x": x},
              inits={"z": np.array(size, np.int64)})
    # sizes from the input's own shape (x2): a Shape chain feeding Resize
    nodes = [node("Shape", ["x"], ["s"]), node("Mul", ["s", "two"], ["z"]),
             node("Resize", ["x", "", "", "z"], ["y"], mode="nearest",
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor")]
    check(nodes, {"x": x}, inits={"two": np.array([1, 1, 2, 2])})
    check([node("Resize", ["x", "", "s"], mode="linear")], {"x": randn(2, 5, 4)},
          inits={"s": np.array([1, 1.5, 2], np.float32)})


def test_resize_opset_10_18_19_and_upsample():
    x = randn(1, 2, 4, 5)
    for mode in ("nearest", "linear"):
        for scales in ([1, 1, 2, 3], [1, 1, 0.5, 0.6], [1, 1, 1.5, 1.3]):
            check([node("Resize", ["x", "s"], mode=mode)], {"x": x},
                  inits={"s": np.array(scales, np.float32)}, opset=10)
        check([node("Upsample", ["x", "s"], mode=mode)], {"x": x},
              inits={"s": np.array([1, 1, 2, 1.5], np.float32)}, opset=9)
    check([node("Upsample", ["x"], mode="nearest", scales=[1.0, 1.0, 2.0, 3.0])], {"x": x},
          opset=7)
    check([node("Resize", ["x", "", "", "z"], mode="linear", axes=[3, 2])], {"x": x},
          inits={"z": np.array([7, 3])}, opset=18)
    for policy in ("not_larger", "not_smaller"):
        check([node("Resize", ["x", "", "", "z"], mode="nearest", axes=[2, 3],
                    keep_aspect_ratio_policy=policy)], {"x": x},
              inits={"z": np.array([7, 7])}, opset=18)
    check([node("Resize", ["x", "", "s"], mode="linear",
                coordinate_transformation_mode="half_pixel_symmetric")], {"x": x},
          inits={"s": np.array([1, 1, 1.7, 0.6], np.float32)}, opset=19)


# ---------------------------------------------------------------------- detection
@pytest.mark.parametrize("ctm", ["half_pixel", "output_half_pixel"])
@pytest.mark.parametrize("ratio", [0, 2])
def test_roi_align(ctm, ratio):
    x = randn(2, 3, 10, 12)
    rois = np.array([[0.5, 1.2, 6.3, 7.9], [2.0, 0.0, 11.0, 9.5], [3.1, 3.3, 3.6, 3.9],
                     [-1.0, 2.0, 4.0, 12.0]], np.float32)
    bi = np.array([0, 1, 1, 0], np.int64)
    check([node("RoiAlign", ["x", "r", "b"], output_height=3, output_width=2,
                sampling_ratio=ratio, spatial_scale=0.9,
                coordinate_transformation_mode=ctm)], {"x": x, "r": rois, "b": bi}, opset=16)


def test_roi_align_opset_10_default():
    x = randn(1, 2, 8, 8)
    rois = np.array([[0.5, 1.2, 6.3, 7.9], [2.0, 0.0, 2.2, 0.3]], np.float32)
    check([node("RoiAlign", ["x", "r", "b"], output_height=2, output_width=2)],
          {"x": x, "r": rois, "b": np.zeros(2, np.int64)}, opset=10)


@pytest.mark.parametrize("center", [0, 1])
def test_non_max_suppression(center):
    rng = _rng(5)
    xy = rng.uniform(0, 20, (2, 30, 2))
    wh = rng.uniform(2, 10, (2, 30, 2))
    if center:
        boxes = np.concatenate([xy, wh], -1)
    else:   # [y1, x1, y2, x2], some with the corners swapped
        boxes = np.concatenate([xy[..., ::-1], (xy + wh)[..., ::-1]], -1)
        boxes[:, ::3] = boxes[:, ::3][..., [2, 3, 0, 1]]
    scores = rng.permutation(2 * 3 * 30).reshape(2, 3, 30).astype(np.float32) / 180
    feeds = {"b": boxes.astype(np.float32), "s": scores}
    for k, iou, thr in ((5, 0.3, 0.2), (100, 0.5, None), (0, 0.5, None), (3, 0.0, 0.9)):
        inits = {"k": np.array([k]), "iou": np.array([iou], np.float32)}
        ins = ["b", "s", "k", "iou"]
        if thr is not None:
            inits["thr"] = np.array([thr], np.float32)
            ins.append("thr")
        check([node("NonMaxSuppression", ins, center_point_box=center)], feeds,
              [("y", I64)], inits=inits, opset=11)
    check([node("NonMaxSuppression", ["b", "s"])], feeds, [("y", I64)], opset=11)


# ---------------------------------------------------------------------- constants, errors
def test_constant_nodes_and_parameters():
    w = numpy_helper.from_array(randn(3, 4, seed=1), "w")
    nodes = [node("Constant", [], ["w"], value=w), node("Constant", [], ["half"],
                                                         value_float=0.5),
             node("MatMul", ["x", "w"], ["m"]), node("Mul", ["m", "half"], ["y"])]
    check(nodes, {"x": randn(2, 3)})
    net = convert(model(nodes, {"x": randn(2, 3)}, ["y"]))
    assert [k for k, _ in net.named_parameters()] == ["w"]


def test_state_dict_uses_onnx_names_nested():
    inits = {"layer1.0.conv.weight": randn(2, 3, 3, 3), "layer1.0.conv.bias": randn(2),
             "fc.weight": randn(4, 2), "onnx::Mul_7": np.float32(2.0)}
    nodes = [node("Conv", ["x", "layer1.0.conv.weight", "layer1.0.conv.bias"], ["c"],
                  pads=[1, 1, 1, 1]),
             node("GlobalAveragePool", ["c"], ["p"]), node("Flatten", ["p"], ["f"]),
             node("Gemm", ["f", "fc.weight"], ["g"], transB=1),
             node("Mul", ["g", "onnx::Mul_7"], ["y"])]
    m = model(nodes, {"x": randn(1, 3, 5, 5)}, ["y"], inits)
    net = convert(m)
    assert sorted(net.state_dict()) == ["fc.weight", "layer1.0.conv.bias",
                                        "layer1.0.conv.weight"]
    before = net(randn(1, 3, 5, 5)).numpy()
    sd = net.state_dict()
    sd["fc.weight"] = sd["fc.weight"].numpy() * 2
    net.load_state_dict(sd)
    np.testing.assert_allclose(net(randn(1, 3, 5, 5)).numpy(), before * 2, rtol=1e-5)


def test_gradients_reach_parameters():
    """d loss / d weight of an imported Conv-BN-Relu-Gemm net equals finite differences."""
    rng = _rng(3)
    f64 = TensorProto.DOUBLE
    inits = {"w": rng.standard_normal((4, 2, 3, 3)), "s": rng.standard_normal(4),
             "b": rng.standard_normal(4), "m": rng.standard_normal(4),
             "v": rng.uniform(0.5, 2, 4), "fc": rng.standard_normal((3, 4)),
             "fb": rng.standard_normal(3)}
    nodes = [node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             node("BatchNormalization", ["c", "s", "b", "m", "v"], ["n"]),
             node("Relu", ["n"], ["r"]), node("GlobalAveragePool", ["r"], ["p"]),
             node("Flatten", ["p"], ["f"]), node("Gemm", ["f", "fc", "fb"], ["y"], transB=1)]
    x = rng.standard_normal((2, 2, 5, 5))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", f64, x.shape)],
                          [helper.make_tensor_value_info("y", f64, None)],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    net = convert(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)],
                                    ir_version=8))
    target = rng.standard_normal((2, 3))
    loss = ((net(x) - sv.tensor(target)) ** 2).sum()
    loss.backward()
    params = dict(net.named_parameters())
    assert set(params) == {"w", "s", "b", "fc", "fb"}
    assert all(p.grad is not None for p in params.values())
    assert "m" in dict(net.named_buffers()) and "v" in dict(net.named_buffers())
    for name, index in (("w", (1, 0, 2, 1)), ("s", (2,)), ("fc", (0, 3))):
        p = params[name]
        old = float(p.data[index])
        vals = []
        for eps in (1e-6, -1e-6):
            p.data[index] = old + eps
            with sv.no_grad():
                vals.append(float(((net(x) - sv.tensor(target)) ** 2).sum().item()))
        p.data[index] = old
        numeric = (vals[0] - vals[1]) / 2e-6
        assert abs(float(p.grad.numpy()[index]) - numeric) < 1e-5 * max(1, abs(numeric))


UNSUPPORTED = [
    (node("Foo", ["x"]), 13, "operator 'Foo' is not supported"),
    (node("Resize", ["x", "", "s"], mode="cubic"), 13, "mode"),
    (node("Resize", ["x", "", "s"], coordinate_transformation_mode="tf_crop_and_resize"),
     13, "coordinate_transformation_mode"),
    (node("Resize", ["x", "", "s"], antialias=1), 18, "antialias"),
    (node("RoiAlign", ["x", "r", "b"], mode="max"), 16, "mode"),
    (node("Conv", ["x", "w"], kernel_shape=[3, 3, 3]), 13, "kernel_shape"),
    (node("AveragePool", ["x"], kernel_shape=[2, 2], dilations=[2, 2]), 19, "dilations"),
    (node("Relu", ["x"], foo=1), 13, "foo"),
    (node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2, 2], storage_order=1), 13,
     "storage_order"),
    (node("BatchNormalization", ["x", "s", "b", "m", "v"], training_mode=1), 15,
     "training_mode"),
    (node("Conv", ["x", "w"], auto_pad="SOMETIMES"), 13, "auto_pad"),
]


@pytest.mark.parametrize("bad,opset,attr", UNSUPPORTED, ids=[u[2] for u in UNSUPPORTED])
def test_unsupported_fails_at_convert_time(bad, opset, attr):
    bad.name = "the_node"
    g = helper.make_graph([bad], "g", [helper.make_tensor_value_info(i, F32, None)
                                       for i in bad.input if i],
                          [helper.make_tensor_value_info(o, F32, None) for o in bad.output])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    with pytest.raises(OnnxConversionError) as e:
        convert(m)
    msg = str(e.value)
    assert bad.op_type in msg and "the_node" in msg and attr in msg


def test_other_domains_and_control_flow_refused():
    custom = helper.make_node("Gelu", ["x"], ["y"], domain="com.microsoft", name="fused")
    g = helper.make_graph([custom], "g", [helper.make_tensor_value_info("x", F32, None)],
                          [helper.make_tensor_value_info("y", F32, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid("com.microsoft", 1)])
    with pytest.raises(OnnxConversionError, match="com.microsoft"):
        convert(m)
    branch = helper.make_graph([node("Identity", ["x"], ["z"])], "b", [],
                               [helper.make_tensor_value_info("z", F32, None)])
    iff = helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)
    g = helper.make_graph([iff], "g", [helper.make_tensor_value_info("c", BOOL, [])],
                          [helper.make_tensor_value_info("y", F32, None)])
    with pytest.raises(OnnxConversionError, match="subgraph"):
        convert(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))


def test_inputs_bytes_and_path(tmp_path):
    m = model([node("Relu", ["x"])], {"x": randn(2, 2)}, ["y"])
    path = tmp_path / "relu.onnx"
    onnx.save(m, str(path))
    x = randn(2, 2)
    for source in (m, m.SerializeToString(), str(path), path):
        np.testing.assert_array_equal(convert(source)(x).numpy(), np.maximum(x, 0))
    with pytest.raises(TypeError, match="2 inputs|takes 1"):
        convert(m)(x, x)


@pytest.mark.gpu
def test_gpu_matches_cpu():
    nodes = [node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[0, 1, 1, 0]),
             node("Resize", ["c", "", "s"], ["r"], mode="nearest",
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
             node("Shape", ["r"], ["sh"]), node("Gather", ["sh", "i"], ["h"]),
             node("Cast", ["h"], ["hf"], to=F32), node("Mul", ["r", "hf"], ["y"])]
    inits = {"w": randn(4, 3, 3, 3), "b": randn(4), "s": np.array([1, 1, 2, 1.5], np.float32),
             "i": np.array(2)}
    x = randn(2, 3, 6, 7)
    m = model(nodes, {"x": x}, ["y"], inits)
    ref = run_ort(m, {"x": x})[0]
    net = convert(m).to("cuda")
    out = net(x)
    assert out.device == "cuda"
    assert float(np.abs(out.numpy() - ref).max()) <= 1e-4
