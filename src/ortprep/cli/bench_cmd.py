"""``ortprep bench``: load time, latency percentiles, throughput and peak memory per model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ortprep.cli import render
from ortprep.cli.common import (
    DebugOpt,
    ExampleOpt,
    FixDimOpt,
    InputsOpt,
    JsonOpt,
    RunsOpt,
    execute,
)


def register(app: typer.Typer) -> None:
    app.command(
        "bench",
        epilog="Example: ortprep bench out/model.ort model.onnx --threads 2 --runs 100",
    )(bench)


def bench(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Model files (.onnx, .ort) or folders of them.", show_default=False),
    ] = None,
    example: ExampleOpt = False,
    threads: Annotated[
        int, typer.Option(help="intra_op_num_threads (0: ORT's default, one per core).")
    ] = 1,
    runs: RunsOpt = 50,
    warmup: Annotated[int, typer.Option(help="Untimed runs after the first one.")] = 5,
    inputs: InputsOpt = None,
    fix_dim: FixDimOpt = None,
    replay_runtime_optimizations: Annotated[
        bool,
        typer.Option(
            "--replay-runtime-optimizations",
            help="Load .ort files at level extended with "
            "session.enable_saved_runtime_optimizations=1 (trusted models only).",
        ),
    ] = False,
    json_: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Measure load time, first run, p50/p90/p99 latency, throughput and peak memory.

    Each model runs in a fresh process (so memory figures do not mix) on the CPU EP with
    ORT's default session (.onnx optimized at load). Symbolic dims without --fix-dim become
    1 for batch-like dims and 32 otherwise.
    """

    def work(progress: Any) -> Any:
        from ortprep import api

        return api.bench(
            paths,
            example=example,
            threads=threads,
            runs=runs,
            warmup=warmup,
            inputs=inputs,
            fix_dim=fix_dim,
            replay_runtime_optimizations=replay_runtime_optimizations,
            progress=progress,
        )

    execute(work, _render, json_=json_, debug=debug)


def _size(n: int) -> str:
    return f"{n / 1024:.1f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


def _render(report: Any) -> None:
    from rich import box
    from rich.table import Table

    escape = render.text

    threads = report.options.threads if report.options else "?"
    table = Table(
        title=f"onnxruntime {report.onnxruntime_version}, CPU EP, {threads} intra-op "
        "thread(s); times in ms, peak RSS",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    columns = ("model", "load", "1st", "p50", "p90", "p99", "runs/s", "RSS MB", "size")
    for col in columns:
        if col == "model":
            table.add_column(col, overflow="fold", min_width=10)
        else:
            table.add_column(col, justify="right", no_wrap=True)
    for r in report.results:
        table.add_row(
            escape(Path(r.path).name),
            f"{r.load_ms:.1f}",
            f"{r.first_run_ms:.2f}",
            f"{r.p50_ms:.2f}",
            f"{r.p90_ms:.2f}",
            f"{r.p99_ms:.2f}",
            f"{r.throughput_per_s:.1f}",
            f"{r.peak_rss_mb:.0f}",
            _size(r.size_bytes),
        )
    if report.results:
        render.out.print(table)
    for r in report.results:
        shapes = ", ".join(f"{k} {list(v)}" for k, v in r.input_shapes.items())
        render.out.print(
            f"[dim]{escape(r.path)}: {escape(r.session)}; inputs {escape(shapes)}; "
            f"{r.runs} timed runs after {r.warmup} warm-up; peak RSS includes "
            f"{r.baseline_rss_mb:.0f} MB of Python and ORT before the load[/]"
        )
        if r.inputs_searched:
            render.out.print(f"[dim]{escape(r.inputs_searched)}[/]")
        if r.representative is not True:
            render.warning(f"{Path(r.path).name}: {r.note}")
    for f in report.failures:
        render.error(f"{f.path}: {f.error}", f.hint)
    if report.failures:
        total = len(report.results) + len(report.failures)
        render.error(f"{len(report.failures)} of {total} model(s) failed")
