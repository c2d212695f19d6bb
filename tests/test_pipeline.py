"""prepare: every stage per model, a recommendation, manifest.json and a self-contained report."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import tree_hashes
from models import conv_bn_relu, dynamic_cnn, save

SCRIPT_NAME = "<script>alert(1)</script>"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _models(doc):
    return {m["relative"]: m for m in doc["models"]}


def _assert_self_contained(html: str) -> None:
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "<script" not in html.lower().replace("&lt;script", "")
    assert "@import" not in html and "url(" not in html
    assert "<link" not in html.lower()


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """A folder of two good models (one in a subfolder) and one broken file, two workers."""
    from typer.testing import CliRunner

    from ortprep.cli import app

    root = tmp_path_factory.mktemp("prep")
    src = root / "models"
    save(conv_bn_relu(), src / "cnn.onnx")
    save(dynamic_cnn(), src / "sub" / "dyn.onnx")
    (src / "broken.onnx").write_bytes(b"this is a README, not a model\n" * 20)
    before = tree_hashes(src)
    out = root / "out"
    r = CliRunner().invoke(app, ["prepare", str(src), "-o", str(out), "--workers", "2", "--json"])
    return {
        "src": src,
        "out": out,
        "code": r.exit_code,
        "stdout": r.stdout,
        "before": before,
        "stderr": r.stderr,
    }


def test_folder_with_a_broken_file_exits_1_and_keeps_the_others(folder_run):
    assert folder_run["code"] == 1, folder_run["stderr"]
    doc = json.loads((folder_run["out"] / "manifest.json").read_text())
    models = _models(doc)
    assert set(models) == {"broken.onnx", "cnn.onnx", "sub/dyn.onnx"}
    broken = models["broken.onnx"]
    assert broken["ok"] is False
    assert "not" in broken["error"]
    assert broken["sha256"] == _sha(folder_run["src"] / "broken.onnx")
    for name in ("cnn.onnx", "sub/dyn.onnx"):
        assert models[name]["ok"], models[name].get("problems")
        assert models[name]["recommendation"]["ship"]
    assert doc["models_failed"] == 1
    assert doc["ok"] is False


def test_json_prints_the_manifest(folder_run):
    printed = json.loads(folder_run["stdout"])
    written = json.loads((folder_run["out"] / "manifest.json").read_text())
    assert printed == written


def test_inputs_are_untouched_and_outputs_keep_the_folder_layout(folder_run):
    assert tree_hashes(folder_run["src"]) == folder_run["before"]
    out = folder_run["out"]
    assert (out / "sub" / "dyn.ort").is_file()
    assert (out / "sub" / "dyn.with_runtime_opt.ort").is_file()
    assert (out / "cnn.required_operators_and_types.with_runtime_opt.config").is_file()
    assert not list(out.rglob(".*.tmp"))  # atomic writes leave no temporary files


def test_manifest_records_versions_options_artifacts_and_sha256s(folder_run):
    import onnx
    import onnxruntime

    from ortprep import __version__

    out = folder_run["out"]
    doc = json.loads((out / "manifest.json").read_text())
    assert doc["versions"]["onnxruntime"] == onnxruntime.__version__
    assert doc["options"]["target"] == "android"
    assert doc["options"]["eps"] == ["nnapi", "xnnpack"]
    cnn = _models(doc)["cnn.onnx"]
    assert cnn["versions"] == {**cnn["versions"], "ortprep": __version__, "onnx": onnx.__version__}
    assert cnn["input"] == str(folder_run["src"] / "cnn.onnx")
    assert cnn["sha256"] == _sha(folder_run["src"] / "cnn.onnx")
    assert cnn["options"]["target_platform"] == "arm"
    kinds = {(a["kind"], a["style"]) for a in cnn["artifacts"]}
    assert kinds == {
        ("ort", "fixed"),
        ("ort", "runtime"),
        ("config", "fixed"),
        ("config", "runtime"),
    }
    for a in cnn["artifacts"]:
        path = out / a["path"]
        assert a["sha256"] == _sha(path)
        assert a["size_bytes"] == path.stat().st_size
        assert a["command"].startswith("ortprep convert ")
        if a["kind"] == "ort":
            assert a["verified"] is True
    roles = {c["role"]: c for c in cnn["checks"]}
    assert set(roles) == {"original", "runtime", "fixed"}
    for c in roles.values():
        assert [e["ep"] for e in c["eps"]] == ["nnapi", "xnnpack"]
        assert all(e["verdict"] in ("yes", "maybe", "no") and e["summary"] for e in c["eps"])
    assert {d["role"] for d in cnn["diffs"]} == {"runtime", "fixed"}
    # and, on a host that is not the target's CPU, the Fixed-style file built for the host
    assert {b["role"] for b in cnn["bench"]} - {"fixed-host"} == {"original", "fixed", "runtime"}
    assert all(b["p50_ms"] > 0 for b in cnn["bench"])
    assert "--include_ops_by_config" in cnn["build"]["command"]
    titles = [c["title"] for c in cnn["commands"]]
    assert any("build" in t for t in titles)


def test_a_folder_gets_one_merged_config_and_build_command(folder_run):
    doc = json.loads((folder_run["out"] / "manifest.json").read_text())
    combined = doc["combined_build"]
    assert sorted(combined["models"]) == ["cnn.onnx", "sub/dyn.onnx"]
    config = folder_run["out"] / combined["config"]
    assert combined["sha256"] == _sha(config)
    text = config.read_text()
    assert "Conv" in text
    assert "--include_ops_by_config" in combined["build_command"]["command"]


def test_report_is_self_contained_with_a_picture_per_ep(folder_run):
    html = (folder_run["out"] / "report.html").read_text()
    _assert_self_contained(html)
    doc = json.loads((folder_run["out"] / "manifest.json").read_text())
    for m in doc["models"]:
        if m["ok"]:
            assert m["recommendation"]["headline"] in html
    # one strip per EP per checked file, for the two good models: 2 EPs x 3 files x 2 models
    strips = re.findall(r'<svg viewBox="0 0 1000 26"', html)
    assert len(strips) == 12
    assert 'aria-label="NNAPI on original .onnx' in html
    assert 'aria-label="XNNPACK on Runtime .ort' in html
    assert "broken.onnx" in html and "Failed:" in html
    assert "ortprep convert" in html and "tools/ci_build/build.py" in html


@pytest.mark.skipif(
    __import__("ortprep.stages.bench", fromlist=["x"]).host_platform() != "amd64",
    reason="the arm-built files are foreign only on an x86 host",
)
def test_arm_built_benchmarks_are_marked_and_greyed_with_the_host_twin_beside(folder_run):
    doc = json.loads((folder_run["out"] / "manifest.json").read_text())
    cnn = _models(doc)["cnn.onnx"]
    rows = {b["role"]: b for b in cnn["bench"]}
    assert rows["original"]["representative"] is True
    for role in ("fixed", "runtime"):
        assert (rows[role]["target_cpu"], rows[role]["host_cpu"]) == ("arm", "amd64")
        assert rows[role]["representative"] is False
        assert "does not carry over" in rows[role]["note"]
    # conv_bn_relu built for this host holds NCHWc ops: the twin is timed, and labelled
    twin = rows["fixed-host"]
    assert (twin["target_cpu"], twin["representative"]) == ("amd64", True)
    assert "not shipped" in twin["file"] and "not shipped" in twin["note"]
    assert not list(folder_run["out"].rglob("cnn.amd64.ort"))  # never written to OUT
    dyn = _models(doc)["sub/dyn.onnx"]  # Fixed style: its why quotes the timings, and says so
    assert "do not show the device's" in " ".join(dyn["recommendation"]["why"])
    html = (folder_run["out"] / "report.html").read_text()
    assert 'class="not-representative"' in html
    assert 'class="note bench-caption"' in html
    assert "Grey bars are timings that do not represent their file on this amd64 host" in html
    assert 'class="note host-twin"' in html and "Fixed .ort, host-built" in html


def test_peak_rss_in_prepare_is_measured_per_file(folder_run):
    """Each figure is its own child's (the parent's peak used to be carried into all three)."""
    doc = json.loads((folder_run["out"] / "manifest.json").read_text())
    for m in doc["models"]:
        if m["ok"]:
            peaks = [b["peak_rss_mb"] for b in m["bench"]]
            assert all(0 < p < 400 for p in peaks), peaks


def test_node_names_are_escaped_in_the_report(cli, tmp_path):
    model = conv_bn_relu()
    for node in model.graph.node:
        if node.name == "relu2":
            node.name = SCRIPT_NAME
    src = save(model, tmp_path / "evil.onnx")
    r = cli("prepare", src, "-o", tmp_path / "out", "--target", "linux-x86")
    assert r.code == 0, r.stderr
    html = (tmp_path / "out" / "report.html").read_text()
    assert SCRIPT_NAME not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    _assert_self_contained(html)
    doc = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert doc["options"]["target_platform"] == "amd64"
    assert [e["ep"] for e in doc["models"][0]["checks"][0]["eps"]] == ["xnnpack"]


@pytest.fixture(scope="module")
def ios_run(tmp_path_factory):
    """The library entry point, for iOS: returns the result and the output folder."""
    from ortprep.core.inputs import resolve_inputs
    from ortprep.pipeline import PrepareOptions, prepare

    root = tmp_path_factory.mktemp("ios")
    src = save(conv_bn_relu(), root / "cnn.onnx")
    out = root / "out"
    return prepare(resolve_inputs(src), out, PrepareOptions(target="ios")), out


def test_ios_target_checks_coreml_and_recommends_the_runtime_style(ios_run):
    result, out = ios_run
    assert result.ok
    doc = json.loads((out / "manifest.json").read_text())
    assert doc == json.loads(json.dumps(result.to_dict()))
    m = doc["models"][0]
    for c in m["checks"]:
        assert [e["ep"] for e in c["eps"]] == [
            "coreml-mlprogram",
            "coreml-neuralnetwork",
            "xnnpack",
        ]
    rec = m["recommendation"]
    assert rec["style"] == "runtime"
    assert rec["ship"] == "cnn.with_runtime_opt.ort"
    assert "CoreML" in rec["headline"]
    assert rec["session_options"] == {"session.enable_saved_runtime_optimizations": "1"}
    assert any("keeps the original ONNX ops" in w for w in rec["why"])
    assert m["build"]["build"] == "extended-minimal"
    assert "--use_coreml" in m["build"]["command"]
    html = (out / "report.html").read_text()
    assert html.count('aria-label="CoreML (MLProgram) on') == 3
    assert "session.enable_saved_runtime_optimizations" in html


def test_a_file_that_failed_verification_is_not_recommended(ios_run):
    from ortprep.recommend import recommend

    report = ios_run[0].models[0]
    eps = ("coreml-mlprogram", "xnnpack")
    assert recommend(report.evidence, eps).style == "runtime"

    def failing(styles):
        return tuple(
            replace(f, artifact=replace(f.artifact, verified=False))
            if f.artifact is not None and f.style in styles
            else f
            for f in report.files
        )

    rec = recommend(replace(report, files=failing({"runtime"})).evidence, eps)
    assert rec.style == "fixed"
    assert rec.ship == "cnn.ort"
    assert "did not reproduce" in rec.warnings[0]
    assert not rec.session_options
    rec = recommend(replace(report, files=failing({"runtime", "fixed"})).evidence, eps)
    assert rec.ship is None
    assert rec.headline.startswith("Do not ship")


def test_example_works(cli, tmp_path):
    r = cli("prepare", "--example", "-o", tmp_path / "out")
    assert r.code == 0, r.stderr
    doc = json.loads((tmp_path / "out" / "manifest.json").read_text())
    m = doc["models"][0]
    assert m["ok"]
    assert m["recommendation"]["style"] == "fixed"  # NNAPI refuses it (dynamic batch, HardSigmoid)
    assert any("dynamic input shapes" in n for n in m["recommendation"]["notes"])
    assert any(c["command"].startswith("ortprep convert --example") for c in m["commands"])
    _assert_self_contained((tmp_path / "out" / "report.html").read_text())


def test_a_single_bad_file_is_exit_2_and_writes_nothing(cli, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"")
    r = cli("prepare", bad, "-o", tmp_path / "out")
    assert r.code == 2
    assert r.stderr.startswith("error: ")
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_an_ep_the_target_cannot_use_is_a_usage_error(cli, tmp_path):
    r = cli("prepare", "--example", "-o", tmp_path / "out", "--ep", "nnapi", "--target", "ios")
    assert r.code == 2
    assert "not available for --target ios" in r.stderr


def test_output_next_to_the_input_is_refused(cli, tmp_path):
    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    r = cli("prepare", src, "-o", tmp_path)
    assert r.code == 2
    assert "next to the input" in r.stderr


def test_a_bug_on_one_model_is_reported_and_the_others_complete(cli, tmp_path, monkeypatch):
    from ortprep import pipeline

    save(conv_bn_relu(), tmp_path / "in" / "a.onnx")
    save(conv_bn_relu(seed=1), tmp_path / "in" / "b.onnx")
    real = pipeline._prepare

    def flaky(item, *args, **kwargs):
        if item.path.name == "a.onnx":
            raise RuntimeError("boom")
        return real(item, *args, **kwargs)

    monkeypatch.setattr(pipeline, "_prepare", flaky)
    r = cli("prepare", tmp_path / "in", "-o", tmp_path / "out", "--target", "linux-arm")
    assert r.code == 3
    doc = json.loads((tmp_path / "out" / "manifest.json").read_text())
    models = _models(doc)
    assert models["a.onnx"]["internal_error"] is True
    assert "RuntimeError: boom" in models["a.onnx"]["error"]
    assert models["b.onnx"]["ok"]


def test_long_models_are_drawn_as_runs_of_nodes():
    from ortprep.report.html import MAX_MARKS, strip
    from ortprep.stages.check import NodeResult

    nodes = [
        NodeResult(
            f"n{i}",
            "Relu",
            "ai.onnx",
            "main",
            i % 1000 < 900,
            0 if i % 1000 < 900 else None,
            None if i % 1000 < 900 else "refused for a reason",
        )
        for i in range(10_000)
    ]
    drawn = strip(nodes, compiles=True)
    assert drawn["merged"]
    assert len(drawn["marks"]) <= MAX_MARKS
    assert sum(m["w"] for m in drawn["marks"]) == pytest.approx(1000, abs=0.1)
    assert "refused for a reason" in drawn["marks"][1]["title"]
    small = strip(nodes[:10], compiles=True)
    assert len(small["marks"]) == 10
    assert small["marks"][0]["title"].startswith("n0 · Relu")


def test_a_worker_crash_loses_only_its_own_model(tmp_path):
    """A dead worker breaks the pool; the unfinished models are rerun one per process."""
    from crashing_worker import prepare_or_crash
    from ortprep.core.inputs import ModelInput
    from ortprep.pipeline import PrepareOptions, _run_parallel

    names = ["a.onnx", "crash.onnx", "b.onnx", "c.onnx", "d.onnx"]
    items = [ModelInput(tmp_path / n, Path(n)) for n in names]
    seen = []
    reports = _run_parallel(
        items,
        tmp_path / "out",
        PrepareOptions(workers=2),
        lambda what, done, total: seen.append((done, total)),
        work=prepare_or_crash,
    )
    assert [r.relative for r in reports] == names  # the input order, every model reported
    by_name = {r.relative: r for r in reports}
    assert "crashed" in (by_name["crash.onnx"].error or "")
    assert by_name["crash.onnx"].hint
    for n in ("a.onnx", "b.onnx", "c.onnx", "d.onnx"):
        assert by_name[n].error is None, by_name[n].error
    assert seen[-1] == (5, 5)


def test_models_that_raise_are_isolated_with_exit_1_not_3(cli, tmp_path):
    """#13: ORT failing to run a model (#11: converted, "not verified"), and element type 9999
    (failed), concern that model only (exit 1)."""
    from failing_models import never_runs, relu, unknown_element_type

    src = tmp_path / "in"
    save(never_runs(), src / "a_never.onnx")
    save(unknown_element_type(), src / "b_elem.onnx")
    save(relu(), src / "c.onnx")
    out = tmp_path / "out"
    r = cli("prepare", src, "-o", out, "--target", "linux-x86")
    assert r.code == 1, r.stderr
    models = _models(json.loads((out / "manifest.json").read_text()))
    never = models["a_never.onnx"]
    assert never["ok"] is False and not never.get("error")
    for a in [a for a in never["artifacts"] if a["kind"] == "ort"]:
        assert a["verified"] is False
        assert all("fails on synthesized inputs" in v["not_verified"] for v in a["verification"])
    assert "9999" in models["b_elem.onnx"]["error"]
    elem = models["b_elem.onnx"]
    assert elem["internal_error"] is False and "\n" not in elem["error"]
    assert models["c.onnx"]["ok"], models["c.onnx"].get("problems")


def test_a_model_that_runs_on_nothing_is_made_but_not_verified(cli, tmp_path):
    """#11: nothing was compared, so the headline says "not verified", why (ORT's words) and
    what to give; never "neither file reproduced the original's outputs"; no benchmark."""
    from failing_models import never_runs

    src = save(never_runs(), tmp_path / "in" / "never.onnx")
    out = tmp_path / "out"
    r = cli("prepare", src, "-o", out, "--json")
    assert r.code == 1, r.stderr
    (m,) = r.json()["models"]
    rec = m["recommendation"]
    assert rec["ship"] is None
    assert rec["headline"] == (
        "Not verified: both .ort files were made, but the original model fails on synthesized "
        "inputs"
    )
    assert "reproduce" not in json.dumps(rec)
    (why, *_) = rec["why"]
    assert why.startswith("ONNX Runtime could not run the original model on any of the ")
    assert "Reshape node 'reshape': The input tensor cannot be reshaped" in why
    assert "reshape_helper.h" not in why  # ORT's one line, without its source location
    assert "--inputs FILE.npz" in rec["next_steps"][0] and "--fix-dim" in rec["next_steps"][0]
    assert rec["warnings"] == []
    assert m["bench"] == []
    assert m["problems"] == [
        "bench: not run: the original model fails on synthesized inputs, so there is nothing "
        "to time"
    ]
    for a in [a for a in m["artifacts"] if a["kind"] == "ort"]:
        assert (out / a["path"]).is_file() and a["verified"] is False
        for v in a["verification"]:
            assert v["unverified_because"] == "the original model fails on synthesized inputs"
            assert v["ort_error"].startswith("Reshape node 'reshape'")
    html = (out / "report.html").read_text()
    assert "Not verified: both .ort files were made" in html
    assert "reproduced" not in html
    text = cli("prepare", src, "-o", tmp_path / "out2").stdout
    assert "not verified" in text and "NO" not in text
