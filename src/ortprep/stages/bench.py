"""``bench``: load time, first run, latency percentiles, throughput and peak memory per model.

Each model is measured in a fresh child process (``python -m ortprep.stages.bench``: the request
as JSON on stdin, the figures as JSON on stdout), so one model's memory never counts for
another's. Peak RSS is the child's own high-water mark, which includes the Python interpreter,
numpy and onnxruntime themselves; ``baseline_rss_mb`` is that mark just before the model was
loaded, so the model's own share is the difference. On Linux the mark is ``VmHWM`` of
``/proc/self/status`` (the high-water mark of the child's own memory map), not ``ru_maxrss``:
Linux carries the parent's peak into ``ru_maxrss`` across fork and exec, so every file of a big
parent (``prepare``) showed the parent's figure.

Every figure says which CPU the file was built for (``target_cpu``) and whether that is this
host's (``representative``): an ``.onnx`` is optimized by ORT at load for the host, an ``.ort``
file keeps what its converter baked in for its target (for arm: no NCHWc layout, int8 QDQ
choices), so an arm-built file timed on an x86 host does not show what the device will see.

Sessions are what a user gets by default on this machine: CPU EP, level all for ``.onnx`` (ORT
optimizes at load, NCHWc included on x86), ``intra_op_num_threads`` as asked. An ``.ort`` file is
loaded at level all too, or, with ``replay_runtime_optimizations``, at level extended with
``session.enable_saved_runtime_optimizations=1`` (ort-internals §2.5: replay needs both).
Timing: one first run (timed on its own: it allocates and pre-packs), ``warmup`` untimed runs,
then ``runs`` timed runs; percentiles are linear interpolations (numpy's default).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ortprep.core.batch import Failure, attempt
from ortprep.core.errors import BadModelError, UsageError
from ortprep.core.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from ortprep.core.graph import Model


@dataclass(frozen=True)
class BenchOptions:
    threads: int = 1
    runs: int = 50
    warmup: int = 5
    inputs: Path | None = None
    fix_dims: Mapping[str, int] = field(default_factory=dict)
    replay_runtime_optimizations: bool = False
    target_cpu: str | None = None
    """The CPU the ``.ort`` files were built for (``arm``/``amd64``) when the caller knows it
    (``prepare`` made them); ``None``: read from each file what can be read."""

    def validate(self) -> None:
        from ortprep.core.limits import THREADS_PER_CORE, check_parallel

        check_parallel("--threads", self.threads, THREADS_PER_CORE, "ORT's default, one per core")
        if self.runs < 1:
            raise UsageError(f"--runs {self.runs}: at least one timed run is needed")
        if self.warmup < 0:
            raise UsageError(f"--warmup {self.warmup}: use 0 or more")
        if self.inputs is not None and not self.inputs.is_file():
            raise UsageError(f"{self.inputs}: no such inputs file", "pass an .npz file")


@dataclass(frozen=True)
class BenchResult:
    """One model's figures (times in milliseconds, memory in MiB)."""

    path: str
    load_ms: float
    first_run_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    throughput_per_s: float
    peak_rss_mb: float
    size_bytes: int
    threads: int
    format: str = "onnx"
    session: str = ""
    runs: int = 0
    warmup: int = 0
    mean_ms: float = 0.0
    baseline_rss_mb: float = 0.0
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    host_cpu: str = ""
    """This machine's CPU in ORT's terms (``amd64``, ``arm``)."""
    target_cpu: str = ""
    """The CPU the file was built for (``amd64``, ``arm``, or ``unknown``)."""
    representative: bool | None = None
    """Whether the file was built for this host's CPU (None: unknown)."""
    note: str = ""
    """Why the latency does or does not carry over, in one sentence."""
    inputs_searched: str = ""
    """When the synthesized inputs did not run: the inputs the search found and timed instead
    (core/input_search.py), for people; "" otherwise."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "load_ms": self.load_ms,
            "first_run_ms": self.first_run_ms,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "throughput_per_s": self.throughput_per_s,
            "peak_rss_mb": self.peak_rss_mb,
            "size_bytes": self.size_bytes,
            "threads": self.threads,
            "format": self.format,
            "session": self.session,
            "runs": self.runs,
            "warmup": self.warmup,
            "mean_ms": self.mean_ms,
            "baseline_rss_mb": self.baseline_rss_mb,
            "input_shapes": {k: list(v) for k, v in self.input_shapes.items()},
            "host_cpu": self.host_cpu,
            "target_cpu": self.target_cpu,
            "representative": self.representative,
            "note": self.note,
            "inputs_searched": self.inputs_searched,
        }


@dataclass(frozen=True)
class BenchFailure:
    """A model that could not be measured, and why."""

    path: str
    failure: Failure

    @property
    def error(self) -> str:
        return self.failure.message

    @property
    def hint(self) -> str | None:
        return self.failure.hint

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path, "error": self.error}
        if self.hint:
            d["hint"] = self.hint
        return d


@dataclass(frozen=True)
class BenchReport:
    results: tuple[BenchResult, ...]
    failures: tuple[BenchFailure, ...] = ()
    onnxruntime_version: str = ""
    options: BenchOptions | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def internal_error(self) -> bool:
        return any(f.failure.internal for f in self.failures)

    @property
    def tracebacks(self) -> tuple[str, ...]:
        return tuple(f.failure.traceback for f in self.failures if f.failure.traceback)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "results": [r.to_dict() for r in self.results],
            "failures": [f.to_dict() for f in self.failures],
            "ok": self.ok,
            "onnxruntime_version": self.onnxruntime_version,
            "host": host_description(),
        }
        if self.options is not None:
            o = self.options
            d["options"] = {
                "threads": o.threads,
                "runs": o.runs,
                "warmup": o.warmup,
                "inputs": str(o.inputs) if o.inputs else None,
                "fix_dims": dict(o.fix_dims),
                "replay_runtime_optimizations": o.replay_runtime_optimizations,
                "target_cpu": o.target_cpu,
            }
        return d


def host_platform() -> str:
    """This machine as a target platform: ``amd64`` for x86 CPUs, else ``arm``."""
    machine = platform.machine().lower()
    return "amd64" if machine in {"x86_64", "amd64", "i386", "i686", "x86"} else "arm"


def host_description() -> str:
    return f"{platform.machine()} {platform.system()}, {os.cpu_count()} logical CPUs"


NCHWC_DOMAIN = "com.microsoft.nchwc"
"""ORT's NCHWc ops: laid out for an x86 vector width, written only by an amd64 conversion
(core/runtime.py disables the NchwcTransformer for arm, as ORT's converter does)."""


def built_for(model: Model, known: str | None = None) -> tuple[str, bool | None, str]:
    """``(target_cpu, representative, note)`` for one file on this host.

    ``known``: the CPU the caller built an ``.ort`` file for. Otherwise an ``.ort`` file says it
    only when it holds NCHWc ops (then amd64); a file without them may have been built for
    either CPU (ORT records no target in the file), so the answer is ``unknown``.
    """
    host = host_platform()
    if model.format == "onnx":
        return host, True, f"optimized by ORT at load for this host's CPU ({host})"
    target = known
    if target is None and any(n.domain == NCHWC_DOMAIN for _, n in model.all_nodes()):
        target = "amd64"
    if target is None:
        return (
            "unknown",
            None,
            "the .ort file does not record the CPU it was built for (it holds no NCHWc ops, "
            "which only an amd64 build writes), so whether this latency represents it here "
            "is unknown",
        )
    if target == host:
        return target, True, f"built for {target}, this host's CPU"
    what = "without the NCHWc layout" if target == "arm" else "with x86 NCHWc layout"
    return (
        target,
        False,
        f"built for {target} ({what}) and timed on this {host} host, so its latency does not "
        f"carry over to an {target} device nor compare fairly with files built for {host}",
    )


# --------------------------------------------------------------------------- the parent side


def _size_on_disk(model: Model) -> int:
    path: Path = model.path
    total = path.stat().st_size
    for name in model.external_data_files:
        total += (path.parent / name).stat().st_size
    return total


def _session_description(model: Model, options: BenchOptions) -> tuple[str, bool]:
    """What session the child creates, in words, and whether it replays saved records."""
    if model.format == "onnx":
        text = f"level all (ORT's default), optimized at load for this CPU ({host_platform()})"
        if options.replay_runtime_optimizations:
            text += "; --replay-runtime-optimizations applies to .ort files only"
        return text, False
    records = sum(len(r) for r in model.ort.runtime_optimizations.values()) if model.ort else 0
    if options.replay_runtime_optimizations:
        return (
            "ORT format, level extended, session.enable_saved_runtime_optimizations=1 "
            f"({records} saved runtime optimization records)",
            True,
        )
    text = "ORT format, level all (ORT's default)"
    if records:
        text += (
            f"; its {records} saved runtime optimization records are not replayed "
            "(pass --replay-runtime-optimizations)"
        )
    return text, False


def _child_env() -> dict[str, str]:
    """The child must import this very ortprep, installed or not, and know its parent."""
    from ortprep.core.lifeline import child_env

    env = child_env()
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def _run_child(request: dict[str, Any]) -> dict[str, Any]:
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "ortprep.stages.bench"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env=_child_env(),
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if lines:
        reply: dict[str, Any] = json.loads(lines[-1])
        if reply.get("internal"):
            raise RuntimeError(f"benchmark process: {reply.get('error')}")
        return reply
    if proc.returncode < 0:
        raise BadModelError(
            f"{request['path']}: ONNX Runtime crashed while running the model "
            f"(signal {-proc.returncode})",
            "try `ortprep verify` on it, or a smaller --fix-dim",
        )
    last = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    raise RuntimeError(
        f"benchmark process ended with code {proc.returncode}" + (f": {last[-1]}" if last else "")
    )


def bench_model(path: Path, options: BenchOptions) -> BenchResult:
    """Measure one model in a fresh process. Raises :class:`OrtprepError` for a bad model."""
    from ortprep.core.inputs import open_model

    model = open_model(path)  # clear exit-2 messages for bad files before ORT sees them
    description, replay = _session_description(model, options)
    target_cpu, representative, note = built_for(model, options.target_cpu)
    is_onnx = model.format == "onnx"
    size = _size_on_disk(model) if is_onnx else path.stat().st_size
    request = {
        "path": str(path),
        "format": model.format,
        "level": "extended" if replay else "all",
        "replay": replay,
        "target_platform": host_platform(),  # session defaults as ORT sets them here
        "threads": options.threads,
        "runs": options.runs,
        "warmup": options.warmup,
        "inputs": str(options.inputs) if options.inputs else None,
        "fix_dims": dict(options.fix_dims),
    }
    del model
    reply = _run_child(request)
    searched = ""
    if reply.get("run_failed") and options.inputs is None:
        # The synthesized inputs do not run (a reflect Pad longer than the signal, token ids
        # past the vocabulary): time the model on inputs the search finds, as verify does.
        with tempfile.TemporaryDirectory(prefix="ortprep-bench-") as tmp:
            found = _inputs_that_run(path, options, Path(tmp) / "inputs.npz")
            if found:
                reply = _run_child({**request, "inputs": str(Path(tmp) / "inputs.npz")})
                searched = found
    if "error" in reply:
        raise BadModelError(reply["error"], reply.get("hint"))
    return BenchResult(
        path=str(path),
        load_ms=reply["load_ms"],
        first_run_ms=reply["first_run_ms"],
        p50_ms=reply["p50_ms"],
        p90_ms=reply["p90_ms"],
        p99_ms=reply["p99_ms"],
        throughput_per_s=reply["throughput_per_s"],
        peak_rss_mb=reply["peak_rss_mb"],
        size_bytes=size,
        threads=options.threads,
        format="onnx" if is_onnx else "ort",
        session=description,
        runs=options.runs,
        warmup=options.warmup,
        mean_ms=reply["mean_ms"],
        baseline_rss_mb=reply["baseline_rss_mb"],
        input_shapes={k: tuple(v) for k, v in reply["input_shapes"].items()},
        host_cpu=host_platform(),
        target_cpu=target_cpu,
        representative=representative,
        note=note,
        inputs_searched=searched,
    )


def _inputs_that_run(path: Path, options: BenchOptions, target: Path) -> str:
    """Search inputs ``path`` runs on (the original unoptimized, :func:`input_search.search`),
    write them to ``target`` (.npz) and say which they are; "" when none runs."""
    from ortprep.core import input_search
    from ortprep.core.inputs import open_model
    from ortprep.core.runtime import SessionRecipe, create_session

    model = open_model(path)
    is_ort = model.format == "ort"
    recipe = SessionRecipe(
        level="disable",
        free_dims=None if is_ort else dict(options.fix_dims) or None,
        extra={"session.load_model_format": "ORT"} if is_ort else None,
    )
    found = input_search.search(create_session(path, recipe), model, options.fix_dims, where=path)
    if not found.ran:
        return ""
    input_search.save_regenerated(found.inputs, target)
    tries = len(found.failed)
    return (
        f"the synthesized inputs did not run ({tries} attempt(s)); timed on inputs found: "
        + "; ".join(i.text for i in found.inputs)
    )


def run(
    paths: list[Path], options: BenchOptions, progress: ProgressFn = no_progress
) -> BenchReport:
    """Benchmark each model file (``.onnx`` or ``.ort``), one fresh process per model.

    A model that cannot be loaded or run is reported in ``failures``; the others still run.
    """
    from ortprep.core.runtime import ort_version

    options.validate()
    results: list[BenchResult] = []
    failures: list[BenchFailure] = []
    for i, path in enumerate(paths):
        progress("benchmarking", i, len(paths))
        measured = attempt(lambda: bench_model(path, options))  # noqa: B023 -- called at once
        if isinstance(measured, Failure):
            failures.append(BenchFailure(str(path), measured))
        else:
            results.append(measured)
    progress("benchmarking", len(paths), len(paths))
    return BenchReport(tuple(results), tuple(failures), ort_version(), options)


# --------------------------------------------------------------------------- the child side


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB (0.0 where unavailable).

    Linux: ``VmHWM``, the high-water mark of this process's own memory map. ``ru_maxrss`` would
    include the parent's peak (the kernel keeps it across fork and exec), so a child of a large
    parent would report the parent's figure whatever it loads.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def measure(request: Mapping[str, Any]) -> dict[str, Any]:
    """Load and run one model as ``request`` says; runs in the child process."""
    import time

    import numpy as np
    import onnxruntime as ort

    from ortprep.core.runtime import (
        SessionRecipe,
        describe_ort_error,
        quiet_ort,
        session_options,
    )
    from ortprep.stages.verify import make_feeds

    path = Path(request["path"])
    fix_dims: dict[str, int] = dict(request["fix_dims"])
    is_ort = request["format"] == "ort"
    recipe = SessionRecipe(
        level=request["level"],
        target_platform=request["target_platform"],
        replay_saved=request["replay"],
        free_dims=None if is_ort else fix_dims,
        # an ORT-format file named .onnx loads only with the format set
        extra={"session.load_model_format": "ORT"} if is_ort else None,
    )
    quiet_ort()
    so = session_options(recipe)
    so.intra_op_num_threads = int(request["threads"])
    baseline = peak_rss_mb()
    start = time.perf_counter()
    try:
        session = ort.InferenceSession(
            str(path),
            so,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=recipe.disabled_optimizers() or None,
        )
    except Exception as exc:  # noqa: BLE001 -- ORT reports a bad model as a plain exception
        raise BadModelError(
            f"{path}: ONNX Runtime cannot load the model ({describe_ort_error(exc)})",
            "check the model with `ortprep inspect`",
        ) from None
    load_ms = (time.perf_counter() - start) * 1000
    inputs = Path(request["inputs"]) if request["inputs"] else None
    feeds, shapes = make_feeds(session, inputs, fix_dims, path)
    wanted = {i.name for i in session.get_inputs()}
    feeds = {k: v for k, v in feeds.items() if k in wanted}
    try:
        start = time.perf_counter()
        session.run(None, feeds)
        first_ms = (time.perf_counter() - start) * 1000
        for _ in range(int(request["warmup"])):
            session.run(None, feeds)
        times = []
        loop_start = time.perf_counter()
        for _ in range(int(request["runs"])):
            t = time.perf_counter()
            session.run(None, feeds)
            times.append((time.perf_counter() - t) * 1000)
        loop_s = time.perf_counter() - loop_start
    except Exception as exc:  # noqa: BLE001 -- a run failure is about the model or its inputs
        return {  # the parent may search other inputs (run_failed), then says this if none run
            "error": f"{path}: the model failed to run ({describe_ort_error(exc)})",
            "hint": "check the input shapes: pass --fix-dim NAME=VALUE or real --inputs FILE.npz",
            "run_failed": True,
        }
    p50, p90, p99 = (float(v) for v in np.percentile(np.asarray(times), [50, 90, 99]))
    return {
        "load_ms": round(load_ms, 3),
        "first_run_ms": round(first_ms, 3),
        "p50_ms": round(p50, 4),
        "p90_ms": round(p90, 4),
        "p99_ms": round(p99, 4),
        "mean_ms": round(float(np.mean(times)), 4),
        "throughput_per_s": round(len(times) / loop_s, 2) if loop_s > 0 else 0.0,
        "peak_rss_mb": round(peak_rss_mb(), 2),
        "baseline_rss_mb": round(baseline, 2),
        "input_shapes": {k: list(v) for k, v in shapes.items() if k in wanted},
    }


def _child_main() -> None:
    from ortprep.core.lifeline import die_with_parent

    die_with_parent()  # a killed `ortprep bench` leaves no measurement running on
    request = json.loads(sys.stdin.read())
    measured = attempt(lambda: measure(request))
    reply = measured
    if isinstance(measured, Failure):  # a bug is handed to the parent, which reports it
        reason = measured.message.removeprefix("internal error: ")
        reply = {"error": reason, "hint": measured.hint, "internal": measured.internal}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    _child_main()
