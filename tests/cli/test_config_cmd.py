"""``ortprep config build|merge|check|build-command`` and ``inspect`` of a config: the contract."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from models import conv_bn_relu, dynamic_cnn, if_subgraph, qdq_cnn, save


def to_ort(src: Path, dst: Path) -> Path:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.optimized_model_filepath = str(dst)
    so.add_session_config_entry("session.save_model_format", "ORT")
    so.add_session_config_entry("session.qdqisint8allowed", "1")
    ort.InferenceSession(
        str(src), so, providers=["CPUExecutionProvider"], disabled_optimizers=["NchwcTransformer"]
    )
    return dst


def op_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Three .onnx models in a folder and their .ort forms in another."""
    onnx_dir = tmp_path_factory.mktemp("onnx")
    ort_dir = tmp_path_factory.mktemp("ort")
    for name, build in (("cnn", conv_bn_relu), ("qdq", qdq_cnn), ("branch", if_subgraph)):
        src = save(build(), onnx_dir / f"{name}.onnx")
        to_ort(src, ort_dir / f"{name}.ort")
    return {"onnx": onnx_dir, "ort": ort_dir}


def needs_conversion() -> None:
    artifacts = pytest.importorskip("ortprep.stages.ort_artifacts")
    if not hasattr(artifacts, "ort_files_for_config"):
        pytest.skip("the conversion stage (ort_files_for_config) is not there yet")


# -------------------------------------------------------------------------------------- build


def test_build_from_ort_files_writes_orts_config_and_touches_no_input(
    cli, models, tmp_path, hashes
):
    from onnxruntime.tools.ort_format_model import create_config_from_models

    before = hashes(models["ort"])
    out = tmp_path / "out" / "ops.config"
    r = cli("config", "build", models["ort"], "-o", out, "--type-reduction")
    assert r.code == 0, r.stderr
    files = sorted(models["ort"].glob("*.ort"))
    create_config_from_models(files, tmp_path / "ref.config", True)
    assert op_lines(out.read_text()) == op_lines((tmp_path / "ref.config").read_text())
    assert "wrote" in r.stdout
    assert hashes(models["ort"]) == before  # nothing modified, nothing written beside inputs
    assert [p.name for p in out.parent.iterdir()] == ["ops.config"]  # no temporary left over


def test_build_json_and_ort_file_name_inside_an_output_folder(cli, models, tmp_path):
    r = cli("config", "build", models["ort"] / "cnn.ort", "-o", tmp_path, "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert Path(doc["output"]).name == "cnn.required_operators.config"
    assert doc["summary"]["kind"] == "ops-only" and doc["ok"] is True
    assert doc["models"][0]["analysed"] == ["cnn.ort"]


def test_build_from_onnx_folder_equals_orts_converter(cli, models, tmp_path):
    needs_conversion()
    copy = tmp_path / "copy"
    shutil.copytree(models["onnx"], copy)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "onnxruntime.tools.convert_onnx_models_to_ort",
            copy,
            "--output_dir",
            tmp_path / "ref",
            "--optimization_style",
            "Runtime",
            "--enable_type_reduction",
            "--target_platform",
            "arm",
        ],
        check=True,
        capture_output=True,
    )
    out = tmp_path / "mine.config"
    r = cli("config", "build", models["onnx"], "-o", out, "--type-reduction", "--style", "runtime")
    assert r.code == 0, r.stderr
    (reference,) = (tmp_path / "ref").glob("*.config")
    assert op_lines(out.read_text()) == op_lines(reference.read_text())
    assert not list(models["onnx"].glob("*.ort"))  # nothing written beside the inputs


def test_build_refuses_to_overwrite_an_input_and_bad_style(cli, models, tmp_path):
    r = cli("config", "build", models["ort"] / "cnn.ort", "-o", models["ort"] / "cnn.ort")
    assert r.code == 2 and "inputs" in r.stderr
    r = cli("config", "build", models["ort"], "-o", tmp_path / "x.config", "--style", "both")
    assert r.code == 2 and "--style" in r.stderr


def test_build_without_output_or_inputs_is_a_usage_error(cli, tmp_path):
    assert cli("config", "build", tmp_path).code == 2  # no -o
    r = cli("config", "build", "-o", tmp_path / "x.config")
    assert r.code == 2 and "missing PATH" in r.stderr


def test_build_with_a_bad_model_among_good_ones_exits_1(cli, models, tmp_path):
    folder = tmp_path / "mixed"
    shutil.copytree(models["ort"], folder)
    (folder / "broken.ort").write_bytes(b"\x10\x00\x00\x00ORTM" + b"\x00" * 40)
    r = cli("config", "build", folder, "-o", tmp_path / "x.config", "--json")
    assert r.code == 1
    doc = r.json()
    bad = [m for m in doc["models"] if not m["ok"]]
    assert [Path(m["model"]).name for m in bad] == ["broken.ort"]
    assert (tmp_path / "x.config").exists()
    single = cli("config", "build", folder / "broken.ort", "-o", tmp_path / "y.config")
    assert single.code == 2 and single.stderr.startswith("error: ")


# -------------------------------------------------------------------------------------- merge


def test_merge_writes_the_sorted_union(cli, models, tmp_path):
    a, b = tmp_path / "a.config", tmp_path / "b.config"
    assert cli("config", "build", models["ort"] / "cnn.ort", "-o", a, "--type-reduction").code == 0
    assert cli("config", "build", models["ort"] / "qdq.ort", "-o", b, "--type-reduction").code == 0
    both = tmp_path / "both.config"
    assert (
        cli(
            "config",
            "build",
            models["ort"] / "cnn.ort",
            models["ort"] / "qdq.ort",
            "-o",
            both,
            "--type-reduction",
        ).code
        == 0
    )
    merged = tmp_path / "merged.config"
    r = cli("config", "merge", a, b, "-o", merged, "--json")
    assert r.code == 0, r.stderr
    assert op_lines(merged.read_text()) == op_lines(both.read_text())
    assert r.json()["inputs"] == [str(a), str(b)]
    assert cli("config", "merge", a, b, "-o", a).code == 2


def test_merge_of_a_broken_config_is_exit_2(cli, tmp_path):
    bad = tmp_path / "bad.config"
    bad.write_text("ai.onnx;13\n")
    r = cli("config", "merge", bad, "-o", tmp_path / "m.config")
    assert r.code == 2
    assert "line 1" in r.stderr and "Traceback" not in r.stderr


# -------------------------------------------------------------------------------------- check


@pytest.fixture(scope="module")
def folder_config(models, tmp_path_factory) -> Path:
    from onnxruntime.tools.ort_format_model import create_config_from_models

    out = tmp_path_factory.mktemp("cfg") / "required_operators_and_types.config"
    create_config_from_models(sorted(models["ort"].glob("*.ort")), out, True)
    return out


def test_check_passes_for_every_model_of_the_folder(cli, models, folder_config):
    r = cli("config", "check", "--config", folder_config, models["ort"])
    assert r.code == 0, r.stdout + r.stderr
    assert r.stdout.count("covered") >= 3
    doc = cli("config", "check", "--config", folder_config, models["ort"], "--json").json()
    assert doc["ok"] is True and len(doc["models"]) == 3


def test_check_without_one_op_exits_1_and_names_it(cli, models, folder_config, tmp_path):
    lines = folder_config.read_text().splitlines()
    trimmed = tmp_path / "trimmed.config"
    trimmed.write_text(
        "\n".join(
            ln.replace("Relu", "Sigmoid") if ln.startswith("ai.onnx;14;") else ln for ln in lines
        )
        + "\n"
    )
    r = cli("config", "check", "--config", trimmed, models["ort"])
    assert r.code == 1
    assert "ai.onnx Relu opset 14" in r.stdout
    doc = cli("config", "check", "--config", trimmed, models["ort"], "--json").json()
    missing = {Path(m["model"]).name: m["missing_ops"] for m in doc["models"] if not m["ok"]}
    assert list(missing) == ["branch.ort"]
    assert missing["branch.ort"][0] | {"reason": ""} == {
        "domain": "ai.onnx",
        "op": "Relu",
        "opset": 14,
        "listed_opsets": [],
        "replay": False,
        "reason": "",
    }


def test_check_reports_a_missing_type_in_json(cli, models, folder_config, tmp_path):
    text = folder_config.read_text().replace(
        'MaxPool{"inputs": {"0": ["float", "int8_t"]}}', 'MaxPool{"inputs": {"0": ["float"]}}'
    )
    narrowed = tmp_path / "narrowed.config"
    narrowed.write_text(text)
    r = cli("config", "check", "--config", narrowed, models["ort"] / "qdq.ort", "--json")
    assert r.code == 1
    (gap,) = r.json()["models"][0]["missing_types"]
    assert (gap["op"], gap["type"], gap["allowed"]) == ("MaxPool", "int8_t", ["float"])


def test_check_of_onnx_models_converts_them_first(cli, models, tmp_path, hashes):
    needs_conversion()
    before = hashes(models["onnx"])
    config = tmp_path / "r.config"
    assert cli("config", "build", models["onnx"], "-o", config).code == 0
    r = cli("config", "check", "--config", config, models["onnx"])
    assert r.code == 0, r.stdout + r.stderr
    assert hashes(models["onnx"]) == before
    other = save(dynamic_cnn(), tmp_path / "new" / "dyn.onnx")
    assert cli("config", "check", "--config", config, other).code == 0


def test_check_usage_errors_are_exit_2(cli, models, tmp_path):
    r = cli("config", "check", "--config", tmp_path / "none.config", models["ort"])
    assert r.code == 2 and "no such file" in r.stderr
    assert cli("config", "check", models["ort"]).code == 2  # --config missing


# ------------------------------------------------------------------------------ build-command


@pytest.mark.parametrize("target", ["android", "ios", "linux-arm", "linux-x86"])
def test_build_command_prints_the_command_with_reasons(cli, folder_config, target):
    r = cli("config", "build-command", "--config", folder_config, "--target", target)
    assert r.code == 0, r.stderr
    assert "python3 tools/ci_build/build.py" in r.stdout
    assert "--include_ops_by_config" in r.stdout
    assert "--enable_reduced_operator_type_support" in r.stdout  # the config carries types
    assert "# Why each flag:" in r.stdout
    assert "basic minimal build" in r.stdout


def test_build_command_json_says_extended_and_why(cli, folder_config):
    r = cli(
        "config",
        "build-command",
        "--config",
        folder_config,
        "--target",
        "android",
        "--ep",
        "nnapi",
        "--json",
    )
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["build"] == "extended-minimal"
    assert any("NNAPI" in reason for reason in doc["build_reasons"])
    assert "--use_nnapi" in doc["argv"] and "extended" in doc["argv"]


def test_build_command_bad_target_or_ep_is_exit_2(cli, folder_config):
    assert cli("config", "build-command", "--config", folder_config, "--target", "wasm").code == 2
    r = cli(
        "config", "build-command", "--config", folder_config, "--target", "ios", "--ep", "nnapi"
    )
    assert r.code == 2 and "not available" in r.stderr


# ------------------------------------------------------------------------------------ inspect


def test_inspect_of_a_config_file(cli, folder_config):
    r = cli("inspect", folder_config)
    assert r.code == 0, r.stderr
    assert "ops-and-types" in r.stdout and "MaxPool" in r.stdout
    doc = cli("inspect", folder_config, "--json").json()
    assert doc["format"] == "config" and doc["kind"] == "ops-and-types"
    assert doc["counts"]["ops"] > 5


def test_every_config_command_has_an_example_in_its_help(cli):
    for sub in ("build", "merge", "check", "build-command"):
        r = cli("config", sub, "--help")
        assert r.code == 0 and "Example: ortprep config" in r.stdout
