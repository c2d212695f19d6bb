"""``prepare``'s benchmark: the original and both ``.ort`` files, each in its own process, and
when the ``.ort`` files were built for another CPU than this host's, the host-built twin.

An ``.ort`` file built for arm (no NCHWc layout, arm's int8 QDQ choices) runs on an x86 host
without the optimizations ORT gives the ``.onnx`` at load here, so its bars are not what the
device will see and not a fair comparison with the ``.onnx`` (stages/bench.py ``built_for``).
When a Fixed-style file built for this host holds other ops (NCHWc, other fusions), it is made
in a temporary folder, timed and shown as "built for this host, not shipped": what the
optimizations the target leaves out are worth here.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ortprep.manifest import HOST_TWIN, Benched, PrepareOptions

if TYPE_CHECKING:
    from ortprep.core.input_search import InputUsed
    from ortprep.core.inputs import ModelInput
    from ortprep.core.progress import ProgressFn
    from ortprep.stages.bench import BenchOptions, BenchReport

__all__ = ["benchmark"]


def _options(
    options: PrepareOptions,
    target_cpu: str,
    sizes: Mapping[str, int] | None = None,
    verified: Path | None = None,
) -> BenchOptions:
    """Options for one benchmark run: the verification's inputs when there are some (their
    shapes are what they are: no free-dimension override may contradict them), else the
    model's own sizes as fixed dims."""
    from ortprep.stages.bench import BenchOptions

    given = options.inputs or verified
    return BenchOptions(
        runs=options.bench_runs,
        warmup=options.bench_warmup,
        replay_runtime_optimizations=True,
        inputs=given,
        fix_dims=dict(options.fix_dims) if given else {**(sizes or {}), **options.fix_dims},
        target_cpu=target_cpu,
    )


def _verified_inputs(inputs: Sequence[InputUsed], folder: Path) -> Path | None:
    """The inputs the verification ran on, made again into ``folder/inputs.npz``: the search
    tried the model's own sizes first and replaced generated inputs that a model cannot run
    (token ids past its vocabulary, a length its Pad refuses) with ones it runs, and the
    benchmark must not fall back on those (core/input_search.py)."""
    from ortprep.core.input_search import save_regenerated

    if not inputs:
        return None
    try:
        return save_regenerated(inputs, folder / "inputs.npz")
    except ValueError:  # inputs read from a file, or of several attempts: not remade
        return None


def _run(
    problems: list[str], paths: list[Path], options: BenchOptions, progress: ProgressFn
) -> BenchReport | None:
    from ortprep.core.batch import noted
    from ortprep.stages import bench

    report = noted(problems, "bench", lambda: bench.run(paths, options, progress))
    if report is None:
        return None
    problems.extend(f"bench {Path(f.path).name}: {f.error}" for f in report.failures)
    return report


def benchmark(
    item: ModelInput,
    ort_paths: Mapping[str, Path],
    options: PrepareOptions,
    problems: list[str],
    progress: ProgressFn,
    rel: Callable[[Path], str],
    sizes: Mapping[str, int] | None = None,
    verified: Sequence[InputUsed] = (),
) -> tuple[Benched, ...]:
    """One row per file measured (a failure is noted in ``problems``, never raised).

    ``verified``: the inputs the verification ran on (made again, same seed; tried at the
    model's own sizes first, so a 320×320 detector is timed at 320×320). Without them (not
    verified, or --no-verify), ``sizes``: dim values the model itself gives (its metadata,
    sibling dims: not guesses; stages/fix_values.py ``own_sizes``).
    """
    with tempfile.TemporaryDirectory(prefix="ortprep-bench-") as tmp:
        feeds = None if options.inputs else _verified_inputs(verified, Path(tmp))
        return _benchmark(item, ort_paths, options, problems, progress, rel, sizes, feeds)


def _benchmark(
    item: ModelInput,
    ort_paths: Mapping[str, Path],
    options: PrepareOptions,
    problems: list[str],
    progress: ProgressFn,
    rel: Callable[[Path], str],
    sizes: Mapping[str, int] | None,
    feeds: Path | None,
) -> tuple[Benched, ...]:
    roles = [
        ("original", item.path),
        ("fixed", ort_paths["fixed"]),
        ("runtime", ort_paths["runtime"]),
    ]
    report = _run(
        problems,
        [p for _, p in roles],
        _options(options, options.target_platform, sizes, feeds),
        progress,
    )
    if report is None:
        return ()
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
    twin = _host_twin(item, ort_paths["fixed"], options, problems, progress, sizes, feeds)
    return (*rows, *twin)


def _ops(path: Path) -> Counter[str]:
    from ortprep.core.inputs import open_model

    return Counter(n.op_id for _, n in open_model(path).all_nodes())


def _host_twin(
    item: ModelInput,
    shipped: Path,
    options: PrepareOptions,
    problems: list[str],
    progress: ProgressFn,
    sizes: Mapping[str, int] | None,
    feeds: Path | None,
) -> tuple[Benched, ...]:
    """The Fixed-style file built for this host, timed when it differs from the shipped one."""
    from ortprep.core.batch import failure_of
    from ortprep.stages.bench import host_platform
    from ortprep.stages.ort_artifacts import ort_recipe, write_with_ort

    host = host_platform()
    if options.target_platform == host:
        return ()
    with tempfile.TemporaryDirectory(prefix="ortprep-twin-") as tmp:
        twin = Path(tmp) / f"{item.path.stem}.{host}.ort"
        try:
            recipe = ort_recipe("fixed", "all", host, free_dims=options.fix_dims)
            write_with_ort(item.path, twin, recipe)
            if _ops(twin) == _ops(shipped):
                return ()  # the same graph: the shipped file's figures stand for it
        except Exception as exc:
            failure = failure_of(exc)
            if failure.internal:
                raise
            problems.append(f"host-built Fixed .ort for {host}: {failure.line}")
            return ()
        report = _run(problems, [twin], _options(options, host, sizes, feeds), progress)
        if report is None or not report.results:
            return ()
        metrics = report.results[0].to_dict()
        metrics.pop("path", None)
        metrics["note"] = (
            f"built here for this {host} host only to show what the optimizations the "
            f"{options.target_platform} target leaves out are worth on this machine; not shipped"
        )
        return (Benched(HOST_TWIN, f"{twin.name} (built for this host, not shipped)", metrics),)
