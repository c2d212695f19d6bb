"""Bounds on options that make ortprep start work in parallel: one place, tied to the cores.

Beyond a few per core, more threads or processes only measure contention (``bench``) or fill
the memory with copies of ORT and the model (``prepare``); an unbounded value stalls the machine
before anything is done. A value over the bound is a usage error (exit 2) naming the range.
"""

from __future__ import annotations

import os

from ortprep.core.errors import UsageError

THREADS_PER_CORE = 4
"""``bench --threads``: ORT creates every intra-op thread when the session is made."""

WORKERS_PER_CORE = 2
"""``prepare --workers``: each worker is a process with its own ORT and model in memory."""


def cores() -> int:
    return os.cpu_count() or 1


def check_parallel(option: str, value: int, per_core: int, zero_means: str | None = None) -> None:
    """``value`` within 1 (0 too, with ``zero_means``) and ``per_core`` times the cores."""
    low = 0 if zero_means else 1
    high = per_core * cores()
    if low <= value <= high:
        return
    zero = f" (0: {zero_means})" if zero_means else ""
    reason = (
        f"more than {per_core} per core of this machine ({cores()} cores) only adds contention"
        if value > high
        else "use a positive number"
    )
    raise UsageError(f"{option} {value}: {reason}", f"use {low} to {high}{zero}")
