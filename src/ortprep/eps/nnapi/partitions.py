"""NNAPI's partitions: ORT's walk over NNAPI's verdicts with the in-partition uint8 rule, and
the partitions NNAPI drops (``nnapi_execution_provider.cc`` GetCapability, ``helper.cc``)."""

from __future__ import annotations

from collections.abc import Mapping

from ortprep.core.graph import Graph, Node
from ortprep.eps.base import EpOptions
from ortprep.eps.nnapi.constants import LONE_DROPPED, MIN_API, STOP_OPS
from ortprep.eps.nnapi.verdicts import base_verdict, internal_quant_inputs, internal_quantized
from ortprep.eps.nnapi.view import graph_state
from ortprep.eps.partition import (
    NodeUnit,
    form_partitions,
    node_units,
    partition_inputs,
    stop_set,
)

# --------------------------------------------------------------------------- partitions


def discard(nodes: list[Node], graph: Graph) -> str | None:
    """Why NNAPI drops a formed partition, or ``None`` when it keeps it.

    helper.cc IsValidSupportedNodeGroup (a one-node Reshape/Flatten/Identity only copies data) and
    the EP's post-filter (a partition whose inputs are all constant initializers, or that has none).
    """
    if len(nodes) == 1 and nodes[0].op_type in LONE_DROPPED:
        return (
            f"a partition made of a single {nodes[0].op_type} only copies data; NNAPI leaves "
            "it to the CPU"
        )
    # Only the first non-constant input is needed, so the inputs are read lazily.
    if all(graph.is_constant(name) for name in partition_inputs(nodes)):
        return "every input of this partition is a constant; NNAPI drops such partitions"
    return None


def groups(
    graph: Graph,
    options: EpOptions | None = None,
    stop_ops: frozenset[str] = STOP_OPS,
    verdicts: Mapping[int, str | None] | None = None,
) -> list[tuple[list[Node], str | None]]:
    """Every group ORT forms for NNAPI, in ORT's order, each with why NNAPI drops it (or None).

    Replays GetCapability exactly: node units, stop ops, the in-partition uint8 rule (judged when
    the unit is reached, first answer cached as ORT does), then :func:`discard` per group (the
    group-closing callback and the all-constant-inputs post-filter; dropping a group does not
    change the walk, so judging afterwards is the same).

    ``verdicts`` (unit target index -> :func:`check_unit`'s answer), when the caller has them,
    spare judging every unit again: a unit that answer accepts passed every rule but the
    in-partition one, which only the walk can judge; one it refuses is refused here too.
    """
    options = options or EpOptions()
    if "/" in graph.path or options.android_api < MIN_API:
        return []
    state = graph_state(graph)
    units = node_units(graph)
    # Units the in-partition rule applies to; without any, no output needs tracking.
    internal = {u.target.index for u in units if internal_quantized(u, state)}
    in_group: set[str] = set()
    cache: dict[int, bool] = {}

    def rules_pass(unit: NodeUnit) -> bool:
        key = unit.target.index
        if verdicts is not None:
            return key in verdicts and verdicts[key] is None
        return base_verdict(unit, state, options) is None

    def supported(unit: NodeUnit) -> bool:
        key = unit.target.index
        if key not in cache:
            ok = rules_pass(unit)
            if ok and key in internal:
                ok = all(name in in_group for name in internal_quant_inputs(unit.target))
            cache[key] = ok  # ORT keeps its first answer per node
        if cache[key]:
            in_group.update(unit.target.outputs)
        return cache[key]

    def closed(_group: list[Node]) -> bool:
        in_group.clear()  # helper.cc: outputs are tracked per partition node group
        return True

    formed = form_partitions(
        graph,
        supported if internal else rules_pass,
        units,
        stop_set(graph, stop_ops),
        on_group_closed=closed if internal else None,
        # no ep_type: NNAPI is asked first, before any node is assigned, and the EP an .ort file
        # saved per node is dropped when ORT loads it (graph.cc, Node::LoadFromOrtFormat)
    )
    return [(group, discard(group, graph)) for group in formed]


def partition_input_refusal(unit: NodeUnit, graph: Graph) -> str | None:
    """Why the exact walk refused a unit :func:`check_unit` accepts (None if that cannot be the
    reason): a uint8 Transpose/Resize/Concat/MaxPool whose input is not computed in the
    partition being formed (helper.cc IsInternalQuantizedNodeUnit; it has no scale/zero point)."""
    if not internal_quantized(unit, graph_state(graph)):
        return None
    names = ", ".join(f"'{n}'" for n in internal_quant_inputs(unit.target))
    return (
        f"{unit.target.op_type}: uint8 input {names} is not computed in the same NNAPI "
        "partition; uint8 Transpose/Resize/Concat/MaxPool carry no scale/zero point of their own"
    )


def partitions(
    graph: Graph,
    options: EpOptions | None = None,
    stop_ops: frozenset[str] = STOP_OPS,
) -> list[list[Node]]:
    """The partitions NNAPI keeps for ``graph``, in ORT's order, each in graph order."""
    return [group for group, dropped in groups(graph, options, stop_ops) if dropped is None]
