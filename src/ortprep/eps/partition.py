"""ORT's partition forming, restated for any graph and any support predicate.

Sources (microsoft/onnxruntime, restated, not copied):

- ``core/providers/partitioning_utils.cc``: ``CreateSupportedPartitionNodeGroups`` (a Kahn
  topological walk that grows one group per "wave"), ``CreateExcludedNodeSet`` (stop ops and
  everything downstream) and ``MakeComputeCapability`` (a partition's inputs and outputs).
- ``core/framework/node_unit.cc`` and ``core/optimizer/qdq_transformer/selectors_actions/``
  (``shared/utils.cc``, ``qdq_selectors.cc``, ``qdq_util.cc``): which DQ -> op -> Q patterns form
  one QDQ node unit. Units are EP-agnostic; an EP that partitions by unit (NNAPI) judges and
  places a unit as a whole.
- ``core/graph/graph_viewer.cc`` / ``graph.cc``: the topological order ORT walks (a reverse DFS from
  the leaves, inputs visited in node-index order), which decides the order of the root nodes.

Edges follow ORT: one edge per (producer, output slot, consumer, input slot), implicit inputs of
If/Loop/Scan nodes included; an edge set is ordered by (node index, source slot, target slot).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from ortprep.core.gcpause import gc_paused
from ortprep.core.graph import Graph, Node

DQ_OP = "DequantizeLinear"
Q_OP = "QuantizeLinear"

Edge = tuple[int, int, int]
"""(other node position, source output slot, target input slot)."""


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


# --------------------------------------------------------------------------- edges


class _Edges:
    """ORT's node edges for one graph, by node position (built once per graph, cached).

    Also holds what is derived from the edges and asked for by every EP: ORT's topological order
    and the graph's node units (both filled on first use).
    """

    def __init__(self, graph: Graph) -> None:
        nodes = graph.nodes
        self.count = len(nodes)
        self.pos_of_index = {n.index: p for p, n in enumerate(nodes)}
        producer: dict[str, tuple[int, int]] = {}
        for p, n in enumerate(nodes):
            outs = n.outputs
            if len(outs) == 1:  # most nodes: skip the enumerate
                producer[outs[0]] = (p, 0)
            else:
                for slot, out in enumerate(outs):
                    producer[out] = (p, slot)
        producer.pop("", None)  # an absent optional output is produced by no one
        self.producer = producer
        get = producer.get
        outputs: list[list[Edge]] = [[] for _ in nodes]
        in_degree = [0] * len(nodes)
        for p, n in enumerate(nodes):
            reads = (
                n.inputs
                if not (n.subgraphs or n.implicit_inputs)
                else (*n.inputs, *implicit_inputs(n))
            )
            count = 0
            for dst, name in enumerate(reads):
                src = get(name)
                if src is not None:
                    outputs[src[0]].append((p, src[1], dst))
                    count += 1
            in_degree[p] = count
        # Kept as tuples of int tuples: the cyclic GC stops tracking those, where 100,000 lists
        # would stay tracked and bring on a full collection (of the whole graph view) later.
        self.outputs: list[tuple[Edge, ...]] = [
            tuple(sorted(lst)) if len(lst) > 1 else tuple(lst) for lst in outputs
        ]
        self.in_degree = in_degree  # edges into each node
        self._inputs: list[tuple[Edge, ...]] | None = None
        self.graph_outputs = graph.output_names
        self.order: list[int] | None = None  # ORT's topological order, filled on first use
        self.units: list[NodeUnit] | None = None  # node_units(graph), filled on first use
        self.singles: list[NodeUnit] | None = None  # single_units

    @property
    def inputs(self) -> list[tuple[Edge, ...]]:
        """Edges into each node, ordered. Built on first use from ``outputs``: only the
        topological order and the QDQ selectors read them, and many graphs need neither."""
        if self._inputs is None:
            inputs: list[list[Edge]] = [[] for _ in range(self.count)]
            # Producers in position order, each one's edges sorted: every list comes out sorted.
            for src, edges in enumerate(self.outputs):
                for dst_node, slot, dst in edges:
                    inputs[dst_node].append((src, slot, dst))
            self._inputs = [tuple(lst) for lst in inputs]  # untracked by the GC, as outputs
        return self._inputs

    def produces_graph_output(self, node: Node) -> bool:
        return any(o in self.graph_outputs for o in node.outputs if o)


def _edges(graph: Graph) -> _Edges:
    """Edges of ``graph``, built once and kept on the graph (``Graph.memo["partition.edges"]``)."""
    return graph.derived(EDGES_KEY, _build_edges)


EDGES_KEY = "partition.edges"
"""The ``Graph.memo`` key of :class:`_Edges` (edges, topological order, node units)."""


def _build_edges(graph: Graph) -> _Edges:
    with gc_paused():
        return _Edges(graph)


def implicit_inputs(node: Node) -> tuple[str, ...]:
    """Outer-scope values a control-flow node's subgraphs read (ORT's implicit inputs).

    ``.onnx`` views leave ``Node.implicit_inputs`` empty, so they are derived from the subgraphs:
    every name a subgraph (or a nested one) reads but does not define itself.
    """
    if node.implicit_inputs or not node.subgraphs:
        return node.implicit_inputs
    seen: dict[str, None] = {}
    for sub in node.subgraphs.values():
        for name in _free_names(sub):
            seen.setdefault(name, None)
    return tuple(seen)


def _free_names(graph: Graph) -> list[str]:
    defined = {v.name for v in graph.inputs} | set(graph.initializers)
    for n in graph.nodes:
        defined.update(o for o in n.outputs if o)
    free: dict[str, None] = {}
    for n in graph.nodes:
        for name in (*n.inputs, *implicit_inputs(n)):
            if name and name not in defined:
                free.setdefault(name, None)
    return list(free)


def topological_order(graph: Graph) -> list[int]:
    """Node positions in ORT's ``GraphViewer`` topological order.

    ORT walks a reverse DFS from the leaf nodes (nodes without consumers, in index order), visiting
    a node's producers in index order, and lists a node when it is left; this fixes the order in
    which root nodes enter the partitioner's queue (``graph_viewer.cc``, ``Graph::ReverseDFSFrom``).
    """
    e = _edges(graph)
    if e.order is None:
        with gc_paused():
            e.order = _reverse_dfs_order(e)
    return e.order


def _reverse_dfs_order(e: _Edges) -> list[int]:
    stack: list[tuple[int, bool]] = [(p, False) for p in range(e.count) if not e.outputs[p]]
    visited = bytearray(e.count)
    order: list[int] = []
    while stack:
        p, leaving = stack.pop()
        if leaving:
            order.append(p)
            continue
        if visited[p]:
            continue
        visited[p] = 1
        stack.append((p, True))
        edges = e.inputs[p]
        if len(edges) == 1:
            q = edges[0][0]
            if not visited[q]:
                stack.append((q, False))
        elif edges:
            preds = sorted({src for src, _, _ in edges})
            stack.extend((q, False) for q in preds if not visited[q])
    return order


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
    e = _edges(graph)
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
    e = _edges(graph)
    with gc_paused():
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


def _positions(e: _Edges, indices: set[int] | None) -> set[int]:
    if not indices:
        return set()
    return {e.pos_of_index[i] for i in indices if i in e.pos_of_index}


class _UnitPlan:
    """Units by target position: members, in-degree and consumer targets (node_unit.cc)."""

    def __init__(self, graph: Graph, e: _Edges, units: list[NodeUnit] | None) -> None:
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
    e = _edges(graph)
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


# --------------------------------------------------------------------------- QDQ node units

# Selector families: the op lists of the newest shared/utils.cc read (ArgMax/TopK/Pad/Where era);
# Clip uses the 1-3 DQ selector of the newest qdq_selectors.cc. Newer main may register more ops
# (Erf, HardSigmoid, Softplus, Einsum, CumSum, ...), which only matters for ops NNAPI refuses.
_DROP_QDQ = (
    "Gather",
    "Reshape",
    "Expand",
    "Flatten",
    "Transpose",
    "MaxPool",
    "Resize",
    "Squeeze",
    "Unsqueeze",
    "Tile",
)
_DROP_DQ = ("ArgMax", "ArgMin")
_UNARY = (
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "LeakyRelu",
    "ReduceMean",
    "ReduceMin",
    "ReduceMax",
    "ReduceProd",
    "ReduceSum",
    "Relu",
    "Gelu",
    "Elu",
    "HardSwish",
    "Sigmoid",
    "Slice",
    "LogSoftmax",
    "Softmax",
    "Sqrt",
    "Atan",
    "Asin",
    "Sin",
    "Cos",
    "Sign",
    "Tanh",
    "Exp",
    "Log",
    "LRN",
    "Ceil",
    "Floor",
    "Round",
    "Abs",
    "Neg",
    "DepthToSpace",
    "SpaceToDepth",
    "LpNormalization",
)
_BINARY = ("Add", "Div", "Mul", "Pow", "Sub", "PRelu", "GridSample")
_VARIADIC = ("Concat", "Max", "Min")
_LOGICAL = ("Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual")

SELECTORS: dict[str, str] = {
    **dict.fromkeys(_DROP_QDQ, "drop_qdq"),
    **dict.fromkeys(_DROP_DQ, "drop_dq"),
    **dict.fromkeys(_UNARY, "unary"),
    **dict.fromkeys(_BINARY, "binary"),
    **dict.fromkeys(_VARIADIC, "variadic"),
    **dict.fromkeys(_LOGICAL, "logical"),
    "Clip": "clip",
    "Split": "split",
    "Conv": "conv",
    "ConvTranspose": "conv",
    "MatMul": "matmul",
    "Gemm": "gemm",
    "InstanceNormalization": "norm",
    "LayerNormalization": "norm",
    "BatchNormalization": "batchnorm",
    "Where": "where",
    "Pad": "pad",
    "TopK": "topk",
}
"""Op types that can be the target of a QDQ unit, by selector family (EP-agnostic)."""

_SELECTOR_VERSIONS: dict[str, tuple[int, ...]] = {"MaxPool": (12,)}
_SELECTOR_DOMAINS = frozenset({"ai.onnx", "com.microsoft", "com.ms.internal.nhwc"})
_NO_CLIP_FAMILIES = frozenset({"drop_qdq", "drop_dq", "split", "topk"})


def node_units(graph: Graph) -> list[NodeUnit]:
    """Every node of ``graph`` in exactly one unit, units in graph order of their target.

    QDQ units are found as ORT's ``GetAllNodeUnits`` finds them (selectors in ``qdq_selectors.cc``);
    a node whose selector checks fail is a single-node unit, and so are its DQ and Q nodes.

    Computed once per graph object (several EPs ask for the same graph); each call returns a new
    list of the same unit objects.
    """
    e = _edges(graph)
    if e.units is None:
        candidates = _qdq_candidates(graph, e)
        if len(candidates) > 1:
            # First claim wins when units overlap, in ORT's topological order.
            is_candidate = set(candidates)
            candidates = [p for p in topological_order(graph) if p in is_candidate]
        with gc_paused():
            e.units = _node_units(graph, e, candidates)
    return list(e.units)


def single_units(graph: Graph) -> list[NodeUnit]:
    """Every node as a unit of its own, for EPs that judge nodes one by one (CoreML); computed
    once per graph object, like :func:`node_units` (whose units they are when it found no QDQ
    group)."""
    e = _edges(graph)
    if e.singles is None:
        if e.units is not None and len(e.units) == len(graph.nodes):
            e.singles = e.units
        else:
            with gc_paused():
                e.singles = [NodeUnit(n) for n in graph.nodes]
    return list(e.singles)


def _qdq_candidates(graph: Graph, e: _Edges) -> list[int]:
    """Positions of the nodes that may be the target of a QDQ unit, in graph order.

    The cheap part of :func:`_select` (op type, domain, version, a DQ input), so that graphs
    without DQ nodes skip the selectors and the topological order altogether.
    """
    nodes = graph.nodes
    dq = [p for p, n in enumerate(nodes) if n.op_type == DQ_OP]
    if not dq:
        return []
    fed_by_dq = {c for p in dq for c, _, _ in e.outputs[p]}
    result = []
    for p in sorted(fed_by_dq):
        node = nodes[p]
        if node.op_type not in SELECTORS or node.domain not in _SELECTOR_DOMAINS:
            continue
        versions = _SELECTOR_VERSIONS.get(node.op_type)
        if not versions or node.since_version in versions:
            result.append(p)
    return result


def _node_units(graph: Graph, e: _Edges, candidates: list[int]) -> list[NodeUnit]:
    nodes = graph.nodes
    claimed: dict[int, NodeUnit] = {}
    for p in candidates:
        unit = _select(graph, e, nodes[p])
        if unit is None:
            continue
        for m in unit.nodes:
            claimed.setdefault(m.index, unit)
    if not claimed:
        return [NodeUnit(n) for n in nodes]
    result: list[NodeUnit] = []
    for n in nodes:
        unit = claimed.get(n.index)
        if unit is None:
            result.append(NodeUnit(n))
        elif unit.target.index == n.index:
            result.append(unit)
    return result


def _select(graph: Graph, e: _Edges, node: Node) -> NodeUnit | None:
    family = SELECTORS.get(node.op_type)
    if family is None or node.domain not in _SELECTOR_DOMAINS:
        return None
    versions = _SELECTOR_VERSIONS.get(node.op_type)
    if versions and node.since_version not in versions:
        return None
    p = e.pos_of_index[node.index]
    if not any(graph.nodes[src].op_type == DQ_OP for src, _, _ in e.inputs[p]):
        return None  # every selector needs at least one DQ input
    dq = _dq_parents(graph, e, p)
    clip = _clip_candidate(graph, e, p)
    q = _q_children(graph, e, e.pos_of_index[clip.index] if clip else p)
    if clip is not None and (len(q) != 1 or not _clip_made_redundant(graph, clip, q[0])):
        return None
    if not _SelectorCheck(graph, e, node, clip, dq, q).passes(family):
        return None
    return NodeUnit(node, tuple(dq), tuple(q), "qdq", clip)


def _dq_parents(graph: Graph, e: _Edges, p: int) -> list[Node]:
    """DQ producers of the node's explicit inputs, in input-slot order (FindParentsByType)."""
    n_inputs = len(graph.nodes[p].inputs)
    return [
        graph.nodes[src]
        for src, _, dst in sorted(e.inputs[p], key=lambda x: x[2])
        if dst < n_inputs and graph.nodes[src].op_type == DQ_OP
    ]


def _q_children(graph: Graph, e: _Edges, p: int) -> list[Node]:
    """Q consumers of the node's outputs, by output slot then edge order (FindChildrenByType)."""
    edges = sorted(e.outputs[p], key=lambda x: x[1])
    return [graph.nodes[c] for c, _, _ in edges if graph.nodes[c].op_type == Q_OP]


def _clip_candidate(graph: Graph, e: _Edges, p: int) -> Node | None:
    """A Relu/Clip that is the only consumer of the node and has one consumer itself."""
    if len(e.outputs[p]) != 1:
        return None
    c = e.outputs[p][0][0]
    nxt = graph.nodes[c]
    if (
        nxt.op_type in ("Relu", "Clip")
        and len(e.outputs[c]) == 1
        and not e.produces_graph_output(nxt)
    ):
        return nxt
    return None


_INT_RANGES = {
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int16": (-32768, 32767),
    "uint16": (0, 65535),
}


def _clip_made_redundant(graph: Graph, clip: Node, q: Node) -> bool:
    """``IsClipMadeRedundantByQ`` (qdq_util.cc): the Q's integer range lies inside the Clip's."""
    params = _q_scalar_params(graph, q)
    if params is None:
        return False
    scale, zp, dtype = params
    lo, hi = _INT_RANGES.get(dtype, (None, None))
    if lo is None or hi is None:
        return False
    if clip.op_type == "Relu":
        return zp == lo
    bounds = _clip_bounds(graph, clip)
    if bounds is None:
        return False
    q_lo = _round_half_even(bounds[0] / scale) + zp
    q_hi = _round_half_even(bounds[1] / scale) + zp
    return q_lo <= lo and q_hi >= hi


def _round_half_even(x: float) -> float:
    return x if math.isinf(x) else float(round(x))


def _q_scalar_params(graph: Graph, q: Node) -> tuple[float, int, str] | None:
    scale = _constant_values(graph, q.input(1))
    if scale is None or scale.ndim != 0 or str(scale.dtype) != "float32":
        return None
    if not q.input(2):
        dtype = _onnx_dtype_name(q.attributes.get("output_dtype", 0)) or "uint8"
        return float(scale), 0, dtype
    zp = _constant_values(graph, q.input(2))
    if zp is None or zp.ndim != 0:
        return None
    return float(scale), int(zp), str(zp.dtype)


def _onnx_dtype_name(code: int) -> str | None:
    return {2: "uint8", 3: "int8", 4: "uint16", 5: "int16"}.get(int(code or 0))


def _clip_bounds(graph: Graph, clip: Node) -> tuple[float, float] | None:
    """Clip's (min, max) when they are constants (attributes before opset 11, inputs after)."""
    lo, hi = -3.4028234663852886e38, 3.4028234663852886e38
    if clip.since_version is not None and clip.since_version < 11:
        return float(clip.attributes.get("min", lo)), float(clip.attributes.get("max", hi))
    for slot in (1, 2):
        name = clip.input(slot)
        if not name:
            continue
        value = _constant_values(graph, name)
        if value is None or value.size != 1:
            return None
        if slot == 1:
            lo = float(value.reshape(-1)[0])
        else:
            hi = float(value.reshape(-1)[0])
    return lo, hi


def _constant_values(graph: Graph, name: str) -> Any:
    """A constant initializer's values (numpy), or ``None``."""
    if not name or not graph.is_constant(name):
        return None
    try:
        return graph.initializers[name].numpy()
    except (ValueError, OSError):
        return None


def elem_type(graph: Graph, name: str) -> str | None:
    """Element type of a value; falls back to what a Q node's zero point says it produces."""
    vt = graph.value_type(name) if name else None
    if vt is not None and vt.dtype:
        return vt.dtype
    producer = graph.producers.get(name)
    if producer is not None and producer.op_type == Q_OP:
        zp = producer.input(2)
        if zp:
            zvt = graph.value_type(zp)
            return zvt.dtype if zvt else None
        return _onnx_dtype_name(producer.attributes.get("output_dtype", 0)) or "uint8"
    return None


class _SelectorCheck:
    """The checks of ORT's node-group selectors (qdq_selectors.cc) for one candidate group."""

    def __init__(
        self, graph: Graph, e: _Edges, node: Node, clip: Node | None, dq: list[Node], q: list[Node]
    ) -> None:
        self.graph, self.e, self.node, self.clip, self.dq, self.q = graph, e, node, clip, dq, q

    def passes(self, family: str) -> bool:
        if self.clip is not None and family in _NO_CLIP_FAMILIES:
            return False
        return bool(getattr(self, f"_{family}")())

    # -- shared checks

    def _dq_type(self, i: int) -> str | None:
        return elem_type(self.graph, self.dq[i].input(0))

    def _q_type(self, i: int) -> str | None:
        return elem_type(self.graph, self.q[i].outputs[0] if self.q[i].outputs else "")

    def _can_create(self) -> bool:
        """``NodeGroup::CanCreateNodeGroup``: each DQ feeds only the target; Q-consumed outputs
        are consumed only by Q nodes and are not graph outputs."""
        t = self.e.pos_of_index[self.node.index]
        for d in self.dq:
            out = self.e.outputs[self.e.pos_of_index[d.index]]
            if self.e.produces_graph_output(d) or len(out) != 1 or out[0][0] != t:
                return False
        if not self.q:
            return True
        producer = self.clip or self.node
        kinds: dict[int, bool] = {}
        for c, src, _ in self.e.outputs[self.e.pos_of_index[producer.index]]:
            is_q = self.graph.nodes[c].op_type == Q_OP
            if kinds.setdefault(src, is_q) != is_q:
                return False
        return not any(
            is_q and producer.outputs[src] in self.e.graph_outputs for src, is_q in kinds.items()
        )

    def _check_qdq_nodes(self, num_dq: int | None = None, empty_q_ok: bool = False) -> bool:
        """``NodeGroupSelector::CheckQDQNodes``."""
        if num_dq is None:
            num_dq = sum(1 for i in self.node.inputs if i)
        if num_dq != len(self.dq) or not self._can_create():
            return False
        if not self.q:
            return empty_q_ok
        num_outputs = sum(1 for o in self.node.outputs if o)
        out_edges = len(self.e.outputs[self.e.pos_of_index[self.node.index]])
        return num_outputs == len(self.q) == out_edges and not self.e.produces_graph_output(
            self.node
        )

    def _same_io_type(self) -> bool:
        return self._dq_type(0) == self._q_type(0)

    # -- families

    def _drop_qdq(self) -> bool:
        if not self._check_qdq_nodes(1) or not self._same_io_type():
            return False
        return _qdq_pair_same_params(self.graph, self.q[0], self.dq[0])

    def _drop_dq(self) -> bool:
        if len(self.dq) != 1 or not self._can_create():
            return False
        d = self.dq[0]
        scale_ok = _is_const_scalar(self.graph, d.input(1))
        return scale_ok and bool(d.input(2)) and _is_const_scalar(self.graph, d.input(2))

    def _unary(self) -> bool:
        return self._check_qdq_nodes(1) and self._same_io_type()

    def _clip(self) -> bool:
        if not 1 <= len(self.dq) <= 3:
            return False
        return self._check_qdq_nodes(len(self.dq)) and self._same_io_type()

    def _binary(self) -> bool:
        if not self._check_qdq_nodes():
            return False
        return self._dq_type(0) == self._dq_type(1) == self._q_type(0)

    def _variadic(self) -> bool:
        if not self._check_qdq_nodes():
            return False
        dq_types = {self._dq_type(i) for i in range(len(self.dq))}
        q_types = {self._q_type(i) for i in range(len(self.q))}
        return len(dq_types) == 1 and dq_types == q_types

    def _split(self) -> bool:
        if not self._check_qdq_nodes(1):
            return False
        return all(self._q_type(i) == self._dq_type(0) for i in range(len(self.q)))

    def _conv(self) -> bool:
        if not self._check_qdq_nodes() or len(self.dq) < 2 or not self._same_io_type():
            return False
        x, w = self._dq_type(0), self._dq_type(1)
        if x == "int8" and w != x:
            return False
        return len(self.dq) < 3 or self._dq_type(2) == "int32"

    def _matmul(self) -> bool:
        # Without a Q it could only become MatMulIntegerToFloat, which the shared selector
        # manager does not allow (matmulintegertofloat_allowed defaults to false).
        if len(self.dq) != 2 or not self.q:
            return False
        if self._dq_type(0) == "int8" and self._dq_type(1) != "int8":
            return False
        return self._check_qdq_nodes() and self._same_io_type()

    def _gemm(self) -> bool:
        if not self._check_qdq_nodes(empty_q_ok=True) or len(self.dq) < 2:
            return False
        a, b = self._dq_type(0), self._dq_type(1)
        if a == "int8" and b != a:
            return False
        if self.q and self._q_type(0) != a:
            return False
        if len(self.dq) < 3:
            return True
        return float(self.node.attributes.get("beta", 1.0)) == 1.0 and self._dq_type(2) == "int32"

    def _norm(self) -> bool:
        if not self._check_qdq_nodes() or not self._same_io_type():
            return False
        return len(self.dq) <= 2 or self._dq_type(2) == "int32"

    def _batchnorm(self) -> bool:
        if not 3 <= len(self.dq) <= 5 or not self._check_qdq_nodes(len(self.dq)):
            return False
        if not self._same_io_type():
            return False
        return self._dq_type(0) != "int8" or self._dq_type(1) == "int8"

    def _logical(self) -> bool:
        return self._check_qdq_nodes(empty_q_ok=True) and self._dq_type(0) == self._dq_type(1)

    def _where(self) -> bool:
        if not self._check_qdq_nodes(2):
            return False
        return self._dq_type(0) == self._dq_type(1) == self._q_type(0)

    def _pad(self) -> bool:
        if not 1 <= len(self.dq) <= 2 or not self._check_qdq_nodes(len(self.dq)):
            return False
        return len({self._dq_type(i) for i in range(len(self.dq))} | {self._q_type(0)}) == 1

    def _topk(self) -> bool:
        if len(self.dq) != 1 or not self._can_create() or len(self.q) != 1:
            return False
        return self._same_io_type() and _qdq_pair_same_params(self.graph, self.q[0], self.dq[0])


def _is_const_scalar(graph: Graph, name: str) -> bool:
    if not name or not graph.is_constant(name):
        return False
    vt = graph.value_type(name)
    return (
        vt is not None
        and vt.shape is not None
        and (len(vt.shape) == 0 or (len(vt.shape) == 1 and vt.shape[0] == 1))
    )


def _qdq_pair_same_params(graph: Graph, q: Node, dq: Node) -> bool:
    """``IsQDQPairSupported``: both have constant scalar scale and zero point, and equal ones."""
    names = (q.input(1), q.input(2), dq.input(1), dq.input(2))
    if not all(_is_const_scalar(graph, n) for n in names):
        return False
    q_scale, q_zp, dq_scale, dq_zp = (_constant_values(graph, n) for n in names)
    if q_zp.dtype != dq_zp.dtype or q_scale.dtype != dq_scale.dtype:
        return False
    same_zp = q_zp.reshape(-1)[0] == dq_zp.reshape(-1)[0]
    return bool(same_zp) and bool(q_scale.reshape(-1)[0] == dq_scale.reshape(-1)[0])


__all__ = [
    "QUANT_IO_OPS",
    "SELECTORS",
    "IODef",
    "NodeUnit",
    "elem_type",
    "form_partitions",
    "implicit_inputs",
    "node_units",
    "partition_inputs",
    "partition_io",
    "stop_set",
    "topological_order",
    "unit_io_defs",
]
