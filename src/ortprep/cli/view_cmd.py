"""``ortprep view``: the model in Google's Model Explorer, with each EP's partitions overlaid."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from ortprep.cli import render
from ortprep.cli.common import DebugOpt, EpOpt, ExampleOpt, JsonOpt, PathArg, execute


def register(app: typer.Typer) -> None:
    app.command(
        "view",
        epilog="Example: ortprep view model.onnx --ep nnapi,xnnpack  (needs ortprep\\[viz])",
    )(view)


def view(
    path: PathArg = None,
    example: ExampleOpt = False,
    ep: EpOpt = "all",
    out: Annotated[
        Path | None,
        typer.Option(
            "-o", "--out", help="Keep the overlays in this folder (default: a temporary one)."
        ),
    ] = None,
    port: Annotated[int, typer.Option(help="Port of Model Explorer's local server.")] = 8080,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Start the server without opening a browser.")
    ] = False,
    json_: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Open the model in Model Explorer with one overlay per EP: the partition each node runs in,
    refused nodes in red (the graph ORT hands the EPs, as check analyses it).

    Needs the viz extra: pip install 'ortprep\\[viz]'. With --json, writes the overlays and
    prints them instead of starting the server. Stop the server with Ctrl-C.
    """
    with tempfile.TemporaryDirectory(prefix="ortprep-view-") as tmp:
        folder = out if out is not None else Path(tmp)

        def work(progress: Any) -> Any:
            from ortprep import api
            from ortprep.core.errors import UsageError
            from ortprep.overlays import model_explorer

            if not json_ and not model_explorer.installed():
                raise UsageError(
                    "ortprep view needs Model Explorer and its ONNX adapter (the viz extra)",
                    model_explorer.VIZ_INSTALL,
                )
            return api.check(path, example=example, ep=ep, model_explorer=folder, progress=progress)

        def show(result: Any) -> None:
            from ortprep.cli.check_cmd import render_written
            from ortprep.overlays import model_explorer

            render_written(result.written)
            paths = [Path(p) for p in result.written]
            analyzed = next(p for p in paths if p.name.endswith(".analyzed.onnx"))
            node_data = [p for p in paths if p.name.endswith(".node_data.json")]
            render.out.print("starting Model Explorer (its address follows; Ctrl-C stops it)")
            model_explorer.serve(analyzed, node_data, port, open_browser=not no_browser)

        execute(work, show, json_=json_, debug=debug)
