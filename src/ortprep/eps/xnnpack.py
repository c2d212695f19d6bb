"""XNNPACK EP rules: which nodes ORT's XNNPACK EP claims, and why not.

Restates ``onnxruntime/core/providers/xnnpack/`` (see :data:`ORT_SOURCE_VERSION` and
``docs/eps/xnnpack.md``); every rule names the ORT file it comes from.

How ORT decides (``xnnpack_execution_provider.cc`` GetCapability):

- the per-op checker runs once per node unit, only for ``ai.onnx`` nodes, and does **not** consult
  the kernel registry, so a few nodes are claimed and then fail session creation (opset-22
  Conv/ConvTranspose/MaxPool/AveragePool, Gemm-1/6, fp16 Softmax without fp16 kernels). ortprep
  reports those as refusals that name the failure;
- a QDQ unit (DQ -> op -> Q) is judged on its target op with the *quantized* tensors and is claimed
  or refused as a whole (:func:`check_unit`); a lone DequantizeLinear/QuantizeLinear is never
  claimed;
- Relu and Clip are claimed only when fused into the Conv, MaxPool or AveragePool they directly
  follow (:func:`check_node` models the fusion on the original graph);
- XNNPACK has static kernels (``compiles=False``): a claimed node is never dropped because of its
  neighbours, and there are no stop ops or partition discards.

Constants read here (weights, Clip bounds, Resize scales) are the current graph's initializers;
outer-scope initializers seen from inside an If/Loop/Scan body are not visible to the graph view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache

from ortprep.core.graph import Dim, Graph, Node
from ortprep.eps.base import EpOptions, EpSpec, NodeContext, OpRule, rule_table
from ortprep.eps.partition import DQ_OP, Q_OP, IODef, NodeUnit, elem_type

ORT_SOURCE_VERSION = (
    "onnxruntime main: XNNPACK EP @ 032935e6 (~early 2025) with fixes through #28546 (Gemm, "
    "2026-05) and #28814 (Clip/Relu fusion, 2026-06); docs/eps/xnnpack.md of 2026-11-25"
)
"""The ORT source state these rules restate (``check`` prints it)."""

FP16_SUPPORTED = True
"""Default for whether the XNNPACK build has fp16 kernels.

fp16 is a build property (``XNNPACK_FP16_SUPPORTED`` in ``xnnpack_init.h``), not a runtime option:
it is defined for ARM/ARM64 builds on any OS and for x86 outside Android/iOS, never for
WebAssembly. True matches the usual XNNPACK target (Android arm64). An ``EpOptions`` field named
``xnnpack_fp16`` overrides it when present (:func:`fp16_supported`).
"""

ONNX = "ai.onnx"
AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER")  # detail/utils.cc IsPaddingTypeSupported
NO_KERNEL_FROM_22 = frozenset({"Conv", "ConvTranspose", "MaxPool", "AveragePool"})
FUSION_PRODUCERS = frozenset({"Conv", "MaxPool", "AveragePool"})
SOFTMAX_Q_SCALE = 1.0 / 256.0


def fp16_supported(options: EpOptions) -> bool:
    """Whether fp16 nodes can run: the build default, unless ``options.xnnpack_fp16`` is off."""
    return FP16_SUPPORTED and bool(getattr(options, "xnnpack_fp16", True))


# --------------------------------------------------------------------------- small helpers


def _static(d: Dim) -> bool:
    return isinstance(d, int) and d >= 0


def _dim_value(d: Dim) -> int:
    """ORT's ``dim_value()``: the size, or 0 when symbolic or unknown."""
    return d if isinstance(d, int) and d >= 0 else 0


def _dim_str(d: Dim) -> str:
    return "unknown" if d is None else repr(d) if isinstance(d, str) else str(d)


def _shape_str(shape: tuple[Dim, ...] | None) -> str:
    return "unknown" if shape is None else "[" + ",".join([_dim_str(d) for d in shape]) + "]"


def _floats(ctx: NodeContext, i: int) -> list[float] | None:
    """Values of constant input ``i`` as floats; None when not readable."""
    try:
        values = ctx.constant(i)
    except (ValueError, OSError):
        return None
    return None if values is None else [float(v) for v in values.reshape(-1)]


# The op rules below chain their conditions with ``or``: the first refusal (a non-empty
# string) wins, later conditions are not evaluated, and input 0 is looked up once per rule.


def _dtype(
    ctx: NodeContext, dt: str | None, allowed: tuple[str, ...], qdq_only: tuple[str, ...] = ()
) -> str | None:
    """Input 0's type ``dt``: ``allowed``, ``qdq_only`` (reached only inside a QDQ unit), or
    float16 when the build has fp16 kernels."""
    if dt in allowed or dt in qdq_only:
        return None
    if dt == "float16":
        if fp16_supported(ctx.options):
            return None
        return (
            "input is float16 and this XNNPACK build has no fp16 kernels (fp16 builds: ARM, "
            "and x86 outside Android/iOS; never WebAssembly)"
        )
    kinds = ", ".join((*allowed, "float16"))
    if qdq_only:
        kinds += f" ({'/'.join(qdq_only)} inside a QDQ unit)"
    return f"input '{ctx.node.input(0)}' is {dt or 'of unknown type'}; XNNPACK takes {kinds}"


def _input(ctx: NodeContext, i: int) -> tuple[str | None, tuple[Dim, ...] | None]:
    """Type and shape of input ``i`` (``ctx.input_type(i)``, read without building a
    ``ValueType`` for an initializer, which ``Graph.value_type`` does on every call)."""
    inputs = ctx.node.inputs
    name = inputs[i] if i < len(inputs) else ""
    if not name:
        return None, None
    graph = ctx.graph
    vt = graph.values.get(name)
    if vt is not None:
        return vt.dtype, vt.shape
    init = graph.initializers.get(name)
    return (None, None) if init is None else (init.dtype, init.dims)


def _static_dims(
    ctx: NodeContext, shape: tuple[Dim, ...] | None, names: str, dims: Iterable[int], why: str
) -> str | None:
    """Dims ``dims`` of input 0 (of shape ``shape``) fixed."""
    shape = shape or ()
    for i in dims:
        d = shape[i]
        if not (isinstance(d, int) and d >= 0):  # _static(d), inlined: once per dim per node
            return (
                f"input '{ctx.node.input(0)}' dim {i} ({names[i]}) is {_dim_str(shape[i])}; {why}"
            )
    return None


def _rank(
    ctx: NodeContext, shape: tuple[Dim, ...] | None, ranks: tuple[int, ...], what: str
) -> str | None:
    """Input 0 (of shape ``shape``) of a rank in ``ranks``."""
    if shape is None:
        return f"input '{ctx.node.input(0)}' has an unknown shape; XNNPACK needs {what}"
    if len(shape) not in ranks:
        return f"input '{ctx.node.input(0)}' has rank {len(shape)}; XNNPACK takes {what}"
    return None


def _attr_equals(
    ctx: NodeContext, name: str, want: object, default: object, when: str = ""
) -> str | None:
    """Attribute ``name`` (ORT fills ``default``) must equal ``want``."""
    value = ctx.attr(name, default)
    if value == want:
        return None
    return f"{name}={value}; XNNPACK takes {name}={want} only{when}"


def _auto_pad(ctx: NodeContext) -> str | None:
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad in AUTO_PADS:
        return None
    return f"auto_pad={auto_pad}; XNNPACK takes {', '.join(AUTO_PADS)}"


# --------------------------------------------------------------------------- Conv, ConvTranspose


def _conv(ctx: NodeContext) -> str | None:
    """Conv and ConvTranspose share one checker (1D and 2D, constant weight and bias)."""
    # onnxruntime/core/providers/xnnpack/nn/conv_base.cc (ConvBase::IsOnnxNodeSupported)
    dt, shape = _input(ctx, 0)
    rank = None if shape is None else len(shape)
    return (
        _rank(ctx, shape, (3, 4), "rank 3 or 4 (1D or 2D convolution)")
        or _dtype(ctx, dt, ("float32",), qdq_only=("uint8", "int8"))
        or _static_dims(
            ctx,
            shape,
            "NCW" if rank == 3 else "NCHW",
            range(1, rank or 0),
            "XNNPACK needs C and the spatial dims fixed (only N may be dynamic)",
        )
        or _need_constant(ctx, 1, "weight")
        or _need_constant(ctx, 2, "bias")
        or (None if "pads" in ctx.node.attributes else _auto_pad(ctx))
    )


def _need_constant(ctx: NodeContext, i: int, role: str) -> str | None:
    inputs = ctx.node.inputs
    name = inputs[i] if i < len(inputs) else ""
    if name and not ctx.graph.is_constant(name):
        return f"{role} input '{name}' is not a constant initializer"
    return None


# --------------------------------------------------------------------------- pooling


def _pool_common(
    ctx: NodeContext, allowed: tuple[str, ...], qdq_only: tuple[str, ...] = ()
) -> str | None:
    """What MaxPool and AveragePool share: 2D NCHW with C, H, W fixed; no ceil; 2-D kernel > 1x1."""
    dt, shape = _input(ctx, 0)
    return (
        _rank(ctx, shape, (4,), "rank 4 (2D pooling)")
        or _dtype(ctx, dt, allowed, qdq_only)
        or _static_dims(ctx, shape, "NCHW", (1, 2, 3), "XNNPACK needs C, H and W fixed")
        or (_maxpool_indices(ctx) if ctx.node.op_type == "MaxPool" else None)
        or _attr_equals(ctx, "ceil_mode", 0, 0)
        or _auto_pad(ctx)
        or _kernel_2d(ctx)
    )


def _kernel_2d(ctx: NodeContext) -> str | None:
    kernel = list(ctx.attr("kernel_shape", ()))
    if len(kernel) != 2:
        return f"kernel_shape={kernel}; XNNPACK takes a 2-D kernel only"
    if kernel == [1, 1]:
        return "kernel_shape=[1, 1]; XNNPACK has no 1x1 pooling"
    return None


def _maxpool_indices(ctx: NodeContext) -> str | None:
    outputs = ctx.node.outputs
    if len(outputs) >= 2 and outputs[1]:
        return f"the Indices output '{outputs[1]}' is used; XNNPACK cannot produce it"
    return None


def _max_pool(ctx: NodeContext) -> str | None:
    # onnxruntime/core/providers/xnnpack/nn/max_pool.cc (MaxPool::IsOnnxNodeSupported)
    return _pool_common(ctx, ("float32", "uint8", "int8"))


def _average_pool(ctx: NodeContext, qdq: bool = False) -> str | None:
    # onnxruntime/core/providers/xnnpack/nn/average_pool.cc (AveragePool::IsOnnxNodeSupported)
    # fp32 must exclude padding and qu8 must include it (an XNNPACK quirk the source notes)
    want, when = (1, " for a QDQ unit") if qdq else (0, " for float input")
    dilations = list(ctx.attr("dilations", ()))
    return (
        _pool_common(ctx, ("float32",), qdq_only=("uint8",))
        or _attr_equals(ctx, "count_include_pad", want, 0, when)
        or (
            None
            if all(d == 1 for d in dilations)
            else f"dilations={dilations}; XNNPACK takes dilations of 1 only"
        )
    )


def _qdq_average_pool(ctx: NodeContext) -> str | None:
    return _average_pool(ctx, qdq=True)


# --------------------------------------------------------------------------- Softmax


def _softmax(ctx: NodeContext) -> str | None:
    # onnxruntime/core/providers/xnnpack/math/softmax.cc (Softmax::IsOnnxNodeSupported)
    dt, shape = _input(ctx, 0)
    if dt == "float16" and not fp16_supported(ctx.options):
        return (
            "input is float16: ORT's XNNPACK EP claims it (its checker accepts float16 "
            "unconditionally) but this build has no fp16 Softmax kernel (session creation "
            "fails)"
        )
    reason = _dtype(ctx, dt, ("float32",), qdq_only=("uint8",))
    if reason:
        return reason
    if not shape:
        return f"input '{ctx.node.input(0)}' has shape {_shape_str(shape)}; XNNPACK needs rank >= 1"
    if (ctx.since_version or 13) <= 12:
        return None  # any axis; the meant-to-be static check is ineffective in the source
    axis, rank = ctx.attr("axis", -1), len(shape)
    if axis not in (-1, rank - 1):
        return (
            f"axis={axis} on a rank-{rank} input (opset 13+); XNNPACK takes the last axis only "
            f"(-1 or {rank - 1})"
        )
    if not _static(shape[-1]):
        return (
            f"the last dim of input '{ctx.node.input(0)}' is {_dim_str(shape[-1])}; XNNPACK "
            "needs it fixed (opset 13+)"
        )
    return None


# --------------------------------------------------------------------------- Resize


def _resize(ctx: NodeContext) -> str | None:
    # onnxruntime/core/providers/xnnpack/tensor/resize.cc (Resize::IsOnnxNodeSupported)
    dt, shape = _input(ctx, 0)
    reason = _dtype(ctx, dt, ("float32", "uint8", "int8")) or _rank(ctx, shape, (4,), "rank 4")
    if reason or shape is None:
        return reason
    if _dim_value(shape[1]) <= 0:
        return f"input dim 1 (C) is {_dim_str(shape[1])}; XNNPACK needs the channel count fixed"
    return _resize_constants(ctx, shape) or _resize_attributes(ctx)


def _resize_constants(ctx: NodeContext, shape: tuple[Dim, ...]) -> str | None:
    since = ctx.since_version or 19
    scale_i = 1 if since == 10 else 2
    has_scales = ctx.has_input(scale_i) and ctx.is_constant(scale_i)
    has_sizes = since > 10 and ctx.has_input(3) and ctx.is_constant(3)
    if not has_scales and not has_sizes:
        return "neither scales nor sizes is a constant initializer; XNNPACK needs one of them"
    if has_scales:
        reason = _resize_scales(ctx, scale_i, shape)
        if reason:
            return reason
    if has_sizes:
        sizes = _floats(ctx, 3)
        if not sizes or len(sizes) < 2:
            return f"sizes '{ctx.node.input(3)}' could not be read as 4 values"
        if int(sizes[1]) != _dim_value(shape[1]):
            return (
                f"sizes[1]={int(sizes[1])} changes the channel count {shape[1]}; XNNPACK "
                "resizes H and W only"
            )
    return None


def _resize_scales(ctx: NodeContext, i: int, shape: tuple[Dim, ...]) -> str | None:
    scales = _floats(ctx, i)
    name = ctx.node.input(i)
    if scales is None:
        return f"the values of scales '{name}' could not be read"
    if len(scales) < 4:
        return (
            f"scales '{name}' holds {len(scales)} values: ORT's XNNPACK checker reads "
            "scales[1..3] without a bounds check and aborts the process (std::terminate; ORT "
            "issues #23886, #32298, fixes #32351/#32460 still open)"
        )
    if scales[1] != 1.0:
        return f"scales[1]={scales[1]:g} resizes the channel dim; XNNPACK takes scales[1]=1 only"
    if scales[2] < 1.0 or scales[3] < 1.0:
        h, w = _dim_value(shape[2]), _dim_value(shape[3])  # unknown reads as 0 and passes
        if not (_reciprocal_divides(h, scales[2]) and _reciprocal_divides(w, scales[3])):
            return (
                f"downsampling scales [{scales[2]:g}, {scales[3]:g}] on H={_dim_str(shape[2])}"
                f", W={_dim_str(shape[3])}; XNNPACK needs both scales < 1 with whole "
                "reciprocals that divide H and W"
            )
    return None


def _reciprocal_divides(n: int, scale: float) -> bool:
    # onnxruntime/core/providers/utils.cc (ReciprocalIsAFactorOfN)
    if not 0.0 < scale < 1.0:
        return False
    factor = 1.0 / scale
    rounded = round(factor)
    return abs(factor - rounded) < 1e-4 and n % int(rounded) == 0


def _resize_attributes(ctx: NodeContext) -> str | None:
    out = ctx.output_type(0)
    if out is None or out.shape is None or len(out.shape) < 4:
        return "the output shape is unknown; ORT's XNNPACK checker reads output dims 2 and 3"
    shape = out.shape
    return (
        _attr_equals(ctx, "mode", "linear", "nearest")
        or _attr_equals(ctx, "antialias", 0, 0)
        or (
            None
            if not ctx.attr("axes")
            else f"axes={list(ctx.attr('axes'))}; XNNPACK takes Resize without axes only"
        )
        or _attr_equals(ctx, "keep_aspect_ratio_policy", "stretch", "stretch")
        or _attr_equals(ctx, "extrapolation_value", 0.0, 0.0)
        or _resize_coordinates(ctx, shape)
        or _attr_equals(ctx, "exclude_outside", 0, 0)
    )


def _resize_coordinates(ctx: NodeContext, out: tuple[Dim, ...]) -> str | None:
    since = ctx.since_version or 19
    mode = ctx.attr("coordinate_transformation_mode", "half_pixel") if since > 10 else "asymmetric"
    if mode in ("asymmetric", "half_pixel", "align_corners"):
        return None
    if mode == "pytorch_half_pixel":
        if _dim_value(out[2]) > 1 and _dim_value(out[3]) > 1:
            return None
        return (
            f"coordinate_transformation_mode=pytorch_half_pixel with output H, W = "
            f"{_dim_str(out[2])}, {_dim_str(out[3])}; XNNPACK needs both fixed and > 1"
        )
    return (
        f"coordinate_transformation_mode={mode}; XNNPACK takes half_pixel, asymmetric, "
        "align_corners or pytorch_half_pixel"
    )


# --------------------------------------------------------------------------- Gemm, MatMul


def _gemm(ctx: NodeContext) -> str | None:
    # onnxruntime/core/providers/xnnpack/math/gemm.cc (Gemm::IsOnnxNodeSupported, #28546 guards)
    for attr in ("alpha", "beta"):
        value = float(ctx.attr(attr, 1.0))
        if value != 1.0:
            return f"{attr}={value:g}; XNNPACK takes {attr}=1 only"
    has_c = len(ctx.node.inputs) >= 3  # an empty-named C counts and is refused
    return (
        _dtype(ctx, _input(ctx, 0)[0], ("float32",))
        or _constant_b(ctx)
        or (
            None
            if not has_c or ctx.is_constant(2)
            else f"C input '{ctx.node.input(2)}' is not a constant initializer"
        )
        or _gemm_ranks(ctx, has_c)
    )


def _constant_b(ctx: NodeContext) -> str | None:
    if ctx.is_constant(1):
        return None
    return f"B input '{ctx.node.input(1)}' is not a constant initializer"


def _gemm_ranks(ctx: NodeContext, has_c: bool) -> str | None:
    a, b = _input(ctx, 0)[1], _input(ctx, 1)[1]
    if a is None or len(a) > 2:
        return f"A has shape {_shape_str(a)}; XNNPACK takes a known rank <= 2"
    if b is None or len(b) > 2:
        return f"B has shape {_shape_str(b)}; XNNPACK takes a known rank <= 2"
    if not has_c:
        return None  # allowed since #28546 (ORT <= 1.26 crashed here)
    c = _input(ctx, 2)[1]
    if c is None or len(c) not in (1, 2):
        return (
            f"C has shape {_shape_str(c)}; XNNPACK takes a rank-1 or rank-2 C "
            "(ORT <= 1.26 crashed on a scalar C, #28542)"
        )
    c0, b_dims = _dim_value(c[0]), [_dim_value(d) for d in b] + [0, 0]
    if c0 not in (b_dims[0], b_dims[1]):
        return (
            f"C dim 0 is {_dim_str(c[0])}, B is {_shape_str(b)}; XNNPACK needs C dim 0 to "
            "equal one of B's dims"
        )
    return None


def _matmul(ctx: NodeContext) -> str | None:
    # onnxruntime/core/providers/xnnpack/math/matmul.cc (MatMul::IsOnnxNodeSupported)
    if len(ctx.node.inputs) != 2:
        return f"{len(ctx.node.inputs)} inputs; XNNPACK takes exactly 2"
    return (
        _dtype(ctx, _input(ctx, 0)[0], ("float32",))
        or _matmul_shape(ctx, 0, "A")
        or _matmul_shape(ctx, 1, "B")
        or _constant_b(ctx)
    )


def _matmul_shape(ctx: NodeContext, i: int, role: str) -> str | None:
    shape = _input(ctx, i)[1]
    if shape is None or len(shape) not in (1, 2):
        extra = " (N-D MatMul is not supported, ORT issue #24107)" if shape else ""
        return f"{role} has shape {_shape_str(shape)}; XNNPACK takes rank 1 or 2{extra}"
    if not all(isinstance(d, int) and d > 0 for d in shape):  # no _dim_value(d) == 0
        return f"{role} has shape {_shape_str(shape)}; XNNPACK needs every dim fixed and non-zero"
    return None


# --------------------------------------------------------------------------- Relu/Clip fusion


def _fused_activation(ctx: NodeContext) -> str | None:
    """Relu/Clip: only fused into the claimed Conv, MaxPool or AveragePool it directly follows."""
    return _fusion(ctx.graph, ctx.node, ctx.options, ctx)


def _fusion(
    graph: Graph, node: Node, options: EpOptions, ctx: NodeContext | None = None
) -> str | None:
    """:func:`_fused_activation` on the node itself: most Relu/Clip nodes follow an op that
    cannot fuse them, which is told without building a :class:`NodeContext`."""
    # onnxruntime/core/providers/xnnpack/detail/node_support_checker.cc (ClipReluChecker), #28814
    name = node.inputs[0] if node.inputs else ""
    producer = graph.producers.get(name)
    only = "XNNPACK takes Relu/Clip only fused into a Conv, MaxPool or AveragePool it claims"
    if producer is None:
        return f"input '{name}' is not produced by a node of this graph; {only}"
    if producer.domain != ONNX or producer.op_type not in FUSION_PRODUCERS:
        return f"it follows {producer.op_type} node '{producer.name}'; {only}"
    reason = _verdict(graph, producer, options)
    if reason:
        return f"its producer '{producer.name}' is not claimed ({reason}); {only}"
    consumers = graph.consumers.get(name, [])
    if len(consumers) != 1:
        return (
            f"'{name}' of '{producer.name}' has {len(consumers)} consumers; XNNPACK fuses only "
            "a sole consumer (ORT #28814)"
        )
    if name in graph.output_names:
        return (
            f"'{name}' of '{producer.name}' is also a graph output; XNNPACK fuses only when "
            "it is not (ORT #28814)"
        )
    if node.op_type != "Clip":
        return None
    return _clip_bounds(ctx or NodeContext(graph, node, options))


def _clip_bounds(ctx: NodeContext) -> str | None:
    if (ctx.since_version or 13) < 11:
        return None  # Clip-1/6: min and max are attributes
    for i, role in ((1, "min"), (2, "max")):
        if i < len(ctx.node.inputs) and not ctx.is_constant(i):
            found = f"'{ctx.node.input(i)}'" if ctx.has_input(i) else "empty"
            return f"{role} input {found} is not a constant initializer; XNNPACK needs it constant"
    return None


# --------------------------------------------------------------------------- the table


RULES: Mapping[tuple[str, str], OpRule] = rule_table(
    [
        OpRule("Conv", min_opset=11, max_opset=21, check=_conv, source="nn/conv_base.cc"),
        OpRule(
            "ConvTranspose",
            min_opset=11,
            max_opset=21,
            check=_conv,
            source="nn/conv_base.cc, nn/conv_transpose.cc",
        ),
        OpRule("MaxPool", min_opset=8, max_opset=21, check=_max_pool, source="nn/max_pool.cc"),
        OpRule(
            "AveragePool",
            min_opset=7,
            max_opset=21,
            check=_average_pool,
            source="nn/average_pool.cc",
        ),
        OpRule("Softmax", check=_softmax, source="math/softmax.cc"),
        OpRule("Resize", min_opset=10, check=_resize, source="tensor/resize.cc"),
        OpRule("Gemm", min_opset=7, check=_gemm, source="math/gemm.cc"),
        OpRule("MatMul", check=_matmul, source="math/matmul.cc"),
        OpRule("Relu", check=_fused_activation, source="detail/node_support_checker.cc"),
        OpRule("Clip", check=_fused_activation, source="detail/node_support_checker.cc"),
    ]
)
"""Ops XNNPACK claims (``ai.onnx``), with the since-versions that have a kernel.

Sources are under ``onnxruntime/core/providers/xnnpack/``. Since-versions the checker accepts but
no kernel matches (22+ for the NHWC ops, Gemm 1 and 6) are refused with the failure named.
"""

_NOT_CLAIMED: Mapping[str, str] = {
    DQ_OP: "XNNPACK takes DequantizeLinear only inside a QDQ unit around an op it supports",
    Q_OP: "XNNPACK takes QuantizeLinear only inside a QDQ unit around an op it supports",
    "QLinearConv": "since-version 10 fails ConvBase's since-version >= 11 guard, so XNNPACK "
    "never claims a standalone QLinearConv (nn/conv_base.cc)",
    "GlobalAveragePool": "not claimed by XNNPACK (only a side branch of ORT has a kernel)",
}


def _opset_reason(op: str, since: int | None, rule: OpRule) -> str | None:
    # onnxruntime/core/providers/xnnpack/xnnpack_execution_provider.cc (RegisterKernels)
    if since is None:
        return None
    if op in NO_KERNEL_FROM_22 and since >= 22:
        return (
            f"ORT's XNNPACK EP claims opset-{since} {op} but has no kernel for it (session "
            "creation fails, ORT issue #23164)"
        )
    if op == "Gemm" and since < 7:
        return (
            f"ORT's XNNPACK EP claims Gemm-{since} (its checker has no opset test) but has "
            "kernels from since-version 7 only (session creation fails)"
        )
    if since < rule.min_opset:
        return f"since-version {since}; XNNPACK takes {op} from since-version {rule.min_opset}"
    if rule.max_opset is not None and since > rule.max_opset:
        return f"since-version {since}; XNNPACK takes {op} up to since-version {rule.max_opset}"
    return None


NodeCheck = Callable[[Graph, Node, EpOptions], str | None]

_NODE_CHECKS: Mapping[str, NodeCheck] = {"Relu": _fusion, "Clip": _fusion}
"""Rule checks that run on the node itself, so no :class:`NodeContext` is built for them."""

_BY_OP: Mapping[str, tuple[OpRule, frozenset[int], NodeCheck | None]] = {
    op: (
        rule,
        frozenset(v for v in range(1, 64) if _opset_reason(op, v, rule) is None),
        _NODE_CHECKS.get(op),
    )
    for (domain, op), rule in RULES.items()
    if domain == ONNX
}
"""``RULES`` by op type alone (they are all ``ai.onnx``), for one lookup per node: the rule, the
since-versions :func:`_opset_reason` lets through (worked out here, once) and the node check."""


def _op_reason(ctx: NodeContext, check: Callable[[NodeContext], str | None] | None) -> str | None:
    node = ctx.node
    rule = RULES[(node.domain, node.op_type)]
    reason = _opset_reason(node.op_type, ctx.since_version, rule)
    if reason is None and check is not None:
        reason = check(ctx)
    return reason


def check_node(ctx: NodeContext) -> str | None:
    """XNNPACK's verdict on one node on its own: ``None`` when claimed, else the reason.

    Example: ``"MaxPool: ceil_mode=1; XNNPACK takes ceil_mode=0 only"``.
    """
    return _verdict(ctx.graph, ctx.node, ctx.options, ctx)


@lru_cache(maxsize=1024)
def _unclaimed(domain: str, op_type: str) -> str:
    """Why a node without a rule is not claimed (one string per op, shared by its nodes)."""
    if domain != ONNX:
        return (
            f"{domain}:{op_type}: XNNPACK checks ai.onnx nodes only (its com.microsoft kernels "
            "serve QDQ fusion)"
        )
    if op_type in _NOT_CLAIMED:
        return f"{op_type}: {_NOT_CLAIMED[op_type]}"
    return f"{op_type}: not claimed by XNNPACK (no kernel in ORT's XNNPACK EP)"


def _verdict(
    graph: Graph, node: Node, options: EpOptions, ctx: NodeContext | None = None
) -> str | None:
    """:func:`check_node`, building the :class:`NodeContext` only for a rule check that reads it
    (most nodes of a model have no rule, and Relu/Clip are judged on the node itself)."""
    entry = _BY_OP.get(node.op_type) if node.domain == ONNX else None
    if entry is None:
        return _unclaimed(node.domain, node.op_type)
    rule, kernel_since, on_node = entry
    since = node.since_version
    reason = None
    if since is not None and since not in kernel_since:
        reason = _opset_reason(node.op_type, since, rule)
    if reason is None and rule.check is not None:
        if on_node is not None:
            reason = on_node(graph, node, options)
        else:
            reason = rule.check(ctx or NodeContext(graph, node, options))
    return None if reason is None else f"{node.op_type}: {reason}"


# --------------------------------------------------------------------------- QDQ units


QuantIO = IODef
"""A quantized input or output of a QDQ unit: the integer tensor and its quant params."""


@dataclass(frozen=True)
class UnitIO:
    """The target's quantized inputs and outputs in a QDQ unit (None: not quantized)."""

    inputs: tuple[QuantIO | None, ...]
    outputs: tuple[QuantIO | None, ...]


def quantized_view(unit: NodeUnit, graph: Graph) -> tuple[Node, UnitIO]:
    """The target node as XNNPACK's checker sees it in a QDQ unit, with its quant params.

    The node reads and writes the unit's IO defs (``NodeUnit::Inputs()``/``Outputs()``, kept on
    the unit): inputs fed by the unit's DQ nodes are the DQ inputs, and the outputs are those of
    the redundant Clip if there is one, else of the target, the ones read by its Q nodes being
    the Q outputs; so type, rank and constant checks see the quantized tensors.
    """
    ins, outs = unit.inputs, unit.outputs
    node = replace(
        unit.target,
        inputs=tuple(io.name for io in ins),
        outputs=tuple(io.name for io in outs),
    )
    return node, UnitIO(
        tuple(io if io.quantized else None for io in ins),
        tuple(io if io.quantized else None for io in outs),
    )


def _count(graph: Graph, name: str) -> int:
    dims = graph.initializers[name].dims
    return dims[0] if dims else 1


def quant_type(graph: Graph, io: QuantIO | None) -> tuple[str | None, str]:
    """``GetTensorQuantType``: ("uint8" | "int8" | "int8 per-channel", "") or (None, why)."""
    # onnxruntime/core/providers/xnnpack/detail/utils.cc (GetTensorQuantType)
    if io is None:
        return None, "it is not quantized (no DequantizeLinear/QuantizeLinear)"
    dtype = elem_type(graph, io.name)
    if dtype is None:
        return None, f"'{io.name}' has an unknown type"
    if not io.scale or not graph.is_constant(io.scale):
        return None, f"the scale of '{io.name}' is not a constant initializer"
    zp = io.zero_point if io.zero_point and graph.is_constant(io.zero_point) else ""
    if zp and graph.initializers[zp].dtype != dtype:
        return None, f"the zero point of '{io.name}' is {graph.initializers[zp].dtype}, not {dtype}"
    vt = graph.value_type(io.name)
    if vt is None or vt.shape is None:
        return None, f"the shape of '{io.name}' is unknown"
    scales, zeros = _count(graph, io.scale), _count(graph, zp) if zp else 0
    if dtype == "uint8":
        if io.zero_point and not zp:
            return None, f"the zero point of uint8 '{io.name}' is not a constant initializer"
        if io.zero_point and (scales != 1 or zeros != 1):
            return (
                None,
                f"'{io.name}' is uint8 with {scales} scales and {zeros} zero points; "
                "XNNPACK takes per-tensor uint8 only",
            )
        return "uint8", ""
    if dtype == "int8":
        dim0 = _dim_value(vt.shape[0]) if vt.shape else 0
        if zeros and scales != zeros:
            return None, f"'{io.name}' has {scales} scales but {zeros} zero points"
        if scales == 1:
            return "int8", ""
        if scales == dim0:
            return "int8 per-channel", ""
        return None, f"'{io.name}' has {scales} scales for dim 0 of size {_dim_str(vt.shape[0])}"
    return None, f"'{io.name}' is {dtype}; XNNPACK takes uint8 and int8 QDQ tensors only"


def _types(graph: Graph, ios: dict[str, QuantIO | None]) -> tuple[dict[str, str], str | None]:
    """Quant types by role, or the first role whose type is invalid (with why)."""
    found: dict[str, str] = {}
    for role, io in ios.items():
        kind, why = quant_type(graph, io)
        if kind is None:
            return found, f"{role}: {why}"
        found[role] = kind
    return found, None


def _io(seq: tuple[QuantIO | None, ...], i: int) -> QuantIO | None:
    return seq[i] if i < len(seq) else None


def _qdq_conv_types(ctx: NodeContext, io: UnitIO) -> str | None:
    """(X, W, Y): u8/u8/u8, s8/s8/s8 or s8/per-channel s8/s8; qu8, qs8 need a const int32 bias."""
    # onnxruntime/core/providers/xnnpack/nn/conv_base.cc (IsValidQuantConv, GetConvCompType)
    roles = {"X": _io(io.inputs, 0), "W": _io(io.inputs, 1), "Y": _io(io.outputs, 0)}
    t, bad = _types(ctx.graph, roles)
    if bad:
        return bad
    combo = (t["X"], t["W"], t["Y"])
    valid = {
        ("uint8", "uint8", "uint8"),
        ("int8", "int8", "int8"),
        ("int8", "int8 per-channel", "int8"),
    }
    if combo not in valid:
        return (
            f"X is {combo[0]}, W is {combo[1]}, Y is {combo[2]}; XNNPACK takes uint8/uint8/"
            "uint8, int8/int8/int8 or int8 with per-channel int8 weights (uint8 activations "
            "with int8 weights are not supported)"
        )
    if len(ctx.node.inputs) > 2 and combo[1] != "int8 per-channel":
        bias = ctx.node.input(2)
        if ctx.input_dtype(2) != "int32" or not ctx.is_constant(2):
            return (
                f"bias '{bias}' is {ctx.input_dtype(2)}, constant={ctx.is_constant(2)}; "
                "XNNPACK needs a constant int32 bias"
            )
    return None


def _same_pair(allowed: tuple[str, ...]) -> Callable[[NodeContext, UnitIO], str | None]:
    """X and Y of one quant type, from ``allowed``."""

    def check(ctx: NodeContext, io: UnitIO) -> str | None:
        t, bad = _types(ctx.graph, {"X": _io(io.inputs, 0), "Y": _io(io.outputs, 0)})
        if bad:
            return bad
        if t["X"] != t["Y"] or t["X"] not in allowed:
            both = " or both ".join(allowed)
            return f"X is {t['X']} and Y is {t['Y']}; XNNPACK takes both {both}"
        return None

    return check


def _qdq_softmax_types(ctx: NodeContext, io: UnitIO) -> str | None:
    """X and Y uint8; Y scale 1/256 (within 1e-4) and Y zero point 0."""
    # onnxruntime/core/providers/xnnpack/math/softmax.cc (IsQuantSoftmaxSupported)
    reason = _same_pair(("uint8",))(ctx, io)
    y = io.outputs[0]
    if reason or y is None:
        return reason
    scale = _first_value(ctx.graph, y.scale or "")
    if scale is None:
        return f"the Y scale '{y.scale}' could not be read"
    if abs(scale - SOFTMAX_Q_SCALE) > 1e-4:
        return f"Y scale is {scale:g}; XNNPACK takes 1/256 (0.00390625) only"
    zp = _first_value(ctx.graph, y.zero_point) if y.zero_point else 0.0
    if zp:
        return f"Y zero point is {zp:g}; XNNPACK takes 0 only"
    return None


def _first_value(graph: Graph, name: str) -> float | None:
    """First value of a constant initializer (a scale or zero point); None if not readable."""
    if not graph.is_constant(name):
        return None
    try:
        return float(graph.initializers[name].numpy().reshape(-1)[0])
    except (ValueError, OSError, IndexError):
        return None


def _any_types(ctx: NodeContext, io: UnitIO) -> str | None:
    return None  # Resize: no quant-specific check; the Resize rules check X is uint8 or int8


QuantCheck = Callable[[NodeContext, UnitIO], str | None]

_QDQ_TARGETS: Mapping[str, tuple[QuantCheck, Callable[[NodeContext], str | None]]] = {
    "Conv": (_qdq_conv_types, _conv),
    "ConvTranspose": (_qdq_conv_types, _conv),  # per-channel W passes: a source quirk
    "MaxPool": (_same_pair(("uint8", "int8")), _max_pool),
    "AveragePool": (_same_pair(("uint8",)), _qdq_average_pool),
    "Softmax": (_qdq_softmax_types, _softmax),
    "Resize": (_any_types, _resize),  # fused kernel match unverified (doc §5.4)
}
"""QDQ target ops: the unit's type rule (detail/utils.cc) and the op rules run on the quantized
tensors. Fused kernels: QLinearConv, QLinearConvTranspose, MaxPool, QLinearAveragePool,
QLinearSoftmax, Resize."""


def _qdq_refusal(target: Node) -> str | None:
    op = target.op_type
    if target.domain != ONNX:
        return f"{target.op_id}: XNNPACK checks ai.onnx nodes only"
    if op in ("Gemm", "MatMul"):
        return (
            f"XNNPACK's {op} checker reads the float DQ output as B, which is never a "
            f"constant initializer, so QDQ {op} is never claimed"
        )
    if op in ("Relu", "Clip"):
        return f"XNNPACK never fuses a {op} that is part of a QDQ unit"
    if op not in _QDQ_TARGETS:
        return (
            "XNNPACK takes QDQ units around Conv, ConvTranspose, MaxPool, AveragePool, "
            "Softmax and Resize only"
        )
    return None


def check_unit(unit: NodeUnit, graph: Graph, options: EpOptions | None = None) -> str | None:
    """XNNPACK's verdict on a node unit, which is claimed or refused as a whole.

    A single-node unit is judged by :func:`check_node` (a lone DequantizeLinear/QuantizeLinear is
    refused). A QDQ unit is judged on its target op with the quantized types (doc §3.2), then the
    op's rules on the quantized tensors; if it is refused, none of its DQ/Q nodes is claimed.
    """
    options = options or EpOptions()
    target = unit.target
    if unit.kind != "qdq":
        return _verdict(graph, target, options)
    reason = _qdq_refusal(target)
    if reason is None:
        node, io = quantized_view(unit, graph)
        ctx = NodeContext(graph, node, options)
        types, rules = _QDQ_TARGETS[target.op_type]
        reason = types(ctx, io) or _op_reason(ctx, rules)
    return None if reason is None else f"QDQ {target.op_type} unit: {reason}"


SPEC = EpSpec(
    ep_id="xnnpack",
    display_name="XNNPACK",
    ort_source_version=ORT_SOURCE_VERSION,
    check_node=check_node,
    compiles=False,
    stop_ops=frozenset(),
    discard=None,
    subgraph_policy="XNNPACK claims nodes inside If/Loop/Scan bodies under the same rules",
    takes_subgraph_nodes=True,
    groups_qdq_units=True,
)

__all__ = [
    "FP16_SUPPORTED",
    "ORT_SOURCE_VERSION",
    "RULES",
    "SPEC",
    "QuantIO",
    "UnitIO",
    "check_node",
    "check_unit",
    "fp16_supported",
    "quant_type",
    "quantized_view",
]
