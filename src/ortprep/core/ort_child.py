"""ORT's child: a process that lets ONNX Runtime optimize one model and save it.

Used where one big session dominates (``check``): the child imports only onnxruntime (and onnx,
when it infers shapes), so its peak memory is ORT's own, the parent stays free to validate and
read while ORT works, and a crash inside ORT on a hostile model ends the child, not ortprep.

One line protocol, on the child's stdin and stdout (the child is always started the same way,
``python -m ortprep.core.ort_child``):

====================  =====================================================================
parent -> child       the :class:`Job`, as one JSON line (end-of-file instead: no job, exit 0)
child -> parent       ``saved`` once ORT has saved the graph; or it exits 1 with ORT's reason
                      as the last line of its stderr (a negative status: ORT crashed)
parent -> child       only for a job with ``infer_to``: ``infer`` (infer the saved graph's
                      shapes into ``infer_to``, then exit) or ``skip`` (exit at once)
====================  =====================================================================

The parent may send its decision at any time after the job: the child reads it only once ORT
has saved, so the same job and decision always take the same path. End-of-file on the child's
stdin at any later point means the parent is gone (or cancelled the job): the child exits then,
even in the middle of ORT's work, so it always dies with its parent.

:func:`prestart` starts a child before its job is known (``ortprep check`` calls it first thing:
the child's start-up, the interpreter and onnxruntime, then overlaps the parent's own); the next
:meth:`OrtChild.start` hands its job to that child instead of starting one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ortprep.core.errors import BadModelError
from ortprep.core.runtime import EXTERNAL_FOLDER, SessionRecipe

if TYPE_CHECKING:
    import subprocess

SAVED = "saved"
INFER = "infer"
SKIP = "skip"

_PATHS = ("save_to", "custom_op_library")


@dataclass(frozen=True)
class Job:
    """What the child does: save ``model`` as ``recipe`` says; with ``infer_to``, then (when the
    parent answers ``infer``) write the saved graph with its shapes inferred there."""

    model: Path
    recipe: SessionRecipe
    infer_to: Path | None = None

    def to_json(self) -> str:
        """One line of JSON (the recipe's fields that are set)."""
        spec: dict[str, Any] = {"model": str(self.model)}
        if self.infer_to is not None:
            spec["infer_to"] = str(self.infer_to)
        recipe: dict[str, Any] = {}
        for f in dataclasses.fields(self.recipe):
            value = getattr(self.recipe, f.name)
            if value is not None:
                recipe[f.name] = str(value) if f.name in _PATHS else value
        spec["recipe"] = recipe
        return json.dumps(spec, default=dict)  # free_dims, extra: mappings

    @classmethod
    def from_json(cls, text: str) -> Job:
        spec = json.loads(text)
        recipe = spec["recipe"]
        for key in _PATHS:
            if recipe.get(key) is not None:
                recipe[key] = Path(recipe[key])
        infer_to = spec.get("infer_to")
        return cls(
            Path(spec["model"]),
            SessionRecipe(**recipe),
            None if infer_to is None else Path(infer_to),
        )


# --------------------------------------------------------------------------- parent side

_prestarted: subprocess.Popen[bytes] | None = None
"""The one child started by :func:`prestart`, waiting for its job (the next start takes it)."""


def _spawn() -> subprocess.Popen[bytes]:
    import subprocess

    return subprocess.Popen(
        [sys.executable, "-m", "ortprep.core.ort_child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def prestart() -> None:
    """Start a child now; it imports onnxruntime and waits for the next :meth:`OrtChild.start`.

    A child nobody hands a job to reads end-of-file when this process ends, and exits."""
    global _prestarted
    if _prestarted is None or _prestarted.poll() is not None:
        _prestarted = _spawn()


def _take_prestarted() -> subprocess.Popen[bytes] | None:
    global _prestarted
    proc, _prestarted = _prestarted, None
    return proc if proc is not None and proc.poll() is None else None


class OrtChild:
    """One job in a child process, in explicit steps: :meth:`start`, :meth:`saved`,
    :meth:`infer` or :meth:`skip` (jobs with ``infer_to`` only), :meth:`wait`, :meth:`cancel`.

    :meth:`saved` and :meth:`wait` raise :class:`BadModelError` with ORT's reason when ORT
    refused the model, or when it crashed."""

    def __init__(self, job: Job, proc: subprocess.Popen[bytes]) -> None:
        self.job = job
        self._proc = proc
        self._stdin: IO[bytes] | None = proc.stdin
        self._decided = job.infer_to is None  # nothing to decide without infer_to
        self._finished = False

    @classmethod
    def start(cls, job: Job) -> OrtChild:
        """Hand ``job`` to the pre-started child, if there is one alive, else to a new one."""
        line = job.to_json().encode("utf-8") + b"\n"
        proc = _take_prestarted()
        if proc is not None:
            try:
                return cls(job, _send(proc, line))
            except OSError:  # the child is gone: start a fresh one
                proc.kill()
                proc.communicate()
        return cls(job, _send(_spawn(), line))

    def saved(self) -> None:
        """Wait until ORT has saved the graph to ``job.recipe.save_to``."""
        stdout = self._proc.stdout
        line = stdout.readline() if stdout is not None else b""
        if line.strip() != SAVED.encode():
            self._decided = True  # the child has ended: nothing is left to decide
            self.wait()  # raises with ORT's reason
            raise BadModelError(
                f"{self.job.model}: ONNX Runtime cannot load the model (its process ended "
                "without saving the graph)"
            )

    def infer(self) -> None:
        """Ask the child to infer the saved graph's shapes into ``job.infer_to`` (no file is
        written there when onnx cannot infer them)."""
        self._decide(INFER)

    def skip(self) -> None:
        """Tell the child it ends once ORT has saved (the parent infers the shapes itself)."""
        self._decide(SKIP)

    def _decide(self, word: str) -> None:
        if self.job.infer_to is None:
            raise ValueError("only a job with infer_to takes infer or skip")
        if self._decided:
            raise ValueError("infer or skip was already sent")
        self._decided = True
        try:
            if self._stdin is not None:
                self._stdin.write(word.encode() + b"\n")
                self._stdin.flush()
        except OSError:  # the child has ended (ORT refused the model): wait() says why
            pass

    def wait(self) -> None:
        """Wait for the child's end (a job with ``infer_to`` needs its infer or skip first)."""
        if self._finished:
            return
        if not self._decided:
            raise ValueError("send infer or skip before waiting for the end")
        self._proc.stdin = None  # communicate() must leave stdin open: closing it ends the child
        _, err = self._proc.communicate()
        self._finished = True
        self._close_stdin()
        if self._proc.returncode == 0:
            return
        text = err.decode("utf-8", errors="replace").strip()
        lines = [line for line in text.splitlines() if line.strip()]
        if self._proc.returncode < 0 or not lines:  # killed by a signal: ORT crashed
            reason = f"onnxruntime crashed (exit status {self._proc.returncode})"
        else:
            reason = lines[-1]
        raise BadModelError(f"{self.job.model}: ONNX Runtime cannot load the model ({reason})")

    def cancel(self) -> None:
        """End the child now, wherever it is (a no-op once :meth:`wait` has returned)."""
        if self._finished:
            return
        self._finished = True
        self._proc.kill()
        self._proc.stdin = None
        self._proc.communicate()
        self._close_stdin()

    def _close_stdin(self) -> None:
        stdin, self._stdin = self._stdin, None
        if stdin is not None:
            with contextlib.suppress(OSError):
                stdin.close()


def _send(proc: subprocess.Popen[bytes], line: bytes) -> subprocess.Popen[bytes]:
    assert proc.stdin is not None
    proc.stdin.write(line)
    proc.stdin.flush()
    return proc


# --------------------------------------------------------------------------- child side


def main() -> int:
    """The child: import onnxruntime, take the job, save, then infer or skip as told."""
    import os
    import queue
    import threading

    import onnxruntime  # noqa: F401 -- the import is the point: done before the job arrives

    lines: queue.Queue[str | None] = queue.Queue()
    have_job = threading.Event()

    def read_stdin() -> None:
        for raw in sys.stdin.buffer:
            lines.put(raw.decode("utf-8"))
        if have_job.is_set():  # the parent is gone or cancelled: stop, even inside ORT
            os._exit(1)
        lines.put(None)

    threading.Thread(target=read_stdin, daemon=True).start()
    text = lines.get()
    if text is None or not text.strip():
        return 0  # pre-started, and no job came
    have_job.set()
    from ortprep.core.runtime import (
        can_compile_graph,
        compile_graph,
        create_session,
        describe_ort_error,
    )

    job = Job.from_json(text)
    recipe = job.recipe
    # A model whose external data lives in another folder (a lean copy, ortprep.core.lean_onnx)
    # is handed over as bytes: ORT takes that folder only for a model loaded from memory.
    model: Path | bytes = job.model
    if EXTERNAL_FOLDER in (recipe.extra or {}):
        model = job.model.read_bytes()
    saved = False
    if recipe.compile_only and can_compile_graph():
        try:
            compile_graph(model, recipe)
            saved = True
        except Exception:  # noqa: BLE001 -- the compile API is young: a session decides
            pass
    if not saved:
        try:
            create_session(model, recipe)
        except Exception as exc:  # noqa: BLE001 -- ORT reports refusals as plain exceptions
            print(describe_ort_error(exc), file=sys.stderr)
            return 1
    print(SAVED, flush=True)
    if job.infer_to is None or recipe.save_to is None:
        return 0
    if (lines.get() or "").strip() == INFER:
        _infer(recipe.save_to, job.infer_to)
    return 0


def _infer(saved: Path, infer_to: Path) -> None:
    """Infer the saved graph's shapes into ``infer_to`` (the parent reads the nodes meanwhile).
    ORT's freed graph is handed back to the OS first, so this process holds onnx's work only.
    No file is written when onnx cannot infer: the parent then keeps ORT's value info."""
    from ortprep.core.memory import release

    release()
    import onnx

    try:
        onnx.shape_inference.infer_shapes_path(str(saved), str(infer_to), strict_mode=False)
    except Exception:  # noqa: BLE001 -- any failure: no inferred file
        infer_to.unlink(missing_ok=True)


if __name__ == "__main__":
    import os

    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # no interpreter teardown: it would wait on the stdin reader's lock (a daemon thread)
    os._exit(status)
