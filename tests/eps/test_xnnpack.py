"""XNNPACK rules: one small graph per op and condition, from docs/eps/xnnpack.md and ORT's source.

Each test builds a model with ``onnx.helper``, infers shapes (as ``check`` does), opens it into the
graph view and asks :func:`xnnpack.check_node` or :func:`xnnpack.check_unit` for the verdict.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import models
from ortprep.core.graph import Graph, Node
from ortprep.core.inputs import open_model
from ortprep.eps import xnnpack
from ortprep.eps.base import EpOptions, NodeContext
from ortprep.eps.partition import DQ_OP, Q_OP, NodeUnit, node_units

F = TensorProto.FLOAT
F16 = TensorProto.FLOAT16


# --------------------------------------------------------------------------- builders


def _vi(name: str, shape: Sequence[Any] | None, dtype: int = F) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def _init(name: str, values: Any, dtype: Any = np.float32) -> TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


def _weights(shape: Sequence[int], dtype: Any = np.float32) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


def build(
    tmp_path: Path,
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    inits: Sequence[TensorProto] = (),
    opset: int = 17,
    extra_opsets: dict[str, int] | None = None,
) -> Graph:
    """Save a model (shapes inferred, as ``check`` does) and open it into the graph view."""
    graph = helper.make_graph(nodes, "t", inputs, outputs, list(inits))
    imports = [helper.make_opsetid("", opset)]
    imports += [helper.make_opsetid(d, v) for d, v in (extra_opsets or {}).items()]
    model = helper.make_model(graph, opset_imports=imports)
    model.ir_version = 10 if opset >= 21 else 8
    model = onnx.shape_inference.infer_shapes(model)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    return open_model(path).graph


def node(graph: Graph, name: str) -> Node:
    return next(n for n in graph.nodes if n.name == name)


def verdict(graph: Graph, name: str, options: EpOptions | None = None) -> str | None:
    return xnnpack.check_node(NodeContext(graph, node(graph, name), options or EpOptions()))


def conv_graph(
    tmp_path: Path,
    x_shape: Sequence[Any] | None = (1, 3, 8, 8),
    *,
    op: str = "Conv",
    weight_const: bool = True,
    bias: str = "const",
    opset: int = 17,
    dtype: int = F,
    **attrs: Any,
) -> Graph:
    spatial = len(x_shape) - 2 if x_shape is not None else 2
    w_shape = (4, 3, *([3] * spatial)) if op == "Conv" else (3, 4, *([3] * spatial))
    np_dtype = np.float16 if dtype == F16 else np.float32
    inputs = [_vi("x", x_shape, dtype)]
    inits = []
    if weight_const:
        inits.append(_init("w", _weights(w_shape), np_dtype))
    else:
        inputs.append(_vi("w", w_shape, dtype))
    names = ["x", "w"]
    if bias == "const":
        inits.append(_init("b", np.zeros(4), np_dtype))
        names.append("b")
    elif bias == "input":
        inputs.append(_vi("b", [4], dtype))
        names.append("b")
    nodes = [helper.make_node(op, names, ["y"], name="conv", **attrs)]
    return build(tmp_path, nodes, inputs, [_vi("y", None, dtype)], inits, opset)


def pool_graph(
    tmp_path: Path,
    op: str = "MaxPool",
    x_shape: Sequence[Any] = (1, 3, 8, 8),
    *,
    outputs: Sequence[str] = ("y",),
    opset: int = 17,
    dtype: int = F,
    **attrs: Any,
) -> Graph:
    attrs.setdefault("kernel_shape", [2] * (len(x_shape) - 2))
    nodes = [helper.make_node(op, ["x"], list(outputs), name="pool", **attrs)]
    outs = [_vi(o, None, dtype if o == "y" else TensorProto.INT64) for o in outputs if o]
    return build(tmp_path, nodes, [_vi("x", x_shape, dtype)], outs, (), opset)


def softmax_graph(
    tmp_path: Path, shape: Sequence[Any], *, opset: int = 13, dtype: int = F, **attrs: Any
) -> Graph:
    nodes = [helper.make_node("Softmax", ["x"], ["y"], name="softmax", **attrs)]
    return build(tmp_path, nodes, [_vi("x", shape, dtype)], [_vi("y", None, dtype)], (), opset)


def resize_graph(
    tmp_path: Path,
    x_shape: Sequence[Any] = (1, 3, 8, 8),
    *,
    scales: Sequence[float] | str | None = (1, 1, 2, 2),
    sizes: Sequence[int] | None = None,
    opset: int = 13,
    **attrs: Any,
) -> Graph:
    attrs.setdefault("mode", "linear")
    inits, inputs = [], [_vi("x", x_shape)]
    names = ["x", ""]
    if scales == "input":
        inputs.append(_vi("scales", [4]))
        names.append("scales")
    elif scales is not None:
        inits.append(_init("scales", scales))
        names.append("scales")
    else:
        names.append("")
    if sizes is not None:
        inits.append(_init("sizes", sizes, np.int64))
        names.append("sizes")
    nodes = [helper.make_node("Resize", names, ["y"], name="resize", **attrs)]
    return build(tmp_path, nodes, inputs, [_vi("y", None)], inits, opset)


def gemm_graph(
    tmp_path: Path,
    *,
    b_const: bool = True,
    c: Sequence[float] | float | None = (0.0,) * 5,
    opset: int = 17,
    **attrs: Any,
) -> Graph:
    inputs, inits = [_vi("a", [2, 4])], []
    if b_const:
        inits.append(_init("b", _weights((4, 5))))
    else:
        inputs.append(_vi("b", [4, 5]))
    names = ["a", "b"]
    if c is not None:
        inits.append(_init("c", c))
        names.append("c")
    nodes = [helper.make_node("Gemm", names, ["y"], name="gemm", **attrs)]
    return build(tmp_path, nodes, inputs, [_vi("y", None)], inits, opset)


def matmul_graph(tmp_path: Path, a_shape: Sequence[Any] = (2, 4), *, b_const: bool = True) -> Graph:
    inputs, inits = [_vi("a", a_shape)], []
    if b_const:
        inits.append(_init("b", _weights((4, 5))))
    else:
        inputs.append(_vi("b", [4, 5]))
    nodes = [helper.make_node("MatMul", ["a", "b"], ["y"], name="matmul")]
    return build(tmp_path, nodes, inputs, [_vi("y", None)], inits)


def activation_after(
    tmp_path: Path,
    producer: str = "Conv",
    *,
    activation: str = "Relu",
    producer_output_is_graph_output: bool = False,
    extra_consumer: bool = False,
    clip_max: str = "const",
    weight_const: bool = True,
) -> Graph:
    """producer -> Relu/Clip -> y, with the variations the fusion rule looks at."""
    inputs, inits = [_vi("x", [1, 3, 8, 8])], []
    if producer == "Conv":
        if weight_const:
            inits.append(_init("w", _weights((4, 3, 3, 3))))
        else:
            inputs.append(_vi("w", [4, 3, 3, 3]))
        nodes = [helper.make_node("Conv", ["x", "w"], ["p"], name="producer", pads=[1] * 4)]
    elif producer in ("MaxPool", "AveragePool"):
        nodes = [helper.make_node(producer, ["x"], ["p"], name="producer", kernel_shape=[2, 2])]
    else:
        nodes = [helper.make_node(producer, ["x", "x"], ["p"], name="producer")]
    act_inputs = ["p"]
    if activation == "Clip":
        inits.append(_init("lo", 0.0))
        act_inputs.append("lo")
        if clip_max == "const":
            inits.append(_init("hi", 6.0))
        else:
            inputs.append(_vi("hi", []))
        act_inputs.append("hi")
    nodes.append(helper.make_node(activation, act_inputs, ["y"], name="act"))
    outputs = [_vi("y", None)]
    if producer_output_is_graph_output:
        outputs.append(_vi("p", None))
    if extra_consumer:
        nodes.append(helper.make_node("Sigmoid", ["p"], ["s"], name="sigmoid"))
        outputs.append(_vi("s", None))
    return build(tmp_path, nodes, inputs, outputs, inits)


# QDQ units: x -> Q -> DQ -> op -> Q -> DQ -> out


def _q_params(prefix: str, dtype: Any, scale: Any = 0.05, zp: Any = 0) -> list[TensorProto]:
    return [_init(f"{prefix}_scale", scale), _init(f"{prefix}_zp", zp, dtype)]


def _qdq_in(name: str, dtype: Any) -> tuple[list[onnx.NodeProto], list[TensorProto]]:
    nodes = [
        helper.make_node(
            "QuantizeLinear", [name, f"{name}_scale", f"{name}_zp"], [f"{name}_q"], name=f"{name}_Q"
        ),
        helper.make_node(
            "DequantizeLinear",
            [f"{name}_q", f"{name}_scale", f"{name}_zp"],
            [f"{name}_dq"],
            name=f"{name}_DQ",
        ),
    ]
    return nodes, _q_params(name, dtype)


def _qdq_out(
    name: str, dtype: Any, scale: float = 0.05, zp: int = 0
) -> tuple[list[onnx.NodeProto], list[TensorProto]]:
    nodes = [
        helper.make_node(
            "QuantizeLinear", [name, f"{name}_scale", f"{name}_zp"], [f"{name}_q"], name=f"{name}_Q"
        ),
        helper.make_node(
            "DequantizeLinear",
            [f"{name}_q", f"{name}_scale", f"{name}_zp"],
            ["out"],
            name=f"{name}_DQ",
        ),
    ]
    return nodes, _q_params(name, dtype, scale, zp)


def qdq_conv_graph(
    tmp_path: Path, act: Any = np.int8, weight: Any = np.int8, *, per_channel: bool = False
) -> Graph:
    x_nodes, x_inits = _qdq_in("x", act)
    y_nodes, y_inits = _qdq_out("y", act)
    w_scale = np.full(4, 0.02, np.float32) if per_channel else 0.02
    w_zp = np.zeros(4, weight) if per_channel else weight(0)
    inits = [
        *x_inits,
        *y_inits,
        _init("wq", np.ones((4, 3, 3, 3)), weight),
        _init("wq_scale", w_scale),
        _init("wq_zp", w_zp, weight),
        _init("bq", np.zeros(4), np.int32),
        _init("bq_scale", 0.001),
    ]
    nodes = [
        *x_nodes,
        helper.make_node(
            "DequantizeLinear", ["wq", "wq_scale", "wq_zp"], ["w_dq"], name="w_DQ", axis=0
        ),
        helper.make_node("DequantizeLinear", ["bq", "bq_scale"], ["b_dq"], name="b_DQ"),
        helper.make_node("Conv", ["x_dq", "w_dq", "b_dq"], ["y"], name="target", pads=[1] * 4),
        *y_nodes,
    ]
    return build(tmp_path, nodes, [_vi("x", [1, 3, 8, 8])], [_vi("out", None)], inits)


def qdq_single_input_graph(
    tmp_path: Path,
    op: str,
    dtype: Any,
    shape: Sequence[int] = (1, 3, 8, 8),
    *,
    y_scale: float = 0.05,
    opset: int = 17,
    **attrs: Any,
) -> Graph:
    x_nodes, x_inits = _qdq_in("x", dtype)
    y_nodes, y_inits = _qdq_out("y", dtype, y_scale)
    nodes = [*x_nodes, helper.make_node(op, ["x_dq"], ["y"], name="target", **attrs), *y_nodes]
    return build(tmp_path, nodes, [_vi("x", shape)], [_vi("out", None)], x_inits + y_inits, opset)


def unit_of(graph: Graph, target: str = "target") -> NodeUnit:
    """The QDQ unit around ``target``: its DQ producers and Q consumers."""
    t = node(graph, target)
    dq = tuple(p for i in t.inputs if (p := graph.producers.get(i)) and p.op_type == DQ_OP)
    q = tuple(c for o in t.outputs for c in graph.consumers.get(o, []) if c.op_type == Q_OP)
    return NodeUnit(t, dq, q, "qdq")


def unit_verdict(graph: Graph, target: str = "target") -> str | None:
    return xnnpack.check_unit(unit_of(graph, target), graph, EpOptions())


@pytest.fixture
def no_fp16(monkeypatch: pytest.MonkeyPatch) -> None:
    """A build without fp16 kernels (WebAssembly, x86 Android/iOS): the build default lives in
    the package's constants module, which the rules read."""
    monkeypatch.setattr(xnnpack.constants, "FP16_SUPPORTED", False)


# --------------------------------------------------------------------------- Conv, ConvTranspose


def test_xnnpack_takes_2d_conv_with_constant_weights(tmp_path: Path) -> None:
    assert verdict(conv_graph(tmp_path, pads=[1] * 4), "conv") is None


def test_xnnpack_takes_1d_conv(tmp_path: Path) -> None:
    assert verdict(conv_graph(tmp_path, (1, 3, 16)), "conv") is None


def test_xnnpack_takes_conv_with_dynamic_batch(tmp_path: Path) -> None:
    assert verdict(conv_graph(tmp_path, ("N", 3, 8, 8)), "conv") is None


def test_xnnpack_refuses_conv_with_non_constant_weight(tmp_path: Path) -> None:
    reason = verdict(conv_graph(tmp_path, weight_const=False), "conv")
    assert reason == "Conv: weight input 'w' is not a constant initializer"


def test_xnnpack_refuses_conv_with_non_constant_bias(tmp_path: Path) -> None:
    reason = verdict(conv_graph(tmp_path, bias="input"), "conv")
    assert reason == "Conv: bias input 'b' is not a constant initializer"


def test_xnnpack_takes_conv_without_bias(tmp_path: Path) -> None:
    assert verdict(conv_graph(tmp_path, bias="none"), "conv") is None


def test_xnnpack_refuses_conv_with_dynamic_channel_dim(tmp_path: Path) -> None:
    reason = verdict(conv_graph(tmp_path, ("N", "C", 8, 8)), "conv")
    assert reason is not None and "dim 1 (C) is 'C'" in reason


def test_xnnpack_refuses_conv_with_dynamic_spatial_dim(tmp_path: Path) -> None:
    reason = verdict(conv_graph(tmp_path, (1, 3, "H", 8)), "conv")
    assert reason is not None and "dim 2 (H) is 'H'" in reason


def test_xnnpack_refuses_3d_conv(tmp_path: Path) -> None:
    reason = verdict(conv_graph(tmp_path, (1, 3, 4, 8, 8)), "conv")
    assert reason is not None and "rank 5" in reason and "rank 3 or 4" in reason


def test_xnnpack_refuses_conv_with_unknown_input_shape(tmp_path: Path) -> None:
    reason = verdict(conv_graph(tmp_path, None), "conv")
    assert reason is not None and "unknown shape" in reason


def test_xnnpack_refuses_conv_with_same_lower_auto_pad(tmp_path: Path) -> None:
    reason = verdict(conv_graph(tmp_path, auto_pad="SAME_LOWER"), "conv")
    assert reason == "Conv: auto_pad=SAME_LOWER; XNNPACK takes NOTSET, VALID, SAME_UPPER"


def test_xnnpack_takes_conv_with_same_upper_auto_pad(tmp_path: Path) -> None:
    assert verdict(conv_graph(tmp_path, auto_pad="SAME_UPPER"), "conv") is None


def test_xnnpack_refuses_opset_22_conv_because_session_creation_fails(tmp_path: Path) -> None:
    reason = verdict(conv_graph(tmp_path, opset=22), "conv")
    assert reason == (
        "Conv: ORT's XNNPACK EP claims opset-22 Conv but has no kernel for it (session creation "
        "fails, ORT issue #23164)"
    )


def test_xnnpack_refuses_conv_before_opset_11(tmp_path: Path) -> None:
    reason = verdict(conv_graph(tmp_path, opset=10), "conv")
    assert reason == "Conv: since-version 1; XNNPACK takes Conv from since-version 11"


def test_xnnpack_takes_fp16_conv_by_default(tmp_path: Path) -> None:
    assert xnnpack.FP16_SUPPORTED is True
    assert verdict(conv_graph(tmp_path, dtype=F16), "conv") is None


@pytest.mark.usefixtures("no_fp16")
def test_xnnpack_refuses_fp16_conv_without_fp16_kernels(tmp_path: Path) -> None:
    reason = verdict(conv_graph(tmp_path, dtype=F16), "conv")
    assert reason is not None and "no fp16 kernels" in reason


def test_xnnpack_refuses_double_conv(tmp_path: Path) -> None:
    reason = verdict(conv_graph(tmp_path, dtype=TensorProto.DOUBLE, weight_const=False), "conv")
    assert reason is not None and "is float64" in reason


def test_xnnpack_takes_conv_transpose(tmp_path: Path) -> None:
    assert verdict(conv_graph(tmp_path, op="ConvTranspose", bias="none"), "conv") is None


def test_xnnpack_refuses_opset_22_conv_transpose(tmp_path: Path) -> None:
    reason = verdict(conv_graph(tmp_path, op="ConvTranspose", bias="none", opset=22), "conv")
    assert reason is not None and "#23164" in reason


# --------------------------------------------------------------------------- MaxPool


def test_xnnpack_takes_2x2_maxpool(tmp_path: Path) -> None:
    assert verdict(pool_graph(tmp_path, strides=[2, 2]), "pool") is None


def test_xnnpack_refuses_maxpool_with_ceil_mode(tmp_path: Path) -> None:
    reason = verdict(pool_graph(tmp_path, ceil_mode=1), "pool")
    assert reason == "MaxPool: ceil_mode=1; XNNPACK takes ceil_mode=0 only"


def test_xnnpack_refuses_maxpool_with_indices_output(tmp_path: Path) -> None:
    reason = verdict(pool_graph(tmp_path, outputs=("y", "idx")), "pool")
    assert reason is not None and "Indices output 'idx'" in reason


def test_xnnpack_refuses_1x1_maxpool(tmp_path: Path) -> None:
    reason = verdict(pool_graph(tmp_path, kernel_shape=[1, 1]), "pool")
    assert reason == "MaxPool: kernel_shape=[1, 1]; XNNPACK has no 1x1 pooling"


def test_xnnpack_refuses_1d_maxpool(tmp_path: Path) -> None:
    reason = verdict(pool_graph(tmp_path, x_shape=(1, 3, 8)), "pool")
    assert reason is not None and "rank 3" in reason


def test_xnnpack_refuses_maxpool_with_dynamic_height(tmp_path: Path) -> None:
    reason = verdict(pool_graph(tmp_path, x_shape=(1, 3, "H", 8)), "pool")
    assert reason is not None and "dim 2 (H)" in reason


def test_xnnpack_refuses_maxpool_with_same_lower_auto_pad(tmp_path: Path) -> None:
    reason = verdict(pool_graph(tmp_path, auto_pad="SAME_LOWER"), "pool")
    assert reason is not None and "auto_pad=SAME_LOWER" in reason


def test_xnnpack_takes_standalone_int8_maxpool(tmp_path: Path) -> None:
    assert verdict(pool_graph(tmp_path, dtype=TensorProto.INT8), "pool") is None


def test_xnnpack_refuses_opset_22_maxpool(tmp_path: Path) -> None:
    reason = verdict(pool_graph(tmp_path, opset=22), "pool")
    assert reason is not None and "opset-22 MaxPool" in reason and "#23164" in reason


# --------------------------------------------------------------------------- AveragePool


def test_xnnpack_takes_float_averagepool_excluding_padding(tmp_path: Path) -> None:
    assert verdict(pool_graph(tmp_path, "AveragePool", pads=[1] * 4), "pool") is None


def test_xnnpack_refuses_float_averagepool_with_count_include_pad(tmp_path: Path) -> None:
    reason = verdict(pool_graph(tmp_path, "AveragePool", count_include_pad=1), "pool")
    assert reason == (
        "AveragePool: count_include_pad=1; XNNPACK takes count_include_pad=0 only for float input"
    )


def test_xnnpack_refuses_averagepool_with_dilations(tmp_path: Path) -> None:
    reason = verdict(pool_graph(tmp_path, "AveragePool", opset=19, dilations=[2, 2]), "pool")
    assert reason == "AveragePool: dilations=[2, 2]; XNNPACK takes dilations of 1 only"


# --------------------------------------------------------------------------- Softmax


def test_xnnpack_refuses_opset13_softmax_on_axis_1_of_rank_4(tmp_path: Path) -> None:
    reason = verdict(softmax_graph(tmp_path, (1, 3, 8, 8), axis=1), "softmax")
    assert reason is not None and "axis=1 on a rank-4 input" in reason


def test_xnnpack_takes_opset13_softmax_on_last_axis(tmp_path: Path) -> None:
    assert verdict(softmax_graph(tmp_path, (1, 3, 8, 8), axis=-1), "softmax") is None
    assert verdict(softmax_graph(tmp_path, (1, 3, 8, 8), axis=3), "softmax") is None


def test_xnnpack_refuses_opset13_softmax_with_dynamic_last_dim(tmp_path: Path) -> None:
    reason = verdict(softmax_graph(tmp_path, ("N", "L")), "softmax")
    assert reason is not None and "last dim" in reason


def test_xnnpack_takes_opset11_softmax_on_any_axis_with_dynamic_dims(tmp_path: Path) -> None:
    assert verdict(softmax_graph(tmp_path, ("N", 3, "L"), opset=11, axis=1), "softmax") is None


def test_xnnpack_takes_fp16_softmax_by_default(tmp_path: Path) -> None:
    assert verdict(softmax_graph(tmp_path, (2, 10), dtype=F16), "softmax") is None


@pytest.mark.usefixtures("no_fp16")
def test_xnnpack_refuses_fp16_softmax_without_fp16_kernels_as_a_session_failure(
    tmp_path: Path,
) -> None:
    reason = verdict(softmax_graph(tmp_path, (2, 10), dtype=F16), "softmax")
    assert reason is not None and "claims it" in reason and "session creation fails" in reason


# --------------------------------------------------------------------------- Resize


def test_xnnpack_refuses_cubic_resize(tmp_path: Path) -> None:
    reason = verdict(resize_graph(tmp_path, mode="cubic"), "resize")
    assert reason == "Resize: mode=cubic; XNNPACK takes mode=linear only"


def test_xnnpack_refuses_nearest_resize_which_is_the_default(tmp_path: Path) -> None:
    reason = verdict(resize_graph(tmp_path, mode="nearest"), "resize")
    assert reason is not None and "mode=nearest" in reason


def test_xnnpack_takes_linear_resize_with_integer_downsample(tmp_path: Path) -> None:
    assert verdict(resize_graph(tmp_path, scales=(1, 1, 0.5, 0.25)), "resize") is None


def test_xnnpack_refuses_linear_resize_whose_downsample_does_not_divide(tmp_path: Path) -> None:
    reason = verdict(resize_graph(tmp_path, (1, 3, 7, 8), scales=(1, 1, 0.5, 0.5)), "resize")
    assert reason is not None and "downsampling scales" in reason


def test_xnnpack_refuses_resize_mixing_up_and_downsampling(tmp_path: Path) -> None:
    reason = verdict(resize_graph(tmp_path, scales=(1, 1, 0.5, 2)), "resize")
    assert reason is not None and "downsampling scales" in reason


def test_xnnpack_refuses_resize_that_scales_channels(tmp_path: Path) -> None:
    reason = verdict(resize_graph(tmp_path, scales=(1, 2, 2, 2)), "resize")
    assert reason is not None and "scales[1]=2" in reason


def test_xnnpack_refuses_resize_with_non_constant_scales(tmp_path: Path) -> None:
    reason = verdict(resize_graph(tmp_path, scales="input"), "resize")
    assert reason is not None and "neither scales nor sizes" in reason


def test_xnnpack_takes_resize_with_constant_sizes(tmp_path: Path) -> None:
    assert verdict(resize_graph(tmp_path, scales=None, sizes=(1, 3, 16, 16)), "resize") is None


def test_xnnpack_refuses_resize_with_empty_scales_initializer_that_aborts_ort(
    tmp_path: Path,
) -> None:
    graph = resize_graph(tmp_path, scales=(), sizes=(1, 3, 16, 16))
    reason = verdict(graph, "resize")
    assert reason is not None and "aborts the process" in reason


def test_xnnpack_refuses_pytorch_half_pixel_resize_with_dynamic_output(tmp_path: Path) -> None:
    graph = resize_graph(
        tmp_path, ("N", 3, "H", "W"), coordinate_transformation_mode="pytorch_half_pixel"
    )
    reason = verdict(graph, "resize")
    assert reason is not None and "pytorch_half_pixel" in reason


def test_xnnpack_takes_pytorch_half_pixel_resize_with_static_output(tmp_path: Path) -> None:
    graph = resize_graph(tmp_path, coordinate_transformation_mode="pytorch_half_pixel")
    assert verdict(graph, "resize") is None


def test_xnnpack_refuses_tf_crop_and_resize(tmp_path: Path) -> None:
    graph = resize_graph(tmp_path, coordinate_transformation_mode="tf_crop_and_resize")
    reason = verdict(graph, "resize")
    assert reason is not None and "coordinate_transformation_mode=tf_crop_and_resize" in reason


def test_xnnpack_refuses_resize_with_dynamic_channels(tmp_path: Path) -> None:
    reason = verdict(resize_graph(tmp_path, (1, "C", 8, 8)), "resize")
    assert reason is not None and "dim 1 (C)" in reason


# --------------------------------------------------------------------------- Gemm, MatMul


def test_xnnpack_takes_gemm_with_constant_b_and_c(tmp_path: Path) -> None:
    assert verdict(gemm_graph(tmp_path), "gemm") is None


def test_xnnpack_refuses_gemm_with_alpha_2(tmp_path: Path) -> None:
    reason = verdict(gemm_graph(tmp_path, alpha=2.0), "gemm")
    assert reason == "Gemm: alpha=2; XNNPACK takes alpha=1 only"


def test_xnnpack_refuses_gemm_with_non_constant_b(tmp_path: Path) -> None:
    reason = verdict(gemm_graph(tmp_path, b_const=False), "gemm")
    assert reason == "Gemm: B input 'b' is not a constant initializer"


def test_xnnpack_takes_gemm_without_c_since_the_28546_fix(tmp_path: Path) -> None:
    assert verdict(gemm_graph(tmp_path, c=None), "gemm") is None


def test_xnnpack_refuses_gemm_with_scalar_c(tmp_path: Path) -> None:
    reason = verdict(gemm_graph(tmp_path, c=0.5), "gemm")
    assert reason is not None and "rank-1 or rank-2 C" in reason


def test_xnnpack_refuses_gemm_6_because_no_kernel_matches(tmp_path: Path) -> None:
    reason = verdict(gemm_graph(tmp_path, opset=6), "gemm")
    assert reason is not None and "Gemm-6" in reason and "session creation fails" in reason


def test_xnnpack_takes_2d_matmul_with_constant_b(tmp_path: Path) -> None:
    assert verdict(matmul_graph(tmp_path), "matmul") is None


def test_xnnpack_refuses_rank_3_matmul(tmp_path: Path) -> None:
    reason = verdict(matmul_graph(tmp_path, (2, 3, 4)), "matmul")
    assert reason is not None and "rank 1 or 2" in reason and "#24107" in reason


def test_xnnpack_refuses_matmul_with_non_constant_b(tmp_path: Path) -> None:
    reason = verdict(matmul_graph(tmp_path, b_const=False), "matmul")
    assert reason == "MatMul: B input 'b' is not a constant initializer"


def test_xnnpack_refuses_matmul_with_symbolic_rows(tmp_path: Path) -> None:
    reason = verdict(matmul_graph(tmp_path, ("M", 4)), "matmul")
    assert reason is not None and "fixed and non-zero" in reason


# --------------------------------------------------------------------------- Relu/Clip fusion


def test_xnnpack_takes_relu_fused_into_a_claimed_conv(tmp_path: Path) -> None:
    assert verdict(activation_after(tmp_path), "act") is None


def test_xnnpack_takes_relu_fused_into_a_claimed_maxpool(tmp_path: Path) -> None:
    assert verdict(activation_after(tmp_path, "MaxPool"), "act") is None


def test_xnnpack_refuses_relu_after_add(tmp_path: Path) -> None:
    reason = verdict(activation_after(tmp_path, "Add"), "act")
    assert reason is not None and reason.startswith("Relu: it follows Add node 'producer'")


def test_xnnpack_refuses_relu_after_a_conv_it_does_not_claim(tmp_path: Path) -> None:
    reason = verdict(activation_after(tmp_path, weight_const=False), "act")
    assert reason is not None and "not claimed" in reason and "weight input 'w'" in reason


def test_xnnpack_refuses_relu_whose_producer_output_is_a_graph_output(tmp_path: Path) -> None:
    reason = verdict(activation_after(tmp_path, producer_output_is_graph_output=True), "act")
    assert reason is not None and "graph output" in reason and "#28814" in reason


def test_xnnpack_refuses_relu_whose_producer_output_has_another_consumer(tmp_path: Path) -> None:
    reason = verdict(activation_after(tmp_path, extra_consumer=True), "act")
    assert reason is not None and "2 consumers" in reason


def test_xnnpack_takes_clip_with_constant_bounds_after_conv(tmp_path: Path) -> None:
    assert verdict(activation_after(tmp_path, activation="Clip"), "act") is None


def test_xnnpack_refuses_clip_with_non_constant_max(tmp_path: Path) -> None:
    reason = verdict(activation_after(tmp_path, activation="Clip", clip_max="input"), "act")
    assert reason is not None and "max input 'hi' is not a constant initializer" in reason


def test_xnnpack_refuses_relu_reading_a_graph_input(tmp_path: Path) -> None:
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="act")]
    graph = build(tmp_path, nodes, [_vi("x", [1, 3, 8, 8])], [_vi("y", None)])
    reason = verdict(graph, "act")
    assert reason is not None and "not produced by a node" in reason


# --------------------------------------------------------------------------- other ops


def test_xnnpack_does_not_claim_add(tmp_path: Path) -> None:
    nodes = [helper.make_node("Add", ["x", "x"], ["y"], name="add")]
    graph = build(tmp_path, nodes, [_vi("x", [1, 4])], [_vi("y", None)])
    assert verdict(graph, "add") == "Add: not claimed by XNNPACK (no kernel in ORT's XNNPACK EP)"


def test_xnnpack_does_not_claim_com_microsoft_nodes(tmp_path: Path) -> None:
    nodes = [helper.make_node("QuickGelu", ["x"], ["y"], name="gelu", domain="com.microsoft")]
    graph = build(
        tmp_path, nodes, [_vi("x", [1, 4])], [_vi("y", [1, 4])], extra_opsets={"com.microsoft": 1}
    )
    reason = verdict(graph, "gelu")
    assert reason is not None and reason.startswith("com.microsoft:QuickGelu")


def test_xnnpack_refuses_a_lone_dequantizelinear(tmp_path: Path) -> None:
    nodes = [helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["y"], name="dq")]
    inits = [_init("s", 0.1), _init("zp", 0, np.uint8)]
    graph = build(tmp_path, nodes, [_vi("xq", [1, 4], TensorProto.UINT8)], [_vi("y", None)], inits)
    reason = verdict(graph, "dq")
    assert reason is not None and reason.startswith("DequantizeLinear:")
    assert xnnpack.check_unit(NodeUnit(node(graph, "dq")), graph, EpOptions()) == reason


def test_xnnpack_judges_a_single_node_unit_like_check_node(tmp_path: Path) -> None:
    graph = pool_graph(tmp_path, ceil_mode=1)
    unit = NodeUnit(node(graph, "pool"))
    assert xnnpack.check_unit(unit, graph) == verdict(graph, "pool")


# --------------------------------------------------------------------------- QDQ units


def test_xnnpack_takes_qdq_conv_unit_with_int8_activations_and_weights(tmp_path: Path) -> None:
    assert unit_verdict(qdq_conv_graph(tmp_path)) is None


def test_xnnpack_takes_qdq_conv_unit_with_uint8_activations_and_weights(tmp_path: Path) -> None:
    assert unit_verdict(qdq_conv_graph(tmp_path, np.uint8, np.uint8)) is None


def test_xnnpack_takes_qdq_conv_unit_with_per_channel_int8_weights(tmp_path: Path) -> None:
    assert unit_verdict(qdq_conv_graph(tmp_path, per_channel=True)) is None


def test_xnnpack_refuses_qdq_conv_unit_with_uint8_activations_and_int8_weights(
    tmp_path: Path,
) -> None:
    reason = unit_verdict(qdq_conv_graph(tmp_path, np.uint8, np.int8))
    assert reason is not None and reason.startswith("QDQ Conv unit: X is uint8, W is int8")


def test_xnnpack_refuses_qdq_averagepool_unit_with_int8(tmp_path: Path) -> None:
    graph = qdq_single_input_graph(
        tmp_path, "AveragePool", np.int8, kernel_shape=[2, 2], count_include_pad=1
    )
    reason = unit_verdict(graph)
    assert reason == "QDQ AveragePool unit: X is int8 and Y is int8; XNNPACK takes both uint8"


def test_xnnpack_takes_qdq_averagepool_unit_with_uint8_including_padding(tmp_path: Path) -> None:
    graph = qdq_single_input_graph(
        tmp_path, "AveragePool", np.uint8, kernel_shape=[2, 2], count_include_pad=1
    )
    assert unit_verdict(graph) is None


def test_xnnpack_refuses_qdq_averagepool_unit_excluding_padding(tmp_path: Path) -> None:
    graph = qdq_single_input_graph(tmp_path, "AveragePool", np.uint8, kernel_shape=[2, 2])
    reason = unit_verdict(graph)
    assert reason is not None and "count_include_pad=1 only for a QDQ unit" in reason


def test_xnnpack_takes_qdq_maxpool_unit_with_int8(tmp_path: Path) -> None:
    graph = qdq_single_input_graph(tmp_path, "MaxPool", np.int8, kernel_shape=[2, 2])
    assert unit_verdict(graph) is None


def test_xnnpack_takes_qdq_softmax_unit_with_output_scale_1_over_256(tmp_path: Path) -> None:
    graph = qdq_single_input_graph(tmp_path, "Softmax", np.uint8, (1, 10), y_scale=1 / 256)
    assert unit_verdict(graph) is None


def test_xnnpack_refuses_qdq_softmax_unit_with_other_output_scale(tmp_path: Path) -> None:
    graph = qdq_single_input_graph(tmp_path, "Softmax", np.uint8, (1, 10), y_scale=0.05)
    reason = unit_verdict(graph)
    assert reason is not None and "Y scale is 0.05" in reason


def test_xnnpack_refuses_qdq_gemm_unit(tmp_path: Path) -> None:
    x_nodes, x_inits = _qdq_in("a", np.int8)
    y_nodes, y_inits = _qdq_out("y", np.int8)
    inits = [
        *x_inits,
        *y_inits,
        _init("bq", np.ones((4, 5)), np.int8),
        _init("bs", 0.1),
        _init("bzp", 0, np.int8),
    ]
    nodes = [
        *x_nodes,
        helper.make_node("DequantizeLinear", ["bq", "bs", "bzp"], ["b_dq"], name="b_DQ"),
        helper.make_node("Gemm", ["a_dq", "b_dq"], ["y"], name="target"),
        *y_nodes,
    ]
    graph = build(tmp_path, nodes, [_vi("a", [2, 4])], [_vi("out", None)], inits)
    reason = unit_verdict(graph)
    assert reason is not None and "QDQ Gemm is never claimed" in reason


def test_xnnpack_refuses_qdq_unit_around_an_op_it_does_not_fuse(tmp_path: Path) -> None:
    graph = qdq_single_input_graph(tmp_path, "Sigmoid", np.uint8, (1, 10))
    reason = unit_verdict(graph)
    assert reason is not None and reason.startswith("QDQ Sigmoid unit:")


def test_xnnpack_refuses_opset_22_qdq_conv_unit(tmp_path: Path) -> None:
    graph = qdq_conv_graph(tmp_path)
    conv = node(graph, "target")
    unit = unit_of(graph)
    unit22 = NodeUnit(
        dataclasses.replace(conv, since_version=22), unit.dq_nodes, unit.q_nodes, "qdq"
    )
    reason = xnnpack.check_unit(unit22, graph)
    assert reason is not None and reason.startswith("QDQ Conv unit:") and "#23164" in reason


def test_xnnpack_judges_the_qdq_cnn_fixture_unit_by_unit(tmp_path: Path) -> None:
    path = models.save(onnx.shape_inference.infer_shapes(models.qdq_cnn()), tmp_path / "q.onnx")
    graph = open_model(path).graph
    verdicts = {u.target.name: (u.kind, xnnpack.check_unit(u, graph)) for u in node_units(graph)}
    assert verdicts["conv1"] == ("qdq", None)
    assert verdicts["pool3"] == ("qdq", None)
    assert verdicts["fc"][1] is not None and "QDQ Gemm" in verdicts["fc"][1]
    assert verdicts["softmax"][1] is not None and "int8" in verdicts["softmax"][1]


# --------------------------------------------------------------------------- module


def test_xnnpack_rule_table_covers_the_documented_ops_and_cites_sources() -> None:
    ops = {op for _, op in xnnpack.RULES}
    assert ops == {
        "Conv",
        "ConvTranspose",
        "MaxPool",
        "AveragePool",
        "Softmax",
        "Resize",
        "Gemm",
        "MatMul",
        "Relu",
        "Clip",
    }
    assert all(rule.source and rule.check for rule in xnnpack.RULES.values())


def test_xnnpack_spec_describes_a_static_kernel_ep() -> None:
    spec = xnnpack.SPEC
    assert (spec.ep_id, spec.display_name, spec.compiles) == ("xnnpack", "XNNPACK", False)
    assert spec.stop_ops == frozenset() and spec.discard is None
    assert spec.takes_subgraph_nodes and spec.groups_qdq_units
    assert spec.check_node is xnnpack.check_node
    assert (
        spec.ort_source_version == xnnpack.ORT_SOURCE_VERSION
        and "032935e6" in spec.ort_source_version
    )


def test_xnnpack_fp16_follows_an_options_field_when_present() -> None:
    assert xnnpack.fp16_supported(EpOptions()) is True
    assert xnnpack.fp16_supported(SimpleNamespace(xnnpack_fp16=False)) is False  # type: ignore[arg-type]


def test_importing_xnnpack_loads_neither_onnx_nor_numpy() -> None:
    code = (
        "import sys, ortprep.eps.xnnpack; "
        "print(sorted(m for m in ('onnx', 'onnxruntime', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
