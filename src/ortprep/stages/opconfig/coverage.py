"""``config check``: will these models run on a build made from this config?"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ortprep.core.errors import OrtprepError
from ortprep.core.progress import ProgressFn, no_progress
from ortprep.core.runtime import ort_version
from ortprep.stages.opconfig.build import check_options
from ortprep.stages.opconfig.from_ort import OrtNeeds, model_needs, model_paths
from ortprep.stages.opconfig.model import (
    ConfigError,
    OpConfig,
    OpTypes,
    format_config,
    read_config,
)

# Which registration ranges serve which node. ORT's build excludes a kernel registration for
# opsets [start, end] unless the config lists the op at some opset in [start, end]
# (tools/ci_build/exclude_unused_ops_and_types.py). A node with since_version s runs on the
# registration whose range holds s. So a node is covered when some listed opset o and s fall in
# the same registration range. The ranges come from the installed onnxruntime's own CPU kernel
# table (get_all_opkernel_def): the registrations the build script filters
# (cpu_execution_provider.cc, cpu_contrib_kernels.cc; op_registration_utils.py), for the release
# the docs tell you to build from. They are coarser than schema versions at times (Cast 6-12
# serves schemas 6 and 9), which a schema-only rule would get wrong.
# Ops without a CPU kernel for that version (custom ops, other EPs' ops) fall back to schema
# versions: for ai.onnx and ai.onnx.ml, onnx.defs.get_schema(op, o, domain).since_version == s;
# for other domains the same with ORT's schema registry; with no schema at all, o == s.


@lru_cache(maxsize=1)
def _cpu_kernel_ranges() -> dict[tuple[str, str], tuple[tuple[int, int, int], ...]]:
    """(domain, op) -> ((start, end, registrations in that range), ...) on the CPU EP."""
    from onnxruntime.capi import _pybind_state as capi

    counts: dict[tuple[str, str, int, int], int] = {}
    for k in capi.get_all_opkernel_def():
        if k.provider != "CPUExecutionProvider":
            continue
        start, end = k.version_range
        key = (k.domain or "ai.onnx", k.op_name, int(start), int(end))
        counts[key] = counts.get(key, 0) + 1
    table: dict[tuple[str, str], list[tuple[int, int, int]]] = {}
    for (domain, op, start, end), n in counts.items():
        table.setdefault((domain, op), []).append((start, end, n))
    return {k: tuple(sorted(v)) for k, v in table.items()}


@lru_cache(maxsize=1)
def _ort_schema_versions() -> dict[tuple[str, str], tuple[int, ...]]:
    from onnxruntime.capi import _pybind_state as capi

    table: dict[tuple[str, str], set[int]] = {}
    for s in capi.get_all_operator_schema():
        table.setdefault((s.domain or "ai.onnx", s.name), set()).add(int(s.since_version))
    return {k: tuple(sorted(v)) for k, v in table.items()}


def _schema_since(domain: str, op: str, opset: int) -> int | None:
    """The since_version of the schema ``op`` resolves to at ``opset`` (None: unknown op)."""
    if domain in ("ai.onnx", "ai.onnx.ml"):
        import onnx.defs

        try:
            d = "" if domain == "ai.onnx" else domain
            return int(onnx.defs.get_schema(op, opset, d).since_version)
        except Exception:  # noqa: BLE001 -- unknown op, or no version at that opset
            return None
    versions = [v for v in _ort_schema_versions().get((domain, op), ()) if v <= opset]
    return versions[-1] if versions else None


def _covers(domain: str, op: str, since: int, listed: Iterable[int]) -> bool:
    """Whether a listed opset keeps the kernel a node with ``since`` needs (rule above)."""
    listed = tuple(listed)
    ranges = [(a, b) for a, b, _ in _cpu_kernel_ranges().get((domain, op), ()) if a <= since <= b]
    if ranges:
        return any(a <= o <= b for a, b in ranges for o in listed)
    return any(o == since or _schema_since(domain, op, o) == since for o in listed)


def _typed_registrations(domain: str, op: str, since: int) -> bool:
    """Whether the CPU kernel for this version is registered once per type (typed registration)."""
    return any(a <= since <= b and n > 1 for a, b, n in _cpu_kernel_ranges().get((domain, op), ()))


def _kernel_range(domain: str, op: str, since: int) -> tuple[int, int] | None:
    for a, b, _ in _cpu_kernel_ranges().get((domain, op), ()):
        if a <= since <= b:
            return a, b
    return None


@dataclass(frozen=True)
class MissingOp:
    """An op (at the version a model needs) that a build from the config would not have."""

    domain: str
    op: str
    opset: int
    listed_opsets: tuple[int, ...]
    reason: str
    replay: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "op": self.op,
            "opset": self.opset,
            "listed_opsets": list(self.listed_opsets),
            "replay": self.replay,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class MissingType:
    """A type an op of a model uses that a type-reduced build from the config would drop."""

    domain: str
    op: str
    kind: str  # "input", "output" or "types" (OneHot's type triple)
    index: int | None
    type: str
    allowed: tuple[str, ...]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "op": self.op,
            "kind": self.kind,
            "index": self.index,
            "type": self.type,
            "allowed": list(self.allowed),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ModelCoverage:
    """Whether one model runs on a build from the config, and what it lacks if not."""

    path: str
    analysed: tuple[str, ...] = ()
    ops_checked: int = 0
    missing_ops: tuple[MissingOp, ...] = ()
    missing_types: tuple[MissingType, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.missing_ops and not self.missing_types

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.path,
            "ok": self.ok,
            "analysed": list(self.analysed),
            "ops_checked": self.ops_checked,
            "missing_ops": [m.to_dict() for m in self.missing_ops],
            "missing_types": [m.to_dict() for m in self.missing_types],
            "error": self.error,
        }


@dataclass(frozen=True)
class CoverageResult:
    """``config check``: per model, whether a build from the config runs it."""

    config: str
    kind: str
    style: str
    target_platform: str
    models: tuple[ModelCoverage, ...]
    onnxruntime_version: str

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.models)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "kind": self.kind,
            "style": self.style,
            "target_platform": self.target_platform,
            "onnxruntime_version": self.onnxruntime_version,
            "ok": self.ok,
            "models": [m.to_dict() for m in self.models],
        }


def _ort_reading(cfg: OpConfig) -> tuple[dict | None, Any]:
    """``(required_ops, type_filter)`` exactly as ORT's build scripts read ``cfg``."""
    from onnxruntime.tools.reduced_build_config_parser import parse_config as ort_parse_config

    with tempfile.TemporaryDirectory(prefix="ortprep-check-") as tmp:
        path = Path(tmp) / "ops.config"
        path.write_text(format_config(cfg), encoding="utf-8")
        try:
            return ort_parse_config(str(path), enable_type_reduction=True)
        except Exception as exc:  # noqa: BLE001 -- ORT's parser raises plain errors
            raise ConfigError(f"ORT's config parser rejects this config: {exc}") from None


def _reg(type_str: str) -> str:
    """C++ type name as written in a kernel registration (``std::string`` is ``string``)."""
    return "string" if type_str == "std::string" else type_str


# The index whose type keys an op's typed kernel registrations (operator_type_usage_processors.py:
# input 0 by default); other tracked indices are restricted through per-arg allowed-type lists.
_PRIMARY = {
    ("ai.onnx", "Where"): ("inputs", 1),
    ("ai.onnx", "QuantizeLinear"): ("outputs", 0),
    ("ai.onnx", "DynamicQuantizeLinear"): ("outputs", 0),
}


def _needed(type_filter: Any, domain: str, op: str, registration: str) -> bool:
    try:
        return bool(type_filter.is_typed_registration_needed(domain, op, registration))
    except Exception:  # noqa: BLE001 -- ORT's processor cannot judge this registration
        return False


def _type_gaps(
    cfg: OpConfig,
    type_filter: Any,
    domain: str,
    op: str,
    since: int,
    used: OpTypes | None,
    first_inputs: frozenset[str],
) -> list[MissingType]:
    """Types ``op`` uses that the config's type info would drop (ORT's filter semantics)."""
    global_ = cfg.globally_allowed_types
    listed = None if global_ is not None else cfg.effective_types(domain, op)
    if global_ is None and listed is None:
        return []  # no type info for this op: ORT keeps all its types
    allowed_note = (
        "the globally allowed types"
        if global_ is not None
        else "the config's type list for this op"
    )
    gaps: list[MissingType] = []
    if used is None:
        # No type processor for this op: only globally allowed types restrict it, through its
        # typed registrations (keyed by the first input's type).
        if global_ is not None and _typed_registrations(domain, op, since):
            gaps.extend(
                MissingType(
                    domain,
                    op,
                    "input",
                    0,
                    t,
                    tuple(global_),
                    f"{op} input 0 is {t}, not among {allowed_note}",
                )
                for t in sorted(first_inputs)
                if not _needed(type_filter, domain, op, _reg(t))
            )
        return gaps
    primary = _PRIMARY.get((domain, op), ("inputs", 0))
    typed = _typed_registrations(domain, op, since)
    for kind, groups in (("inputs", used.inputs), ("outputs", used.outputs)):
        for index, types in groups:
            restricted = (
                global_
                if global_ is not None
                else (listed.types_at(kind, index) if listed is not None else None)
            )
            if (kind, index) == primary and typed:
                # Typed registrations: ORT's filter decides, always-kept types included
                # (int32_t/int64_t for Add, int8_t/uint8_t/int32_t for DequantizeLinear).
                bad = [t for t in types if not _needed(type_filter, domain, op, _reg(t))]
            elif restricted is None:
                continue  # index not restricted by the config
            else:
                # One registration for all types: the per-arg (or global) allowed-type lists the
                # build writes into op_kernel_type_control_overrides.inc restrict it.
                bad = [t for t in types if t not in restricted]
            gaps.extend(
                MissingType(
                    domain,
                    op,
                    kind[:-1],
                    index,
                    t,
                    tuple(restricted or ()),
                    f"{op} {kind[:-1]} {index} is {t}, not among {allowed_note}",
                )
                for t in bad
            )
    for triple in used.custom:
        registration = "_".join(_reg(t) for t in triple)
        if not _needed(type_filter, domain, op, registration):
            allowed_triples = tuple("/".join(t) for t in (listed.custom if listed else ()))
            gaps.append(
                MissingType(
                    domain,
                    op,
                    "types",
                    None,
                    "/".join(triple),
                    tuple(global_) if global_ is not None else allowed_triples,
                    f"{op} uses the type combination {'/'.join(triple)}, not among {allowed_note}",
                )
            )
    return gaps


def _coverage_of(
    cfg: OpConfig,
    required: dict | None,
    type_filter: Any,
    needs: OrtNeeds,
    path: str,
    analysed: tuple[str, ...],
) -> ModelCoverage:
    missing_ops: list[MissingOp] = []
    missing_types: list[MissingType] = []
    wanted = {(e.domain, e.op, e.opset): False for e in needs.config.entries}
    for d, o, v in needs.replay_ops:
        wanted.setdefault((d, o, v), True)
    for (domain, op, since), replay in sorted(wanted.items()):
        if required is not None:
            listed = tuple(sorted(v for v, ops in required.get(domain, {}).items() if op in ops))
            if not _covers(domain, op, since, listed):
                missing_ops.append(
                    MissingOp(
                        domain,
                        op,
                        since,
                        listed,
                        _missing_reason(domain, op, since, listed, replay),
                        replay,
                    )
                )
                continue
        if type_filter is not None and not replay:
            missing_types.extend(
                _type_gaps(
                    cfg,
                    type_filter,
                    domain,
                    op,
                    since,
                    needs.config.effective_types(domain, op),
                    needs.first_input_types.get((domain, op), frozenset()),
                )
            )
    unique_types = tuple(dict.fromkeys(missing_types))
    return ModelCoverage(path, analysed, len(wanted), tuple(missing_ops), unique_types)


def _missing_reason(domain: str, op: str, since: int, listed: tuple[int, ...], replay: bool) -> str:
    """Why the op is missing, in plain words (the op itself is named by the caller)."""
    why = (
        (
            "produced when the model's saved runtime optimizations are replayed "
            "(session.enable_saved_runtime_optimizations=1); "
        )
        if replay
        else ""
    )
    if not listed:
        return f"{why}not in the config"
    at = ", ".join(str(v) for v in listed)
    span = _kernel_range(domain, op, since)
    if span is None:
        serves = f"no listed opset resolves to the version-{since} schema"
    elif span[1] >= 2**31 - 1:
        serves = f"ORT's kernel for opset {since} is registered for opset {span[0]} and later"
    elif span[0] == span[1]:
        serves = f"ORT's kernel for opset {since} is registered for opset {span[0]} only"
    else:
        serves = f"ORT's kernel for opset {since} is registered for opsets {span[0]}-{span[1]}"
    return f"{why}the config lists {op} only at opset {at}; {serves}"


def check_coverage(
    config: OpConfig,
    models: Sequence[Path],
    *,
    style: str = "fixed",
    target_platform: str = "arm",
    config_name: str = "config",
    progress: ProgressFn | None = None,
) -> CoverageResult:
    """Will each model run on a build made from ``config``?

    Ops: per node (domain, op, since_version) against the kernel registration ranges (comment
    above ``_cpu_kernel_ranges``). Types (type-reduced configs): the types ORT's own type usage
    processors find in the model's ``.ort`` form, judged by the filter ORT's build script uses
    (``is_typed_registration_needed``). ``.onnx`` models are converted with ``style`` and
    ``target_platform`` first, like ``config build`` does; ``.ort`` models are read as they are,
    and ops their saved runtime optimizations produce on replay count as needed too.
    """
    check_options(style, target_platform)
    progress = progress or no_progress
    required, type_filter = _ort_reading(config)
    results: list[ModelCoverage] = []
    with tempfile.TemporaryDirectory(prefix="ortprep-check-") as tmp:
        for done, model in enumerate(models):
            progress("checking models", done, len(models))
            try:
                needs, analysed = model_needs(
                    model, Path(tmp), style, target_platform, type_reduction=True, replay=True
                )
            except OrtprepError as exc:
                if len(models) == 1:
                    raise
                results.append(ModelCoverage(str(model), error=exc.message))
                continue
            results.append(_coverage_of(config, required, type_filter, needs, str(model), analysed))
        progress("checking models", len(models), len(models))
    return CoverageResult(
        config_name, config.kind, style, target_platform, tuple(results), ort_version()
    )


def run_check(
    config_path: Path,
    paths: Sequence[Path],
    *,
    style: str = "fixed",
    target_platform: str = "arm",
    example: bool = False,
    progress: ProgressFn | None = None,
) -> CoverageResult:
    """``config check``: read the config, find the models, check each."""
    cfg = read_config(config_path)
    models = model_paths(paths, example)
    return check_coverage(
        cfg,
        models,
        style=style,
        target_platform=target_platform,
        config_name=str(config_path),
        progress=progress,
    )
