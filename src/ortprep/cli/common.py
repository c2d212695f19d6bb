"""The command contract, once: global options, exit codes, error lines, progress.

Every command body is ``execute(work, render, json_=..., debug=...)``: ``work(progress)`` runs the
library and returns a result; ``render(result)`` draws it for people, ``result.to_dict()`` is the
JSON; ``exit_code(result)`` maps a failed verdict to 1.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from ortprep.cli import render
from ortprep.core.errors import OrtprepError
from ortprep.core.progress import ProgressFn

R = TypeVar("R")

EXIT_OK, EXIT_VERDICT, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout (logs go to stderr).")
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")]
ExampleOpt = Annotated[
    bool, typer.Option("--example", help="Use the bundled example model instead of PATH.")
]
PathArg = Annotated[
    Path | None,
    typer.Argument(
        help="A model file, or a folder of models (every .onnx below it).", show_default=False
    ),
]
OutOpt = Annotated[Path, typer.Option("-o", "--out", help="Output folder (created if missing).")]
TargetPlatformOpt = Annotated[
    str, typer.Option(help="CPU the files are optimized for: arm or amd64 (ORT's term).")
]
FixDimOpt = Annotated[
    list[str] | None,
    typer.Option("--fix-dim", help="Fix a symbolic dimension: NAME=VALUE (repeatable)."),
]


def _default_exit(result: Any) -> int:
    if getattr(result, "internal_error", False):  # a bug on one model of a batch (core/batch.py)
        return EXIT_INTERNAL
    ok = getattr(result, "ok", True)
    return EXIT_OK if ok else EXIT_VERDICT


def execute(
    work: Callable[[ProgressFn], R],
    render_human: Callable[[R], None],
    *,
    json_: bool,
    debug: bool,
    exit_code: Callable[[R], int] = _default_exit,
) -> NoReturn:
    """Run a command body under the contract's rules and exit with the right code."""
    try:
        with render.progress() as progress:
            result = work(progress)
        if debug:  # bugs a batch isolated to one model (core/batch.py): show where they happened
            for text in getattr(result, "tracebacks", ()):
                render.err.print(text, markup=False, highlight=False)
        if json_:
            render.emit_json(result.to_dict() if hasattr(result, "to_dict") else result)
        else:
            render_human(result)
        code = exit_code(result)
    except OrtprepError as exc:
        if debug:
            traceback.print_exc()
        render.error(exc.message, exc.hint)
        code = exc.exit_code
    except KeyboardInterrupt:
        render.error("interrupted")
        code = 130
    except Exception as exc:  # noqa: BLE001 -- the contract: any other error is a bug, exit 3
        if debug:
            traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        render.err.print(
            f"internal error: {type(exc).__name__}: {first} (run with --debug for the traceback)",
            markup=False,
            soft_wrap=True,
        )
        code = EXIT_INTERNAL
    sys.stdout.flush()
    raise typer.Exit(code)


def raise_single_failure(folder: bool, results: Any) -> None:
    """The contract: a single bad input is exit 2; in a folder it is one failed model (exit 1).

    ``results`` are a batch stage's per-model results (each with ``error`` and ``hint``); a bug
    (``internal_error``) is left in the result, which then exits 3.
    """
    if (
        not folder
        and len(results) == 1
        and results[0].error
        and not getattr(results[0], "internal_error", False)
    ):
        from ortprep.core.errors import BadModelError

        raise BadModelError(results[0].error, results[0].hint)


def parse_fix_dims(values: list[str] | None) -> dict[str, int]:
    """``["N=1", "H=224"]`` -> ``{"N": 1, "H": 224}``; bad syntax is a usage error."""
    from ortprep.core.errors import UsageError

    dims: dict[str, int] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name or not value.strip().isdigit() or int(value) <= 0:
            raise UsageError(
                f"--fix-dim {item!r}: expected NAME=VALUE with VALUE a positive integer",
                "example: --fix-dim batch=1",
            )
        dims[name.strip()] = int(value)
    return dims
