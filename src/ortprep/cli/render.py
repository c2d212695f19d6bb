"""The only place that prints: tables for people, JSON for machines, errors, progress."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ortprep.core.progress import ProgressFn

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def emit_json(document: Any) -> None:
    """Write exactly one JSON document to stdout."""
    sys.stdout.write(json.dumps(document, indent=2, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


def error(message: str, hint: str | None = None) -> None:
    err.print(f"[bold red]error:[/] {_escape(message)}", soft_wrap=True)
    if hint:
        err.print(f"[dim]hint:[/] {_escape(hint)}", soft_wrap=True)


def warning(message: str) -> None:
    err.print(f"[yellow]warning:[/] {_escape(message)}", soft_wrap=True)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


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
            tasks[description] = bars.add_task(description, total=total)
        bars.update(tasks[description], completed=done, total=total)

    with bars:
        yield update
