"""What ``convert`` says about each ``.ort`` file it wrote: the records the Runtime style saved
(and why some could not be), the fusions the Fixed style baked in, files tied to one CPU.

Read from the converted file's graph and the original's op histogram: no weights are needed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ortprep.core.graph import Model


def op_counts(model: Model) -> Counter[str]:
    """``{"ai.onnx:Conv": 12, ...}`` over every node, subgraphs included."""
    return Counter(n.op_id for _, n in model.all_nodes())


def _record_summary(model: Model) -> tuple[dict[str, int], tuple[str, ...]]:
    records: dict[str, int] = {}
    produced: set[str] = set()
    if model.ort is not None:
        for optimizer, recs in model.ort.runtime_optimizations.items():
            records[optimizer] = len(recs)
            for r in recs:
                produced.update(r.produced_ops)
    return records, tuple(sorted(produced))


def why_records_missing(converted: Model, target_platform: str) -> str | None:
    """Explain what the Runtime style could not record (ort-internals §2.3, §2.9).

    With ``session.qdqisint8allowed=0`` (amd64) ORT must rewrite int8 QDQ groups to uint8 first
    (QDQS8ToU8Transformer), a step outside the recordable set, so the groups whose x86 kernels
    need uint8 (Conv, MatMul) get no record. (ORT 1.32 still records int8 groups whose kernels
    take int8, e.g. QLinearAdd and QGemm; ort-internals §2.9 says "no records" for the whole
    model, which the 1.32 binary contradicts.)
    """
    from ortprep.stages.ort_needs import unrecorded_int8_qdq, unrecorded_int8_qdq_note

    saved = converted.ort.runtime_optimizations if converted.ort is not None else {}
    records = sum(len(r) for r in saved.values())
    missing = unrecorded_int8_qdq(converted)
    if missing and target_platform == "amd64":
        return unrecorded_int8_qdq_note(missing, "converted for amd64")
    if records:
        return None
    return (
        "no runtime optimizations were saved: only QDQ node groups, Conv followed by an "
        "activation, and DequantizeLinear(int4)+MatMul can be recorded, and none of them occurs "
        "in this model after the basic optimizations"
    )


@dataclass(frozen=True)
class OrtNotes:
    """What one ``.ort`` file holds, in numbers and words."""

    nodes: int
    records: dict[str, int]
    fused: dict[str, int]
    produced: tuple[str, ...]
    notes: tuple[str, ...]
    warnings: tuple[str, ...]


def explain_ort(
    style: str, before: Mapping[str, int], converted: Model, target_platform: str
) -> OrtNotes:
    """Explain ``converted`` (a ``style`` file) against ``before``, the original's op counts."""
    after = op_counts(converted)
    fused = {op: c for op, c in after.items() if op not in before}
    records, produced = _record_summary(converted)
    notes: list[str] = []
    warnings: list[str] = []
    if style == "runtime":
        if records:
            parts = ", ".join(f"{n} {k}" for k, n in sorted(records.items()))
            notes.append(
                f"saved runtime optimization records: {parts}; replayed only when the session sets "
                "session.enable_saved_runtime_optimizations=1 at level extended or higher "
                "(trusted models only)"
            )
        missing = why_records_missing(converted, target_platform)
        if missing:
            notes.append(missing)
    elif fused:
        notes.append("baked in: " + ", ".join(f"{c} {op}" for op, c in sorted(fused.items())))
    if any(op.startswith("com.microsoft.nchwc:") for op in after):
        warnings.append(
            "contains NCHWc ops (com.microsoft.nchwc): tied to the vector width of the CPU that "
            "converted it (AVX2/AVX-512); use --target-platform arm for a portable file"
        )
    return OrtNotes(sum(after.values()), records, fused, produced, tuple(notes), tuple(warnings))
