"""CoreML builders' own conditions for shape-like and tensor ops: ArgMax, Clip, Concat,
DepthToSpace, Flatten, Gather(ND), Gemm, MatMul, GridSample, Pad, Reshape, Shape, Slice, Softmax,
Split, Squeeze, Tile (``builders/impl/<x>_op_builder.cc``). Cast is judged with its producer's
verdict, so its rule sits beside the verdict in :mod:`.rules`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ortprep.eps.base import NodeContext, all_static
from ortprep.eps.coreml.constants import INT32, MAX_RANK
from ortprep.eps.coreml.conv_pool_norm import reduce_axes
from ortprep.eps.coreml.facts import (
    const_ints,
    dim_size,
    format_name,
    in_dtype,
    in_rank,
    in_shape,
    is_const,
    is_known,
    need_constant,
    shape_str,
)

# --------------------------------------------------------------------------- shape-like ops


def check_argmax(ctx: NodeContext, ml: bool) -> str | None:
    # impl/argmax: CoreML fuses ArgMax with a following Cast-to-int32.
    if ctx.attr("select_last_index", 0) != 0:
        return "select_last_index=1 not supported"
    consumers = ctx.graph.consumers.get(ctx.node.outputs[0], [])
    casts_to_int32 = [
        c for c in consumers if c.op_type == "Cast" and c.attributes.get("to") == INT32
    ]
    if ml:
        if len(consumers) != 1:
            return (
                f"output has {len(consumers)} consumer nodes; CoreML (MLProgram) takes ArgMax "
                "with exactly one consumer"
            )
        only = consumers[0]
        if only.op_type == "Cast" and not casts_to_int32:
            return f"its consumer Cast '{only.name}' does not cast to int32"
    elif len(consumers) > 1 and casts_to_int32:
        return "several consumers and one is a Cast to int32 (not supported by NeuralNetwork)"
    return None


def check_clip(ctx: NodeContext, ml: bool) -> str | None:
    # impl/clip (GetClipMinMax): min/max inputs (opset 11+) must be constant.
    return need_constant(ctx, 1, "min", ml) or need_constant(ctx, 2, "max", ml)


def check_concat(ctx: NodeContext, ml: bool) -> str | None:
    # impl/concat
    count = sum(1 for i in ctx.node.inputs if i)
    if count < 2:
        return f"{count} input; CoreML Concat needs at least 2"
    if not ml:
        rank = in_rank(ctx, 0)
        if rank != 4:
            return f"input rank {rank}; CoreML (NeuralNetwork) Concat takes 4D only"
        axis = ctx.attr("axis")
        if axis not in (1, -3):
            return f"axis {axis}; CoreML (NeuralNetwork) concatenates on channels (1) only"
    return None


def check_depth_to_space(ctx: NodeContext, ml: bool) -> str | None:
    # impl/depthtospace
    mode = ctx.attr("mode", "DCR")
    if not ml:
        return None if mode == "DCR" else f"mode {mode}; CoreML (NeuralNetwork) takes DCR only"
    if mode == "CRD" and not all_static(in_shape(ctx, 0)):
        shape = shape_str(in_shape(ctx, 0))
        return f"mode CRD needs a fully static input shape (found {shape})"
    version = ctx.options.coreml_version
    if mode == "DCR" and in_dtype(ctx, 0) == "float16" and version < 7:
        return f"float16 DCR needs CoreML 7+ (target is CoreML {version})"
    return None


def check_flatten(ctx: NodeContext, ml: bool) -> str | None:
    # impl/flatten
    return "scalar input not supported" if in_rank(ctx, 0) == 0 else None


def check_gather(ctx: NodeContext, ml: bool) -> str | None:
    # impl/gather (June 2026 form, PR #28278: scalar indices)
    data = in_shape(ctx, 0) or ()
    indices = in_shape(ctx, 1) or ()
    if not indices:
        if not all_static(data):
            return f"scalar indices need a static data shape (found {shape_str(data)})"
        if len(data) > 4:
            return f"scalar indices need data rank <= 4 (found {len(data)})"
    out_rank = len(data) + len(indices) - 1
    return None if out_rank <= MAX_RANK else f"output rank {out_rank} is over {MAX_RANK}"


def check_gather_nd(ctx: NodeContext, ml: bool) -> str | None:
    # impl/gather_nd (PR #28598)
    if ctx.attr("batch_dims", 0) != 0:
        return f"batch_dims {ctx.attr('batch_dims')} not supported (0 only)"
    reason = need_constant(ctx, 1, "indices", ml)
    if reason:
        return reason
    data = in_shape(ctx, 0) or ()
    depth = (in_shape(ctx, 1) or (0,))[-1]
    if not isinstance(depth, int) or depth > len(data):
        return f"index depth {depth} is over the data rank {len(data)}"
    if not all_static(data[:depth]):
        return f"indexed leading dims of data {shape_str(data)} are not fixed"
    return None


def check_gemm(ctx: NodeContext, ml: bool) -> str | None:
    # impl/gemm (Gemm and MatMul)
    if ctx.node.op_type == "MatMul":
        return _matmul(ctx, ml)
    if not is_const(ctx, 1):
        return (
            f"input B ('{ctx.node.input(1)}') is not a constant initializer; "
            f"CoreML ({format_name(ml)}) needs constant weights"
        )
    for name, want in (("transA", 0), ("alpha", 1.0), ("beta", 1.0)):
        value = ctx.attr(name, want)
        if value != want:
            return f"{name}={value} not supported ({name}={want} only)"
    if not ctx.has_input(2):
        return None
    reason = need_constant(ctx, 2, "C", ml)
    if reason:
        return reason
    b = in_shape(ctx, 1) or (0, 0)
    n = b[0] if ctx.attr("transB", 0) else b[-1]
    c = tuple(in_shape(ctx, 2) or ())
    if c not in ((), (1,), (n,), (1, n)):
        return f"C shape {shape_str(c)} not supported ([], [1], [{n}] or [1,{n}])"
    return None


def _matmul(ctx: NodeContext, ml: bool) -> str | None:
    if ml:
        return None  # numpy-style N-D matmul; B may be a runtime tensor
    if not is_const(ctx, 1):
        return (
            f"input B ('{ctx.node.input(1)}') is not a constant initializer; "
            "CoreML (NeuralNetwork) needs constant weights"
        )
    ranks = (in_rank(ctx, 0), in_rank(ctx, 1))
    return None if ranks == (2, 2) else f"input ranks {ranks}; CoreML (NeuralNetwork) takes 2D only"


def check_grid_sample(ctx: NodeContext, ml: bool) -> str | None:
    # impl/gridsample (corrects the reference: rank != 4 and nearest are refused)
    rank = in_rank(ctx, 0)
    if rank != 4:
        return f"input rank {rank}; CoreML GridSample takes 4D only"
    mode = ctx.attr("mode", "linear")
    mode = "bilinear" if mode == "linear" else mode
    if mode not in ("bilinear", "zeros"):
        return f"mode {mode!r} not supported (linear/bilinear only)"
    reflection = ctx.attr("padding_mode", "zeros") == "reflection"
    if mode == "bilinear" and reflection and not ctx.attr("align_corners", 0):
        return "linear + padding_mode reflection + align_corners=0 not supported"
    return None


def check_pad(ctx: NodeContext, ml: bool) -> str | None:
    # impl/pad (2026 form with reflect in MLProgram)
    pads = const_ints(ctx, 1)
    if pads is None:
        return f"input pads ('{ctx.node.input(1)}') is not a constant initializer"
    if any(p < 0 for p in pads):
        return f"negative pads {pads} (cropping) not supported"
    reason = need_constant(ctx, 2, "constant_value", ml) or need_constant(ctx, 3, "axes", ml)
    if reason:
        return reason
    shape = in_shape(ctx, 0) or ()
    rank = len(shape)
    axes = const_ints(ctx, 3) if ctx.has_input(3) else list(range(rank))
    axes = [a + rank if a < 0 else a for a in axes or ()]
    half = len(pads) // 2
    padded = {
        ax: (pads[k], pads[k + half])
        for k, ax in enumerate(axes[:half])
        if pads[k] or pads[k + half]
    }
    mode = ctx.attr("mode", "constant")
    if not ml:
        return _pad_nn(ctx, rank, mode, padded)
    if mode not in ("constant", "reflect"):
        return f"mode {mode!r} not supported (constant or reflect)"
    if mode == "reflect":
        for ax, (before, after) in padded.items():
            if ax < rank - 2:
                return f"reflect padding on axis {ax}; CoreML reflects the last two dims only"
            size = dim_size(shape[ax])
            if size is None or max(before, after) >= size:
                return f"reflect pad {max(before, after)} is not below axis {ax} size {shape[ax]}"
    return None


def _pad_nn(ctx: NodeContext, rank: int, mode: str, padded: Mapping[int, Any]) -> str | None:
    if rank < 2:
        return f"input rank {rank}; CoreML (NeuralNetwork) Pad needs rank 2+"
    if mode != "constant":
        return f"mode {mode!r}; CoreML (NeuralNetwork) pads in constant mode only"
    if not ctx.has_input(2):
        return "no constant_value input; CoreML (NeuralNetwork) needs it given"
    outer = [ax for ax in padded if ax < rank - 2]
    if outer:
        return f"pads on axes {outer}; CoreML (NeuralNetwork) pads the last two dims only"
    return None


def check_reshape(ctx: NodeContext, ml: bool) -> str | None:
    # impl/reshape (PR #24594 form)
    new_shape = const_ints(ctx, 1)
    if new_shape is None:
        return f"input shape ('{ctx.node.input(1)}') is not a constant initializer"
    if not new_shape:
        return "the new shape is empty"
    if ctx.attr("allowzero", 0) == 1 and 0 in new_shape:
        return f"allowzero=1 with a 0 in the new shape {new_shape}"
    shape = in_shape(ctx, 0) or ()
    if not ml and not all_static(shape):
        return f"input shape {shape_str(shape)} is dynamic; CoreML (NeuralNetwork) needs it static"
    if len(new_shape) > MAX_RANK:
        return f"new rank {len(new_shape)} is over {MAX_RANK}"
    for i, d in enumerate(new_shape):
        if d == 0 and (i >= len(shape) or not is_known(shape[i])):
            return f"a 0 (copy) in the new shape {new_shape} at dynamic input dim {i}"
    return None


def check_shape(ctx: NodeContext, ml: bool) -> str | None:
    # impl/shape
    start, end = ctx.attr("start", 0), ctx.attr("end")
    if not ml:
        if start != 0 or end is not None:
            return "start/end not supported by CoreML (NeuralNetwork)"
        return None
    rank = in_rank(ctx, 0) or 0
    lo, hi = _clamp_axis(start, rank), _clamp_axis(rank if end is None else end, rank)
    return None if hi > lo else f"start={start}, end={end} select no dims"


def _clamp_axis(v: int, rank: int) -> int:
    return max(0, min(rank, v + rank if v < 0 else v))


def check_slice(ctx: NodeContext, ml: bool) -> str | None:
    # impl/slice
    for i, role in ((1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")):
        reason = need_constant(ctx, i, role, ml)
        if reason:
            return reason
    shape = in_shape(ctx, 0)
    if not all_static(shape):
        return f"data shape {shape_str(shape)} is not fully static; CoreML Slice needs it static"
    dims = [dim_size(d) or 0 for d in shape or ()]
    starts, ends = const_ints(ctx, 1) or [], const_ints(ctx, 2) or []
    axes = const_ints(ctx, 3) if ctx.has_input(3) else list(range(len(starts)))
    steps = const_ints(ctx, 4) if ctx.has_input(4) else [1] * len(starts)
    for s, e, a, st in zip(starts, ends, axes or [], steps or [], strict=False):
        ax = a + len(dims) if a < 0 else a
        if 0 <= ax < len(dims) and st and not range(*slice(s, e, st).indices(dims[ax])):
            return f"empty slice on axis {a} (starts {s}, ends {e}, step {st})"
    return None


def check_softmax(ctx: NodeContext, ml: bool) -> str | None:
    # impl/softmax (state before PR #24594's MLProgram relaxation, which was not found: see report)
    shape = in_shape(ctx, 0)
    if not all_static(shape):
        return f"input shape {shape_str(shape)} is not fully static; CoreML Softmax needs it static"
    return None


def check_split(ctx: NodeContext, ml: bool) -> str | None:
    # impl/split (Split-1..12 'split' attribute since PR #28270)
    shape = in_shape(ctx, 0) or ()
    axis = int(ctx.attr("axis", 0))
    dim = shape[axis + len(shape) if axis < 0 else axis] if shape else None
    if ctx.has_input(1):
        split = const_ints(ctx, 1)
        if split is None:
            return f"input split ('{ctx.node.input(1)}') is not a constant initializer"
    else:
        split = list(ctx.attr("split", ()) or ()) or None
    if split is not None:
        if len(split) < 2 or 0 in split:
            return f"split {split} needs 2+ entries and no 0"
        if not is_known(dim) or sum(split) != dim:
            return f"split {split} does not sum to the axis dim {dim}"
        return None
    if (ctx.since_version or 0) >= 18:
        n = ctx.attr("num_outputs")
        outs = len(ctx.node.outputs)
        if n is None or n < 2 or n != outs:
            return f"num_outputs {n} must be 2+ and equal the {outs} outputs"
        size = dim_size(dim)
        if size is None or n > size:
            return f"num_outputs {n} is over the axis dim {dim}"
    return None


def check_squeeze(ctx: NodeContext, ml: bool) -> str | None:
    # impl/squeeze (Squeeze and Unsqueeze)
    axes = reduce_axes(ctx)
    if isinstance(axes, str):
        return axes
    if ctx.node.op_type == "Unsqueeze":
        rank = (in_rank(ctx, 0) or 0) + len(axes)
        if rank > MAX_RANK:
            return f"output rank {rank} is over {MAX_RANK}"
    return None


def check_tile(ctx: NodeContext, ml: bool) -> str | None:
    # impl/tile (PR #28293)
    repeats = const_ints(ctx, 1)
    if repeats is None:
        return (
            None
            if ml
            else (
                f"input repeats ('{ctx.node.input(1)}') is not a constant initializer; "
                "CoreML (NeuralNetwork) needs it constant"
            )
        )
    rank = in_rank(ctx, 0)
    if len(repeats) != rank:
        return f"repeats {repeats} do not match the input rank {rank}"
    if any(r < 1 for r in repeats):
        return f"repeats {repeats} must all be 1 or more"
    return None
