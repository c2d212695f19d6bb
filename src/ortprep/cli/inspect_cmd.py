"""``ortprep inspect``: what an .onnx, .ort or reduced-build .config file holds."""

from __future__ import annotations

from typing import Any

import typer

from ortprep.cli import render
from ortprep.cli.common import DebugOpt, ExampleOpt, JsonOpt, PathArg, execute


def register(app: typer.Typer) -> None:
    app.command(
        "inspect",
        epilog="Example: ortprep inspect model.ort --json",
    )(inspect)


def inspect(
    path: PathArg = None,
    example: ExampleOpt = False,
    json_: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show what a model holds: ops, types, shapes, weights, format version, what it needs to run.

    PATH is an .onnx model, an .ort model or a required_operators*.config file.
    """

    def work(progress: Any) -> Any:
        from ortprep import api

        return api.inspect(path, example=example)

    execute(work, _render, json_=json_, debug=debug)


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _shape(v: Any) -> str:
    if v.shape is None:
        return "?"
    return render.text("[" + ", ".join("?" if d is None else str(d) for d in v.shape) + "]")


def _render(result: Any) -> None:
    from rich.table import Table

    if getattr(result, "format", None) == "config":
        from ortprep.cli.config_cmd import render_config_info

        render_config_info(result)
        return
    r = result
    t = render.text
    head = Table.grid(padding=(0, 2))
    head.add_row("file", f"{t(r.path)} ({r.format}, {_human_bytes(r.size_bytes)})")
    head.add_row("producer", t(r.producer) if r.producer else "-")
    head.add_row("IR version", str(r.ir_version))
    head.add_row("opsets", ", ".join(f"{t(d)} {v}" for d, v in sorted(r.opsets.items())))
    head.add_row("nodes", str(r.nodes_total))
    head.add_row("initializers", f"{r.initializer_count} ({_human_bytes(r.initializer_bytes)})")
    if r.external_data_files:
        head.add_row("external data", ", ".join(t(f) for f in r.external_data_files))
    for s in r.subgraphs:
        head.add_row("subgraph", f"{t(s.path)} ({s.nodes} nodes)")
    render.out.print(head)

    io = Table(title="inputs and outputs", title_justify="left")
    for col in ("", "name", "type", "shape"):
        io.add_column(col)
    for kind, values in (("in", r.inputs), ("out", r.outputs)):
        for v in values:
            shape = _shape(v) + ("  [yellow](dynamic)[/]" if v.dynamic else "")
            io.add_row(kind, t(v.name), t(v.dtype or v.kind), shape)
    render.out.print(io)

    ops = Table(title="operators", title_justify="left")
    for col in ("domain", "op", "opset", "count"):
        ops.add_column(col, justify="right" if col in ("opset", "count") else "left")
    for o in r.ops:
        ops.add_row(t(o.domain), t(o.op), "-" if o.opset is None else str(o.opset), str(o.count))
    render.out.print(ops)
    if r.ort:
        _render_ort(r.ort)


def _render_ort(ort: dict[str, Any]) -> None:
    from rich.table import Table

    text = render.text
    render.out.print(f"ORT format version: {ort['ort_format_version']}")
    recs = ort["runtime_optimizations"]
    if recs:
        t = Table(title="saved runtime optimizations", title_justify="left")
        for col in ("optimizer", "records", "produces"):
            t.add_column(col)
        for r in recs:
            t.add_row(
                text(r["optimizer"]), str(r["records"]), ", ".join(text(p) for p in r["produces"])
            )
        render.out.print(t)
    else:
        render.out.print("saved runtime optimizations: none")
    needs = ort["needs"]
    render.out.print(f"needs: a [bold]{needs['build']}[/] build or better")
    for key, value in needs["session_options"].items():
        render.out.print(f"  session option {text(key)}={text(value)}")
    for note in needs["notes"]:
        render.out.print(f"  - {text(note)}")
    render.out.print(f"  loadable by: {needs['loadable_by']}")
    render.out.print("  GraphOptimizationLevel when loading:")
    for build, effect in needs["optimization_level_effect"].items():
        render.out.print(f"    {build}: {effect}")
