"""diff names the fusions ORT applied, from names alone, across .onnx and .ort."""

from __future__ import annotations

from pathlib import Path

from models import conv_bn_relu, if_subgraph, qdq_cnn, save
from ortprep.core.runtime import SessionRecipe, create_session


def _convert(src: Path, dst: Path, fmt: str = "ORT", level: str = "all") -> Path:
    create_session(src, SessionRecipe(level=level, save_to=dst, save_format=fmt))
    return dst


def test_diff_names_conv_fusions_between_onnx_and_ort(cli, tmp_path):
    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    ort_file = _convert(src, tmp_path / "cnn.ort")
    r = cli("diff", src, ort_file, "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    patterns = {f["pattern"]: f["count"] for f in doc["fusions"]}
    assert patterns == {
        "Conv+BatchNormalization+Relu -> FusedConv": 1,
        "Conv+Relu -> FusedConv": 1,
        "Conv+Add+Relu -> FusedConv": 1,
    }
    ops = {o["op"]: o["change"] for o in doc["ops"]}
    assert ops["com.microsoft:FusedConv"] == 3 and ops["ai.onnx:BatchNormalization"] == -1
    assert doc["nodes"] == {"a": 13, "b": 8}
    # ORT's blanket opset_import is not a change: only used domains are listed
    assert set(doc["opsets"]) == {"com.microsoft"}


def test_diff_basic_level_shows_conv_bn_folding(cli, tmp_path):
    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    basic = _convert(src, tmp_path / "cnn.basic.onnx", fmt="ONNX", level="basic")
    doc = cli("diff", src, basic, "--json").json()
    assert {f["pattern"] for f in doc["fusions"]} == {"Conv+BatchNormalization -> Conv"}


def test_diff_names_qdq_groups_turned_into_qlinear_ops(cli, tmp_path):
    src = save(qdq_cnn(), tmp_path / "qdq.onnx")
    ort_file = _convert(src, tmp_path / "qdq.ort")
    doc = cli("diff", src, ort_file, "--json").json()
    targets = " ".join(f["pattern"] for f in doc["fusions"])
    for op in ("QLinearConv", "QLinearAdd", "QGemm"):
        assert op in targets
    assert "DequantizeLinear×2+Add+QuantizeLinear -> QLinearAdd" in targets


def test_diff_of_identical_models_is_empty(cli, tmp_path):
    src = save(if_subgraph(), tmp_path / "if.onnx")
    doc = cli("diff", src, src, "--json").json()
    assert doc["fusions"] == [] and doc["ops"] == [] and doc["removed"] == {}


def test_diff_human_output(cli, tmp_path):
    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    r = cli("diff", src, _convert(src, tmp_path / "cnn.ort"))
    assert "Conv+Relu -> FusedConv" in r.stdout


def test_diff_counts_weights_held_in_constant_nodes(cli, tmp_path):
    """paddle2onnx-style weights in Constant nodes: ORT makes them initializers; diff says so."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w_value")
    nodes = [
        helper.make_node("Constant", [], ["w"], value=w, name="w_const"),
        helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    src = tmp_path / "const.onnx"
    onnx.save(model, str(src))
    ort_file = _convert(src, tmp_path / "const.ort")
    doc = cli("diff", src, ort_file, "--json").json()
    weights = 4 * 3 * 3 * 3 * 4
    assert doc["constant_node_bytes"] == {"a": weights, "b": 0}
    assert doc["initializer_bytes"] == {"a": 0, "b": weights}
    human = cli("diff", src, ort_file).stdout
    assert "bytes in Constant nodes" in human and "initializers" in human
