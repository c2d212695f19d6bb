"""``ortprep convert``: ONNX to ORT format (Fixed and Runtime styles), configs, verification."""

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
    OutOpt,
    PathArg,
    TargetPlatformOpt,
    execute,
)


def register(app: typer.Typer) -> None:
    app.command(
        "convert",
        epilog="Example: ortprep convert models/ -o out --style both --type-reduction",
    )(convert)


def convert(
    out: OutOpt,
    path: PathArg = None,
    example: ExampleOpt = False,
    style: Annotated[str, typer.Option(help="fixed, runtime or both.")] = "both",
    level: Annotated[str, typer.Option(help="basic, extended, layout or all.")] = "all",
    target_platform: TargetPlatformOpt = "arm",
    type_reduction: Annotated[
        bool, typer.Option("--type-reduction", help="Write per-op types into the configs.")
    ] = False,
    save_optimized_onnx: Annotated[
        bool, typer.Option("--save-optimized-onnx", help="Also save the optimized ONNX model.")
    ] = False,
    custom_op_library: Annotated[
        Path | None, typer.Option(help="Shared library with custom op kernels.")
    ] = None,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Skip loading back and comparing outputs.")
    ] = False,
    fix_dim: FixDimOpt = None,
    inputs: InputsOpt = None,
    json_: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Convert ONNX models to ORT format, write reduced-build configs, verify every artifact.

    Fixed style (NAME.ort) bakes every optimization of the level in; Runtime style
    (NAME.with_runtime_opt.ort) bakes in basic optimizations and saves the recordable fusions,
    replayed at load only with session.enable_saved_runtime_optimizations=1.
    """

    def work(progress: Any) -> Any:
        from ortprep import api

        return api.convert(
            path,
            out,
            example=example,
            style=style,
            level=level,
            target_platform=target_platform,
            type_reduction=type_reduction,
            save_optimized_onnx=save_optimized_onnx,
            custom_op_library=custom_op_library,
            no_verify=no_verify,
            fix_dim=fix_dim,
            inputs=inputs,
            progress=progress,
        )

    execute(work, _render, json_=json_, debug=debug)


def _size(n: int) -> str:
    return f"{n / 1024:.1f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.2f} MB"


def _render(result: Any) -> None:
    from rich.table import Table

    from ortprep.cli.verification_text import print_verification

    t = render.text
    table = Table(
        title=f"converted with onnxruntime {result.onnxruntime_version}", title_justify="left"
    )
    table.add_column("artifact", overflow="fold", ratio=3)
    table.add_column("style")
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("nodes", justify="right")
    table.add_column("saved records", overflow="fold", ratio=2)
    table.add_column("verified")
    for m in result.models:
        table.add_section()
        if m.error:  # the reason follows the table, on a line of its own
            table.add_row(f"{t(Path(m.input).name)}: [red]failed[/]", "", "", "", "", "-")
            continue
        for a in m.artifacts:
            records = ", ".join(f"{t(k)} {v}" for k, v in sorted(a.records.items())) or (
                "none" if a.kind == "ort" and a.style == "runtime" else "-"
            )
            verified = {True: "[green]yes[/]", False: "[red]NO[/]", None: "skipped"}[a.verified]
            if any(v.not_verified for v in a.verification):
                verified = "[red]not verified[/]"
            nodes = "-" if a.nodes is None else str(a.nodes)
            table.add_row(t(_short(a.path)), a.style, _size(a.size_bytes), nodes, records, verified)
    render.out.print(table)
    for m in result.models:
        checked = [(Path(a.path).name, v) for a in m.artifacts for v in a.verification]
        if checked:
            render.out.print(f"[bold]{t(Path(m.input).name)}[/]")
            print_verification(checked, "  ")
        for a in m.artifacts:
            for note in a.notes:
                render.out.print(f"[dim]{t(Path(a.path).name)}:[/] {t(note)}")
            for w in a.warnings:
                render.warning(f"{Path(a.path).name}: {w}")
            for v in a.verification:
                if not v.passed and not v.not_verified:
                    render.warning(f"{Path(a.path).name} ({v.session}): {v.why_failed}")
        if m.error:
            render.out.print(f"[red]failed:[/] {t(m.error)}", soft_wrap=True)
            if m.hint:
                render.out.print(f"[dim]{t(Path(m.input).name)}: hint: {t(m.hint)}[/]")
    for c in result.configs:
        render.out.print(f"config: {t(c)}")
    failed = sum(not m.ok for m in result.models)
    if failed:
        render.error(f"{failed} of {len(result.models)} model(s) failed")


def _short(path: str) -> str:
    """The artifact's path relative to the current folder when it is below it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)
