"""The words of ``check``: refusals grouped by rule, each EP's summary, notes and next step,
and where ORT's own checker would say otherwise."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from ortprep.core.graph import Model
from ortprep.eps.base import EpSpec
from ortprep.stages.check.engine import Evaluation, GraphEval, generic_reason, if_supported
from ortprep.stages.check.results import EpReport, NodeResult, Outcome, ReasonGroup
from ortprep.stages.check.verdict import ORT_MAYBE_ONE, ORT_RULE, SHARE_RULE


def explain(found: Evaluation, model: Model, fix_command: str | None, subgraphs: bool) -> EpReport:
    """One EP's report: ``found`` on ``model`` (``subgraphs``: whether it has any) in words."""
    spec, outcome = found.spec, found.outcome
    notes = [
        n
        for n in (
            _contrib_note(model, spec, found.nodes),
            spec.subgraph_policy if subgraphs else None,
        )
        if n
    ]
    notes += compare_with_ort_checker(found.ep, found.nodes)
    return EpReport(
        ep=found.ep,
        ort_source_version=spec.ort_source_version,
        outcome=outcome,
        summary=_summary(spec.display_name, outcome, spec.compiles),
        nodes=tuple(found.nodes),
        top_reasons=_reason_groups(found.graphs, found.nodes, spec, outcome),
        notes=tuple(notes),
        next_step=_next_step(spec, outcome, found.if_shapes_fixed, model, fix_command, found.nodes),
        if_shapes_fixed=found.if_shapes_fixed,
        verdict_rule=ORT_RULE if spec.compiles else SHARE_RULE,
    )


def _reason_groups(
    evals: list[GraphEval], nodes: list[NodeResult], spec: EpSpec, outcome: Outcome, limit: int = 5
) -> tuple[ReasonGroup, ...]:
    """Refusals grouped by rule (value names taken out), ranked by what supporting them gains:
    more nodes taken first, then fewer partitions."""
    groups: Counter[str] = Counter()
    members: dict[str, list[tuple[str, int]]] = {}
    ops: dict[str, Counter[str]] = {}
    # Counted per (reason, op) pair first (Counter counts in C), then per rule: there are far
    # fewer distinct reasons than refused nodes (50,000 nodes, one reason, on a long chain).
    pairs = Counter((n.reason, n.op) for n in nodes if not n.supported and n.reason)
    for (reason, op), count in pairs.items():
        key = generic_reason(reason)
        groups[key] += count
        by_op = ops.get(key)
        if by_op is None:  # reasons naming values are distinct per node: built once per rule
            by_op = ops[key] = Counter()
            members[key] = []
        by_op[op] += count
        members[key].append((reason, count))
    ranked = []
    for generic, count in groups.most_common(limit + 2):  # each what-if re-partitions
        if spec.compiles:
            taken, parts = if_supported(evals, spec, generic)
        else:  # static per-node kernels: accepting a node simply adds it, nothing merges
            taken, parts = outcome.nodes_taken + count, len(outcome.partitions)
        reason = named_reason(generic, members[generic])
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


_QUOTED = re.compile(r"'[^']*'")


def named_reason(generic: str, members: Sequence[tuple[str, int]], shown: int = 3) -> str:
    """The group's reason with the real names put back in place of ``'…'``: per quoted slot the
    values its nodes name, most frequent first (``input 'x', 'c1' or 4 others has dynamic
    dimension 'N', 'H' or 'W'``), so no sentence a person reads says ``'…'``."""
    if len(members) == 1:
        return members[0][0]
    slots: list[Counter[str]] = []
    for reason, count in members:
        for i, value in enumerate(_QUOTED.findall(reason)):
            if i == len(slots):
                slots.append(Counter())
            slots[i][value] += count
    words = []
    for slot in slots:
        values = [_short(v) for v, _ in slot.most_common()]
        if len(values) == 1:
            words.append(values[0])
        elif len(values) <= shown:
            words.append(f"{', '.join(values[:-1])} or {values[-1]}")
        else:
            rest = len(values) - shown
            words.append(f"{', '.join(values[:shown])} or {rest} other{'s' if rest > 1 else ''}")
    filled = iter(words)
    return _QUOTED.sub(lambda m: next(filled, m.group(0)), generic)


def _short(quoted: str, limit: int = 48) -> str:
    """A quoted value cut to ``limit`` characters (ORT's inferred dims can be whole formulas)."""
    return quoted if len(quoted) <= limit else f"{quoted[: limit - 2]}…'"


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
