"""Each NNAPI op builder's own conditions (``nnapi_builtin/builders/impl/<x>_op_builder.cc``,
written ``impl/<x>``): the input types a builder takes (``io``) and its other conditions
(``impl``), gathered per builder in a :class:`BuilderSpec`. The table is :mod:`.rules`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ortprep.core.graph import Dim
from ortprep.eps.nnapi.checks import (
    binary_quant_types,
    float_input0,
    must_be_constant,
    no_zero_dims,
    quant_io,
    rank_between,
    required_output_params,
    same_params,
    type_is,
)
from ortprep.eps.nnapi.constants import (
    FL1,
    FL2,
    FL3,
    FL4,
    FLOAT,
    FLT_MAX,
    UINT8,
    USE_NCHW,
    api_name,
)
from ortprep.eps.nnapi.view import UnitView

# --------------------------------------------------------------------------- op specs


@dataclass(frozen=True)
class BuilderSpec:
    """How one NNAPI op builder decides (the parts beyond the EP-wide checks)."""

    min_fl: int | Callable[[UnitView], int] = FL1
    qdq: bool = False  # builder accepts the QDQ group of its op (GetQuantizedOpType)
    io: Callable[[UnitView], str | None] = float_input0  # HasSupportedInputOutputsImpl
    impl: Callable[[UnitView], str | None] | None = None  # IsOpSupportedImpl


def layout_fl(base: int) -> int:
    return FL3 if USE_NCHW else base


# binary: impl/binary_op_builder.cc ----------------------------------------


def io_binary(v: UnitView) -> str | None:
    if v.quantized:
        return binary_quant_types(v) or quant_io(v, (0, 1), True) or quant_io(v, (0,), False)
    if v.op == "Pow":
        return type_is(v, 0, (FLOAT,)) or type_is(v, 1, (FLOAT,))
    return float_input0(v)


def impl_binary(v: UnitView) -> str | None:
    for i in (0, 1):
        rank = v.in_rank(i)
        if rank is not None and rank > 4:
            return f"{v.op}: input '{v.in_name(i)}' has rank {rank}; NNAPI takes rank 4 or less"
    return None


# unary / activations: impl/unary, relu, elu, leakyrelu, clip, minmax, cast ----------


def impl_sigmoid(v: UnitView) -> str | None:
    return rank_between(v, 0, 1, 4) if v.op == "Sigmoid" else None


def io_qlinear_sigmoid(v: UnitView) -> str | None:
    return (
        quant_io(v, (0,), True)
        or quant_io(v, (0,), False)
        or required_output_params(v, 1.0 / 256, 0)
    )


def impl_leakyrelu(v: UnitView) -> str | None:
    return rank_between(v, 0, 1, 4)


def impl_clip(v: UnitView) -> str | None:
    # SU GetClipMinMax: before opset 11 min/max are attributes; later, constant inputs.
    lo, hi = -FLT_MAX, FLT_MAX
    if (v.node.since_version or 11) < 11:
        lo, hi = float(v.attr("min", lo)), float(v.attr("max", hi))
    else:
        for slot, what in ((1, "min"), (2, "max")):
            name = v.node.input(slot)
            if not name:
                continue
            if not v.const(name):
                return f"Clip: {what} '{name}' is not a constant initializer; NNAPI needs it"
            value = float(v.values(name).reshape(-1)[0])
            lo, hi = (value, hi) if slot == 1 else (lo, value)
    if (lo, hi) in ((0.0, 6.0), (-1.0, 1.0)):
        return None
    return (
        f"Clip: range ({lo:g}, {hi:g}) is neither (0, 6) nor (-1, 1); NNAPI maps Clip only "
        "to RELU6 or RELU1"
    )


def impl_minmax(v: UnitView) -> str | None:
    count = len(v.node.inputs)
    if count != 2:
        return f"{v.op}: {count} inputs; NNAPI takes exactly 2"
    return None


def impl_cast(v: UnitView) -> str | None:
    to = int(v.attr("to", 0))
    if to not in (1, 6):
        return f"Cast: target type {_onnx_type(to)}; NNAPI casts only to float32 or int32"
    return None


def _onnx_type(code: int) -> str:
    names = {
        1: "float32",
        2: "uint8",
        3: "int8",
        5: "int16",
        6: "int32",
        7: "int64",
        9: "bool",
        10: "float16",
        11: "float64",
    }
    return names.get(code, f"type {code}")


# conv: impl/conv_op_builder.cc ------------------------------------------------


def io_quantizable(v: UnitView) -> str | None:
    """Conv/Gemm/MatMul: float32 input 0, or quantized A/B inputs and output."""
    if not v.quantized:
        return float_input0(v)
    return binary_quant_types(v) or quant_io(v, (0, 1), True) or quant_io(v, (0,), False)


def impl_conv(v: UnitView) -> str | None:
    if v.quantized and v.node.domain == "com.microsoft":
        return "QLinearConv: the com.microsoft (NHWC) QLinearConv is not supported by NNAPI"
    weight = v.in_name(1)
    if not v.const(weight):
        return f"{v.op}: weight '{weight}' is not a constant initializer; NNAPI needs it constant"
    dims = v.graph.initializers[weight].dims
    if len(dims) != 4:
        return (
            f"{v.op}: {len(dims) - 2}D convolution (weight rank {len(dims)}); NNAPI takes 2D "
            "convolution only"
        )
    dilations = tuple(v.attr("dilations", (1, 1)))
    if dilations != (1, 1):
        if int(v.attr("group", 1)) != 1 and dims[1] != 1:
            return f"{v.op}: dilations {list(dilations)} on a grouped convolution; NNAPI has none"
        if v.api < FL3:
            return f"{v.op}: dilated convolution needs {api_name(FL3)}; the target is API {v.api}"
    if v.quantized and len(v.inputs) > 2:
        return must_be_constant(v, 2, "bias")
    return None


# pool: impl/pool_op_builder.cc --------------------------------------------------


def io_pool(v: UnitView) -> str | None:
    average = v.op in ("AveragePool", "QLinearAveragePool")
    quant_average = v.quantized and average
    if v.op != "MaxPool" and not quant_average:
        return float_input0(v)
    if quant_average:
        reason = quant_io(v, (0,), True) or quant_io(v, (0,), False)
        if reason:
            return reason
    return type_is(v, 0, (FLOAT, UINT8))


def impl_pool(v: UnitView) -> str | None:
    reason = rank_between(v, 0, 4, 4)
    if reason:
        return reason
    if v.op.startswith("Global"):
        return None
    checks = (
        (int(v.attr("count_include_pad", 0)) == 1, "count_include_pad=1"),
        (int(v.attr("storage_order", 0)) == 1, "storage_order=1"),
        (
            len(v.attr("kernel_shape", (1, 1))) != 2,
            f"{len(v.attr('kernel_shape', (1, 1)))}D pooling (NNAPI pools in 2D only)",
        ),
        (int(v.attr("ceil_mode", 0)) == 1, "ceil_mode=1"),
        (tuple(v.attr("dilations", (1, 1))) != (1, 1), "dilations other than 1"),
        (len(v.outputs) != 1, "a second (Indices) output"),
    )
    for failed, what in checks:
        if failed:
            return f"{v.op}: {what} is not supported by NNAPI"
    if v.quantized:
        return same_params(v, v.inputs[0], v.outputs[0], "output")
    return None


# gemm / matmul: impl/gemm_op_builder.cc, op_builder_helpers.cc IsSupportedBatchMatMul ------


def _batch_matmul(v: UnitView) -> bool:
    if v.op != "MatMul" or v.qdq or v.api < FL3 or v.dtype(v.in_name(0)) != FLOAT:
        return False
    a, b = v.in_shape(0), v.in_shape(1)
    if a is None or b is None or len(a) < 3 or len(a) != len(b):
        return False
    return tuple(a[:-2]) == tuple(b[:-2])


def impl_gemm(v: UnitView) -> str | None:
    if _batch_matmul(v):
        return None
    a_rank, b_rank = v.in_rank(0), v.in_rank(1)
    if a_rank != 2:
        return f"{v.op}: input A '{v.in_name(0)}' has rank {a_rank}; NNAPI takes 2D A"
    if b_rank != 2:
        return f"{v.op}: input B '{v.in_name(1)}' has rank {b_rank}; NNAPI takes 2D B"
    if v.op == "Gemm":
        reason = _gemm_attributes(v)
        if reason:
            return reason
    elif not v.const(v.in_name(1)):
        return (
            f"{v.op}: B '{v.in_name(1)}' is not a constant initializer; NNAPI needs a constant "
            "B (or batched MatMul with rank >= 3 at API 29+)"
        )
    if v.qtype == "QDQGemm" and len(v.inputs) > 2:
        return must_be_constant(v, 2, "bias")
    return None


def _gemm_attributes(v: UnitView) -> str | None:
    trans_a, trans_b = int(v.attr("transA", 0)), int(v.attr("transB", 0))
    alpha, beta = float(v.attr("alpha", 1.0)), float(v.attr("beta", 1.0))
    if trans_a != 0 or alpha != 1.0 or beta != 1.0:
        return (
            f"Gemm: transA={trans_a}, alpha={alpha:g}, beta={beta:g}; NNAPI takes only "
            "transA=0, alpha=1, beta=1"
        )
    if trans_b == 0 and not v.const(v.in_name(1)):
        return f"Gemm: B '{v.in_name(1)}' must be a constant initializer when transB=0"
    if len(v.inputs) < 3 or not v.in_name(2):
        return None
    c_shape = v.in_shape(2) or ()
    b_shape = v.in_shape(1) or (None, None)
    n = b_shape[1] if trans_b == 0 else b_shape[0]
    if len(c_shape) == 0:
        return "Gemm: a scalar C is not supported by NNAPI; C must be a vector of N"
    if len(c_shape) > 1:
        if v.api < FL2:
            return (
                f"Gemm: a C of rank {len(c_shape)} needs {api_name(FL2)}; the target is API {v.api}"
            )
        if any(d != 1 for d in c_shape[:-1]):
            return f"Gemm: C has shape {list(c_shape)}; NNAPI takes C of shape (N) or (1, ..., N)"
    if c_shape[-1] != n:
        return f"Gemm: C has {c_shape[-1]} values but N is {n}; NNAPI needs C to be a vector of N"
    return None


# normalization / shape ops ------------------------------------------------------------


def impl_batchnorm(v: UnitView) -> str | None:  # impl/batchnorm_op_builder.cc
    if len(v.node.outputs) != 1:
        return "BatchNormalization: training mode (more than one output) is not supported"
    rank = v.in_rank(0)
    if rank is not None and rank > 4:
        return f"BatchNormalization: input has rank {rank}; NNAPI takes rank 4 or less"
    if int(v.attr("spatial", 1)) != 1:
        return "BatchNormalization: spatial=0 is not supported by NNAPI"
    for i, what in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var")):
        reason = must_be_constant(v, i, what)
        if reason:
            return reason
    return None


def impl_lrn(v: UnitView) -> str | None:  # impl/LRN_op_builder.cc
    return rank_between(v, 0, 4, 4)


def io_concat(v: UnitView) -> str | None:
    if v.qdq:
        return quant_io(v, tuple(range(len(v.inputs))), True) or quant_io(v, (0,), False)
    return type_is(v, 0, (FLOAT, UINT8))


def impl_concat(v: UnitView) -> str | None:  # impl/concat_op_builder.cc
    reason = rank_between(v, 0, 1, 4)
    if reason or not v.qdq or v.api >= FL3:
        return reason
    for io in (*v.inputs[1:], *v.outputs):
        reason = same_params(v, v.inputs[0], io, f"'{io.name}'")
        if reason:
            return f"{reason} below {api_name(FL3)}"
    return None


def io_uint8_or_qdq(v: UnitView) -> str | None:
    """Transpose (and Resize): float32 or uint8; a QDQ group needs quantized input and output."""
    reason = type_is(v, 0, (FLOAT, UINT8))
    if reason or not v.qdq:
        return reason
    return quant_io(v, (0,), True) or quant_io(v, (0,), False)


def impl_transpose(v: UnitView) -> str | None:  # impl/transpose_op_builder.cc
    return rank_between(v, 0, 1, 4)


def io_float_or_qdq(v: UnitView) -> str | None:
    """Reshape/Softmax: float32, or a QDQ group with quantized input and output."""
    if not v.qdq:
        return float_input0(v)
    return quant_io(v, (0,), True) or quant_io(v, (0,), False)


def impl_reshape(v: UnitView) -> str | None:  # impl/reshape_op_builder.cc
    reason = rank_between(v, 0, 1, 4)
    if reason:
        return reason
    shape_name = v.node.input(1)
    if not v.const(shape_name):
        return (
            f"Reshape: shape '{shape_name}' is not a constant initializer; NNAPI needs a "
            "constant target shape"
        )
    in_shape = v.in_shape(0) or ()
    allow_zero = int(v.attr("allowzero", 0)) == 1
    for i, dim in enumerate(v.values(shape_name).reshape(-1).tolist()):
        if dim == 0 and (allow_zero or (i < len(in_shape) and in_shape[i] == 0)):
            return f"Reshape: shape has 0 at axis {i} with an empty input or allowzero=1"
    return None


def impl_flatten(v: UnitView) -> str | None:  # impl/flatten_op_builder.cc
    reason = rank_between(v, 0, 1, 4)
    if reason:
        return reason
    shape = [d if isinstance(d, int) else 0 for d in v.in_shape(0) or ()]
    axis = int(v.attr("axis", 1))
    axis = axis + len(shape) if axis < 0 else axis
    left = right = 1
    for d in shape[:axis]:
        left *= d
    for d in shape[axis:]:
        right *= d
    if left == 0 and right == 0:
        return "Flatten: both output dimensions would be 0"
    return None


def impl_squeeze(v: UnitView) -> str | None:  # impl/squeeze_op_builder.cc, unsqueeze_op_builder.cc
    reason = rank_between(v, 0, 1, 4)
    if reason or (v.node.since_version or 13) < 13:
        return reason
    return must_be_constant(v, 1, "axes")


def impl_slice(v: UnitView) -> str | None:  # impl/slice_op_builder.cc
    reason = rank_between(v, 0, 1, 4) or no_zero_dims(v, 0)
    if reason:
        return reason
    for i, what in ((1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")):
        reason = must_be_constant(v, i, what)
        if reason:
            return reason
    return None


def impl_split(v: UnitView) -> str | None:  # impl/split_op_builder.cc
    shape = v.in_shape(0) or ()
    axis = int(v.attr("axis", 0))
    axis = axis + len(shape) if axis < 0 else axis
    if not 0 <= axis < len(shape):
        return f"Split: axis {axis} is outside the input's rank {len(shape)}"
    dim = int(shape[axis] or 0)
    outputs = len(v.node.outputs)
    if v.node.input(1):
        reason = must_be_constant(v, 1, "split")
        if reason:
            return reason
        sizes = [int(x) for x in v.values(v.node.input(1)).reshape(-1)]
        if sum(sizes) != dim or len(set(sizes)) > 1:
            return f"Split: sizes {sizes} are not equal parts of {dim}; NNAPI splits evenly only"
        return None
    if (v.node.since_version or 13) >= 18:
        num = v.attr("num_outputs")
        if num is None or int(num) != outputs or int(num) > dim:
            return f"Split: num_outputs {num} must be given, equal {outputs} and be at most {dim}"
    if outputs == 0 or dim % outputs:
        return f"Split: {outputs} outputs do not divide axis size {dim}; NNAPI splits evenly only"
    return None


def impl_gather(v: UnitView) -> str | None:  # impl/gather_op_builder.cc
    reason = rank_between(v, 0, 1, 4) or no_zero_dims(v, 0)
    if reason:
        return reason
    if v.dtype(v.in_name(1)) != "int32":
        return must_be_constant(v, 1, "indices (not int32)")
    return None


def impl_pad(v: UnitView) -> str | None:  # impl/pad_op_builder.cc
    reason = rank_between(v, 0, 1, 4) or no_zero_dims(v, 0)
    if reason:
        return reason
    mode = v.attr("mode", "constant")
    if mode != "constant":
        return f"Pad: mode '{mode}'; NNAPI pads in constant mode only"
    pads = v.node.input(1)
    if not v.const(pads):
        return f"Pad: pads '{pads}' is not a constant initializer; NNAPI needs constant pads"
    values = [int(x) for x in v.values(pads).reshape(-1)]
    if any(x < 0 for x in values):
        return f"Pad: negative pads {values}; NNAPI pads only outward"
    return must_be_constant(v, 2, "constant_value")


def impl_depthtospace(v: UnitView) -> str | None:  # impl/depthtospace_op_builder.cc
    reason = rank_between(v, 0, 4, 4)
    if reason:
        return reason
    if (v.node.since_version or 1) >= 11 and v.attr("mode", "DCR") != "DCR":
        return f"DepthToSpace: mode '{v.attr('mode')}'; NNAPI takes DCR only"
    if USE_NCHW and v.api < FL3:
        return f"DepthToSpace: NCHW layout needs {api_name(FL3)}; the target is API {v.api}"
    return None


def io_softmax(v: UnitView) -> str | None:
    reason = io_float_or_qdq(v)
    if reason or not v.qdq:
        return reason
    return required_output_params(v, 1.0 / 256, 0)


def impl_softmax(v: UnitView) -> str | None:  # impl/softmax_op_builder.cc
    if (v.node.since_version or 13) < 13:
        return None
    rank = v.in_rank(0) or 0
    if rank > 4:
        return f"Softmax: input has rank {rank}; NNAPI takes rank 4 or less"
    if v.api < FL3:
        axis = int(v.attr("axis", -1))
        axis = axis + rank if axis < 0 else axis
        if rank not in (2, 4) or axis != rank - 1:
            return (
                f"Softmax: rank {rank} with axis {axis} needs {api_name(FL3)}; below it NNAPI "
                "takes rank 2 or 4 with the last axis"
            )
    return None


def resize_min_fl(v: UnitView) -> int:
    return FL2 if v.dtype(v.in_name(0)) == UINT8 else FL3


def impl_resize(v: UnitView) -> str | None:  # impl/resize_op_builder.cc
    reason = rank_between(v, 0, 4, 4) or _resize_attributes(v)
    if reason:
        return reason
    scales = v.node.input(2)
    scale_values = v.values(scales) if scales else None
    if scales and (scale_values is None or scale_values.size):
        return _resize_scales(v, scales, scale_values)
    sizes = v.node.input(3)
    if not sizes:
        return "Resize: neither scales nor sizes is given as a constant"
    return _resize_sizes(v, sizes)


def _resize_attributes(v: UnitView) -> str | None:
    mode = v.attr("mode", "nearest")
    if mode not in ("linear", "nearest"):
        return f"Resize: mode '{mode}'; NNAPI takes linear or nearest"
    if int(v.attr("exclude_outside", 0)) != 0:
        return "Resize: exclude_outside=1 is not supported by NNAPI"
    coord = v.attr("coordinate_transformation_mode", "half_pixel")
    if mode == "linear":
        if coord not in ("half_pixel", "align_corners", "asymmetric"):
            return f"Resize: linear with coordinate mode '{coord}' is not supported by NNAPI"
        if v.api < FL4 and coord != "asymmetric":
            return f"Resize: linear with '{coord}' needs {api_name(FL4)}; the target is API {v.api}"
    else:
        nearest = v.attr("nearest_mode", "round_prefer_floor")
        if coord != "asymmetric" or nearest != "floor":
            return (
                f"Resize: nearest with coordinate mode '{coord}' and nearest_mode '{nearest}'; "
                "NNAPI takes nearest only with asymmetric and floor"
            )
    if (v.node.since_version or 11) >= 18:
        if int(v.attr("antialias", 0)) != 0:
            return "Resize: antialias=1 is not supported by NNAPI"
        if v.attr("axes"):
            return "Resize: the axes attribute is not supported by NNAPI"
        if v.attr("keep_aspect_ratio_policy", "stretch") != "stretch":
            return "Resize: keep_aspect_ratio_policy other than 'stretch' is not supported"
    return None


def _resize_scales(v: UnitView, name: str, values: Any) -> str | None:
    if values is None:
        return f"Resize: scales '{name}' is not a constant initializer; NNAPI needs it constant"
    s = [float(x) for x in values.reshape(-1)]
    nchw = s[1] == 1.0
    scale_c, scale_h, scale_w = (s[1], s[2], s[3]) if nchw else (s[3], s[1], s[2])
    if s[0] != 1.0 or scale_c != 1.0:
        return f"Resize: scales {s} resize N or C; NNAPI resizes height and width only"
    if scale_h < 1.0 or scale_w < 1.0:
        shape = v.in_shape(0) or (0, 0, 0, 0)
        h_in, w_in = (shape[2], shape[3]) if nchw else (shape[1], shape[2])
        if not (_divides(h_in, scale_h) and _divides(w_in, scale_w)):
            return (
                f"Resize: downscaling {h_in}x{w_in} by {scale_h:g}x{scale_w:g} does not divide "
                "evenly; NNAPI needs whole-number factors of the input size"
            )
    return _resize_layout(v, nchw)


def _divides(n: Dim, scale: float) -> bool:
    """utils ReciprocalIsAFactorOfN: 1/scale is a whole number that divides n."""
    if not isinstance(n, int) or n == 0 or scale <= 0:
        return False
    factor = 1.0 / scale
    rounded = round(factor)
    return rounded > 0 and abs(factor - rounded) < 1e-6 and n % rounded == 0


def _resize_sizes(v: UnitView, name: str) -> str | None:
    values = v.values(name)
    if values is None:
        return f"Resize: sizes '{name}' is not a constant initializer; NNAPI needs it constant"
    sizes = [int(x) for x in values.reshape(-1)]
    shape = v.in_shape(0) or (0, 0, 0, 0)
    nchw = sizes[1] == shape[1]
    channel = 1 if nchw else 3
    if sizes[0] != shape[0] or sizes[channel] != shape[channel]:
        return f"Resize: sizes {sizes} change N or C of {list(shape)}; NNAPI resizes H and W only"
    return _resize_layout(v, nchw)


def _resize_layout(v: UnitView, nchw: bool) -> str | None:
    if nchw and v.api <= FL2:
        return f"Resize: NCHW input needs {api_name(FL3)}; the target is API {v.api}"
    return None


def impl_reduce_mean(v: UnitView) -> str | None:  # impl/reduction_op_builder.cc
    reason = rank_between(v, 0, 1, 4)
    if reason or (v.node.since_version or 1) < 18:
        return reason
    if int(v.attr("noop_with_empty_axes", 0)) == 1:
        return "ReduceMean: noop_with_empty_axes=1 is not supported by NNAPI"
    return must_be_constant(v, 1, "axes")


def io_quantize(v: UnitView) -> str | None:  # impl/quantizelinear_op_builder.cc
    return quant_io(v, (0,), False)


def io_dequantize(v: UnitView) -> str | None:  # impl/dequantizelinear_op_builder.cc
    return quant_io(v, (0,), True)
