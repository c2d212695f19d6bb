"""The engine of ``check``: each EP's verdict on every node unit, then ORT's partition walk.

For each graph of the model (the main graph, then subgraphs), the EP judges every node unit
(its own unit check, or its node check on each node of the unit), then partitions are formed
as ORT forms them (the EP's own walk where it has one, else the generic walk of
:mod:`ortprep.eps.partition`) and the EP's post-filter drops some. What an EP does comes from
its :class:`~ortprep.eps.base.EpSpec` in :mod:`ortprep.eps.registry`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from ortprep.core.graph import Graph, Model, Node
from ortprep.eps.base import EpOptions, EpSpec, NodeContext
from ortprep.eps.registry import ep_spec
from ortprep.stages.check.results import NodeResult, Outcome, Partition
from ortprep.stages.check.verdict import ort_suitability, share_verdict

if TYPE_CHECKING:
    from ortprep.eps.partition import NodeUnit


def _units(graph: Graph, spec: EpSpec) -> list[NodeUnit]:
    from ortprep.eps import partition

    if spec.groups_qdq_units:
        return partition.node_units(graph)
    return partition.single_units(graph)


def _unit_reason(unit: NodeUnit, graph: Graph, spec: EpSpec, options: EpOptions) -> str | None:
    """The verdict of an EP without its own unit check: its node checks, the unit as a whole."""
    for node in unit.nodes:
        reason = spec.check_node(NodeContext(graph, node, options))
        if reason is not None:
            return reason if len(unit.nodes) == 1 else f"{reason} (QDQ group judged as a whole)"
    return None


@dataclass
class GraphEval:
    graph: Graph
    reasons: dict[int, str | None]
    units: list[NodeUnit]
    excluded: set[int]
    partitions: list[list[Node]]
    discarded: dict[int, str]


def _partition(
    graph: Graph,
    units: list[NodeUnit],
    reasons: dict[int, str | None],
    excluded: set[int],
    spec: EpSpec,
) -> tuple[list[list[Node]], dict[int, str]]:
    from ortprep.eps import partition

    # a unit's nodes share one verdict (set per unit in _evaluate_graph): its target's decides
    ok_units = {u for u in units if reasons[u.target.index] is None}  # by identity
    formed = partition.form_partitions(graph, ok_units.__contains__, units, excluded)
    kept: list[list[Node]] = []
    discarded: dict[int, str] = {}
    for nodes in formed:
        why = spec.discard(nodes, graph) if spec.discard is not None else None
        if why:
            for n in nodes:
                discarded[n.index] = why
        else:
            kept.append(nodes)
    return kept, discarded


def _evaluate_graph(graph: Graph, spec: EpSpec, options: EpOptions) -> GraphEval:
    from ortprep.eps import partition

    units = _units(graph, spec)
    reasons: dict[int, str | None] = {}
    check_unit = spec.check_unit  # an EP's own verdict on a whole unit
    for unit in units:
        if check_unit is not None:
            reason = check_unit(unit, graph, options)
        else:
            reason = _unit_reason(unit, graph, spec, options)
        nodes = unit.nodes
        if len(nodes) == 1:
            reasons[nodes[0].index] = reason
        else:
            for n in nodes:
                reasons[n.index] = reason
    excluded = partition.stop_set(graph, spec.stop_ops) if spec.stop_ops else set()
    exact = spec.exact_groups  # an EP whose walk judges more than each unit
    if exact is None:
        kept, discarded = _partition(graph, units, reasons, excluded, spec)
        return GraphEval(graph, reasons, units, excluded, kept, discarded)
    formed = exact(graph, options, spec.stop_ops, reasons)
    refusal = spec.partition_input_refusal
    kept = [nodes for nodes, dropped in formed if dropped is None]
    discarded = {n.index: dropped for nodes, dropped in formed if dropped for n in nodes}
    placed = {n.index for nodes, _ in formed for n in nodes}
    for unit in units:
        target = unit.target.index
        if reasons[target] is None and target not in placed and target not in excluded:
            why = refusal(unit, graph) if refusal is not None else None
            if why is not None:
                for n in unit.nodes:
                    reasons[n.index] = why
    return GraphEval(graph, reasons, units, excluded, kept, discarded)


def all_graphs(model: Model) -> list[Graph]:
    """The main graph and every subgraph (subgraphs found through control-flow nodes only)."""
    found = [model.graph]
    stack = [model.graph]
    while stack:
        for node in stack.pop().nodes:
            if node.subgraphs:
                subs = list(node.subgraphs.values())
                found.extend(subs)
                stack.extend(subs)
    return found


_STOPPED = "downstream of a stop op (stays on CPU)"
_NOT_PLACED = "supported, but not placed in a partition"


def _outcome(
    evals: list[GraphEval], total: int, subgraph_refusal: str | None, compiles: bool = True
) -> tuple[Outcome, list[NodeResult]]:
    results: list[NodeResult] = []
    partitions: list[Partition] = []
    supported: int = 0
    new = tuple.__new__  # one NodeResult per node per EP: built without the namedtuple's __new__
    discarded_texts: dict[str, str] = {}
    for ev in evals:
        where: dict[int, int] = {}
        for nodes in ev.partitions:
            new_id = len(partitions)
            partitions.append(Partition(new_id, ev.graph.path, tuple(n.name for n in nodes)))
            for n in nodes:
                where[n.index] = new_id
        path = ev.graph.path
        override = subgraph_refusal if path != "main" else None
        reasons, placed, discarded, excluded = ev.reasons, where, ev.discarded, ev.excluded
        for n in ev.graph.nodes:
            index = n.index
            reason = override or reasons.get(index)
            if reason is not None:
                results.append(
                    new(NodeResult, (n.name, n.op_type, n.domain, path, False, None, reason))
                )
                continue
            supported += 1
            pid = placed.get(index)
            if pid is None:
                why = discarded.get(index)
                if why:
                    reason = discarded_texts.get(why)
                    if reason is None:
                        reason = discarded_texts[why] = (
                            f"supported, but its partition is discarded: {why}"
                        )
                else:
                    reason = _STOPPED if index in excluded else _NOT_PLACED
            results.append(new(NodeResult, (n.name, n.op_type, n.domain, path, True, pid, reason)))
    taken = sum(len(p.nodes) for p in partitions)
    v = ort_suitability(len(partitions), taken, total) if compiles else share_verdict(taken, total)
    return Outcome(total, supported, taken, tuple(partitions), v), results


@dataclass(frozen=True)
class Evaluation:
    """One EP's answer on one model: totals and verdict, one result per node, and per graph
    what the answer was made of (for the what-ifs of the explanations)."""

    ep: str
    spec: EpSpec
    outcome: Outcome
    nodes: list[NodeResult]
    graphs: list[GraphEval]
    if_shapes_fixed: Outcome | None = None


class Engine:
    """The EPs' evaluation of a model (and of its what-if, when there is one): the graphs of
    each are listed once, then each EP is evaluated on demand."""

    def __init__(self, model: Model, what_if: Model | None, options: EpOptions) -> None:
        self.model = model
        self.what_if = what_if
        self.options = options
        self.graphs = all_graphs(model)
        self.what_if_graphs = all_graphs(what_if) if what_if is not None else []

    def evaluate(self, ep_id: str) -> Evaluation:
        spec = ep_spec(ep_id)
        outcome, nodes, evals = _evaluate(self.graphs, spec, self.options)
        fixed = None
        if self.what_if is not None:
            fixed = _evaluate(self.what_if_graphs, spec, self.options)[0]
        return Evaluation(ep_id, spec, outcome, nodes, evals, fixed)


def evaluate(
    model: Model, ep_id: str, options: EpOptions, graphs: list[Graph] | None = None
) -> tuple[Outcome, list[NodeResult], list[GraphEval], EpSpec]:
    """One EP's answer on ``model`` alone (``graphs``: its :func:`all_graphs`, when listed):
    totals and verdict, one result per node, the per-graph evaluations, the EP's spec."""
    spec = ep_spec(ep_id)
    found = _evaluate(graphs if graphs is not None else all_graphs(model), spec, options)
    return (*found, spec)


def _evaluate(
    graphs: list[Graph], spec: EpSpec, options: EpOptions
) -> tuple[Outcome, list[NodeResult], list[GraphEval]]:
    """One EP's answer on the graphs of a model (the main graph first)."""
    evals = []
    for g in graphs:
        if g.path != "main" and not spec.takes_subgraph_nodes:
            refused: dict[int, str | None] = dict.fromkeys(
                (n.index for n in g.nodes), spec.subgraph_policy
            )
            evals.append(GraphEval(g, refused, [], set(), [], {}))
            continue
        evals.append(_evaluate_graph(g, spec, options))
    total = sum(len(g.nodes) for g in graphs)
    outcome, nodes = _outcome(evals, total, None, spec.compiles)
    return outcome, nodes, evals


def if_supported(evals: list[GraphEval], spec: EpSpec, generic: str) -> tuple[int, int]:
    """(nodes taken, partitions) if the nodes refused for ``generic`` were accepted."""
    taken = parts = 0
    for ev in evals:
        if not ev.units:
            continue
        reasons = {
            i: (None if (r is not None and generic_reason(r) == generic) else r)
            for i, r in ev.reasons.items()
        }
        kept, _ = _partition(ev.graph, ev.units, reasons, ev.excluded, spec)
        parts += len(kept)
        taken += sum(len(p) for p in kept)
    return taken, parts


_QUOTED = re.compile(r"'[^']*'")


@lru_cache(maxsize=4096)
def generic_reason(reason: str) -> str:
    """A reason with value names taken out, so nodes refused for the same rule group together
    (cached: many nodes share one reason string)."""
    return _QUOTED.sub("'…'", reason)
