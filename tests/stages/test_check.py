"""check: the contract's JSON, dynamic shapes and the what-if, .ort input, ORT's checker."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from models import (
    attention_block,
    bad_inputs,
    conv_bn_relu,
    dynamic_cnn,
    external_data,
    if_subgraph,
    qdq_cnn,
    relu_chain,
    save,
    unknown_op,
)
from ortprep.core.runtime import SessionRecipe, can_compile_graph, create_session


def _ep(doc, ep):
    return next(e for e in doc["eps"] if e["ep"] == ep)


def test_check_json_follows_the_contract(cli, tmp_path):
    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    r = cli("check", src, "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["analyzed"] == "basic-optimized"
    assert [e["ep"] for e in doc["eps"]] == [
        "nnapi",
        "coreml-mlprogram",
        "coreml-neuralnetwork",
        "xnnpack",
    ]
    nnapi = _ep(doc, "nnapi")
    for key in (
        "nodes_total",
        "nodes_supported",
        "partitions",
        "verdict",
        "summary",
        "nodes",
        "if_shapes_fixed",
    ):
        assert key in nnapi
    # the basic optimizations folded BatchNormalization into the Conv, as ORT does before EPs
    assert nnapi["nodes_total"] == 12
    assert "BatchNormalization" not in {n["op"] for n in nnapi["nodes"]}
    assert nnapi["verdict"] == "yes" and len(nnapi["partitions"]) == 1
    assert nnapi["partitions"][0]["size"] == 12
    node = nnapi["nodes"][0]
    assert set(node) == {"name", "op", "domain", "graph", "supported", "partition", "reason"}
    assert node["graph"] == "main" and node["domain"] == "ai.onnx"


def test_check_dynamic_shapes_refused_by_nnapi_and_what_if_fixes_them(cli, tmp_path):
    src = save(dynamic_cnn(), tmp_path / "dyn.onnx")
    doc = cli("check", src, "--json", "--ep", "nnapi").json()
    nnapi = _ep(doc, "nnapi")
    assert nnapi["nodes_supported"] == 0 and nnapi["verdict"] == "no"
    assert all("dynamic dimension" in n["reason"] for n in nnapi["nodes"])
    assert nnapi["if_shapes_fixed"]["verdict"] == "yes"
    # the image sides: a classifier's typical size (stages/fix_values.py; a guess, said so)
    assert doc["what_if_dims"] == {"N": 1, "H": 224, "W": 224}
    assert "ortprep fix-shapes" in nnapi["next_step"] and "--fix-dim N=1" in nnapi["next_step"]


def _needs_length_13() -> onnx.ModelProto:
    """Input x [batch, len] concatenated with a [1, 13] constant on axis 0, so len must be 13
    (like a text recognizer whose height must be 48): ORT loads it with len dynamic and refuses
    it with len fixed to another size."""
    graph = helper.make_graph(
        [helper.make_node("Concat", ["x", "c"], ["z"], name="cat", axis=0)],
        "needs_13",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "len"])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [None, 13])],
        initializer=[numpy_helper.from_array(np.zeros((1, 13), np.float32), "c")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_what_if_ort_refuses_leaves_the_models_answers_and_says_why(cli, tmp_path):
    src = save(_needs_length_13(), tmp_path / "needs13.onnx")
    result = cli("check", src, "--ep", "nnapi", "--json")
    assert result.code == 0, result.stderr
    doc = result.json()
    assert doc["what_if_dims"]["len"] != 13 and doc["fix_command"] is None
    assert "Can't merge shape info" in doc["what_if_refused"]
    nnapi = _ep(doc, "nnapi")
    assert nnapi["if_shapes_fixed"] is None and nnapi["nodes_total"] == 1
    human = cli("check", src, "--ep", "nnapi")
    assert human.code == 0
    assert "no what-if: with batch=1, len=" in " ".join(human.stdout.split())
    fixed = cli("check", src, "--ep", "nnapi", "--json", "--fix-dim", "len=13").json()
    assert fixed["what_if_refused"] is None


def test_check_applies_fix_dim(cli, tmp_path):
    src = save(dynamic_cnn(), tmp_path / "dyn.onnx")
    doc = cli(
        "check",
        src,
        "--json",
        "--ep",
        "nnapi",
        "--fix-dim",
        "N=1",
        "--fix-dim",
        "H=64",
        "--fix-dim",
        "W=64",
    ).json()
    nnapi = _ep(doc, "nnapi")
    assert nnapi["verdict"] == "yes" and nnapi["nodes_supported"] == nnapi["nodes_total"]
    assert nnapi["if_shapes_fixed"] is None


def test_fix_shapes_writes_a_loadable_fixed_copy(cli, tmp_path, hashes):
    src = save(dynamic_cnn(), tmp_path / "in" / "dyn.onnx")
    before = hashes(tmp_path / "in")
    out = tmp_path / "fixed.onnx"
    r = cli(
        "fix-shapes", src, "-o", out, "--fix-dim", "N=1", "--fix-input", "x=1,3,64,64", "--json"
    )
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["inputs_after"][0]["shape"] == [1, 3, 64, 64]
    assert doc["outputs_after"][0]["shape"] == [1, 6]
    assert doc["still_dynamic"] == []
    m = onnx.load(str(out))
    assert [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 64, 64]
    assert hashes(tmp_path / "in") == before
    # the fixed copy is what NNAPI needs
    nnapi = _ep(cli("check", out, "--json", "--ep", "nnapi").json(), "nnapi")
    assert nnapi["verdict"] == "yes"


def test_fix_shapes_rejects_unknown_dim_and_contradicting_shape(cli, tmp_path):
    src = save(dynamic_cnn(), tmp_path / "dyn.onnx")
    r = cli("fix-shapes", src, "-o", tmp_path / "o.onnx", "--fix-dim", "batch=1")
    assert r.code == 2 and "batch" in r.stderr
    r = cli("fix-shapes", src, "-o", tmp_path / "o.onnx", "--fix-input", "x=1,4,64,64")
    assert r.code == 2
    assert not (tmp_path / "o.onnx").exists()


def _to_ort(src: Path, dst: Path, runtime: bool) -> Path:
    create_session(
        src,
        SessionRecipe(
            level="all",
            save_to=dst,
            save_format="ORT",
            minimal_build_optimizations="save" if runtime else None,
        ),
    )
    return dst


def test_check_reads_ort_files_and_explains_fixed_vs_runtime(cli, tmp_path):
    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    fixed = _to_ort(src, tmp_path / "cnn.ort", runtime=False)
    runtime = _to_ort(src, tmp_path / "cnn.with_runtime_opt.ort", runtime=True)
    f = _ep(cli("check", fixed, "--json", "--ep", "nnapi").json(), "nnapi")
    rt_doc = cli("check", runtime, "--json", "--ep", "nnapi").json()
    rt = _ep(rt_doc, "nnapi")
    assert rt_doc["analyzed"] == "ort-file"
    assert rt["nodes_supported"] == rt["nodes_total"] == 12
    fused = [n for n in f["nodes"] if n["op"] == "FusedConv"]
    assert fused and all(not n["supported"] for n in fused)
    assert f["nodes_supported"] < rt["nodes_supported"]
    assert any("contrib ops" in note and "with_runtime_opt" in note for note in f["notes"])
    assert "Runtime-style" in f["next_step"]


def test_check_subgraph_nodes_are_not_taken_by_nnapi(cli, tmp_path):
    src = save(if_subgraph(), tmp_path / "if.onnx")
    doc = cli("check", src, "--json", "--ep", "nnapi,xnnpack").json()
    nnapi = _ep(doc, "nnapi")
    inner = [n for n in nnapi["nodes"] if n["graph"] != "main"]
    assert len(inner) == 4
    assert all(not n["supported"] and n["partition"] is None for n in inner)
    assert {n["graph"] for n in inner} == {"main/if:then_branch", "main/if:else_branch"}


def test_check_bad_ep_is_a_usage_error(cli, tmp_path):
    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    r = cli("check", src, "--ep", "tensorrt")
    assert r.code == 2 and "unknown EP" in r.stderr


def test_check_human_output_has_table_reasons_and_next_step(cli, tmp_path):
    src = save(dynamic_cnn(), tmp_path / "dyn.onnx")
    r = cli("check", src)
    assert r.code == 0
    assert "nnapi" in r.stdout and "verdict" in r.stdout
    assert "next:" in r.stdout and "ORT's thresholds" in r.stdout


def test_check_runs_on_the_example(cli):
    r = cli("check", "--example", "--json")
    assert r.code == 0
    doc = r.json()
    assert doc["inputs"][0]["dynamic"] is True
    assert all(e["nodes_total"] == doc["eps"][0]["nodes_total"] for e in doc["eps"])


# ----------------------------------------------------------------- ORT's own checker compared


def _ort_checker(model_path: Path, ep: str):
    """ORT's checker on the same basic-optimized graph (its own recipe)."""
    from onnxruntime.tools.mobile_helpers import usability_checker as uc
    from onnxruntime.tools.onnx_model_utils import optimize_model

    opt = model_path.with_suffix(".ortopt.onnx")
    optimize_model(model_path, opt)
    model = onnx.shape_inference.infer_shapes(onnx.load(str(opt)))
    if ep == "nnapi":
        return uc.check_nnapi_partitions(model, True)
    name = {
        "coreml-mlprogram": "coreml_supported_mlprogram_ops.md",
        "coreml-neuralnetwork": "coreml_supported_neuralnetwork_ops.md",
    }[ep]
    return uc.check_coreml_partitions(model, True, name)


@pytest.mark.parametrize("builder", [conv_bn_relu, attention_block])
@pytest.mark.parametrize("ep", ["nnapi", "coreml-mlprogram"])
def test_check_agrees_with_orts_checker_where_its_list_matches_the_source(
    cli, tmp_path, builder, ep
):
    src = save(builder(), tmp_path / "m.onnx")
    ours = _ep(cli("check", src, "--json", "--ep", ep).json(), ep)
    theirs = _ort_checker(src, ep)
    assert ours["nodes_total"] == theirs.num_nodes
    assert ours["nodes_supported"] == theirs.num_supported_nodes
    assert len(ours["partitions"]) == theirs.num_partitions


def _bn_model() -> onnx.ModelProto:
    """Relu -> BatchNormalization (not foldable into a Conv) -> Pad: MLProgram takes all three."""
    r = np.random.default_rng(0)
    c = 4
    inits = [
        numpy_helper.from_array((1 + 0.1 * r.random(c)).astype(np.float32), n) for n in ("s", "var")
    ]
    inits += [
        numpy_helper.from_array((0.1 * r.standard_normal(c)).astype(np.float32), n)
        for n in ("b", "mean")
    ]
    inits.append(numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"))
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("BatchNormalization", ["r", "s", "b", "mean", "var"], ["bn"], name="bn"),
        helper.make_node("Pad", ["bn", "pads"], ["y"], name="pad", mode="constant"),
    ]
    graph = helper.make_graph(
        nodes,
        "bn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, 10, 10])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_source_wins_where_orts_list_omits_an_op_and_the_output_says_so(cli, tmp_path):
    src = save(_bn_model(), tmp_path / "bn.onnx")
    ours = _ep(cli("check", src, "--json", "--ep", "coreml-mlprogram").json(), "coreml-mlprogram")
    theirs = _ort_checker(src, "coreml-mlprogram")
    assert ours["nodes_supported"] == 3 and ours["verdict"] == "yes"
    assert theirs.num_supported_nodes == 1  # ORT's list has neither BatchNormalization nor Pad
    note = " ".join(ours["notes"])
    assert "ai.onnx:BatchNormalization" in note and "ai.onnx:Pad" in note
    assert "follows the source" in note


def test_conditions_orts_checker_ignores_are_refused(cli, tmp_path):
    """ORT's checker takes every node of an int8 QDQ model for NNAPI; NNAPI's builders need uint8
    activations, and CoreML NeuralNetwork needs a constant MatMul B."""
    src = save(qdq_cnn(), tmp_path / "qdq.onnx")
    nnapi = _ep(cli("check", src, "--json", "--ep", "nnapi").json(), "nnapi")
    theirs = _ort_checker(src, "nnapi")
    assert theirs.num_supported_nodes == theirs.num_nodes
    assert nnapi["nodes_supported"] < nnapi["nodes_total"]
    assert any("int8; NNAPI takes uint8" in (n["reason"] or "") for n in nnapi["nodes"])
    assert any("conditions its checker does not test" in note for note in nnapi["notes"])

    att = save(attention_block(), tmp_path / "att.onnx")
    nn = _ep(
        cli("check", att, "--json", "--ep", "coreml-neuralnetwork").json(), "coreml-neuralnetwork"
    )
    refused = {n["name"]: n["reason"] for n in nn["nodes"] if not n["supported"]}
    assert "not a constant initializer" in refused["scores"]


def test_check_what_if_after_a_partial_fix_dim(cli, tmp_path):
    """With the user's fixes the what-if starts from ORT's graph of the fixed model (in turn)."""
    src = save(dynamic_cnn(), tmp_path / "dyn.onnx")
    doc = cli("check", src, "--json", "--ep", "nnapi", "--fix-dim", "N=1").json()
    nnapi = _ep(doc, "nnapi")
    assert nnapi["verdict"] == "no"  # H and W are still dynamic
    assert doc["what_if_dims"] == {"H": 224, "W": 224}
    assert nnapi["if_shapes_fixed"]["verdict"] == "yes"  # N=1 kept, H and W fixed too
    assert "--fix-dim N=1 --fix-dim H=224 --fix-dim W=224" in doc["fix_command"]


def test_ort_runs_in_a_child_process_and_its_refusal_or_crash_is_a_clear_error(tmp_path):
    from ortprep.core.errors import BadModelError
    from ortprep.core.ort_child import Job, OrtChild

    src = save(unknown_op(), tmp_path / "custom.onnx")
    recipe = SessionRecipe(level="basic", save_to=tmp_path / "out.onnx", save_format="ONNX")
    with pytest.raises(BadModelError, match=r"cannot load the model \(.*NoSuchOp"):
        OrtChild.start(Job(src, recipe)).wait()
    with pytest.raises(BadModelError, match=r"cannot load the model \(.*NoSuchOp"):
        OrtChild.start(Job(src, recipe, tmp_path / "i.onnx")).saved()
    good = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    crashed = OrtChild.start(Job(good, recipe))
    crashed._proc.kill()  # what a segfault inside ORT looks like from the parent
    with pytest.raises(BadModelError, match="onnxruntime crashed"):
        crashed.wait()
    OrtChild.start(Job(good, recipe)).wait()
    assert (tmp_path / "out.onnx").stat().st_size > 0


def _qlinear_concat_across_partitions() -> onnx.ModelProto:
    """QLinearConv A feeds both Abs (uint8: NNAPI refuses it) and a uint8 Concat; the Concat's
    other input comes from QLinearConv B after the Abs, so A and B end up in different groups."""
    u8 = TensorProto.UINT8

    def c(name, value, dtype):
        return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)

    inits = [
        c("s", 0.05, np.float32),
        c("z", 128, np.uint8),
        c("wa", np.ones((4, 3, 1, 1)) * 130, np.uint8),
        c("wb", np.ones((4, 4, 1, 1)) * 130, np.uint8),
    ]
    q = ["s", "z"]
    nodes = [
        helper.make_node("QLinearConv", ["x", *q, "wa", *q, *q], ["a"], name="A"),
        helper.make_node("Abs", ["a"], ["u"], name="U"),
        helper.make_node("QLinearConv", ["u", *q, "wb", *q, *q], ["b"], name="B"),
        helper.make_node("Concat", ["a", "b"], ["y"], name="C", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", u8, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", u8, [1, 8, 8, 8])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_nnapi_uint8_concat_needs_its_inputs_in_its_own_partition(cli, tmp_path):
    """ORT's walk (nnapi_execution_provider.cc, helper.cc IsInternalQuantizedNodeUnit) refuses a
    single uint8 Concat whose input was computed in an earlier partition; check replays it."""
    src = tmp_path / "qconcat.onnx"
    onnx.save(_qlinear_concat_across_partitions(), str(src))
    doc = cli("check", src, "--ep", "nnapi", "--json").json()
    nodes = {n["name"]: n for n in _ep(doc, "nnapi")["nodes"]}
    assert nodes["A"]["supported"] and nodes["B"]["supported"], nodes
    assert not nodes["U"]["supported"]
    assert not nodes["C"]["supported"]
    assert "not computed in the same NNAPI partition" in nodes["C"]["reason"]
    assert nodes["A"]["partition"] != nodes["B"]["partition"]


def test_fix_shapes_command_is_quoted_for_the_shell(tmp_path):
    """Exporters name dims '?' (a shell glob) and paths hold spaces: each stays one argument."""
    import shlex

    from ortprep.stages.check import fix_shapes_command

    path = tmp_path / "my models" / "cls.onnx"
    cmd = fix_shapes_command(path, {"?": 32, "N": 1}, {"x": (1, 3, 32, 32)})
    assert shlex.split(cmd) == [
        "ortprep",
        "fix-shapes",
        str(path),
        "-o",
        "cls.fixed.onnx",
        "--fix-dim",
        "?=32",
        "--fix-dim",
        "N=1",
        "--fix-input",
        "x=1,3,32,32",
    ]
    assert "'?=32'" in cmd


def test_the_child_reads_back_every_field_of_the_job(tmp_path):
    from ortprep.core.ort_child import Job

    recipe = SessionRecipe(
        level="basic",
        target_platform="amd64",
        save_to=tmp_path / "out.onnx",
        save_format="ONNX",
        minimal_build_optimizations="save",
        replay_saved=True,
        custom_op_library=tmp_path / "lib.so",
        free_dims={"N": 1},
        extra={"session.x": "1"},
        threads=1,
        compile_only=True,
    )
    for job in (
        Job(tmp_path / "m.onnx", recipe),
        Job(tmp_path / "m.onnx", recipe, tmp_path / "m.inferred.onnx"),
        Job(tmp_path / "m.onnx", SessionRecipe()),
    ):
        text = job.to_json()
        assert "\n" not in text  # one line of the protocol
        assert Job.from_json(text) == job


# ----------------------------------------------------------------- ORT's compile API


def _compile_cases(folder: Path) -> dict[str, Path]:
    from ortprep.core.inputs import example_model

    cases = {
        name: save(build(), folder / f"{name}.onnx")
        for name, build in (
            ("cnn", conv_bn_relu),
            ("dynamic", dynamic_cnn),
            ("qdq_s8", qdq_cnn),
            ("qdq_u8", lambda: qdq_cnn(activation_type="uint8")),
            ("if", if_subgraph),
            ("attention", attention_block),
            ("chain", lambda: relu_chain(300)),
        )
    }
    cases["external"] = external_data(folder / "ext")
    cases["example"] = example_model()
    return cases


@pytest.mark.skipif(
    not can_compile_graph(), reason="this onnxruntime's compile API takes no optimization level"
)
def test_compile_api_and_a_session_give_check_the_same_answers(tmp_path):
    """check reads ORT's level-1 graph from its compile API, which skips the session-state
    finalization; what check concludes must equal what it concludes from a session's save, for
    every EP, node and what-if (QDQ units, subgraphs, external data, dynamic shapes), whether
    this process or ORT's child infers the shapes."""
    from ortprep.stages import check

    for name, src in _compile_cases(tmp_path).items():
        answers = []
        # a session, then the compile API with shapes inferred here, then by ORT's child
        for compile_only, child_infers_from in ((False, 1 << 40), (True, 1 << 40), (True, 0)):
            ort = check.OrtGraphOptions(
                compile_only=compile_only, child_infers_from=child_infers_from
            )
            answers.append(check.run(src, check.CheckOptions(ort=ort)).to_dict())
        assert answers[0] == answers[1] == answers[2], name
    ext = check.run(_compile_cases(tmp_path / "again")["external"], check.CheckOptions())
    coreml = next(r for r in ext.eps if r.ep == "coreml-mlprogram")
    assert any("external data" in (n.reason or "") for n in coreml.nodes)


def test_compile_graph_saves_the_basic_graph_and_external_initializers(tmp_path):
    from ortprep.core.runtime import compile_graph

    if not can_compile_graph():
        pytest.skip("this onnxruntime's compile API takes no optimization level")
    src = external_data(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    recipe = SessionRecipe(
        level="basic",
        save_to=out / "m.basic.onnx",
        extra={"session.optimized_model_external_initializers_file_name": "m.basic.data"},
        compile_only=True,
    )
    compile_graph(src, recipe)
    saved = onnx.load(str(out / "m.basic.onnx"), load_external_data=False)
    (w,) = saved.graph.initializer
    assert {e.key: e.value for e in w.external_data}["location"] == "m.basic.data"
    assert (out / "m.basic.data").stat().st_size == 128 * 128 * 4
    with pytest.raises(ValueError, match="ONNX files only"):
        compile_graph(src, SessionRecipe(level="basic", save_to=out / "m.ort", save_format="ORT"))


def test_validation_runs_while_ort_works_and_still_wins(cli, tmp_path, hashes):
    """ORT starts on the file before ortprep has validated it; a bad file still gets ortprep's
    clear exit-2 message (not ORT's), and nothing is written beside it."""
    cases = bad_inputs(tmp_path / "bad")
    before = hashes(tmp_path)
    for name, (path, expect) in cases.items():
        r = cli("check", path, "--ep", "nnapi")
        assert r.code == 2, (name, r.stdout, r.stderr)
        first = r.stderr.strip().splitlines()[0]
        assert first.startswith("error: ") and expect in first, (name, first)
    assert hashes(tmp_path) == before


def test_subgraphs_are_listed_by_attribute_name_in_onnx_and_ort_views(tmp_path):
    """ORT writes a node's attributes in hash-map order, so the views sort subgraphs by name."""
    from ortprep.core.inputs import open_model

    src = save(if_subgraph(), tmp_path / "if.onnx")
    create_session(
        src,
        SessionRecipe(level="basic", save_to=tmp_path / "if.ort", save_format="ORT"),
    )
    for path in (src, tmp_path / "if.ort"):
        node = next(n for n in open_model(path).graph.nodes if n.op_type == "If")
        assert list(node.subgraphs) == ["else_branch", "then_branch"], path


def test_the_child_falls_back_to_a_session_when_the_compile_api_cannot_save(tmp_path):
    """The compile API is young: when it refuses a job (here: it cannot disable optimizers, as
    a level-all arm recipe needs), the child saves through a session instead."""
    from ortprep.core.errors import BadModelError
    from ortprep.core.ort_child import Job, OrtChild

    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    recipe = SessionRecipe(
        level="all", target_platform="arm", save_to=tmp_path / "all.onnx", compile_only=True
    )
    OrtChild.start(Job(src, recipe)).wait()
    assert onnx.load(str(tmp_path / "all.onnx")).graph.node
    bad = save(unknown_op(), tmp_path / "custom.onnx")
    with pytest.raises(BadModelError, match="NoSuchOp"):
        OrtChild.start(Job(bad, replace(recipe, save_to=tmp_path / "bad.onnx"))).wait()


def test_a_prestarted_child_takes_the_first_job_and_a_jobless_one_exits(tmp_path):
    """``ortprep check`` starts ORT's child before typer has loaded (ort_child.prestart): the
    child imports onnxruntime, then takes the first job from stdin; unused, it exits cleanly."""
    from ortprep.core import ort_child
    from ortprep.core.errors import BadModelError
    from ortprep.core.ort_child import Job, OrtChild

    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    recipe = SessionRecipe(level="basic", save_to=tmp_path / "a.onnx", compile_only=True)
    ort_child.prestart()
    waiting = ort_child._prestarted
    first = OrtChild.start(Job(src, recipe))
    assert first._proc is waiting and ort_child._prestarted is None
    second = OrtChild.start(Job(src, replace(recipe, save_to=tmp_path / "b.onnx")))
    assert second._proc is not waiting  # a fresh child: the pre-started one is taken
    first.wait()
    second.wait()
    assert (
        onnx.load(str(tmp_path / "a.onnx")).graph.node
        == onnx.load(str(tmp_path / "b.onnx")).graph.node
    )
    ort_child.prestart()
    bad = OrtChild.start(Job(save(unknown_op(), tmp_path / "x.onnx"), recipe))
    with pytest.raises(BadModelError, match="NoSuchOp"):
        bad.wait()
    ort_child.prestart()
    idle = ort_child._prestarted
    ort_child._prestarted = None
    assert idle is not None
    idle.stdin.close()  # what the parent's exit does to a child nobody used
    assert idle.wait(timeout=60) == 0


def test_the_child_dies_with_its_parent(tmp_path):
    """End-of-file on the child's stdin after its job ends the child wherever it is: when the
    parent closes the pipe, and when the parent is killed (the kernel closes it)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from ortprep.core.ort_child import Job, OrtChild

    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    recipe = SessionRecipe(level="basic", save_to=tmp_path / "b.onnx", compile_only=True)
    child = OrtChild.start(Job(src, recipe, tmp_path / "b.inferred.onnx"))
    child.saved()  # the child now waits for infer or skip, which never comes
    child._proc.stdin.close()
    assert child._proc.wait(timeout=60) != 0
    assert not (tmp_path / "b.inferred.onnx").exists()

    parent_code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from ortprep.core.ort_child import Job, OrtChild\n"
        "from ortprep.core.runtime import SessionRecipe\n"
        "r = SessionRecipe(level='basic', save_to=Path(sys.argv[2]), compile_only=True)\n"
        "c = OrtChild.start(Job(Path(sys.argv[1]), r, Path(sys.argv[3])))\n"
        "c.saved()\n"
        "print(c._proc.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code, str(src), str(tmp_path / "c.onnx"), "c.i.onnx"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=60)

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        try:  # an ended orphan nobody has reaped yet is a zombie: ended
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return True

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not alive(pid):
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        raise AssertionError("ORT's child outlived its parent")


def test_the_console_entry_point_checks_a_model(tmp_path):
    """The real entry point (warm child, collector off, os._exit) end to end."""
    import json
    import subprocess
    import sys

    src = save(qdq_cnn(), tmp_path / "q.onnx")
    out = subprocess.run(
        [sys.executable, "-m", "ortprep", "check", str(src), "--ep", "nnapi", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert _ep(json.loads(out.stdout), "nnapi")["nodes_total"] > 0


def test_the_child_says_saved_then_infers_or_skips_as_told(tmp_path):
    """A job with ``infer_to``: the child says ``saved``, then on ``infer`` hands ORT's freed
    graph back to the OS and infers the saved graph's shapes into ``infer_to`` while the parent
    reads the nodes; on ``skip`` it just ends. The decision may come before ORT has saved."""
    from ortprep.core.memory import can_release, release
    from ortprep.core.ort_child import Job, OrtChild

    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    recipe = SessionRecipe(level="basic", save_to=tmp_path / "b.onnx", compile_only=True)
    job = OrtChild.start(Job(src, recipe, tmp_path / "b.inferred.onnx"))
    job.infer()  # sent at once: the child reads it only once ORT has saved
    job.saved()
    assert onnx.load(str(tmp_path / "b.onnx")).graph.node  # complete once "saved" is said
    job.wait()
    typed = onnx.load(str(tmp_path / "b.inferred.onnx"))
    assert len(typed.graph.value_info) > len(onnx.load(str(tmp_path / "b.onnx")).graph.value_info)
    unasked = OrtChild.start(
        Job(src, replace(recipe, save_to=tmp_path / "c.onnx"), tmp_path / "c.i.onnx")
    )
    unasked.saved()
    with pytest.raises(ValueError, match="infer or skip"):
        unasked.wait()  # the child waits for a decision: waiting without one is a bug
    unasked.skip()
    unasked.wait()
    assert unasked._proc.returncode == 0 and not (tmp_path / "c.i.onnx").exists()
    with pytest.raises(ValueError):
        OrtChild.start(Job(src, replace(recipe, save_to=tmp_path / "d.onnx"))).infer()
    release()  # a no-op where glibc is not the allocator
    assert isinstance(can_release(), bool)


def test_graph_views_take_ort_session_options(tmp_path):
    """ORT's free-dimension overrides reach the session that saves the level-1 graph: the
    views the EPs analyse have those dims fixed (the user's file is unchanged)."""
    from ortprep.stages import check

    src = save(dynamic_cnn(), tmp_path / "dyn.onnx")
    before = src.read_bytes()
    ort = check.OrtGraphOptions(free_dims={"N": 1, "H": 32, "W": 32})
    work = tmp_path / "work"
    work.mkdir()
    views = check.graph_views(src, check.CheckOptions(ort=ort), work)
    assert [v.shape for v in views.model.graph.runtime_inputs] == [(1, 3, 32, 32)]
    assert [v.shape for v in views.inputs] == [("N", 3, "H", "W")]  # as the file declares them
    assert views.analyzed == "basic-optimized"
    result = check.run(src, check.CheckOptions(eps=("nnapi",), ort=ort))
    assert result.eps[0].outcome.verdict == "yes"
    assert check.run(src, check.CheckOptions(eps=("nnapi",))).eps[0].outcome.verdict == "no"
    assert src.read_bytes() == before


def test_the_python_api_leaves_the_garbage_collector_alone(tmp_path):
    """Only cli.main lets check pause the collector: called as a library, check neither
    switches it off nor freezes anything."""
    import gc

    from ortprep.stages import check

    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    frozen = gc.get_freeze_count()
    seen: list[bool] = []
    check.run(src, check.CheckOptions(), progress=lambda *_: seen.append(gc.isenabled()))
    assert seen and all(seen)
    assert gc.isenabled() and gc.get_freeze_count() == frozen


def test_the_collector_pauses_only_once_allowed_and_is_frozen_before_it_is_back_on():
    import subprocess
    import sys

    code = (
        "import gc\n"
        "from ortprep.core import gcpause\n"
        "with gcpause.gc_paused():\n"
        "    before = gc.isenabled()\n"
        "gcpause.allow_pausing()\n"
        "kept = [[i] for i in range(1000)]\n"
        "with gcpause.gc_paused():\n"
        "    with gcpause.gc_paused():\n"
        "        inner = gc.isenabled()\n"
        "    after_inner = gc.isenabled()\n"
        "print(before, inner, after_inner, gc.isenabled(), gc.get_freeze_count() >= 1000)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False", "False", "True", "True"]
