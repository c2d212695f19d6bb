"""The CI gate (``--require``, ``--require-coverage``) on ``check`` and ``prepare``."""

from __future__ import annotations

import pytest

from models import conv_bn_relu, dynamic_cnn, save
from ortprep.core.errors import UsageError
from ortprep.gate import Requirement, parse_requirements


def test_requirements_parse_from_cli_strings_and_mappings():
    eps = ("nnapi", "xnnpack")
    got = parse_requirements(["nnapi=YES"], ["xnnpack=62.5%"], eps)
    assert got == (Requirement("nnapi", verdict="yes"), Requirement("xnnpack", coverage=62.5))
    assert parse_requirements({"nnapi": "maybe"}, {"nnapi": 80}, eps) == (
        Requirement("nnapi", verdict="maybe"),
        Requirement("nnapi", coverage=80.0),
    )
    assert parse_requirements(None, None, eps) == ()


@pytest.mark.parametrize(
    ("require", "coverage", "message"),
    [
        (["nnapi=no"], None, "verdict must be yes or maybe"),
        (["nnapi"], None, "expected EP=VALUE"),
        (["=yes"], None, "expected EP=VALUE"),
        (["coreml-mlprogram=yes"], None, "not among the EPs checked"),
        (["nnapi=yes", "nnapi=maybe"], None, "names nnapi twice"),
        (None, ["nnapi=101"], "from 0 to 100"),
        (None, ["nnapi=-1"], "from 0 to 100"),
        (None, ["nnapi=nan"], "from 0 to 100"),
        (None, ["nnapi=lots"], "from 0 to 100"),
    ],
)
def test_bad_requirements_are_usage_errors(require, coverage, message):
    with pytest.raises(UsageError, match=message) as e:
        parse_requirements(require, coverage, ("nnapi", "xnnpack"))
    assert e.value.hint


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gate")
    return save(conv_bn_relu(), folder / "cnn.onnx"), save(dynamic_cnn(), folder / "dyn.onnx")


def test_check_gate_passes_with_exit_0(cli, models_dir):
    cnn, _ = models_dir
    r = cli("check", cnn, "--ep", "nnapi,xnnpack", "--require", "nnapi=yes")
    assert r.code == 0, r.stderr
    assert "gate passed (nnapi=yes)" in r.stdout


def test_check_gate_fails_with_exit_1_naming_ep_verdict_and_reason(cli, models_dir):
    _, dyn = models_dir
    r = cli("check", dyn, "--ep", "nnapi,xnnpack", "--require", "nnapi=maybe")
    assert r.code == 1
    (line,) = [x for x in r.stderr.splitlines() if "gate failed" in x]
    assert line.startswith("error: gate failed: nnapi: verdict no, required maybe")
    assert "top reason:" in line and "dynamic" in line  # NNAPI refuses dynamic shapes


def test_coverage_gate_compares_the_share_of_nodes_taken(cli, models_dir):
    cnn, dyn = models_dir
    assert cli("check", cnn, "--ep", "xnnpack", "--require-coverage", "xnnpack=0").code == 0
    r = cli("check", dyn, "--ep", "xnnpack", "--require-coverage", "xnnpack=50", "--json")
    assert r.code == 1
    doc = r.json()
    assert doc["ok"] is False
    (failure,) = doc["gate"]["failures"]
    taken = doc["eps"][0]["nodes_taken"] / doc["eps"][0]["nodes_total"] * 100
    assert failure["coverage"] == round(taken, 2) < 50
    assert failure["ep"] == "xnnpack" and failure["top_reason"]


def test_check_without_requirements_has_no_gate(cli, models_dir):
    _, dyn = models_dir
    r = cli("check", dyn, "--ep", "nnapi", "--json")
    assert r.code == 0
    assert r.json()["gate"] is None and r.json()["ok"] is True


@pytest.mark.parametrize(
    "args",
    [
        ("--require", "nnapi=no"),
        ("--require", "nnapi"),
        ("--require-coverage", "nnapi=250"),
        ("--ep", "xnnpack", "--require", "nnapi=yes"),
    ],
)
def test_bad_gate_values_exit_2_before_any_work(cli, models_dir, args):
    cnn, _ = models_dir
    r = cli("check", cnn, *args)
    assert r.code == 2
    assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def test_prepare_gate_fails_the_folder_when_one_model_falls_below(cli, models_dir, tmp_path):
    folder = models_dir[0].parent
    r = cli("prepare", folder, "-o", tmp_path / "out", "--require", "nnapi=maybe", "--json")
    assert r.code == 1
    by_name = {m["relative"]: m for m in r.json()["models"]}
    assert by_name["cnn.onnx"]["gate"]["ok"] is True
    assert by_name["dyn.onnx"]["gate"]["ok"] is False
    assert by_name["dyn.onnx"]["gate"]["failures"][0]["verdict"] == "no"
    assert r.json()["options"]["require"] == ["nnapi=maybe"]


def test_prepare_refuses_requiring_an_ep_the_target_does_not_check(cli, models_dir, tmp_path):
    cnn, _ = models_dir
    r = cli("prepare", cnn, "-o", tmp_path / "out", "--require", "coreml-mlprogram=yes")
    assert r.code == 2
    assert not (tmp_path / "out").exists()
