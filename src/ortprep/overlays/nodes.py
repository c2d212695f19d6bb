"""Which check result belongs to which node of the analysed graph (``.analyzed.onnx``).

``check`` reports nodes per graph (``main``, then subgraphs by path) in the graph's own order, and
the analysed copy is that same graph (:mod:`ortprep.core.weightless`), so a node is found by its
graph path and position: names alone can repeat.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

    from ortprep.stages.check import EpReport, NodeResult

Where = tuple[str, int]
"""A node's graph path and its index in that graph."""


def by_position(report: EpReport) -> dict[Where, NodeResult]:
    """One EP's node results keyed by (graph path, index in the graph)."""
    found: dict[Where, NodeResult] = {}
    counts: dict[str, int] = {}
    for n in report.nodes:
        i = counts.get(n.graph, 0)
        counts[n.graph] = i + 1
        found[(n.graph, i)] = n
    return found


def nodes(proto: onnx.ModelProto) -> Iterator[tuple[Where, onnx.NodeProto]]:
    """Every node of the analysed graph with its (graph path, index)."""
    from ortprep.core.weightless import walk

    for path, graph in walk(proto.graph):
        for i, node in enumerate(graph.node):
            yield (path, i), node


def matched(
    proto: onnx.ModelProto, reports: Sequence[EpReport]
) -> Iterator[tuple[Where, onnx.NodeProto, list[NodeResult]]]:
    """Each node of the analysed graph with its result for every EP (in ``reports`` order).

    The analysed copy is the graph the results come from; a node without a result, or a result
    naming another op, is a bug (RuntimeError), never a silently wrong overlay."""
    tables = [by_position(r) for r in reports]
    total = 0
    for where, node in nodes(proto):
        results = []
        for table in tables:
            r = table.get(where)
            if r is None or r.op != node.op_type:
                raise RuntimeError(
                    f"analysed graph and check results disagree at {where[0]} node {where[1]} "
                    f"({node.op_type} {node.name!r})"
                )
            results.append(r)
        total += 1
        yield where, node, results
    for table in tables:
        if len(table) != total:
            raise RuntimeError(f"check results have {len(table)} nodes, the analysed graph {total}")
