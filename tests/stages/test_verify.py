"""verify: the contract's tolerances, exit codes, and unloadable candidates."""

from __future__ import annotations

import numpy as np
import pytest

from models import conv_bn_relu, dynamic_cnn, save
from ortprep.core.runtime import SessionRecipe, create_session
from ortprep.stages.verify import compare_arrays


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
