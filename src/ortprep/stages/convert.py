"""``convert``: ONNX -> ORT format in the Fixed and Runtime styles, configs, verification.

Each model is opened and validated once, then converted by ORT itself through session options
(ort-internals §2.7, §4): Fixed = every optimization of the level baked in; Runtime = level 1
baked in, the recordable fusions saved as records (``optimization.minimal_build_optimizations=
save``). For a Runtime config ORT's converter also converts in ``apply`` mode and builds the config
from both files; we do the same in a private temporary folder.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import threading
from collections import Counter, deque
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ortprep.core.batch import Failure, FailureFields, attempt
from ortprep.core.errors import BadModelError, UsageError
from ortprep.core.inputs import ModelInput
from ortprep.core.progress import ProgressFn, no_progress
from ortprep.core.runtime import LEVELS, PLATFORMS, SessionRecipe
from ortprep.stages.ort_artifacts import ort_recipe, suffix, write_with_ort
from ortprep.stages.verify import Reference, VerifyResult

if TYPE_CHECKING:
    from ortprep.core.graph import Model
    from ortprep.stages.opconfig import OpConfig

STYLES = ("fixed", "runtime")


@dataclass(frozen=True)
class ConvertOptions:
    styles: tuple[str, ...] = STYLES
    level: str = "all"
    target_platform: str = "arm"
    type_reduction: bool = False
    save_optimized_onnx: bool = False
    custom_op_library: Path | None = None
    verify: bool = True
    fix_dims: Mapping[str, int] = field(default_factory=dict)
    inputs: Path | None = None

    def validate(self) -> None:
        for s in self.styles:
            if s not in STYLES:
                raise UsageError(f"unknown style {s!r}", "use fixed, runtime or both")
        if self.level not in LEVELS or self.level == "disable":
            raise UsageError(f"unknown level {self.level!r}", "use basic, extended, layout or all")
        if self.target_platform not in PLATFORMS:
            raise UsageError(
                f"unknown target platform {self.target_platform!r}", "use arm or amd64"
            )
        if self.custom_op_library is not None and not self.custom_op_library.is_file():
            raise UsageError(f"{self.custom_op_library}: custom op library not found")


@dataclass(frozen=True)
class Artifact:
    """One file ``convert`` wrote, with what it holds and whether it was verified."""

    kind: str  # "ort" | "optimized-onnx"
    style: str
    path: str
    size_bytes: int
    nodes: int | None = None
    records: Mapping[str, int] = field(default_factory=dict)
    produced_ops: tuple[str, ...] = ()
    fused_ops: Mapping[str, int] = field(default_factory=dict)
    verified: bool | None = None
    verification: tuple[VerifyResult, ...] = ()
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.verified is not False

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "style": self.style,
            "path": self.path,
            "size_bytes": self.size_bytes,
            "nodes": self.nodes,
            "runtime_optimization_records": dict(self.records),
            "records_produce": list(self.produced_ops),
            "fused_ops": dict(self.fused_ops),
            "verified": self.verified,
            "verification": [v.to_dict() for v in self.verification],
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class ModelResult(FailureFields):
    input: str
    artifacts: tuple[Artifact, ...] = ()
    failure: Failure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and all(a.ok for a in self.artifacts)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "input": self.input,
            "ok": self.ok,
            "artifacts": [a.to_dict() for a in self.artifacts],
        }
        if self.error:
            d["error"] = self.error
            if self.hint:
                d["hint"] = self.hint
        return d


@dataclass(frozen=True)
class ConvertResult:
    models: tuple[ModelResult, ...]
    configs: tuple[str, ...]
    options: ConvertOptions
    onnxruntime_version: str

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.models)

    @property
    def internal_error(self) -> bool:
        return any(m.internal_error for m in self.models)

    @property
    def tracebacks(self) -> tuple[str, ...]:
        return tuple(m.failure.traceback for m in self.models if m.failure and m.failure.traceback)

    def to_dict(self) -> dict[str, Any]:
        o = self.options
        return {
            "ok": self.ok,
            "onnxruntime_version": self.onnxruntime_version,
            "options": {
                "styles": list(o.styles),
                "level": o.level,
                "target_platform": o.target_platform,
                "type_reduction": o.type_reduction,
                "save_optimized_onnx": o.save_optimized_onnx,
                "verify": o.verify,
                "fix_dims": dict(o.fix_dims),
            },
            "models": [m.to_dict() for m in self.models],
            "configs": list(self.configs),
        }


# --------------------------------------------------------------------------- explanations


def _op_counts(model: Model) -> Counter[str]:
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


def why_records_missing(source: Model, converted: Model, target_platform: str) -> str | None:
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


def _explain_ort(
    style: str, source: Model, converted: Model, target_platform: str
) -> tuple[dict[str, int], dict[str, int], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    before = _op_counts(source)
    after = _op_counts(converted)
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
        missing = why_records_missing(source, converted, target_platform)
        if missing:
            notes.append(missing)
    elif fused:
        notes.append("baked in: " + ", ".join(f"{c} {op}" for op, c in sorted(fused.items())))
    if any(op.startswith("com.microsoft.nchwc:") for op in after):
        warnings.append(
            "contains NCHWc ops (com.microsoft.nchwc): tied to the vector width of the CPU that "
            "converted it (AVX2/AVX-512); use --target-platform arm for a portable file"
        )
    return records, fused, produced, tuple(notes), tuple(warnings)


# --------------------------------------------------------------------------- the stage


def _out_path(out_dir: Path, item: ModelInput, ext_suffix: str) -> Path:
    rel = item.relative
    return (
        out_dir
        / rel.parent
        / f"{rel.name[: -len(rel.suffix)] if rel.suffix else rel.name}{ext_suffix}"
    )


def _verify_artifact(
    item: ModelInput,
    path: Path,
    style: str,
    reference: Reference,
    options: ConvertOptions,
) -> tuple[VerifyResult, ...]:
    """Load ``path`` the way a user will and compare its outputs with the original's in the
    configuration the file stands for (stages/verify.py: like with like).

    A Runtime-style ``.ort`` is loaded twice, at level extended: without replay (ORT's default;
    an ``.ort`` is not optimized again at load, so it runs its level-1 graph) and with
    ``session.enable_saved_runtime_optimizations=1`` (the recorded fusions, up to extended).
    """
    from ortprep.stages.verify import RefConfig

    tp = options.target_platform
    replayed = "extended" if options.level in ("extended", "layout", "all") else "basic"

    def recipe(level: str, replay: bool = False) -> SessionRecipe:
        return SessionRecipe(
            level=level,
            replay_saved=replay,
            free_dims=options.fix_dims,
            custom_op_library=options.custom_op_library,
        )

    if style == "runtime" and path.suffix == ".ort":
        sessions = [
            ("without replay", recipe("extended"), RefConfig("basic", tp)),
            (
                "with replay (session.enable_saved_runtime_optimizations=1)",
                recipe("extended", replay=True),
                RefConfig(replayed, tp),
            ),
        ]
    else:
        sessions = [("default session", recipe("all"), RefConfig(options.level, tp))]
    return tuple(
        reference.check(path, session, label, config=config) for label, session, config in sessions
    )


@dataclass(frozen=True)
class _Save:
    """One file ORT writes for a model: an artifact, or the ``apply``-mode file for a config."""

    style: str
    kind: str  # "ort" | "apply" | "optimized-onnx"
    target: Path
    recipe: SessionRecipe


@dataclass
class _Planned:
    """A validated model whose files are being written by ORT in the background."""

    item: ModelInput
    source: Model | None = None
    big: bool = False
    saves: list[_Save] = field(default_factory=list)
    futures: list[Future[None]] = field(default_factory=list)
    failure: Failure | None = None


# Models this big are converted one session at a time (two at once would double the memory).
_BIG_MODEL_BYTES = 512 << 20
# Models validated and queued for ORT beyond the one being finished, so ORT's lanes never wait.
_AHEAD = 2


def _saves(item: ModelInput, out_dir: Path, options: ConvertOptions, workdir: Path) -> list[_Save]:
    """Every file ORT writes for ``item``, in the order a user reads them."""
    saves = []
    for style in options.styles:
        recipe = ort_recipe(
            style,
            options.level,
            options.target_platform,
            custom_op_library=options.custom_op_library,
            free_dims=options.fix_dims,
        )
        if options.save_optimized_onnx:  # the ONNX twin: what the Runtime style runs, applied
            onnx_target = _out_path(out_dir, item, suffix(options.level, style, ".optimized.onnx"))
            onnx_recipe = dataclasses.replace(
                recipe,
                save_format="ONNX",
                minimal_build_optimizations="apply" if style == "runtime" else None,
            )
            saves.append(_Save(style, "optimized-onnx", onnx_target, onnx_recipe))
        target = _out_path(out_dir, item, suffix(options.level, style, ".ort"))
        saves.append(_Save(style, "ort", target, recipe))
        if style == "runtime":  # its config also needs the ops of the fusions applied
            applied = Path(tempfile.mkdtemp(dir=workdir)) / "model.apply.ort"
            apply = ort_recipe(
                "fixed",
                options.level,
                options.target_platform,
                "apply",
                options.custom_op_library,
                options.fix_dims,
            )
            saves.append(_Save(style, "apply", applied, apply))
    return saves


def _check_user_inputs(source: Any, path: Path, options: ConvertOptions) -> None:
    """``--fix-dim`` names and the ``--inputs`` file must fit the model: checked before ORT
    writes anything (the file's array headers only; the arrays are read for verification)."""
    from ortprep.core.feeds import check_inputs_file, graph_inputs
    from ortprep.stages.fix_shapes import check_fix_dims

    runtime_inputs = source.graph.runtime_inputs
    check_fix_dims(options.fix_dims, runtime_inputs, path)
    if options.inputs is not None and options.verify:
        check_inputs_file(options.inputs, graph_inputs(runtime_inputs), path)


def _plan(
    item: ModelInput,
    out_dir: Path,
    options: ConvertOptions,
    workdir: Path,
    pool: ThreadPoolExecutor,
    one_big_at_a_time: threading.Lock,
) -> _Planned:
    """Validate ``item`` (here, once) and hand its conversions to ORT in the background."""
    from ortprep.core.inputs import open_model

    def open_onnx() -> Model:
        source = open_model(item.path)
        if source.format != "onnx":
            raise BadModelError(f"{item.path}: convert takes ONNX models, this is {source.format}")
        _check_user_inputs(source, item.path, options)
        return source

    planned = _Planned(item)
    opened = attempt(open_onnx)
    if isinstance(opened, Failure):
        planned.failure = opened
        return planned
    planned.source = opened
    planned.saves = _saves(item, out_dir, options, workdir)
    big = planned.big = planned.source.size_bytes > _BIG_MODEL_BYTES

    def save(job: _Save) -> None:
        if big:
            with one_big_at_a_time:
                write_with_ort(item.path, job.target, job.recipe)
        else:
            write_with_ort(item.path, job.target, job.recipe)

    planned.futures = [pool.submit(save, job) for job in planned.saves]
    return planned


def _finish(
    planned: _Planned, options: ConvertOptions
) -> tuple[ModelResult, dict[str, list[OpConfig]]]:
    """Wait for ``planned``'s files; summarize, verify and take the config of each (each
    ``.ort`` is read once). A failing model becomes a result with its ``failure``; the files it
    wrote wait for every conversion first, so nothing is written once its result is out."""
    source = planned.source
    if planned.failure is not None or source is None:
        return ModelResult(str(planned.item.path), failure=planned.failure), {}
    for f in planned.futures:
        f.exception()  # waits for all: no stray writes after a failure
    finished = attempt(lambda: _finish_model(planned, source, options))
    if isinstance(finished, Failure):
        for job in planned.saves:  # a failed model leaves nothing in OUT (its config has none)
            job.target.unlink(missing_ok=True)
        return ModelResult(str(planned.item.path), failure=finished), {}
    return finished


def _finish_model(
    planned: _Planned, source: Model, options: ConvertOptions
) -> tuple[ModelResult, dict[str, list[OpConfig]]]:
    from ortprep.core.ort import read_ort
    from ortprep.stages.opconfig import config_of_model

    item = planned.item
    for f in planned.futures:
        exc = f.exception()
        if exc is not None:
            raise exc
    reference = None
    if options.verify:
        from ortprep.stages.verify import make_reference

        hint = "give --inputs or --fix-dim, or skip verification with --no-verify"
        reference = make_reference(
            item.path,
            source,
            options.inputs,
            options.fix_dims,
            hint,
            options.custom_op_library,
        )
    artifacts: list[Artifact] = []
    configs: dict[str, list[OpConfig]] = {s: [] for s in options.styles}
    for job in planned.saves:
        target = job.target
        if job.kind == "apply":
            configs[job.style].append(
                config_of_model(read_ort(target, verify=False), options.type_reduction)
            )
            continue
        if job.kind == "optimized-onnx":
            verification = (
                _verify_artifact(item, target, "fixed", reference, options)
                if reference is not None
                else ()
            )
            artifacts.append(
                Artifact(
                    "optimized-onnx",
                    job.style,
                    str(target),
                    target.stat().st_size,
                    verified=all(v.passed for v in verification) if verification else None,
                    verification=verification,
                )
            )
            continue
        converted = read_ort(target, verify=False)  # ORT wrote it just now
        configs[job.style].append(config_of_model(converted, options.type_reduction))
        records, fused, produced, notes, warnings = _explain_ort(
            job.style, source, converted, options.target_platform
        )
        verification = (
            _verify_artifact(item, target, job.style, reference, options)
            if reference is not None
            else ()
        )
        artifacts.append(
            Artifact(
                "ort",
                job.style,
                str(target),
                target.stat().st_size,
                nodes=sum(1 for _ in converted.all_nodes()),
                records=records,
                produced_ops=produced,
                fused_ops=fused,
                verified=all(v.passed for v in verification) if verification else None,
                verification=verification,
                notes=notes,
                warnings=warnings,
            )
        )
    return ModelResult(str(item.path), tuple(artifacts)), configs


def run(
    inputs: list[ModelInput],
    out_dir: Path,
    options: ConvertOptions,
    progress: ProgressFn = no_progress,
    folder_input: bool = False,
) -> ConvertResult:
    """Convert every model; write configs; one failing model never loses the others.

    ORT's sessions release the GIL, so they run on background threads (two at a time on a
    multi-core machine) while this thread validates the next model and reads, summarizes and
    verifies the files already written. A few models ahead are validated, no more (one ahead
    while a big one is queued): a folder of big models is never held in memory at once.
    """
    from ortprep.core.runtime import ort_version, quiet_ort
    from ortprep.stages.opconfig import config_file_name

    options.validate()  # files create their folders as they are written: a failure writes nothing
    quiet_ort()
    results: list[ModelResult] = []
    sources: dict[str, list[OpConfig]] = {s: [] for s in options.styles}
    configs: list[str] = []
    lanes = max(1, min(2, os.cpu_count() or 1))
    with (
        tempfile.TemporaryDirectory(prefix="ortprep-convert-") as tmp,
        ThreadPoolExecutor(lanes, thread_name_prefix="ortprep-ort") as pool,
    ):
        workdir = Path(tmp)
        big_lock = threading.Lock()
        window: deque[_Planned] = deque()
        following = iter(inputs)

        def plan_ahead() -> None:
            """Keep up to _AHEAD models validated and queued beyond the one being finished
            (one, when a big model is queued: their views and sessions are large)."""
            while len(window) <= (1 if any(p.big for p in window) else _AHEAD):
                item = next(following, None)
                if item is None:
                    return
                window.append(_plan(item, out_dir, options, workdir, pool, big_lock))

        for i in range(len(inputs)):
            progress("converting", i, len(inputs))
            plan_ahead()
            result, files = _finish(window.popleft(), options)
            results.append(result)
            for style, files_of_style in files.items():
                sources[style].extend(files_of_style)
        progress("converting", len(inputs), len(inputs))
        for style in options.styles:
            if not sources[style]:
                continue
            stem = None if folder_input else inputs[0].path.stem
            name = config_file_name(options.type_reduction, style, stem, options.level)
            target = out_dir / name
            write_config(sources[style], target)
            configs.append(str(target))
    return ConvertResult(tuple(results), tuple(configs), options, ort_version())


def write_config(configs: list[OpConfig], target: Path) -> None:
    """The reduced-build config of these ``.ort`` files' configs, as ORT's converter writes it."""
    from ortprep.core.files import write_text
    from ortprep.stages.opconfig import combine, format_config

    write_text(target, format_config(combine(configs)))
