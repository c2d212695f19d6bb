"""Run a command as a child process; report wall time and the child's peak RSS."""

from __future__ import annotations

import os
import subprocess
import sys
import time


def measure(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, exit code) of one run of ``args``."""
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
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    return wall, usage.ru_maxrss / 1024.0, os.waitstatus_to_exitcode(status)


def python() -> str:
    return sys.executable


__all__ = ["measure", "python", "subprocess"]
