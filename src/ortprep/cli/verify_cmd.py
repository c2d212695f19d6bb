"""``ortprep verify``: do two models give the same answers on the same inputs?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ortprep.cli import render
from ortprep.cli.common import DebugOpt, FixDimOpt, JsonOpt, execute


def register(app: typer.Typer) -> None:
    app.command("verify", epilog="Example: ortprep verify model.onnx model.ort")(verify)


def verify(
    reference: Annotated[Path, typer.Argument(help="The model to trust (usually the .onnx).")],
    candidate: Annotated[Path, typer.Argument(help="The model to check (.onnx or .ort).")],
    inputs: Annotated[
        Path | None, typer.Option(help="Inputs (.npz, arrays named as inputs).")
    ] = None,
    fix_dim: FixDimOpt = None,
    rtol: Annotated[float, typer.Option(help="Relative tolerance for float outputs.")] = 1e-3,
    atol: Annotated[float, typer.Option(help="Absolute tolerance for float outputs.")] = 1e-4,
    replay_runtime_optimizations: Annotated[
        bool,
        typer.Option(
            "--replay-runtime-optimizations",
            help="Load the candidate with session.enable_saved_runtime_optimizations=1.",
        ),
    ] = False,
    json_: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Run both models on the same inputs and compare every output.

    Like with like: the reference runs in the configuration the candidate stands for (an .onnx
    or Fixed .ort at level all; a Runtime .ort at its level-1 graph, or extended with replay), so a
    quantized model is compared with its own int8 kernels; the float reference (optimizations
    disabled) is a separate figure, binding for float models only. When the synthesized inputs do
    not run, other value ranges and dim sizes are tried. Floats: |a-b| <= atol + rtol*|a|;
    integers and quantized values may differ by 1; NaN/Inf must match. Exit 1 when any output
    differs or the original runs on no inputs tried.
    """

    def work(progress: Any) -> Any:
        from ortprep import api

        return api.verify(
            reference,
            candidate,
            inputs=inputs,
            fix_dim=fix_dim,
            rtol=rtol,
            atol=atol,
            replay_runtime_optimizations=replay_runtime_optimizations,
        )

    execute(work, _render, json_=json_, debug=debug)


def _render(result: Any) -> None:
    from rich.table import Table

    from ortprep.cli.verification_text import print_verification

    if result.load_error:
        render.error(f"{result.candidate}: could not be loaded: {result.load_error}")
        return
    if result.not_verified:
        print_verification([(result.candidate, result)])
        return
    t = render.text
    table = Table(title=f"{t(result.candidate)} vs {t(result.reference)}", title_justify="left")
    for col in ("output", "max abs", "max rel", "mismatches", "passed"):
        table.add_column(col)
    for o in result.outputs:
        table.add_row(
            t(o.name),
            f"{o.max_abs:.3g}",
            f"{o.max_rel:.3g}",
            str(o.mismatches),
            "[green]yes[/]" if o.passed else f"[red]NO[/] {t(o.note)}",
        )
    render.out.print(table)
    print_verification([(result.candidate, result)])
    render.out.print("[green]outputs match[/]" if result.passed else "[red]outputs differ[/]")
