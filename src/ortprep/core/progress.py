"""The progress callback stages accept; only the CLI draws it."""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[str, int, int], None]
"""``progress(description, done, total)``: ``done`` of ``total`` steps of the named task."""


def no_progress(description: str, done: int, total: int) -> None:
    """The default callback: report nothing."""
