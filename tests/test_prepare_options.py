"""prepare's --fix-dim, --inputs, --target-platform, --runs and --no-bench: spelled, validated
and used as convert and bench use them, from the CLI and from the Python API."""

from __future__ import annotations

import json

import numpy as np
import pytest

import ortprep
from models import conv_bn_relu, dynamic_cnn, save


@pytest.fixture(scope="module")
def dyn(tmp_path_factory):
    return save(dynamic_cnn(), tmp_path_factory.mktemp("src") / "dyn.onnx")


@pytest.fixture(scope="module")
def flagged(dyn, tmp_path_factory):
    """The CLI with --fix-dim, --runs and --target-platform on a dynamic CNN."""
    from typer.testing import CliRunner

    from ortprep.cli import app

    out = tmp_path_factory.mktemp("flagged") / "out"
    args = ["prepare", str(dyn), "-o", str(out), "--fix-dim", "N=2", "--fix-dim", "H=16"]
    args += ["--runs", "3", "--target-platform", "amd64", "--json"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.stderr
    return out, json.loads((out / "manifest.json").read_text())


def test_fix_dim_is_used_for_the_files_the_verification_and_the_benchmark(flagged):
    _, doc = flagged
    assert doc["options"]["fix_dims"] == {"N": 2, "H": 16}
    (m,) = doc["models"]
    for a in m["artifacts"]:
        if a["kind"] == "ort":
            assert a["verification"]
            assert all(v["input_shapes"] == {"x": [2, 3, 16, 32]} for v in a["verification"])
            assert "--fix-dim N=2 --fix-dim H=16" in a["command"]
    assert {b["role"] for b in m["bench"]} == {"original", "fixed", "runtime"}
    assert all(b["input_shapes"] == {"x": [2, 3, 16, 32]} for b in m["bench"])
    original = next(c for c in m["checks"] if c["role"] == "original")
    assert original["eps"]  # the original's check ran with the dims fixed
    commands = {c["title"]: c["command"] for c in m["commands"]}
    assert "--fix-dim N=2" in commands["Check the original"]
    assert "--fix-dim H=16" in commands["Benchmark"]


def test_runs_and_target_platform_reach_the_benchmark_and_the_converter(flagged):
    out, doc = flagged
    (m,) = doc["models"]
    assert doc["options"]["target_platform"] == "amd64"
    assert doc["options"]["bench"]["runs"] == 3
    assert all(b["runs"] == 3 for b in m["bench"])
    assert all("--target-platform amd64" in a["command"] for a in m["artifacts"])
    html = (out / "report.html").read_text()
    assert "CPU: amd64" in html
    assert "N=2 H=16" in html


def test_the_report_shows_the_verification_inputs_and_tolerances(flagged):
    out, _ = flagged
    html = (out / "report.html").read_text()
    assert 'class="note verification"' in html
    assert "x [2×3×16×32] float32 normal(0, 1)" in html  # the verification's own account
    assert "rtol 0.001, atol 0.0001" in html
    assert "(against original at level all for amd64" in html
    assert 'class="note tolerances"' in html
    assert "0.0001 + 0.001·|a|" in html


def test_api_no_bench_and_inputs(tmp_path):
    model = save(conv_bn_relu(), tmp_path / "src" / "cnn.onnx")
    feeds = tmp_path / "feeds.npz"
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    np.savez(feeds, x=x)
    result = ortprep.prepare(model, tmp_path / "out", no_bench=True, inputs=feeds)
    assert result.ok, result.models[0].problems
    doc = json.loads((tmp_path / "out" / "manifest.json").read_text())
    (m,) = doc["models"]
    assert m["bench"] == []
    assert doc["options"]["bench"] is None
    assert doc["options"]["inputs"] == str(feeds)
    assert not any(c["title"] == "Benchmark" for c in m["commands"])
    ort = [a for a in m["artifacts"] if a["kind"] == "ort"]
    assert all(a["verified"] for a in ort)
    assert all(f"--inputs {feeds}" in a["command"] for a in ort)
    html = (tmp_path / "out" / "report.html").read_text()
    assert 'class="note no-bench"' in html
    assert "--no-bench" in html
    assert f"from <code>{feeds}</code>" in html


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target-platform", "x86"], "unknown target platform 'x86'"),
        (["--runs", "0"], "--runs 0: at least one timed run is needed"),
        (["--inputs", "missing.npz"], "missing.npz: no such inputs file"),
        (["--fix-dim", "N"], "--fix-dim 'N': expected NAME=VALUE"),
        (["--fix-dim", "N=0"], "--fix-dim 'N=0': VALUE must be between 1"),
    ],
)
def test_bad_values_are_exit_2_with_the_same_words_as_convert_and_bench(
    cli, dyn, tmp_path, args, message
):
    r = cli("prepare", dyn, "-o", tmp_path / "out", *args)
    assert r.code == 2, r.stderr
    assert r.stderr.startswith(f"error: {message}")
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_bad_values_raise_from_the_api(dyn, tmp_path):
    with pytest.raises(ortprep.OrtprepError, match="unknown target platform"):
        ortprep.prepare(dyn, tmp_path / "out", target_platform="x86")
    with pytest.raises(ortprep.OrtprepError, match="--runs 0"):
        ortprep.prepare(dyn, tmp_path / "out", runs=0)
    with pytest.raises(ortprep.OrtprepError, match="--fix-dim"):
        ortprep.prepare(dyn, tmp_path / "out", fix_dim={"N": -1})


def test_the_shared_options_are_one_declaration():
    """prepare, convert and bench declare --inputs, --fix-dim, --runs, --target-platform once."""
    import typing

    from ortprep.cli import bench_cmd, common, convert_cmd, prepare_cmd

    def meta(fn, name):
        return typing.get_type_hints(fn, include_extras=True)[name].__metadata__[0]

    for name, decl in (("inputs", common.InputsOpt), ("fix_dim", common.FixDimOpt)):
        for module, fn in (
            (prepare_cmd, "prepare"),
            (convert_cmd, "convert"),
            (bench_cmd, "bench"),
        ):
            assert meta(getattr(module, fn), name) is decl.__metadata__[0], (module, name)
    assert meta(prepare_cmd.prepare, "runs") is meta(bench_cmd.bench, "runs")
    assert meta(prepare_cmd.prepare, "target_platform") is meta(
        convert_cmd.convert, "target_platform"
    )
