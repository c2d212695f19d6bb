"""CoreML builders' own conditions for activations, convolution, pooling, reductions and
normalizations (``builders/impl/<x>_op_builder.cc``)."""

from __future__ import annotations

import math

from ortprep.core.graph import Dim
from ortprep.eps.base import NodeContext
from ortprep.eps.coreml.constants import CONV_DIM_LIMIT
from ortprep.eps.coreml.facts import (
    const_ints,
    in_rank,
    in_shape,
    is_const,
    is_known,
    need_constant,
    output_count,
    shape_str,
)

# --------------------------------------------------------------------------- activations, unary


def check_prelu(ctx: NodeContext, ml: bool) -> str | None:
    # impl/activation (IsPReluOpSupported)
    x = in_shape(ctx, 0) or ()
    if len(x) not in (3, 4):
        return f"input X has rank {len(x)}; CoreML PRelu takes rank 3 or 4"
    channels = x[-3]
    if not is_known(channels):
        return f"channel dim (-3) of X {shape_str(x)} is not fixed; CoreML PRelu needs it"
    if not is_const(ctx, 1):
        return f"input slope ('{ctx.node.input(1)}') is not a constant initializer"
    slope = in_shape(ctx, 1) or ()
    per_channel = len(slope) == 3 and slope[1] == 1 and slope[2] == 1
    single = math.prod(int(d or 0) for d in slope) == 1
    if not (per_channel or single):
        return f"slope shape {shape_str(slope)} is neither [C,1,1] nor one element"
    if single and channels == 1:
        return "one-element slope with 1 channel crashes CoreML (coremltools#1488); ORT refuses it"
    return None


_FUSED_ACTIVATIONS = frozenset({"Relu", "Sigmoid", "Tanh", "LeakyRelu", "Clip", "HardSigmoid"})


def check_fused_conv(ctx: NodeContext, ml: bool) -> str | None:
    # impl/conv, FusedConv branch (PR #28289): Conv rules plus a known activation.
    act = ctx.attr("activation", "")
    if act not in _FUSED_ACTIVATIONS:
        return f"activation {act!r} not supported ({', '.join(sorted(_FUSED_ACTIVATIONS))})"
    if ctx.has_input(3):
        # Unclear in the source read: the decomposition is conv + activation, no sum input.
        return (
            "the fused sum input Z is not handled by the CoreML decomposition (conv + activation)"
        )
    return check_conv(ctx, ml)


# --------------------------------------------------------------------------- convolution, pooling


def _conv_memory(shape: tuple[Dim, ...] | None, role: str) -> str | None:
    shape = shape or ()
    for d in shape:
        if isinstance(d, int) and d > CONV_DIM_LIMIT:
            return (
                f"{role} shape {shape_str(shape)} has a dim over {CONV_DIM_LIMIT} "
                "(CoreML conv limit)"
            )
    return None


def _kernel_matches(ctx: NodeContext, weight: tuple[Dim, ...]) -> str | None:
    kernel = ctx.attr("kernel_shape")
    if kernel is not None and tuple(kernel) != tuple(weight[2:]):
        return f"kernel_shape {list(kernel)} differs from the weight's {shape_str(weight[2:])}"
    return None


def check_conv(ctx: NodeContext, ml: bool) -> str | None:
    # impl/conv: MLProgram takes a runtime weight; 3D conv refused in both formats.
    if not ml and not is_const(ctx, 1):
        return (
            f"input W ('{ctx.node.input(1)}') is not a constant initializer; "
            "CoreML (NeuralNetwork) needs constant weights"
        )
    weight = in_shape(ctx, 1) or ()
    if len(weight) not in (3, 4):
        return f"{len(weight) - 2}D convolution (weight rank {len(weight)}); CoreML takes 1D and 2D"
    if ctx.has_input(2) and not is_const(ctx, 2):
        return f"input B ('{ctx.node.input(2)}') is not a constant initializer"
    reason = _conv_memory(in_shape(ctx, 0), "input") or _conv_memory(weight, "weight")
    if reason:
        return reason
    version = ctx.options.coreml_version
    if ml and version < 6 and ctx.attr("auto_pad", "NOTSET") == "SAME_LOWER":
        return f"auto_pad SAME_LOWER needs CoreML 6+ with MLProgram (target is CoreML {version})"
    return _kernel_matches(ctx, weight)


def check_conv_transpose(ctx: NodeContext, ml: bool) -> str | None:
    # impl/convtranspose (read at 2025 state, after PR #24594)
    reason = need_constant(ctx, 1, "W", ml) or need_constant(ctx, 2, "B", ml)
    if reason:
        return reason
    reason = _conv_memory(in_shape(ctx, 1), "weight") or _conv_memory(in_shape(ctx, 0), "input")
    if reason:
        return reason
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return f"auto_pad {auto_pad} not supported (NOTSET or VALID only)"
    pads = list(ctx.attr("pads", ()) or ())
    if auto_pad == "NOTSET" and len(set(pads)) > 1:
        return f"pads {pads} are not all equal; CoreML gives inconsistent results otherwise"
    reason = _kernel_matches(ctx, in_shape(ctx, 1) or ())
    if reason:
        return reason
    if ctx.attr("output_shape") is not None:
        return "output_shape attribute not supported"
    output_padding = list(ctx.attr("output_padding", ()) or ())
    if any(output_padding):
        return f"output_padding {output_padding} not supported (all zeros only)"
    return None


def check_pool(ctx: NodeContext, ml: bool) -> str | None:
    # impl/pool
    rank = in_rank(ctx, 0)
    if rank != 4:
        return f"input rank {rank}; CoreML pools take 4D input (2D pooling) only"
    op = ctx.node.op_type
    if op.startswith("Global"):
        return None
    kernel = list(ctx.attr("kernel_shape", ()) or ())
    if len(kernel) != 2:
        return f"kernel_shape {kernel} is not 2D"
    dilations = list(ctx.attr("dilations", ()) or ())
    if any(d != 1 for d in dilations):
        return f"dilations {dilations} not supported (all 1 only)"
    if op == "MaxPool":
        if ctx.attr("storage_order", 0) != 0:
            return f"storage_order {ctx.attr('storage_order')} not supported (0 only)"
        if output_count(ctx.node) != 1:
            return "the Indices output is not supported"
    if not ml and ctx.attr("ceil_mode", 0) == 1:
        return "ceil_mode=1 not supported by CoreML NeuralNetwork (MLProgram takes it)"
    return None


# --------------------------------------------------------------------------- reductions, norms


def reduce_axes(ctx: NodeContext) -> list[int] | str:
    """Axes from the constant input 1 (newer opsets) or the attribute; a reason if not constant."""
    if ctx.has_input(1):
        axes = const_ints(ctx, 1)
        if axes is None:
            return f"input axes ('{ctx.node.input(1)}') is not a constant initializer"
        return list(axes)
    return list(ctx.attr("axes", ()) or ())


def check_reduce(ctx: NodeContext, ml: bool) -> str | None:
    # impl/reduction: axes as a constant input (opset 13/18+) or the attribute.
    axes = reduce_axes(ctx)
    if isinstance(axes, str):
        return axes
    if not ml and ctx.attr("noop_with_empty_axes", 0) == 1 and not axes:
        # ORT reads axes from the tensor's int64 field only: raw-data axes count as empty too.
        return "noop_with_empty_axes=1 with empty axes not supported by CoreML NeuralNetwork"
    return None


def check_batch_norm(ctx: NodeContext, ml: bool) -> str | None:
    # impl/batch_norm (has an MLProgram path since PR #22480; see report).
    if output_count(ctx.node) != 1:
        return "training-mode outputs present; CoreML takes the one-output inference form"
    rank = in_rank(ctx, 0)
    if rank != 4:
        return f"input rank {rank}; CoreML BatchNormalization takes 4D only"
    if ctx.attr("spatial", 1) != 1:
        return "spatial=0 not supported"
    for i, role in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var")):
        if ctx.node.input(i) not in ctx.graph.initializers:
            return f"input {role} ('{ctx.node.input(i)}') is not an initializer"
    return None


def check_normalization(ctx: NodeContext, ml: bool) -> str | None:
    # impl/normalization (Layer/Instance/GroupNormalization, MLProgram only)
    if output_count(ctx.node) != 1:
        return f"{output_count(ctx.node)} outputs; CoreML takes the one-output form"
    op = ctx.node.op_type
    if op != "InstanceNormalization" and ctx.attr("stash_type", 1) != 1:
        return f"stash_type {ctx.attr('stash_type')} not supported (1 only)"
    return need_constant(ctx, 1, "scale", ml) or need_constant(ctx, 2, "B", ml)


def check_lrn(ctx: NodeContext, ml: bool) -> str | None:
    # impl/LRN
    rank = in_rank(ctx, 0)
    return None if rank in (3, 4) else f"input rank {rank}; CoreML LRN takes rank 3 or 4"
