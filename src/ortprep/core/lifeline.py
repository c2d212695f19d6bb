"""A child process dies with its parent: a killed ``ortprep`` leaves no worker running on.

Linux: the kernel sends the child SIGKILL when the parent ends (``prctl(PR_SET_PDEATHSIG)``,
asked for through ctypes). Elsewhere: a daemon thread notices that the child was handed to
another parent (``os.getppid()`` changed) and ends the process. Either way, a parent that was
already gone before the child asked is noticed at once (the parent's id is passed in).
"""

from __future__ import annotations

import os
import signal
import sys
import threading

PARENT_ENV = "ORTPREP_PARENT_PID"
"""The environment variable a parent sets to its process id for the children it starts."""

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with :data:`PARENT_ENV` set to this process."""
    out = dict(os.environ if env is None else env)
    out[PARENT_ENV] = str(os.getpid())
    return out


def die_with_parent(poll_seconds: float = 0.5) -> None:
    """Called first thing in a child: end this process when the parent that started it ends."""
    expected = os.environ.get(PARENT_ENV)
    parent = int(expected) if expected and expected.isdigit() else os.getppid()
    if not (sys.platform.startswith("linux") and _pdeathsig()):
        threading.Thread(target=_watch, args=(parent, poll_seconds), daemon=True).start()
    if os.getppid() != parent:  # the parent ended before the signal was asked for
        os._exit(1)


def _pdeathsig() -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int, poll_seconds: float) -> None:
    import time

    while os.getppid() == parent:
        time.sleep(poll_seconds)
    os._exit(1)
