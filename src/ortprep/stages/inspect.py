"""``inspect``: what is inside an ``.onnx`` or ``.ort`` model (configs: :mod:`.opconfig`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ortprep.core.graph import Model, ValueType


@dataclass(frozen=True)
class OpCount:
    domain: str
    op: str
    opset: int | None
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "op": self.op, "opset": self.opset, "count": self.count}


@dataclass(frozen=True)
class SubgraphInfo:
    path: str
    nodes: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "nodes": self.nodes}


@dataclass(frozen=True)
class InspectResult:
    """What a model file holds. ``ort`` carries the ORT-format part (see :mod:`.ort_needs`)."""

    path: str
    format: str
    producer: str
    ir_version: int
    opsets: dict[str, int]
    ops: tuple[OpCount, ...]
    nodes_total: int
    inputs: tuple[ValueType, ...]
    outputs: tuple[ValueType, ...]
    initializer_count: int
    initializer_bytes: int
    external_data_files: tuple[str, ...]
    subgraphs: tuple[SubgraphInfo, ...]
    size_bytes: int
    ort: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "path": self.path,
            "format": self.format,
            "producer": self.producer,
            "ir_version": self.ir_version,
            "opsets": dict(self.opsets),
            "nodes_total": self.nodes_total,
            "ops": [o.to_dict() for o in self.ops],
            "inputs": [v.to_dict() for v in self.inputs],
            "outputs": [v.to_dict() for v in self.outputs],
            "initializers": {"count": self.initializer_count, "bytes": self.initializer_bytes},
            "external_data_files": list(self.external_data_files),
            "subgraphs": [s.to_dict() for s in self.subgraphs],
            "size_bytes": self.size_bytes,
        }
        doc.update(self.ort)
        return doc


def op_histogram(model: Model) -> tuple[OpCount, ...]:
    """Count ops by (domain, op, opset), subgraphs included, most frequent first.

    ``opset`` is the version of the op's schema the node uses (its ``since_version``), the number
    ORT's configs and kernel registrations use: from the file for ``.ort``; from onnx's schemas at
    the model's opset for ``.onnx``, looked up once when the view is built (``None`` for ops onnx
    does not know).
    """
    counts: Counter[tuple[str, str, int | None]] = Counter()
    for _, node in model.all_nodes():
        counts[(node.domain, node.op_type, node.since_version)] += 1
    return tuple(
        OpCount(d, op, v, c)
        for (d, op, v), c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1]))
    )


def _subgraphs(model: Model) -> tuple[SubgraphInfo, ...]:
    return tuple(
        SubgraphInfo(sub.path, len(sub.nodes))
        for _, node in model.all_nodes()
        for sub in node.subgraphs.values()
    )


def inspect_model(model: Model) -> InspectResult:
    """Summarize an opened model."""
    g = model.graph
    inits = list(g.initializers.values())
    for _, node in model.all_nodes():
        for sub in node.subgraphs.values():
            inits.extend(sub.initializers.values())
    ort: dict[str, Any] = {}
    if model.ort is not None:
        from ortprep.stages.ort_needs import ort_section

        ort = ort_section(model)
    return InspectResult(
        path=str(model.path),
        format=model.format,
        producer=model.producer,
        ir_version=model.ir_version,
        opsets=dict(model.opsets),
        ops=op_histogram(model),
        nodes_total=sum(1 for _ in model.all_nodes()),
        inputs=g.runtime_inputs,
        outputs=g.outputs,
        initializer_count=len(inits),
        initializer_bytes=sum(i.nbytes for i in inits),
        external_data_files=model.external_data_files,
        subgraphs=_subgraphs(model),
        size_bytes=model.size_bytes,
        ort=ort,
    )


def run(path: Path) -> Any:
    """Inspect a model (``.onnx``/``.ort``) or a reduced-build config file."""
    from ortprep.core.inputs import file_kind, open_model

    if path.is_file() and file_kind(path) == "config":
        from ortprep.stages.opconfig import inspect_config

        return inspect_config(path)
    return inspect_model(open_model(path))
