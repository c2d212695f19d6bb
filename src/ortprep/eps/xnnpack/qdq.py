"""XNNPACK's verdict on a node unit: a QDQ unit (DQ -> op -> Q) is judged on its target op with
the quantized tensors (``detail/utils.cc`` GetTensorQuantType and each kernel's quantized check),
then the op's rules, and is claimed or refused as a whole."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from ortprep.core.graph import Graph, Node
from ortprep.eps.base import EpOptions, NodeContext
from ortprep.eps.partition import IODef, NodeUnit, elem_type
from ortprep.eps.xnnpack.checks import dim_str, dim_value
from ortprep.eps.xnnpack.constants import ONNX, SOFTMAX_Q_SCALE
from ortprep.eps.xnnpack.op_rules import (
    check_conv,
    check_max_pool,
    check_qdq_average_pool,
    check_resize,
    check_softmax,
)
from ortprep.eps.xnnpack.rules import op_reason, verdict

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
        dim0 = dim_value(vt.shape[0]) if vt.shape else 0
        if zeros and scales != zeros:
            return None, f"'{io.name}' has {scales} scales but {zeros} zero points"
        if scales == 1:
            return "int8", ""
        if scales == dim0:
            return "int8 per-channel", ""
        return None, f"'{io.name}' has {scales} scales for dim 0 of size {dim_str(vt.shape[0])}"
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
    "Conv": (_qdq_conv_types, check_conv),
    "ConvTranspose": (_qdq_conv_types, check_conv),  # per-channel W passes: a source quirk
    "MaxPool": (_same_pair(("uint8", "int8")), check_max_pool),
    "AveragePool": (_same_pair(("uint8",)), check_qdq_average_pool),
    "Softmax": (_qdq_softmax_types, check_softmax),
    "Resize": (_any_types, check_resize),  # fused kernel match unverified (doc §5.4)
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
        return verdict(graph, target, options)
    reason = _qdq_refusal(target)
    if reason is None:
        node, io = quantized_view(unit, graph)
        ctx = NodeContext(graph, node, options)
        types, rules = _QDQ_TARGETS[target.op_type]
        reason = types(ctx, io) or op_reason(ctx, rules)
    return None if reason is None else f"QDQ {target.op_type} unit: {reason}"
