"""#11: the input search: integer inputs fitted to what the graph does with them, symbolic dims
retried with other sizes within a memory bound, one line per failed attempt."""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper

from failing_models import never_runs
from models import _model, save
from ortprep.core import input_search
from ortprep.core.graph import Model
from ortprep.core.inputs import open_model
from ortprep.core.runtime import SessionRecipe, create_session
from real_shape_models import embedding, reflect_pad_vad


def _session_and_model(proto: onnx.ModelProto, tmp_path) -> tuple[object, Model]:
    path = save(proto, tmp_path / "m.onnx")
    return create_session(path, SessionRecipe(level="disable")), open_model(path)


def test_an_index_input_gets_values_below_the_gathered_dim(tmp_path):
    session, model = _session_and_model(embedding(vocab=3), tmp_path)
    found = input_search.search(session, model, {})
    assert found.ran and not found.failed
    ids = found.feeds["ids"]
    assert ids.dtype == np.int64 and ids.min() >= 0 and ids.max() < 3
    assert found.inputs[0].values.startswith("integers [0, 3) (indices into Gather 'lookup'")


def test_without_the_graph_the_same_ids_fail_and_every_attempt_is_a_line(tmp_path):
    session, _ = _session_and_model(embedding(vocab=3), tmp_path)
    found = input_search.search(session, None, {})  # no graph: ids drawn from [0, 4) / [1, 4)
    assert not found.ran
    assert found.failed and all("ids [1, " in a.line for a in found.failed)
    assert all("Gather" in a.error for a in found.failed)
    assert len(found.failed) <= input_search.MAX_ATTEMPTS


def test_a_symbolic_dim_is_retried_with_larger_sizes(tmp_path):
    session, model = _session_and_model(reflect_pad_vad(), tmp_path)
    found = input_search.search(session, model, {})
    assert found.ran
    assert found.shapes["input"] == (1, 256) and found.shapes["state"] == (2, 1, 128)
    tried = [a.inputs[0].shape for a in found.failed]
    assert tried[:3] == [(1, 32)] * 3 and (1, 64) in tried
    assert found.outputs is not None and set(found.outputs) == {"output", "stateN", "m"}


def test_a_fixed_dim_is_never_changed(tmp_path):
    session, model = _session_and_model(never_runs(), tmp_path)
    found = input_search.search(session, model, {"n": 5})
    assert not found.ran
    assert {a.inputs[0].shape for a in found.failed} == {(5, 3)}


def test_sizes_are_bounded_by_the_memory_of_all_inputs(tmp_path):
    """x [n, c, h, w]: c, h and w take each size; 512 would need 512 MiB of float32."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "c", "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    one = helper.make_tensor("one", TensorProto.INT64, [1], [1])
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Add", ["s", "one"], ["s1"]),
        helper.make_node("Reshape", ["x", "s1"], ["y"]),
    ]
    proto = helper.make_model(
        helper.make_graph(nodes, "big", [x], [y], [one]),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    proto.ir_version = 8
    session, model = _session_and_model(proto, tmp_path)
    found = input_search.search(session, model, {})
    assert not found.ran
    sizes = [math.prod(a.inputs[0].shape) * 4 for a in found.failed]
    assert max(sizes) <= input_search.MAX_TOTAL_BYTES
    assert (1, 256, 256, 256) in [a.inputs[0].shape for a in found.failed]


def test_names_and_uses_give_integer_inputs_their_meaning(tmp_path):
    """sr -> 16000; lengths -> the sequence's dim; a Range limit -> small and positive."""
    inputs = [
        helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", "time"]),
        helper.make_tensor_value_info("sr", TensorProto.INT64, []),
        helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"]),
        helper.make_tensor_value_info("limit", TensorProto.INT64, []),
    ]
    nodes = [
        helper.make_node("Cast", ["sr"], ["srf"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["lengths"], ["lf"], to=TensorProto.FLOAT),
        helper.make_node("Range", ["zero", "limit", "step"], ["r"]),
        helper.make_node("Cast", ["r"], ["rf"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["rf"], ["rs"], keepdims=0),
        helper.make_node("Mul", ["audio", "srf"], ["a1"]),
        helper.make_node("Add", ["a1", "rs"], ["y"]),
    ]
    outputs = [
        helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "time"]),
        helper.make_tensor_value_info("lf", TensorProto.FLOAT, ["batch"]),
    ]
    inits = [
        helper.make_tensor("zero", TensorProto.INT64, [], [0]),
        helper.make_tensor("step", TensorProto.INT64, [], [1]),
    ]
    proto = _model(helper.make_graph(nodes, "named", inputs, outputs, inits))
    session, model = _session_and_model(proto, tmp_path)
    found = input_search.search(session, model, {"time": 400})
    assert found.ran
    assert int(found.feeds["sr"]) == 16000
    assert found.feeds["lengths"].tolist() == [400]
    assert 1 <= int(found.feeds["limit"]) < 4
    values = {i.name: i.values for i in found.inputs}
    assert "Range" in values["limit"] and values["audio"] == "normal(0, 1)"


def test_root_cause_keeps_the_innermost_node_and_drops_the_source_location():
    said = (
        "2 : INVALID_ARGUMENT : Non-zero status code returned while running If node. "
        "Name:'If_0' Status Message: Non-zero status code returned while running Pad node. "
        "Name:'stft/Pad' Status Message: Pad reflect: post-pad (32) exceeds maximum allowed (31)"
    )
    assert input_search.root_cause(said) == (
        "Pad node 'stft/Pad': Pad reflect: post-pad (32) exceeds maximum allowed (31)"
    )
    said = (
        "Non-zero status code returned while running Reshape node. Name:'' Status Message: "
        "/src/reshape_helper.h:91 onnxruntime::ReshapeHelper::ReshapeHelper(x) a == b was false."
        " The input tensor cannot be reshaped"
    )
    assert input_search.root_cause(said) == "Reshape node: The input tensor cannot be reshaped"


def test_an_input_that_is_not_a_tensor_is_a_usage_error(tmp_path):
    import pytest

    from ortprep.core.errors import UsageError

    seq = helper.make_tensor_sequence_value_info("items", TensorProto.FLOAT, None)
    n = helper.make_tensor_value_info("n", TensorProto.INT64, [])
    graph = helper.make_graph(
        [helper.make_node("SequenceLength", ["items"], ["n"])], "seq", [seq], [n]
    )
    session, model = _session_and_model(_model(graph), tmp_path)
    with pytest.raises(UsageError, match="cannot generate"):
        input_search.search(session, model, {})


def test_the_inputs_used_can_be_made_again_from_their_json(tmp_path):
    """A benchmark (another process) can run on exactly the inputs verification used."""
    session, model = _session_and_model(reflect_pad_vad(), tmp_path)
    found = input_search.search(session, model, {})
    assert found.ran and found.failed  # found on a retry: its own seed
    again = input_search.regenerate(
        [input_search.InputUsed.from_dict(i.to_dict()) for i in found.inputs]
    )
    assert set(again) == set(found.feeds)
    for name, array in found.feeds.items():
        assert again[name].dtype == array.dtype
        np.testing.assert_array_equal(again[name], array)


def _audio_frontend() -> onnx.ModelProto:
    """Like an ASR feature extractor: ``waveforms`` [batch_size, N] reflect-padded by 100
    samples, so N must exceed 100; ``N`` names the sample count, not a batch."""
    pads = helper.make_tensor("pads", TensorProto.INT64, [4], [0, 100, 0, 100])
    graph = helper.make_graph(
        [
            helper.make_node(
                "Pad", ["waveforms", "pads"], ["padded"], name="frame_pad", mode="reflect"
            )
        ],
        "audio_frontend",
        [helper.make_tensor_value_info("waveforms", TensorProto.FLOAT, ["batch_size", "N"])],
        [helper.make_tensor_value_info("padded", TensorProto.FLOAT, ["batch_size", None])],
        initializer=[pads],
    )
    return _model(graph)


def test_a_dim_named_n_after_the_batch_is_a_length_and_is_retried(tmp_path):
    session, model = _session_and_model(_audio_frontend(), tmp_path)
    found = input_search.search(session, model, {})
    assert found.ran
    assert found.shapes["waveforms"] == (1, 256)
    assert all(a.inputs[0].shape[0] == 1 for a in found.failed)


def test_which_dims_are_batches():
    from ortprep.core.feeds import input_shape, is_batch_dim

    assert is_batch_dim("batch_size", 0) and is_batch_dim("batch", 2) and is_batch_dim("N", 0)
    assert not is_batch_dim("N", 1) and not is_batch_dim("b", 1)
    assert is_batch_dim(None, 0) and is_batch_dim("p2o.DynamicDimension.0", 0)
    assert not is_batch_dim("seq_len", 0) and not is_batch_dim(None, 1)
    assert input_shape(("batch_size", "N"), {}) == (1, 32)
    assert input_shape(("seq_len", 576), {}) == (32, 576)
