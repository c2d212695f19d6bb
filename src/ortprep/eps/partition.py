"""ORT's partition forming, restated for any graph and any support predicate.

Sources (microsoft/onnxruntime, restated, not copied): ``core/providers/partitioning_utils.cc``:
``CreateSupportedPartitionNodeGroups`` (a Kahn topological walk that grows one group per "wave"),
``CreateExcludedNodeSet`` (stop ops and everything downstream) and ``MakeComputeCapability`` (a
partition's inputs and outputs).

The walk reads ORT's edges and topological order (:mod:`ortprep.eps.graph_edges`) and places node
units (:mod:`ortprep.eps.node_unit`, selected by :mod:`ortprep.eps.qdq_selection`) as a whole.
Those modules' public names are re-exported here, where the EPs and ``check`` have always found
them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator

from ortprep.core.graph import Graph, Node
from ortprep.eps.graph_edges import (
    Edge,
    GraphEdges,
    graph_edges,
    implicit_inputs,
    topological_order,
)
from ortprep.eps.node_unit import (
    DQ_OP,
    Q_OP,
    QUANT_IO_OPS,
    IODef,
    NodeUnit,
    unit_io_defs,
)
from ortprep.eps.qdq_selection import SELECTORS, elem_type, node_units, single_units

# --------------------------------------------------------------------------- stop ops


def stop_set(graph: Graph, stop_ops: frozenset[str]) -> set[int]:
    """Indices of nodes whose op type is a stop op, and of every node downstream of them.

    ORT's ``CreateExcludedNodeSet`` (NNAPI's ``ep.nnapi.partitioning_stop_ops``, default
    ``NonMaxSuppression``): these nodes stay on CPU so post-processing does not split partitions.
    """
    if not stop_ops:
        return set()
    nodes = graph.nodes
    stops = [p for p, n in enumerate(nodes) if n.op_type in stop_ops]
    if not stops:
        return set()  # the common case: no edges needed
    e = graph_edges(graph)
    excluded = bytearray(e.count)
    for p in stops:
        excluded[p] = 1
    queue = deque(stops)
    while queue:
        p = queue.popleft()
        for c, _, _ in e.outputs[p]:
            if not excluded[c]:
                excluded[c] = 1
                queue.append(c)
    return {nodes[p].index for p in range(e.count) if excluded[p]}


# --------------------------------------------------------------------------- partitions


def form_partitions(
    graph: Graph,
    supported: Callable[[NodeUnit], bool],
    units: list[NodeUnit] | None = None,
    excluded: set[int] | None = None,
    *,
    on_group_closed: Callable[[list[Node]], bool] | None = None,
    ep_type: str | None = None,
) -> list[list[Node]]:
    """Group supported units into partitions the way ORT does; linear in graph size.

    ORT's ``CreateSupportedPartitionNodeGroups`` (``partitioning_utils.cc``): a Kahn walk over the
    units (each unit's target node is the work item; DQ/Q nodes move with it). A supported unit
    joins the current group and marks its consumers as the group's border. An unsupported unit that
    is not on the border is processed at once (it joins nothing but releases its consumers, so
    independent branches do not split a group); one on the border waits for the next group. When
    nothing is ready the group closes and the waiting units start the next one. So no group ever
    contains a path through a node outside it.

    - ``supported`` is asked once per pop of a unit's target (in walk order, so a stateful predicate
      sees ORT's order); ``units`` default to single-node units (nodes not covered by ``units`` are
      single-node units too).
    - ``excluded``: node indices (see :func:`stop_set`); a unit whose target is excluded is
      unsupported (ORT tests only the target).
    - ``on_group_closed`` gets each closed group in ORT's order (DQ, target, Clip, Q per unit) and
      returns whether to keep it (NNAPI drops a lone Reshape/Flatten/Identity there).
    - ``ep_type``: when given, a node already assigned to another EP (``Node.execution_provider``)
      is unsupported.

    Returns the kept partitions in the order ORT closes them, each as its nodes in graph order.
    """
    e = graph_edges(graph)
    plan = _UnitPlan(graph, e, units)
    walk = _Walk(graph, plan, _positions(e, excluded), on_group_closed)
    walk.run(_roots(graph, plan), supported, ep_type)
    return walk.result


def _roots(graph: Graph, plan: _UnitPlan) -> list[int]:
    """Targets that wait for nothing, in ORT's topological order: the walk's first queue.

    Only the roots' order among themselves matters, so the whole-graph topological order (a DFS
    over every node) is only computed when there are two or more of them.
    """
    in_degree, is_target = plan.in_degree, plan.is_target
    roots = [t for t in range(plan.e.count) if in_degree[t] == 0 and is_target[t]]
    if len(roots) < 2:
        return roots
    is_root = set(roots)
    return [t for t in topological_order(graph) if t in is_root]


class _Walk:
    """State of one partitioning walk (the queues, the open group and its border)."""

    def __init__(
        self,
        graph: Graph,
        plan: _UnitPlan,
        excluded: set[int],
        on_group_closed: Callable[[list[Node]], bool] | None,
    ) -> None:
        self.nodes = graph.nodes
        self.plan = plan
        self.excluded = excluded
        self.on_group_closed = on_group_closed
        self.group: list[int] = []
        self.border: set[int] = set()
        self.result: list[list[Node]] = []

    def close_group(self) -> None:
        if not self.group:
            return
        nodes = self.nodes
        members = [nodes[p] for p in self.group]
        if self.on_group_closed is None or self.on_group_closed(members):
            self.result.append([nodes[p] for p in sorted(self.group)])
        # Cleared in place: run() holds both in locals.
        self.group.clear()
        self.border.clear()

    def run(
        self, roots: list[int], supported: Callable[[NodeUnit], bool], ep_type: str | None
    ) -> None:
        plan, in_degree, nodes = self.plan, self.plan.in_degree, self.nodes
        qdq_units, unit_of, outs = plan.qdq_units, plan.unit_of, plan.e.outputs
        group, border, excluded = self.group, self.border, self.excluded
        units_get = plan.units.get
        ready = deque(roots)
        waiting: deque[int] = deque()
        # The loop runs once per unit of the graph, so the unit lookup and the single-node case
        # are written out here rather than called or built as lists.
        while ready or waiting:
            if not ready:
                self.close_group()
                ready, waiting = waiting, ready
                continue
            t = ready.popleft()
            unit = units_get(t)
            ok = (
                (ep_type is None or _assignable(nodes[t], ep_type))
                and t not in excluded
                and supported(unit if unit is not None else plan.unit_at(t))
            )
            if not ok and t in border:
                waiting.append(t)
                continue
            if t in qdq_units:
                consumers = plan.qdq_consumers(t)
                if ok:
                    group.extend(plan.member_positions(t))
                    border.discard(t)
                    border.update(consumers)
                for c in consumers:
                    in_degree[c] -= 1
                    if in_degree[c] == 0:
                        ready.append(c)
                continue
            # A single-node unit: its consumers are its output edges' units, in edge order.
            if ok:
                group.append(t)
                border.discard(t)
            for consumer, _, _ in outs[t]:
                c = unit_of[consumer]
                if ok:
                    border.add(c)
                in_degree[c] -= 1
                if in_degree[c] == 0:
                    ready.append(c)
        self.close_group()


def _assignable(node: Node, ep_type: str | None) -> bool:
    return ep_type is None or not node.execution_provider or node.execution_provider == ep_type


def _positions(e: GraphEdges, indices: set[int] | None) -> set[int]:
    if not indices:
        return set()
    return {e.pos_of_index[i] for i in indices if i in e.pos_of_index}


class _UnitPlan:
    """Units by target position: members, in-degree and consumer targets (node_unit.cc)."""

    def __init__(self, graph: Graph, e: GraphEdges, units: list[NodeUnit] | None) -> None:
        self.graph = graph
        self.e = e
        n = e.count
        self.unit_of = list(range(n))  # node position -> its unit's target position
        self.is_target = bytearray(b"\x01" * n)
        pos = e.pos_of_index
        self.units: dict[int, NodeUnit] = {pos[unit.target.index]: unit for unit in units or ()}
        self.qdq_units: set[int] = set()
        for t, unit in self.units.items():
            if unit.kind == "qdq":
                self.qdq_units.add(t)
            if len(unit.nodes) == 1:
                continue  # a single-node unit maps its node to itself, as preset above
            for member in unit.nodes:
                p = pos[member.index]
                self.unit_of[p] = t
                if p != t:
                    self.is_target[p] = 0
        self.in_degree = list(e.in_degree)  # counted down by the walk
        for t in self.qdq_units:
            self.in_degree[t] = self._qdq_in_degree(t, self.units[t])

    def _qdq_in_degree(self, t: int, unit: NodeUnit) -> int:
        # Edges into the DQ nodes plus the target's edges from outside the DQ nodes.
        dq = [self.e.pos_of_index[d.index] for d in unit.dq_nodes]
        return sum(self.e.in_degree[p] for p in dq) + self.e.in_degree[t] - len(dq)

    def unit_at(self, t: int) -> NodeUnit:
        unit = self.units.get(t)
        if unit is None:
            unit = NodeUnit(self.graph.nodes[t])
            self.units[t] = unit
        return unit

    def member_positions(self, t: int) -> list[int]:
        unit = self.units.get(t)
        if unit is None:
            return [t]
        return [self.e.pos_of_index[m.index] for m in unit.nodes]

    def qdq_consumers(self, t: int) -> list[int]:
        """Target positions of the units a QDQ unit feeds, one per edge, in ORT's edge order.

        node_unit.cc: the unit's output edges are the target's (or redundant Clip's) edges, with
        each edge to one of its Q nodes replaced by that Q node's own output edges.
        """
        unit = self.units[t]
        outs = self.e.outputs
        producer = (
            t if unit.redundant_clip is None else self.e.pos_of_index[unit.redundant_clip.index]
        )
        q_pos = {self.e.pos_of_index[q.index] for q in unit.q_nodes}
        edges: set[Edge] = set()
        for c, src, dst in outs[producer]:
            if c in q_pos:
                edges.update((c2, src, d2) for c2, _, d2 in outs[c])
            else:
                edges.add((c, src, dst))
        return [self.unit_of[c] for c, _, _ in sorted(edges)]


def partition_io(graph: Graph, nodes: Iterable[Node]) -> tuple[list[str], list[str]]:
    """A partition's inputs and outputs as ORT's ``MakeComputeCapability`` lists them.

    Inputs: every present input (implicit inputs too) not produced by an earlier node of the
    partition, first seen first. Outputs: node outputs that are graph outputs, then outputs read by
    a node outside the partition, without repeats. ``nodes`` must be in a topological order.
    """
    members = list(nodes)
    e = graph_edges(graph)
    pos = e.pos_of_index
    graph_outputs = e.graph_outputs
    member_pos = {pos[n.index] for n in members}
    outputs: dict[str, None] = {}
    for n in members:
        for o in n.outputs:
            if o and o in graph_outputs:
                outputs.setdefault(o, None)
        for c, src, _ in e.outputs[pos[n.index]]:
            if c not in member_pos:
                outputs.setdefault(n.outputs[src], None)
    return list(partition_inputs(members)), list(outputs)


def partition_inputs(nodes: Iterable[Node]) -> Iterator[str]:
    """The inputs of :func:`partition_io`, in the same order, found as they are asked for.

    A caller that only needs the first input of some kind (NNAPI: one that is not a constant)
    stops after reading a node or two instead of the whole partition.
    """
    produced: set[str] = set()
    seen: set[str] = set()
    for n in nodes:
        reads = (
            n.inputs if not (n.subgraphs or n.implicit_inputs) else (*n.inputs, *implicit_inputs(n))
        )
        for name in reads:
            if name and name not in produced and name not in seen:
                seen.add(name)
                yield name
        produced.update(o for o in n.outputs if o)


__all__ = [
    "DQ_OP",
    "QUANT_IO_OPS",
    "Q_OP",
    "SELECTORS",
    "IODef",
    "NodeUnit",
    "elem_type",
    "form_partitions",
    "implicit_inputs",
    "node_units",
    "partition_inputs",
    "partition_io",
    "single_units",
    "stop_set",
    "topological_order",
    "unit_io_defs",
]
