"""NNAPI rules (eps/nnapi/) against nnapi-support.md and ORT's nnapi_builtin sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from models import conv_bn_relu, dynamic_cnn, if_subgraph
from ortprep.core.graph import Graph
from ortprep.core.inputs import open_model
from ortprep.core.onnx_view import model_view
from ortprep.eps import nnapi
from ortprep.eps.base import EpOptions, NodeContext
from ortprep.eps.partition import node_units

F, U8, I8, I32, I64 = (
    TensorProto.FLOAT,
    TensorProto.UINT8,
    TensorProto.INT8,
    TensorProto.INT32,
    TensorProto.INT64,
)

# --------------------------------------------------------------------------- helpers


def vi(name: str, elem: int, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def const(name: str, value, dtype=None) -> TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def build(nodes, inputs, outputs, inits=(), opset: int = 17, infer: bool = True) -> Graph:
    model = helper.make_model(
        helper.make_graph(nodes, "t", inputs, outputs, list(inits)),
        opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("com.microsoft", 1)],
    )
    model.ir_version = 8
    if infer:
        model = onnx.shape_inference.infer_shapes(model)
    return model_view(model, Path("t.onnx")).graph


def single(op: str, inputs, outputs, inits=(), opset: int = 17, **attrs) -> Graph:
    """A one-node graph; the node is named 'n' and reads the graph inputs/initializers given."""
    names_in = [v.name if isinstance(v, onnx.ValueInfoProto) else v for v in inputs]
    node = helper.make_node(op, names_in, [o.name for o in outputs], name="n", **attrs)
    graph_inputs = [v for v in inputs if isinstance(v, onnx.ValueInfoProto)]
    return build([node], graph_inputs, outputs, inits, opset)


def verdict(g: Graph, name: str = "n", api: int = 31) -> str | None:
    node = next(n for n in g.nodes if n.name == name)
    return nnapi.check_node(NodeContext(g, node, EpOptions(android_api=api)))


def supported(g: Graph, name: str = "n", api: int = 31) -> bool:
    return verdict(g, name, api) is None


def x4(shape=(1, 3, 8, 8), elem=F, name="x"):
    return vi(name, elem, list(shape))


def y_any(name="y", elem=F):
    return helper.make_tensor_value_info(name, elem, None)


def conv(w_shape=(4, 3, 3, 3), x_shape=(1, 3, 8, 8), weight_const=True, **attrs) -> Graph:
    w = const("w", np.ones(w_shape, np.float32))
    inputs = [x4(x_shape)]
    inits = [w]
    if not weight_const:
        inputs.append(vi("w", F, list(w_shape)))
        inits = []
    return single("Conv", [*inputs, "w"] if weight_const else inputs, [y_any()], inits, **attrs)


def qdq_unit(target: str, *, x_elem=U8, per_channel=False, y_scale=0.05, y_zp=128, **attrs):
    """x -> DQ -> target -> Q -> y; Conv/MatMul get an int8 weight DQ, Add a second input."""
    xz = np.uint8(128) if x_elem == U8 else np.int8(0)
    yz = np.uint8(y_zp) if x_elem == U8 else np.int8(0)
    inits = [
        const("sx", np.float32(0.02)),
        const("zx", xz),
        const("sy", np.float32(y_scale)),
        const("zy", yz),
    ]
    nodes = [helper.make_node("DequantizeLinear", ["x", "sx", "zx"], ["xf"], name="dq_x")]
    ins = ["xf"]
    if target == "Conv":
        sw = np.full(4, 0.1, np.float32) if per_channel else np.float32(0.1)
        zw = np.zeros(4, np.int8) if per_channel else np.int8(0)
        inits += [const("w", np.ones((4, 3, 3, 3), np.int8)), const("sw", sw), const("zw", zw)]
        nodes.append(
            helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wf"], name="dq_w", axis=0)
        )
        ins.append("wf")
    elif target == "Add":
        nodes.append(
            helper.make_node("DequantizeLinear", ["x2", "sx", "zx"], ["x2f"], name="dq_x2")
        )
        ins.append("x2f")
    nodes.append(helper.make_node(target, ins, ["yf"], name="n", **attrs))
    nodes.append(helper.make_node("QuantizeLinear", ["yf", "sy", "zy"], ["y"], name="q_y"))
    inputs = [x4(elem=x_elem)]
    if target == "Add":
        inputs.append(x4(elem=x_elem, name="x2"))
    return build(nodes, inputs, [y_any(elem=x_elem)], inits)


# --------------------------------------------------------------------------- EP-wide rules


def test_nnapi_takes_the_float_cnn_fixture_as_one_partition():
    g = model_view(onnx.shape_inference.infer_shapes(conv_bn_relu()), Path("m.onnx")).graph
    assert all(supported(g, n.name) for n in g.nodes)
    parts = nnapi.partitions(g)
    assert len(parts) == 1 and len(parts[0]) == len(g.nodes)


def test_nnapi_partitions_an_ort_file_whose_nodes_were_saved_on_the_cpu_ep(tmp_path):
    """An .ort file records CPUExecutionProvider on every node; ORT drops that at load."""
    from models import save
    from ortprep.core.runtime import SessionRecipe, create_session

    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    target = tmp_path / "cnn.with_runtime_opt.ort"
    recipe = SessionRecipe(
        save_to=target, save_format="ORT", minimal_build_optimizations="save", level="all"
    )
    create_session(src, recipe)
    g = open_model(target).graph
    assert {n.execution_provider for n in g.nodes} == {"CPUExecutionProvider"}
    parts = nnapi.partitions(g)
    assert len(parts) == 1 and len(parts[0]) == len(g.nodes)


def test_nnapi_refuses_dynamic_batch():
    g = model_view(onnx.shape_inference.infer_shapes(dynamic_cnn()), Path("m.onnx")).graph
    assert verdict(g, "conv1") == "input 'x' has dynamic dimension 'N'; NNAPI needs fixed shapes"
    assert nnapi.partitions(g) == []


def test_nnapi_refuses_input_without_shape():
    g = single("Relu", [vi("x", F, None)], [y_any()])
    assert verdict(g) == "input 'x' has no known shape; NNAPI needs fixed shapes"


def test_nnapi_refuses_unknown_dimension():
    g = single("Relu", [vi("x", F, [1, None])], [y_any()])
    assert "unknown dimension at axis 1" in verdict(g)


def test_nnapi_refuses_non_float_input():
    g = single("Relu", [x4(elem=I64)], [y_any(elem=I64)])
    assert verdict(g) == "Relu: input 'x' is int64; NNAPI takes float32 here"


def test_nnapi_refuses_op_without_builder():
    g = single("Erf", [x4()], [y_any()])
    assert verdict(g) == "NNAPI has no builder for ai.onnx:Erf"


def test_nnapi_refuses_layer_normalization():
    g = single(
        "LayerNormalization",
        [x4(), "s", "b"],
        [y_any()],
        [const("s", np.ones(8, np.float32)), const("b", np.zeros(8, np.float32))],
    )
    assert "no builder" in verdict(g)


def test_nnapi_takes_nothing_below_api_27():
    g = single("Relu", [x4()], [y_any()])
    assert "Android API 27 or newer" in verdict(g, api=26)
    assert nnapi.partitions(g, EpOptions(android_api=26)) == []


def test_nnapi_never_takes_subgraph_nodes():
    g = model_view(onnx.shape_inference.infer_shapes(if_subgraph()), Path("m.onnx")).graph
    iff = next(n for n in g.nodes if n.op_type == "If")
    sub = iff.subgraphs["then_branch"]
    for node in sub.nodes:
        reason = nnapi.check_node(NodeContext(sub, node))
        assert reason == "nodes inside If/Loop/Scan bodies are never taken by NNAPI"
    assert nnapi.partitions(sub) == []
    assert "no builder" in verdict(g, "if")
    assert not nnapi.SPEC.takes_subgraph_nodes


def test_nnapi_refuses_external_data_initializer(tmp_path):
    w = np.ones((4, 3, 3, 3), np.float32)
    model = helper.make_model(
        helper.make_graph(
            [helper.make_node("Conv", ["x", "w"], ["y"], name="n")],
            "t",
            [x4()],
            [vi("y", F, [1, 4, 6, 6])],
            [const("w", w)],
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model.ir_version = 8
    path = tmp_path / "ext.onnx"
    onnx.save(model, str(path), save_as_external_data=True, location="w.bin", size_threshold=0)
    g = open_model(path).graph
    assert "stored as external data" in verdict(g)


def test_nnapi_skips_absent_optional_inputs_in_the_shape_check():
    g = single("Clip", [x4(), "", "hi"], [y_any()], [const("hi", np.float32(6))])
    # Clip(x, "", 6) has min = -FLT_MAX: the input is fine, the range is what fails
    assert verdict(g).startswith("Clip: range (")


# --------------------------------------------------------------------------- activations


def test_nnapi_supports_batchnormalization():
    c = 3
    inits = [const(n, np.ones(c, np.float32)) for n in ("s", "b", "m", "v")]
    g = single("BatchNormalization", [x4(), "s", "b", "m", "v"], [y_any()], inits)
    assert supported(g, api=27)


def test_nnapi_refuses_batchnormalization_with_non_constant_mean():
    inits = [const(n, np.ones(3, np.float32)) for n in ("s", "b", "v")]
    g = single("BatchNormalization", [x4(), "s", "b", vi("m", F, [3]), "v"], [y_any()], inits)
    assert verdict(g) == (
        "BatchNormalization: mean 'm' is not a constant initializer; NNAPI needs it constant"
    )


def test_nnapi_supports_leakyrelu():
    g = single("LeakyRelu", [x4()], [y_any()], alpha=0.1)
    assert supported(g, api=27)


def test_nnapi_refuses_rank_5_sigmoid():
    g = single("Sigmoid", [x4((1, 1, 2, 2, 2))], [y_any()])
    assert verdict(g) == "Sigmoid: input 'x' has rank 5; NNAPI takes rank 1 to 4"


@pytest.mark.parametrize(
    ("lo", "hi", "ok"), [(0.0, 6.0, True), (-1.0, 1.0, True), (0.0, 1.0, False)]
)
def test_nnapi_clip_maps_only_to_relu6_or_relu1(lo, hi, ok):
    g = single(
        "Clip",
        [x4(), "lo", "hi"],
        [y_any()],
        [const("lo", np.float32(lo)), const("hi", np.float32(hi))],
    )
    assert supported(g) is ok


def test_nnapi_refuses_clip_with_non_constant_max():
    g = single("Clip", [x4(), "lo", vi("hi", F, [])], [y_any()], [const("lo", np.float32(0))])
    assert verdict(g) == "Clip: max 'hi' is not a constant initializer; NNAPI needs it"


@pytest.mark.parametrize(
    ("op", "fl_api"),
    [("Abs", 29), ("Exp", 29), ("Sqrt", 29), ("Elu", 30), ("Relu", 27), ("Tanh", 27)],
)
def test_nnapi_feature_level_gates_unary_ops(op, fl_api):
    g = single(op, [x4()], [y_any()])
    assert supported(g, api=fl_api)
    if fl_api > 27:
        assert verdict(g, api=fl_api - 1) == (
            f"{op} needs NNAPI feature level {fl_api - 26} (Android API {fl_api}); the target is "
            f"API {fl_api - 1}"
        )


def test_nnapi_pow_needs_api_29_and_float_exponent():
    g = single("Pow", [x4(), "e"], [y_any()], [const("e", np.float32(2))])
    assert not supported(g, api=28) and supported(g, api=29)
    g_int = single("Pow", [x4(), "e"], [y_any()], [const("e", np.int64(2))])
    assert verdict(g_int) == "Pow: input 'e' is int64; NNAPI takes float32 here"


def test_nnapi_sub_needs_api_28_and_add_api_27():
    sub = single("Sub", [x4(), x4(name="x2")], [y_any()])
    add = single("Add", [x4(), x4(name="x2")], [y_any()])
    assert not supported(sub, api=27) and supported(sub, api=28)
    assert supported(add, api=27)


def test_nnapi_refuses_rank_5_add():
    g = single("Add", [x4((1, 1, 1, 2, 2)), x4((1, 1, 1, 2, 2), name="x2")], [y_any()])
    assert verdict(g) == "Add: input 'x' has rank 5; NNAPI takes rank 4 or less"


def test_nnapi_refuses_min_with_three_inputs():
    g = single("Min", [x4(), x4(name="b"), x4(name="c")], [y_any()])
    assert verdict(g) == "Min: 3 inputs; NNAPI takes exactly 2"


def test_nnapi_cast_only_to_float_or_int32():
    assert supported(single("Cast", [x4()], [y_any(elem=I32)], to=I32))
    g = single("Cast", [x4()], [y_any(elem=I64)], to=I64)
    assert verdict(g) == "Cast: target type int64; NNAPI casts only to float32 or int32"


# --------------------------------------------------------------------------- conv / pool


def test_nnapi_supports_2d_conv():
    assert supported(conv(), api=28)


def test_nnapi_conv_needs_api_28():
    assert verdict(conv(), api=27) == (
        "Conv needs NNAPI feature level 2 (Android API 28); the target is API 27"
    )


def test_nnapi_refuses_3d_conv():
    g = conv(w_shape=(4, 3, 3, 3, 3), x_shape=(1, 3, 8, 8, 8))
    assert verdict(g) == "Conv: 3D convolution (weight rank 5); NNAPI takes 2D convolution only"


def test_nnapi_refuses_conv_with_non_constant_weight():
    g = conv(weight_const=False)
    assert verdict(g) == ("Conv: weight 'w' is not a constant initializer; NNAPI needs it constant")


def test_nnapi_dilated_conv_needs_api_29():
    g = conv(dilations=[2, 2])
    assert "dilated convolution needs NNAPI feature level 3" in verdict(g, api=28)
    assert supported(g, api=29)


def test_nnapi_refuses_dilated_grouped_conv():
    g = conv(w_shape=(4, 3, 3, 3), x_shape=(1, 6, 8, 8), group=2, dilations=[2, 2])
    assert "grouped convolution" in verdict(g)


def test_nnapi_refuses_maxpool_ceil_mode():
    g = single("MaxPool", [x4()], [y_any()], kernel_shape=[2, 2], ceil_mode=1)
    assert verdict(g) == "MaxPool: ceil_mode=1 is not supported by NNAPI"


def test_nnapi_refuses_maxpool_with_indices_output():
    g = single("MaxPool", [x4()], [y_any(), y_any("idx", I64)], kernel_shape=[2, 2])
    assert verdict(g) == "MaxPool: a second (Indices) output is not supported by NNAPI"


def test_nnapi_refuses_average_pool_counting_pads():
    g = single("AveragePool", [x4()], [y_any()], kernel_shape=[2, 2], count_include_pad=1)
    assert verdict(g) == "AveragePool: count_include_pad=1 is not supported by NNAPI"


def test_nnapi_refuses_global_pool_on_rank_3():
    g = single("GlobalAveragePool", [x4((1, 3, 8))], [y_any()])
    assert verdict(g) == "GlobalAveragePool: input 'x' has rank 3; NNAPI takes rank 4"


# --------------------------------------------------------------------------- gemm / matmul


def gemm(a_shape=(2, 8), **attrs) -> Graph:
    inits = [const("b", np.ones((8, 4), np.float32)), const("c", np.zeros(4, np.float32))]
    return single("Gemm", [vi("a", F, list(a_shape)), "b", "c"], [y_any()], inits, **attrs)


def test_nnapi_supports_plain_gemm():
    assert supported(gemm(), api=27)


@pytest.mark.parametrize("attrs", [{"transA": 1}, {"alpha": 2.0}, {"beta": 0.5}])
def test_nnapi_refuses_gemm_with_transposed_a_or_scaling(attrs):
    g = gemm((8, 2), **attrs) if "transA" in attrs else gemm(**attrs)
    assert "NNAPI takes only transA=0, alpha=1, beta=1" in verdict(g)


def test_nnapi_refuses_gemm_bias_of_wrong_length():
    inits = [const("b", np.ones((8, 4), np.float32)), const("c", np.zeros(3, np.float32))]
    g = build(
        [helper.make_node("Gemm", ["a", "b", "c"], ["y"], name="n")],
        [vi("a", F, [2, 8])],
        [vi("y", F, [2, 4])],
        inits,
        infer=False,
    )
    assert verdict(g) == "Gemm: C has 3 values but N is 4; NNAPI needs C to be a vector of N"


def test_nnapi_matmul_needs_constant_b_unless_batched():
    g2d = single("MatMul", [vi("a", F, [2, 8]), vi("b", F, [8, 4])], [y_any()])
    assert "not a constant initializer" in verdict(g2d)
    g3d = single("MatMul", [vi("a", F, [2, 3, 8]), vi("b", F, [2, 8, 4])], [y_any()])
    assert supported(g3d, api=29)
    assert verdict(g3d, api=28) == "MatMul: input A 'a' has rank 3; NNAPI takes 2D A"


# --------------------------------------------------------------------------- shape ops


def test_nnapi_refuses_reshape_with_non_constant_shape():
    g = single("Reshape", [x4(), vi("s", I64, [2])], [y_any()])
    assert "NNAPI needs a constant target shape" in verdict(g)


def test_nnapi_drops_a_lone_reshape_partition():
    g = single("Reshape", [x4(), "s"], [y_any()], [const("s", np.array([1, -1], np.int64))])
    assert supported(g)
    assert nnapi.partitions(g) == []
    [(group, reason)] = nnapi.groups(g)
    assert [n.name for n in group] == ["n"]
    assert reason == (
        "a partition made of a single Reshape only copies data; NNAPI leaves it to the CPU"
    )


def test_nnapi_keeps_identity_next_to_other_work():
    nodes = [
        helper.make_node("Identity", ["x"], ["i"], name="id"),
        helper.make_node("Relu", ["i"], ["y"], name="relu"),
    ]
    g = build(nodes, [x4()], [y_any()])
    assert [[n.name for n in p] for p in nnapi.partitions(g)] == [["id", "relu"]]


def test_nnapi_drops_a_partition_whose_inputs_are_all_constant():
    g = build(
        [helper.make_node("Relu", ["c"], ["y"], name="n")],
        [],
        [y_any()],
        [const("c", np.ones((1, 4), np.float32))],
    )
    assert supported(g)
    assert nnapi.partitions(g) == []


def test_nnapi_refuses_squeeze_with_non_constant_axes():
    g = single("Squeeze", [x4((1, 3, 1, 8)), vi("axes", I64, [1])], [y_any()])
    assert verdict(g) == (
        "Squeeze: axes 'axes' is not a constant initializer; NNAPI needs it constant"
    )


@pytest.mark.parametrize(("sizes", "ok"), [([4, 4], True), ([5, 3], False)])
def test_nnapi_split_only_in_equal_parts(sizes, ok):
    g = single(
        "Split",
        [x4((1, 8, 2, 2)), "split"],
        [y_any("a"), y_any("b")],
        [const("split", np.array(sizes, np.int64))],
        axis=1,
    )
    assert supported(g) is ok


def test_nnapi_gather_needs_constant_indices_unless_int32():
    g64 = single("Gather", [x4(), vi("i", I64, [2])], [y_any()])
    assert "indices (not int32) 'i' is not a constant initializer" in verdict(g64)
    g32 = single("Gather", [x4(), vi("i", I32, [2])], [y_any()])
    assert supported(g32)


@pytest.mark.parametrize(("mode", "ok"), [("constant", True), ("reflect", False), ("edge", False)])
def test_nnapi_pad_modes(mode, ok):
    g = single(
        "Pad", [x4(), "p"], [y_any()], [const("p", np.array([0, 0, 1, 1] * 2, np.int64))], mode=mode
    )
    assert supported(g) is ok
    if not ok:
        assert verdict(g) == f"Pad: mode '{mode}'; NNAPI pads in constant mode only"


def test_nnapi_pad_refuses_negative_or_dynamic_pads_and_needs_api_29():
    neg = single("Pad", [x4(), "p"], [y_any()], [const("p", np.array([0, 0, -1, 0] * 2))])
    assert "negative pads" in verdict(neg)
    dyn = single("Pad", [x4(), vi("p", I64, [8])], [y_any()])
    assert "NNAPI needs constant pads" in verdict(dyn)
    ok = single("Pad", [x4(), "p"], [y_any()], [const("p", np.zeros(8, np.int64))])
    assert not supported(ok, api=28) and supported(ok, api=29)


def test_nnapi_refuses_pad_before_opset_11():
    g = single("Pad", [x4()], [y_any()], opset=10, pads=[0, 0, 1, 1] * 2)
    assert "opset version 2 is outside" in verdict(g)


def test_nnapi_depth_to_space_only_dcr():
    assert supported(single("DepthToSpace", [x4((1, 4, 2, 2))], [y_any()], blocksize=2))
    g = single("DepthToSpace", [x4((1, 4, 2, 2))], [y_any()], blocksize=2, mode="CRD")
    assert verdict(g) == "DepthToSpace: mode 'CRD'; NNAPI takes DCR only"


# --------------------------------------------------------------------------- softmax / resize


@pytest.mark.parametrize(
    ("shape", "axis", "api", "ok"),
    [
        ((2, 8), -1, 28, True),
        ((2, 3, 8), -1, 28, False),
        ((2, 3, 8), -1, 29, True),
        ((1, 3, 8, 8), 1, 28, False),
        ((1, 3, 8, 8), 1, 29, True),
        ((1, 1, 2, 2, 2), -1, 31, False),
    ],
)
def test_nnapi_softmax_axis_and_rank_conditions(shape, axis, api, ok):
    g = single("Softmax", [x4(shape)], [y_any()], axis=axis)
    assert supported(g, api=api) is ok


def test_nnapi_softmax_before_opset_13_takes_any_rank_and_axis():
    g = single("Softmax", [x4((2, 3, 8))], [y_any()], opset=11, axis=1)
    assert supported(g, api=28)


def resize(mode="linear", coord="half_pixel", scales=(1, 1, 2, 2), shape=(1, 3, 8, 8), **attrs):
    return single(
        "Resize",
        [x4(shape), "", "scales"],
        [y_any()],
        [const("scales", np.array(scales, np.float32))],
        mode=mode,
        coordinate_transformation_mode=coord,
        **attrs,
    )


def test_nnapi_resize_linear_half_pixel_needs_api_30():
    g = resize()
    assert supported(g, api=30)
    assert "needs NNAPI feature level 4" in verdict(g, api=29)


def test_nnapi_resize_linear_asymmetric_works_from_api_29():
    assert supported(resize(coord="asymmetric"), api=29)
    assert "needs NNAPI feature level 3" in verdict(resize(coord="asymmetric"), api=28)


def test_nnapi_resize_nearest_only_asymmetric_floor():
    assert supported(resize("nearest", "asymmetric", nearest_mode="floor"))
    g = resize("nearest", "asymmetric")
    assert "nearest only with asymmetric and floor" in verdict(g)


def test_nnapi_refuses_cubic_resize():
    assert verdict(resize("cubic")) == "Resize: mode 'cubic'; NNAPI takes linear or nearest"


def test_nnapi_refuses_resize_of_channels():
    assert "resize N or C" in verdict(resize(scales=(1, 2, 2, 2)))


def test_nnapi_resize_downscale_must_divide_evenly():
    assert supported(resize(coord="asymmetric", scales=(1, 1, 0.5, 0.5)))
    g = resize(coord="asymmetric", scales=(1, 1, 0.5, 0.5), shape=(1, 3, 7, 8))
    assert "does not divide evenly" in verdict(g)


def test_nnapi_resize_with_constant_sizes():
    g = single(
        "Resize",
        [x4(), "", "", "sizes"],
        [y_any()],
        [const("sizes", np.array([1, 3, 16, 16], np.int64))],
        mode="linear",
        coordinate_transformation_mode="asymmetric",
    )
    assert supported(g)


# --------------------------------------------------------------------------- QDQ units


def test_nnapi_supports_qdq_conv_unit():
    g = qdq_unit("Conv")
    unit = next(u for u in node_units(g) if u.kind == "qdq")
    assert nnapi.check_unit(unit, g) is None
    assert all(supported(g, n.name) for n in g.nodes)
    assert [[n.name for n in p] for p in nnapi.partitions(g)] == [["dq_x", "dq_w", "n", "q_y"]]


def test_nnapi_refuses_qdq_sigmoid_unit_as_a_whole():
    g = qdq_unit("Sigmoid")
    unit = next(u for u in node_units(g) if u.kind == "qdq")
    reason = nnapi.check_unit(unit, g)
    assert reason == (
        "Sigmoid: NNAPI does not take a quantized DequantizeLinear -> Sigmoid -> "
        "QuantizeLinear group; the whole group stays on CPU"
    )
    assert verdict(g, "dq_x").startswith("part of the QDQ group around Sigmoid 'n': ")
    assert verdict(g, "q_y").startswith("part of the QDQ group around Sigmoid 'n': ")
    assert nnapi.partitions(g) == []


def test_nnapi_supports_qdq_add_unit():
    assert supported(qdq_unit("Add"))


def test_nnapi_refuses_qdq_conv_with_int8_activations():
    g = qdq_unit("Conv", x_elem=I8)
    assert verdict(g) == ("Conv: quantized input A 'x' is int8; NNAPI takes uint8 activations")


def test_nnapi_per_channel_conv_weights_need_api_29():
    g = qdq_unit("Conv", per_channel=True)
    assert "per-channel quantized weights need NNAPI feature level 3" in verdict(g, api=28)
    assert supported(g, api=29)


def test_nnapi_qdq_softmax_needs_output_scale_one_over_256():
    assert supported(qdq_unit("Softmax", y_scale=1 / 256, y_zp=0, axis=-1))
    g = qdq_unit("Softmax", y_scale=0.05, axis=-1)
    assert "NNAPI needs scale 0.00390625 (1/256) and zero point 0" in verdict(g)


def test_nnapi_standalone_dequantize_needs_uint8_and_per_tensor():
    ok = single(
        "DequantizeLinear",
        [x4(elem=U8), "s", "z"],
        [y_any()],
        [const("s", np.float32(0.1)), const("z", np.uint8(0))],
    )
    assert supported(ok, api=27)
    bad = single(
        "DequantizeLinear",
        [x4(elem=I8), "s", "z"],
        [y_any()],
        [const("s", np.float32(0.1)), const("z", np.int8(0))],
    )
    assert "quantized input 'x' is int8" in verdict(bad)


def test_nnapi_quantize_linear_needs_api_29():
    g = single(
        "QuantizeLinear",
        [x4(), "s", "z"],
        [y_any(elem=U8)],
        [const("s", np.float32(0.1)), const("z", np.uint8(0))],
    )
    assert not supported(g, api=28) and supported(g, api=29)


def test_nnapi_uint8_transpose_of_a_graph_input_is_refused():
    g = single("Transpose", [x4(elem=U8)], [y_any(elem=U8)], perm=[0, 2, 3, 1])
    assert "does not come from a node NNAPI takes" in verdict(g)
    assert nnapi.partitions(g) == []


def test_nnapi_uint8_transpose_after_a_supported_quantize_shares_its_partition():
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
        helper.make_node("Transpose", ["xq"], ["y"], name="t", perm=[0, 2, 3, 1]),
    ]
    g = build(
        nodes, [x4()], [y_any(elem=U8)], [const("s", np.float32(0.1)), const("z", np.uint8(0))]
    )
    assert supported(g, "t")
    assert [[n.name for n in p] for p in nnapi.partitions(g)] == [["q", "t"]]


def test_nnapi_uint8_concat_needs_both_inputs_from_the_current_partition():
    # q1 lands in the first partition, q2 (behind the unsupported Erf) in the second: when the
    # Concat is reached, q1's output belongs to a closed partition, so NNAPI refuses the Concat
    # although each producer on its own is supported.
    s, z = const("s", np.float32(0.1)), const("z", np.uint8(0))
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq1"], name="q1"),
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Erf", ["r"], ["e"], name="erf"),
        helper.make_node("QuantizeLinear", ["e", "s", "z"], ["xq2"], name="q2"),
        helper.make_node("Concat", ["xq1", "xq2"], ["y"], name="cat", axis=1),
    ]
    g = build(nodes, [vi("x", F, [1, 4])], [y_any(elem=U8)], [s, z])
    assert supported(g, "cat")  # the per-node view: both producers are NNAPI nodes
    parts = [[n.name for n in p] for p in nnapi.partitions(g)]
    assert parts == [["q1", "relu"], ["q2"]]


# --------------------------------------------------------------------------- the table


REFERENCE_OPS = {
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "PRelu",
    "QLinearAdd",
    "QLinearMul",
    "Abs",
    "Exp",
    "Neg",
    "Sin",
    "Sqrt",
    "Log",
    "Floor",
    "Tanh",
    "Sigmoid",
    "QLinearSigmoid",
    "Relu",
    "Elu",
    "LeakyRelu",
    "Clip",
    "Min",
    "Max",
    "Cast",
    "Identity",
    "Conv",
    "QLinearConv",
    "AveragePool",
    "MaxPool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "QLinearAveragePool",
    "Gemm",
    "MatMul",
    "QLinearMatMul",
    "BatchNormalization",
    "LRN",
    "Concat",
    "Transpose",
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Slice",
    "Split",
    "Gather",
    "Pad",
    "DepthToSpace",
    "Softmax",
    "Resize",
    "ReduceMean",
    "QuantizeLinear",
    "DequantizeLinear",
}


def test_nnapi_rule_table_covers_every_row_of_the_reference():
    assert {op for _, op in nnapi.RULES} == REFERENCE_OPS


def test_nnapi_every_rule_cites_its_ort_source():
    for rule in nnapi.RULES.values():
        assert rule.source.startswith("impl/") and rule.source.endswith("_op_builder.cc")
        assert rule.check is not None


def test_nnapi_spec_describes_the_ep():
    spec = nnapi.SPEC
    assert spec.ep_id == "nnapi"
    assert spec.stop_ops == frozenset({"NonMaxSuppression"})
    assert spec.compiles and spec.groups_qdq_units
    assert spec.ort_source_version == nnapi.ORT_SOURCE_VERSION


def test_nnapi_public_api_is_listed_in_all():
    assert all(hasattr(nnapi, name) for name in nnapi.__all__)
