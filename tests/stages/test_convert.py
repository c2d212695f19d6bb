"""convert: both styles, ORT's file names and configs, verification, per-model failures."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from models import (
    attention_block,
    conv_bn_relu,
    dynamic_cnn,
    if_subgraph,
    qdq_cnn,
    save,
    unknown_op,
)
from ortprep.core.inputs import example_model
from ortprep.core.ort import read_ort


def _artifacts(doc, kind="ort"):
    return {a["style"]: a for m in doc["models"] for a in m["artifacts"] if a["kind"] == kind}


@pytest.fixture(scope="module")
def qdq_model(tmp_path_factory):
    return save(qdq_cnn(), tmp_path_factory.mktemp("qdq") / "qdq.onnx")


def test_cnn_runtime_file_holds_conv_activation_records_and_fixed_holds_fusedconv(cli, tmp_path):
    src = save(conv_bn_relu(), tmp_path / "in" / "cnn.onnx")
    r = cli("convert", src, "-o", tmp_path / "out", "--json")
    assert r.code == 0, r.stderr
    arts = _artifacts(r.json())
    runtime, fixed = arts["runtime"], arts["fixed"]
    assert Path(runtime["path"]).name == "cnn.with_runtime_opt.ort"
    assert Path(fixed["path"]).name == "cnn.ort"
    assert runtime["runtime_optimization_records"]["ConvActivationFusion"] >= 2
    assert "com.microsoft:FusedConv" in runtime["records_produce"]
    assert fixed["fused_ops"].get("com.microsoft:FusedConv", 0) >= 2
    # what the files hold, read independently
    fixed_ops = {n.op_type for _, n in read_ort(Path(fixed["path"])).all_nodes()}
    runtime_model = read_ort(Path(runtime["path"]))
    assert "FusedConv" in fixed_ops
    assert "FusedConv" not in {n.op_type for _, n in runtime_model.all_nodes()}
    # verified: fixed once, runtime with and without replay
    assert fixed["verified"] is True and len(fixed["verification"]) == 1
    assert runtime["verified"] is True
    assert [v["session"].split(" ")[0] for v in runtime["verification"]] == ["without", "with"]


def _conv_records(ort_path: str) -> int:
    model = read_ort(Path(ort_path))
    recs = model.ort.runtime_optimizations.get("QDQSelectorActionTransformer", ())
    return sum(r.action_id == "Conv" for r in recs)


def test_qdq_model_saves_qdq_records_for_arm(cli, tmp_path, qdq_model):
    r = cli("convert", qdq_model, "-o", tmp_path, "--style", "runtime", "--json")
    assert r.code == 0, r.stderr
    runtime = _artifacts(r.json())["runtime"]
    assert runtime["runtime_optimization_records"].get("QDQSelectorActionTransformer", 0) > 0
    assert "ai.onnx:QLinearConv" in runtime["records_produce"]
    assert _conv_records(runtime["path"]) == 3
    assert not any("no record" in n for n in runtime["notes"])


def test_qdq_model_saves_no_conv_records_for_amd64_and_says_why(cli, tmp_path, qdq_model):
    r = cli(
        "convert",
        qdq_model,
        "-o",
        tmp_path,
        "--style",
        "runtime",
        "--target-platform",
        "amd64",
        "--json",
    )
    assert r.code == 0, r.stderr
    runtime = _artifacts(r.json())["runtime"]
    assert "ai.onnx:QLinearConv" not in runtime["records_produce"]
    assert _conv_records(runtime["path"]) == 0
    note = " ".join(runtime["notes"])
    assert "int8 QDQ groups saved no record (3 Conv)" in note
    assert "amd64" in note and "--target-platform arm" in note
    human = cli(
        "convert",
        qdq_model,
        "-o",
        tmp_path / "h",
        "--style",
        "runtime",
        "--target-platform",
        "amd64",
        "--no-verify",
    )
    assert "int8 QDQ" in human.stdout


def test_level_and_optimized_onnx_names_follow_orts_converter(cli, tmp_path):
    src = save(dynamic_cnn(), tmp_path / "in" / "dyn.onnx")
    r = cli(
        "convert",
        src,
        "-o",
        tmp_path / "out",
        "--level",
        "extended",
        "--save-optimized-onnx",
        "--json",
    )
    assert r.code == 0, r.stderr
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [
        "dyn.extended.optimized.onnx",
        "dyn.extended.ort",
        "dyn.extended.with_runtime_opt.optimized.onnx",
        "dyn.extended.with_runtime_opt.ort",
        "dyn.required_operators.extended.config",
        "dyn.required_operators.extended.with_runtime_opt.config",
    ]
    onnx_arts = _artifacts(r.json(), "optimized-onnx")
    assert onnx_arts["fixed"]["verified"] is True


def test_folder_keeps_layout_and_one_bad_model_does_not_lose_the_others(cli, tmp_path, hashes):
    src = tmp_path / "in"
    save(conv_bn_relu(), src / "a.onnx")
    save(if_subgraph(), src / "nested" / "b.onnx")
    (src / "broken.onnx").write_bytes(b"not a model at all")
    before = hashes(src)
    r = cli("convert", src, "-o", tmp_path / "out", "--style", "fixed", "--json")
    assert r.code == 1
    doc = r.json()
    by_name = {Path(m["input"]).name: m for m in doc["models"]}
    assert by_name["broken.onnx"]["ok"] is False and "not" in by_name["broken.onnx"]["error"]
    assert by_name["a.onnx"]["ok"] and by_name["b.onnx"]["ok"]
    assert (tmp_path / "out" / "a.ort").is_file()
    assert (tmp_path / "out" / "nested" / "b.ort").is_file()
    assert (tmp_path / "out" / "required_operators.config").is_file()
    assert hashes(src) == before  # inputs untouched, nothing written beside them


def test_single_bad_model_is_exit_2(cli, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"")
    r = cli("convert", bad, "-o", tmp_path / "out")
    assert r.code == 2
    assert "empty" in r.stderr
    assert not (tmp_path / "out").exists()  # nothing written


def test_no_verify_skips_verification(cli, tmp_path):
    src = save(attention_block(), tmp_path / "att.onnx")
    r = cli("convert", src, "-o", tmp_path / "out", "--no-verify", "--json")
    assert r.code == 0
    assert all(a["verified"] is None for a in _artifacts(r.json()).values())


def test_amd64_fixed_file_with_nchwc_is_flagged(cli, tmp_path):
    src = save(conv_bn_relu(channels=16, size=64), tmp_path / "cnn.onnx")
    r = cli(
        "convert",
        src,
        "-o",
        tmp_path / "out",
        "--style",
        "fixed",
        "--target-platform",
        "amd64",
        "--json",
    )
    fixed = _artifacts(r.json())["fixed"]
    ops = {n.domain for _, n in read_ort(Path(fixed["path"])).all_nodes()}
    flagged = any("NCHWc" in w for w in fixed["warnings"])
    assert flagged == ("com.microsoft.nchwc" in ops)
    arm = cli("convert", src, "-o", tmp_path / "arm", "--style", "fixed", "--json")
    arm_ops = {
        n.domain for _, n in read_ort(Path(_artifacts(arm.json())["fixed"]["path"])).all_nodes()
    }
    assert "com.microsoft.nchwc" not in arm_ops


def _strip_comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("type_reduction", [False, True])
def test_configs_equal_orts_converter(cli, tmp_path, type_reduction):
    models = tmp_path / "models"
    (models / "real").mkdir(parents=True)
    shutil.copy(example_model(), models / "real" / "text_orientation.onnx")
    save(conv_bn_relu(), models / "cnn.onnx")
    save(qdq_cnn(), models / "qdq.onnx")
    save(if_subgraph(), models / "sub" / "if.onnx")
    save(attention_block(), models / "att.onnx")
    flag = ["--type-reduction"] if type_reduction else []
    r = cli("convert", models, "-o", tmp_path / "ours", "--no-verify", *flag)
    assert r.code == 0, r.stderr
    copy = tmp_path / "copy"  # ORT's script writes a temp folder beside the models
    subprocess.run(["cp", "-r", str(models), str(copy)], check=True)
    theirs = tmp_path / "theirs"
    args = [
        sys.executable,
        "-m",
        "onnxruntime.tools.convert_onnx_models_to_ort",
        str(copy),
        "--output_dir",
        str(theirs),
        "--target_platform",
        "arm",
    ]
    if type_reduction:
        args.append("--enable_type_reduction")
    subprocess.run(args, check=True, capture_output=True)
    base = "required_operators_and_types" if type_reduction else "required_operators"
    for name in (f"{base}.config", f"{base}.with_runtime_opt.config"):
        ours = _strip_comments((tmp_path / "ours" / name).read_text())
        theirs_text = _strip_comments((theirs / name).read_text())
        assert ours == theirs_text, name


def test_unloadable_100k_node_artifact_is_a_failure(cli, tmp_path):
    from models import relu_chain

    src = save(relu_chain(100_000), tmp_path / "in" / "chain.onnx")
    r = cli("convert", src, "-o", tmp_path / "out", "--style", "fixed", "--json")
    assert r.code == 1
    fixed = _artifacts(r.json())["fixed"]
    assert fixed["verified"] is False
    assert "verification failed" in fixed["verification"][0]["load_error"]
    assert doc_failed_summary(r.json())


def doc_failed_summary(doc) -> bool:
    return doc["ok"] is False and doc["models"][0]["ok"] is False


def _saved_graph(path: Path):
    model = read_ort(path)
    nodes = sorted(
        (n.op_type, n.domain, n.inputs, n.outputs, repr(sorted(n.attributes.items())))
        for _, n in model.all_nodes()
    )
    records = {
        k: sorted(repr(r) for r in v)
        for k, v in (model.ort.runtime_optimizations.items() if model.ort else ())
    }
    inits = sorted((k, v.dims, v.dtype) for k, v in model.graph.initializers.items())
    return nodes, records, inits


@pytest.mark.parametrize("mode", [None, "save", "apply"])
def test_sessions_that_only_save_save_the_same_graph(tmp_path, mode):
    """convert's sessions only save, with one intra-op thread and no pre-packing: the graph must
    be the one a default session saves."""
    from ortprep.core.runtime import SessionRecipe, create_session
    from ortprep.stages.ort_artifacts import saving_only

    models = [save(conv_bn_relu(), tmp_path / "cnn.onnx"), save(qdq_cnn(), tmp_path / "qdq.onnx")]
    models.append(save(attention_block(), tmp_path / "att.onnx"))
    for src in models:
        recipe = SessionRecipe(save_format="ORT", minimal_build_optimizations=mode)
        default, only = tmp_path / f"{src.stem}.default.ort", tmp_path / f"{src.stem}.only.ort"
        create_session(src, dataclasses.replace(recipe, save_to=default))
        only_recipe = saving_only(recipe, only)
        assert only_recipe.threads == 1
        assert only_recipe.config_entries()["session.disable_prepacking"] == "1"
        create_session(src, only_recipe)
        assert _saved_graph(default) == _saved_graph(only), src.name
        assert _saved_graph(default)[0], "no nodes read"


def test_a_model_ort_refuses_in_a_background_lane_fails_alone(cli, tmp_path):
    """ORT's sessions run on background threads; a refusal there is that model's error only."""
    src = tmp_path / "in"
    save(conv_bn_relu(), src / "a.onnx")
    save(unknown_op(), src / "b_custom.onnx")
    save(dynamic_cnn(), src / "c.onnx")
    r = cli("convert", src, "-o", tmp_path / "out", "--json", "--no-verify")
    assert r.code == 1
    by_name = {Path(m["input"]).name: m for m in r.json()["models"]}
    assert "could not convert" in by_name["b_custom.onnx"]["error"]
    assert "--custom-op-library" in by_name["b_custom.onnx"]["hint"]
    assert by_name["a.onnx"]["ok"] and by_name["c.onnx"]["ok"]
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert not [n for n in written if n.startswith("b_custom") or n.startswith(".")]
    assert "a.ort" in written and "c.with_runtime_opt.ort" in written


def test_models_that_raise_fail_alone_and_the_config_comes_from_the_others(cli, tmp_path):
    """#13, #11: a model ORT cannot run on any synthesized inputs is converted but "not
    verified"; one with element type 9999 fails with a one-line reason; the others are converted
    and verified, exit 1."""
    from failing_models import never_runs, relu, unknown_element_type

    src = tmp_path / "in"
    save(relu(), src / "a.onnx")
    save(never_runs(), src / "b_never.onnx")
    save(unknown_element_type(), src / "c_elem.onnx")
    save(conv_bn_relu(), src / "d.onnx")
    out = tmp_path / "out"
    r = cli("convert", src, "-o", out, "--json")
    assert r.code == 1, r.stderr
    by_name = {Path(m["input"]).name: m for m in r.json()["models"]}
    never, elem = by_name["b_never.onnx"], by_name["c_elem.onnx"]
    assert never["ok"] is False and "error" not in never
    for a in never["artifacts"]:
        assert a["verified"] is False and Path(a["path"]).is_file()
        for v in a["verification"]:
            assert v["not_verified"].startswith(
                "not verified: the original model fails on synthesized inputs"
            )
            assert "--inputs or --fix-dim" in v["not_verified"]
            assert len(v["input_attempts"]) >= 3
    assert "9999" in elem["error"]
    assert elem["ok"] is False and "\n" not in elem["error"]
    assert not elem["error"].startswith("internal error")
    for good in ("a.onnx", "d.onnx"):
        assert by_name[good]["ok"] and all(a["verified"] for a in by_name[good]["artifacts"])
    written = sorted(p.name for p in out.iterdir())
    assert not [n for n in written if n.startswith(("c_", "."))]  # nothing of the failed
    config = (out / "required_operators.config").read_text()
    assert "Relu" in config and "Conv" in config and "Reshape" in config
    assert (out / "required_operators.with_runtime_opt.config").is_file()


def test_a_model_ort_cannot_run_alone_is_exit_1_not_verified(cli, tmp_path):
    from failing_models import never_runs

    src = save(never_runs(), tmp_path / "never.onnx")
    r = cli("convert", src, "-o", tmp_path / "out")
    assert r.code == 1, r.stderr
    assert "not verified: the original model fails on synthesized inputs" in r.stdout
    assert (tmp_path / "out" / "never.ort").is_file()


def test_a_bug_on_one_model_is_exit_3_and_the_others_are_converted(cli, tmp_path, monkeypatch):
    from ortprep.stages import convert

    save(conv_bn_relu(), tmp_path / "in" / "a.onnx")
    save(conv_bn_relu(seed=1), tmp_path / "in" / "b.onnx")
    real = convert._finish_model

    def flaky(planned, *args):
        if planned.item.path.name == "a.onnx":
            raise RuntimeError("boom")
        return real(planned, *args)

    monkeypatch.setattr(convert, "_finish_model", flaky)
    out = tmp_path / "out"
    r = cli("convert", tmp_path / "in", "-o", out, "--style", "fixed", "--json", "--debug")
    assert r.code == 3
    by_name = {Path(m["input"]).name: m for m in r.json()["models"]}
    assert by_name["a.onnx"]["error"] == "internal error: RuntimeError: boom"
    assert by_name["b.onnx"]["ok"] and (out / "b.ort").is_file()
    assert "Traceback" in r.stderr and "flaky" in r.stderr  # --debug shows where
