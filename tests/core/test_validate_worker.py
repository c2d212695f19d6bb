"""The validation child check runs beside ORT: same answers and errors as validating in process."""

from __future__ import annotations

import onnx
import pytest

from models import bad_inputs, dynamic_cnn, external_data, if_subgraph, save
from ortprep.core.errors import BadModelError, OrtprepError
from ortprep.core.onnx_file import load_checked, runtime_input_types
from ortprep.core.validate_worker import Validation, read, validated


def _in_process(path):
    proto, external = load_checked(path)
    return external, runtime_input_types(proto), None


def test_the_answer_round_trips_external_files_and_dynamic_inputs(tmp_path):
    for path in (
        save(dynamic_cnn(), tmp_path / "dyn.onnx"),
        save(if_subgraph(), tmp_path / "if.onnx"),
        external_data(tmp_path / "ext"),
    ):
        expected = _in_process(path)
        assert read(validated(path)) == expected, path
        assert Validation(path).result() == expected, path
    _, inputs, _ = read(validated(tmp_path / "dyn.onnx"))
    assert any(isinstance(d, str) for v in inputs for d in v.shape or ())


def test_the_child_writes_checks_what_if_copy_for_dynamic_inputs_only(tmp_path):
    """With a what-if folder, a dynamic model's copy with every dynamic dim fixed is written
    there (check's what_if_fix values), loadable by ORT; a static model gets none."""
    from ortprep.core.runtime import SessionRecipe, create_session
    from ortprep.stages.check import what_if_fix

    dyn = save(dynamic_cnn(), tmp_path / "dyn.onnx")
    folder = tmp_path / "what-if"
    folder.mkdir()
    _, inputs, what_if = Validation(dyn, folder).result()
    assert what_if is not None
    dims, shapes, copy = what_if
    assert (dims, shapes) == what_if_fix(inputs)
    assert copy.parent == folder
    fixed = onnx.load(str(copy))
    assert all(d.HasField("dim_value") for d in fixed.graph.input[0].type.tensor_type.shape.dim)
    create_session(copy, SessionRecipe(level="disable"))
    static = save(if_subgraph(), tmp_path / "if.onnx")
    assert Validation(static, folder).result()[2] is None


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
