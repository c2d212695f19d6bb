"""``prepare``: every stage for one model or a folder, a recommendation, a manifest and a report.

For each model: convert (both styles, type reduction, the target's CPU), check the original and
both ``.ort`` files on the target's EPs, diff the original against each ``.ort``, benchmark all
three, compose the reduced build for the recommended file, and say in plain words which file to
ship and why. ``OUT/manifest.json`` records it all for machines (with sha256 of every file) and
``OUT/report.html`` shows it to people.

Models run one after another, or in worker processes (``workers``); a model that fails, even one
that crashes its worker, is reported on its own and never loses the others.

Example::

    result = prepare(resolve_inputs(Path("models")), Path("out"), PrepareOptions(target="ios"))
    print(result.ok, [m.recommendation.headline for m in result.models if m.recommendation])
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ortprep.core.errors import BadModelError, OrtprepError, UsageError
from ortprep.core.inputs import ModelInput
from ortprep.core.progress import ProgressFn, no_progress
from ortprep.recommend import Recommendation, recommend

if TYPE_CHECKING:
    from ortprep.stages.check import CheckResult, EpReport
    from ortprep.stages.convert import Artifact
    from ortprep.stages.diff import DiffResult
    from ortprep.stages.opconfig import BuildCommand

__all__ = [
    "TARGETS",
    "TARGET_EPS",
    "TARGET_PLATFORMS",
    "Benched",
    "Checked",
    "CombinedBuild",
    "Command",
    "Diffed",
    "FileRecord",
    "ModelReport",
    "PrepareOptions",
    "PrepareResult",
    "prepare",
    "prepare_model",
    "versions",
]

TARGETS = ("android", "ios", "linux-arm", "linux-x86")
TARGET_PLATFORMS = {"android": "arm", "ios": "arm", "linux-arm": "arm", "linux-x86": "amd64"}
TARGET_EPS: Mapping[str, tuple[str, ...]] = {
    "android": ("nnapi", "xnnpack"),
    "ios": ("coreml-mlprogram", "coreml-neuralnetwork", "xnnpack"),
    "linux-arm": ("xnnpack",),
    "linux-x86": ("xnnpack",),
}
ROLES = {
    "original": "original .onnx (after ORT's basic optimizations)",
    "runtime": "Runtime style",
    "fixed": "Fixed style",
}
MANIFEST = "manifest.json"
REPORT = "report.html"

T = TypeVar("T")


@dataclass(frozen=True)
class PrepareOptions:
    target: str = "android"
    eps: tuple[str, ...] | None = None
    """EPs to check; ``None``: the target's (ARCHITECTURE.md "Targets")."""
    workers: int = 1
    bench_runs: int = 20
    bench_warmup: int = 3
    type_reduction: bool = True
    verify: bool = True
    example: bool = False
    """The input is the bundled example (commands then say ``--example``)."""

    @property
    def target_platform(self) -> str:
        return TARGET_PLATFORMS[self.target]

    @property
    def check_eps(self) -> tuple[str, ...]:
        return self.eps if self.eps else TARGET_EPS[self.target]

    def validate(self) -> None:
        if self.target not in TARGETS:
            raise UsageError(f"--target {self.target!r}", f"choose one of {', '.join(TARGETS)}")
        allowed = TARGET_EPS[self.target]
        for ep in self.check_eps:
            if ep not in allowed:
                raise UsageError(
                    f"--ep {ep}: not available for --target {self.target}",
                    f"choose from {', '.join(allowed)}",
                )
        if self.workers < 1:
            raise UsageError("--workers must be 1 or more")
        if self.bench_runs < 1 or self.bench_warmup < 0:
            raise UsageError("benchmark runs must be 1 or more, warm-up runs 0 or more")

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "target_platform": self.target_platform,
            "eps": list(self.check_eps),
            "workers": self.workers,
            "convert": {
                "styles": ["fixed", "runtime"],
                "level": "all",
                "type_reduction": self.type_reduction,
                "verify": self.verify,
            },
            "bench": {"runs": self.bench_runs, "warmup": self.bench_warmup, "threads": 1},
        }


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class FileRecord:
    """One file prepare wrote for a model: an ``.ort`` (with convert's account) or a config."""

    kind: str  # "ort" | "config"
    style: str
    path: str  # relative to OUT
    size_bytes: int
    sha256: str
    command: str
    artifact: Artifact | None = None

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def verified(self) -> bool | None:
        return None if self.artifact is None else self.artifact.verified

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": self.kind,
            "style": self.style,
            "path": self.path,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "command": self.command,
        }
        if self.artifact is not None:
            a = self.artifact.to_dict()
            for key in ("kind", "style", "path", "size_bytes"):
                a.pop(key)
            d.update(a)
        return d


@dataclass(frozen=True)
class Checked:
    """``check`` on one of a model's files."""

    role: str  # original | runtime | fixed
    file: str
    result: CheckResult

    @property
    def label(self) -> str:
        return ROLES[self.role]

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "file": self.file,
            "analyzed": self.result.analyzed,
            "eps": [_ep_summary(e) for e in self.result.eps],
        }


def _ep_summary(e: EpReport) -> dict[str, Any]:
    o = e.outcome
    return {
        "ep": e.ep,
        "verdict": o.verdict,
        "summary": e.summary,
        "nodes_total": o.nodes_total,
        "nodes_supported": o.nodes_supported,
        "nodes_taken": o.nodes_taken,
        "partitions": len(o.partitions),
        "largest_partition": max((len(p.nodes) for p in o.partitions), default=0),
        "top_reasons": [r.to_dict() for r in e.top_reasons],
        "next_step": e.next_step,
        "if_shapes_fixed": None if e.if_shapes_fixed is None else e.if_shapes_fixed.to_dict(),
    }


@dataclass(frozen=True)
class Diffed:
    role: str
    file: str
    result: DiffResult

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "file": self.file, **self.result.to_dict()}


@dataclass(frozen=True)
class Benched:
    role: str
    file: str
    metrics: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "file": self.file, **self.metrics}


@dataclass(frozen=True)
class Command:
    title: str
    command: str

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "command": self.command}


@dataclass(frozen=True)
class ModelReport:
    """Everything prepare learned about one model (or why it failed)."""

    input: str
    relative: str
    sha256: str | None = None
    size_bytes: int | None = None
    files: tuple[FileRecord, ...] = ()
    checks: tuple[Checked, ...] = ()
    diffs: tuple[Diffed, ...] = ()
    bench: tuple[Benched, ...] = ()
    build: BuildCommand | None = None
    recommendation: Recommendation | None = None
    commands: tuple[Command, ...] = ()
    problems: tuple[str, ...] = ()
    error: str | None = None
    hint: str | None = None
    internal_error: bool = False
    traceback: str | None = None
    seconds: float = 0.0
    versions: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.relative

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and not self.problems
            and all(f.verified is not False for f in self.files)
        )

    def file(self, kind: str, style: str) -> FileRecord | None:
        return next((f for f in self.files if f.kind == kind and f.style == style), None)

    def check(self, role: str) -> Checked | None:
        return next((c for c in self.checks if c.role == role), None)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "input": self.input,
            "relative": self.relative,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "versions": dict(self.versions),
            "options": dict(self.options),
        }
        if self.error is not None:
            d["error"] = self.error
            d["hint"] = self.hint
            d["internal_error"] = self.internal_error
            return d
        d.update(
            {
                "recommendation": None
                if self.recommendation is None
                else self.recommendation.to_dict(),
                "artifacts": [f.to_dict() for f in self.files],
                "checks": [c.to_dict() for c in self.checks],
                "diffs": [x.to_dict() for x in self.diffs],
                "bench": [b.to_dict() for b in self.bench],
                "build": None if self.build is None else self.build.to_dict(),
                "commands": [c.to_dict() for c in self.commands],
                "problems": list(self.problems),
            }
        )
        return d


@dataclass(frozen=True)
class CombinedBuild:
    """One reduced build for every model of a folder: the merged config and its command."""

    config: str  # relative to OUT
    sha256: str
    models: tuple[str, ...]
    command: BuildCommand

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "sha256": self.sha256,
            "models": list(self.models),
            "build_command": self.command.to_dict(),
        }


@dataclass(frozen=True)
class PrepareResult:
    out_dir: str
    options: PrepareOptions
    versions: Mapping[str, str]
    created: str
    models: tuple[ModelReport, ...]
    combined_build: CombinedBuild | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.models)

    @property
    def internal_error(self) -> bool:
        return any(m.internal_error for m in self.models)

    @property
    def manifest_path(self) -> str:
        return str(Path(self.out_dir) / MANIFEST)

    @property
    def report_path(self) -> str:
        return str(Path(self.out_dir) / REPORT)

    def to_dict(self) -> dict[str, Any]:
        """The manifest (``OUT/manifest.json``)."""
        return {
            "manifest_version": 1,
            "created": self.created,
            "out": self.out_dir,
            "report": REPORT,
            "ok": self.ok,
            "models_total": len(self.models),
            "models_failed": sum(not m.ok for m in self.models),
            "seconds": round(self.seconds, 3),
            "versions": dict(self.versions),
            "options": self.options.to_dict(),
            "combined_build": None
            if self.combined_build is None
            else self.combined_build.to_dict(),
            "models": [m.to_dict() for m in self.models],
        }


# --------------------------------------------------------------------------- one model


def versions() -> dict[str, str]:
    """What made the files: a runtime older than the converter cannot load them."""
    import platform

    import onnx
    import onnxruntime

    from ortprep import __version__

    return {
        "ortprep": __version__,
        "onnxruntime": str(onnxruntime.__version__),
        "onnx": str(onnx.__version__),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}",
    }


def _q(path: Path | str) -> str:
    return shlex.quote(str(path))


def _attempt(problems: list[str], stage: str, fn: Callable[[], T]) -> T | None:
    """Run one later stage; a user-caused failure is noted and the model goes on."""
    try:
        return fn()
    except OrtprepError as exc:
        problems.append(f"{stage}: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
        return None


def prepare_model(
    item: ModelInput,
    out_dir: Path,
    options: PrepareOptions,
    progress: ProgressFn = no_progress,
) -> ModelReport:
    """Prepare one model into ``out_dir`` (keeping its relative folder); never raises for it."""
    import traceback

    start = time.perf_counter()
    failed = ModelReport(str(item.path), item.relative.as_posix(), options=options.to_dict())
    try:
        report = _prepare(item, out_dir, options, progress)
    except OrtprepError as exc:
        report = replace(failed, error=exc.message, hint=exc.hint)
    except Exception as exc:  # noqa: BLE001 -- a bug on one model must not lose the others
        first = (str(exc).strip().splitlines() or [""])[0]
        report = replace(
            failed,
            error=f"internal error: {type(exc).__name__}: {first}",
            hint="this is a bug in ortprep; run with --debug for the traceback",
            internal_error=True,
            traceback=traceback.format_exc(),
        )
    if report.error is not None and item.path.is_file():
        from ortprep.core.files import sha256

        report = replace(report, sha256=sha256(item.path), size_bytes=item.path.stat().st_size)
    return replace(
        report, seconds=time.perf_counter() - start, versions=report.versions or _safe_versions()
    )


def _safe_versions() -> dict[str, str]:
    try:
        return versions()
    except Exception:  # noqa: BLE001 -- versions are informative; never fail a model for them
        return {}


def _prepare(
    item: ModelInput, out_dir: Path, options: PrepareOptions, progress: ProgressFn
) -> ModelReport:
    from ortprep.core.files import sha256
    from ortprep.core.inputs import open_model
    from ortprep.stages import check, convert, opconfig

    model_out = out_dir / item.relative.parent
    src_arg = "--example" if options.example else _q(item.path)
    tp = options.target_platform
    tr = " --type-reduction" if options.type_reduction else ""

    def convert_cmd(style: str) -> str:
        out = _q(model_out)
        return f"ortprep convert {src_arg} -o {out} --style {style}{tr} --target-platform {tp}"

    # convert: both styles, configs, verification (a bad model fails here, exit 1 for a folder)
    result = convert.run(
        [ModelInput(item.path, Path(item.path.name))],
        model_out,
        convert.ConvertOptions(
            target_platform=tp, type_reduction=options.type_reduction, verify=options.verify
        ),
        progress,
        folder_input=False,
    )
    converted = result.models[0]
    if converted.error:
        raise BadModelError(converted.error, converted.hint)

    def rel(path: str | Path) -> str:
        return Path(path).resolve().relative_to(out_dir.resolve()).as_posix()

    files: list[FileRecord] = []
    ort_paths: dict[str, Path] = {}
    for a in converted.artifacts:
        p = Path(a.path)
        ort_paths[a.style] = p
        files.append(
            FileRecord("ort", a.style, rel(p), a.size_bytes, sha256(p), convert_cmd(a.style), a)
        )
    config_paths: dict[str, Path] = {}
    for c in result.configs:
        p = Path(c)
        style = "runtime" if ".with_runtime_opt." in p.name else "fixed"
        config_paths[style] = p
        files.append(
            FileRecord("config", style, rel(p), p.stat().st_size, sha256(p), convert_cmd(style))
        )

    problems: list[str] = []
    eps = options.check_eps
    checks: list[Checked] = []
    targets = [("original", item.path, item.relative.as_posix())]
    targets += [(s, ort_paths[s], rel(ort_paths[s])) for s in ("runtime", "fixed")]
    for role, path, shown in targets:
        opts = check.CheckOptions(eps=eps, what_if=role == "original")
        found = _attempt(problems, f"check {path.name}", partial(check.run, path, opts, progress))
        if found is not None:
            checks.append(Checked(role, shown, found))

    source = open_model(item.path)
    diffs = []
    for style in ("runtime", "fixed"):
        p = ort_paths[style]
        d = _attempt(problems, f"diff {p.name}", partial(_diff, source, p))
        if d is not None:
            diffs.append(Diffed(style, rel(p), d))

    bench = _bench(item, ort_paths, options, problems, progress, rel)
    report = ModelReport(
        input=str(item.path),
        relative=item.relative.as_posix(),
        sha256=sha256(item.path),
        size_bytes=item.path.stat().st_size,
        files=tuple(files),
        checks=tuple(checks),
        diffs=tuple(diffs),
        bench=bench,
        problems=tuple(problems),
        options=options.to_dict(),
    )
    rec = recommend(report, eps)
    build = None
    if rec.style is not None and rec.style in config_paths:
        cfg_path = config_paths[rec.style]
        replay = bool(rec.session_options)
        build = _attempt(
            problems,
            "build command",
            lambda: opconfig.build_command(
                opconfig.read_config(cfg_path),
                options.target,
                rec.eps,
                replay=replay,
                config_path=str(cfg_path.resolve()),
            ),
        )
    report = replace(report, recommendation=rec, build=build, problems=tuple(problems))
    return replace(report, commands=_commands(report, item, model_out, options, src_arg, ort_paths))


def _diff(source: Any, path: Path) -> DiffResult:
    from ortprep.core.inputs import open_model
    from ortprep.stages.diff import diff_models

    return diff_models(source, open_model(path))


def _bench(
    item: ModelInput,
    ort_paths: Mapping[str, Path],
    options: PrepareOptions,
    problems: list[str],
    progress: ProgressFn,
    rel: Callable[[Path], str],
) -> tuple[Benched, ...]:
    from ortprep.stages import bench

    roles = [
        ("original", item.path),
        ("fixed", ort_paths["fixed"]),
        ("runtime", ort_paths["runtime"]),
    ]
    report = _attempt(
        problems,
        "bench",
        lambda: bench.run(
            [p for _, p in roles],
            bench.BenchOptions(
                runs=options.bench_runs,
                warmup=options.bench_warmup,
                replay_runtime_optimizations=True,
            ),
            progress,
        ),
    )
    if report is None:
        return ()
    problems.extend(f"bench {Path(f.path).name}: {f.error}" for f in report.failures)
    measured = {r.path: r for r in report.results}
    rows = []
    for role, path in roles:
        r = measured.get(str(path))
        if r is None:
            continue
        metrics = r.to_dict()
        metrics.pop("path", None)
        file = item.relative.as_posix() if role == "original" else rel(path)
        rows.append(Benched(role, file, metrics))
    return tuple(rows)


def _commands(
    m: ModelReport,
    item: ModelInput,
    model_out: Path,
    options: PrepareOptions,
    src_arg: str,
    ort_paths: Mapping[str, Path],
) -> tuple[Command, ...]:
    eps = ",".join(options.check_eps)
    tp = options.target_platform
    tr = " --type-reduction" if options.type_reduction else ""
    out = _q(model_out)
    cmds = [
        Command(
            "Both .ort files and their configs",
            f"ortprep convert {src_arg} -o {out} --style both{tr} --target-platform {tp}",
        ),
        *(Command(f"Only {f.name}", f.command) for f in m.files if f.kind == "ort"),
        Command(
            "The same with ONNX Runtime's own converter",
            f"python -m onnxruntime.tools.convert_onnx_models_to_ort {_q(item.path)} "
            f"--output_dir {out} --optimization_style Fixed Runtime"
            + (" --enable_type_reduction" if options.type_reduction else "")
            + f" --target_platform {tp}",
        ),
        Command("Check the original", f"ortprep check {src_arg} --ep {eps}"),
        *(
            Command(f"Check {p.name}", f"ortprep check {_q(p)} --ep {eps}")
            for p in (ort_paths["runtime"], ort_paths["fixed"])
        ),
        *(
            Command(
                f"What the optimizations did to {p.name}", f"ortprep diff {_q(item.path)} {_q(p)}"
            )
            for p in (ort_paths["runtime"], ort_paths["fixed"])
        ),
        Command(
            "Benchmark",
            f"ortprep bench {_q(item.path)} {_q(ort_paths['fixed'])} {_q(ort_paths['runtime'])} "
            f"--threads 1 --runs {options.bench_runs} --warmup {options.bench_warmup} "
            "--replay-runtime-optimizations",
        ),
    ]
    if m.build is not None:
        b = m.build
        ep_flags = "".join(f" --ep {e}" for e in b.eps)
        rec = m.recommendation
        replay = " --replay-runtime-optimizations" if rec and rec.session_options else ""
        cmds.append(
            Command(
                "The reduced-build command, with each flag explained",
                f"ortprep config build-command --config {_q(b.config_path)} "
                f"--target {options.target}{ep_flags}{replay}",
            )
        )
        cmds.append(Command("Reduced ONNX Runtime build (in an onnxruntime checkout)", b.command))
    return tuple(cmds)


# --------------------------------------------------------------------------- many models


def _run_parallel(
    items: Sequence[ModelInput],
    out_dir: Path,
    options: PrepareOptions,
    progress: ProgressFn,
    work: Callable[[ModelInput, Path, PrepareOptions], ModelReport] | None = None,
) -> list[ModelReport]:
    """Models in worker processes (spawned: ORT's threads do not survive a fork).

    A worker that dies (a crash inside ORT or a custom op library) breaks the pool; the models
    it left unfinished are then run one per process, so only the one that crashes is lost.
    ``work`` (a module-level function, :func:`prepare_model` by default) prepares one model.
    """
    if work is None:
        work = prepare_model
    import concurrent.futures as cf
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    results: dict[int, ModelReport] = {}
    retry: list[int] = []
    total = len(items)
    progress("preparing models", 0, total)
    with cf.ProcessPoolExecutor(max_workers=min(options.workers, total), mp_context=ctx) as pool:
        futures = {pool.submit(work, it, out_dir, options): i for i, it in enumerate(items)}
        for fut in cf.as_completed(futures):
            i = futures[fut]
            try:
                results[i] = fut.result()
            except cf.process.BrokenProcessPool:
                retry.append(i)
                continue
            progress("preparing models", len(results), total)
    for i in sorted(retry):
        with cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            try:
                results[i] = pool.submit(work, items[i], out_dir, options).result()
            except cf.process.BrokenProcessPool:
                results[i] = ModelReport(
                    input=str(items[i].path),
                    relative=items[i].relative.as_posix(),
                    error="the worker process preparing this model crashed (ONNX Runtime or a "
                    "custom op library aborted)",
                    hint="prepare this model alone to see ONNX Runtime's message",
                    options=options.to_dict(),
                )
        progress("preparing models", len(results), total)
    return [results[i] for i in range(total)]


def _check_out_dir(items: Sequence[ModelInput], out_dir: Path) -> None:
    """No command writes next to its input files (ARCHITECTURE.md "Files")."""
    for it in items:
        if (out_dir / it.relative).resolve().parent == it.path.resolve().parent:
            raise UsageError(
                f"{out_dir}: would write next to the input model {it.path.name}",
                "choose an output folder outside the input folder",
            )


def _combined(
    models: Sequence[ModelReport], out_dir: Path, options: PrepareOptions
) -> CombinedBuild | None:
    """For a folder: one config (the union of each shipped file's config) and one build."""
    from ortprep import __version__
    from ortprep.core.files import sha256, write_text
    from ortprep.stages import opconfig

    chosen: list[tuple[ModelReport, FileRecord]] = []
    for m in models:
        style = m.recommendation.style if m.error is None and m.recommendation else None
        config = m.file("config", style) if style else None
        if config is not None:
            chosen.append((m, config))
    if len(chosen) < 2:
        return None
    runtime = any(m.recommendation and m.recommendation.style == "runtime" for m, _ in chosen)
    name = opconfig.config_file_name(options.type_reduction, "runtime" if runtime else "fixed")
    target = out_dir / name
    comments = [
        f" Merged by ortprep {__version__} prepare from the config of each shipped file:",
        *(f" - {f.path}" for _, f in chosen),
    ]
    cfg = opconfig.merge([opconfig.read_config(out_dir / f.path) for _, f in chosen], comments)
    write_text(target, opconfig.format_config(cfg))
    eps = tuple(
        dict.fromkeys(e for m, _ in chosen if m.recommendation for e in m.recommendation.eps)
    )
    replay = any(m.recommendation and m.recommendation.session_options for m, _ in chosen)
    command = opconfig.build_command(
        cfg, options.target, eps, replay=replay, config_path=str(target.resolve())
    )
    return CombinedBuild(name, sha256(target), tuple(m.relative for m, _ in chosen), command)


def prepare(
    items: Sequence[ModelInput],
    out_dir: Path,
    options: PrepareOptions,
    progress: ProgressFn = no_progress,
    folder_input: bool = False,
) -> PrepareResult:
    """Prepare every model, then write ``OUT/manifest.json`` and ``OUT/report.html``.

    A single bad input (not a folder) raises its :class:`OrtprepError` and writes nothing.
    """
    import datetime
    import json

    from ortprep.core.files import write_text

    options.validate()
    if not items:
        raise UsageError("no models to prepare")
    _check_out_dir(items, out_dir)
    start = time.perf_counter()
    if options.workers > 1 and len(items) > 1:
        models = _run_parallel(items, out_dir, options, progress)
    else:
        models = []
        for i, item in enumerate(items):
            progress("preparing models", i, len(items))
            models.append(prepare_model(item, out_dir, options, progress))
        progress("preparing models", len(items), len(items))
    if not folder_input and len(models) == 1 and models[0].error and not models[0].internal_error:
        raise BadModelError(models[0].error, models[0].hint)
    combined = _combined(models, out_dir, options) if folder_input else None
    result = PrepareResult(
        out_dir=str(out_dir),
        options=options,
        versions=_safe_versions(),
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        models=tuple(models),
        combined_build=combined,
        seconds=time.perf_counter() - start,
    )
    from ortprep.report import render_report

    write_text(out_dir / MANIFEST, json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    write_text(out_dir / REPORT, render_report(result))
    return result
