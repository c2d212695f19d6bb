"""Reading an .onnx without its weight bytes (core/lean_onnx.py), and the commands that rely on it:
check, inspect and diff answer without materializing weights, external data included."""

from __future__ import annotations

import builtins
import io
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, external_data_helper, helper, numpy_helper
from onnx.external_data_helper import load_external_data_for_tensor

from models import (
    _model,
    attention_block,
    conv_bn_relu,
    dynamic_cnn,
    external_data,
    if_subgraph,
    qdq_cnn,
    save,
)
from ortprep.core.inputs import open_model
from ortprep.core.lean_onnx import INLINE_BYTES, read_lean
from ortprep.core.onnx_view import model_view
from ortprep.core.protowire import WireError


@pytest.fixture(autouse=True)
def _lean_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file is read lean here, however small (models of a few MB are read whole)."""
    monkeypatch.setattr("ortprep.core.onnx_file.LEAN_FROM_BYTES", 0)


def _odd_tensors() -> onnx.ModelProto:
    """Big tensors in every place the scan enters: an initializer kept as float_data, a
    Constant node's tensor attribute, a sparse initializer, a subgraph's initializer, and one
    small tensor that stays inline."""
    r = np.random.default_rng(7)
    w = r.standard_normal((32, 32)).astype(np.float32)
    as_floats = helper.make_tensor("wf", TensorProto.FLOAT, [32, 32], w.flatten().tolist())
    big_const = numpy_helper.from_array(r.standard_normal((32, 32)).astype(np.float32), "c")
    small = numpy_helper.from_array(np.ones((4,), np.float32), "small")
    values = numpy_helper.from_array(r.standard_normal(400).astype(np.float32), "sv")
    indices = numpy_helper.from_array(np.arange(400, dtype=np.int64) * 2, "si")
    sparse = helper.make_sparse_tensor(values, indices, [1000])
    sub_w = numpy_helper.from_array(r.standard_normal((32, 32)).astype(np.float32), "sub_w")
    then = helper.make_graph(
        [helper.make_node("MatMul", ["x", "sub_w"], ["t"], name="sub_mm")],
        "then",
        [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 32])],
        [sub_w],
    )
    other = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["e"], name="sub_id")],
        "else",
        [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, [1, 32])],
    )
    nodes = [
        helper.make_node("Constant", [], ["cv"], name="const", value=big_const),
        helper.make_node("MatMul", ["x", "wf"], ["a"], name="mm"),
        helper.make_node("MatMul", ["a", "cv"], ["b"], name="mm2"),
        helper.make_node("Mul", ["b", "small_b"], ["c2"], name="mul"),
        helper.make_node("If", ["cond"], ["y"], name="if", then_branch=then, else_branch=other),
    ]
    graph = helper.make_graph(
        nodes,
        "odd",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32]),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32]),
            helper.make_tensor_value_info("c2", TensorProto.FLOAT, [1, 32]),
        ],
        [as_floats, numpy_helper.from_array(np.ones((32,), np.float32), "small_b"), small],
        sparse_initializer=[sparse],
    )
    return _model(graph)


def _fixtures() -> dict[str, onnx.ModelProto]:
    return {
        "cnn": conv_bn_relu(channels=16),
        "dynamic": dynamic_cnn(),
        "qdq": qdq_cnn(),
        "if": if_subgraph(),
        "attention": attention_block(seq=16, hidden=64),
        "odd": _odd_tensors(),
    }


@pytest.mark.parametrize("name", list(_fixtures()))
def test_the_lean_proto_is_the_model_with_its_big_payloads_left_in_the_file(tmp_path, name):
    model = _fixtures()[name]
    path = save(model, tmp_path / f"{name}.onnx")
    lean = read_lean(path)
    proto = onnx.ModelProto.FromString(lean.data)
    # each payload left in the file costs a reference of a few dozen bytes, nothing else
    assert len(lean.data) + lean.payload_bytes <= path.stat().st_size + 100 * lean.tensors
    if not lean.tensors:
        assert lean.data == path.read_bytes()
    for t in _tensors(proto):  # every payload left in the file is a reference into it
        if t.data_location == TensorProto.EXTERNAL:
            info = {e.key: e.value for e in t.external_data}
            assert info["location"] == path.name and int(info["length"]) > INLINE_BYTES
    if name in ("cnn", "attention", "odd"):
        assert lean.tensors > 0
    if name == "odd":  # float_data, a Constant's attribute, sparse values and indices, subgraph
        assert lean.tensors == 5
    for t in _tensors(proto):
        if t.data_location == TensorProto.EXTERNAL:
            load_external_data_for_tensor(t, str(tmp_path))
            t.ClearField("data_location")
            del t.external_data[:]
    assert _values(proto) == _values(model)
    assert [n.op_type for n in proto.graph.node] == [n.op_type for n in model.graph.node]


def _tensors(proto: onnx.ModelProto) -> list[onnx.TensorProto]:
    found = []
    stack = [proto.graph]
    while stack:
        g = stack.pop()
        found += list(g.initializer)
        found += [s.values for s in g.sparse_initializer]
        found += [s.indices for s in g.sparse_initializer]
        for n in g.node:
            for a in n.attribute:
                if a.HasField("t"):
                    found.append(a.t)
                if a.HasField("g"):
                    stack.append(a.g)
    return found


def _values(proto: onnx.ModelProto) -> dict[str, list[float]]:
    return {
        t.name: numpy_helper.to_array(t).ravel().tolist()
        for t in _tensors(proto)
        if t.data_location != TensorProto.EXTERNAL
    }


def test_what_the_scan_does_not_understand_is_refused_not_guessed(tmp_path):
    for name, data in (
        ("truncated.onnx", save(conv_bn_relu(), tmp_path / "c.onnx").read_bytes()[:-300]),
        ("group.onnx", bytes([0x0B, 0x0C])),  # a field of wire type 3 (a group)
        ("past_end.onnx", bytes([0x3A, 0x7F, 0x01])),  # graph field longer than the file
    ):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(WireError):
            read_lean(path)


@pytest.mark.parametrize("name", list(_fixtures()))
def test_a_lean_view_answers_as_the_full_view(tmp_path, name):
    """The view opened without weights equals the view of the whole proto: same nodes,
    attributes, value types, initializer sizes; values read on demand are the same, and
    nothing is external data to the EPs."""
    from ortprep.core.onnx_view import read_onnx

    model = _fixtures()[name]
    path = save(model, tmp_path / f"{name}.onnx")
    lean = read_onnx(path)
    full = model_view(model, path)
    assert lean.external_data_files == ()
    lean_nodes = [(g.path, n.name, n.op_type, n.inputs) for g, n in lean.all_nodes()]
    assert lean_nodes == [(g.path, n.name, n.op_type, n.inputs) for g, n in full.all_nodes()]
    assert lean.graph.values == full.graph.values
    graphs = [(lean.graph, full.graph)]
    graphs += [
        (a, b)
        for (_, na), (_, nb) in zip(lean.all_nodes(), full.all_nodes(), strict=True)
        for a, b in zip(na.subgraphs.values(), nb.subgraphs.values(), strict=True)
    ]
    for a, b in graphs:
        assert a.initializers.keys() == b.initializers.keys()
        for key, init in a.initializers.items():
            other = b.initializers[key]
            assert (init.dtype, init.dims, init.nbytes) == (other.dtype, other.dims, other.nbytes)
            assert init.external_file is None
            assert np.array_equal(init.numpy(), other.numpy())
    for (_, na), (_, nb) in zip(lean.all_nodes(), full.all_nodes(), strict=True):
        assert na.attributes.keys() == nb.attributes.keys()
        for key, value in na.attributes.items():
            if hasattr(value, "numpy"):
                assert np.array_equal(value.numpy(), nb.attributes[key].numpy())
            else:
                assert value == nb.attributes[key]


@pytest.mark.parametrize("name", ["cnn", "dynamic", "qdq", "if", "attention", "odd"])
def test_check_answers_the_same_whether_it_reads_the_model_lean_or_whole(
    tmp_path, monkeypatch, name
):
    from ortprep.stages import check

    path = save(_fixtures()[name], tmp_path / f"{name}.onnx")
    lean = check.run(path, check.CheckOptions()).to_dict()
    monkeypatch.setattr("ortprep.core.onnx_file.LEAN_FROM_BYTES", 1 << 40)
    assert check.run(path, check.CheckOptions()).to_dict() == lean


# ------------------------------------------------------------ nothing reads the weights


class _Spy:
    """Records every way this process could read weights: numpy_helper.to_array (materializing
    a tensor, which also raises), onnx loading the model or any external data, a whole-file
    read of the model, any open of its external data file."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, model: Path, data: Path | None) -> None:
        self.reads: list[str] = []
        real_open, real_read_bytes = builtins.open, Path.read_bytes

        def to_array(*args: object, **kwargs: object) -> None:
            self.reads.append("numpy_helper.to_array")
            raise AssertionError("a weight was materialized")

        def spy_open(file: object, *args: object, **kwargs: object) -> object:
            if data is not None and Path(str(file)).resolve() == data.resolve():
                self.reads.append(f"open({file})")
            return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

        def read_bytes(path: Path) -> bytes:
            if path.resolve() in {model.resolve(), *([data.resolve()] if data else [])}:
                self.reads.append(f"read_bytes({path})")
            return real_read_bytes(path)

        def external(real: Any) -> Any:
            def load(*args: object, **kwargs: object) -> object:
                self.reads.append(real.__name__)
                return real(*args, **kwargs)

            return load

        monkeypatch.setattr(numpy_helper, "to_array", to_array)
        monkeypatch.setattr(builtins, "open", spy_open)
        monkeypatch.setattr(io, "open", spy_open)
        for name in ("load_external_data_for_tensor", "load_external_data_for_model"):
            monkeypatch.setattr(
                external_data_helper, name, external(getattr(external_data_helper, name))
            )
        monkeypatch.setattr(Path, "read_bytes", read_bytes)
        monkeypatch.setattr(onnx, "load", self._load(onnx.load, model))
        monkeypatch.setattr(onnx, "load_model", self._load(onnx.load_model, model))

    def _load(self, real: object, model: Path) -> object:
        def load(f: object, *args: object, **kwargs: object) -> object:
            if Path(str(f)).resolve() == model.resolve():
                self.reads.append(f"onnx.load({f})")
            return real(f, *args, **kwargs)  # type: ignore[operator]

        return load


def _weighty(folder: Path) -> Path:
    """A dynamic CNN with weights worth reading (inline; 16 conv channels)."""
    return save(conv_bn_relu(channels=64, size=32), folder / "weighty.onnx")


def test_check_inspect_and_diff_never_read_an_inline_models_weights(tmp_path, monkeypatch):
    from ortprep.stages import check, diff, inspect

    path = _weighty(tmp_path)
    spy = _Spy(monkeypatch, path, None)
    result = check.run(path, check.CheckOptions())
    assert {r.ep for r in result.eps} == set(check.EP_IDS)
    summary = inspect.run(path)
    assert summary.initializer_bytes > 64 * 64 * 9 * 4 and summary.external_data_files == ()
    diff.run(path, path)
    assert spy.reads == []
    with pytest.raises(AssertionError):  # the spy sees a weight read
        open_model(path).graph.initializers["w1"].numpy()
    assert spy.reads


def test_check_and_inspect_answer_on_an_external_data_model_without_reading_it(
    tmp_path, monkeypatch
):
    from ortprep.stages import check, inspect

    path = external_data(tmp_path / "m")
    data = path.parent / "weights.bin"
    spy = _Spy(monkeypatch, path, data)
    summary = inspect.run(path)
    assert summary.external_data_files == ("weights.bin",)
    assert summary.initializer_bytes == 128 * 128 * 4
    result = check.run(path, check.CheckOptions())
    coreml = next(r for r in result.eps if r.ep == "coreml-mlprogram")
    # the EPs see the user's external data, named as the user's file names it
    assert any("external data (weights.bin)" in (n.reason or "") for n in coreml.nodes)
    assert spy.reads == []
    with pytest.raises(AssertionError):  # the spy sees a weight read
        open_model(path).graph.initializers["w"].numpy()
    assert "load_external_data_for_tensor" in spy.reads


def test_check_and_inspect_on_an_external_data_model_from_the_cli(cli, tmp_path, hashes):
    path = external_data(tmp_path / "m")
    before = hashes(tmp_path)
    r = cli("check", path, "--json")
    assert r.code == 0, r.stderr
    assert {e["ep"] for e in r.json()["eps"]} >= {"nnapi", "xnnpack"}
    r = cli("inspect", path, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["external_data_files"] == ["weights.bin"]
    assert hashes(tmp_path) == before


def test_a_missing_external_file_is_still_a_clear_error(cli, tmp_path):
    path = external_data(tmp_path / "m")
    (path.parent / "weights.bin").unlink()
    for command in ("check", "inspect"):
        r = cli(command, path)
        assert r.code == 2 and "weights.bin" in r.stderr and "missing" in r.stderr, r.stderr


# ------------------------------------------------------------ the what-if through ORT


def test_named_dims_fixed_by_ort_answer_as_the_fixed_copy_does(tmp_path):
    """The what-if fixes named dims with ORT's free-dimension overrides; dims without a name
    and --fix-input go through a copy of the lean proto with the shapes fixed (fix-shapes'
    edit). On the same fixes both give every EP the same answer, node for node."""
    from ortprep.stages import check

    cases = {
        "dynamic": (dynamic_cnn(), {"N": 1, "H": 32, "W": 32}, {"x": (1, 3, 32, 32)}),
        "attention": (_named_attention(), {"batch": 1}, {"x": (1, 16, 64)}),
    }
    for name, (model, dims, inputs) in cases.items():
        path = save(model, tmp_path / f"{name}.onnx")
        by_ort = check.run(path, check.CheckOptions(fix_dims=dims, what_if=False))
        by_copy = check.run(path, check.CheckOptions(fix_inputs=inputs, what_if=False))
        for a, b in zip(by_ort.eps, by_copy.eps, strict=True):
            assert a.outcome == b.outcome, (name, a.ep)
            assert a.nodes == b.nodes, (name, a.ep)
        assert not any(
            v.dynamic
            for v in check.graph_views(
                path, check.CheckOptions(fix_dims=dims), _workdir(tmp_path, name)
            ).model.graph.runtime_inputs
        )


def _workdir(tmp_path: Path, name: str) -> Path:
    work = tmp_path / f"work-{name}"
    work.mkdir()
    return work


def _named_attention() -> onnx.ModelProto:
    model = attention_block(seq=16, hidden=64)
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    dim.dim_param = "batch"
    return model


def test_an_unknown_fix_dim_is_a_usage_error_though_ort_would_ignore_it(cli, tmp_path):
    path = save(dynamic_cnn(), tmp_path / "dyn.onnx")
    r = cli("check", path, "--fix-dim", "nope=1")
    assert r.code == 2 and "nope" in r.stderr and "N" in r.stderr, r.stderr


def test_a_dim_without_a_name_gets_the_weightless_fixed_copy(tmp_path):
    from ortprep.stages import check

    model = dynamic_cnn()
    for d in model.graph.input[0].type.tensor_type.shape.dim:
        if d.HasField("dim_param") and d.dim_param == "H":
            d.ClearField("dim_param")  # unknown, unnamed: no free-dimension override can fix it
    path = save(model, tmp_path / "unnamed.onnx")
    views = check.graph_views(path, check.CheckOptions(), _workdir(tmp_path, "u"))
    assert views.what_if is not None
    assert not any(v.dynamic for v in views.what_if.graph.runtime_inputs)
    assert "--fix-input" in (views.fix_command or "")


def test_an_external_data_model_with_a_dim_without_a_name_gets_its_what_if(tmp_path):
    """The fixed copy of the fallback sits in the work folder; its weights stay the user's
    external data, read by ORT from the user's folder."""
    from ortprep.stages import check

    path = external_data(tmp_path / "m")
    proto = onnx.load(str(path), load_external_data=False)
    proto.graph.input[0].type.tensor_type.shape.dim[0].Clear()  # [?, 128]
    onnx.save(proto, str(path))
    result = check.run(path, check.CheckOptions())
    coreml = next(r for r in result.eps if r.ep == "coreml-mlprogram")
    assert coreml.if_shapes_fixed is not None
    assert "--fix-input" in (result.fix_command or "")
    assert any("external data (weights.bin)" in (n.reason or "") for n in coreml.nodes)
