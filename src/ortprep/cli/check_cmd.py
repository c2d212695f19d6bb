"""``ortprep check``: would NNAPI, CoreML or XNNPACK take this model, and why not this node?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ortprep.cli import render
from ortprep.cli.common import (
    DebugOpt,
    EpOpt,
    ExampleOpt,
    FixDimOpt,
    JsonOpt,
    PathArg,
    execute,
)
from ortprep.cli.fix_shapes_cmd import FixInputOpt

RequireOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--require",
        help="CI gate: exit 1 unless EP reaches VERDICT (EP=yes or EP=maybe; repeatable).",
    ),
]
RequireCoverageOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--require-coverage",
        help="CI gate: exit 1 unless EP takes at least PERCENT of the nodes (EP=PERCENT; "
        "repeatable).",
    ),
]


def register(app: typer.Typer) -> None:
    app.command(
        "check",
        epilog="Example: ortprep check model.onnx --ep nnapi,xnnpack --fix-dim batch=1",
    )(check)


def check(
    path: PathArg = None,
    example: ExampleOpt = False,
    ep: EpOpt = "all",
    fix_dim: FixDimOpt = None,
    fix_input: FixInputOpt = None,
    android_api: Annotated[
        int, typer.Option(help="NNAPI feature level as an Android API level (ORT assumes 31).")
    ] = 31,
    coreml_version: Annotated[
        int, typer.Option(help="CoreML spec generation the target allows (8: iOS 18/macOS 15).")
    ] = 8,
    model_explorer: Annotated[
        Path | None,
        typer.Option(
            "--model-explorer",
            help="Write Model Explorer overlays here: per EP, DIR/<file>.<ep>.node_data.json, "
            "and the analysed graph they key into (DIR/<file>.analyzed.onnx, no weights).",
        ),
    ] = None,
    annotate: Annotated[
        Path | None,
        typer.Option(
            "--annotate",
            help="Write the analysed graph (no weights) with each node's EP, partition and "
            "reason in its doc_string and metadata_props, for Netron (OUT.onnx, or a folder).",
        ),
    ] = None,
    require: RequireOpt = None,
    require_coverage: RequireCoverageOpt = None,
    json_: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Check which nodes each execution provider would take, in how many partitions, and why.

    PATH is an .onnx model (analysed after ORT's basic optimizations, as the EP sees it) or the
    .ort file you ship. With dynamic input shapes, a what-if with fixed shapes is shown too.
    With --require / --require-coverage it is a CI gate: exit 1 when an EP falls below.
    """

    def work(progress: Any) -> Any:
        from ortprep import api

        return api.check(
            path,
            example=example,
            ep=ep,
            fix_dim=fix_dim,
            fix_input=fix_input,
            android_api=android_api,
            coreml_version=coreml_version,
            model_explorer=model_explorer,
            annotate=annotate,
            require=require,
            require_coverage=require_coverage,
            progress=progress,
        )

    execute(work, _render, json_=json_, debug=debug)


_VERDICT_STYLE = {"yes": "green", "maybe": "yellow", "no": "red"}


def _render(result: Any) -> None:
    from rich.table import Table

    escape = render.text
    render.out.print(f"[bold]{escape(result.model)}[/] (analysed: {result.analyzed})")
    for v in result.inputs:
        if v.dynamic:
            shape = escape(list(v.shape)) if v.shape else "?"
            render.out.print(f"  input {escape(v.name)} has dynamic shape {shape}")
    if result.what_if_refused:
        dims = ", ".join(f"{k}={v}" for k, v in result.assumed.items()) or "the dynamic inputs"
        render.out.print(
            f"  [dim]no what-if: with {escape(dims)} fixed, {escape(result.what_if_refused)}; "
            "pass sizes the model accepts with --fix-dim or --fix-input[/]"
        )
    table = Table(title_justify="left")
    for col in ("EP", "nodes taken", "partitions", "largest", "verdict", "if shapes fixed"):
        table.add_column(col)
    for r in result.eps:
        o = r.outcome
        largest = max((len(p.nodes) for p in o.partitions), default=0)
        colour = _VERDICT_STYLE[o.verdict]
        fixed = "-"
        if r.if_shapes_fixed is not None:
            f = r.if_shapes_fixed
            fixed = f"{f.nodes_taken} nodes, {len(f.partitions)} part., {f.verdict}"
        table.add_row(
            r.ep,
            f"{o.nodes_taken}/{o.nodes_total}",
            str(len(o.partitions)),
            str(largest),
            f"[{colour}]{o.verdict}[/]",
            fixed,
        )
    render.out.print(table)
    guesses = result.fix_guesses if result.fix_command else ""  # said once, after the first EP
    for r in result.eps:
        render.out.print(
            f"\n[bold]{r.ep}[/] (rules follow ORT {r.ort_source_version}): {escape(r.summary)}"
        )
        for g in r.top_reasons:
            o = r.outcome
            gain = ""
            if (g.nodes_taken_if_supported, g.partitions_if_supported) != (
                o.nodes_taken,
                len(o.partitions),
            ):
                gain = (
                    f" [dim](accepting these: {g.nodes_taken_if_supported} nodes in "
                    f"{g.partitions_if_supported} partitions, now {o.nodes_taken} in "
                    f"{len(o.partitions)})[/]"
                )
            render.out.print(f"  {g.nodes} x {escape(g.op)}: {escape(g.reason)}{gain}")
        for note in r.notes:
            render.out.print(f"  [dim]note:[/] {escape(note)}")
        render.out.print(f"  [bold]next:[/] {escape(r.next_step)}")
        if guesses and r.next_step.endswith(result.fix_command):
            render.out.print(f"  [dim]{escape(guesses)}[/]")
            guesses = ""
    render.out.print(f"\n[dim]{result.thresholds}[/]")
    render_written(result.written)
    if result.gate is not None:
        render_gate(result.gate)


def render_written(written: Any) -> None:
    """The overlay files written, and the command that opens them."""
    from rich.markup import escape

    from ortprep.overlays import model_explorer

    paths = [Path(p) for p in written]
    node_data = [p for p in paths if p.name.endswith(".node_data.json")]
    for p in paths:
        render.out.print(f"wrote {escape(str(p))}")
    analyzed = [p for p in paths if p.name.endswith(".analyzed.onnx")]
    if analyzed and node_data:
        command = model_explorer.open_command(analyzed[0], node_data)
        render.out.print(escape("open in Model Explorer (pip install 'ortprep[viz]'):"))
        render.out.print(f"  {escape(command)}", soft_wrap=True)


def render_gate(gate: Any, where: str = "") -> None:
    """The CI gate's verdict: one line per failed requirement (on stderr), or that all passed."""
    from rich.markup import escape

    for f in gate.failures:
        render.error(f"{where}gate failed: {f.message}")
    if gate.ok:
        met = ", ".join(str(r) for r in gate.requirements)
        render.out.print(f"[green]{escape(where)}gate passed[/] ({escape(met)})")
