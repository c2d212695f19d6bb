"""Checks several NNAPI op builders share (``impl/base_op_builder.cc``, ``helper.cc``,
``impl/*_op_builder.cc``): input types, ranks, constants, and the quantization parameters of QDQ
and QLinear units."""

from __future__ import annotations

from ortprep.eps.nnapi.constants import FL3, FLOAT, UINT8, api_name
from ortprep.eps.nnapi.view import UnitView
from ortprep.eps.partition import (
    IODef,
)

# --------------------------------------------------------------------------- shared checks


def float_input0(v: UnitView) -> str | None:
    """Default input type rule (base_op_builder.cc): only input 0 is checked; float32."""
    return type_is(v, 0, (FLOAT,))


def type_is(v: UnitView, i: int, allowed: tuple[str, ...]) -> str | None:
    name = v.in_name(i)
    dtype = v.dtype(name)
    if dtype is None:
        return f"{v.op}: input '{name}' has no known element type"
    if dtype not in allowed:
        return f"{v.op}: input '{name}' is {dtype}; NNAPI takes {' or '.join(allowed)} here"
    return None


def rank_between(v: UnitView, i: int, lo: int, hi: int, what: str = "input") -> str | None:
    rank = v.in_rank(i)
    if rank is None:
        return f"{v.op}: {what} '{v.in_name(i)}' has no known shape"
    if not lo <= rank <= hi:
        want = f"rank {lo}" if lo == hi else f"rank {lo} to {hi}"
        return f"{v.op}: {what} '{v.in_name(i)}' has rank {rank}; NNAPI takes {want}"
    return None


def no_zero_dims(v: UnitView, i: int) -> str | None:
    shape = v.in_shape(i) or ()
    if 0 in shape:
        return f"{v.op}: input '{v.in_name(i)}' has a 0 dimension {list(shape)}; NNAPI needs data"
    return None


def must_be_constant(v: UnitView, i: int, what: str) -> str | None:
    name = v.in_name(i)
    if name and not v.const(name):
        return f"{v.op}: {what} '{name}' is not a constant initializer; NNAPI needs it constant"
    return None


def binary_quant_types(v: UnitView) -> str | None:
    """helper.cc HasValidBinaryOpQuantizedInputTypes: A uint8; B uint8 (or int8 for conv/gemm)."""
    a, b = v.dtype(v.in_name(0)), v.dtype(v.in_name(1))
    conv_or_gemm = v.qtype in ("QLinearConv", "QDQConv", "QLinearMatMul", "QDQGemm", "QDQMatMul")
    if a != UINT8:
        return f"{v.op}: quantized input A '{v.in_name(0)}' is {a}; NNAPI takes uint8 activations"
    if conv_or_gemm and b not in (UINT8, "int8"):
        return f"{v.op}: quantized weight '{v.in_name(1)}' is {b}; NNAPI takes uint8 or int8"
    if not conv_or_gemm and b != a:
        return f"{v.op}: quantized input B '{v.in_name(1)}' is {b}; NNAPI needs both inputs uint8"
    return None


def quant_io(v: UnitView, indices: tuple[int, ...], is_input: bool) -> str | None:
    """op_builder_helpers.cc IsQuantizedIOSupported: uint8 (int8 weight), constant per-tensor
    scale and zero point; per-channel only for an int8 Conv weight at FL3 with zero points 0."""
    ios = v.inputs if is_input else v.outputs
    side = "input" if is_input else "output"
    matmul = v.qtype in ("QLinearMatMul", "QDQMatMul")
    weight_op = v.qtype in ("QLinearConv", "QDQConv", "QLinearMatMul", "QDQGemm", "QDQMatMul")
    for idx in indices:
        if idx >= len(ios) or ios[idx].scale is None:
            return f"{v.op}: {side} {idx} is not quantized; NNAPI needs a quantized {side} here"
        io = ios[idx]
        dtype = v.dtype(io.name)
        u8s8 = is_input and weight_op and idx == 1 and dtype == "int8"
        if dtype != UINT8 and not u8s8:
            return (
                f"{v.op}: quantized {side} '{io.name}' is {dtype}; NNAPI takes uint8 "
                "(int8 only for a Conv/MatMul/Gemm weight)"
            )
        reason = _scale_ok(v, io, matmul, u8s8) or _zero_point_ok(v, io, matmul, u8s8)
        if reason:
            return reason
    return None


def _channels(v: UnitView, name: str) -> int:
    vt = v.graph.value_type(name)
    return 1 if vt is None or not vt.shape else int(vt.shape[0] or 0)


def _scale_ok(v: UnitView, io: IODef, matmul: bool, u8s8: bool) -> str | None:
    scale = io.scale or ""
    if not v.const(scale):
        return f"{v.op}: scale '{scale}' is not a constant initializer; NNAPI needs it constant"
    count = _channels(v, scale)
    if count == 1:
        return None
    if not u8s8 or matmul:
        return (
            f"{v.op}: '{io.name}' is quantized per channel ({count} scales); NNAPI takes "
            "per-channel quantization only for an int8 Conv weight"
        )
    if v.api < FL3:
        return (
            f"{v.op}: per-channel quantized weights need {api_name(FL3)}; the target is API {v.api}"
        )
    dim0 = (v.shape(io.name) or (None,))[0]
    if dim0 != count:
        return f"{v.op}: weight '{io.name}' has {dim0} output channels but {count} scales"
    return None


def _zero_point_ok(v: UnitView, io: IODef, matmul: bool, u8s8: bool) -> str | None:
    zp = io.zero_point
    if not zp:
        return None
    if not v.const(zp):
        return f"{v.op}: zero point '{zp}' is not a constant initializer; NNAPI needs it constant"
    count = _channels(v, zp)
    if not u8s8:
        if count != 1:
            return (
                f"{v.op}: '{io.name}' is quantized per channel ({count} zero points); NNAPI "
                "takes per-tensor quantization here"
            )
        return None
    if v.dtype(zp) != "int8":
        return f"{v.op}: zero point '{zp}' of an int8 weight is {v.dtype(zp)}; NNAPI needs int8"
    if count != 1 and matmul:
        return f"{v.op}: MatMul weights quantized per channel are not supported by NNAPI"
    dim0 = (v.shape(io.name) or (None,))[0]
    if count not in (1, dim0):
        return f"{v.op}: weight '{io.name}' has {dim0} output channels but {count} zero points"
    values = v.values(zp)
    if values is not None and bool((values != 0).any()):
        return f"{v.op}: int8 weight zero point '{zp}' is not all 0; NNAPI needs symmetric weights"
    return None


def _scale_zp_values(v: UnitView, io: IODef) -> tuple[float, int] | None:
    scale = v.values(io.scale or "")
    if scale is None:
        return None
    zp = v.values(io.zero_point) if io.zero_point else None
    zp_value = 0 if zp is None else int(zp.reshape(-1)[0])
    return float(scale.reshape(-1)[0]), zp_value


def required_output_params(v: UnitView, scale: float, zp: int) -> str | None:
    """op_builder_helpers.cc HasRequiredScaleAndZeroPoint on output 0."""
    import numpy as np

    got = _scale_zp_values(v, v.outputs[0]) if v.outputs else None
    if got is None:
        return f"{v.op}: the output quantization parameters are not constants"
    if np.float32(got[0]) != np.float32(scale) or got[1] != zp:
        return (
            f"{v.op}: quantized output has scale {got[0]:g} and zero point {got[1]}; "
            f"NNAPI needs scale {scale:g} (1/256) and zero point {zp}"
        )
    return None


def same_params(v: UnitView, a: IODef, b: IODef, what: str) -> str | None:
    pa, pb = _scale_zp_values(v, a), _scale_zp_values(v, b)
    if pa is None or pb is None or pa != pb:
        return (
            f"{v.op}: {what} has scale/zero point {pb} but input '{a.name}' has {pa}; "
            "NNAPI needs them equal"
        )
    return None
