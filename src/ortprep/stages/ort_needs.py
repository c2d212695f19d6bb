"""What an ``.ort`` file needs to run: build kind, session options, ORT versions, level effect.

Facts restated from ``ort-internals.md`` §2.5 (replay gate), §2.6 (does the level matter), §2.8
(format versions), §3.1 (build kinds).
"""

from __future__ import annotations

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
            nodes = [by_index[i].name if i in by_index else f"#{i}"
                     for i in r.node_indices if i is not None]
            fusions.append({"action": r.action_id, "nodes": nodes, "produces": ops})
        result.append({
            "optimizer": optimizer,
            "records": len(records),
            "produces": sorted(produced),
            "fusions": fusions,
        })
    return result


def ort_section(model: Model) -> dict[str, Any]:
    """The ORT-format part of ``inspect``'s result."""
    assert model.ort is not None
    return {
        "ort_format_version": model.ort.format_version,
        "runtime_optimizations": runtime_optimizations(model),
        "needs": needs(model),
    }
