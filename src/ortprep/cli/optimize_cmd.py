"""``ortprep optimize``: the optimized ONNX model per level, what changed, online vs offline."""

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
        "optimize",
        epilog="Example: ortprep optimize model.onnx -o out --level every",
    )(optimize)


def optimize(
    out: OutOpt,
    path: PathArg = None,
    example: ExampleOpt = False,
    level: Annotated[
        str, typer.Option(help="basic, extended, layout, all, or every (all four).")
    ] = "every",
    target_platform: TargetPlatformOpt = "arm",
    pre: Annotated[
        str | None,
        typer.Option(help="Run a pre-optimizer first: onnxslim (if installed)."),
    ] = None,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Skip loading back and comparing outputs.")
    ] = False,
    fix_dim: FixDimOpt = None,
    inputs: InputsOpt = None,
    json_: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Save the optimized ONNX model at each level (to look at in Netron) and explain it.

    Files are named as ORT's converter names them: NAME.LEVEL.optimized.onnx, NAME.optimized.onnx
    for level all. Per level: node and op counts, the fusions, whether the file is tied to this
    CPU (NCHWc), and a check that it gives the original's answers. Also times session creation
    online (ORT optimizes at every load) vs offline (the saved model, optimizations disabled).
    """

    def work(progress: Any) -> Any:
        from ortprep import api

        return api.optimize(
            path,
            out,
            example=example,
            level=level,
            target_platform=target_platform,
            pre=pre,
            no_verify=no_verify,
            fix_dim=fix_dim,
            inputs=inputs,
            progress=progress,
        )

    execute(work, _render, json_=json_, debug=debug)


def _render(result: Any) -> None:
    from rich.table import Table

    from ortprep.cli.verification_text import print_verification

    escape = render.text

    for m in result.models:
        if m.error:
            render.error(m.error, m.hint)  # the message names the model
            continue
        before = m.levels[0].nodes_before if m.levels else 0
        counts = f"{before} nodes"
        if m.pre is not None:
            counts = f"{m.pre.nodes_before} nodes, {m.pre.nodes_after} after {m.pre.tool}"
        render.out.print(f"\n[bold]{escape(m.model)}[/] ({counts})")
        if m.levels:
            folder = Path(m.levels[0].file).parent
            render.out.print(f"written to {escape(_short(str(folder)))}/")
        table = Table(title_justify="left")
        for col in ("level", "file", "nodes", "fusions", "tied to this CPU", "verified"):
            table.add_column(col, overflow="fold")
        for lv in m.levels:
            verified = {True: "[green]yes[/]", False: "[red]NO[/]", None: "skipped"}[lv.verified]
            if lv.verification is not None and lv.verification.not_verified:
                verified = "[red]not verified[/]"
            table.add_row(
                lv.level,
                escape(Path(lv.file).name),
                f"{lv.nodes_before} -> {lv.nodes_after}",
                str(sum(f.count for f in lv.fusions)),
                "[yellow]yes (NCHWc)[/]" if lv.hardware_specific else "no",
                verified,
            )
        render.out.print(table)
        print_verification(
            [(Path(lv.file).name, lv.verification) for lv in m.levels if lv.verification]
        )
        previous: tuple[str, ...] = ()
        for lv in m.levels:
            new = [line for line in lv.summary if line not in previous]
            if previous:
                render.out.print(f"[bold]{lv.level}[/] (what differs from the level above):")
            else:
                render.out.print(f"[bold]{lv.level}[/] (compared with the original):")
            for line in new or ["nothing new"]:
                render.out.print(f"  - {escape(line)}")
            previous = lv.summary
            v = lv.verification
            if v is not None and not v.passed and not v.not_verified:
                render.warning(f"{Path(lv.file).name}: {v.why_failed}")
        t = m.load_time
        if t is not None:
            verdict = (
                f"offline saves {t.saved_ms:.1f} ms per load"
                if t.saved_ms >= 0
                else f"no saving measured (offline {-t.saved_ms:.1f} ms slower: noise?)"
            )
            render.out.print(
                f"session creation, median of {t.runs}: online {t.online_ms:.1f} ms (original "
                f"at level all: ORT optimizes at every load), offline {t.offline_ms:.1f} ms "
                f"(saved level-all model, optimizations disabled): {verdict}"
            )
        for note in m.notes:
            render.out.print(f"[dim]note: {escape(note)}[/]")
    failed = sum(not m.ok for m in result.models)
    if failed:
        render.error(f"{failed} of {len(result.models)} model(s) failed")


def _short(path: str) -> str:
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)
