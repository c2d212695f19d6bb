"""What ``check`` takes and gives: its options and its results, as plain data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from ortprep.core.graph import ValueType
from ortprep.eps.base import EpOptions
from ortprep.eps.registry import EP_IDS
from ortprep.stages.check.verdict import ORT_RULE


class GateVerdict(Protocol):
    """What a check result keeps of the CI gate's verdict (:class:`ortprep.gate.Gate`, a layer
    above: named here by its shape, so this module imports nothing above it)."""

    @property
    def ok(self) -> bool: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class OrtGraphOptions:
    """How ORT produces the graph the EPs see (its level-1 save of the model).

    - ``free_dims``: ORT's free-dimension overrides by dim name (``SessionOptions.
      add_free_dimension_override_by_name``), applied by ORT to the graph it saves.
    - ``config``: more session config entries (``SessionOptions.add_session_config_entry``).
    - ``compile_only``: save through ORT's compile API where this onnxruntime has one (the same
      graph, without finalizing a session; :func:`ortprep.core.runtime.compile_graph`).
    - ``child_infers_from``: from this many nodes ORT's child infers the saved graph's shapes
      while this process reads its nodes (below, importing onnx in the child costs more than
      inferring here: 0.2 s against a few hundredths). A rule on the model alone, so the same
      model always takes the same path.
    """

    free_dims: Mapping[str, int] = field(default_factory=dict)
    config: Mapping[str, str] = field(default_factory=dict)
    compile_only: bool = True
    child_infers_from: int = 20_000


@dataclass(frozen=True)
class CheckOptions:
    eps: tuple[str, ...] = EP_IDS
    fix_dims: Mapping[str, int] = field(default_factory=dict)
    fix_inputs: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    ep_options: EpOptions = field(default_factory=EpOptions)
    what_if: bool = True
    ort: OrtGraphOptions = field(default_factory=OrtGraphOptions)
    save_analyzed: Path | None = None
    """Also write the analysed graph here: an ``.onnx`` without weight data whose nodes are
    named as the results name them (:mod:`ortprep.core.weightless`), for viewers and overlays."""


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
        return self._document([n.to_dict() for n in self.nodes])

    def json_document(self) -> dict[str, Any]:
        """:meth:`to_dict` for the CLI's JSON: the per-node records already encoded (equal
        text, a fraction of the time: :mod:`ortprep.core.json_records`)."""
        from ortprep.core.json_records import encode_records

        return self._document(encode_records(NodeResult._fields, self.nodes))

    def _document(self, nodes: Any) -> dict[str, Any]:
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
            "nodes": nodes,
            "if_shapes_fixed": None
            if self.if_shapes_fixed is None
            else self.if_shapes_fixed.to_dict(),
        }


@dataclass(frozen=True)
class CheckResult:
    model: str
    analyzed: str
    inputs: tuple[ValueType, ...]
    assumed: Mapping[str, int]
    eps: tuple[EpReport, ...]
    fix_command: str | None = None  # the fix-shapes command for the what-if's dims, if any
    gate: GateVerdict | None = None  # the CI gate's verdict, when requirements were given
    written: tuple[str, ...] = ()  # overlays and annotated copies written for this check
    what_if_refused: str | None = None  # ORT's reason for refusing the what-if's fixed dims
    fix_guesses: str = ""  # which values of fix_command are guesses and how to pass one's own
    thresholds: str = (
        "NNAPI and CoreML verdicts use ORT's thresholds, its suitability() "
        "(usability_checker.py) on the share of nodes taken: 1 partition: over 75% yes, over "
        "50% maybe, else no; 2 partitions: over 75% maybe, else no; 3 or more: no. XNNPACK (no "
        "device copy) has ortprep's own rule: "
        "over 75% of nodes run yes, over 50% maybe, else no"
    )

    @property
    def ok(self) -> bool:
        """False only when a CI gate requirement (``--require``) is not met."""
        return self.gate is None or self.gate.ok

    def to_dict(self) -> dict[str, Any]:
        return self._document([e.to_dict() for e in self.eps])

    def json_document(self) -> dict[str, Any]:
        """:meth:`to_dict` for the CLI's JSON (see :meth:`EpReport.json_document`)."""
        return self._document([e.json_document() for e in self.eps])

    def _document(self, eps: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "model": self.model,
            "ok": self.ok,
            "gate": None if self.gate is None else self.gate.to_dict(),
            "written": list(self.written),
            "analyzed": self.analyzed,
            "inputs": [v.to_dict() for v in self.inputs],
            "what_if_dims": dict(self.assumed),
            "fix_command": self.fix_command,
            "what_if_refused": self.what_if_refused,
            "fix_guesses": self.fix_guesses,
            "thresholds": self.thresholds,
            "eps": eps,
        }
