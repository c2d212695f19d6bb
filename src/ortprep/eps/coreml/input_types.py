"""The input types each CoreML builder takes (``HasSupportedInputsImpl`` of
``builders/impl/<x>_op_builder.cc``; default: input 0 float32, or float16 with MLProgram)."""

from __future__ import annotations

from ortprep.eps.base import NodeContext
from ortprep.eps.coreml.constants import ONNX_TYPES, Predicate
from ortprep.eps.coreml.facts import format_name, in_dtype

# --------------------------------------------------------------------------- input types


def _float_input(ctx: NodeContext, i: int, ml: bool) -> str | None:
    """Default ``HasSupportedInputsImpl`` (``impl/base``): float32, or float16 with MLProgram."""
    return float_type(i, in_dtype(ctx, i), ml)


def float_type(i: int, dt: str | None, ml: bool) -> str | None:
    if dt == "float32" or (ml and dt == "float16"):
        return None
    allowed = "float32 or float16" if ml else "float32 (float16 needs MLProgram)"
    return f"input {i} is {dt or 'of unknown type'}; CoreML ({format_name(ml)}) takes {allowed}"


def input0_float(ctx: NodeContext, ml: bool) -> str | None:
    return _float_input(ctx, 0, ml)


def typed_inputs(
    allowed: frozenset[str], *, f16_ml_from: int | None = None, index: int = 0
) -> Predicate:
    """Input ``index`` in ``allowed``; float16 too with MLProgram from CoreML ``f16_ml_from``."""

    def check(ctx: NodeContext, ml: bool) -> str | None:
        dt = in_dtype(ctx, index)
        if dt in allowed:
            return None
        if f16_ml_from is not None and dt == "float16":
            if ml and ctx.options.coreml_version >= f16_ml_from:
                return None
            return (
                f"input {index} is float16; CoreML takes float16 here only with MLProgram on "
                f"CoreML {f16_ml_from}+ (format {format_name(ml)}, "
                f"CoreML {ctx.options.coreml_version})"
            )
        extra = ", float16 (MLProgram)" if f16_ml_from is not None else ""
        return f"input {index} is {dt}; CoreML takes {', '.join(sorted(allowed))}{extra}"

    return check


def pow_types(ctx: NodeContext, ml: bool) -> str | None:
    # impl/binary: Pow checks both inputs and wants them of one type.
    reason = _float_input(ctx, 0, ml) or _float_input(ctx, 1, ml)
    if reason:
        return reason
    a, b = in_dtype(ctx, 0), in_dtype(ctx, 1)
    return None if a == b else f"base is {a} and exponent {b}; CoreML Pow needs one type"


def and_types(ctx: NodeContext, ml: bool) -> str | None:
    # impl/logical
    found = [in_dtype(ctx, i) for i in (0, 1)]
    return None if found == ["bool", "bool"] else f"inputs are {found}; CoreML And takes bool only"


def where_types(ctx: NodeContext, ml: bool) -> str | None:
    # impl/where
    cond, x, y = (in_dtype(ctx, i) for i in (0, 1, 2))
    if cond != "bool":
        return f"condition is {cond}; CoreML Where needs bool"
    if x != y or x not in ("float32", "float16"):
        return f"X is {x} and Y is {y}; CoreML Where needs both float32 or both float16"
    return None


def norm_types(ctx: NodeContext, ml: bool) -> str | None:
    # impl/normalization: X, scale and B of one type, float32 or float16.
    found = [in_dtype(ctx, i) for i, name in enumerate(ctx.node.inputs) if name]
    if found[0] not in ("float32", "float16") or any(d != found[0] for d in found):
        return f"input types are {found}; CoreML needs X, scale and B all float32 or all float16"
    return None


def cast_types(ctx: NodeContext, ml: bool) -> str | None:
    # impl/cast (HasSupportedInputsImpl): NeuralNetwork takes only the int64 an ArgMax produces.
    if not ml:
        src = in_dtype(ctx, 0)
        if src == "int64":
            return None
        return f"input is {src}; CoreML (NeuralNetwork) casts only the int64 output of an ArgMax"
    allowed = ("int32", "int64", "float32", "float16", "bool")
    src = in_dtype(ctx, 0)
    out_vt = ctx.output_type(0)
    dst = (out_vt.dtype if out_vt else None) or ONNX_TYPES.get(int(ctx.attr("to", 0)))
    if src in allowed and dst in allowed:
        return None
    return f"casts {src} to {dst}; CoreML (MLProgram) casts between {', '.join(allowed)} only"


def gather_nd_types(ctx: NodeContext, ml: bool) -> str | None:
    # impl/gather_nd
    data, indices = in_dtype(ctx, 0), in_dtype(ctx, 1)
    if data not in ("float32", "float16", "int32", "int64", "bool"):
        return f"data is {data}; CoreML GatherND takes float32, float16, int32, int64, bool"
    if indices not in ("int32", "int64"):
        return f"indices are {indices}; CoreML GatherND takes int32 or int64"
    return None


def shape_types(ctx: NodeContext, ml: bool) -> str | None:
    # impl/shape: NeuralNetwork keeps the default (float32); MLProgram adds int32 and float16.
    dt = in_dtype(ctx, 0)
    if ml:
        ok = dt in ("int32", "float32", "float16")
        return (
            None if ok else f"input is {dt}; CoreML (MLProgram) Shape takes int32, float32, float16"
        )
    return None if dt == "float32" else f"input is {dt}; CoreML (NeuralNetwork) Shape takes float32"


_gather_data = typed_inputs(frozenset({"float32", "int64"}), f16_ml_from=6)
_gather_indices = typed_inputs(frozenset({"int32", "int64"}), index=1)


def gather_types(ctx: NodeContext, ml: bool) -> str | None:
    # impl/gather: data float32 or int64 (float16 with MLProgram on CoreML 6+); indices int32/int64.
    return _gather_data(ctx, ml) or _gather_indices(ctx, ml)
