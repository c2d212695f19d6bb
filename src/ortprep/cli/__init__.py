"""The ``ortprep`` command line. Importing this module loads no onnx, onnxruntime or numpy."""

from __future__ import annotations

import gc
import os
import sys

import typer

from ortprep import __version__

app = typer.Typer(
    name="ortprep",
    help="Prepare ONNX models for ONNX Runtime on edge and mobile devices, with evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ortprep {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Prepare ONNX models for ONNX Runtime on edge and mobile devices, with evidence."""


def _register() -> None:
    """Commands in the order a user meets them: the one-stop job first, then each step."""
    from ortprep.cli import (
        bench_cmd,
        check_cmd,
        config_cmd,
        convert_cmd,
        diff_cmd,
        fix_shapes_cmd,
        inspect_cmd,
        optimize_cmd,
        prepare_cmd,
        verify_cmd,
    )

    for module in (
        prepare_cmd,
        convert_cmd,
        check_cmd,
        fix_shapes_cmd,
        inspect_cmd,
        diff_cmd,
        optimize_cmd,
        verify_cmd,
        bench_cmd,
        config_cmd,
    ):
        module.register(app)


_register()


def main() -> None:
    """Console-script entry point.

    Once the command has finished (its files written and renamed, its temporary folders removed,
    its threads joined) the process ends without Python's teardown, which would spend a few
    tenths of a second freeing onnx, onnxruntime, numpy and pydantic objects nobody reads again.

    For the same reason Python's cyclic garbage collector stays off: objects are still freed by
    reference counting, and a command's results live until it has printed them. Switching the
    collector back on after a big analysis costs one collection over every object of the result
    just before the process ends (two million objects, 0.4 s, after a 100,000-node ``check``).
    Worker processes (``prepare``) keep it on.
    """
    gc.disable()
    if sys.argv[1:2] == ["check"]:  # ORT's child starts while typer and rich load
        from ortprep.core.runtime import SaveProcess

        SaveProcess.warm_up()
    try:
        app()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if isinstance(code, str):  # SystemExit("message"): Python would print it and exit 1
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)
