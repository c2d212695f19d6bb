"""optimize: one ONNX file per level named as ORT names it, the fusions explained, verified."""

from __future__ import annotations

import platform
import sys
import types
from pathlib import Path

import onnx
import pytest

from models import bad_inputs, conv_bn_relu, external_data, save
from ortprep.core.inputs import ModelInput
from ortprep.stages import optimize as stage
from ortprep.stages.diff import Fusion

CONTRACT_LEVEL_KEYS = {
    "level",
    "file",
    "nodes_before",
    "nodes_after",
    "ops_before",
    "ops_after",
    "fusions",
    "hardware_specific",
    "verified",
}


@pytest.fixture(scope="module")
def every(tmp_path_factory):
    """conv_bn_relu optimized at every level (the default), once for the module."""
    from typer.testing import CliRunner

    from ortprep.cli import app

    root = tmp_path_factory.mktemp("every")
    src = save(conv_bn_relu(), root / "in" / "cnn.onnx")
    r = CliRunner().invoke(app, ["optimize", str(src), "-o", str(root / "out"), "--json"])
    assert r.exit_code == 0, r.stderr
    import json

    return root, json.loads(r.stdout)


def _levels(doc):
    return {lv["level"]: lv for lv in doc["levels"]}


def test_every_level_writes_four_files_named_as_orts_converter_does(every):
    root, doc = every
    assert [lv["level"] for lv in doc["levels"]] == ["basic", "extended", "layout", "all"]
    names = sorted(p.name for p in (root / "out").iterdir())
    assert names == [
        "cnn.basic.optimized.onnx",
        "cnn.extended.optimized.onnx",
        "cnn.layout.optimized.onnx",
        "cnn.optimized.onnx",
    ]
    for lv in doc["levels"]:
        assert set(lv) >= CONTRACT_LEVEL_KEYS
        assert Path(lv["file"]).is_file()
        onnx.checker.check_model(lv["file"])  # a valid ONNX file to open in Netron
    assert doc["model"].endswith("cnn.onnx")


def test_every_level_is_verified_against_the_original(every):
    _, doc = every
    for lv in doc["levels"]:
        assert lv["verified"] is True, lv["level"]
        assert lv["verification"]["passed"] is True
        assert "optimizations disabled" in lv["verification"]["session"]
    assert doc["ok"] is True


def test_basic_folds_conv_bn_into_conv(every):
    _, doc = every
    basic = _levels(doc)["basic"]
    assert {f["pattern"]: f["count"] for f in basic["fusions"]} == {
        "Conv+BatchNormalization -> Conv": 1
    }
    assert basic["nodes_before"] == 13 and basic["nodes_after"] == 12
    assert basic["ops_before"]["ai.onnx:BatchNormalization"] == 1
    assert "ai.onnx:BatchNormalization" not in basic["ops_after"]
    assert "Conv+BatchNormalization folded into 1 Conv" in basic["summary"]
    assert basic["ort_only"] is False


def test_extended_fuses_conv_activation_into_fusedconv(every):
    _, doc = every
    extended = _levels(doc)["extended"]
    patterns = {f["pattern"] for f in extended["fusions"]}
    assert "Conv+Relu -> FusedConv" in patterns
    assert "Conv+BatchNormalization+Relu -> FusedConv" in patterns
    assert extended["ops_after"]["com.microsoft:FusedConv"] == 2
    text = " ".join(extended["summary"])
    assert "fused into FusedConv (com.microsoft, ORT-only)" in text
    assert "only ONNX Runtime can run this file" in text
    assert extended["ort_only"] is True


def test_arm_target_excludes_nchwc_so_no_level_is_hardware_specific(every):
    _, doc = every
    levels = _levels(doc)
    assert not any(lv["hardware_specific"] for lv in doc["levels"])
    assert not any(op.startswith("com.microsoft.nchwc:") for op in levels["all"]["ops_after"])
    assert any("NCHWc layout excluded" in line for line in levels["all"]["summary"])


def test_orts_blanket_opset_import_is_explained_not_reported_as_dependencies(every):
    _, doc = every
    note = next(n for n in doc["notes"] if "opset_import" in n)
    assert "com.microsoft.nchwc" in note and "not new dependencies" in note
    assert _levels(doc)["extended"]["domains_used"] == ["ai.onnx", "com.microsoft"]


def test_online_vs_offline_load_times_are_reported(every):
    _, doc = every
    t = doc["load_time"]
    assert t["online_ms"] > 0 and t["offline_ms"] > 0 and t["runs"] >= 3
    assert t["offline"].startswith(str(_levels(doc)["all"]["file"]))


def test_single_level_all_omits_the_level_from_the_name(cli, tmp_path):
    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    r = cli("optimize", src, "-o", tmp_path / "out", "--level", "all", "--json")
    assert r.code == 0, r.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["cnn.optimized.onnx"]


def test_level_without_all_times_a_private_copy_and_writes_only_its_file(cli, tmp_path):
    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    r = cli("optimize", src, "-o", tmp_path / "out", "--level", "basic", "--json")
    assert r.code == 0, r.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["cnn.basic.optimized.onnx"]
    assert "privately" in r.json()["load_time"]["offline"]


@pytest.mark.skipif(
    platform.machine().lower() not in {"x86_64", "amd64"}, reason="NCHWc exists on x86 only"
)
def test_amd64_layout_level_is_hardware_specific_on_x86(cli, tmp_path):
    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    r = cli("optimize", src, "-o", tmp_path, "--target-platform", "amd64", "--json")
    assert r.code == 0, r.stderr
    levels = _levels(r.json())
    assert levels["extended"]["hardware_specific"] is False
    assert levels["layout"]["hardware_specific"] is True
    assert any(op.startswith("com.microsoft.nchwc:") for op in levels["layout"]["ops_after"])
    assert any("hardware-specific" in line for line in levels["layout"]["summary"])
    assert levels["layout"]["verified"] is True


def test_inputs_are_not_touched_and_nothing_is_written_beside_them(cli, tmp_path, hashes):
    src = save(conv_bn_relu(), tmp_path / "in" / "cnn.onnx")
    before = hashes(tmp_path / "in")
    assert cli("optimize", src, "-o", tmp_path / "out", "--level", "basic").code == 0
    assert hashes(tmp_path / "in") == before


def test_human_output_tells_what_changed_and_the_load_saving(cli, tmp_path):
    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    r = cli("optimize", src, "-o", tmp_path / "out")
    assert r.code == 0, r.stderr
    assert "folded into 1 Conv" in r.stdout
    assert "FusedConv" in r.stdout
    assert "online" in r.stdout and "offline" in r.stdout


@pytest.mark.parametrize("name", ["random.onnx", "truncated.onnx", "empty.onnx"])
def test_bad_single_input_is_exit_2(cli, tmp_path, name):
    path, _ = bad_inputs(tmp_path / "bad")[name]
    r = cli("optimize", path, "-o", tmp_path / "out")
    assert r.code == 2
    assert r.stderr.startswith("error: ")
    assert "Traceback" not in r.stderr


def test_ort_format_input_is_refused_with_exit_2(cli, tmp_path):
    from ortprep.core.runtime import SessionRecipe, create_session

    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    ort_file = tmp_path / "cnn.ort"
    create_session(src, SessionRecipe(save_to=ort_file, save_format="ORT"))
    r = cli("optimize", ort_file, "-o", tmp_path / "out")
    assert r.code == 2
    assert "ONNX models" in r.stderr


@pytest.mark.parametrize(
    "args", [["--level", "fast"], ["--target-platform", "riscv"], ["--pre", "magic"]]
)
def test_bad_options_are_exit_2(cli, tmp_path, args):
    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    r = cli("optimize", src, "-o", tmp_path / "out", *args)
    assert r.code == 2
    assert not (tmp_path / "out").exists()


def test_folder_with_one_bad_model_processes_the_rest_and_exits_1(cli, tmp_path):
    folder = tmp_path / "models"
    save(conv_bn_relu(), folder / "sub" / "cnn.onnx")
    (folder / "broken.onnx").write_bytes(b"not a model at all" * 10)
    r = cli("optimize", folder, "-o", tmp_path / "out", "--level", "extended", "--json")
    assert r.code == 1
    doc = r.json()
    by_name = {Path(m["model"]).name: m for m in doc["models"]}
    assert by_name["broken.onnx"]["ok"] is False and by_name["broken.onnx"]["error"]
    good = by_name["cnn.onnx"]
    assert good["ok"] is True and good["levels"][0]["verified"] is True
    assert (tmp_path / "out" / "sub" / "cnn.extended.optimized.onnx").is_file()


def test_pre_onnxslim_without_the_package_is_exit_2_with_a_pip_hint(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxslim", None)  # makes `import onnxslim` fail
    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    r = cli("optimize", src, "-o", tmp_path / "out", "--pre", "onnxslim")
    assert r.code == 2
    assert "pip install onnxslim" in r.stderr
    assert not (tmp_path / "out").exists()


def test_pre_onnxslim_runs_first_when_installed(cli, tmp_path, monkeypatch):
    calls: list[str] = []

    def slim(model):
        calls.append(model)
        return onnx.load(model)  # a stand-in that changes nothing

    fake = types.ModuleType("onnxslim")
    fake.slim = slim  # type: ignore[attr-defined]
    fake.__version__ = "0.0-test"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "onnxslim", fake)
    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    r = cli(
        "optimize", src, "-o", tmp_path / "out", "--level", "basic", "--pre", "onnxslim", "--json"
    )
    assert r.code == 0, r.stderr
    doc = r.json()
    assert calls == [str(src)]
    assert doc["pre"] == {
        "tool": "onnxslim",
        "version": "0.0-test",
        "nodes_before": 13,
        "nodes_after": 13,
    }
    assert doc["levels"][0]["verified"] is True


def test_large_models_keep_their_weights_in_an_external_file(tmp_path, monkeypatch):
    monkeypatch.setattr(stage, "LARGE_MODEL_BYTES", 0)
    src = save(conv_bn_relu(), tmp_path / "in" / "cnn.onnx")
    result = stage.run(
        [ModelInput(src, Path("cnn.onnx"))],
        tmp_path / "out",
        stage.OptimizeOptions(levels=("basic",)),
    )
    assert result.ok, result.to_dict()
    (level,) = result.models[0].levels
    data = tmp_path / "out" / "cnn.basic.optimized.onnx.data"
    assert level.external_data_file == str(data) and data.is_file()
    assert level.verified is True
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "cnn.basic.optimized.onnx",
        "cnn.basic.optimized.onnx.data",
    ]


def test_external_data_input_gets_its_own_data_file_in_out(cli, tmp_path, hashes):
    src = external_data(tmp_path / "in")
    before = hashes(tmp_path / "in")
    r = cli("optimize", src, "-o", tmp_path / "out", "--level", "all", "--json")
    assert r.code == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "ext.optimized.onnx",
        "ext.optimized.onnx.data",
    ]
    assert r.json()["levels"][0]["verified"] is True
    assert hashes(tmp_path / "in") == before


@pytest.mark.parametrize(
    ("pattern", "domain", "expected"),
    [
        (
            "Conv+BatchNormalization -> Conv",
            "ai.onnx",
            "Conv+BatchNormalization folded into 4 Conv",
        ),
        (
            "Conv+Relu -> FusedConv",
            "com.microsoft",
            "4 Conv+Relu fused into FusedConv (com.microsoft, ORT-only)",
        ),
        ("HardSwish -> HardSigmoid+Mul", "ai.onnx", "4 HardSwish expanded into HardSigmoid+Mul"),
    ],
)
def test_fusions_are_described_in_plain_words(pattern, domain, expected):
    node = types.SimpleNamespace(domain=domain, inputs=(), outputs=("y",))
    assert stage.describe_fusion(Fusion(pattern, 4, ("n",)), node) == expected


def test_every_expands_to_the_four_levels_in_order():
    assert stage.parse_levels("every") == ("basic", "extended", "layout", "all")
    assert stage.parse_levels("layout") == ("layout",)


def test_models_that_raise_fail_alone_and_the_others_are_written(cli, tmp_path):
    """#13: ORT failing to run a model, and element type 9999, stop only that model."""
    from failing_models import never_runs, relu, unknown_element_type

    folder = tmp_path / "models"
    save(never_runs(), folder / "a_never.onnx")
    save(unknown_element_type(), folder / "b_elem.onnx")
    save(relu(), folder / "c.onnx")
    out = tmp_path / "out"
    r = cli("optimize", folder, "-o", out, "--level", "basic", "--json")
    assert r.code == 1, r.stderr
    by_name = {Path(m["model"]).name: m for m in r.json()["models"]}
    never = by_name["a_never.onnx"]
    assert never["ok"] is False and never["levels"][0]["verified"] is False
    assert "fails on synthesized inputs" in never["levels"][0]["verification"]["not_verified"]
    assert "9999" in by_name["b_elem.onnx"]["error"]
    assert by_name["c.onnx"]["ok"] and by_name["c.onnx"]["levels"][0]["verified"] is True
    written = sorted(p.name for p in out.iterdir())
    assert written == ["a_never.basic.optimized.onnx", "c.basic.optimized.onnx"]


def _reshape_inputs(path):
    import numpy as np

    np.savez(path, x=np.arange(6, dtype=np.float32).reshape(2, 3), shape=np.array([3, 2]))
    return path


def test_inputs_make_a_model_that_fails_on_synthesized_inputs_verify(cli, tmp_path):
    import json

    from failing_models import reshape_to_input

    src = save(reshape_to_input(), tmp_path / "reshape.onnx")
    out = tmp_path / "out"
    r = cli("optimize", src, "-o", out, "--level", "basic", "--json")
    assert r.code == 1, r.stderr
    lv = json.loads(r.stdout)["levels"][0]
    assert (
        "give --inputs or --fix-dim, or skip verification with --no-verify"
        in (lv["verification"]["not_verified"])
    )
    npz = _reshape_inputs(tmp_path / "real.npz")
    r = cli("optimize", src, "-o", tmp_path / "out2", "--level", "basic", "--inputs", npz, "--json")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["levels"][0]["verified"] is True
    assert doc["options"]["inputs"] == str(npz)


def test_fix_dim_is_applied_to_the_verification_inputs(cli, tmp_path):
    import json

    from models import dynamic_cnn

    src = save(dynamic_cnn(), tmp_path / "dyn.onnx")
    args = ["--fix-dim", "N=3", "--fix-dim", "H=40", "--fix-dim", "W=24", "--json"]
    r = cli("optimize", src, "-o", tmp_path / "out", "--level", "basic", *args)
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    (used,) = doc["levels"][0]["verification"]["inputs"]
    assert used["shape"][0] == 3 and used["shape"][2:] == [40, 24]
    assert doc["options"]["fix_dims"] == {"N": 3, "H": 40, "W": 24}


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--fix-dim", "N=zero"], "--fix-dim 'N=zero'"),
        (["--fix-dim", "nosuchdim=1"], "nosuchdim"),
        (["--inputs", "missing.npz"], "no such inputs file"),
    ],
)
def test_bad_fix_dim_or_missing_inputs_file_is_exit_2_in_one_line(cli, tmp_path, args, needle):
    from models import dynamic_cnn

    src = save(dynamic_cnn(), tmp_path / "dyn.onnx")
    args = [str(tmp_path / a) if a.endswith(".npz") else a for a in args]
    r = cli("optimize", src, "-o", tmp_path / "out", "--level", "basic", *args)
    assert r.code == 2, r.stdout + r.stderr
    first, *rest = r.stderr.strip().splitlines()
    assert first.startswith("error: ") and needle in first
    assert all(line.startswith("hint: ") for line in rest)
    assert "Traceback" not in r.stderr
