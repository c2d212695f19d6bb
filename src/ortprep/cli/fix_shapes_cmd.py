"""``ortprep fix-shapes``: write a copy of a model with dynamic dims fixed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ortprep.cli import render
from ortprep.cli.common import DebugOpt, FixDimOpt, JsonOpt, execute

FixInputOpt = Annotated[
    list[str] | None,
    typer.Option("--fix-input", help="Fix an input's whole shape: NAME=D0,D1,... (repeatable)."),
]


def register(app: typer.Typer) -> None:
    app.command(
        "fix-shapes",
        epilog="Example: ortprep fix-shapes model.onnx -o model.fixed.onnx --fix-dim batch=1",
    )(fix_shapes)


def fix_shapes(
    path: Annotated[Path, typer.Argument(help="The .onnx model.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output .onnx file.")],
    fix_dim: FixDimOpt = None,
    fix_input: FixInputOpt = None,
    json_: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Fix symbolic dims or input shapes, re-infer shapes, and check the copy loads in ORT.

    NNAPI and CoreML refuse nodes with dynamic input shapes; fixed shapes often let them take
    the whole model (ortprep check shows the effect before you change anything).
    """

    def work(progress: Any) -> Any:
        from ortprep import api

        return api.fix_shapes(path, out, fix_dim=fix_dim, fix_input=fix_input)

    execute(work, _render, json_=json_, debug=debug)


def _shape(v: Any) -> str:
    if v.shape is None:
        return "?"
    return render.text("[" + ", ".join(str(d) for d in v.shape) + "]")


def _render(result: Any) -> None:
    before = {v.name: v for v in result.inputs_before}
    for v in result.inputs_after:
        old = before.get(v.name)
        render.out.print(f"{render.text(v.name)}: {_shape(old) if old else '?'} -> {_shape(v)}")
    for v in result.outputs_after:
        render.out.print(f"output {render.text(v.name)}: {_shape(v)}")
    render.out.print(f"wrote {render.text(result.output)} (loads in ONNX Runtime)")
    if result.still_dynamic:
        render.warning("still dynamic: " + ", ".join(result.still_dynamic))
