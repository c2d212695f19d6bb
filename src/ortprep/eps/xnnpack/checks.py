"""Checks XNNPACK's op rules share: input type and shape lookups, dtype, rank, fixed dims,
attributes, padding, and how dims and shapes are written in reasons.

The op rules chain these with ``or``: the first refusal (a non-empty string) wins, later
conditions are not evaluated, and input 0 is looked up once per rule.
"""

from __future__ import annotations

from collections.abc import Iterable

from ortprep.core.graph import Dim
from ortprep.eps.base import NodeContext
from ortprep.eps.xnnpack.constants import AUTO_PADS, fp16_supported


def is_static(d: Dim) -> bool:
    return isinstance(d, int) and d >= 0


def dim_value(d: Dim) -> int:
    """ORT's ``dim_value()``: the size, or 0 when symbolic or unknown."""
    return d if isinstance(d, int) and d >= 0 else 0


def dim_str(d: Dim) -> str:
    return "unknown" if d is None else repr(d) if isinstance(d, str) else str(d)


def shape_str(shape: tuple[Dim, ...] | None) -> str:
    return "unknown" if shape is None else "[" + ",".join([dim_str(d) for d in shape]) + "]"


def const_floats(ctx: NodeContext, i: int) -> list[float] | None:
    """Values of constant input ``i`` as floats; None when not readable."""
    try:
        values = ctx.constant(i)
    except (ValueError, OSError):
        return None
    return None if values is None else [float(v) for v in values.reshape(-1)]


def check_dtype(
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


def input_info(ctx: NodeContext, i: int) -> tuple[str | None, tuple[Dim, ...] | None]:
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


def static_dims(
    ctx: NodeContext, shape: tuple[Dim, ...] | None, names: str, dims: Iterable[int], why: str
) -> str | None:
    """Dims ``dims`` of input 0 (of shape ``shape``) fixed."""
    shape = shape or ()
    for i in dims:
        d = shape[i]
        if not (isinstance(d, int) and d >= 0):  # is_static(d), inlined: once per dim per node
            return f"input '{ctx.node.input(0)}' dim {i} ({names[i]}) is {dim_str(shape[i])}; {why}"
    return None


def check_rank(
    ctx: NodeContext, shape: tuple[Dim, ...] | None, ranks: tuple[int, ...], what: str
) -> str | None:
    """Input 0 (of shape ``shape``) of a rank in ``ranks``."""
    if shape is None:
        return f"input '{ctx.node.input(0)}' has an unknown shape; XNNPACK needs {what}"
    if len(shape) not in ranks:
        return f"input '{ctx.node.input(0)}' has rank {len(shape)}; XNNPACK takes {what}"
    return None


def attr_equals(
    ctx: NodeContext, name: str, want: object, default: object, when: str = ""
) -> str | None:
    """Attribute ``name`` (ORT fills ``default``) must equal ``want``."""
    value = ctx.attr(name, default)
    if value == want:
        return None
    return f"{name}={value}; XNNPACK takes {name}={want} only{when}"


def auto_pad(ctx: NodeContext) -> str | None:
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad in AUTO_PADS:
        return None
    return f"auto_pad={auto_pad}; XNNPACK takes {', '.join(AUTO_PADS)}"
