"""Run a command as a child process; report wall time and its memory.

Two memory figures: the peak RSS of the biggest single process (exact, from the kernel), and the
peak of the summed RSS of the whole process tree (sampled every 20 ms from /proc, Linux only).
The second is the honest one for a tool that runs a helper process beside itself: both count
against the machine at the same moment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import NamedTuple


class Run(NamedTuple):
    wall: float  # seconds
    peak: float  # MB, the biggest single process (ru_maxrss)
    code: int  # exit code
    tree_peak: float | None  # MB, the summed RSS of the process tree at its highest (sampled)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return found


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def _tree_rss_mb(pid: int) -> float:
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += _rss_mb(p)
        todo += _children(p)
    return total


def measure(args: list[str], env: dict[str, str] | None = None) -> Run:
    """Wall time, peak RSS (single process and whole tree) and exit code of one run of ``args``."""
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child: run the command, inherit nothing but stdout/stderr to /dev/null
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        try:
            os.execvpe(args[0], args, env or os.environ.copy())
        finally:
            os._exit(127)
    sampled = os.path.isdir(f"/proc/{pid}/task")
    tree_peak = 0.0
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if sampled:
            tree_peak = max(tree_peak, _tree_rss_mb(pid))
        time.sleep(0.02)
    wall = time.perf_counter() - start
    peak = usage.ru_maxrss / 1024.0
    return Run(
        wall,
        peak,
        os.waitstatus_to_exitcode(status),
        max(tree_peak, peak) if sampled else None,
    )


def python() -> str:
    return sys.executable


__all__ = ["Run", "measure", "python", "subprocess"]
