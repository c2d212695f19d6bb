"""The only place that prints: tables for people, JSON for machines, errors, progress."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ortprep.core.progress import ProgressFn

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


_CHUNK = 1 << 20


def emit_json(document: Any) -> None:
    """Write exactly one JSON document to stdout: compact and ASCII, in one pass of the stdlib's
    C encoder (indentation takes its pure-Python path: 12 s instead of 1 s for a check's 400,000
    node records), :class:`~ortprep.core.json_records.JsonText` values spliced in as they are,
    written to the byte stream in 1 MB pieces (no second copy of the text)."""
    import secrets

    from ortprep.core.json_records import JsonText

    spliced: list[str] = []
    token = secrets.token_hex(8)  # a model's strings cannot forge the placeholders

    def default(obj: Any) -> Any:
        if isinstance(obj, JsonText):
            spliced.append(obj.text)
            return f"{token}:{len(spliced) - 1}"
        return _json_default(obj)

    text = json.dumps(document, separators=(",", ":"), default=default)
    pieces = [text]
    if spliced:
        pieces = re.split(f'"{token}:([0-9]+)"', text)
        for i in range(1, len(pieces), 2):
            pieces[i] = spliced[int(pieces[i])]
    pieces.append("\n")
    sys.stdout.flush()
    stream = getattr(sys.stdout, "buffer", None)
    for piece in pieces:
        for start in range(0, len(piece), _CHUNK):
            chunk = piece[start : start + _CHUNK]
            if stream is None:
                sys.stdout.write(chunk)
            else:
                stream.write(chunk.encode("ascii"))
    (stream or sys.stdout).flush()


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


def error(message: str, hint: str | None = None) -> None:
    err.print(f"[bold red]error:[/] {text(message)}", soft_wrap=True)
    if hint:
        err.print(f"[dim]hint:[/] {text(hint)}", soft_wrap=True)


def warning(message: str) -> None:
    err.print(f"[yellow]warning:[/] {text(message)}", soft_wrap=True)


def internal_error(exc: BaseException) -> None:
    """The contract's one line for a bug: ``internal error: Type: first line (run with
    --debug for the traceback)``."""
    lines = str(exc).strip().splitlines()
    first = visible(lines[0]) if lines else ""
    err.print(
        f"internal error: {type(exc).__name__}: {first} (run with --debug for the traceback)",
        markup=False,
        soft_wrap=True,
    )


def text(value: object) -> str:
    """Any string that did not come from ortprep itself (model names, producers, dim params,
    domains, paths, ORT's messages), ready for a rich markup string or table cell: control
    characters made visible (:func:`visible`) and rich markup escaped, so a name shows as the
    text it is. JSON output takes the raw strings instead."""
    from rich.markup import escape

    return escape(visible(str(value)))


def visible(value: str) -> str:
    """``value`` with every control character (C0, DEL, C1, and Unicode's bidirectional
    overrides and line separators) written as an escape (``\\x1b``, ``\\u202e``): a model's
    strings cannot move the cursor, clear the screen, plant a hyperlink (OSC 8) or reorder text
    on the user's terminal."""
    return _CONTROL.sub(_escaped, value)


def visible_lines(value: str) -> str:
    """:func:`visible` line by line: a multi-line text (a script) keeps its line breaks."""
    return "\n".join(visible(line) for line in value.split("\n"))


_CONTROL_CLASS = "\\x00-\\x1f\\x7f-\\x9f\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069"
_CONTROL = re.compile(f"[{_CONTROL_CLASS}]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


@contextmanager
def progress(enabled: bool = True) -> Iterator[ProgressFn]:
    """A progress callback drawing rich bars on stderr (nothing when stderr is not a terminal)."""
    if not enabled or not err.is_terminal:
        yield lambda description, done, total: None
        return
    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def update(description: str, done: int, total: int) -> None:
        if description not in tasks:
            tasks[description] = bars.add_task(text(description), total=total)
        bars.update(tasks[description], completed=done, total=total)

    with bars:
        yield update
