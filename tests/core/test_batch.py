"""core/batch.py: one model's step gives its result or a Failure, never the end of the batch."""

from __future__ import annotations

import pytest

from ortprep.core.batch import BUG_HINT, Failure, attempt, is_ort_error
from ortprep.core.errors import BadModelError


def test_a_result_passes_through():
    assert attempt(lambda: 42) == 42


def test_a_user_error_is_a_failure_with_its_message_and_hint():
    def bad() -> None:
        raise BadModelError("m.onnx: the file is empty", "copy it again")

    assert attempt(bad) == Failure("m.onnx: the file is empty", "copy it again")


def test_an_error_ort_raises_for_the_model_is_not_internal():
    import onnxruntime as ort

    def load() -> None:
        ort.InferenceSession(b"not a model", providers=["CPUExecutionProvider"])

    with pytest.raises(Exception) as info:
        load()
    assert is_ort_error(info.value)
    failure = attempt(load)
    assert isinstance(failure, Failure)
    assert not failure.internal and failure.traceback is None
    assert failure.message.startswith("ONNX Runtime failed on this model: ")
    assert "\n" not in failure.message


def test_a_bug_is_an_internal_failure_with_its_traceback():
    def buggy() -> None:
        raise KeyError("oops")

    failure = attempt(buggy)
    assert isinstance(failure, Failure)
    assert failure.internal and failure.hint == BUG_HINT
    assert failure.message == "internal error: KeyError: 'oops'"
    assert failure.traceback is not None and "buggy" in failure.traceback
    assert not is_ort_error(KeyError("oops"))


def test_interrupts_are_not_captured():
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        attempt(interrupted)
