"""XNNPACK's per-op rules (``IsOnnxNodeSupported`` of each kernel under
``onnxruntime/core/providers/xnnpack/``): Conv and ConvTranspose, MaxPool and AveragePool,
Softmax, Resize, Gemm, MatMul. Each takes a :class:`NodeContext` and returns the first refusal,
or None; the same rules judge a QDQ unit's target on its quantized tensors (:mod:`.qdq`)."""

from __future__ import annotations

from ortprep.core.graph import Dim
from ortprep.eps.base import NodeContext
from ortprep.eps.xnnpack.checks import (
    attr_equals,
    auto_pad,
    check_dtype,
    check_rank,
    const_floats,
    dim_str,
    dim_value,
    input_info,
    is_static,
    shape_str,
    static_dims,
)
from ortprep.eps.xnnpack.constants import fp16_supported

# --------------------------------------------------------------------------- Conv, ConvTranspose


def check_conv(ctx: NodeContext) -> str | None:
    """Conv and ConvTranspose share one checker (1D and 2D, constant weight and bias)."""
    # onnxruntime/core/providers/xnnpack/nn/conv_base.cc (ConvBase::IsOnnxNodeSupported)
    dt, shape = input_info(ctx, 0)
    rank = None if shape is None else len(shape)
    return (
        check_rank(ctx, shape, (3, 4), "rank 3 or 4 (1D or 2D convolution)")
        or check_dtype(ctx, dt, ("float32",), qdq_only=("uint8", "int8"))
        or static_dims(
            ctx,
            shape,
            "NCW" if rank == 3 else "NCHW",
            range(1, rank or 0),
            "XNNPACK needs C and the spatial dims fixed (only N may be dynamic)",
        )
        or _need_constant(ctx, 1, "weight")
        or _need_constant(ctx, 2, "bias")
        or (None if "pads" in ctx.node.attributes else auto_pad(ctx))
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
    dt, shape = input_info(ctx, 0)
    return (
        check_rank(ctx, shape, (4,), "rank 4 (2D pooling)")
        or check_dtype(ctx, dt, allowed, qdq_only)
        or static_dims(ctx, shape, "NCHW", (1, 2, 3), "XNNPACK needs C, H and W fixed")
        or (_maxpool_indices(ctx) if ctx.node.op_type == "MaxPool" else None)
        or attr_equals(ctx, "ceil_mode", 0, 0)
        or auto_pad(ctx)
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


def check_max_pool(ctx: NodeContext) -> str | None:
    # onnxruntime/core/providers/xnnpack/nn/max_pool.cc (MaxPool::IsOnnxNodeSupported)
    return _pool_common(ctx, ("float32", "uint8", "int8"))


def check_average_pool(ctx: NodeContext, qdq: bool = False) -> str | None:
    # onnxruntime/core/providers/xnnpack/nn/average_pool.cc (AveragePool::IsOnnxNodeSupported)
    # fp32 must exclude padding and qu8 must include it (an XNNPACK quirk the source notes)
    want, when = (1, " for a QDQ unit") if qdq else (0, " for float input")
    dilations = list(ctx.attr("dilations", ()))
    return (
        _pool_common(ctx, ("float32",), qdq_only=("uint8",))
        or attr_equals(ctx, "count_include_pad", want, 0, when)
        or (
            None
            if all(d == 1 for d in dilations)
            else f"dilations={dilations}; XNNPACK takes dilations of 1 only"
        )
    )


def check_qdq_average_pool(ctx: NodeContext) -> str | None:
    return check_average_pool(ctx, qdq=True)


# --------------------------------------------------------------------------- Softmax


def check_softmax(ctx: NodeContext) -> str | None:
    # onnxruntime/core/providers/xnnpack/math/softmax.cc (Softmax::IsOnnxNodeSupported)
    dt, shape = input_info(ctx, 0)
    if dt == "float16" and not fp16_supported(ctx.options):
        return (
            "input is float16: ORT's XNNPACK EP claims it (its checker accepts float16 "
            "unconditionally) but this build has no fp16 Softmax kernel (session creation "
            "fails)"
        )
    reason = check_dtype(ctx, dt, ("float32",), qdq_only=("uint8",))
    if reason:
        return reason
    if not shape:
        return f"input '{ctx.node.input(0)}' has shape {shape_str(shape)}; XNNPACK needs rank >= 1"
    if (ctx.since_version or 13) <= 12:
        return None  # any axis; the meant-to-be static check is ineffective in the source
    axis, rank = ctx.attr("axis", -1), len(shape)
    if axis not in (-1, rank - 1):
        return (
            f"axis={axis} on a rank-{rank} input (opset 13+); XNNPACK takes the last axis only "
            f"(-1 or {rank - 1})"
        )
    if not is_static(shape[-1]):
        return (
            f"the last dim of input '{ctx.node.input(0)}' is {dim_str(shape[-1])}; XNNPACK "
            "needs it fixed (opset 13+)"
        )
    return None


# --------------------------------------------------------------------------- Resize


def check_resize(ctx: NodeContext) -> str | None:
    # onnxruntime/core/providers/xnnpack/tensor/resize.cc (Resize::IsOnnxNodeSupported)
    dt, shape = input_info(ctx, 0)
    reason = check_dtype(ctx, dt, ("float32", "uint8", "int8")) or check_rank(
        ctx, shape, (4,), "rank 4"
    )
    if reason or shape is None:
        return reason
    if dim_value(shape[1]) <= 0:
        return f"input dim 1 (C) is {dim_str(shape[1])}; XNNPACK needs the channel count fixed"
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
        sizes = const_floats(ctx, 3)
        if not sizes or len(sizes) < 2:
            return f"sizes '{ctx.node.input(3)}' could not be read as 4 values"
        if int(sizes[1]) != dim_value(shape[1]):
            return (
                f"sizes[1]={int(sizes[1])} changes the channel count {shape[1]}; XNNPACK "
                "resizes H and W only"
            )
    return None


def _resize_scales(ctx: NodeContext, i: int, shape: tuple[Dim, ...]) -> str | None:
    scales = const_floats(ctx, i)
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
        h, w = dim_value(shape[2]), dim_value(shape[3])  # unknown reads as 0 and passes
        if not (_reciprocal_divides(h, scales[2]) and _reciprocal_divides(w, scales[3])):
            return (
                f"downsampling scales [{scales[2]:g}, {scales[3]:g}] on H={dim_str(shape[2])}"
                f", W={dim_str(shape[3])}; XNNPACK needs both scales < 1 with whole "
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
        attr_equals(ctx, "mode", "linear", "nearest")
        or attr_equals(ctx, "antialias", 0, 0)
        or (
            None
            if not ctx.attr("axes")
            else f"axes={list(ctx.attr('axes'))}; XNNPACK takes Resize without axes only"
        )
        or attr_equals(ctx, "keep_aspect_ratio_policy", "stretch", "stretch")
        or attr_equals(ctx, "extrapolation_value", 0.0, 0.0)
        or _resize_coordinates(ctx, shape)
        or attr_equals(ctx, "exclude_outside", 0, 0)
    )


def _resize_coordinates(ctx: NodeContext, out: tuple[Dim, ...]) -> str | None:
    since = ctx.since_version or 19
    mode = ctx.attr("coordinate_transformation_mode", "half_pixel") if since > 10 else "asymmetric"
    if mode in ("asymmetric", "half_pixel", "align_corners"):
        return None
    if mode == "pytorch_half_pixel":
        if dim_value(out[2]) > 1 and dim_value(out[3]) > 1:
            return None
        return (
            f"coordinate_transformation_mode=pytorch_half_pixel with output H, W = "
            f"{dim_str(out[2])}, {dim_str(out[3])}; XNNPACK needs both fixed and > 1"
        )
    return (
        f"coordinate_transformation_mode={mode}; XNNPACK takes half_pixel, asymmetric, "
        "align_corners or pytorch_half_pixel"
    )


# --------------------------------------------------------------------------- Gemm, MatMul


def check_gemm(ctx: NodeContext) -> str | None:
    # onnxruntime/core/providers/xnnpack/math/gemm.cc (Gemm::IsOnnxNodeSupported, #28546 guards)
    for attr in ("alpha", "beta"):
        value = float(ctx.attr(attr, 1.0))
        if value != 1.0:
            return f"{attr}={value:g}; XNNPACK takes {attr}=1 only"
    has_c = len(ctx.node.inputs) >= 3  # an empty-named C counts and is refused
    return (
        check_dtype(ctx, input_info(ctx, 0)[0], ("float32",))
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
    a, b = input_info(ctx, 0)[1], input_info(ctx, 1)[1]
    if a is None or len(a) > 2:
        return f"A has shape {shape_str(a)}; XNNPACK takes a known rank <= 2"
    if b is None or len(b) > 2:
        return f"B has shape {shape_str(b)}; XNNPACK takes a known rank <= 2"
    if not has_c:
        return None  # allowed since #28546 (ORT <= 1.26 crashed here)
    c = input_info(ctx, 2)[1]
    if c is None or len(c) not in (1, 2):
        return (
            f"C has shape {shape_str(c)}; XNNPACK takes a rank-1 or rank-2 C "
            "(ORT <= 1.26 crashed on a scalar C, #28542)"
        )
    c0, b_dims = dim_value(c[0]), [dim_value(d) for d in b] + [0, 0]
    if c0 not in (b_dims[0], b_dims[1]):
        return (
            f"C dim 0 is {dim_str(c[0])}, B is {shape_str(b)}; XNNPACK needs C dim 0 to "
            "equal one of B's dims"
        )
    return None


def check_matmul(ctx: NodeContext) -> str | None:
    # onnxruntime/core/providers/xnnpack/math/matmul.cc (MatMul::IsOnnxNodeSupported)
    if len(ctx.node.inputs) != 2:
        return f"{len(ctx.node.inputs)} inputs; XNNPACK takes exactly 2"
    return (
        check_dtype(ctx, input_info(ctx, 0)[0], ("float32",))
        or _matmul_shape(ctx, 0, "A")
        or _matmul_shape(ctx, 1, "B")
        or _constant_b(ctx)
    )


def _matmul_shape(ctx: NodeContext, i: int, role: str) -> str | None:
    shape = input_info(ctx, i)[1]
    if shape is None or len(shape) not in (1, 2):
        extra = " (N-D MatMul is not supported, ORT issue #24107)" if shape else ""
        return f"{role} has shape {shape_str(shape)}; XNNPACK takes rank 1 or 2{extra}"
    if not all(isinstance(d, int) and d > 0 for d in shape):  # no dim_value(d) == 0
        return f"{role} has shape {shape_str(shape)}; XNNPACK needs every dim fixed and non-zero"
    return None
