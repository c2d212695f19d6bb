"""#11: verification on models shaped like real ones: a QDQ int8 CNN from quantize_static, a
voice model whose synthesized [1, 32] input fails a reflect Pad inside an If, a detector with
symbolic batch/height/width, a Loop whose trip count is an input. Each verifies against itself;
``convert`` on a folder of them verifies every artifact; a model that runs on no input is "not
verified" (exit 1) while the others are complete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from failing_models import never_runs
from models import qdq_cnn, save
from real_shape_models import dynamic_detector, loop_decoder, reflect_pad_vad

BUILDERS = {
    "qdq_cnn.onnx": qdq_cnn,
    "vad.onnx": reflect_pad_vad,
    "detector.onnx": dynamic_detector,
    "loop.onnx": loop_decoder,
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    src = tmp_path_factory.mktemp("real_shapes")
    for name, build in BUILDERS.items():
        save(build(), src / name)
    return src


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_each_model_verifies_against_itself(cli, folder, name):
    model = folder / name
    r = cli("verify", model, model, "--json")
    assert r.code == 0, r.stdout + r.stderr
    doc = r.json()
    assert doc["passed"] is True and doc["outputs"]
    assert all(o["passed"] for o in doc["outputs"])
    assert doc["reference_config"].startswith("original at level all")
    assert {i["name"] for i in doc["inputs"]} == set(doc["input_shapes"])
    assert doc["rtol"] == 1e-3 and doc["atol"] == 1e-4
    figure = doc["float_reference"]
    assert figure["informative"] is (name == "qdq_cnn.onnx")
    if name == "qdq_cnn.onnx":  # int8 kernels and the float graph round differently
        assert figure["max_abs"] > 0 and figure["text"].startswith("int8 kernels vs float")
    else:
        assert figure["ok"] is True


def test_the_vad_model_runs_on_inputs_found_after_the_reflect_pad_failed(cli, folder):
    doc = cli("verify", folder / "vad.onnx", folder / "vad.onnx", "--json").json()
    used = {i["name"]: i for i in doc["inputs"]}
    assert used["sr"]["values"].startswith("all 16000")
    assert used["input"]["shape"][1] > 64 and used["state"]["shape"] == [2, 1, 128]
    first = doc["input_attempts"][0]
    assert first.startswith("input [1, 32] float32 normal(0, 1)")
    assert "Pad reflect" in first
    assert all("Pad reflect" in line for line in doc["input_attempts"])


def test_convert_on_the_folder_verifies_every_artifact(cli, folder, tmp_path):
    out = tmp_path / "out"
    r = cli("convert", folder, "-o", out, "--json")
    assert r.code == 0, r.stdout + r.stderr
    models = {Path(m["input"]).name: m for m in r.json()["models"]}
    assert set(models) == set(BUILDERS)
    for name, m in models.items():
        assert m["ok"], name
        assert len(m["artifacts"]) == 2
        for a in m["artifacts"]:
            assert a["verified"] is True, (name, a["verification"])
            assert Path(a["path"]).is_file()
            for v in a["verification"]:
                assert v["inputs"] and v["reference_config"]
    fixed, runtime = models["qdq_cnn.onnx"]["artifacts"]
    assert fixed["verification"][0]["reference_config"].startswith("original at level all")
    without, replayed = runtime["verification"]
    assert without["reference_config"].startswith("original at level basic")
    assert replayed["reference_config"].startswith("original at level extended")
    # compared with its own int8 kernels: no widened tolerance needed
    assert all(o["max_abs"] == 0 for o in fixed["verification"][0]["outputs"])
    assert fixed["verification"][0]["float_reference"]["informative"] is True
    text = cli("convert", folder, "-o", tmp_path / "out2").stdout
    assert "int8 kernels vs float reference: max abs" in text
    assert "verified on inputs: input [1, 256] float32 normal(0, 1)" in text


def test_one_model_that_never_runs_gives_exit_1_and_the_others_are_complete(cli, folder, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in BUILDERS:
        (src / name).write_bytes((folder / name).read_bytes())
    save(never_runs(), src / "broken.onnx")
    out = tmp_path / "out"
    r = cli("convert", src, "-o", out, "--json")
    assert r.code == 1, r.stdout + r.stderr
    doc = r.json()
    models = {Path(m["input"]).name: m for m in doc["models"]}
    broken = models.pop("broken.onnx")
    assert broken["ok"] is False
    for a in broken["artifacts"]:
        assert a["verified"] is False
        for v in a["verification"]:
            assert v["not_verified"].startswith(
                "not verified: the original model fails on synthesized inputs"
            )
            assert "give --inputs or --fix-dim" in v["not_verified"]
            assert 3 <= len(v["input_attempts"]) <= 12
    for name, m in models.items():
        assert m["ok"] and all(a["verified"] for a in m["artifacts"]), name
        for a in m["artifacts"]:
            assert Path(a["path"]).is_file()
    assert (out / "required_operators.config").is_file()
    json.dumps(doc)  # one JSON document
