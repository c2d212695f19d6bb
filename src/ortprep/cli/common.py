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
from ortprep.core.errors import OrtprepError, environment_error
from ortprep.core.progress import ProgressFn
from ortprep.option_values import parse_fix_dims as parse_fix_dims  # shared with the API

R = TypeVar("R")

EXIT_OK, EXIT_VERDICT, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout (logs go to stderr).")
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")]
ExampleOpt = Annotated[
    bool, typer.Option("--example", help="Use the bundled example model instead of PATH.")
]
EpOpt = Annotated[
    str,
    typer.Option(
        help="all, or a comma list of nnapi, coreml-mlprogram, coreml-neuralnetwork, xnnpack."
    ),
]
"""``--ep`` of the commands that check EPs (check, view); its ids are ``eps.registry.EP_IDS``."""
PathArg = Annotated[
    Path | None,
    typer.Argument(
        help="A model file, or a folder of models (every .onnx below it).", show_default=False
    ),
]
OutOpt = Annotated[Path, typer.Option("-o", "--out", help="Output folder (created if missing).")]
_TARGET_PLATFORM = typer.Option(
    "--target-platform", help="CPU the files are optimized for: arm or amd64 (ORT's term)."
)
TargetPlatformOpt = Annotated[str, _TARGET_PLATFORM]
TargetPlatformOrNoneOpt = Annotated[str | None, _TARGET_PLATFORM]
"""The same option where the default comes from elsewhere (prepare: the --target's CPU)."""
FixDimOpt = Annotated[
    list[str] | None,
    typer.Option("--fix-dim", help="Fix a symbolic dimension: NAME=VALUE (repeatable)."),
]
InputsOpt = Annotated[
    Path | None,
    typer.Option(
        "--inputs",
        help="Real inputs instead of generated ones (.npz, one array per model input, named "
        "as it).",
    ),
]
RunsOpt = Annotated[int, typer.Option("--runs", help="Timed runs per model file.")]


def _default_exit(result: Any) -> int:
    if getattr(result, "internal_error", False):  # a bug on one model of a batch (core/batch.py)
        return EXIT_INTERNAL
    ok = getattr(result, "ok", True)
    return EXIT_OK if ok else EXIT_VERDICT


def _json_document(result: Any) -> Any:
    """The result as the JSON document: its ``json_document()`` where it has one (a faster
    encoding of the same document), else its ``to_dict()``."""
    for method in ("json_document", "to_dict"):
        if hasattr(result, method):
            return getattr(result, method)()
    return result


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
            render.emit_json(_json_document(result))
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
        caused = environment_error(exc)  # a path the OS refuses, a full disk: not a bug
        if caused is not None:
            render.error(caused.message, caused.hint)
            code = caused.exit_code
        else:
            render.internal_error(exc)
            code = EXIT_INTERNAL
    sys.stdout.flush()
    raise typer.Exit(code)
