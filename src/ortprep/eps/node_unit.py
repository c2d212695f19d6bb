"""Node units: a node as an EP sees it, one node or a QDQ group, and its IO defs.

Restates ``onnxruntime/core/framework/node_unit.cc`` / ``node_unit.h`` (``NodeUnit``,
``NodeUnitIODef``, ``NodeUnit::Inputs()`` / ``Outputs()``). Which DQ -> op -> Q patterns form a
unit is :mod:`ortprep.eps.qdq_selection`; the unit itself, and the one QDQ view of its inputs and
outputs that every EP reads, are here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from ortprep.core.graph import Node

DQ_OP = "DequantizeLinear"
Q_OP = "QuantizeLinear"


class IODef(NamedTuple):
    """One input or output of a node unit as ORT's ``NodeUnitIODef`` lists it: the value and,
    when it is quantized, its scale and zero point (``None`` when absent)."""

    name: str
    scale: str | None = None
    zero_point: str | None = None

    @property
    def quantized(self) -> bool:
        return self.scale is not None


@dataclass(slots=True, eq=False)
class NodeUnit:
    """A node as an EP sees it: one node, or a QDQ group (DQ nodes -> target -> [Clip] -> Q nodes).

    ``redundant_clip`` is the Relu/Clip between the target and its Q that the Q's range makes
    redundant (newer ORT keeps it inside the unit).

    ``nodes`` lists all nodes of the unit in ORT's order: DQ nodes, target, redundant Clip, Q nodes.
    It is built once here because callers read it for every unit of every graph.

    :attr:`inputs` and :attr:`outputs` are the unit's IO defs, ORT's ``NodeUnit::Inputs()`` /
    ``Outputs()``: the one QDQ view every EP reads (built on first use).

    Treat a unit as immutable: :func:`node_units` caches them per graph and every EP shares them.
    (The class is not ``frozen`` only because a frozen dataclass sets each field through
    ``object.__setattr__``, which makes building the 100,000 units of a large graph 5x slower.)
    Units compare and hash by identity, so a set of units serves as a predicate.
    """

    target: Node
    dq_nodes: tuple[Node, ...] = ()
    q_nodes: tuple[Node, ...] = ()
    kind: Literal["single", "qdq"] = "single"
    redundant_clip: Node | None = None
    nodes: tuple[Node, ...] = field(init=False, repr=False, compare=False)
    _io: tuple[tuple[IODef, ...], tuple[IODef, ...]] | None = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self._io = None
        if not (self.dq_nodes or self.q_nodes) and self.redundant_clip is None:
            self.nodes = (self.target,)
        else:
            clip = (self.redundant_clip,) if self.redundant_clip is not None else ()
            self.nodes = (*self.dq_nodes, self.target, *clip, *self.q_nodes)

    @property
    def inputs(self) -> tuple[IODef, ...]:
        """``NodeUnit::Inputs()``: a DQ-fed input is the DQ's input with its scale and zero
        point; a QLinear/DQ/Q node lists its quantized tensors; any other input as it is."""
        if self._io is None:
            self._io = unit_io_defs(self)
        return self._io[0]

    @property
    def outputs(self) -> tuple[IODef, ...]:
        """``NodeUnit::Outputs()``: the outputs of the redundant Clip if there is one, else of the
        target; one read by a Q of the unit is the Q's output with the Q's scale and zero point."""
        if self._io is None:
            self._io = unit_io_defs(self)
        return self._io[1]


# Single nodes whose IO defs carry scales and zero points (node_unit.cc, GetQLinearOpType).
QLINEAR_UNARY = frozenset(
    {
        "QLinearSigmoid",
        "QLinearAveragePool",
        "QLinearGlobalAveragePool",
        "QLinearLeakyRelu",
        "QLinearReduceMean",
    }
)
QLINEAR_BINARY = frozenset({"QLinearConv", "QLinearMatMul", "QLinearAdd", "QLinearMul"})
QUANT_IO_OPS = QLINEAR_UNARY | QLINEAR_BINARY | {DQ_OP, Q_OP, "QLinearConcat"}
"""Op types whose single-node unit lists quantized IO defs; any other lists its own names."""


def unit_io_defs(unit: NodeUnit) -> tuple[tuple[IODef, ...], tuple[IODef, ...]]:
    """A unit's inputs and outputs with their quantization parameters.

    Restates ``onnxruntime/core/framework/node_unit.cc`` (``InitForSingleNode``, ``GetQDQIODefs``
    and, for a redundant Clip/Relu, the output producer of ``MakeQDQGroup`` in ORT's ep-utils
    node_unit.cc of the same era): a QDQ unit's inputs are the target's inputs, each fed by one of
    the unit's DQ nodes replaced by that DQ's (x, scale, zero point); its outputs are the outputs
    of the Clip if the unit has one, else of the target, each read by one of the unit's Q nodes
    replaced by that Q's (y, scale, zero point). The Q/DQ's zero point is optional.
    """
    n = unit.target
    if unit.kind == "qdq":
        return _qdq_io_defs(unit)
    op = n.op_type
    if op not in QUANT_IO_OPS:
        return tuple(IODef(x) for x in n.inputs), tuple(IODef(x) for x in n.outputs)
    i = n.input

    def o(k: int) -> str:
        return n.outputs[k] if k < len(n.outputs) else ""

    if op in QLINEAR_UNARY:  # x, x_scale, x_zp, y_scale, y_zp
        return (IODef(i(0), i(1), i(2) or None),), (IODef(o(0), i(3), i(4) or None),)
    if op in QLINEAR_BINARY:  # x1, x1_scale, x1_zp, x2, x2_scale, x2_zp, y_scale, y_zp, [B]
        ins = [IODef(i(0), i(1), i(2) or None), IODef(i(3), i(4), i(5) or None)]
        if len(n.inputs) == 9:
            ins.append(IODef(i(8)))
        return tuple(ins), (IODef(o(0), i(6), i(7) or None),)
    if op == DQ_OP:
        return (IODef(i(0), i(1), i(2) or None),), (IODef(o(0)),)
    if op == Q_OP:
        return (IODef(i(0)),), (IODef(o(0), i(1), i(2) or None),)
    # QLinearConcat: y_scale, y_zp, then (x, x_scale, x_zp) per input
    count = (len(n.inputs) - 2) // 3
    ins = [IODef(i(3 * k + 2), i(3 * k + 3), i(3 * k + 4) or None) for k in range(count)]
    return tuple(ins), (IODef(o(0), i(0), i(1) or None),)


def _qdq_io_defs(unit: NodeUnit) -> tuple[tuple[IODef, ...], tuple[IODef, ...]]:
    # A DQ of the unit feeds exactly one input edge of the target and a Q of the unit reads one
    # output of the producer (NodeGroup::CanCreateNodeGroup), so matching by value name finds the
    # same pairs as ORT's walk over the edges; a value read by two Q nodes takes the first.
    dq_by_output = {d.outputs[0]: d for d in unit.dq_nodes if d.outputs}
    ins = []
    for name in unit.target.inputs:
        d = dq_by_output.get(name) if name else None
        ins.append(IODef(d.input(0), d.input(1), d.input(2) or None) if d else IODef(name))
    producer = unit.redundant_clip or unit.target
    q_by_input: dict[str, Node] = {}
    for q_node in unit.q_nodes:
        q_by_input.setdefault(q_node.input(0), q_node)
    outs = []
    for name in producer.outputs:
        q = q_by_input.get(name) if name else None
        if q is not None and q.outputs:
            outs.append(IODef(q.outputs[0], q.input(1), q.input(2) or None))
        else:
            outs.append(IODef(name))
    return tuple(ins), tuple(outs)


__all__ = ["DQ_OP", "QUANT_IO_OPS", "Q_OP", "IODef", "NodeUnit", "unit_io_defs"]
