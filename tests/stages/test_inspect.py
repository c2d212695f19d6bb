"""inspect on .onnx files gives the figures onnx itself reports."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest

from models import (
    attention_block,
    bad_inputs,
    conv_bn_relu,
    dynamic_cnn,
    external_data,
    if_subgraph,
    qdq_cnn,
    save,
)
from ortprep.core.inputs import example_model

BUILDERS = {
    "conv_bn_relu": conv_bn_relu,
    "dynamic_cnn": dynamic_cnn,
    "qdq_cnn": qdq_cnn,
    "if_subgraph": if_subgraph,
    "attention_block": attention_block,
}


def _all_nodes(graph):
    for n in graph.node:
        yield n
        for a in n.attribute:
            if a.HasField("g"):
                yield from _all_nodes(a.g)


def _expected(model: onnx.ModelProto):
    ops = Counter(((n.domain or "ai.onnx"), n.op_type) for n in _all_nodes(model.graph))
    inits = list(model.graph.initializer)
    for n in _all_nodes(model.graph):
        for a in n.attribute:
            if a.HasField("g"):
                inits.extend(a.g.initializer)
    nbytes = sum(onnx.numpy_helper.to_array(t).nbytes for t in inits)
    return ops, len(inits), nbytes


def _check(doc, model):
    ops, n_init, nbytes = _expected(model)
    got = Counter()
    for o in doc["ops"]:
        got[(o["domain"], o["op"])] += o["count"]
    assert got == ops
    assert doc["nodes_total"] == sum(ops.values())
    assert doc["initializers"] == {"count": n_init, "bytes": nbytes}
    assert doc["opsets"] == {(i.domain or "ai.onnx"): i.version for i in model.opset_import}
    assert doc["ir_version"] == model.ir_version
    init_names = {t.name for t in model.graph.initializer}
    assert [i["name"] for i in doc["inputs"]] == [
        i.name for i in model.graph.input if i.name not in init_names
    ]


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_inspect_matches_onnx_on_fixture(cli, tmp_path, name):
    model = BUILDERS[name]()
    path = save(model, tmp_path / f"{name}.onnx")
    r = cli("inspect", path, "--json")
    assert r.code == 0, r.stderr
    _check(r.json(), model)


def test_inspect_example_matches_onnx(cli):
    r = cli("inspect", "--example", "--json")
    assert r.code == 0
    doc = r.json()
    _check(doc, onnx.load(str(example_model())))
    x = doc["inputs"][0]
    assert x["dtype"] == "float32" and x["dynamic"] is True
    assert x["shape"][1:] == [3, 224, 224]


def test_inspect_reports_dynamic_dims_and_subgraphs(cli, tmp_path):
    r = cli("inspect", save(dynamic_cnn(), tmp_path / "d.onnx"), "--json")
    assert r.json()["inputs"][0]["shape"] == ["N", 3, "H", "W"]
    r = cli("inspect", save(if_subgraph(), tmp_path / "i.onnx"), "--json")
    paths = [s["path"] for s in r.json()["subgraphs"]]
    assert sorted(paths) == ["main/if:else_branch", "main/if:then_branch"]


def test_inspect_opset_is_the_schema_since_version(cli, tmp_path):
    r = cli("inspect", save(conv_bn_relu(), tmp_path / "m.onnx"), "--json")
    ops = {o["op"]: o["opset"] for o in r.json()["ops"]}
    assert ops["Conv"] == 11 and ops["Relu"] == 14 and ops["Softmax"] == 13


def test_inspect_external_data(cli, tmp_path):
    r = cli("inspect", external_data(tmp_path), "--json")
    doc = r.json()
    assert doc["external_data_files"] == ["weights.bin"]
    assert doc["initializers"]["bytes"] == 128 * 128 * 4


def test_inspect_table_output(cli):
    r = cli("inspect", "--example")
    assert r.code == 0
    assert "HardSwish" in r.stdout and "dynamic" in r.stdout


def test_bad_inputs_exit_2_touch_nothing_write_nothing(cli, tmp_path, hashes):
    cases = bad_inputs(tmp_path / "bad")
    before = hashes(tmp_path)
    for name, (path, expect) in cases.items():
        r = cli("inspect", path)
        assert r.code == 2, (name, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert lines[0].startswith("error: ") and expect in lines[0], (name, lines)
        assert len(lines) <= 2, name
        assert "Traceback" not in r.stderr
    assert hashes(tmp_path) == before


def test_qdq_fixture_is_int8_qdq():
    m = qdq_cnn()
    ops = Counter(n.op_type for n in m.graph.node)
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0
    zp = [t for t in m.graph.initializer if t.name.endswith("zero_point")]
    assert any(onnx.numpy_helper.to_array(t).dtype == np.int8 for t in zp)


# ----------------------------------------------------------------- .ort files


def _ort(src, dst, runtime: bool, platform: str = "arm"):
    from ortprep.core.runtime import SessionRecipe, create_session

    create_session(
        src,
        SessionRecipe(
            level="all",
            target_platform=platform,
            save_to=dst,
            save_format="ORT",
            minimal_build_optimizations="save" if runtime else None,
        ),
    )
    return dst


def test_inspect_ort_fixed_shows_fused_ops_runtime_shows_records(cli, tmp_path):
    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    fixed = cli("inspect", _ort(src, tmp_path / "cnn.ort", False), "--json").json()
    runtime = cli(
        "inspect", _ort(src, tmp_path / "cnn.with_runtime_opt.ort", True), "--json"
    ).json()
    assert fixed["format"] == "ort" and fixed["ort_format_version"] == "6"
    assert {"domain": "com.microsoft", "op": "FusedConv", "opset": 1, "count": 3} in fixed["ops"]
    assert fixed["runtime_optimizations"] == []
    assert fixed["needs"]["build"] == "minimal" and fixed["needs"]["session_options"] == {}
    recs = {r["optimizer"]: r for r in runtime["runtime_optimizations"]}
    conv_act = recs["ConvActivationFusion"]
    assert conv_act["records"] == 2 and conv_act["produces"] == ["com.microsoft:FusedConv"]
    assert conv_act["fusions"][0]["nodes"][0] == "conv1"
    needs = runtime["needs"]
    assert needs["build"] == "extended-minimal"
    assert needs["session_options"] == {"session.enable_saved_runtime_optimizations": "1"}
    assert any("trust" in n for n in needs["notes"])
    assert "minimal" in needs["optimization_level_effect"]
    assert "1.16" in needs["loadable_by"]


def test_inspect_ort_qdq_records_and_the_amd64_explanation(cli, tmp_path):
    src = save(qdq_cnn(), tmp_path / "qdq.onnx")
    arm = cli("inspect", _ort(src, tmp_path / "arm.with_runtime_opt.ort", True), "--json").json()
    qdq = {r["optimizer"]: r for r in arm["runtime_optimizations"]}["QDQSelectorActionTransformer"]
    assert "ai.onnx:QLinearConv" in qdq["produces"]
    amd = cli(
        "inspect", _ort(src, tmp_path / "amd.with_runtime_opt.ort", True, "amd64"), "--json"
    ).json()
    notes = " ".join(amd["needs"]["notes"])
    assert "int8 QDQ groups saved no record (3 Conv)" in notes and "arm" in notes


def test_inspect_ort_ops_agree_with_orts_own_processor(cli, tmp_path):
    from onnxruntime.tools.ort_format_model import OperatorTypeUsageManager, OrtFormatModelProcessor

    for name, builder in BUILDERS.items():
        src = save(builder(), tmp_path / f"{name}.onnx")
        for runtime in (False, True):
            path = _ort(src, tmp_path / f"{name}.{int(runtime)}.ort", runtime)
            required: dict = {}
            OrtFormatModelProcessor(str(path), required, OperatorTypeUsageManager()).process()
            theirs = {
                (d or "ai.onnx", v, op)
                for d, by in required.items()
                for v, ops in by.items()
                for op in ops
            }
            doc = cli("inspect", path, "--json").json()
            ours = {(o["domain"], o["opset"], o["op"]) for o in doc["ops"]}
            assert ours == theirs, (name, runtime)


def test_inspect_corrupt_ort_is_exit_2(cli, tmp_path):
    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    data = bytearray(_ort(src, tmp_path / "cnn.ort", False).read_bytes())
    bad = tmp_path / "bad.ort"
    bad.write_bytes(bytes(data[: len(data) // 3]))
    r = cli("inspect", bad)
    assert r.code == 2 and "not a valid ORT-format file" in r.stderr
