"""NNAPI's verdict per node unit, judged once per graph and options and kept on the graph.

``check_unit``/``check_node`` answer from the graph's verdicts (``GraphState.verdicts``), judged
in graph order on first use; equal plain units share an acceptance (:func:`plain_key`), which
:func:`unmemoized_verdicts` does not, for the tests to compare.
"""

from __future__ import annotations

from typing import Any

from ortprep.core.graph import Graph, Node
from ortprep.eps.base import EpOptions, NodeContext
from ortprep.eps.nnapi.constants import INTERNAL_QUANT_OPS, MIN_API, UINT8
from ortprep.eps.nnapi.rules import BUILDERS, judge
from ortprep.eps.nnapi.view import GraphState, UnitView, graph_state, unit_of, units_index
from ortprep.eps.partition import (
    QUANT_IO_OPS,
    NodeUnit,
    node_units,
)


def check_unit(unit: NodeUnit, graph: Graph, options: EpOptions | None = None) -> str | None:
    """NNAPI's verdict on a node unit: ``None`` when supported, else why not.

    The unit is judged by its target node (QDQ acceptance included). The uint8 Transpose/Resize/
    Concat/MaxPool rule is checked as "its input comes from a node NNAPI takes"; the exact
    same-partition condition is applied by the walk (:func:`groups`, which ``check`` uses).

    A unit of ``node_units(graph)`` is answered from the graph's verdicts, judged all at once on
    first use (callers ask for every unit in turn); any other unit is judged on its own.
    """
    options = options or EpOptions()
    state = graph_state(graph)
    last = state.last  # _graph_verdicts' first step, written out: this runs once per unit
    verdicts = (
        last[1]
        if last is not None and last[0] is options
        else _graph_verdicts(graph, options, state)
    )
    key = unit.target.index
    if state.targets.get(key) is unit:
        return verdicts[key]
    return _unit_verdict(unit, state, options)


def _unit_verdict(unit: NodeUnit, state: GraphState, options: EpOptions) -> str | None:
    reason = base_verdict(unit, state, options)
    if reason is None and internal_quantized(unit, state):
        reason = _internal_quant_proxy(unit, state, options)
    return reason


def base_verdict(unit: NodeUnit, state: GraphState, options: EpOptions) -> str | None:
    """Everything but the in-partition uint8 rule (EP-wide checks, then the builder)."""
    return _graph_refusal(state.graph, options) or _builder_verdict(unit, state, options)


def _graph_refusal(graph: Graph, options: EpOptions) -> str | None:
    """The EP-wide refusals, which hold for every unit of the graph alike."""
    if "/" in graph.path:
        return "nodes inside If/Loop/Scan bodies are never taken by NNAPI"
    if options.android_api < MIN_API:
        return (
            f"NNAPI needs Android API {MIN_API} or newer; the target is API {options.android_api}"
        )
    return None


def _builder_verdict(unit: NodeUnit, state: GraphState, options: EpOptions) -> str | None:
    op = unit.target.op_type
    if op not in BUILDERS:
        return f"NNAPI has no builder for {unit.target.op_id}"
    # Straight to the builder: what its OpRule.check does, without a context object per unit.
    return judge(op, UnitView(state, options, unit))


def internal_quantized(unit: NodeUnit, state: GraphState) -> bool:
    """helper.cc IsInternalQuantizedNodeUnit: a single uint8 Transpose/Resize/Concat/MaxPool."""
    node = unit.target
    return (
        unit.kind == "single"
        and node.op_type in INTERNAL_QUANT_OPS
        and state.dtype(node.input(0)) == UINT8
    )


def internal_quant_inputs(node: Node) -> tuple[str, ...]:
    return node.inputs if node.op_type == "Concat" else node.inputs[:1]


def _internal_quant_proxy(unit: NodeUnit, state: GraphState, options: EpOptions) -> str | None:
    graph = state.graph
    verdicts = _graph_verdicts(graph, options, state)
    index = units_index(graph, state)
    for name in internal_quant_inputs(unit.target):
        producer = graph.producers.get(name)
        target_of = index.get(producer.index) if producer else None
        if (
            producer is None
            or target_of is None
            or target_of.target.index != producer.index
            or producer.index not in verdicts
            or verdicts[producer.index] is not None
        ):
            return (
                f"{unit.target.op_type}: uint8 input '{name}' does not come from a node NNAPI "
                "takes; uint8 Transpose/Resize/Concat/MaxPool need their input computed in "
                "the same NNAPI partition (it carries no scale/zero point)"
            )
    return None


def check_node(ctx: NodeContext) -> str | None:
    """NNAPI's verdict on one node: its unit's verdict (DQ/Q nodes share their group's)."""
    unit = unit_of(ctx.graph, ctx.node)
    verdicts = _graph_verdicts(ctx.graph, ctx.options)
    key = unit.target.index
    reason = verdicts[key] if key in verdicts else check_unit(unit, ctx.graph, ctx.options)
    if reason is None or key == ctx.node.index:
        return reason
    return f"part of the QDQ group around {unit.target.op_type} '{unit.target.name}': {reason}"


def _graph_verdicts(
    graph: Graph, options: EpOptions, state: GraphState | None = None
) -> dict[int, str | None]:
    """Target index -> verdict for every unit of ``graph``, computed once in graph order."""
    state = state or graph_state(graph)
    if state.last is not None and state.last[0] is options:
        return state.last[1]
    verdicts = state.verdicts.get(options)
    if verdicts is not None:
        state.last = (options, verdicts)
        return verdicts
    verdicts = state.verdicts[options] = {}  # registered first: the uint8 rule reads it
    state.last = (options, verdicts)
    # Graph order is topological: producers are judged before the uint8 rule asks about them.
    _judge_units(node_units(graph), state, options, verdicts)
    return verdicts


def unmemoized_verdicts(graph: Graph, options: EpOptions) -> dict[int, str | None]:
    """Target index -> verdict for every unit of ``graph``, judged from scratch: on a new state
    that is not kept on the graph, every builder run (no :func:`_plain_key` sharing). What the
    memoized :func:`check_unit` must agree with (the tests compare them)."""
    state = GraphState(graph)
    verdicts = state.verdicts[options] = {}
    state.last = (options, verdicts)
    _judge_units(node_units(graph), state, options, verdicts, reuse_accepted=False)
    return verdicts


def _judge_units(
    units: list[NodeUnit],
    state: GraphState,
    options: EpOptions,
    verdicts: dict[int, str | None],
    reuse_accepted: bool = True,
) -> None:
    """:func:`_unit_verdict` for each unit, in order, into ``verdicts`` (by target index).

    Made cheap for large graphs: the EP-wide refusal is checked once, and a plain single-node unit
    whose :func:`_plain_key` equals that of a unit already accepted is accepted without running its
    builder again (large graphs repeat the same ops on the same types and shapes: a 100,000-node
    Add/Relu chain has two keys). Refusals are not shared: their text names the unit's own values.
    ``reuse_accepted=False`` runs every builder (:func:`unmemoized_verdicts`).
    """
    targets = state.targets
    refusal = _graph_refusal(state.graph, options)
    accepted: set[tuple[Any, ...]] = set()
    for unit in units:
        index = unit.target.index
        targets[index] = unit
        if refusal:
            verdicts[index] = refusal
            continue
        key = _plain_key(unit, state) if reuse_accepted else None
        if key is not None and key in accepted:
            reason = None
        else:
            reason = _builder_verdict(unit, state, options)
            if reason is None and key is not None:
                accepted.add(key)
        if reason is None and internal_quantized(unit, state):
            reason = _internal_quant_proxy(unit, state, options)
        verdicts[index] = reason


_KEY_SCALARS = (int, float, str)


def _plain_key(unit: NodeUnit, state: GraphState) -> tuple[Any, ...] | None:
    """Everything the builders can read of a plain single-node unit, or ``None`` for other units.

    A plain unit (not QDQ, not a QLinear/DQ/Q node) is seen by the rules only through its op type,
    domain, since_version, attributes and output count, and per input through the value's element
    type and shape, or, for a constant or external initializer or a value of unknown type, through
    the value itself (its name: constants' contents are read, an unknown type is looked up via its
    producer). So two plain units with equal keys get the same acceptance. Keep it that way: a rule
    that reads anything else of a plain unit (a value's consumers, an output's type, the node name)
    must add it here. Units with attribute values other than numbers, strings and tuples of them
    (tensors) get no key.
    """
    node = unit.target
    if unit.kind != "single" or node.op_type in QUANT_IO_OPS:
        return None
    attrs = node.attributes
    attr_key: tuple[Any, ...] = ()
    if attrs:
        for value in attrs.values():
            if type(value) is tuple:
                if not all(type(x) in _KEY_SCALARS for x in value):
                    return None
            elif type(value) not in _KEY_SCALARS:
                return None
        attr_key = tuple(sorted(attrs.items()))
    types, by_name = state.types, state.read_by_name
    inputs: list[Any] = []
    for name in node.inputs:
        vt = types.get(name) if name else None
        if vt is None or not vt.dtype or name in by_name:
            inputs.append(name)  # "" for an absent input
        else:
            inputs.append((vt.dtype, vt.shape))
    return (
        node.op_type,
        node.domain,
        node.since_version,
        len(node.outputs),
        attr_key,
        tuple(inputs),
    )
