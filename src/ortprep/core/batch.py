"""One model's step in a batch: its result, or why it failed, and never the end of the batch.

Every command that takes a folder runs each model's work through :func:`attempt`. What a user
can fix (an :class:`~ortprep.core.errors.OrtprepError`) and what ONNX Runtime refuses while
loading or running a model (its own exception classes) become a :class:`Failure` with a one-line
reason; the other models go on. Any other exception is a bug in ortprep: it becomes a failure
marked ``internal`` with its traceback, which the command shows under ``--debug`` and turns into
exit 3 once the batch is done (ARCHITECTURE.md "Exit codes").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ortprep.core.errors import OrtprepError, VerdictError, environment_error, ort_failure_hint

__all__ = ["BUG_HINT", "Failure", "attempt", "failure_of", "is_ort_error"]

T = TypeVar("T")

BUG_HINT = "this is a bug in ortprep; run with --debug for the traceback"
_ORT_HINT = "check the model with `ortprep inspect`; it may need a newer ONNX Runtime"


@dataclass(frozen=True)
class Failure:
    """Why one model's step failed: a one-line reason, a hint, and whether it is a bug."""

    message: str
    hint: str | None = None
    internal: bool = False
    traceback: str | None = None
    verdict: bool = False  # a :class:`VerdictError`: exit 1, even for a single input

    @property
    def line(self) -> str:
        """The reason and its hint on one line, for a list of problems."""
        return self.message + (f" ({self.hint})" if self.hint else "")


class FailureFields:
    """``error``, ``hint`` and ``internal_error`` of a per-model result, read from its ``failure``
    (a dataclass field of the class that mixes this in)."""

    failure: Failure | None

    @property
    def error(self) -> str | None:
        return None if self.failure is None else self.failure.message

    @property
    def hint(self) -> str | None:
        return None if self.failure is None else self.failure.hint

    @property
    def internal_error(self) -> bool:
        return self.failure is not None and self.failure.internal


def is_ort_error(exc: BaseException) -> bool:
    """An error ONNX Runtime raised for the model (its pybind classes: Fail, InvalidGraph...)."""
    return type(exc).__module__.startswith("onnxruntime.")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


def failure_of(exc: Exception) -> Failure:
    """The :class:`Failure` an exception raised by one model's step stands for."""
    if isinstance(exc, OrtprepError):
        return Failure(exc.message, exc.hint, verdict=isinstance(exc, VerdictError))
    caused = environment_error(exc)  # a full disk or a path the OS refuses: not a bug
    if caused is not None:
        return Failure(caused.message, caused.hint)
    if is_ort_error(exc):
        from ortprep.core.runtime import describe_ort_error

        said = describe_ort_error(exc)
        return Failure(
            f"ONNX Runtime failed on this model: {said}", ort_failure_hint(said, _ORT_HINT)
        )
    import traceback

    return Failure(
        f"internal error: {type(exc).__name__}: {_first_line(exc)}",
        BUG_HINT,
        internal=True,
        traceback="".join(traceback.format_exception(exc)),
    )


def noted(problems: list[str], stage: str, step: Callable[[], T]) -> T | None:
    """Run one optional stage of a model (prepare's checks, diffs, benchmark): its result, or
    None with ``"STAGE: what went wrong"`` added to ``problems`` when the user or ORT caused the
    failure; a bug is raised (the model's own :func:`attempt` records it as internal)."""
    try:
        return step()
    except Exception as exc:
        failure = failure_of(exc)
        if failure.internal:
            raise
        problems.append(f"{stage}: {failure.line}")
        return None


def attempt(step: Callable[[], T]) -> T | Failure:
    """Run one model's ``step``: its result, or the :class:`Failure` it raised."""
    try:
        return step()
    except Exception as exc:  # noqa: BLE001 -- one model never stops a batch; bugs are marked
        return failure_of(exc)
