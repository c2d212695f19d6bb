"""CoreML EP rules, both formats: ops and conditions from ORT's CoreML builders, taken and refused.

The table ``CASES`` runs every case against MLProgram and NeuralNetwork: ``None`` means the node
is taken, a string is a fragment the refusal reason must contain.
"""

from __future__ import annotations

import contextlib
import itertools
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from models import external_data, if_subgraph, save
from ortprep.core.graph import Graph
from ortprep.core.inputs import open_model
from ortprep.eps import coreml
from ortprep.eps.base import EpOptions, NodeContext

TYPES = {
    "f32": TensorProto.FLOAT,
    "f16": TensorProto.FLOAT16,
    "i32": TensorProto.INT32,
    "i64": TensorProto.INT64,
    "bool": TensorProto.BOOL,
}
_counter = itertools.count()


def build(
    tmp_path: Path,
    nodes: list[onnx.NodeProto],
    feeds: dict[str, tuple[str, Any]],
    inits: dict[str, np.ndarray] | None = None,
    opset: int = 17,
) -> Graph:
    """Save a graph of ``nodes`` (graph inputs ``feeds``: name -> (type, shape)) and open it."""
    consumed = {i for n in nodes for i in n.input}
    outputs = [onnx.ValueInfoProto(name=o) for n in nodes for o in n.output if o not in consumed]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(k, TYPES[t], s) for k, (t, s) in feeds.items()],
        outputs,
        [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()],
    )
    imports = [helper.make_opsetid("", opset), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=imports)
    model.ir_version = 10 if opset >= 21 else 8
    with contextlib.suppress(Exception):  # contrib-op fixtures get what inference can give
        model = onnx.shape_inference.infer_shapes(model)
    return open_model(save(model, tmp_path / f"m{next(_counter)}.onnx")).graph


def verdict(graph: Graph, spec=coreml.MLPROGRAM, name: str = "n", **options: Any) -> str | None:
    node = next(n for n in graph.nodes if n.name == name)
    return spec.check_node(NodeContext(graph, node, EpOptions(**options)))


def f32(*shape: int) -> np.ndarray:
    return np.ones(shape, np.float32)


def i64(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


@dataclass
class Case:
    """One node: op, node inputs, graph inputs, initializers, attributes; expected verdicts."""

    op: str
    ins: list[str]
    feeds: dict[str, tuple[str, Any]]
    ml: str | None
    nn: str | None
    inits: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    outs: int = 1
    opset: int = 17
    domain: str = ""


X4 = {"x": ("f32", [1, 3, 8, 8])}
W33 = {"w": f32(4, 3, 3, 3)}
NN_ONLY_REASON = "not supported by CoreML NeuralNetwork (MLProgram only)"
ML_ONLY_REASON = "not supported by CoreML MLProgram (NeuralNetwork only)"


def case(case_id: str, *args: Any, **kw: Any):
    return pytest.param(Case(*args, **kw), id=case_id)


# fmt: off
CASES = [
    # EP-wide input rules (helper.cc IsInputSupported, impl/base types)
    case("relu_float32_taken_by_both", "Relu", ["x"], X4, None, None),
    case("relu_float16_only_mlprogram", "Relu", ["x"], {"x": ("f16", [1, 4])}, None,
         "float16 needs MLProgram"),
    case("relu_int64_refused_by_both", "Relu", ["x"], {"x": ("i64", [4])}, "input 0 is int64",
         "input 0 is int64"),
    case("relu_opset5_version_below_builder_min", "Relu", ["x"], X4, "since_version 1 is outside",
         "since_version 1 is outside", opset=5),
    case("relu_rank6_refused", "Relu", ["x"], {"x": ("f32", [1] * 6)}, "rank 6", "rank 6"),
    case("relu_zero_dim_refused", "Relu", ["x"], {"x": ("f32", [0, 3])}, "0 dim", "0 dim"),
    case("relu_unknown_rank_refused", "Relu", ["x"], {"x": ("f32", None)}, "no shape information",
         "no shape information"),
    case("relu_dynamic_dims_taken_by_default", "Relu", ["x"],
         {"x": ("f32", ["N", 3, "H", "W"])}, None, None),
    case("relu_scalar_taken", "Relu", ["x"], {"x": ("f32", [])}, None, None),
    case("reshape_opset21_above_builder_max", "Reshape", ["x", "s"], X4, "since_version 21",
         "since_version 21", inits={"s": i64(1, -1)}, opset=21),
    case("einsum_has_no_builder", "Einsum", ["x", "x"], X4, "no builder for Einsum",
         "no builder for Einsum", attrs={"equation": "ij,ij->ij"}),
    case("expand_not_on_main", "Expand", ["x", "s"], X4, "no builder", "no builder",
         inits={"s": i64(1, 3, 8, 8)}),
    case("dequantize_stays_on_cpu", "DequantizeLinear", ["q", "s"], {"q": ("i32", [4])},
         "quantize/dequantize", "quantize/dequantize", inits={"s": np.float32(0.1)}),
    # activations and unary (impl/activation, impl/unary, impl/quick_gelu)
    case("hardsigmoid_taken_by_both", "HardSigmoid", ["x"], X4, None, None),
    case("gelu_mlprogram_only", "Gelu", ["x"], X4, None, NN_ONLY_REASON, opset=20),
    case("elu_mlprogram_only", "Elu", ["x"], X4, None, NN_ONLY_REASON),
    case("softplus_mlprogram_only", "Softplus", ["x"], X4, None, NN_ONLY_REASON),
    case("erf_mlprogram_only", "Erf", ["x"], X4, None, NN_ONLY_REASON),
    case("sqrt_taken_by_both", "Sqrt", ["x"], X4, None, None),
    case("ceil_mlprogram_only", "Ceil", ["x"], X4, None, NN_ONLY_REASON),
    case("quick_gelu_mlprogram_only", "QuickGelu", ["x"], X4, None, NN_ONLY_REASON,
         domain="com.microsoft"),
    case("prelu_channel_slope_taken", "PRelu", ["x", "s"], X4, None, None,
         inits={"s": f32(3, 1, 1)}),
    case("prelu_runtime_slope_refused", "PRelu", ["x", "s"],
         {**X4, "s": ("f32", [3, 1, 1])}, "slope", "slope"),
    case("prelu_rank2_refused", "PRelu", ["x", "s"], {"x": ("f32", [2, 3])}, "rank 2", "rank 2",
         inits={"s": f32(1)}),
    case("prelu_single_slope_one_channel_refused", "PRelu", ["x", "s"],
         {"x": ("f32", [1, 1, 4, 4])}, "coremltools#1488", "coremltools#1488",
         inits={"s": f32(1)}),
    # convolution (impl/conv, impl/convtranspose)
    case("conv2d_constant_weight_taken", "Conv", ["x", "w"], X4, None, None, inits=W33),
    case("conv_runtime_weight_only_mlprogram", "Conv", ["x", "w"],
         {**X4, "w": ("f32", [4, 3, 3, 3])}, None, "needs constant weights"),
    case("conv3d_refused", "Conv", ["x", "w"], {"x": ("f32", [1, 3, 4, 8, 8])}, "3D convolution",
         "3D convolution", inits={"w": f32(4, 3, 3, 3, 3)}),
    case("conv_runtime_bias_refused", "Conv", ["x", "w", "b"], {**X4, "b": ("f32", [4])},
         "input B", "input B", inits=W33),
    case("conv_kernel_shape_mismatch_refused", "Conv", ["x", "w"], X4, "kernel_shape",
         "kernel_shape", inits=W33, attrs={"kernel_shape": [5, 5]}),
    case("conv1d_over_16384_refused", "Conv", ["x", "w"], {"x": ("f32", [1, 1, 20000])},
         "over 16384", "over 16384", inits={"w": f32(1, 1, 3)}),
    case("fused_conv_relu_mlprogram_only", "FusedConv", ["x", "w"], X4, None, NN_ONLY_REASON,
         inits=W33, attrs={"activation": "Relu"}, domain="com.microsoft"),
    case("fused_conv_unknown_activation_refused", "FusedConv", ["x", "w"], X4, "activation",
         NN_ONLY_REASON, inits=W33, attrs={"activation": "Selu"}, domain="com.microsoft"),
    case("conv_transpose_mlprogram_only", "ConvTranspose", ["x", "w"], X4, None,
         NN_ONLY_REASON, inits={"w": f32(3, 4, 3, 3)}),
    case("conv_transpose_unequal_pads_refused", "ConvTranspose", ["x", "w"], X4,
         "not all equal", NN_ONLY_REASON, inits={"w": f32(3, 4, 3, 3)},
         attrs={"pads": [0, 0, 1, 1]}),
    case("conv_transpose_output_padding_refused", "ConvTranspose", ["x", "w"], X4,
         "output_padding", NN_ONLY_REASON, inits={"w": f32(3, 4, 3, 3)},
         attrs={"strides": [2, 2], "output_padding": [1, 1]}),
    # pooling (impl/pool)
    case("maxpool2d_taken", "MaxPool", ["x"], X4, None, None, attrs={"kernel_shape": [2, 2]}),
    case("maxpool_indices_output_refused", "MaxPool", ["x"], X4, "Indices", "Indices",
         attrs={"kernel_shape": [2, 2]}, outs=2),
    case("maxpool_ceil_mode_only_mlprogram", "MaxPool", ["x"], X4, None, "ceil_mode",
         attrs={"kernel_shape": [2, 2], "ceil_mode": 1}),
    case("averagepool_3d_refused", "AveragePool", ["x"], {"x": ("f32", [1, 3, 4, 8, 8])},
         "4D input", "4D input", attrs={"kernel_shape": [2, 2, 2]}),
    case("global_average_pool_rank3_refused", "GlobalAveragePool", ["x"],
         {"x": ("f32", [1, 3, 8])}, "4D input", "4D input"),
    # reductions and normalization (impl/reduction, impl/batch_norm, impl/normalization)
    case("reduce_sum_constant_axes_taken", "ReduceSum", ["x", "a"], X4, None, None,
         inits={"a": i64(1)}),
    case("reduce_sum_runtime_axes_refused", "ReduceSum", ["x", "a"], {**X4, "a": ("i64", [1])},
         "axes", "axes"),
    case("reduce_max_mlprogram_only", "ReduceMax", ["x"], X4, None, NN_ONLY_REASON,
         attrs={"axes": [1]}),
    case("reduce_mean_noop_empty_axes_only_mlprogram", "ReduceMean", ["x"], X4, None,
         "noop_with_empty_axes", attrs={"noop_with_empty_axes": 1}, opset=18),
    case("batchnorm_taken_by_both", "BatchNormalization", ["x", "s", "b", "m", "v"], X4, None,
         None, inits={k: f32(3) for k in "sbmv"}),
    case("batchnorm_rank3_refused", "BatchNormalization", ["x", "s", "b", "m", "v"],
         {"x": ("f32", [1, 3, 8])}, "4D only", "4D only", inits={k: f32(3) for k in "sbmv"}),
    case("layernorm_mlprogram_only", "LayerNormalization", ["x", "s", "b"], X4, None,
         NN_ONLY_REASON, inits={"s": f32(8), "b": f32(8)}),
    case("layernorm_stash_type_0_refused", "LayerNormalization", ["x", "s"], X4, "stash_type",
         NN_ONLY_REASON, inits={"s": f32(8)}, attrs={"stash_type": 0}),
    case("layernorm_mixed_types_refused", "LayerNormalization", ["x", "s"],
         {"x": ("f16", [1, 8])}, "all float32 or all float16", NN_ONLY_REASON,
         inits={"s": f32(8)}),
    case("instancenorm_runtime_scale_refused", "InstanceNormalization", ["x", "s", "b"],
         {**X4, "s": ("f32", [3])}, "scale", NN_ONLY_REASON, inits={"b": f32(3)}),
    # elementwise (impl/binary, impl/logical, impl/where, impl/clip)
    case("add_float32_taken", "Add", ["x", "x"], X4, None, None),
    case("add_int64_refused", "Add", ["x", "x"], {"x": ("i64", [4])}, "int64", "int64"),
    case("pow_int_exponent_refused", "Pow", ["x", "e"], {**X4, "e": ("i64", [])}, "input 1",
         "input 1"),
    case("max_mlprogram_only", "Max", ["x", "x", "x"], X4, None, NN_ONLY_REASON),
    case("and_bool_mlprogram_only", "And", ["x", "x"], {"x": ("bool", [4])}, None,
         NN_ONLY_REASON),
    case("and_float_refused", "And", ["x", "x"], X4, "bool only", NN_ONLY_REASON),
    case("where_float_mlprogram_only", "Where", ["c", "x", "x"], {**X4, "c": ("bool", [8])},
         None, NN_ONLY_REASON),
    case("where_mixed_float_types_refused", "Where", ["c", "x", "y"],
         {**X4, "c": ("bool", [8]), "y": ("f16", [8])}, "both float32", NN_ONLY_REASON),
    case("clip_runtime_min_refused", "Clip", ["x", "lo"], {**X4, "lo": ("f32", [])}, "min",
         "min"),
    case("clip_constant_bounds_taken", "Clip", ["x", "lo", "hi"], X4, None, None,
         inits={"lo": np.float32(0), "hi": np.float32(6)}),
    # shape-like ops
    case("concat_channels_taken", "Concat", ["x", "x"], X4, None, None, attrs={"axis": 1}),
    case("concat_rank3_only_mlprogram", "Concat", ["x", "x"], {"x": ("f32", [1, 3, 8])}, None,
         "4D only", attrs={"axis": 1}),
    case("concat_width_axis_only_mlprogram", "Concat", ["x", "x"], X4, None, "channels",
         attrs={"axis": 3}),
    case("depth_to_space_crd_only_mlprogram", "DepthToSpace", ["x"], {"x": ("f32", [1, 4, 2, 2])},
         None, "DCR only", attrs={"blocksize": 2, "mode": "CRD"}),
    case("depth_to_space_crd_dynamic_refused", "DepthToSpace", ["x"],
         {"x": ("f32", ["N", 4, 2, 2])}, "fully static", "DCR only",
         attrs={"blocksize": 2, "mode": "CRD"}),
    case("flatten_neuralnetwork_only", "Flatten", ["x"], X4, ML_ONLY_REASON, None),
    case("lrn_neuralnetwork_only", "LRN", ["x"], X4, ML_ONLY_REASON, None, attrs={"size": 3}),
    case("lrn_rank2_refused", "LRN", ["x"], {"x": ("f32", [2, 3])}, ML_ONLY_REASON, "rank 3 or 4",
         attrs={"size": 3}),
    case("gather_float_taken", "Gather", ["x", "i"], X4, None, None, inits={"i": i64(0, 1)}),
    case("gather_int32_data_refused", "Gather", ["x", "i"], {"x": ("i32", [4, 4])},
         "input 0 is int32", "input 0 is int32", inits={"i": i64(0)}),
    case("gather_scalar_indices_static_taken", "Gather", ["x", "i"], X4, None, None,
         inits={"i": np.int64(1)}),
    case("gather_scalar_indices_dynamic_refused", "Gather", ["x", "i"],
         {"x": ("f32", ["N", 3])}, "scalar indices", "scalar indices",
         inits={"i": np.int64(1)}),
    case("gather_float16_only_mlprogram", "Gather", ["x", "i"], {"x": ("f16", [4, 4])}, None,
         "float16", inits={"i": i64(0)}),
    case("gather_nd_mlprogram_only", "GatherND", ["x", "i"], X4, None, NN_ONLY_REASON,
         inits={"i": np.zeros((2, 2), np.int64)}),
    case("gather_nd_batch_dims_refused", "GatherND", ["x", "i"], X4, "batch_dims",
         NN_ONLY_REASON, inits={"i": np.zeros((1, 2), np.int64)}, attrs={"batch_dims": 1}),
    case("gemm_constant_b_taken", "Gemm", ["a", "b"], {"a": ("f32", [2, 4])}, None, None,
         inits={"b": f32(4, 5)}),
    case("gemm_runtime_b_refused", "Gemm", ["a", "b"],
         {"a": ("f32", [2, 4]), "b": ("f32", [4, 5])},
         "CoreML (MLProgram) needs constant weights",
         "CoreML (NeuralNetwork) needs constant weights"),
    case("gemm_trans_a_refused", "Gemm", ["a", "b"], {"a": ("f32", [4, 2])}, "transA=1",
         "transA=1", inits={"b": f32(4, 5)}, attrs={"transA": 1}),
    case("gemm_alpha_refused", "Gemm", ["a", "b"], {"a": ("f32", [2, 4])}, "alpha=2.0",
         "alpha=2.0", inits={"b": f32(4, 5)}, attrs={"alpha": 2.0}),
    case("gemm_2d_bias_refused", "Gemm", ["a", "b", "c"], {"a": ("f32", [2, 4])}, "C shape",
         "C shape", inits={"b": f32(4, 5), "c": f32(2, 5)}),
    case("matmul_runtime_b_only_mlprogram", "MatMul", ["a", "b"],
         {"a": ("f32", [2, 4]), "b": ("f32", [4, 5])}, None, "needs constant weights"),
    case("matmul_3d_only_mlprogram", "MatMul", ["a", "b"], {"a": ("f32", [2, 3, 4])}, None,
         "2D only", inits={"b": f32(4, 5)}),
    case("grid_sample_linear_mlprogram_only", "GridSample", ["x", "g"],
         {**X4, "g": ("f32", [1, 4, 4, 2])}, None, NN_ONLY_REASON, opset=20),
    case("grid_sample_nearest_refused", "GridSample", ["x", "g"],
         {**X4, "g": ("f32", [1, 4, 4, 2])}, "mode 'nearest'", NN_ONLY_REASON,
         attrs={"mode": "nearest"}, opset=20),
    case("grid_sample_reflection_refused", "GridSample", ["x", "g"],
         {**X4, "g": ("f32", [1, 4, 4, 2])}, "reflection", NN_ONLY_REASON,
         attrs={"padding_mode": "reflection"}, opset=20),
    case("pad_constant_last_two_dims_taken", "Pad", ["x", "p", "v"], X4, None, None,
         inits={"p": i64(0, 0, 1, 1, 0, 0, 1, 1), "v": np.float32(0)}),
    case("pad_without_constant_value_only_mlprogram", "Pad", ["x", "p"], X4, None,
         "constant_value", inits={"p": i64(0, 0, 1, 1, 0, 0, 1, 1)}),
    case("pad_reflect_only_mlprogram", "Pad", ["x", "p"], X4, None, "constant mode",
         inits={"p": i64(0, 0, 1, 1, 0, 0, 1, 1)}, attrs={"mode": "reflect"}),
    case("pad_edge_refused", "Pad", ["x", "p"], X4, "'edge'", "constant mode",
         inits={"p": i64(0, 0, 1, 1, 0, 0, 1, 1)}, attrs={"mode": "edge"}),
    case("pad_channels_only_mlprogram", "Pad", ["x", "p", "v"], X4, None, "last two dims",
         inits={"p": i64(0, 1, 0, 0, 0, 1, 0, 0), "v": np.float32(0)}),
    case("pad_reflect_wider_than_dim_refused", "Pad", ["x", "p"], X4, "not below",
         "constant mode", inits={"p": i64(0, 0, 8, 0, 0, 0, 0, 0)}, attrs={"mode": "reflect"}),
    case("pad_runtime_pads_refused", "Pad", ["x", "p"], {**X4, "p": ("i64", [8])}, "pads",
         "pads"),
    case("reshape_static_taken", "Reshape", ["x", "s"], X4, None, None,
         inits={"s": i64(1, -1)}),
    case("reshape_dynamic_input_only_mlprogram", "Reshape", ["x", "s"],
         {"x": ("f32", ["N", 3, 8, 8])}, None, "dynamic", inits={"s": i64(-1, 192)}),
    case("reshape_runtime_shape_refused", "Reshape", ["x", "s"], {**X4, "s": ("i64", [2])},
         "not a constant initializer", "not a constant initializer"),
    case("reshape_copy_dim_at_dynamic_dim_refused", "Reshape", ["x", "s"],
         {"x": ("f32", ["N", 192])}, "0 (copy)", "dynamic", inits={"s": i64(0, 3, 64)}),
    case("reshape_rank6_refused", "Reshape", ["x", "s"], X4, "new rank 6", "new rank 6",
         inits={"s": i64(1, 3, 2, 4, 2, 4)}),
    case("reshape_allowzero_refused", "Reshape", ["x", "s"], X4, "allowzero", "allowzero",
         inits={"s": i64(1, 0, 3, 64)}, attrs={"allowzero": 1}, opset=14),
    case("shape_float_taken", "Shape", ["x"], X4, None, None),
    case("shape_int64_input_refused", "Shape", ["x"], {"x": ("i64", [4])}, "int64", "int64"),
    case("shape_start_only_mlprogram", "Shape", ["x"], X4, None, "start/end", attrs={"start": 1},
         opset=15),
    case("slice_static_taken", "Slice", ["x", "st", "en"], X4, None, None,
         inits={"st": i64(0), "en": i64(2)}),
    case("slice_dynamic_data_refused", "Slice", ["x", "st", "en"], {"x": ("f32", ["N", 8])},
         "not fully static", "not fully static", inits={"st": i64(0), "en": i64(2)}),
    case("slice_runtime_starts_refused", "Slice", ["x", "st", "en"], {**X4, "st": ("i64", [1])},
         "starts", "starts", inits={"en": i64(2)}),
    case("slice_empty_range_refused", "Slice", ["x", "st", "en"], X4, "empty slice",
         "empty slice", inits={"st": i64(2), "en": i64(2)}),
    case("slice_float16_only_mlprogram", "Slice", ["x", "st", "en"], {"x": ("f16", [4, 4])},
         None, "float16", inits={"st": i64(0), "en": i64(2)}),
    case("softmax_static_taken", "Softmax", ["x"], X4, None, None),
    case("softmax_dynamic_refused", "Softmax", ["x"], {"x": ("f32", ["N", 10])}, "fully static",
         "fully static"),
    case("split_constant_sizes_taken", "Split", ["x", "s"], X4, None, None,
         inits={"s": i64(1, 2)}, attrs={"axis": 1}, outs=2),
    case("split_sizes_not_summing_refused", "Split", ["x", "s"], X4, "sum", "sum",
         inits={"s": i64(1, 1)}, attrs={"axis": 1}, outs=2),
    case("split_num_outputs_taken", "Split", ["x"], X4, None, None,
         attrs={"axis": 2, "num_outputs": 2}, outs=2, opset=18),
    case("squeeze_constant_axes_taken", "Squeeze", ["x", "a"], {"x": ("f32", [1, 3])}, None,
         None, inits={"a": i64(0)}),
    case("squeeze_int64_shape_tensor_refused", "Squeeze", ["x", "a"], {"x": ("i64", [1, 3])},
         "int64", "int64", inits={"a": i64(0)}),
    case("unsqueeze_mlprogram_only", "Unsqueeze", ["x", "a"], X4, None, NN_ONLY_REASON,
         inits={"a": i64(0)}),
    case("unsqueeze_to_rank6_refused", "Unsqueeze", ["x", "a"], {"x": ("f32", [1, 2, 3, 4, 5])},
         "output rank 6", NN_ONLY_REASON, inits={"a": i64(0)}),
    case("tile_constant_repeats_taken", "Tile", ["x", "r"], X4, None, None,
         inits={"r": i64(1, 1, 2, 2)}),
    case("tile_runtime_repeats_only_mlprogram", "Tile", ["x", "r"], {**X4, "r": ("i64", [4])},
         None, "repeats"),
    case("tile_repeats_rank_mismatch_refused", "Tile", ["x", "r"], X4, "input rank", "input rank",
         inits={"r": i64(2, 2)}),
    case("tile_bool_taken", "Tile", ["x", "r"], {"x": ("bool", [2, 2])}, None, None,
         inits={"r": i64(2, 2)}),
    case("transpose_taken", "Transpose", ["x"], X4, None, None, attrs={"perm": [0, 2, 3, 1]}),
    case("identity_taken", "Identity", ["x"], X4, None, None),
    # Resize (impl/resize)
    case("resize_nearest_floor_asymmetric_taken", "Resize", ["x", "", "sc"], X4, None, None,
         inits={"sc": np.array([1, 1, 2, 2], np.float32)},
         attrs={"mode": "nearest", "nearest_mode": "floor",
                "coordinate_transformation_mode": "asymmetric"}),
    case("resize_cubic_refused", "Resize", ["x", "", "sc"], X4, "mode 'cubic'", "mode 'cubic'",
         inits={"sc": np.array([1, 1, 2, 2], np.float32)}, attrs={"mode": "cubic"}),
    case("resize_default_nearest_mode_refused", "Resize", ["x", "", "sc"], X4,
         "nearest_mode 'round_prefer_floor'", "nearest_mode 'round_prefer_floor'",
         inits={"sc": np.array([1, 1, 2, 2], np.float32)}),
    case("resize_linear_half_pixel_only_mlprogram", "Resize", ["x", "", "sc"], X4, None,
         "asymmetric only", inits={"sc": np.array([1, 1, 2, 2], np.float32)},
         attrs={"mode": "linear"}),
    case("resize_downsample_only_mlprogram", "Resize", ["x", "", "sc"], X4, None,
         "need MLProgram", inits={"sc": np.array([1, 1, 0.5, 0.5], np.float32)},
         attrs={"mode": "linear"}),
    case("resize_fractional_upsample_refused", "Resize", ["x", "", "sc"], X4, "whole numbers",
         "whole numbers", inits={"sc": np.array([1, 1, 1.5, 1.5], np.float32)},
         attrs={"mode": "linear"}),
    case("resize_channel_scale_refused", "Resize", ["x", "", "sc"], X4, "last two axes",
         "last two axes", inits={"sc": np.array([1, 2, 2, 2], np.float32)},
         attrs={"mode": "linear"}),
    case("resize_runtime_scales_refused", "Resize", ["x", "", "sc"], {**X4, "sc": ("f32", [4])},
         "scales", "scales", attrs={"mode": "linear"}),
    case("resize_sizes_linear_asymmetric_taken_by_both", "Resize", ["x", "", "", "sz"], X4,
         None, None, inits={"sz": i64(1, 3, 16, 16)},
         attrs={"mode": "linear", "coordinate_transformation_mode": "asymmetric"}),
    case("resize_empty_roi_initializer_allowed", "Resize", ["x", "roi", "sc"], X4, None, None,
         inits={"roi": np.zeros(0, np.float32), "sc": np.array([1, 1, 2, 2], np.float32)},
         attrs={"mode": "nearest", "nearest_mode": "floor",
                "coordinate_transformation_mode": "asymmetric"}),
    case("resize_without_scales_or_sizes_refused", "Resize", ["x", "", "sc"], X4,
         "scales has 0 values", "scales has 0 values", inits={"sc": np.zeros(0, np.float32)},
         attrs={"mode": "nearest", "nearest_mode": "floor"}),
    case("resize_opset10_below_builder_min", "Resize", ["x", "sc"], X4, "since_version 10",
         "since_version 10", inits={"sc": np.array([1, 1, 2, 2], np.float32)}, opset=10),
]
# fmt: on


@pytest.mark.parametrize("c", CASES)
@pytest.mark.parametrize("fmt", ["mlprogram", "neuralnetwork"])
def test_coreml_node_verdict(tmp_path, c: Case, fmt: str):
    outs = [f"y{i}" for i in range(c.outs)]
    node = helper.make_node(c.op, c.ins, outs, name="n", domain=c.domain, **c.attrs)
    graph = build(tmp_path, [node], c.feeds, c.inits, c.opset)
    spec = coreml.MLPROGRAM if fmt == "mlprogram" else coreml.NEURALNETWORK
    expected = c.ml if fmt == "mlprogram" else c.nn
    reason = verdict(graph, spec)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None
        assert expected in reason
        assert reason.startswith(f"{c.op}: ")


# ------------------------------------------------------------------ named behaviours


def _relu_graph(tmp_path, shape=("N", 3, 8, 8)):
    node = helper.make_node("Relu", ["x"], ["y"], name="n")
    return build(tmp_path, [node], {"x": ("f32", list(shape))})


def test_coreml_neuralnetwork_refuses_non_constant_gemm_b(tmp_path):
    node = helper.make_node("Gemm", ["a", "b"], ["y"], name="n")
    graph = build(tmp_path, [node], {"a": ("f32", [2, 4]), "b": ("f32", [4, 5])})
    assert verdict(graph, coreml.NEURALNETWORK) == (
        "Gemm: input B ('b') is not a constant initializer; "
        "CoreML (NeuralNetwork) needs constant weights"
    )


def test_coreml_require_static_input_shapes_refuses_dynamic_dims(tmp_path):
    graph = _relu_graph(tmp_path)
    strict = coreml.make_spec("mlprogram", require_static_input_shapes=True)
    assert verdict(graph, coreml.MLPROGRAM) is None
    reason = verdict(graph, strict)
    assert "RequireStaticInputShapes=1" in reason
    assert "[N,3,8,8]" in reason


def test_coreml_mlprogram_same_lower_conv_needs_coreml_6(tmp_path):
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="n", auto_pad="SAME_LOWER")
    graph = build(tmp_path, [node], X4, W33)
    assert verdict(graph, coreml.MLPROGRAM, coreml_version=6) is None
    assert "SAME_LOWER needs CoreML 6+" in verdict(graph, coreml.MLPROGRAM, coreml_version=5)
    assert verdict(graph, coreml.NEURALNETWORK, coreml_version=5) is None


def test_coreml_gather_float16_needs_coreml_6(tmp_path):
    node = helper.make_node("Gather", ["x", "i"], ["y"], name="n")
    graph = build(tmp_path, [node], {"x": ("f16", [4, 4])}, {"i": i64(0)})
    assert verdict(graph, coreml.MLPROGRAM, coreml_version=6) is None
    assert "CoreML 6+" in verdict(graph, coreml.MLPROGRAM, coreml_version=5)


def test_coreml_depth_to_space_float16_dcr_needs_coreml_7(tmp_path):
    node = helper.make_node("DepthToSpace", ["x"], ["y"], name="n", blocksize=2)
    graph = build(tmp_path, [node], {"x": ("f16", [1, 4, 2, 2])})
    assert verdict(graph, coreml.MLPROGRAM, coreml_version=7) is None
    assert "CoreML 7+" in verdict(graph, coreml.MLPROGRAM, coreml_version=6)


def test_coreml_mlprogram_falls_back_to_neuralnetwork_below_coreml_5(tmp_path):
    node = helper.make_node("Erf", ["x"], ["y"], name="n")
    graph = build(tmp_path, [node], X4)
    assert verdict(graph, coreml.MLPROGRAM, coreml_version=5) is None
    reason = verdict(graph, coreml.MLPROGRAM, coreml_version=4)
    assert "MLProgram only" in reason
    assert "ORT uses NeuralNetwork" in reason


def test_coreml_refuses_everything_below_coreml_3(tmp_path):
    graph = _relu_graph(tmp_path)
    assert "minimum 3" in verdict(graph, coreml.NEURALNETWORK, coreml_version=2)


def test_coreml_refuses_external_data_initializers(tmp_path):
    graph = open_model(external_data(tmp_path)).graph
    reason = verdict(graph, coreml.MLPROGRAM, name="matmul")
    assert "external data (weights.bin)" in reason


def test_coreml_skips_subgraph_nodes_unless_enabled(tmp_path):
    graph = open_model(save(if_subgraph(), tmp_path / "if.onnx")).graph
    if_node = next(n for n in graph.nodes if n.op_type == "If")
    then_graph = if_node.subgraphs["then_branch"]
    relu = next(n for n in then_graph.nodes if n.op_type == "Relu")
    ctx = NodeContext(then_graph, relu)
    assert "EnableOnSubgraphs=0" in coreml.MLPROGRAM.check_node(ctx)
    enabled = coreml.make_spec("mlprogram", enable_on_subgraphs=True)
    assert "EnableOnSubgraphs" not in (enabled.check_node(ctx) or "")
    assert enabled.takes_subgraph_nodes
    if_reason = coreml.MLPROGRAM.check_node(NodeContext(graph, if_node))
    assert if_reason == "If: control-flow ops have no CoreML builder"


def _argmax_cast(tmp_path, to: int = TensorProto.INT32, extra_consumer: bool = False) -> Graph:
    nodes = [
        helper.make_node("ArgMax", ["x"], ["am"], name="argmax", axis=1),
        helper.make_node("Cast", ["am"], ["y"], name="cast", to=to),
    ]
    if extra_consumer:
        nodes.append(helper.make_node("Cast", ["am"], ["z"], name="cast2", to=TensorProto.FLOAT))
    return build(tmp_path, nodes, X4)


def test_coreml_takes_argmax_followed_by_int32_cast_in_both_formats(tmp_path):
    graph = _argmax_cast(tmp_path)
    for spec in (coreml.MLPROGRAM, coreml.NEURALNETWORK):
        assert verdict(graph, spec, name="argmax") is None
        assert verdict(graph, spec, name="cast") is None


def test_coreml_mlprogram_refuses_argmax_whose_cast_is_not_int32(tmp_path):
    graph = _argmax_cast(tmp_path, to=TensorProto.FLOAT)
    assert "does not cast to int32" in verdict(graph, coreml.MLPROGRAM, name="argmax")


def test_coreml_mlprogram_refuses_argmax_that_only_feeds_a_graph_output(tmp_path):
    node = helper.make_node("ArgMax", ["x"], ["y"], name="n", axis=1)
    graph = build(tmp_path, [node], X4)
    assert "0 consumer nodes" in verdict(graph, coreml.MLPROGRAM)
    assert verdict(graph, coreml.NEURALNETWORK) is None


def test_coreml_neuralnetwork_refuses_argmax_with_int32_cast_among_several_consumers(tmp_path):
    graph = _argmax_cast(tmp_path, extra_consumer=True)
    assert "Cast to int32" in verdict(graph, coreml.NEURALNETWORK, name="argmax")
    assert "exactly one consumer" in verdict(graph, coreml.MLPROGRAM, name="argmax")


def test_coreml_cast_of_a_graph_input_mlprogram_only(tmp_path):
    # ORT's CastBoolMLProgramPartition / CastNonArgMaxNeuralNetworkNotSupported
    node = helper.make_node("Cast", ["x"], ["y"], name="n", to=TensorProto.INT32)
    graph = build(tmp_path, [node], {"x": ("i64", [1, 4])})
    assert verdict(graph, coreml.MLPROGRAM) is None
    assert "graph input or initializer" in verdict(graph, coreml.NEURALNETWORK)


def test_coreml_neuralnetwork_takes_a_cast_only_after_an_argmax(tmp_path):
    nodes = [
        helper.make_node("Erf", ["x"], ["e"], name="erf"),
        helper.make_node("Cast", ["e"], ["y"], name="n", to=TensorProto.FLOAT16),
    ]
    graph = build(tmp_path, nodes, X4)
    assert verdict(graph, coreml.MLPROGRAM) is None
    reason = verdict(graph, coreml.NEURALNETWORK)
    assert "input is float32" in reason  # NeuralNetwork casts only an ArgMax's int64
    argmax_then_uint32 = _argmax_cast(tmp_path, to=TensorProto.UINT32)
    assert "folds only a Cast to int32" in verdict(
        argmax_then_uint32, coreml.NEURALNETWORK, name="cast"
    )
    assert verdict(argmax_then_uint32, coreml.NEURALNETWORK, name="argmax") is None


def test_coreml_mlprogram_refuses_cast_to_double(tmp_path):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Cast", ["r"], ["y"], name="n", to=TensorProto.DOUBLE),
    ]
    graph = build(tmp_path, nodes, X4)
    assert "float32 to float64" in verdict(graph, coreml.MLPROGRAM)


def test_coreml_discards_partitions_of_only_trivial_ops(tmp_path):
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], name="t", perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["t", "s"], ["r"], name="r"),
        helper.make_node("Relu", ["r"], ["y"], name="relu"),
    ]
    graph = build(tmp_path, nodes, X4, {"s": i64(1, -1)})
    trivial, relu = list(graph.nodes[:2]), graph.nodes[2]
    reason = coreml.discard(trivial, graph)
    assert "only trivial ops (Reshape, Transpose)" in reason
    assert coreml.discard([*trivial, relu], graph) is None
    assert coreml.MLPROGRAM.discard is coreml.discard


def test_coreml_specs_describe_both_formats():
    ml, nn = coreml.MLPROGRAM, coreml.NEURALNETWORK
    assert (ml.ep_id, nn.ep_id) == ("coreml-mlprogram", "coreml-neuralnetwork")
    for spec in (ml, nn):
        assert spec.compiles
        assert not spec.groups_qdq_units
        assert not spec.takes_subgraph_nodes
        assert spec.ort_source_version == coreml.ORT_SOURCE_VERSION
        assert "EnableOnSubgraphs" in spec.subgraph_policy
    with pytest.raises(ValueError, match="unknown CoreML model format"):
        coreml.make_spec("mlmodel")


def test_coreml_rule_tables_cite_their_builders_and_split_by_format():
    ml, nn = coreml.MLPROGRAM_RULES, coreml.NEURALNETWORK_RULES
    for rule in (*ml.values(), *nn.values()):
        assert rule.source.startswith("onnxruntime/core/providers/coreml/builders/impl/")
        assert rule.source.endswith("_op_builder.cc")
    assert ("ai.onnx", "Gelu") in ml and ("ai.onnx", "Gelu") not in nn
    assert ("ai.onnx", "LRN") in nn and ("ai.onnx", "LRN") not in ml
    assert ("com.microsoft", "QuickGelu") in ml
    assert ml[("ai.onnx", "Resize")].min_opset == 11
    assert all(r.max_opset == 20 for r in ml.values())


def test_coreml_rule_check_restates_op_conditions(tmp_path):
    node = helper.make_node("Gemm", ["a", "b"], ["y"], name="n")
    graph = build(tmp_path, [node], {"a": ("f32", [2, 4]), "b": ("f32", [4, 5])})
    rule = coreml.NEURALNETWORK_RULES[("ai.onnx", "Gemm")]
    assert "constant weights" in rule.check(NodeContext(graph, graph.nodes[0]))


def test_coreml_module_imports_neither_onnx_nor_onnxruntime():
    code = (
        "import sys, ortprep.eps.coreml; "
        "print(any(m.split('.')[0] in ('onnx', 'onnxruntime') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
