"""CoreML's Resize builder (``builders/impl/resize_op_builder.cc``): modes, scales and sizes,
coordinate transformations, per model format."""

from __future__ import annotations

from ortprep.core.graph import Dim
from ortprep.eps.base import NodeContext, all_static
from ortprep.eps.coreml.facts import const_floats, dim_size, in_shape, is_known, shape_str

# --------------------------------------------------------------------------- Resize (§3)


def check_resize(ctx: NodeContext, ml: bool) -> str | None:
    # impl/resize
    shape = in_shape(ctx, 0) or ()
    if 0 in shape:
        return f"input shape {shape_str(shape)} has a 0 dim"
    rank = len(shape)
    if (not ml and rank != 4) or not 3 <= rank <= 5:
        return f"input rank {rank}; CoreML Resize takes {'3D-5D' if ml else '4D'}"
    for name, want in (("antialias", 0), ("exclude_outside", 0)):
        if ctx.attr(name, want) != want:
            return f"{name}={ctx.attr(name)} not supported"
    if ctx.attr("keep_aspect_ratio_policy", "stretch") != "stretch":
        return f"keep_aspect_ratio_policy {ctx.attr('keep_aspect_ratio_policy')!r} not supported"
    mode = ctx.attr("mode", "nearest")
    if mode not in ("nearest", "linear"):
        return f"mode {mode!r} not supported (linear and nearest only)"
    if mode == "nearest" and ctx.attr("nearest_mode", "round_prefer_floor") != "floor":
        found = ctx.attr("nearest_mode", "round_prefer_floor")
        return f"nearest_mode {found!r} not supported (floor only)"
    use_sizes = bool(ctx.has_input(3) and (in_shape(ctx, 3) or (0,))[0] != 0)
    index = 3 if use_sizes else 2
    values = const_floats(ctx, index)
    if values is None:
        role = "sizes" if use_sizes else "scales"
        return f"input {role} ('{ctx.node.input(index)}') is missing or not a constant initializer"
    full = _full_rank(ctx, values, shape, use_sizes)
    if len(full) != rank:
        role = "sizes" if use_sizes else "scales"
        return f"{role} has {len(full)} values for a rank-{rank} input"
    reason = (
        _resize_scales(ctx, ml, shape, full) if not use_sizes else _resize_sizes(ml, shape, full)
    )
    return reason or _resize_coordinates(ctx, ml, mode, use_sizes, shape, full)


def _full_rank(
    ctx: NodeContext, values: list[float], shape: tuple[Dim, ...], sizes: bool
) -> list[float]:
    """Opset-18 ``axes`` expanded: one value per input dim."""
    axes = ctx.attr("axes")
    if axes is None:
        return values
    rank = len(shape)
    default = -1.0 if sizes else 1.0
    full = [float(dim_size(d) or default) if sizes else default for d in shape]
    for a, v in zip(axes, values, strict=False):
        full[a + rank if a < 0 else a] = v
    return full


def _resize_scales(
    ctx: NodeContext, ml: bool, shape: tuple[Dim, ...], scales: list[float]
) -> str | None:
    if any(s != 1.0 for s in scales[:-2]):
        return f"scales {scales} change more than the last two axes"
    h, w = shape[-2:]
    if not (is_known(h) and is_known(w)):
        return f"H and W of the input {shape_str(shape)} are not fixed"
    sh, sw = scales[-2:]
    if sh >= 1 and sw >= 1:
        if sh != int(sh) or sw != int(sw):
            return f"upsampling scales {sh}, {sw} are not whole numbers"
        return None
    if sh <= 1 and sw <= 1:
        if not ml:
            return f"downsampling scales {sh}, {sw} need MLProgram"
        if any(s <= 0 or (dim_size(d) or 0) % (1 / s) for s, d in ((sh, h), (sw, w))):
            return f"downsampling scales {sh}, {sw} do not divide H, W ({h}, {w})"
        return None
    return f"scales {sh}, {sw} mix upsampling and downsampling"


def _resize_sizes(ml: bool, shape: tuple[Dim, ...], sizes: list[float]) -> str | None:
    if any(not is_known(d) or s != d for s, d in zip(sizes[:-2], shape[:-2], strict=False)):
        return f"sizes {[int(s) for s in sizes]} change more than the last two axes"
    if ml:
        return None
    if not all_static(shape):
        return f"input {shape_str(shape)} is dynamic; CoreML (NeuralNetwork) needs it static"
    for s, d in zip(sizes[-2:], shape[-2:], strict=False):
        if s % (dim_size(d) or 1):
            return f"sizes {[int(v) for v in sizes]} are not whole multiples of the input H, W"
    return None


def _resize_coordinates(
    ctx: NodeContext,
    ml: bool,
    mode: str,
    use_sizes: bool,
    shape: tuple[Dim, ...],
    full: list[float],
) -> str | None:
    ctm = ctx.attr("coordinate_transformation_mode", "half_pixel")
    if not ml or mode == "nearest":
        if ctm == "asymmetric":
            return None
        where = "NeuralNetwork" if not ml else "MLProgram nearest"
        return f"coordinate_transformation_mode {ctm!r}; CoreML ({where}) takes asymmetric only"
    if ctm in ("half_pixel", "align_corners"):
        return None
    if ctm == "asymmetric":
        return None if use_sizes else "asymmetric linear resize needs sizes, not scales"
    if ctm == "pytorch_half_pixel":
        out = (
            full[-2:]
            if use_sizes
            else [(dim_size(d) or -1.0) * s for d, s in zip(shape[-2:], full[-2:], strict=False)]
        )
        ok = all(o > 1 for o in out)
        return None if ok else f"pytorch_half_pixel needs output H and W over 1 (found {out})"
    return f"coordinate_transformation_mode {ctm!r} not supported for linear"
