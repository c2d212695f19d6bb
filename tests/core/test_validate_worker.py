"""The validation child check runs beside ORT: same answers and errors as validating in process."""

from __future__ import annotations

import pytest

from models import bad_inputs, dynamic_cnn, external_data, if_subgraph, save
from ortprep.core.errors import BadModelError, OrtprepError
from ortprep.core.onnx_file import load_checked, runtime_input_types
from ortprep.core.validate_worker import Validation, read, validated


def _in_process(path):
    proto, external = load_checked(path)
    return external, runtime_input_types(proto)


def test_the_answer_round_trips_external_files_and_dynamic_inputs(tmp_path):
    for path in (
        save(dynamic_cnn(), tmp_path / "dyn.onnx"),
        save(if_subgraph(), tmp_path / "if.onnx"),
        external_data(tmp_path / "ext"),
    ):
        expected = _in_process(path)
        assert read(validated(path)) == expected, path
        assert Validation(path).result() == expected, path
    _, inputs = read(validated(tmp_path / "dyn.onnx"))
    assert any(isinstance(d, str) for v in inputs for d in v.shape or ())


def test_every_bad_input_raises_the_same_error_as_in_process(tmp_path):
    for name, (path, _) in bad_inputs(tmp_path).items():
        with pytest.raises(OrtprepError) as direct:
            load_checked(path)
        with pytest.raises(OrtprepError) as via_child:
            Validation(path).result()
        assert type(via_child.value) is type(direct.value), name
        assert via_child.value.message == direct.value.message, name
        assert via_child.value.hint == direct.value.hint, name


def test_a_crashed_validation_child_is_a_clear_error(tmp_path):
    path = save(dynamic_cnn(), tmp_path / "dyn.onnx")
    child = Validation(path)
    child._proc.kill()
    with pytest.raises(BadModelError, match="could not be validated"):
        child.result()
    Validation(path).stop()  # stopping a running child ends it quietly
