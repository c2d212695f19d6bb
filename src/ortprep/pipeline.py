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
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from ortprep.core.batch import Failure, attempt, noted
from ortprep.core.errors import BadModelError, UsageError
from ortprep.core.inputs import ModelInput
from ortprep.core.progress import ProgressFn, no_progress
from ortprep.manifest import (
    MANIFEST,
    OVERLAYS,
    REPORT,
    TARGET_EPS,
    TARGET_PLATFORMS,
    TARGETS,
    Benched,
    Checked,
    CombinedBuild,
    Command,
    Diffed,
    Evidence,
    FileRecord,
    ModelReport,
    PrepareOptions,
    PrepareResult,
    Recommendation,
)
from ortprep.prepare_bench import benchmark
from ortprep.recommend import recommend

if TYPE_CHECKING:
    from ortprep.core.graph import Model
    from ortprep.core.input_search import InputUsed
    from ortprep.gate import Gate
    from ortprep.stages.diff import DiffResult
    from ortprep.stages.fix_values import FixValues
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


# --------------------------------------------------------------------------- one model


def versions() -> dict[str, str]:
    """What made the files: a runtime older than the converter cannot load them."""
    import platform

    import onnx
    import onnxruntime

    from ortprep.core.version import ORTPREP_VERSION

    return {
        "ortprep": ORTPREP_VERSION,
        "onnxruntime": str(onnxruntime.__version__),
        "onnx": str(onnx.__version__),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}",
    }


def _q(path: Path | str) -> str:
    return shlex.quote(str(path))


def _shared_flags(options: PrepareOptions) -> str:
    """``--fix-dim`` and ``--inputs`` as the user gave them, for every command that takes them."""
    flags = "".join(f" --fix-dim {_q(f'{k}={v}')}" for k, v in options.fix_dims.items())
    return flags + (f" --inputs {_q(options.inputs)}" if options.inputs else "")


def _failed(item: ModelInput, options: PrepareOptions, failure: Failure) -> ModelReport:
    """The report of a model that could not be prepared (with its input's digest if readable)."""
    from ortprep.core.files import sha256

    digest = size = None
    try:
        if item.path.is_file():
            digest, size = sha256(item.path), item.path.stat().st_size
    except OSError:
        pass
    return ModelReport(
        str(item.path),
        item.relative.as_posix(),
        sha256=digest,
        size_bytes=size,
        error=failure.message,
        hint=failure.hint,
        internal_error=failure.internal,
        traceback=failure.traceback,
        options=options.to_dict(),
    )


def prepare_model(
    item: ModelInput,
    out_dir: Path,
    options: PrepareOptions,
    progress: ProgressFn = no_progress,
) -> ModelReport:
    """Prepare one model into ``out_dir`` (keeping its relative folder); never raises for it."""
    start = time.perf_counter()
    outcome = attempt(partial(_prepare, item, out_dir, options, progress))
    report = _failed(item, options, outcome) if isinstance(outcome, Failure) else outcome
    return replace(
        report, seconds=time.perf_counter() - start, versions=report.versions or _safe_versions()
    )


def _safe_versions() -> dict[str, str]:
    try:
        return versions()
    except Exception:  # noqa: BLE001 -- versions are informative; never fail a model for them
        return {}


@dataclass(frozen=True)
class _Written:
    """What convert wrote for one model, as prepare records it."""

    files: tuple[FileRecord, ...]
    ort_paths: Mapping[str, Path]
    config_paths: Mapping[str, Path]


def _prepare(
    item: ModelInput, out_dir: Path, options: PrepareOptions, progress: ProgressFn
) -> ModelReport:
    from ortprep.core.files import sha256
    from ortprep.core.inputs import open_model

    model_out = out_dir / item.relative.parent
    src_arg = "--example" if options.example else _q(item.path)

    def rel(path: str | Path) -> str:
        return Path(path).resolve().relative_to(out_dir.resolve()).as_posix()

    written = _convert(item, model_out, options, progress, src_arg, rel)
    if isinstance(written, Failure):
        return _failed(item, options, written)
    ort_paths = written.ort_paths
    problems: list[str] = []
    eps = options.check_eps
    checks = _checks(item, ort_paths, options, problems, progress, rel, out_dir / OVERLAYS)
    gate = _gate(options, checks)
    source = open_model(item.path)
    diffs = []
    for style in ("runtime", "fixed"):
        p = ort_paths[style]
        d = noted(problems, f"diff {p.name}", partial(_diff, source, p))
        if d is not None:
            diffs.append(Diffed(style, rel(p), d))
    fix = _fix_values(item, source, options)
    sizes = fix.known_dims if fix is not None else {}
    never_ran = _never_ran(written)
    if options.bench and never_ran:
        problems.append(f"bench: not run: {never_ran}, so there is nothing to time")
    bench = (
        benchmark(item, ort_paths, options, problems, progress, rel, sizes, _verified(written))
        if options.bench and not never_ran
        else ()
    )
    rec = recommend(Evidence(written.files, checks, bench, fix), eps)
    build = _build(rec, written.config_paths, options, problems)
    return ModelReport(
        input=str(item.path),
        relative=item.relative.as_posix(),
        sha256=sha256(item.path),
        size_bytes=item.path.stat().st_size,
        files=written.files,
        checks=checks,
        diffs=tuple(diffs),
        bench=bench,
        build=build,
        recommendation=rec,
        fix_values=fix,
        commands=_commands(written.files, build, rec, item, model_out, options, src_arg, ort_paths)
        + _view_commands(checks),
        problems=tuple(problems),
        gate=gate,
        options=options.to_dict(),
    )


def _verified(written: _Written) -> tuple[InputUsed, ...]:
    """The inputs the Fixed-style file's verification ran on (none when it was not verified)."""
    fixed = next((f for f in written.files if f.kind == "ort" and f.style == "fixed"), None)
    if fixed is None or fixed.artifact is None:
        return ()
    return next((v.inputs for v in fixed.artifact.verification if v.inputs), ())


def _never_ran(written: _Written) -> str:
    """Why the original ran on none of the inputs the verification tried ("" when it ran, or
    was not verified at all): the benchmark would fail the same way on every file."""
    for f in written.files:
        if f.kind == "ort" and f.artifact is not None:
            for v in f.artifact.verification:
                if v.not_verified and not v.inputs and v.ort_error:
                    return v.unverified_because
    return ""


def _fix_values(item: ModelInput, source: Model, options: PrepareOptions) -> FixValues | None:
    """The values a fix-shapes would give the original's dynamic dims (the user's --fix-dim
    first), as check's what-if uses them; None when every input is static."""
    from ortprep.stages.fix_values import for_file

    if not any(v.dynamic for v in source.graph.runtime_inputs):
        return None
    return for_file(item.path, source.graph.runtime_inputs, options.fix_dims)


def _gate(options: PrepareOptions, checks: Sequence[Checked]) -> Gate | None:
    """The CI gate on the original's check (a failed check is already a problem)."""
    original = next((c for c in checks if c.role == "original"), None)
    if not options.require or original is None:
        return None
    from ortprep.gate import evaluate

    return evaluate(options.require, original.result)


def _convert(
    item: ModelInput,
    model_out: Path,
    options: PrepareOptions,
    progress: ProgressFn,
    src_arg: str,
    rel: Callable[[Path], str],
) -> _Written | Failure:
    """Both styles, their configs, verification (a bad model fails here, exit 1 for a folder)."""
    from ortprep.core.files import sha256
    from ortprep.stages import convert

    tp = options.target_platform
    tr = " --type-reduction" if options.type_reduction else ""
    shared = _shared_flags(options)

    def convert_cmd(style: str) -> str:
        out = _q(model_out)
        return (
            f"ortprep convert {src_arg} -o {out} --style {style}{tr} --target-platform {tp}"
            + shared
        )

    result = convert.run(
        [ModelInput(item.path, Path(item.path.name))],
        model_out,
        convert.ConvertOptions(
            target_platform=tp,
            type_reduction=options.type_reduction,
            verify=options.verify,
            fix_dims=options.fix_dims,
            inputs=options.inputs,
        ),
        progress,
        folder_input=False,
    )
    converted = result.models[0]
    if converted.failure is not None:
        return converted.failure
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
    return _Written(tuple(files), ort_paths, config_paths)


def _checks(
    item: ModelInput,
    ort_paths: Mapping[str, Path],
    options: PrepareOptions,
    problems: list[str],
    progress: ProgressFn,
    rel: Callable[[Path], str],
    overlays: Path,
) -> tuple[Checked, ...]:
    """``check`` on the original (with what-if, and the ``--fix-dim`` values the ``.ort`` files
    were made with) and on both ``.ort`` files, each writing its Model Explorer overlays under
    ``overlays`` (keeping the folder's layout)."""
    from ortprep.overlays import check_with_overlays
    from ortprep.stages import check

    checks: list[Checked] = []
    targets = [("original", item.path, item.relative.as_posix())]
    targets += [(s, ort_paths[s], rel(ort_paths[s])) for s in ("runtime", "fixed")]
    for role, path, shown in targets:
        original = role == "original"
        opts = check.CheckOptions(
            eps=tuple(options.check_eps),
            what_if=original,
            fix_dims=options.fix_dims if original else {},
        )
        folder = overlays / Path(shown).parent
        run = partial(check_with_overlays, path, opts, folder, None, progress)
        found = noted(problems, f"check {path.name}", run)
        if found is not None:
            checks.append(Checked(role, shown, found, tuple(rel(Path(p)) for p in found.written)))
    return tuple(checks)


def _view_commands(checks: Sequence[Checked]) -> tuple[Command, ...]:
    """How to open each checked file's overlays in Model Explorer."""
    from ortprep.overlays import model_explorer

    commands = []
    for c in checks:
        paths = [Path(p) for p in c.result.written]
        analyzed = [p for p in paths if p.name.endswith(".analyzed.onnx")]
        if analyzed:
            node_data = [p for p in paths if p.name.endswith(".node_data.json")]
            commands.append(
                Command(
                    f"Open {Path(c.file).name} in Model Explorer with each EP's partitions "
                    "(pip install 'ortprep[viz]')",
                    model_explorer.open_command(analyzed[0], node_data),
                )
            )
    return tuple(commands)


def _build(
    rec: Recommendation,
    config_paths: Mapping[str, Path],
    options: PrepareOptions,
    problems: list[str],
) -> BuildCommand | None:
    """The reduced-build command for the recommended file's config."""
    from ortprep.stages import opconfig

    if rec.style is None or rec.style not in config_paths:
        return None
    cfg_path = config_paths[rec.style]
    return noted(
        problems,
        "build command",
        lambda: opconfig.build_command(
            opconfig.read_config(cfg_path),
            options.target,
            rec.eps,
            replay=bool(rec.session_options),
            config_path=str(cfg_path.resolve()),
        ),
    )


def _diff(source: Model, path: Path) -> DiffResult:
    from ortprep.core.inputs import open_model
    from ortprep.stages.diff import diff_models

    return diff_models(source, open_model(path))


def _commands(
    files: Sequence[FileRecord],
    build: BuildCommand | None,
    rec: Recommendation,
    item: ModelInput,
    model_out: Path,
    options: PrepareOptions,
    src_arg: str,
    ort_paths: Mapping[str, Path],
) -> tuple[Command, ...]:
    eps = ",".join(options.check_eps)
    tp = options.target_platform
    tr = " --type-reduction" if options.type_reduction else ""
    shared = _shared_flags(options)
    out = _q(model_out)
    cmds = [
        Command(
            "Both .ort files and their configs",
            f"ortprep convert {src_arg} -o {out} --style both{tr} --target-platform {tp}{shared}",
        ),
        *(Command(f"Only {f.name}", f.command) for f in files if f.kind == "ort"),
        Command(
            "The same with ONNX Runtime's own converter"
            + (" (it has no --fix-dim: its dims stay dynamic)" if options.fix_dims else ""),
            f"python -m onnxruntime.tools.convert_onnx_models_to_ort {_q(item.path)} "
            f"--output_dir {out} --optimization_style Fixed Runtime"
            + (" --enable_type_reduction" if options.type_reduction else "")
            + f" --target_platform {tp}",
        ),
        Command(
            "Check the original",
            f"ortprep check {src_arg} --ep {eps}"
            + "".join(f" --fix-dim {_q(f'{k}={v}')}" for k, v in options.fix_dims.items()),
        ),
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
    ]
    if options.bench:
        cmds.append(
            Command(
                "Benchmark",
                f"ortprep bench {_q(item.path)} {_q(ort_paths['fixed'])} "
                f"{_q(ort_paths['runtime'])} --threads 1 --runs {options.bench_runs} "
                f"--warmup {options.bench_warmup} --replay-runtime-optimizations{shared}",
            )
        )
    if build is not None:
        b = build
        ep_flags = "".join(f" --ep {e}" for e in b.eps)
        replay = " --replay-runtime-optimizations" if rec.session_options else ""
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
    from ortprep.core.files import sha256, write_text
    from ortprep.core.version import ORTPREP_VERSION
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
        f" Merged by ortprep {ORTPREP_VERSION} prepare from the config of each shipped file:",
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
