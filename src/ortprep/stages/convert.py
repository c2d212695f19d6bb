"""``convert``: ONNX -> ORT format in the Fixed and Runtime styles, configs, verification.

Each model is opened and validated once, then converted by ORT itself through session options
(ort-internals §2.7, §4): Fixed = every optimization of the level baked in; Runtime = level 1
baked in, the recordable fusions saved as records (``optimization.minimal_build_optimizations=
save``). For a Runtime config ORT's converter also converts in ``apply`` mode and builds the config
from both files; we do the same in a private temporary folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
import threading
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ortprep.core.batch import Failure, FailureFields, attempt
from ortprep.core.errors import BadModelError, UsageError
from ortprep.core.inputs import ModelInput
from ortprep.core.memory import release
from ortprep.core.progress import ProgressFn, no_progress
from ortprep.core.runtime import LEVELS, PLATFORMS, SessionRecipe
from ortprep.stages.convert_notes import explain_ort, op_counts
from ortprep.stages.ort_artifacts import (
    LARGE_MODEL_BYTES,
    check_fits_ort_format,
    ort_recipe,
    save_onnx_with_ort,
    size_on_disk,
    suffix,
    write_with_ort,
)
from ortprep.stages.verify import Reference, VerifyResult

if TYPE_CHECKING:
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
    external_data_file: str | None = None  # an optimized ONNX file's weights (TARGET.data)

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
            "external_data_file": self.external_data_file,
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


# --------------------------------------------------------------------------- the stage


def _out_path(out_dir: Path, item: ModelInput, ext_suffix: str) -> Path:
    rel = item.relative
    return (
        out_dir
        / rel.parent
        / f"{rel.name[: -len(rel.suffix)] if rel.suffix else rel.name}{ext_suffix}"
    )


_MAPPED_ORT = {
    "session.use_memory_mapped_ort_model": "1",
    "session.use_ort_model_bytes_for_initializers": "1",
}
"""How verification loads an ``.ort``: mapped, its initializers used where they lie in the file
(ORT 1.32 session options, ort-internals §2.9). The graph, the kernels and their pre-packed
weights are a default load's; ORT's copy of the file and of every weight are not made. BERT-base's
Fixed ``.ort`` (436 MB): peak 977 MB -> 710 MB, and the load 1.5-2x faster."""


def _verify_artifact(
    item: ModelInput,
    path: Path,
    style: str,
    reference: Reference,
    options: ConvertOptions,
    records: int = 0,
) -> tuple[VerifyResult, ...]:
    """Load ``path`` the way a user will and compare its outputs with the original's in the
    configuration the file stands for (stages/verify.py: like with like).

    A Runtime-style ``.ort`` is loaded twice, at level extended: without replay (ORT's default;
    an ``.ort`` is not optimized again at load, so it runs its level-1 graph) and with
    ``session.enable_saved_runtime_optimizations=1`` (the recorded fusions, up to extended; with
    no ``records`` replay changes nothing, and the level-1 reference serves both).
    """
    from ortprep.stages.verify import RefConfig

    tp = options.target_platform
    replays = records and options.level in ("extended", "layout", "all")
    replayed = "extended" if replays else "basic"

    def recipe(level: str, replay: bool = False) -> SessionRecipe:
        return SessionRecipe(
            level=level,
            replay_saved=replay,
            free_dims=options.fix_dims,
            custom_op_library=options.custom_op_library,
            extra=_MAPPED_ORT if path.suffix == ".ort" else None,
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


class _Lanes:
    """ORT sessions at once across the models of a run: up to ``n`` while every model in work
    is small, one alone for a big one (:data:`_ALONE_BYTES`). The sessions of one model always
    run one after the other (its saves, then each file's verification): each holds a copy of the
    model's weights, so two at once would hold two."""

    def __init__(self, n: int) -> None:
        self._n = n
        self._free = n
        self._cv = threading.Condition()

    @contextlib.contextmanager
    def hold(self, alone: bool) -> Iterator[None]:
        need = self._n if alone else 1
        with self._cv:
            self._cv.wait_for(lambda: self._free >= need)
            self._free -= need
        try:
            yield
        finally:
            release()  # the session's graph and weights go back to the OS, not to malloc's pool
            with self._cv:
                self._free += need
                self._cv.notify_all()


_ALONE_BYTES = 64 << 20
"""Models over 64 MB (file plus external data) have ORT to themselves. An ORT session peaks at
2.5-3x the model's weights when it saves an ``.ort`` (BERT-base, 436 MB: 1.2 GB; it builds a
protobuf copy and the FlatBuffers buffer next to its graph) and a constant-folded int8 model more
(MiniLM int8, 23 MB: 300 MB, its weights folded to float). Two small models' sessions at once
cost little and keep both cores busy on a folder; two of BERT's would add 1.2 GB."""

# Models validated and queued for ORT beyond the one being finished, so ORT's lanes never wait.
_AHEAD = 2


@dataclass(frozen=True)
class _Save:
    """One file ORT writes for a model: an artifact, or the ``apply``-mode file for a config."""

    style: str
    kind: str  # "ort" | "apply" | "optimized-onnx"
    target: Path
    recipe: SessionRecipe
    external_data: bool = False  # optimized-onnx only: weights in TARGET.data

    @property
    def data_file(self) -> Path:
        return self.target.with_name(f"{self.target.name}.data")


@dataclass
class _Planned:
    """A validated model whose files ORT writes in the background, one after the other.

    The parent keeps only what it needs of the original once validated (its op histogram and
    the reference outputs for verification), never its weights: ORT's sessions load the model
    from its path themselves."""

    item: ModelInput
    ops_before: Counter[str] = field(default_factory=Counter)
    reference: Reference | None = None
    alone: bool = False
    saves: list[_Save] = field(default_factory=list)
    future: Future[None] | None = None
    failure: Failure | None = None


def _saves(
    item: ModelInput, out_dir: Path, options: ConvertOptions, workdir: Path, external: bool
) -> list[_Save]:
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
            saves.append(_Save(style, "optimized-onnx", onnx_target, onnx_recipe, external))
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


def _write(job: _Save, model: Path) -> None:
    if job.kind == "optimized-onnx":
        save_onnx_with_ort(model, job.target, job.recipe, job.external_data)
    else:
        write_with_ort(model, job.target, job.recipe)


def _plan(
    item: ModelInput,
    out_dir: Path,
    options: ConvertOptions,
    workdir: Path,
    pool: ThreadPoolExecutor,
    lanes: _Lanes,
) -> _Planned:
    """Validate ``item`` (here, once), run the original for verification, then hand its
    conversions to ORT in the background. The original's view is dropped before ORT starts."""
    from ortprep.core.inputs import open_model

    planned = _Planned(item)

    def prepare() -> None:
        source = open_model(item.path)
        if source.format != "onnx":
            raise BadModelError(f"{item.path}: convert takes ONNX models, this is {source.format}")
        _check_user_inputs(source, item.path, options)
        check_fits_ort_format(source)
        planned.ops_before = op_counts(source)
        on_disk = size_on_disk(source)
        planned.alone = on_disk > _ALONE_BYTES
        # ORT's saved ONNX would point at the input's data files, which are not in OUT
        external = on_disk > LARGE_MODEL_BYTES or bool(source.external_data_files)
        planned.saves = _saves(item, out_dir, options, workdir, external)
        if options.verify:
            from ortprep.stages.verify import make_reference

            hint = "give --inputs or --fix-dim, or skip verification with --no-verify"
            with lanes.hold(planned.alone):  # the original's sessions end inside
                planned.reference = make_reference(
                    item.path,
                    source,
                    options.inputs,
                    options.fix_dims,
                    hint,
                    options.custom_op_library,
                )

    prepared = attempt(prepare)
    if isinstance(prepared, Failure):
        planned.failure = prepared
        return planned

    def save_all() -> None:
        for job in planned.saves:
            with lanes.hold(planned.alone):
                _write(job, item.path)

    planned.future = pool.submit(save_all)
    return planned


def _finish(
    planned: _Planned, options: ConvertOptions, lanes: _Lanes
) -> tuple[ModelResult, dict[str, list[OpConfig]]]:
    """Wait for ``planned``'s files; summarize, verify and take the config of each (each
    ``.ort`` is read once). A failing model becomes a result with its ``failure``; the files it
    wrote wait for every conversion first, so nothing is written once its result is out."""
    if planned.failure is not None or planned.future is None:
        return ModelResult(str(planned.item.path), failure=planned.failure), {}
    planned.future.exception()  # waits: no stray writes after a failure
    finished = attempt(lambda: _finish_model(planned, options, lanes))
    if isinstance(finished, Failure):
        for job in planned.saves:  # a failed model leaves nothing in OUT (its config has none)
            job.target.unlink(missing_ok=True)
            job.data_file.unlink(missing_ok=True)
        return ModelResult(str(planned.item.path), failure=finished), {}
    return finished


def _finish_model(
    planned: _Planned, options: ConvertOptions, lanes: _Lanes
) -> tuple[ModelResult, dict[str, list[OpConfig]]]:
    from ortprep.core.ort import read_ort
    from ortprep.stages.opconfig import config_of_model

    item = planned.item
    assert planned.future is not None
    exc = planned.future.exception()
    if exc is not None:
        raise exc
    reference = planned.reference

    def verify(target: Path, style: str, records: int = 0) -> tuple[VerifyResult, ...]:
        if reference is None:
            return ()
        with lanes.hold(planned.alone):  # one session at a time, each ended before the next
            return _verify_artifact(item, target, style, reference, options, records)

    artifacts: list[Artifact] = []
    configs: dict[str, list[OpConfig]] = {s: [] for s in options.styles}
    for job in planned.saves:
        target = job.target
        if job.kind == "apply":
            # read_ort maps the file: the graph's pages are read, the weights' never are
            configs[job.style].append(
                config_of_model(read_ort(target, verify=False), options.type_reduction)
            )
            target.unlink()  # a private file: its space back before the next one
            continue
        if job.kind == "optimized-onnx":
            verification = verify(target, "fixed")
            data = job.data_file if job.data_file.exists() else None
            artifacts.append(
                Artifact(
                    "optimized-onnx",
                    job.style,
                    str(target),
                    target.stat().st_size + (data.stat().st_size if data else 0),
                    verified=all(v.passed for v in verification) if verification else None,
                    verification=verification,
                    external_data_file=str(data) if data else None,
                )
            )
            continue
        converted = read_ort(target, verify=False)  # ORT wrote it just now
        configs[job.style].append(config_of_model(converted, options.type_reduction))
        notes = explain_ort(job.style, planned.ops_before, converted, options.target_platform)
        del converted  # its mapping closes before ORT loads the file again
        verification = verify(target, job.style, sum(notes.records.values()))
        artifacts.append(
            Artifact(
                "ort",
                job.style,
                str(target),
                target.stat().st_size,
                nodes=notes.nodes,
                records=notes.records,
                produced_ops=notes.produced,
                fused_ops=notes.fused,
                verified=all(v.passed for v in verification) if verification else None,
                verification=verification,
                notes=notes.notes,
                warnings=notes.warnings,
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

    ORT's sessions release the GIL, so a model's files are written on a background thread (two
    small models' at a time on a multi-core machine) while this thread validates the next model
    and reads, summarizes and verifies the files already written. A few small models ahead are
    validated, none beyond a big one: the weights of a folder of big models are held by one
    session at a time (:class:`_Lanes`).
    """
    from ortprep.core.runtime import ort_version, quiet_ort
    from ortprep.stages.opconfig import config_file_name

    options.validate()  # files create their folders as they are written: a failure writes nothing
    quiet_ort()
    results: list[ModelResult] = []
    sources: dict[str, list[OpConfig]] = {s: [] for s in options.styles}
    configs: list[str] = []
    n_lanes = max(1, min(2, os.cpu_count() or 1))
    with (
        tempfile.TemporaryDirectory(prefix="ortprep-convert-") as tmp,
        ThreadPoolExecutor(n_lanes, thread_name_prefix="ortprep-ort") as pool,
    ):
        workdir = Path(tmp)
        lanes = _Lanes(n_lanes)
        window: deque[_Planned] = deque()
        following = iter(inputs)

        def plan_ahead() -> None:
            """Keep up to _AHEAD models validated and queued beyond the one being finished;
            none beyond a big one (opening the next would hold its weights beside ORT's)."""
            while len(window) <= (0 if any(p.alone for p in window) else _AHEAD):
                item = next(following, None)
                if item is None:
                    return
                window.append(_plan(item, out_dir, options, workdir, pool, lanes))

        for i in range(len(inputs)):
            progress("converting", i, len(inputs))
            plan_ahead()
            result, files = _finish(window.popleft(), options, lanes)
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
