"""``ortprep config``: build, merge and check reduced-build operator configs; print the build.py
command for a reduced build.

Importing this module loads no onnx, onnxruntime or numpy (the stage is imported inside commands).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ortprep.cli import render
from ortprep.cli.common import DebugOpt, ExampleOpt, JsonOpt, execute

config_app = typer.Typer(
    name="config",
    help="Reduced ONNX Runtime builds: build, merge and check operator configs; print the "
    "build.py command.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

PathsArg = Annotated[
    list[Path] | None,
    typer.Argument(
        help="Model files (.onnx or .ort) or folders (every .onnx below them; a folder "
        "without .onnx files gives its .ort files).",
        show_default=False,
    ),
]
ConfigFileOpt = Annotated[
    Path, typer.Option("--config", help="A required_operators*.config file.", show_default=False)
]
StyleOpt = Annotated[
    str,
    typer.Option(
        "--style",
        help="How .onnx models are converted first: fixed or runtime (as ORT's "
        "converter's --optimization_style).",
    ),
]
PlatformOpt = Annotated[
    str,
    typer.Option(
        "--target-platform",
        help="CPU the conversion targets: arm or amd64 (as ORT's converter's --target_platform).",
    ),
]


def register(app: typer.Typer) -> None:
    """Add the ``config`` sub-app to the root app."""
    app.add_typer(config_app, name="config")


@config_app.command(
    "build",
    epilog="Example: ortprep config build models/ -o required_operators_and_types.config "
    "--type-reduction --style runtime",
)
def build(
    out: Annotated[
        Path,
        typer.Option(
            "-o",
            "--out",
            help="Config file to write (a folder: ORT's file name inside it).",
            show_default=False,
        ),
    ],
    paths: PathsArg = None,
    type_reduction: Annotated[
        bool,
        typer.Option(
            "--type-reduction",
            help="Add per-op type info (for build.py --enable_reduced_operator_type_support).",
        ),
    ] = False,
    style: StyleOpt = "fixed",
    target_platform: PlatformOpt = "arm",
    example: ExampleOpt = False,
    json_: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Write the operator config ORT's converter writes for these models.

    .onnx models are converted (in a temporary folder) with --style and --target-platform first,
    exactly as ORT's converter does; .ort models are read as they are.
    """

    def work(progress: Any) -> Any:
        from ortprep import api

        return api.config_build(
            paths,
            out,
            type_reduction=type_reduction,
            style=style,
            target_platform=target_platform,
            example=example,
            progress=progress,
        )

    execute(work, _render_build, json_=json_, debug=debug)


@config_app.command(
    "merge",
    epilog="Example: ortprep config merge app_a.config app_b.config -o combined.config",
)
def merge(
    files: Annotated[list[Path], typer.Argument(help="Config files to merge.", show_default=False)],
    out: Annotated[
        Path, typer.Option("-o", "--out", help="Merged config file to write.", show_default=False)
    ],
    json_: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Merge configs into one that covers them all: the union, normalized and sorted."""

    def work(progress: Any) -> Any:
        from ortprep import api

        return api.config_merge(files, out)

    execute(work, _render_merge, json_=json_, debug=debug)


@config_app.command(
    "check",
    epilog="Example: ortprep config check --config required_operators.config new_model.onnx",
)
def check(
    config: ConfigFileOpt,
    paths: PathsArg = None,
    style: StyleOpt = "fixed",
    target_platform: PlatformOpt = "arm",
    example: ExampleOpt = False,
    json_: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Will these models run on a build made from this config? Exit 1 if not.

    Lists, per model, each missing op (domain, opset, op) and each missing type. Convert .onnx
    models the way you ship them: use the --style and --target-platform the config was built with.
    """

    def work(progress: Any) -> Any:
        from ortprep import api

        return api.config_check(
            config,
            paths,
            style=style,
            target_platform=target_platform,
            example=example,
            progress=progress,
        )

    execute(work, _render_check, json_=json_, debug=debug)


@config_app.command(
    "build-command",
    epilog="Example: ortprep config build-command --config required_operators.config "
    "--target android --ep nnapi",
)
def build_command(
    config: ConfigFileOpt,
    target: Annotated[
        str,
        typer.Option("--target", help="android, ios, linux-arm or linux-x86.", show_default=False),
    ],
    ep: Annotated[
        list[str] | None,
        typer.Option(
            "--ep",
            help="EP to build in: nnapi (android), coreml (ios), xnnpack (repeatable or "
            "comma-separated).",
        ),
    ] = None,
    replay: Annotated[
        bool,
        typer.Option(
            "--replay-runtime-optimizations", help="The app replays saved runtime optimizations."
        ),
    ] = False,
    extended: Annotated[
        bool, typer.Option("--extended", help="Extended minimal build even when nothing needs it.")
    ] = False,
    json_: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Print the build.py command for a reduced build from this config, and why each flag."""

    def work(progress: Any) -> Any:
        from ortprep import api

        return api.config_build_command(
            config, target, ep=ep, replay_runtime_optimizations=replay, extended=extended
        )

    execute(work, _render_build_command, json_=json_, debug=debug)


# ------------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------------


def _summary_line(summary: dict[str, Any]) -> str:
    return (
        f"{summary['kind']}: {summary['ops']} ops in {summary['domains']} domain(s), "
        f"{summary['entries']} (domain, opset, op) entries"
    )


def _render_build(result: Any) -> None:
    doc = result.to_dict()
    for m in result.models:
        if m.ok:
            analysed = render.text(", ".join(m.analysed))
            render.out.print(f"[green]ok[/]    {render.text(m.path)}  [dim]({analysed})[/]")
        else:
            render.out.print(f"[red]error[/] {render.text(m.path)}: {render.text(m.error or '')}")
        for note in m.notes:
            render.warning(f"{m.path}: {note}")
    if result.output:
        render.out.print(
            f"wrote {render.text(result.output)}  ({_summary_line(doc['summary'])}; "
            f"style {result.style}, target platform {result.target_platform})"
        )
    else:
        render.out.print("[red]no config written: no model could be analysed[/]")


def _render_merge(result: Any) -> None:
    render.out.print(
        f"merged {len(result.inputs)} configs into {render.text(result.output)}  "
        f"({_summary_line(result.to_dict()['summary'])})"
    )


def _render_check(result: Any) -> None:
    for m in result.models:
        if m.error:
            render.out.print(f"[red]error[/]   {render.text(m.path)}: {render.text(m.error)}")
            continue
        if m.ok:
            render.out.print(
                f"[green]covered[/] {render.text(m.path)}  [dim]({m.ops_checked} ops checked)[/]"
            )
            continue
        render.out.print(
            f"[red]missing[/] {render.text(m.path)}: {len(m.missing_ops)} op(s), "
            f"{len(m.missing_types)} type(s)"
        )
        for op in m.missing_ops:
            what = render.text(f"{op.domain} {op.op} opset {op.opset}: {op.reason}")
            render.out.print(f"  op   {what}")
        for ty in m.missing_types:
            render.out.print(f"  type {render.text(f'{ty.domain} {ty.op}: {ty.reason}')}")
    bad = sum(1 for m in result.models if not m.ok)
    verdict = (
        "[green]every model is covered[/]"
        if result.ok
        else f"[red]{bad} of {len(result.models)} model(s) not covered[/]"
    )
    render.out.print(
        f"{verdict} by {render.text(result.config)} ({result.kind}; .onnx converted with "
        f"style {result.style}, target platform {result.target_platform})"
    )


def _render_build_command(result: Any) -> None:
    # soft_wrap: the script must reach the terminal (or a file) with its lines intact
    render.out.print(
        render.visible_lines(result.script()), markup=False, highlight=False, soft_wrap=True, end=""
    )


def render_config_info(info: Any) -> None:
    """Draw ``inspect``'s view of a config file."""
    from rich.table import Table

    doc = info.to_dict()
    head = Table.grid(padding=(0, 2))
    head.add_row("file", f"{render.text(doc['path'])} (config, {doc['size_bytes']} B)")
    head.add_row("kind", doc["kind"])
    counts = doc["counts"]
    head.add_row(
        "counts",
        f"{counts['domains']} domain(s), {counts['opsets']} (domain, opset) "
        f"pair(s), {counts['ops']} op(s), {counts['ops_with_types']} with types",
    )
    if doc["globally_allowed_types"] is not None:
        head.add_row(
            "globally allowed types", render.text(", ".join(doc["globally_allowed_types"]))
        )
    if doc["no_ops_specified_means_all_ops_are_required"]:
        head.add_row(
            "directive",
            "no ops specified means all ops are required"
            + (" (no op listed: every op is kept)" if doc["requires_all_ops"] else ""),
        )
    render.out.print(head)
    ops = Table(title="operators", title_justify="left")
    for col in ("domain", "op", "opsets", "types"):
        ops.add_column(col)
    for row in doc["ops"]:
        ops.add_row(
            render.text(row["domain"]),
            render.text(row["op"]),
            ", ".join(str(v) for v in row["opsets"]),
            render.text(_types_text(row["types"])),
        )
    render.out.print(ops)


def _types_text(types: dict[str, Any] | None) -> str:
    if types is None:
        return "-"
    parts = []
    for kind in ("inputs", "outputs"):
        for index, names in types.get(kind, {}).items():
            parts.append(f"{kind[:-1]} {index}: {', '.join(names)}")
    parts.extend("/".join(t) for t in types.get("custom", []))
    return "; ".join(parts) or "(none)"
