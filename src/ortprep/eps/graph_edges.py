"""ORT's node edges and topological order for one graph, kept on the graph (``Graph.memo``).

Sources (microsoft/onnxruntime, restated, not copied): ``core/graph/graph.cc`` (edges, implicit
inputs of If/Loop/Scan nodes) and ``core/graph/graph_viewer.cc`` / ``Graph::ReverseDFSFrom`` (the
topological order ORT walks: a reverse DFS from the leaves, inputs visited in node-index order,
which decides the order of the partitioner's root nodes).

Edges follow ORT: one edge per (producer, output slot, consumer, input slot), implicit inputs of
If/Loop/Scan nodes included; an edge set is ordered by (node index, source slot, target slot).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ortprep.core.graph import Graph, Node

if TYPE_CHECKING:
    from ortprep.eps.node_unit import NodeUnit

Edge = tuple[int, int, int]
"""(other node position, source output slot, target input slot)."""


# --------------------------------------------------------------------------- edges


class GraphEdges:
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


def graph_edges(graph: Graph) -> GraphEdges:
    """Edges of ``graph``, built once and kept on the graph (``Graph.memo["partition.edges"]``)."""
    return graph.derived(EDGES_KEY, _build_edges)


EDGES_KEY = "partition.edges"
"""The ``Graph.memo`` key of :class:`GraphEdges` (edges, topological order, node units)."""


def _build_edges(graph: Graph) -> GraphEdges:
    return GraphEdges(graph)


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
    e = graph_edges(graph)
    if e.order is None:
        e.order = _reverse_dfs_order(e)
    return e.order


def _reverse_dfs_order(e: GraphEdges) -> list[int]:
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


__all__ = ["EDGES_KEY", "Edge", "GraphEdges", "graph_edges", "implicit_inputs", "topological_order"]
