"""bench: contract fields, sane figures, .onnx and .ort, one process per model, exit codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from failing_models import never_runs
from models import bad_inputs, conv_bn_relu, dynamic_cnn, save
from ortprep.core.runtime import SessionRecipe, create_session
from ortprep.stages import bench as stage
from real_shape_models import reflect_pad_vad

CONTRACT_KEYS = {
    "path",
    "load_ms",
    "first_run_ms",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "throughput_per_s",
    "peak_rss_mb",
    "size_bytes",
    "threads",
}
FAST = ("--runs", "5", "--warmup", "1")


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    """conv_bn_relu as .onnx, Fixed-style .ort and Runtime-style .ort."""
    root = tmp_path_factory.mktemp("bench")
    src = save(conv_bn_relu(), root / "cnn.onnx")
    fixed = root / "cnn.ort"
    create_session(src, SessionRecipe(save_to=fixed, save_format="ORT"))
    runtime = root / "cnn.with_runtime_opt.ort"
    create_session(
        src,
        SessionRecipe(save_to=runtime, save_format="ORT", minimal_build_optimizations="save"),
    )
    return src, fixed, runtime


def _sane(r: dict) -> None:
    assert set(r) >= CONTRACT_KEYS
    assert r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"]
    assert r["p50_ms"] > 0 and r["load_ms"] > 0 and r["first_run_ms"] > 0
    assert r["throughput_per_s"] > 0
    assert r["peak_rss_mb"] > 0 and r["peak_rss_mb"] >= r["baseline_rss_mb"]
    assert r["size_bytes"] == Path(r["path"]).stat().st_size


def test_bench_measures_onnx_and_ort_files_with_the_contract_fields(cli, cnn):
    src, fixed, _ = cnn
    r = cli("bench", src, fixed, *FAST, "--threads", "2", "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert [Path(x["path"]).name for x in doc["results"]] == ["cnn.onnx", "cnn.ort"]
    for result in doc["results"]:
        _sane(result)
        assert result["threads"] == 2
        assert result["input_shapes"] == {"x": [1, 3, 32, 32]}
    assert [x["format"] for x in doc["results"]] == ["onnx", "ort"]
    assert doc["failures"] == [] and doc["ok"] is True


def test_runtime_style_ort_replays_saved_optimizations_when_asked(cli, cnn):
    _, _, runtime = cnn
    plain = cli("bench", runtime, *FAST, "--json")
    assert plain.code == 0, plain.stderr
    assert "not replayed" in plain.json()["results"][0]["session"]
    replay = cli("bench", runtime, *FAST, "--replay-runtime-optimizations", "--json")
    assert replay.code == 0, replay.stderr
    (result,) = replay.json()["results"]
    _sane(result)
    assert "level extended" in result["session"]
    assert "session.enable_saved_runtime_optimizations=1" in result["session"]


def test_stage_api_returns_a_report_of_results(cnn):
    src, _, _ = cnn
    report = stage.run([src], stage.BenchOptions(runs=3, warmup=0))
    assert isinstance(report, stage.BenchReport) and report.ok
    (result,) = report.results
    assert isinstance(result, stage.BenchResult)
    assert result.threads == 1 and result.runs == 3
    assert set(result.to_dict()) >= CONTRACT_KEYS
    assert set(report.to_dict()) >= {"results", "failures"}


def test_fix_dim_and_inputs_decide_the_input_shapes(cli, tmp_path):
    src = save(dynamic_cnn(), tmp_path / "dyn.onnx")
    r = cli("bench", src, *FAST, "--fix-dim", "H=16", "--fix-dim", "W=20", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["results"][0]["input_shapes"] == {"x": [1, 3, 16, 20]}
    npz = tmp_path / "inputs.npz"
    np.savez(npz, x=np.ones((2, 3, 8, 8), np.float32))
    r = cli("bench", src, *FAST, "--inputs", npz, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["results"][0]["input_shapes"] == {"x": [2, 3, 8, 8]}


def test_a_model_its_synthesized_inputs_do_not_run_is_timed_on_inputs_that_do(cli, tmp_path):
    """The VAD shape fails its reflect Pad on the default [1, 32]: bench searches inputs as
    verify does and says which it timed; a model no input runs is still a clear failure."""
    vad = save(reflect_pad_vad(), tmp_path / "vad.onnx")
    r = cli("bench", vad, *FAST, "--json")
    assert r.code == 0, r.stderr
    result = r.json()["results"][0]
    assert result["input_shapes"]["input"] == [1, 256]
    assert result["inputs_searched"].startswith("the synthesized inputs did not run")
    assert "sr [] int64 all 16000" in result["inputs_searched"]
    human = cli("bench", vad, *FAST)
    assert "timed on inputs found" in " ".join(human.stdout.split())
    never = save(never_runs(), tmp_path / "never.onnx")
    r = cli("bench", never, *FAST)
    assert r.code == 2 and "the model failed to run" in r.stderr and "Traceback" not in r.stderr
    npz = tmp_path / "short.npz"  # the user's inputs are never replaced by searched ones
    short = {"input": np.zeros((1, 32), np.float32), "sr": np.array(16000, np.int64)}
    np.savez(npz, state=np.zeros((2, 1, 128), np.float32), **short)
    r = cli("bench", vad, *FAST, "--inputs", npz)
    assert r.code == 2 and "Pad" in r.stderr


def test_missing_path_is_exit_2(cli, tmp_path):
    r = cli("bench", tmp_path / "nope.onnx")
    assert r.code == 2
    assert r.stderr.startswith("error: ") and "no such file" in r.stderr


def test_corrupt_single_model_is_exit_2(cli, tmp_path):
    path, _ = bad_inputs(tmp_path / "bad")["random.onnx"]
    r = cli("bench", path, *FAST)
    assert r.code == 2
    assert r.stderr.startswith("error: ")
    assert "Traceback" not in r.stderr


def test_one_bad_model_among_several_is_reported_and_exit_1(cli, tmp_path, cnn):
    src, _, _ = cnn
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x00garbage" * 50)
    r = cli("bench", src, bad, *FAST, "--json")
    assert r.code == 1
    doc = r.json()
    assert [Path(x["path"]).name for x in doc["results"]] == ["cnn.onnx"]
    assert [Path(f["path"]).name for f in doc["failures"]] == ["broken.onnx"]
    assert doc["ok"] is False


@pytest.mark.parametrize("args", [["--runs", "0"], ["--warmup", "-1"], ["--threads", "-2"]])
def test_bad_options_are_exit_2(cli, cnn, args):
    src, _, _ = cnn
    assert cli("bench", src, *args).code == 2


def test_human_output_shows_a_table(cli, cnn):
    src, _, _ = cnn
    r = cli("bench", src, *FAST)
    assert r.code == 0, r.stderr
    assert "p99" in r.stdout and "cnn.onnx" in r.stdout


X86 = stage.host_platform() == "amd64"
needs_x86 = pytest.mark.skipif(not X86, reason="the arm-vs-host case needs an x86 host")


def _ort_for(src: Path, target: Path, platform: str) -> Path:
    from ortprep.stages.ort_artifacts import ort_recipe, write_with_ort

    write_with_ort(src, target, ort_recipe("fixed", "all", platform))
    return target


@needs_x86
def test_an_arm_built_fixed_ort_is_not_representative_on_this_x86_host(cnn, tmp_path):
    src = cnn[0]
    arm = _ort_for(src, tmp_path / "cnn.arm.ort", "arm")
    report = stage.run([src, arm], stage.BenchOptions(runs=3, warmup=0, target_cpu="arm"))
    onnx, ort = (r.to_dict() for r in report.results)
    assert (onnx["host_cpu"], onnx["target_cpu"], onnx["representative"]) == (
        "amd64",
        "amd64",
        True,
    )
    assert (ort["host_cpu"], ort["target_cpu"], ort["representative"]) == ("amd64", "arm", False)
    assert "built for arm" in ort["note"] and "does not carry over" in ort["note"]
    assert "\n" not in ort["note"] and ort["note"].count(". ") == 0  # one plain sentence


@needs_x86
def test_a_standalone_ort_says_what_the_file_tells(cli, cnn, tmp_path):
    """NCHWc ops prove an amd64 build; without them ORT's file does not say: unknown."""
    src = cnn[0]
    amd64 = _ort_for(src, tmp_path / "a" / "cnn.ort", "amd64")
    arm = _ort_for(src, tmp_path / "b" / "cnn.ort", "arm")
    r = cli("bench", amd64, arm, *FAST, "--json")
    assert r.code == 0, r.stderr
    built, unknown = r.json()["results"]
    assert (built["target_cpu"], built["representative"]) == ("amd64", True)
    assert (unknown["target_cpu"], unknown["representative"]) == ("unknown", None)
    assert "does not record the CPU" in unknown["note"]
    human = cli("bench", arm, *FAST)
    assert "does not record the CPU" in human.stderr + human.stdout


def _big_model(path: Path, megabytes: int) -> Path:
    import onnx
    from onnx import TensorProto, helper

    n = megabytes * 1024 * 1024 // 4
    weight = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["w"], ["s"], keepdims=0),
            helper.make_node("Add", ["x", "s"], ["y"]),
        ],
        "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [onnx.numpy_helper.from_array(weight, "w")],
    )
    return save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_peak_rss_is_each_files_own_not_the_parents(tmp_path):
    """Each file in its own process, and the figure is that process's: a small file's peak stays
    below a large file's and below this (large) parent's, which Linux's ru_maxrss would carry
    into every child."""
    small = _big_model(tmp_path / "small.onnx", 1)
    large = _big_model(tmp_path / "large.onnx", 160)
    ballast = bytearray(400 * 1024 * 1024)
    ballast[::4096] = b"\x01" * len(ballast[::4096])  # touched: really resident
    report = stage.run([small, large], stage.BenchOptions(runs=1, warmup=0))
    del ballast
    by_name = {Path(r.path).name: r.peak_rss_mb for r in report.results}
    assert by_name["large.onnx"] > by_name["small.onnx"] + 150, by_name
    assert by_name["small.onnx"] < 380, by_name
