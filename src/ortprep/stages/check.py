"""``check``: which nodes NNAPI, CoreML and XNNPACK would take, in how many partitions, and why.

The analysis runs on what the EP sees: for an ``.onnx`` input, the graph after the basic (level 1)
optimizations ORT applies before it assigns nodes to EPs, obtained from ORT itself (as ORT's own
checker does), with shapes inferred; for an ``.ort`` input, the graph stored in the file (ORT does
not re-run level 1 on ORT-format models, ort-internals §2.6).
"""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from ortprep.core.errors import UsageError
from ortprep.core.gcpause import gc_paused
from ortprep.core.graph import Graph, Model, Node, ValueType
from ortprep.core.memory import can_release
from ortprep.core.ort_child import Job, OrtChild
from ortprep.core.progress import ProgressFn, no_progress
from ortprep.eps.base import EpOptions, EpSpec, NodeContext
from ortprep.eps.registry import EP_IDS, ep_spec

# ORT's verdict for the EPs that compile what they take (NNAPI, CoreML) is
# PartitioningInfo.suitability() in onnxruntime/tools/mobile_helpers/usability_checker.py, on
# the share of all nodes (main graph and subgraphs) that lie in partitions and the number of
# partitions (main graph and subgraphs): 1 partition: over 75 % yes, over 50 % maybe, else no;
# 2 partitions: over 75 % maybe, else no; 0 or 3 and more: no (the device copies between
# partitions cost more than the NPU gains). Percentages are compared strictly, as there.
ORT_YES_ONE = 75
ORT_MAYBE_ONE = 50
ORT_MAYBE_TWO = 75
# XNNPACK runs static kernels on the CPU (no device copy): ortprep's own rule on the share of
# nodes it runs, not ORT's.
SHARE_YES = 75
SHARE_MAYBE = 50

ORT_RULE = "ORT's suitability()"
SHARE_RULE = "ortprep's share rule (XNNPACK)"


@dataclass(frozen=True)
class CheckOptions:
    eps: tuple[str, ...] = EP_IDS
    fix_dims: Mapping[str, int] = field(default_factory=dict)
    fix_inputs: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    ep_options: EpOptions = field(default_factory=EpOptions)
    what_if: bool = True


class NodeResult(NamedTuple):
    """One node's answer for one EP (a named tuple: there is one per node per EP, 400,000 for
    a 100,000-node model checked for four EPs, and tuples are cheap to make)."""

    name: str
    op: str
    domain: str
    graph: str
    supported: bool
    partition: int | None
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


@dataclass(frozen=True)
class Partition:
    id: int
    graph: str
    nodes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "graph": self.graph,
            "size": len(self.nodes),
            "nodes": list(self.nodes),
        }


@dataclass(frozen=True)
class ReasonGroup:
    """Nodes refused by the same rule, and what the EP would take if they were accepted."""

    reason: str
    op: str
    nodes: int
    partitions_if_supported: int
    nodes_taken_if_supported: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "reason": self.reason,
            "nodes": self.nodes,
            "partitions_if_supported": self.partitions_if_supported,
            "nodes_taken_if_supported": self.nodes_taken_if_supported,
        }


@dataclass(frozen=True)
class Outcome:
    """Totals and verdict of one EP on one graph view."""

    nodes_total: int
    nodes_supported: int
    nodes_taken: int
    partitions: tuple[Partition, ...]
    verdict: str

    @property
    def largest_partition_share(self) -> float:
        """The largest partition's nodes over all nodes (information beside the verdict)."""
        largest = max((len(p.nodes) for p in self.partitions), default=0)
        return largest / self.nodes_total if self.nodes_total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes_supported": self.nodes_supported,
            "nodes_taken": self.nodes_taken,
            "partitions": len(self.partitions),
            "largest_partition_share": round(self.largest_partition_share, 4),
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class EpReport:
    ep: str
    ort_source_version: str
    outcome: Outcome
    summary: str
    nodes: tuple[NodeResult, ...]
    top_reasons: tuple[ReasonGroup, ...]
    notes: tuple[str, ...]
    next_step: str
    if_shapes_fixed: Outcome | None = None
    verdict_rule: str = ORT_RULE

    def to_dict(self) -> dict[str, Any]:
        o = self.outcome
        return {
            "ep": self.ep,
            "rules_follow_ort": self.ort_source_version,
            "nodes_total": o.nodes_total,
            "nodes_supported": o.nodes_supported,
            "nodes_taken": o.nodes_taken,
            "partitions": [p.to_dict() for p in o.partitions],
            "largest_partition_share": round(o.largest_partition_share, 4),
            "verdict": o.verdict,
            "verdict_rule": self.verdict_rule,
            "summary": self.summary,
            "top_reasons": [r.to_dict() for r in self.top_reasons],
            "notes": list(self.notes),
            "next_step": self.next_step,
            "nodes": [n.to_dict() for n in self.nodes],
            "if_shapes_fixed": None
            if self.if_shapes_fixed is None
            else self.if_shapes_fixed.to_dict(),
        }


@dataclass(frozen=True)
class CheckResult:
    model: str
    analyzed: str
    inputs: tuple[Any, ...]
    assumed: Mapping[str, int]
    eps: tuple[EpReport, ...]
    fix_command: str | None = None  # the fix-shapes command for the what-if's dims, if any
    thresholds: str = (
        "NNAPI and CoreML verdicts use ORT's thresholds, its suitability() "
        "(usability_checker.py) on the share of nodes taken: 1 partition: over 75% yes, over "
        "50% maybe, else no; 2 partitions: over 75% maybe, else no; 3 or more: no. XNNPACK (no "
        "device copy) has ortprep's own rule: "
        "over 75% of nodes run yes, over 50% maybe, else no"
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "analyzed": self.analyzed,
            "inputs": [v.to_dict() for v in self.inputs],
            "what_if_dims": dict(self.assumed),
            "fix_command": self.fix_command,
            "thresholds": self.thresholds,
            "eps": [e.to_dict() for e in self.eps],
        }


# --------------------------------------------------------------------------- graph to analyse


@dataclass
class _Optimizing:
    """ORT producing the basic-optimized graph of ``path`` in a child process (which then
    infers its shapes into ``inferred``, when told to)."""

    path: Path
    target: Path
    big: bool
    child: OrtChild
    inferred: Path | None = None
    child_infers: bool = False

    def decide(self, child_infers: bool) -> None:
        """Tell the child whether it infers the shapes (a job with ``inferred`` only)."""
        if self.inferred is None:
            return
        self.child_infers = child_infers
        if child_infers:
            self.child.infer()
        else:
            self.child.skip()

    def stop(self) -> None:
        self.child.cancel()


# ORT's compile API saves the same graph as a session without finalizing one (runtime.compile_graph)
_COMPILE_ONLY = True

# From this many nodes ORT's child infers the shapes while this process reads the nodes (below,
# importing onnx in the child costs more than inferring here: 0.2 s against a few hundredths).
_CHILD_INFERS_NODES = 20_000

# Below this size the what-if session runs beside the first one (two sessions in memory at once).
_PARALLEL_WHAT_IF_BYTES = 256 << 20


def start_basic(
    path: Path,
    workdir: Path,
    dims: Mapping[str, int],
    inputs: Mapping[str, tuple[int, ...]],
    external: bool = False,
) -> _Optimizing:
    """Start ORT on the graph it hands to EPs: ``path`` (shapes fixed first when asked) with
    the level-1 optimizations, saved to ``workdir``. :func:`finish_basic` reads the result."""
    from ortprep.core.runtime import SessionRecipe

    source = path
    if dims or inputs:
        import onnx

        from ortprep.core.onnx_file import load_proto
        from ortprep.stages.fix_shapes import FixShapesOptions, fixed_proto

        proto = load_proto(path)
        onnx.load_external_data_for_model(proto, str(path.parent))
        source = workdir / "fixed.onnx"
        onnx.save(
            fixed_proto(proto, FixShapesOptions(dims, inputs)),
            str(source),
            save_as_external_data=proto.ByteSize() > 1 << 30,
        )
        del proto
    target = workdir / f"{path.stem}.basic.onnx"
    # Only a model near protobuf's 2 GiB limit is saved with external initializers: external
    # data is itself a refusal reason for some EPs (CoreML), and the user's model has none.
    big = source.stat().st_size > 1 << 30 or external
    extra = (
        {"session.optimized_model_external_initializers_file_name": f"{path.stem}.basic.data"}
        if big
        else {}
    )
    recipe = SessionRecipe(
        level="basic",
        save_to=target,
        save_format="ONNX",
        extra=extra,
        threads=1,
        compile_only=_COMPILE_ONLY,
    )
    # The child infers the shapes of what it saved while this process reads the nodes; only
    # where the child can hand ORT's freed graph back to the OS first (glibc), or the two
    # would hold ORT's memory and onnx's at once.
    inferred = target.with_name(f"{path.stem}.basic.inferred.onnx") if can_release() else None
    return _Optimizing(path, target, big, OrtChild.start(Job(source, recipe, inferred)), inferred)


def finish_basic(pending: _Optimizing) -> Model:
    """Wait for ORT, then read its graph with shapes inferred into the view the EPs judge.

    Shapes are inferred file to file, inside onnx's C++ (no second copy of a big graph in
    Python): by the child while this process reads the nodes, or here after ORT is done.
    """
    import dataclasses

    import onnx

    from ortprep.core.onnx_file import model_view, with_value_types

    path, target, inferred = pending.path, pending.target, pending.inferred
    external = None if pending.big else ()

    def load(file: Path) -> Any:
        return onnx.load(str(file), load_external_data=False)

    if inferred is None or not pending.child_infers:
        pending.child.wait()  # BadModelError with ORT's reason when it refused the model
        inferred = target.with_name(f"{path.stem}.basic.inferred.onnx")
        try:
            onnx.shape_inference.infer_shapes_path(str(target), str(inferred), strict_mode=False)
        except Exception:  # noqa: BLE001 -- keep ORT's value_info when onnx cannot infer
            inferred = target
        view = model_view(load(inferred), target, external)
    else:
        pending.child.saved()  # raises as wait() when ORT refused the model
        untyped = model_view(load(target), target, external, value_info=False)
        pending.child.wait()
        if not inferred.exists():  # onnx could not infer: ORT's own value info
            view = model_view(load(target), target, external)
        elif any(n.subgraphs for n in untyped.graph.nodes):  # subgraphs carry their own types
            view = model_view(load(inferred), target, external)
        else:
            typed = with_value_types(untyped.graph, load(inferred).graph)
            view = dataclasses.replace(untyped, graph=typed)
    return Model(
        path=path,
        format="onnx",
        ir_version=view.ir_version,
        producer_name=view.producer_name,
        producer_version=view.producer_version,
        opsets=view.opsets,
        graph=view.graph,
        size_bytes=path.stat().st_size,
    )


def symbolic_dims(graph: Graph) -> list[tuple[str, int, str]]:
    """(input name, position, dim name or '?') of every non-fixed input dimension."""
    found = []
    for v in graph.runtime_inputs:
        for i, d in enumerate(v.shape or ()):
            if not (isinstance(d, int) and d >= 0):
                found.append((v.name, i, d if isinstance(d, str) else "?"))
    return found


def fix_shapes_command(
    path: Path, dims: Mapping[str, int], inputs: Mapping[str, tuple[int, ...]]
) -> str:
    """The ``ortprep fix-shapes`` command for these fixes, quoted for a POSIX shell (dim names
    such as ``?`` or paths with spaces stay one argument each)."""
    import shlex

    args = ["ortprep", "fix-shapes", str(path), "-o", f"{path.stem}.fixed.onnx"]
    for name, value in dims.items():
        args += ["--fix-dim", f"{name}={value}"]
    for name, shape in inputs.items():
        args += ["--fix-input", f"{name}={','.join(map(str, shape))}"]
    return shlex.join(args)


def _with_user_fixes(
    options: CheckOptions, what_if: tuple[dict[str, int], dict[str, tuple[int, ...]]]
) -> tuple[dict[str, int], dict[str, tuple[int, ...]]]:
    """The user's fixes plus the what-if's: the what-if only fixes what they left dynamic."""
    return {**options.fix_dims, **what_if[0]}, {**options.fix_inputs, **what_if[1]}


def what_if_fix(
    runtime_inputs: Sequence[ValueType],
) -> tuple[dict[str, int], dict[str, tuple[int, ...]]]:
    """Values for every dynamic input dim: 1 for batch-like dims, 32 otherwise (documented)."""
    from ortprep.core.runtime import input_shape

    dims: dict[str, int] = {}
    inputs: dict[str, tuple[int, ...]] = {}
    for v in runtime_inputs:
        if not v.dynamic or v.shape is None:
            continue
        shape = input_shape(v.shape, {})
        if all(isinstance(d, (int, str)) for d in v.shape) and any(
            isinstance(d, str) for d in v.shape
        ):
            for d, value in zip(v.shape, shape, strict=True):
                if isinstance(d, str):
                    dims.setdefault(d, value)
        if any(d is None or (isinstance(d, int) and d < 0) for d in v.shape):
            inputs[v.name] = shape
    return dims, inputs


# --------------------------------------------------------------------------- one EP


def _units(graph: Graph, spec: EpSpec) -> list[Any]:
    from ortprep.eps import partition

    if spec.groups_qdq_units:
        return partition.node_units(graph)
    return partition.single_units(graph)


def _unit_reason(unit: Any, graph: Graph, spec: EpSpec, options: EpOptions) -> str | None:
    """The verdict of an EP without its own unit check: its node checks, the unit as a whole."""
    for node in unit.nodes:
        reason = spec.check_node(NodeContext(graph, node, options))
        if reason is not None:
            return reason if len(unit.nodes) == 1 else f"{reason} (QDQ group judged as a whole)"
    return None


@dataclass
class _GraphEval:
    graph: Graph
    reasons: dict[int, str | None]
    units: list[Any]
    excluded: set[int]
    partitions: list[list[Node]]
    discarded: dict[int, str]


def _partition(
    graph: Graph, units: list[Any], reasons: dict[int, str | None], excluded: set[int], spec: EpSpec
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


def _evaluate_graph(graph: Graph, spec: EpSpec, options: EpOptions) -> _GraphEval:
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
        return _GraphEval(graph, reasons, units, excluded, kept, discarded)
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
    return _GraphEval(graph, reasons, units, excluded, kept, discarded)


def _graphs(model: Model) -> list[Graph]:
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
    evals: list[_GraphEval], total: int, subgraph_refusal: str | None, compiles: bool = True
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


def ort_suitability(partitions: int, taken: int, total: int) -> str:
    """ORT's ``PartitioningInfo.suitability()`` (usability_checker.py) on ``taken`` of ``total``
    nodes in ``partitions`` partitions, the percentage computed and compared as there."""
    if total == 0:
        return "no"  # ORT divides by zero here; nothing to take is no
    pct = taken / total * 100
    if partitions == 1:
        return "yes" if pct > ORT_YES_ONE else "maybe" if pct > ORT_MAYBE_ONE else "no"
    if partitions == 2:
        return "maybe" if pct > ORT_MAYBE_TWO else "no"
    return "no"


def share_verdict(taken: int, total: int) -> str:
    """ortprep's rule for EPs with static per-node kernels (XNNPACK): nothing is compiled and
    no tensor is copied to a device, so only the share of nodes they run counts: over 75 %: yes;
    over 50 %: maybe; otherwise no."""
    pct = taken / total * 100 if total else 0.0
    return "yes" if pct > SHARE_YES else "maybe" if pct > SHARE_MAYBE else "no"


def evaluate(
    model: Model, ep_id: str, options: EpOptions, graphs: list[Graph] | None = None
) -> tuple[Outcome, list[NodeResult], list[_GraphEval], EpSpec]:
    """One EP's answer on ``model`` (``graphs``: its :func:`_graphs`, when already listed)."""
    spec = ep_spec(ep_id)
    graphs = graphs if graphs is not None else _graphs(model)
    evals = []
    for g in graphs:
        if g.path != "main" and not spec.takes_subgraph_nodes:
            evals.append(
                _GraphEval(
                    g,
                    dict.fromkeys((n.index for n in g.nodes), spec.subgraph_policy),
                    [],
                    set(),
                    [],
                    {},
                )
            )
            continue
        evals.append(_evaluate_graph(g, spec, options))
    total = sum(len(g.nodes) for g in graphs)
    outcome, nodes = _outcome(evals, total, None, spec.compiles)
    return outcome, nodes, evals, spec


def _reason_groups(
    evals: list[_GraphEval], nodes: list[NodeResult], spec: EpSpec, outcome: Outcome, limit: int = 5
) -> tuple[ReasonGroup, ...]:
    """Refusals grouped by rule (value names taken out), ranked by what supporting them gains:
    more nodes taken first, then fewer partitions."""
    groups: Counter[str] = Counter()
    example: dict[str, str] = {}
    ops: dict[str, Counter[str]] = {}
    # Counted per (reason, op) pair first (Counter counts in C), then per rule: there are far
    # fewer distinct reasons than refused nodes (50,000 nodes, one reason, on a long chain).
    pairs = Counter((n.reason, n.op) for n in nodes if not n.supported and n.reason)
    for (reason, op), count in pairs.items():
        key = _generic(reason)
        groups[key] += count
        by_op = ops.get(key)
        if by_op is None:  # reasons naming values are distinct per node: built once per rule
            by_op = ops[key] = Counter()
            example[key] = reason
        by_op[op] += count
    ranked = []
    for generic, count in groups.most_common(limit + 2):  # each what-if re-partitions
        if spec.compiles:
            taken, parts = _if_supported(evals, spec, generic)
        else:  # static per-node kernels: accepting a node simply adds it, nothing merges
            taken, parts = outcome.nodes_taken + count, len(outcome.partitions)
        reason = example[generic] if count == 1 else generic
        op_list = ", ".join(op for op, _ in ops[generic].most_common(3))
        ranked.append(ReasonGroup(reason, op_list, count, parts, taken))
    ranked.sort(
        key=lambda g: (
            -(g.nodes_taken_if_supported - outcome.nodes_taken),
            g.partitions_if_supported,
            -g.nodes,
        )
    )
    return tuple(ranked[:limit])


def _if_supported(evals: list[_GraphEval], spec: EpSpec, generic: str) -> tuple[int, int]:
    """(nodes taken, partitions) if the nodes refused for ``generic`` were accepted."""
    taken = parts = 0
    for ev in evals:
        if not ev.units:
            continue
        reasons = {
            i: (None if (r is not None and _generic(r) == generic) else r)
            for i, r in ev.reasons.items()
        }
        kept, _ = _partition(ev.graph, ev.units, reasons, ev.excluded, spec)
        parts += len(kept)
        taken += sum(len(p) for p in kept)
    return taken, parts


_QUOTED = re.compile(r"'[^']*'")


@lru_cache(maxsize=4096)
def _generic(reason: str) -> str:
    """A reason with value names taken out, so nodes refused for the same rule group together
    (cached: many nodes share one reason string)."""
    return _QUOTED.sub("'…'", reason)


# --------------------------------------------------------------------------- summary


def _summary(ep: str, o: Outcome, compiles: bool = True) -> str:
    biggest = max((len(p.nodes) for p in o.partitions), default=0)
    share = 100.0 * o.nodes_taken / o.nodes_total if o.nodes_total else 0.0
    if not compiles:
        return (
            f"{ep} would run {o.nodes_taken} of {o.nodes_total} nodes ({share:.0f}%) with its "
            f"own kernels, node by node (nothing is compiled; the {len(o.partitions)} groups "
            f"shown are runs of neighbouring nodes): verdict {o.verdict}"
        )
    return (
        f"{ep} would take {o.nodes_taken} of {o.nodes_total} nodes ({share:.0f}%) in "
        f"{len(o.partitions)} partition(s), the largest {biggest} nodes "
        f"({100.0 * o.largest_partition_share:.0f}%): verdict {o.verdict}"
        f"{_why_no(o)}"
    )


def _why_no(o: Outcome) -> str:
    """Why ORT's rule says no although the EP takes most nodes (too many partitions)."""
    if (
        o.verdict != "no"
        or not o.nodes_total
        or o.nodes_taken * 100 <= ORT_MAYBE_ONE * o.nodes_total
    ):
        return ""
    if len(o.partitions) >= 3:
        return " (ORT's rule: 3 or more partitions, the device copies outweigh the gain)"
    return " (ORT's rule: 2 partitions need over 75% of the nodes)"


def _contrib_note(model: Model, spec: EpSpec, nodes: Sequence[NodeResult]) -> str | None:
    """What this EP's own rules decided about the contrib ops an ``.ort`` file's extended
    optimizations left in it: taken, supported but left out of its partitions, or refused (with
    the first reason), per op; the Runtime-style file is suggested only when some are not taken."""
    if model.format != "ort":
        return None
    contrib = [n for n in nodes if n.domain.startswith("com.microsoft")]
    if not contrib:
        return None
    found = Counter(n.op for n in contrib)
    ops = ", ".join(f"{c} {op}" for op, c in found.most_common(5))
    taken: Counter[str] = Counter()
    left: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    why: dict[str, str] = {}
    for n in contrib:
        if n.partition is not None:
            taken[n.op] += 1
            continue
        (left if n.supported else refused)[n.op] += 1
        if n.reason:
            why.setdefault(n.op, n.reason)
    parts = []
    if taken:
        done = "runs" if not spec.compiles else "takes"
        parts.append(f"{done} {', '.join(f'{c} {op}' for op, c in taken.most_common())}")
    if left:
        parts.append(
            "accepts but does not place "
            + ", ".join(
                f"{c} {op} ({why[op]})" if op in why else f"{c} {op}"
                for op, c in left.most_common()
            )
        )
    if refused:
        parts.append(
            "refuses "
            + ", ".join(
                f"{c} {op} ({why[op]})" if op in why else f"{c} {op}"
                for op, c in refused.most_common()
            )
        )
    text = (
        f"this .ort file holds contrib ops from extended optimizations ({ops}); "
        f"{spec.display_name}'s rules: {'; '.join(parts)}"
    )
    if (left or refused) and spec.compiles:
        text += (
            ". A Runtime-style file (.with_runtime_opt.ort) keeps the original ops for the EP "
            "and replays the fusions only on nodes left to the CPU"
        )
    return text


# ORT's own checker matches op types against these lists (onnxruntime/tools/mobile_helpers/).
ORT_CHECKER_LISTS = {
    "nnapi": "nnapi_supported_ops.md",
    "coreml-mlprogram": "coreml_supported_mlprogram_ops.md",
    "coreml-neuralnetwork": "coreml_supported_neuralnetwork_ops.md",
}


@lru_cache(maxsize=8)
def ort_checker_ops(ep: str) -> frozenset[str] | None:
    """Op ids (``domain:op``) in the list ORT's usability checker uses for ``ep``, if shipped.

    The file is found without importing onnxruntime (a quarter of a second, and ``check`` runs
    ORT in a child process: this one never needs it)."""
    import importlib.util

    name = ORT_CHECKER_LISTS.get(ep)
    if name is None:
        return None
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "tools" / "mobile_helpers" / name
    if not path.is_file():
        return None
    ops = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 2 and ":" in cells[1] and not cells[1].startswith("-"):
            ops.add(cells[1])
    return frozenset(ops)


def compare_with_ort_checker(ep: str, nodes: list[NodeResult]) -> list[str]:
    """Where ORT's op-type list and the EP's source disagree on this model, say so."""
    listed = ort_checker_ops(ep)
    if listed is None:
        return []
    notes = []
    # one pass counting nodes per (taken, in the main graph, domain, op): one op id string per
    # op, not one per node
    kinds = Counter((n.supported, n.graph == "main", n.domain, n.op) for n in nodes)
    taken = {(d, o) for ok, _, d, o in kinds if ok}
    taken_unlisted = sorted(f"{d}:{o}" for d, o in taken if f"{d}:{o}" not in listed)
    if taken_unlisted:
        notes.append(
            f"ORT's own checker ({ORT_CHECKER_LISTS[ep]}) does not list "
            f"{', '.join(taken_unlisted)}, which the EP's source takes: ortprep follows the source"
        )
    refused_listed: Counter[str] = Counter()
    for (ok, main, domain, op), count in kinds.items():
        if not ok and main and f"{domain}:{op}" in listed:
            refused_listed[op] += count
    if refused_listed:
        ops = ", ".join(f"{c} {op}" for op, c in refused_listed.most_common(4))
        notes.append(
            f"{sum(refused_listed.values())} node(s) of ops on ORT's checker list are refused by "
            f"conditions its checker does not test ({ops}): see their reasons"
        )
    return notes


def _next_step(
    spec: EpSpec,
    o: Outcome,
    fixed: Outcome | None,
    model: Model,
    fix_command: str | None,
    nodes: Sequence[NodeResult] = (),
) -> str:
    if o.verdict == "yes":
        return f"try {spec.display_name}: it should take most of this model"
    if fixed is not None and fixed.nodes_taken > o.nodes_taken and fix_command:
        return (
            f"fix the dynamic input shapes ({fixed.nodes_taken} nodes, verdict "
            f"{fixed.verdict} when fixed): {fix_command}"
        )
    if (
        model.format == "ort"
        and spec.compiles
        and any(n.domain.startswith("com.microsoft") and n.partition is None for n in nodes)
    ):
        return "ship the Runtime-style file (.with_runtime_opt.ort) and check it again"
    if o.verdict == "maybe":
        return (
            f"measure {spec.display_name} against the CPU EP on the device; "
            "see the top refusal reasons"
        )
    if len(o.partitions) >= 2 and o.nodes_taken * 100 > ORT_MAYBE_ONE * o.nodes_total:
        return (
            f"stay on the CPU EP: {spec.display_name} would split the model into "
            f"{len(o.partitions)} partitions (or rewrite the refused ops that split it, above)"
        )
    return "stay on the CPU EP (or rewrite the refused ops listed above)"


def run(path: Path, options: CheckOptions, progress: ProgressFn = no_progress) -> CheckResult:
    """Check one model for every requested EP."""
    from ortprep.core.inputs import file_kind, open_model
    from ortprep.core.onnx_file import load_checked, runtime_input_types

    if not path.is_file():
        open_model(path)  # the loader's clear message for a missing path or a folder
    is_onnx = file_kind(path) == "onnx"
    # The views and the analysis allocate a few objects per node per EP and free nothing until
    # the end: full collections walking the whole graph would cost more than the analysis.
    with gc_paused(), tempfile.TemporaryDirectory(prefix="ortprep-check-") as tmp:
        work = Path(tmp)
        progress("basic optimizations (ORT)", 0, 1)
        fixed_model = None
        assumed: dict[str, int] = {}
        fix_command = None
        what_if: tuple[dict[str, int], dict[str, tuple[int, ...]]] | None = None
        if is_onnx:
            user_fixed = bool(options.fix_dims or options.fix_inputs)
            # Without fixes to apply, ORT starts on the file at once and the model is validated
            # meanwhile (ORT itself refuses external data outside the model's folder); with
            # fixes, it is validated before it is read to be fixed. Validation errors (exit 2)
            # win either way: ORT's job is stopped.
            jobs = [] if user_fixed else [start_basic(path, work, {}, {})]
            try:
                proto, external_files = load_checked(path)
                inputs = runtime_input_types(proto)
                external = bool(external_files)
                many_nodes = len(proto.graph.node) >= _CHILD_INFERS_NODES
                del proto
                if not jobs or (external and not jobs[0].big):
                    for job in jobs:  # the EPs must see the external data the user ships
                        job.stop()
                    jobs = [start_basic(path, work, options.fix_dims, options.fix_inputs, external)]
                jobs[0].decide(many_nodes)
                # Without the user's fixes the inputs ORT keeps are the source's, so the
                # what-if session (all dims fixed) runs beside the first one, on another core;
                # both at once only for models small enough to hold two sessions.
                small = path.stat().st_size < _PARALLEL_WHAT_IF_BYTES
                beside = options.what_if and small and not user_fixed
                if beside and any(v.dynamic for v in inputs):
                    what_if = what_if_fix(inputs)
                    (work / "what-if").mkdir()
                    jobs.append(start_basic(path, work / "what-if", *what_if, external))
                    jobs[1].decide(many_nodes)
                for ep in options.eps:  # load the rules while ORT works in its process
                    ep_spec(ep)
                model = finish_basic(jobs[0])
                runtime_inputs = model.graph.runtime_inputs
                if options.what_if and not beside and any(v.dynamic for v in runtime_inputs):
                    what_if = what_if_fix(runtime_inputs)
                    (work / "what-if").mkdir()
                    fixes = _with_user_fixes(options, what_if)
                    jobs.append(start_basic(path, work / "what-if", *fixes, external))
                    jobs[1].decide(many_nodes)
                if what_if is not None:
                    fixed_model = finish_basic(jobs[1])
            finally:
                for job in jobs:
                    job.stop()  # a no-op for finished ones; ends ORT when something failed
            analyzed = "basic-optimized"
        else:
            external = False
            if options.fix_dims or options.fix_inputs:
                raise UsageError(
                    "--fix-dim/--fix-input apply to .onnx models",
                    "fix the shapes of the .onnx, then convert it again",
                )
            model = open_model(path)
            inputs = model.graph.runtime_inputs
            analyzed = "ort-file"
        progress("basic optimizations (ORT)", 1, 1)
        if what_if is not None:
            assumed = dict(what_if[0])
            fix_command = fix_shapes_command(path, *_with_user_fixes(options, what_if))
        reports = _reports(model, fixed_model, options, fix_command, progress)
    return CheckResult(str(path), analyzed, inputs, assumed, tuple(reports), fix_command)


def _reports(
    model: Model,
    fixed_model: Model | None,
    options: CheckOptions,
    fix_command: str | None,
    progress: ProgressFn,
) -> list[EpReport]:
    reports = []
    graphs = _graphs(model)
    fixed_graphs = _graphs(fixed_model) if fixed_model else None
    for i, ep in enumerate(options.eps):
        progress("checking EPs", i, len(options.eps))
        outcome, nodes, evals, spec = evaluate(model, ep, options.ep_options, graphs)
        fixed = (
            evaluate(fixed_model, ep, options.ep_options, fixed_graphs)[0] if fixed_model else None
        )
        notes = [
            n
            for n in (
                _contrib_note(model, spec, nodes),
                spec.subgraph_policy if len(graphs) > 1 else None,
            )
            if n
        ]
        notes += compare_with_ort_checker(ep, nodes)
        reports.append(
            EpReport(
                ep=ep,
                ort_source_version=spec.ort_source_version,
                outcome=outcome,
                summary=_summary(spec.display_name, outcome, spec.compiles),
                nodes=tuple(nodes),
                top_reasons=_reason_groups(evals, nodes, spec, outcome),
                notes=tuple(notes),
                next_step=_next_step(spec, outcome, fixed, model, fix_command, nodes),
                if_shapes_fixed=fixed,
                verdict_rule=ORT_RULE if spec.compiles else SHARE_RULE,
            )
        )
    progress("checking EPs", len(options.eps), len(options.eps))
    return reports
