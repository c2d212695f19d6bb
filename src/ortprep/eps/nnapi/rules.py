"""NNAPI's rule table and how one builder judges a unit (``BaseOpBuilder::IsOpSupported`` order):
feature level, QDQ acceptance, fixed shapes, input types, external data, opset range, then the
builder's own conditions (:mod:`.op_builders`)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from ortprep.eps.base import NodeContext, OpRule, rule_table
from ortprep.eps.nnapi.constants import DEFAULT_MAX_OPSET, FL2, FL3, FL4, api_name
from ortprep.eps.nnapi.op_builders import (
    BuilderSpec,
    impl_batchnorm,
    impl_binary,
    impl_cast,
    impl_clip,
    impl_concat,
    impl_conv,
    impl_depthtospace,
    impl_flatten,
    impl_gather,
    impl_gemm,
    impl_leakyrelu,
    impl_lrn,
    impl_minmax,
    impl_pad,
    impl_pool,
    impl_reduce_mean,
    impl_reshape,
    impl_resize,
    impl_sigmoid,
    impl_slice,
    impl_softmax,
    impl_split,
    impl_squeeze,
    impl_transpose,
    io_binary,
    io_concat,
    io_dequantize,
    io_float_or_qdq,
    io_pool,
    io_qlinear_sigmoid,
    io_quantizable,
    io_quantize,
    io_softmax,
    io_uint8_or_qdq,
    layout_fl,
    resize_min_fl,
)
from ortprep.eps.nnapi.view import UnitContext, UnitView, graph_state, unit_of

# --------------------------------------------------------------------------- judging


def _check_rule(op: str, ctx: NodeContext) -> str | None:
    """One builder's verdict on a unit (BaseOpBuilder::IsOpSupported order), EP checks aside."""
    unit = ctx.unit if isinstance(ctx, UnitContext) and ctx.unit else unit_of(ctx.graph, ctx.node)
    return judge(op, UnitView(graph_state(ctx.graph), ctx.options, unit))


def judge(op: str, v: UnitView) -> str | None:
    spec, rule = BUILDERS[op]
    need = spec.min_fl(v) if callable(spec.min_fl) else spec.min_fl
    if v.api < need:
        return f"{v.op} needs {api_name(need)}; the target is API {v.api}"
    if v.qdq and not (spec.qdq and v.qtype):
        return (
            f"{v.op}: NNAPI does not take a quantized DequantizeLinear -> {v.op} -> "
            "QuantizeLinear group; the whole group stays on CPU"
        )
    reason = _fixed_shapes(v) or spec.io(v) or _external_data(v)
    if reason:
        return reason
    since = v.node.since_version
    if since is not None and not rule.min_opset <= since <= (rule.max_opset or since):
        return (
            f"{v.op}: opset version {since} is outside what NNAPI's builder takes "
            f"({rule.min_opset} to {rule.max_opset})"
        )
    return spec.impl(v) if spec.impl else None


def _fixed_shapes(v: UnitView) -> str | None:
    """base_op_builder.cc: every present input, scale and zero point needs a fixed shape."""
    types, fixed = v.state.types, v.state.fixed_shapes
    for name in v.input_value_names():
        if not name:
            continue
        vt = types.get(name)
        shape = None if vt is None else vt.shape
        if shape is None:
            return _fixed_shape(v, name)
        # Shapes repeat across a graph, so whether one is fixed is remembered per shape.
        ok = fixed.get(shape)
        if ok is None:
            ok = fixed[shape] = _fixed_shape(v, name) is None
        if not ok:
            return _fixed_shape(v, name)  # words the refusal
    return None


def _fixed_shape(v: UnitView, name: str) -> str | None:
    vt = v.state.types.get(name)
    if vt is None or vt.shape is None:
        return f"input '{name}' has no known shape; NNAPI needs fixed shapes"
    for axis, dim in enumerate(vt.shape):
        if isinstance(dim, str):
            return f"input '{name}' has dynamic dimension '{dim}'; NNAPI needs fixed shapes"
        if dim is None or dim < 0:
            return (
                f"input '{name}' has an unknown dimension at axis {axis}; NNAPI needs fixed shapes"
            )
    return None


def _external_data(v: UnitView) -> str | None:
    """base_op_builder.cc HasExternalInitializer (versions read; may be gone in the newest)."""
    external = v.state.external
    if not external:
        return None
    for name in v.input_value_names():
        if name in external:
            return (
                f"{v.op}: initializer '{name}' is stored as external data; the NNAPI EP "
                "does not take nodes that read external initializers"
            )
    return None


# --------------------------------------------------------------------------- rule table


_SPECS: dict[str, BuilderSpec] = {}


def _rule(
    op: str,
    spec: BuilderSpec,
    source: str,
    min_opset: int = 1,
    max_opset: int = DEFAULT_MAX_OPSET,
    domain: str = "ai.onnx",
) -> OpRule:
    _SPECS[op] = spec
    return OpRule(op, domain, min_opset, max_opset, partial(_check_rule, op), source)


_BINARY = BuilderSpec(qdq=True, io=io_binary, impl=impl_binary)
_UNARY = "impl/unary_op_builder.cc"
_POOL = BuilderSpec(min_fl=layout_fl(FL2), qdq=True, io=io_pool, impl=impl_pool)
_GEMM = BuilderSpec(qdq=True, io=io_quantizable, impl=impl_gemm)
_CONV = BuilderSpec(min_fl=layout_fl(FL2), qdq=True, io=io_quantizable, impl=impl_conv)
_SQUEEZE = "impl/squeeze_op_builder.cc"

RULES: Mapping[tuple[str, str], OpRule] = rule_table(
    [
        _rule("Add", _BINARY, "impl/binary_op_builder.cc", 7),
        _rule("Mul", _BINARY, "impl/binary_op_builder.cc", 7),
        _rule(
            "Sub", BuilderSpec(FL2, io=io_binary, impl=impl_binary), "impl/binary_op_builder.cc", 7
        ),
        _rule(
            "Div", BuilderSpec(FL2, io=io_binary, impl=impl_binary), "impl/binary_op_builder.cc", 7
        ),
        _rule(
            "Pow", BuilderSpec(FL3, io=io_binary, impl=impl_binary), "impl/binary_op_builder.cc", 7
        ),
        _rule(
            "PRelu", BuilderSpec(FL3, io=io_binary, impl=impl_binary), "impl/binary_op_builder.cc"
        ),
        _rule("QLinearAdd", _BINARY, "impl/binary_op_builder.cc", domain="com.microsoft"),
        _rule("QLinearMul", _BINARY, "impl/binary_op_builder.cc", domain="com.microsoft"),
        *(
            _rule(op, BuilderSpec(FL3), _UNARY, 6)
            for op in ("Abs", "Exp", "Neg", "Sin", "Sqrt", "Log")
        ),
        _rule("Floor", BuilderSpec(), _UNARY, 6),
        _rule("Tanh", BuilderSpec(), _UNARY, 6),
        _rule("Sigmoid", BuilderSpec(impl=impl_sigmoid), _UNARY, 6),
        _rule("QLinearSigmoid", BuilderSpec(io=io_qlinear_sigmoid), _UNARY, domain="com.microsoft"),
        _rule("Relu", BuilderSpec(), "impl/relu_op_builder.cc"),
        _rule("Elu", BuilderSpec(FL4), "impl/elu_op_builder.cc", 6),
        # LeakyRelu is built from NNAPI LESS/MUL/SELECT (FL3 ops) yet declares no minimum (FL1).
        _rule("LeakyRelu", BuilderSpec(impl=impl_leakyrelu), "impl/leakyrelu_op_builder.cc", 6),
        _rule("Clip", BuilderSpec(impl=impl_clip), "impl/clip_op_builder.cc"),
        _rule("Min", BuilderSpec(FL3, impl=impl_minmax), "impl/minmax_op_builder.cc", 6),
        _rule("Max", BuilderSpec(FL3, impl=impl_minmax), "impl/minmax_op_builder.cc", 6),
        _rule("Cast", BuilderSpec(FL3, impl=impl_cast), "impl/cast_op_builder.cc", 6),
        _rule("Identity", BuilderSpec(), "impl/identity_op_builder.cc"),
        _rule("Conv", _CONV, "impl/conv_op_builder.cc"),
        _rule("QLinearConv", _CONV, "impl/conv_op_builder.cc"),
        _rule("AveragePool", _POOL, "impl/pool_op_builder.cc"),
        _rule("MaxPool", _POOL, "impl/pool_op_builder.cc"),
        _rule("GlobalAveragePool", _POOL, "impl/pool_op_builder.cc"),
        _rule("GlobalMaxPool", _POOL, "impl/pool_op_builder.cc"),
        _rule("QLinearAveragePool", _POOL, "impl/pool_op_builder.cc", domain="com.microsoft"),
        _rule("Gemm", _GEMM, "impl/gemm_op_builder.cc", 7),
        _rule("MatMul", _GEMM, "impl/gemm_op_builder.cc"),
        _rule("QLinearMatMul", _GEMM, "impl/gemm_op_builder.cc"),
        _rule(
            "BatchNormalization",
            BuilderSpec(impl=impl_batchnorm),
            "impl/batchnorm_op_builder.cc",
            7,
        ),
        _rule("LRN", BuilderSpec(FL2, impl=impl_lrn), "impl/LRN_op_builder.cc"),
        _rule(
            "Concat",
            BuilderSpec(qdq=True, io=io_concat, impl=impl_concat),
            "impl/concat_op_builder.cc",
        ),
        _rule(
            "Transpose",
            BuilderSpec(FL2, qdq=True, io=io_uint8_or_qdq, impl=impl_transpose),
            "impl/transpose_op_builder.cc",
        ),
        _rule(
            "Reshape",
            BuilderSpec(qdq=True, io=io_float_or_qdq, impl=impl_reshape),
            "impl/reshape_op_builder.cc",
            5,
        ),
        _rule("Flatten", BuilderSpec(impl=impl_flatten), "impl/flatten_op_builder.cc"),
        _rule("Squeeze", BuilderSpec(FL2, impl=impl_squeeze), _SQUEEZE),
        _rule("Unsqueeze", BuilderSpec(impl=impl_squeeze), "impl/unsqueeze_op_builder.cc"),
        _rule("Slice", BuilderSpec(FL2, impl=impl_slice), "impl/slice_op_builder.cc", 10),
        _rule("Split", BuilderSpec(FL3, impl=impl_split), "impl/split_op_builder.cc", 13),
        _rule("Gather", BuilderSpec(FL3, impl=impl_gather), "impl/gather_op_builder.cc"),
        _rule("Pad", BuilderSpec(FL3, impl=impl_pad), "impl/pad_op_builder.cc", 11),
        _rule(
            "DepthToSpace", BuilderSpec(impl=impl_depthtospace), "impl/depthtospace_op_builder.cc"
        ),
        _rule(
            "Softmax",
            BuilderSpec(FL2, qdq=True, io=io_softmax, impl=impl_softmax),
            "impl/softmax_op_builder.cc",
        ),
        _rule(
            "Resize",
            BuilderSpec(resize_min_fl, qdq=True, io=io_uint8_or_qdq, impl=impl_resize),
            "impl/resize_op_builder.cc",
            11,
        ),
        _rule(
            "ReduceMean", BuilderSpec(FL2, impl=impl_reduce_mean), "impl/reduction_op_builder.cc"
        ),
        _rule(
            "QuantizeLinear",
            BuilderSpec(FL3, io=io_quantize),
            "impl/quantizelinear_op_builder.cc",
            max_opset=27,
        ),
        _rule(
            "DequantizeLinear",
            BuilderSpec(io=io_dequantize),
            "impl/dequantizelinear_op_builder.cc",
            max_opset=27,
        ),
    ]
)
"""Every op type the NNAPI EP has a builder for (op_builder_factory.cc), keyed (domain, op)."""

_BY_OP_TYPE: dict[str, OpRule] = {rule.op_type: rule for rule in RULES.values()}
BUILDERS: dict[str, tuple[BuilderSpec, OpRule]] = {
    op: (_SPECS[op], rule) for op, rule in _BY_OP_TYPE.items()
}
"""Op type -> (builder spec, rule): the one lookup per unit (units are judged by op type only)."""
