"""Model Explorer overlays and the Netron annotated copy: every key names a node of the graph
written beside it (by our reading of the adapter, and by the real ``model-explorer-onnx`` adapter
when the ``viz`` extra is installed), values are the partitions ``check`` reports, no weights."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import ortprep
from models import conv_bn_relu, dynamic_cnn, if_subgraph, save
from ortprep.overlays import model_explorer as me

HAS_ADAPTER = importlib.util.find_spec("model_explorer_onnx") is not None


def _vi(name: str, dtype: int, shape: list[int | str] | None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def control_flow() -> onnx.ModelProto:
    """A Loop whose body holds an If, then an If whose branch holds another If; some nodes
    unnamed, one name used in two graphs (ORT refuses two alike in one graph)."""
    one = numpy_helper.from_array(np.ones(4, np.float32), "one")
    inner_then = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["it"], name="inner_relu")],
        "inner_then",
        [],
        [_vi("it", TensorProto.FLOAT, [4])],
    )
    inner_else = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["ie"])],
        "inner_else",
        [],  # unnamed
        [_vi("ie", TensorProto.FLOAT, [4])],
    )
    outer_then = helper.make_graph(
        [
            helper.make_node(
                "If", ["c"], ["ot"], name="inner_if", then_branch=inner_then, else_branch=inner_else
            )
        ],
        "outer_then",
        [],
        [_vi("ot", TensorProto.FLOAT, [4])],
    )
    outer_else = helper.make_graph(
        [helper.make_node("Sigmoid", ["x"], ["oe"], name="dup")],
        "outer_else",
        [],
        [_vi("oe", TensorProto.FLOAT, [4])],
    )
    body_then = helper.make_graph(
        [helper.make_node("Add", ["v", "one"], ["bt"], name="body_add")],
        "body_then",
        [],
        [_vi("bt", TensorProto.FLOAT, [4])],
    )
    body_else = helper.make_graph(
        [helper.make_node("Sub", ["v", "one"], ["be"], name="body_sub")],
        "body_else",
        [],
        [_vi("be", TensorProto.FLOAT, [4])],
    )
    body = helper.make_graph(
        [
            helper.make_node(
                "If",
                ["cond_in"],
                ["v_next"],
                name="body_if",
                then_branch=body_then,
                else_branch=body_else,
            ),
            helper.make_node("Identity", ["cond_in"], ["cond_out"], name="body_cond"),
        ],
        "body",
        [
            _vi("i", TensorProto.INT64, []),
            _vi("cond_in", TensorProto.BOOL, []),
            _vi("v", TensorProto.FLOAT, [4]),
        ],
        [_vi("cond_out", TensorProto.BOOL, []), _vi("v_next", TensorProto.FLOAT, [4])],
    )
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),  # unnamed
        helper.make_node("Loop", ["n", "c", "r"], ["looped"], name="loop", body=body),
        helper.make_node(
            "If", ["c"], ["branch"], name="outer_if", then_branch=outer_then, else_branch=outer_else
        ),
        helper.make_node("Add", ["looped", "branch"], ["s"], name="dup"),
        helper.make_node("Mul", ["s", "one"], ["y"], name="mul"),
    ]
    graph = helper.make_graph(
        nodes,
        "control_flow",
        [
            _vi("x", TensorProto.FLOAT, [4]),
            _vi("n", TensorProto.INT64, []),
            _vi("c", TensorProto.BOOL, []),
        ],
        [_vi("y", TensorProto.FLOAT, [4])],
        initializer=[one],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def big_weights() -> onnx.ModelProto:
    """A MatMul with a 256 KiB weight and a tiny bias."""
    w = numpy_helper.from_array(np.random.default_rng(0).random((256, 256), np.float32), "w")
    b = numpy_helper.from_array(np.zeros(256, np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
            helper.make_node("Add", ["m", "b"], ["y"], name="bias"),
        ],
        "big",
        [_vi("x", TensorProto.FLOAT, [1, 256])],
        [_vi("y", TensorProto.FLOAT, [1, 256])],
        initializer=[w, b],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _check(path: Path, out: Path, **kw) -> ortprep.stages.check.CheckResult:  # type: ignore[name-defined]
    return ortprep.check(path, ep="nnapi,xnnpack", model_explorer=out, **kw)


def _overlay(out: Path, filename: str, ep: str) -> dict:
    return json.loads((out / me.node_data_name(filename, ep)).read_text())


def _adapter_ids(analyzed: Path) -> dict[str, set[str]]:
    from model_explorer_onnx.main import ONNXAdapter

    graphs = ONNXAdapter().convert(str(analyzed), {})["graphs"]
    return {g.id: {n.id for n in g.nodes} for g in graphs}


MODELS = {
    "cnn.onnx": conv_bn_relu,
    "dyn.onnx": dynamic_cnn,
    "if.onnx": if_subgraph,
    "flow.onnx": control_flow,
}


@pytest.fixture(scope="module")
def overlays(tmp_path_factory):
    """Every test model checked with overlays; also the .ort of one."""
    folder = tmp_path_factory.mktemp("overlays")
    out = folder / "me"
    results = {}
    for name, build in MODELS.items():
        path = save(build(), folder / "models" / name)
        results[name] = _check(path, out)
    ortprep.convert(folder / "models" / "cnn.onnx", folder / "ort", style="fixed", no_verify=True)
    results["cnn.ort"] = _check(folder / "ort" / "cnn.ort", out)
    return out, results


def test_files_are_named_by_the_full_file_name(overlays):
    out, results = overlays
    for filename, result in results.items():
        assert (out / me.analyzed_name(filename)).is_file()
        for ep in ("nnapi", "xnnpack"):
            assert (out / me.node_data_name(filename, ep)).is_file()
        assert str(out / me.analyzed_name(filename)) in result.written
    # model.onnx and model.ort side by side: no collision
    assert _overlay(out, "cnn.onnx", "nnapi") != _overlay(out, "cnn.ort", "nnapi")


@pytest.mark.parametrize("filename", [*MODELS, "cnn.ort"])
def test_every_check_node_has_its_partition_under_an_id_of_the_analysed_graph(overlays, filename):
    out, results = overlays
    analyzed = onnx.load(str(out / me.analyzed_name(filename)), load_external_data=False)
    ids = me.adapter_ids(analyzed)
    for report in results[filename].eps:
        data = _overlay(out, filename, report.ep)
        values = [r["value"] for g in data.values() for r in g["results"].values()]
        drawn = {(g, n) for g, n in ids.values()}
        assert {(g, n) for g in data for n in data[g]["results"]} == drawn
        # one value per node drawn, from check's own answer
        taken = sum(1 for n in report.nodes if n.partition is not None)
        assert sum(v >= 0 for v in values) <= taken
        assert max(values) < max(len(report.outcome.partitions), 1)
        for g in data.values():
            legend = [t["value"] for t in g["thresholds"]]
            assert legend[:2] == [me.REFUSED, me.LEFT_TO_CPU]
            for r in g["results"].values():
                assert r["bgColor"] == me.color(r["value"])


def test_main_graph_keys_are_node_names_of_the_analysed_graph(overlays):
    out, _ = overlays
    analyzed = onnx.load(str(out / me.analyzed_name("cnn.onnx")), load_external_data=False)
    (graph_id,) = _overlay(out, "cnn.onnx", "nnapi")
    assert graph_id == analyzed.graph.name
    keys = set(_overlay(out, "cnn.onnx", "nnapi")[graph_id]["results"])
    assert keys == {n.name for n in analyzed.graph.node}


def test_subgraph_ids_follow_the_adapter(overlays):
    out, results = overlays
    data = _overlay(out, "flow.onnx", "nnapi")
    main = data["control_flow"]["results"]
    assert {"loop", "outer_if", "dup", "mul"} <= set(main)
    assert any(k.startswith("Relu_") for k in main)  # unnamed: <op>_<index in ORT's graph>
    # If branches are drawn inside the graph holding the If, nested Ifs too
    assert "outer_if/then_branch/inner_if/then_branch/inner_relu" in main
    assert "outer_if/then_branch/inner_if/else_branch/Neg_0" in main
    assert "outer_if/else_branch/dup" in main
    # a Loop's body is its own graph, with its If embedded
    assert set(data["loop/body"]["results"]) == {
        "body_if",
        "body_if/then_branch/body_add",
        "body_if/else_branch/body_sub",
        "body_cond",
    }
    # NNAPI takes no subgraph node: refused, coloured
    assert data["loop/body"]["results"]["body_cond"]["value"] == me.REFUSED
    assert results["flow.onnx"].eps[0].ep == "nnapi"


def test_refused_and_taken_nodes_match_check(overlays):
    out, results = overlays
    data = _overlay(out, "dyn.onnx", "nnapi")
    (graph,) = data.values()
    assert {r["value"] for r in graph["results"].values()} == {me.REFUSED}  # dynamic shapes
    assert all(r["bgColor"] == me.REFUSED_COLOR for r in graph["results"].values())
    cnn = _overlay(out, "cnn.onnx", "nnapi")
    nnapi = results["cnn.onnx"].eps[0]
    by_name = {n.name: n.partition for n in nnapi.nodes}
    for node, r in next(iter(cnn.values()))["results"].items():
        assert r["value"] == by_name[node]


@pytest.mark.skipif(not HAS_ADAPTER, reason="the viz extra (model-explorer-onnx) is not installed")
@pytest.mark.parametrize("filename", [*MODELS, "cnn.ort"])
def test_keys_resolve_in_the_real_model_explorer_onnx_adapter(overlays, filename):
    out, _ = overlays
    adapter = _adapter_ids(out / me.analyzed_name(filename))
    for ep in ("nnapi", "xnnpack"):
        data = _overlay(out, filename, ep)
        for graph_id, graph in data.items():
            assert graph_id in adapter, graph_id
            missing = set(graph["results"]) - adapter[graph_id]
            assert not missing, (graph_id, missing)
        # and every ONNX node the adapter draws has a value
        drawn = {
            (g, n)
            for g, ids in adapter.items()
            for n in ids
            if not n.startswith("[value]") and not n.endswith(("_capture", "_phi"))
        }
        keyed = {(g, n) for g, graph in data.items() for n in graph["results"]}
        assert drawn == keyed


@pytest.mark.skipif(
    not HAS_ADAPTER, reason="the viz extra (ai-edge-model-explorer) is not installed"
)
def test_node_data_loads_into_model_explorers_own_classes(overlays):
    from model_explorer import node_data_builder as ndb

    out, _ = overlays
    for graph_id, graph in _overlay(out, "flow.onnx", "nnapi").items():
        built = ndb.GraphNodeData(
            results={k: ndb.NodeDataResult(**v) for k, v in graph["results"].items()},
            name=graph["name"],
            thresholds=[ndb.ThresholdItem(**t) for t in graph["thresholds"]],
        )
        assert json.loads(ndb.ModelNodeData({graph_id: built}).to_json_string())[graph_id]


def test_analysed_graph_carries_no_weights(tmp_path):
    path = save(big_weights(), tmp_path / "big.onnx")
    _check(path, tmp_path / "me")
    analyzed = tmp_path / "me" / me.analyzed_name("big.onnx")
    assert analyzed.stat().st_size < 4096 < path.stat().st_size
    proto = onnx.load(str(analyzed), load_external_data=False)
    w = next(t for t in proto.graph.initializer if list(t.dims) == [256, 256])
    assert w.data_location == TensorProto.EXTERNAL and not w.raw_data
    entries = {e.key: e.value for e in w.external_data}
    assert entries["length"] == str(256 * 256 * 4)
    assert not (analyzed.parent / entries["location"]).exists()
    b = next(t for t in proto.graph.initializer if list(t.dims) == [256])
    assert b.data_location == TensorProto.DEFAULT  # 1 KiB: kept, readable
    assert not list(tmp_path.glob("*.weights-not-included"))


def test_check_leaves_the_input_alone_and_refuses_a_file_as_folder(tmp_path, hashes, cli):
    path = save(conv_bn_relu(), tmp_path / "in" / "m.onnx")
    before = hashes(tmp_path / "in")
    r = cli("check", path, "--ep", "nnapi", "--model-explorer", tmp_path / "me")
    assert r.code == 0 and "model-explorer " in r.stdout and "--node_data_paths=" in r.stdout
    assert hashes(tmp_path / "in") == before
    r = cli("check", path, "--model-explorer", path)
    assert r.code == 2 and "is a file" in r.stderr
    r = cli("check", path, "--annotate", path)
    assert r.code == 2 and "is the input model" in r.stderr
    assert hashes(tmp_path / "in") == before


def test_annotated_copy_tells_netron_each_nodes_ep_partition_and_reason(tmp_path, cli):
    path = save(dynamic_cnn(), tmp_path / "dyn.onnx")
    target = tmp_path / "dyn.annotated.onnx"
    r = cli("check", path, "--ep", "nnapi,xnnpack", "--annotate", target, "--json")
    assert r.code == 0
    assert str(target) in r.json()["written"]
    proto = onnx.load(str(target), load_external_data=False)
    nnapi = {n["name"]: n for n in r.json()["eps"][0]["nodes"]}
    assert len(proto.graph.node) == len(nnapi)
    for node in proto.graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        expected = nnapi[node.name]
        assert meta["ortprep.nnapi.supported"] == str(expected["supported"]).lower()
        assert meta["ortprep.nnapi.reason"] == (expected["reason"] or "")
        assert f"nnapi: refused: {expected['reason']}" in node.doc_string
        assert "xnnpack: " in node.doc_string
    assert proto.ir_version >= 10
    # a folder gets <file name>.annotated.onnx
    assert cli("check", path, "--ep", "nnapi", "--annotate", tmp_path).code == 0
    assert (tmp_path / "dyn.onnx.annotated.onnx").is_file()


def test_prepare_writes_overlays_for_every_file_it_checks_keeping_the_layout(tmp_path, cli):
    folder = tmp_path / "models"
    save(conv_bn_relu(), folder / "sub" / "cnn.onnx")
    r = cli("prepare", folder, "-o", tmp_path / "out", "--json")
    assert r.code == 0, r.stderr
    overlays = tmp_path / "out" / "model-explorer" / "sub"
    (model,) = r.json()["models"]
    for check in model["checks"]:
        filename = Path(check["file"]).name  # cnn.onnx, cnn.ort, cnn.with_runtime_opt.ort
        analyzed = overlays / me.analyzed_name(filename)
        assert f"model-explorer/sub/{analyzed.name}" in check["overlays"]
        proto = onnx.load(str(analyzed), load_external_data=False)
        ids = set(me.adapter_ids(proto).values())
        for ep in ("nnapi", "xnnpack"):
            data = _overlay(overlays, filename, ep)
            assert {(g, n) for g in data for n in data[g]["results"]} == ids
        if HAS_ADAPTER:
            adapter = _adapter_ids(analyzed)
            assert all(n in adapter[g] for g, n in ids)
    commands = [c["command"] for c in model["commands"] if "Model Explorer" in c["title"]]
    assert len(commands) == 3 and all(c.startswith("model-explorer ") for c in commands)
    assert "model-explorer" in (tmp_path / "out" / "report.html").read_text()
