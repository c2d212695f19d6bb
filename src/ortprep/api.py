"""The Python API: one function per command, keyword arguments named like the CLI options.

Each function takes what its command takes (``--fix-dim N=1`` is ``fix_dim=["N=1"]`` or
``fix_dim={"N": 1}``), validates it exactly as the command does (the CLI calls these functions),
and returns the result object the command renders (``to_dict()`` is its ``--json``; ``ok`` where
there is a verdict). Problems the caller caused raise :class:`~ortprep.core.errors.OrtprepError`
(``message``, ``hint``).

Nothing heavy is imported here: onnx, onnxruntime and numpy load when a function is called.

Example::

    import ortprep

    result = ortprep.check("model.onnx", ep="nnapi,xnnpack", fix_dim={"batch": 1})
    for report in result.eps:
        print(report.ep, report.outcome.verdict, report.summary)
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

from ortprep.core.errors import BadModelError, UsageError
from ortprep.core.progress import ProgressFn, no_progress
from ortprep.option_values import (
    PathLikeStr,
    as_path,
    one_of,
    parse_ep_list,
    parse_fix_dims,
    parse_fix_inputs,
)

if TYPE_CHECKING:
    from ortprep.core.inputs import ModelInput
    from ortprep.pipeline import PrepareResult
    from ortprep.stages.bench import BenchReport
    from ortprep.stages.check import CheckResult
    from ortprep.stages.convert import ConvertResult
    from ortprep.stages.diff import DiffResult
    from ortprep.stages.fix_shapes import FixShapesResult
    from ortprep.stages.opconfig import BuildCommand, BuildResult, CoverageResult, MergeResult
    from ortprep.stages.optimize import OptimizeResult
    from ortprep.stages.verify import VerifyResult

Dims = Mapping[str, int] | Iterable[str] | None
Shapes = Mapping[str, Sequence[int]] | Iterable[str] | None
Pairs = Mapping[str, str] | Iterable[str] | None
Percentages = Mapping[str, float | str] | Iterable[str] | None


def _models(
    path: PathLikeStr | None, example: bool, suffixes: tuple[str, ...] = (".onnx",)
) -> tuple[list[ModelInput], bool]:
    """The models of PATH (or the bundled example) and whether PATH is a folder."""
    from ortprep.core.inputs import resolve_inputs

    p = as_path(path)
    return resolve_inputs(p, example, suffixes=suffixes), p is not None and p.is_dir()


def _made_folder(out: Path) -> contextlib.AbstractContextManager[Path]:
    """Empty folders a run made below (and as) ``-o`` are removed when it ends."""
    from ortprep.core.files import output_folder as folder

    return folder(out)


def _output_folder(out: PathLikeStr, path: PathLikeStr | None) -> None:
    """``-o`` is checked before any work (:func:`ortprep.core.files.check_output_folder`)."""
    from ortprep.core.files import check_output_folder

    given = as_path(path)
    check_output_folder(Path(out), [given] if given is not None else [])


def _single_failure(folder: bool, results: Sequence[object]) -> None:
    """The contract: a single bad input is an error (exit 2); in a folder it is one failed model
    among the others (exit 1, the result says which). A failed verdict (the ORT format cannot
    hold the model) is exit 1 either way."""
    if not folder and len(results) == 1 and not getattr(results[0], "internal_error", False):
        failure = getattr(results[0], "failure", None)
        if failure is not None and failure.verdict:  # the answer is no: exit 1, with its result
            return
        error = getattr(results[0], "error", None)
        if error:
            raise BadModelError(error, getattr(results[0], "hint", None))


def check(
    path: PathLikeStr | None = None,
    *,
    example: bool = False,
    ep: str | Iterable[str] = "all",
    fix_dim: Dims = None,
    fix_input: Shapes = None,
    android_api: int = 31,
    coreml_version: int = 8,
    model_explorer: PathLikeStr | None = None,
    annotate: PathLikeStr | None = None,
    require: Pairs = None,
    require_coverage: Percentages = None,
    progress: ProgressFn = no_progress,
) -> CheckResult:
    """Which nodes each EP would take, in how many partitions, and why not the others.

    ``model_explorer=DIR`` writes Model Explorer overlays (``DIR/<file name>.<ep>.node_data.json``
    and the analysed graph they key into, ``DIR/<file name>.analyzed.onnx``, without weights);
    ``annotate=OUT.onnx`` (or a folder) the analysed graph with each node's EP, partition and
    reason in its ``doc_string`` and ``metadata_props``, for Netron. ``require={"nnapi": "yes"}``
    / ``require_coverage={"nnapi": 80}`` add the CI gate: the result's ``ok`` is False (and
    ``gate.failures`` says why) when an EP falls below.
    """
    from ortprep import gate
    from ortprep.eps.base import EpOptions
    from ortprep.stages import check as stage

    p = as_path(path)
    if p is not None and p.is_dir():
        raise UsageError(f"{p}: check takes one model file", "run it per model, or use prepare")
    eps = parse_ep_list(ep)
    requirements = gate.parse_requirements(require, require_coverage, eps)
    options = stage.CheckOptions(
        eps=eps,
        fix_dims=parse_fix_dims(fix_dim),
        fix_inputs=parse_fix_inputs(fix_input),
        ep_options=EpOptions(android_api=android_api, coreml_version=coreml_version),
    )
    (model,) = _models(p, example, (".onnx", ".ort"))[0][:1]
    overlay_dir, annotated = _output_dir(model_explorer, "--model-explorer"), as_path(annotate)
    if annotated is not None and annotated.resolve() == model.path.resolve():
        raise UsageError(f"--annotate {annotated}: is the input model", "pass another file")
    if annotated is not None and not annotated.is_dir():
        from ortprep.core.files import check_output_file

        check_output_file(annotated, [model.path], "--annotate")
    if annotated is None and overlay_dir is None:
        result = stage.run(model.path, options, progress)
    else:
        from ortprep.overlays import check_with_overlays

        result = check_with_overlays(model.path, options, overlay_dir, annotated, progress)
    if requirements:
        result = dataclasses.replace(result, gate=gate.evaluate(requirements, result))
    return result


def _output_dir(value: PathLikeStr | None, option: str) -> Path | None:
    folder = as_path(value)
    if folder is not None and folder.exists() and not folder.is_dir():
        raise UsageError(f"{option} {folder}: is a file, expected a folder")
    return folder


def convert(
    path: PathLikeStr | None,
    out: PathLikeStr,
    *,
    example: bool = False,
    style: str = "both",
    level: str = "all",
    target_platform: str = "arm",
    type_reduction: bool = False,
    save_optimized_onnx: bool = False,
    custom_op_library: PathLikeStr | None = None,
    no_verify: bool = False,
    fix_dim: Dims = None,
    inputs: PathLikeStr | None = None,
    progress: ProgressFn = no_progress,
) -> ConvertResult:
    """Convert a model (or every model of a folder) to ORT format, with configs, verified."""
    from ortprep.stages import convert as stage

    _output_folder(out, path)
    styles = {"both": stage.STYLES, "fixed": ("fixed",), "runtime": ("runtime",)}.get(style)
    if styles is None:
        raise UsageError(f"--style {style!r}: use fixed, runtime or both")
    options = stage.ConvertOptions(
        styles=styles,
        level=level,
        target_platform=target_platform,
        type_reduction=type_reduction,
        save_optimized_onnx=save_optimized_onnx,
        custom_op_library=as_path(custom_op_library),
        verify=not no_verify,
        fix_dims=parse_fix_dims(fix_dim),
        inputs=as_path(inputs),
    )
    options.validate()
    models, folder = _models(path, example)
    with _made_folder(Path(out)):
        result = stage.run(models, Path(out), options, progress, folder_input=folder)
    _single_failure(folder, result.models)
    return result


def prepare(
    path: PathLikeStr | None,
    out: PathLikeStr,
    *,
    example: bool = False,
    target: str = "android",
    ep: str | Iterable[str] | None = None,
    workers: int = 1,
    target_platform: str | None = None,
    fix_dim: Dims = None,
    inputs: PathLikeStr | None = None,
    runs: int = 20,
    no_bench: bool = False,
    require: Pairs = None,
    require_coverage: Percentages = None,
    progress: ProgressFn = no_progress,
) -> PrepareResult:
    """Every artifact for a device, checked, verified, measured and explained (OUT/manifest.json,
    OUT/report.html). ``target_platform`` (``arm``/``amd64``) overrides the target's CPU;
    ``fix_dim``/``inputs`` are used as ``convert`` and ``bench`` use them; ``runs``: timed runs
    per file; ``no_bench``: no benchmark. ``require``/``require_coverage``: the CI gate on each
    model's check."""
    from ortprep import gate
    from ortprep.pipeline import TARGETS, PrepareOptions
    from ortprep.pipeline import prepare as run

    _output_folder(out, path)
    one_of("--target", target, TARGETS)
    eps = None
    if ep is not None and (not isinstance(ep, str) or ep.strip() != "all"):
        eps = parse_ep_list(ep)
    options = PrepareOptions(
        target=target,
        eps=eps,
        workers=workers,
        example=example,
        platform=target_platform,
        fix_dims=parse_fix_dims(fix_dim),
        inputs=as_path(inputs),
        bench_runs=runs,
        bench=not no_bench,
    )
    options.validate()
    requirements = gate.parse_requirements(require, require_coverage, options.check_eps)
    if requirements:
        options = dataclasses.replace(options, require=requirements)
    models, folder = _models(path, example)
    with _made_folder(Path(out)):
        return run(models, Path(out), options, progress, folder_input=folder)


def inspect(path: PathLikeStr | None = None, *, example: bool = False) -> object:
    """What an ``.onnx``, ``.ort`` or reduced-build ``.config`` file holds."""
    from ortprep.stages import inspect as stage

    p = as_path(path)
    (model,) = _models(p, example, (".onnx", ".ort", ".config"))[0][:1]
    if p is not None and p.is_dir():
        raise UsageError(f"{p}: inspect takes one file, not a folder")
    return stage.run(model.path)


def verify(
    reference: PathLikeStr,
    candidate: PathLikeStr,
    *,
    inputs: PathLikeStr | None = None,
    fix_dim: Dims = None,
    rtol: float = 1e-3,
    atol: float = 1e-4,
    replay_runtime_optimizations: bool = False,
) -> VerifyResult:
    """Run both models on the same inputs and compare every output (``ok``: they match)."""
    from ortprep.stages import verify as stage

    options = stage.VerifyOptions(
        inputs=as_path(inputs),
        fix_dims=parse_fix_dims(fix_dim),
        rtol=rtol,
        atol=atol,
        replay_runtime_optimizations=replay_runtime_optimizations,
    )
    return stage.run(Path(reference), Path(candidate), options)


def optimize(
    path: PathLikeStr | None,
    out: PathLikeStr,
    *,
    example: bool = False,
    level: str = "every",
    target_platform: str = "arm",
    pre: str | None = None,
    no_verify: bool = False,
    fix_dim: Dims = None,
    inputs: PathLikeStr | None = None,
    progress: ProgressFn = no_progress,
) -> OptimizeResult:
    """The optimized ONNX model at each level, what changed, and online vs offline load time."""
    from ortprep.stages import optimize as stage

    _output_folder(out, path)
    options = stage.OptimizeOptions(
        levels=stage.parse_levels(level),
        target_platform=target_platform,
        pre=pre,
        verify=not no_verify,
        fix_dims=parse_fix_dims(fix_dim),
        inputs=as_path(inputs),
    )
    options.validate()  # before any work: a missing onnxslim is an error at once
    models, folder = _models(path, example)
    with _made_folder(Path(out)):
        result = stage.run(models, Path(out), options, progress, folder_input=folder)
    _single_failure(folder, result.models)
    return result


def bench(
    paths: PathLikeStr | Iterable[PathLikeStr] | None = None,
    *,
    example: bool = False,
    threads: int = 1,
    runs: int = 50,
    warmup: int = 5,
    inputs: PathLikeStr | None = None,
    fix_dim: Dims = None,
    replay_runtime_optimizations: bool = False,
    progress: ProgressFn = no_progress,
) -> BenchReport:
    """Load time, latency percentiles, throughput and peak memory, one process per model."""
    from ortprep.core.inputs import resolve_inputs
    from ortprep.stages import bench as stage

    options = stage.BenchOptions(
        threads=threads,
        runs=runs,
        warmup=warmup,
        inputs=as_path(inputs),
        fix_dims=parse_fix_dims(fix_dim),
        replay_runtime_optimizations=replay_runtime_optimizations,
    )
    options.validate()
    given_paths = _path_list(paths)
    if example and given_paths:
        raise UsageError("give either PATH... or --example, not both")
    if example:
        models = [m.path for m in resolve_inputs(None, True)]
    elif not given_paths:
        raise UsageError("missing PATH", "pass model files or folders, or --example")
    else:
        models = [
            m.path for p in given_paths for m in resolve_inputs(p, suffixes=(".onnx", ".ort"))
        ]
    single = len(models) == 1 and not any(p.is_dir() for p in given_paths)
    report = stage.run(models, options, progress)
    if single and report.failures:
        f = report.failures[0]
        raise BadModelError(f.error, f.hint)
    return report


def fix_shapes(
    path: PathLikeStr, out: PathLikeStr, *, fix_dim: Dims = None, fix_input: Shapes = None
) -> FixShapesResult:
    """Write a copy of ``path`` with symbolic dims or whole input shapes fixed, checked in ORT."""
    from ortprep.core.files import check_output_file
    from ortprep.stages import fix_shapes as stage

    check_output_file(Path(out), [Path(path)])
    options = stage.FixShapesOptions(
        dims=parse_fix_dims(fix_dim), inputs=parse_fix_inputs(fix_input)
    )
    return stage.run(Path(path), Path(out), options)


def diff(a: PathLikeStr, b: PathLikeStr) -> DiffResult:
    """What changed between two models: op counts, fusions, removed and added nodes."""
    from ortprep.stages import diff as stage

    return stage.run(Path(a), Path(b))


def config_build(
    paths: PathLikeStr | Iterable[PathLikeStr] | None,
    out: PathLikeStr,
    *,
    type_reduction: bool = False,
    style: str = "fixed",
    target_platform: str = "arm",
    example: bool = False,
    progress: ProgressFn = no_progress,
) -> BuildResult:
    """Write the reduced-build operator config ORT's converter writes for these models."""
    from ortprep.core.files import check_output_file, check_output_folder
    from ortprep.stages import opconfig

    check = check_output_folder if Path(out).is_dir() else check_output_file
    check(Path(out), _path_list(paths))
    return opconfig.run_build(
        _path_list(paths),
        Path(out),
        type_reduction=type_reduction,
        style=style,
        target_platform=target_platform,
        example=example,
        progress=progress,
    )


def config_merge(files: PathLikeStr | Iterable[PathLikeStr], out: PathLikeStr) -> MergeResult:
    """Merge configs into one that covers them all."""
    from ortprep.core.files import check_output_file
    from ortprep.stages import opconfig

    check_output_file(Path(out), _path_list(files))
    return opconfig.run_merge(_path_list(files), Path(out))


def config_check(
    config: PathLikeStr,
    paths: PathLikeStr | Iterable[PathLikeStr] | None,
    *,
    style: str = "fixed",
    target_platform: str = "arm",
    example: bool = False,
    progress: ProgressFn = no_progress,
) -> CoverageResult:
    """Will these models run on a build made from this config? (``ok``: every one is covered)."""
    from ortprep.stages import opconfig

    return opconfig.run_check(
        Path(config),
        _path_list(paths),
        style=style,
        target_platform=target_platform,
        example=example,
        progress=progress,
    )


def config_build_command(
    config: PathLikeStr,
    target: str,
    *,
    ep: str | Iterable[str] | None = None,
    replay_runtime_optimizations: bool = False,
    extended: bool = False,
) -> BuildCommand:
    """The build.py command for a reduced build from this config, and why each flag."""
    from ortprep.stages import opconfig

    eps = [ep] if isinstance(ep, str) else list(ep or [])
    return opconfig.run_build_command(
        Path(config), target, eps, replay_runtime_optimizations, extended
    )


def _path_list(paths: PathLikeStr | Iterable[PathLikeStr] | None) -> list[Path]:
    """One path or many, as a list (a str or PathLike is one path, never its characters)."""
    if paths is None:
        return []
    if isinstance(paths, (str, PathLike)):
        return [Path(paths)]
    return [Path(p) for p in paths]
