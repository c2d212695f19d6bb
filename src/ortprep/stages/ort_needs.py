"""What an ``.ort`` file needs to run: build kind, session options, ORT versions, level effect.

Facts restated from ``ort-internals.md`` §2.5 (replay gate), §2.6 (does the level matter), §2.8
(format versions), §3.1 (build kinds).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ortprep.core.graph import Model

# Format version -> which ORT releases load it (docs table + schema README; 1.32 loads 1, 3-6).
FORMAT_LOADERS = {
    "1": "ORT 1.5 to 1.7 (full builds of later releases load it with an update step)",
    "2": "ORT 1.6 and 1.7 (full builds of later releases load it with an update step)",
    "3": "ORT 1.7 (full builds of later releases load it with an update step)",
    "4": "ORT 1.8 to 1.12; full builds of 1.14+ load it with limits (saved optimizations ignored); "
    "minimal builds of 1.13+ refuse it",
    "5": "ORT 1.13 and later (full and minimal builds)",
    "6": "ORT 1.16 (approximately) and later, full and minimal builds; older runtimes refuse it",
}

LEVEL_EFFECT = {
    "full": (
        "the level still matters a little: level 1 never runs on an ORT-format model; extended or "
        "higher replays saved records (only with session.enable_saved_runtime_optimizations=1) "
        "and runs the QDQ cleanup; layout or higher runs the NHWC transformer"
    ),
    "extended-minimal": "as in a full build (the same code path is compiled in)",
    "minimal": "no effect: a minimal build has no optimizer code; the model runs as saved",
}

REPLAY_KEY = "session.enable_saved_runtime_optimizations"


# Target ops of QDQSelectorActionTransformer's fusing actions (ort-internals §2.3,
# qdq_selector_action_transformer.cc); "drop" actions are left out: they produce no kernel.
QDQ_FUSED_TARGETS = frozenset(
    {
        "Conv",
        "MatMul",
        "Gemm",
        "Add",
        "Mul",
        "AveragePool",
        "LeakyRelu",
        "GlobalAveragePool",
        "Sigmoid",
        "Softmax",
        "Concat",
        "Where",
    }
)


def int8_qdq_targets(model: Any) -> Counter[str]:
    """Ops fed by a DequantizeLinear of int8 data and feeding a QuantizeLinear (QDQ targets)."""
    found: Counter[str] = Counter()
    for g, n in model.all_nodes():
        if n.op_type not in QDQ_FUSED_TARGETS:
            continue
        fed = [g.producers.get(v) for v in n.inputs if v]
        int8_in = any(
            p is not None
            and p.op_type == "DequantizeLinear"
            and (g.value_type(p.input(0)) or _NO_TYPE).dtype == "int8"
            for p in fed
        )
        to_q = any(c.op_type == "QuantizeLinear" for v in n.outputs for c in g.consumers.get(v, []))
        if int8_in and to_q:
            found[n.op_type] += 1
    return found


class _NoType:
    dtype = None


_NO_TYPE = _NoType()


def recorded_qdq_targets(converted: Any) -> Counter[str]:
    """Op types of the target nodes of the saved QDQ records."""
    by_index = {n.index: n for n in converted.graph.nodes}
    found: Counter[str] = Counter()
    if converted.ort is None:
        return found
    for rec in converted.ort.runtime_optimizations.get("QDQSelectorActionTransformer", ()):
        if rec.num_inputs < len(rec.node_indices):
            target = by_index.get(rec.node_indices[rec.num_inputs])
            if target is not None:
                found[target.op_type] += 1
    return found


def unrecorded_int8_qdq(model: Model) -> Counter[str]:
    """int8 QDQ groups of an ``.ort`` graph that are neither fused nor covered by a record."""
    return int8_qdq_targets(model) - recorded_qdq_targets(model)


def unrecorded_int8_qdq_note(missing: Counter[str], how: str) -> str:
    """Why int8 QDQ groups got no record (ort-internals §2.3, §2.9; corrected for ORT 1.32).

    With ``session.qdqisint8allowed=0`` (amd64) ORT must rewrite int8 QDQ groups to uint8 first
    (QDQS8ToU8Transformer), a step outside the recordable set, so the groups whose x86 kernels
    need uint8 (Conv, MatMul) get no record. ORT 1.32 still records int8 groups whose kernels
    take int8 (QLinearAdd, QGemm...): ort-internals §2.9 says "no records" for the whole model,
    which the 1.32 binary contradicts.
    """
    groups = ", ".join(f"{c} {op}" for op, c in sorted(missing.items()))
    return (
        f"int8 QDQ groups saved no record ({groups}): {how}, session.qdqisint8allowed=0 makes "
        "ORT rewrite int8 to uint8 first (QDQS8ToU8Transformer), a step that cannot be "
        "recorded; convert with --target-platform arm to save these QDQ fusions"
    )


def _format_int(version: str) -> int | None:
    try:
        return int(version)
    except ValueError:
        return None


def needs(model: Model) -> dict[str, Any]:
    """The ``needs`` section of ``inspect --json`` for an ``.ort`` model."""
    assert model.ort is not None
    info = model.ort
    version = _format_int(info.format_version)
    records = sum(len(r) for r in info.runtime_optimizations.values())
    domains = {n.domain for _, n in model.all_nodes()}
    notes: list[str] = []
    session_options: dict[str, str] = {}
    if version is not None and version < 5:
        build = "full"
        notes.append(
            f"format version {version} predates version 5: minimal builds refuse it and saved "
            "runtime optimizations are ignored; re-convert with a current onnxruntime"
        )
    elif records:
        build = "extended-minimal"
        session_options[REPLAY_KEY] = "1"
        notes.append(
            f"{records} saved runtime optimization record(s) are replayed only by a full or "
            f"extended minimal build, only with {REPLAY_KEY}=1 and graph optimization level "
            "extended or higher; enable replay only for models you trust (a record is an "
            "instruction to rewrite the graph at load). A minimal build runs the file unfused."
        )
    else:
        build = "minimal"
        notes.append("runs on a minimal build whose operator config covers its ops")
    runtime_style = records > 0 or ".with_runtime_opt" in model.path.name
    missing = unrecorded_int8_qdq(model) if runtime_style else Counter()
    if missing:
        notes.append(
            unrecorded_int8_qdq_note(
                missing, "this Runtime-style file was converted with an amd64 target"
            )
        )
    if "com.microsoft" in domains or any(d.startswith("com.microsoft.") for d in domains):
        notes.append("uses com.microsoft contrib ops: the build must not use --disable_contrib_ops")
    if any(d.startswith("ai.onnx.ml") for d in domains):
        notes.append("uses ai.onnx.ml ops: the build must not use --disable_ml_ops")
    if "com.microsoft.nchwc" in domains:
        notes.append(
            "uses NCHWc ops: made for an x86 CPU with the converting machine's vector width "
            "(AVX2/AVX-512); it will not run on ARM"
        )
    return {
        "build": build,
        "session_options": session_options,
        "notes": notes,
        "loadable_by": FORMAT_LOADERS.get(
            info.format_version,
            f"no known ORT release writes format version {info.format_version!r}",
        ),
        "optimization_level_effect": dict(LEVEL_EFFECT),
    }


def runtime_optimizations(model: Model) -> list[dict[str, Any]]:
    """Per optimizer: record count, produced ops, and which nodes each record would fuse."""
    assert model.ort is not None
    by_index = {n.index: n for n in model.graph.nodes}
    result = []
    for optimizer, records in sorted(model.ort.runtime_optimizations.items()):
        produced: set[str] = set()
        fusions = []
        for r in records:
            ops = list(r.produced_ops)
            produced.update(ops)
            nodes = [
                by_index[i].name if i in by_index else f"#{i}"
                for i in r.node_indices
                if i is not None
            ]
            fusions.append({"action": r.action_id, "nodes": nodes, "produces": ops})
        result.append(
            {
                "optimizer": optimizer,
                "records": len(records),
                "produces": sorted(produced),
                "fusions": fusions,
            }
        )
    return result


def ort_section(model: Model) -> dict[str, Any]:
    """The ORT-format part of ``inspect``'s result."""
    assert model.ort is not None
    return {
        "ort_format_version": model.ort.format_version,
        "runtime_optimizations": runtime_optimizations(model),
        "needs": needs(model),
    }
