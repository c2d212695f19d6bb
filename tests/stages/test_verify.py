"""verify: the contract's tolerances, exit codes, and unloadable candidates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models import conv_bn_relu, dynamic_cnn, qdq_cnn, save
from ortprep.core.runtime import SessionRecipe, create_session
from ortprep.stages.verify import compare_arrays
from real_shape_models import loop_decoder


def test_float_tolerance_is_atol_plus_rtol():
    ref = np.array([1.0, 100.0], np.float32)
    assert compare_arrays("y", ref, ref + np.float32(1e-4)).passed
    assert not compare_arrays("y", ref, ref + np.array([0, 0.2], np.float32)).passed


def test_nan_and_inf_must_match():
    ref = np.array([np.nan, np.inf, 1.0], np.float32)
    assert compare_arrays("y", ref, ref.copy()).passed
    assert not compare_arrays("y", ref, np.array([0.0, np.inf, 1.0], np.float32)).passed
    assert not compare_arrays("y", ref, np.array([np.nan, -np.inf, 1.0], np.float32)).passed


def test_integers_may_differ_by_one():
    ref = np.array([10, 20], np.uint8)
    assert compare_arrays("q", ref, np.array([11, 19], np.uint8)).passed
    result = compare_arrays("q", ref, np.array([12, 20], np.uint8))
    assert not result.passed and result.mismatches == 1


def test_dequantized_output_may_differ_by_one_step():
    ref = np.array([0.5, 0.25], np.float32)
    step = 1 / 255
    assert compare_arrays("p", ref, ref + np.float32(step), step=step).passed
    assert not compare_arrays("p", ref, ref + np.float32(3 * step), step=step).passed


def test_shape_mismatch_fails():
    result = compare_arrays("y", np.zeros((1, 4)), np.zeros((1, 5)))
    assert not result.passed and "shape" in result.note


def test_verify_onnx_against_its_ort_passes(cli, tmp_path):
    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    dst = tmp_path / "cnn.ort"
    create_session(src, SessionRecipe(level="all", save_to=dst, save_format="ORT"))
    r = cli("verify", src, dst, "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["passed"] is True and doc["outputs"][0]["name"] == "probs"


def test_verify_different_models_exit_1(cli, tmp_path):
    a = save(conv_bn_relu(seed=0), tmp_path / "a.onnx")
    b = save(conv_bn_relu(seed=1), tmp_path / "b.onnx")
    r = cli("verify", a, b)
    assert r.code == 1
    assert "outputs differ" in r.stdout


def test_verify_uses_fix_dim_and_inputs_file(cli, tmp_path):
    src = save(dynamic_cnn(), tmp_path / "dyn.onnx")
    r = cli("verify", src, src, "--fix-dim", "H=16", "--fix-dim", "W=24", "--json")
    assert r.json()["input_shapes"]["x"] == [1, 3, 16, 24]
    npz = tmp_path / "in.npz"
    np.savez(npz, x=np.ones((2, 3, 8, 8), np.float32))
    r = cli("verify", src, src, "--inputs", npz, "--json")
    assert r.code == 0 and r.json()["input_shapes"]["x"] == [2, 3, 8, 8]
    np.savez(npz, y=np.ones((1,), np.float32))
    assert cli("verify", src, src, "--inputs", npz).code == 2


def test_unloadable_custom_op_library_is_exit_2(cli, tmp_path):
    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    lib = tmp_path / "libnot.so"
    lib.write_bytes(b"not a shared library")
    r = cli("convert", src, "-o", tmp_path / "out", "--custom-op-library", lib)
    assert r.code == 2
    assert "cannot load the custom op library" in r.stderr


@pytest.mark.parametrize("missing", ["a", "b"])
def test_verify_missing_file_is_exit_2(cli, tmp_path, missing):
    src = save(conv_bn_relu(), tmp_path / "a.onnx")
    absent = tmp_path / "absent.onnx"
    args = (src, absent) if missing == "b" else (absent, src)
    assert cli("verify", *args).code == 2


def _perturbed_float_reference(ref, delta: float):
    """The same reference with its float outputs moved by ``delta``: what the float graph would
    give if it computed differently from the optimized one."""
    import dataclasses

    moved = {k: v + np.float32(delta) for k, v in ref.found.outputs.items()}
    return dataclasses.replace(ref, found=dataclasses.replace(ref.found, outputs=moved))


def test_a_float_model_fails_when_the_float_reference_is_off(tmp_path):
    from ortprep.core.inputs import open_model
    from ortprep.stages.verify import RefConfig, make_reference

    src = save(conv_bn_relu(), tmp_path / "cnn.onnx")
    ref = make_reference(src, open_model(src), None, {})
    assert not ref.quantized
    config = RefConfig("all", "arm")
    good = ref.check(src, SessionRecipe(level="all"), config=config)
    assert good.passed and good.float_reference is not None and good.float_reference.ok
    off = _perturbed_float_reference(ref, 0.5).check(src, SessionRecipe(level="all"), config=config)
    assert all(o.passed for o in off.outputs)  # like with like still matches
    assert off.float_reference is not None and not off.float_reference.ok
    assert not off.float_reference.informative and not off.passed
    assert off.why_failed.startswith("vs float reference (optimizations disabled): max abs 0.5")


def test_a_quantized_model_keeps_the_float_figure_as_information(tmp_path):
    from ortprep.core.inputs import open_model
    from ortprep.stages.verify import RefConfig, make_reference

    src = save(qdq_cnn(), tmp_path / "qdq.onnx")
    ref = make_reference(src, open_model(src), None, {})
    assert ref.quantized
    off = _perturbed_float_reference(ref, 0.5).check(
        src, SessionRecipe(level="all"), config=RefConfig("all", "arm")
    )
    assert off.passed and off.float_reference is not None
    assert off.float_reference.informative and not off.float_reference.ok
    assert off.float_reference.text.startswith("int8 kernels vs float reference: max abs 0.5")
    assert off.to_dict()["float_reference"]["informative"] is True


def test_verify_a_quantized_model_against_itself_compares_int8_kernels(cli, tmp_path):
    src = save(qdq_cnn(), tmp_path / "qdq.onnx")
    r = cli("verify", src, src, "--json")
    assert r.code == 0, r.stdout
    doc = r.json()
    assert all(o["max_abs"] == 0 for o in doc["outputs"])
    assert doc["float_reference"]["max_abs"] > 0  # the float graph rounds differently
    assert "int8 kernels vs float reference: max abs" in cli("verify", src, src).stdout


@pytest.mark.parametrize(
    ("build", "levels", "replayed"),
    [
        (qdq_cnn, ["all", "basic", "disable", "extended"], "extended"),
        # no runtime optimization records: replay changes nothing, level 1 serves both sessions
        (loop_decoder, ["all", "basic", "disable"], "basic"),
    ],
)
def test_each_reference_runs_once_per_configuration(tmp_path, monkeypatch, build, levels, replayed):
    """convert, both styles: the original runs once per configuration besides the float one
    (Fixed: all; Runtime: basic without replay, extended with replay when it has records)."""
    from ortprep.core.inputs import ModelInput
    from ortprep.stages import convert, verify

    src = save(build(), tmp_path / "m.onnx")
    made: list[str] = []
    real = verify.create_session

    def counting(path, recipe):
        if path == src:
            made.append(recipe.level)
        return real(path, recipe)

    monkeypatch.setattr(verify, "create_session", counting)
    result = convert.run(
        [ModelInput(src, Path("m.onnx"))], tmp_path / "out", convert.ConvertOptions()
    )
    assert result.ok
    assert sorted(made) == levels
    runtime = next(a for a in result.models[0].artifacts if a.style == "runtime")
    configs = [v.reference_config.split(" for ")[0] for v in runtime.verification]
    assert configs == ["original at level basic", f"original at level {replayed}"]


def test_a_model_that_runs_on_nothing_is_not_verified_exit_1(cli, tmp_path):
    from failing_models import never_runs

    src = save(never_runs(), tmp_path / "never.onnx")
    r = cli("verify", src, src, "--json")
    assert r.code == 1
    doc = r.json()
    assert doc["passed"] is False and doc["outputs"] == []
    assert doc["not_verified"].startswith("not verified: the original model fails on synthesized")
    assert len(doc["input_attempts"]) >= 3
    npz = tmp_path / "in.npz"
    np.savez(npz, x=np.ones((2, 3), np.float32))
    r = cli("verify", src, src, "--inputs", npz, "--json")
    assert r.code == 1
    assert r.json()["not_verified"].startswith(
        "not verified: the original model fails on the inputs of in.npz"
    )


def test_verify_picks_the_reference_a_runtime_ort_stands_for(cli, tmp_path):
    """A Runtime-style .ort is not optimized again at load: without replay it runs its level-1
    graph (reference at basic), with replay the recorded int8 fusions (reference at extended)."""
    from ortprep.stages.ort_artifacts import ort_recipe, write_with_ort

    src = save(qdq_cnn(), tmp_path / "qdq.onnx")
    runtime = tmp_path / "qdq.with_runtime_opt.ort"
    write_with_ort(src, runtime, ort_recipe("runtime", "all", "arm"))
    plain = cli("verify", src, runtime, "--json").json()
    replayed = cli("verify", src, runtime, "--replay-runtime-optimizations", "--json").json()
    assert plain["reference_config"].startswith("original at level basic")
    assert replayed["reference_config"].startswith("original at level extended")
    for doc in (plain, replayed):
        assert doc["passed"] and all(o["max_abs"] == 0 for o in doc["outputs"])
    assert plain["float_reference"]["max_abs"] == 0  # level 1 keeps the float QDQ graph
    assert replayed["float_reference"]["max_abs"] > 0  # int8 kernels


def _detector_with(imgsz: str) -> object:
    from real_shape_models import dynamic_detector

    model = dynamic_detector()
    model.metadata_props.add(key="imgsz", value=imgsz)
    return model


def test_verify_runs_a_detector_at_the_size_its_metadata_gives(cli, tmp_path):
    """Ultralytics' imgsz=[320, 320] on image [batch, 3, height, width]: the first inputs tried
    are 320×320 (the model's own size, stages/fix_values.py), not the generic 32×32."""
    src = save(_detector_with("[320, 320]"), tmp_path / "det.onnx")
    r = cli("verify", src, src, "--json")
    assert r.code == 0, r.stdout + r.stderr
    doc = r.json()
    assert doc["input_shapes"] == {"image": [1, 3, 320, 320]}
    assert doc["input_attempts"] == []
    # the user's size still wins over the model's
    mine = cli("verify", src, src, "--fix-dim", "height=64", "--json").json()
    assert mine["input_shapes"] == {"image": [1, 3, 64, 320]}


def test_a_metadata_size_past_the_input_bound_falls_back_to_the_defaults(cli, tmp_path):
    """3×16384×16384 floats are 3 GiB, past the 256 MiB bound: not tried, the defaults run."""
    src = save(_detector_with("[16384, 16384]"), tmp_path / "huge.onnx")
    doc = cli("verify", src, src, "--json").json()
    assert doc["passed"] is True
    assert doc["input_shapes"] == {"image": [1, 3, 32, 32]}
    assert doc["input_attempts"] == []


def test_when_the_models_own_size_fails_the_defaults_follow(cli, tmp_path):
    """30×30 halves to 15 then 8; upsampled to 16 it cannot be added to the 15×15 map: the
    first attempt (the metadata's size) fails and is said, the default 32×32 then runs."""
    src = save(_detector_with("[30, 30]"), tmp_path / "odd.onnx")
    doc = cli("verify", src, src, "--json").json()
    assert doc["passed"] is True
    assert doc["input_shapes"] == {"image": [1, 3, 32, 32]}
    (first,) = doc["input_attempts"]
    assert first.startswith("image [1, 3, 30, 30] float32 normal(0, 1): ")
