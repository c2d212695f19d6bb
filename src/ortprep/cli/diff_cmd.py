"""``ortprep diff A B``: what changed between two models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ortprep.cli import render
from ortprep.cli.common import DebugOpt, JsonOpt, execute


def register(app: typer.Typer) -> None:
    app.command("diff", epilog="Example: ortprep diff model.onnx out/model.ort")(diff)


def diff(
    a: Annotated[Path, typer.Argument(help="First model (.onnx, .optimized.onnx or .ort).")],
    b: Annotated[Path, typer.Argument(help="Second model.")],
    json_: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show op count changes, the fusions that replaced nodes, removed and added nodes."""

    def work(progress: Any) -> Any:
        from ortprep import api

        return api.diff(a, b)

    execute(work, _render, json_=json_, debug=debug)


def _render(r: Any) -> None:
    from rich.table import Table

    t = render.text
    render.out.print(f"{t(r.a)} ({r.nodes_a} nodes) -> {t(r.b)} ({r.nodes_b} nodes)")
    if r.fusions:
        table = Table(title="fusions", title_justify="left")
        table.add_column("pattern")
        table.add_column("count", justify="right")
        table.add_column("e.g.")
        for f in r.fusions:
            table.add_row(t(f.pattern), str(f.count), ", ".join(t(e) for e in f.examples))
        render.out.print(table)
    if r.removed:
        render.out.print("removed: " + ", ".join(f"{c} {t(op)}" for op, c in r.removed.items()))
    if r.added:
        render.out.print("added: " + ", ".join(f"{c} {t(op)}" for op, c in r.added.items()))
    if r.ops:
        table = Table(title="op counts that changed", title_justify="left")
        for col in ("op", "A", "B", "change"):
            table.add_column(col, justify="left" if col == "op" else "right")
        for op, (ca, cb) in sorted(r.ops.items()):
            table.add_row(t(op), str(ca), str(cb), f"{cb - ca:+d}")
        render.out.print(table)
    else:
        render.out.print("op counts: unchanged")
    ia, ib = r.initializer_bytes
    render.out.print(f"initializer bytes: {ia} -> {ib} ({ib - ia:+d})")
    ca, cb = r.constant_node_bytes
    if ca or cb:
        render.out.print(
            f"bytes in Constant nodes: {ca} -> {cb} ({cb - ca:+d}; ORT makes Constant nodes "
            "initializers)"
        )
    for d, (va, vb) in sorted(r.opsets.items()):
        render.out.print(f"opset {t(d)}: {va} -> {vb}")
