"""``ortprep prepare``: every artifact for a device, checked, verified, measured and explained."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ortprep.cli import render
from ortprep.cli.check_cmd import RequireCoverageOpt, RequireOpt, render_gate
from ortprep.cli.common import (
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_VERDICT,
    DebugOpt,
    ExampleOpt,
    FixDimOpt,
    InputsOpt,
    JsonOpt,
    OutOpt,
    PathArg,
    RunsOpt,
    TargetPlatformOrNoneOpt,
    execute,
)
from ortprep.manifest import OVERLAYS


def register(app: typer.Typer) -> None:
    app.command(
        "prepare",
        epilog="Example: ortprep prepare models/ -o out --target ios --workers 4",
    )(prepare)


def prepare(
    out: OutOpt,
    path: PathArg = None,
    example: ExampleOpt = False,
    target: Annotated[
        str, typer.Option(help="Deployment target: android, ios, linux-arm or linux-x86.")
    ] = "android",
    ep: Annotated[
        str | None,
        typer.Option(
            help="EPs to check, comma separated (default: the target's; android: nnapi,xnnpack; "
            "ios: coreml-mlprogram,coreml-neuralnetwork,xnnpack; linux-*: xnnpack)."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="Models prepared in parallel (processes).")] = 1,
    target_platform: TargetPlatformOrNoneOpt = None,
    fix_dim: FixDimOpt = None,
    inputs: InputsOpt = None,
    runs: RunsOpt = 20,
    no_bench: Annotated[
        bool, typer.Option("--no-bench", help="Skip the benchmark (the report says so).")
    ] = False,
    require: RequireOpt = None,
    require_coverage: RequireCoverageOpt = None,
    json_: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Prepare models for a device: every artifact, checked, verified, measured and explained.

    For each model: both .ort styles and their reduced-build configs for the target's CPU, the
    target's EPs checked on the original and on both .ort files, what the optimizations did,
    a benchmark, the build.py command, and which file to ship and why. Writes OUT/manifest.json
    and OUT/report.html (one self-contained page). --target-platform overrides the target's
    CPU (default: arm for android, ios, linux-arm; amd64 for linux-x86); --fix-dim and --inputs
    work as in convert (fixed in the .ort files, used for verification) and bench. With
    --require / --require-coverage, each model's check is a CI gate: exit 1 when an EP falls
    below.
    """

    def work(progress: Any) -> Any:
        from ortprep import api

        result = api.prepare(
            path,
            out,
            example=example,
            target=target,
            ep=ep,
            workers=workers,
            target_platform=target_platform,
            fix_dim=fix_dim,
            inputs=inputs,
            runs=runs,
            no_bench=no_bench,
            require=require,
            require_coverage=require_coverage,
            progress=progress,
        )
        if debug:  # a bug on one model did not stop the others; show where it happened
            for m in result.models:
                if m.traceback:
                    render.err.print(m.traceback, markup=False, highlight=False)
        return result

    def exit_code(result: Any) -> int:
        if result.internal_error:
            return EXIT_INTERNAL
        return EXIT_OK if result.ok else EXIT_VERDICT

    execute(work, _render, json_=json_, debug=debug, exit_code=exit_code)


def _render(result: Any) -> None:
    from rich.table import Table

    escape = render.text

    table = Table(
        title=f"prepared for {result.options.target} ({', '.join(result.options.check_eps)})",
        title_justify="left",
    )
    table.add_column("model", overflow="fold", ratio=2)
    table.add_column("recommendation", overflow="fold", ratio=4)
    table.add_column("verified")
    for m in result.models:
        if m.error is not None:
            table.add_row(escape(m.relative), f"[red]failed:[/] {escape(m.error)}", "")
            continue
        rec = m.recommendation
        ort_files = [f for f in m.files if f.kind == "ort"]
        unpassed = [
            v
            for f in ort_files
            if f.artifact is not None
            for v in f.artifact.verification
            if not v.passed
        ]
        verified = (
            "[green]yes[/]"
            if all(f.verified for f in ort_files)
            else "[red]not verified[/]"
            if unpassed and all(v.not_verified for v in unpassed)
            else "[red]NO[/]"
            if any(f.verified is False for f in ort_files)
            else "skipped"
        )
        table.add_row(escape(m.relative), escape(rec.headline) if rec else "", verified)
    render.out.print(table)
    for m in result.models:
        if m.error is not None:
            if m.hint:
                render.out.print(f"[dim]{escape(m.relative)}: hint: {escape(m.hint)}[/]")
            continue
        for p in m.problems:
            render.warning(f"{m.relative}: {p}")
        if m.recommendation:
            for w in m.recommendation.warnings:
                render.warning(f"{m.relative}: {w}")
        if m.gate is not None:
            render_gate(m.gate, f"{m.relative}: ")
    overlays = Path(result.out_dir) / OVERLAYS
    if overlays.is_dir():
        render.out.print(
            f"overlays: {escape(str(overlays))}/ (each checked file's EP partitions for Model "
            "Explorer; the report lists the command that opens each, or: ortprep view FILE)"
        )
    render.out.print(f"manifest: {escape(result.manifest_path)}")
    render.out.print(f"report:   {escape(result.report_path)}")
    failed = sum(not m.ok for m in result.models)
    if failed:
        render.error(f"{failed} of {len(result.models)} model(s) need attention (see the report)")
