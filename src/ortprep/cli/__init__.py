"""The ``ortprep`` command line. Importing this module loads no onnx, onnxruntime or numpy."""

from __future__ import annotations

import os
import sys

import typer

from ortprep.core.version import ORTPREP_VERSION

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
        typer.echo(f"ortprep {ORTPREP_VERSION}")
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
        view_cmd,
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
        view_cmd,
    ):
        module.register(app)


_register()


def main() -> None:
    """Console-script entry point.

    For ``check``, ORT's child is started first (its start-up, the interpreter and onnxruntime,
    then overlaps typer's and rich's), and the cyclic garbage collector is paused for the
    command (measured: the graph views and the analysis allocate a few objects per node per EP
    and free nothing until the end; collections walking them all cost more than the analysis).
    Only this function pauses or freezes the collector (:mod:`ortprep.core.gcpause`); the Python
    API never does, and other commands run with the collector as Python sets it.

    Once the command has finished (its files written and renamed, its temporary folders removed,
    its threads joined) the process ends without Python's teardown, which would spend a few
    tenths of a second freeing onnx, onnxruntime, numpy and pydantic objects nobody reads again.
    """
    from ortprep.core.gcpause import allow_pausing, gc_paused

    if sys.argv[1:2] == ["check"]:
        from ortprep.core.ort_child import prestart

        prestart()
        allow_pausing()
    try:
        with gc_paused():  # only for check: allowed above
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
