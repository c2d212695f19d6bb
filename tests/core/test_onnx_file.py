"""Opening .onnx files: validation, external data, bad inputs get a clear exit-2 error."""

from __future__ import annotations

import os

import onnx
import pytest

from models import bad_inputs, conv_bn_relu, external_data, save
from ortprep.core.errors import BadModelError
from ortprep.core.inputs import open_model, resolve_inputs


def test_external_data_is_checked_not_loaded(tmp_path):
    path = external_data(tmp_path)
    model = open_model(path)
    assert model.external_data_files == ("weights.bin",)
    init = model.graph.initializers["w"]
    assert init.external_file == "weights.bin"
    assert init.nbytes == 128 * 128 * 4
    # values come on demand, from the external file
    assert init.numpy().shape == (128, 128)


@pytest.mark.parametrize(
    "kind",
    [
        "empty.onnx",
        "random.onnx",
        "truncated.onnx",
        "text.onnx",
        "missing_external",
        "escaping_external",
    ],
)
def test_bad_input_raises_a_one_line_error(tmp_path, kind):
    path, expect = bad_inputs(tmp_path)[kind]
    with pytest.raises(BadModelError) as info:
        open_model(path)
    message = info.value.message
    assert expect in message
    assert "\n" not in message
    assert str(path) in message


def test_model_over_protobuf_limit_is_refused_before_parsing(tmp_path):
    path = tmp_path / "huge.onnx"
    with path.open("wb") as f:  # sparse file: no disk used, no parse attempted
        f.truncate(2**31 + 10)
    with pytest.raises(BadModelError, match="2 GiB limit"):
        open_model(path)


def test_opset_newer_than_installed_onnx_is_refused(tmp_path):
    m = conv_bn_relu()
    m.opset_import[0].version = onnx.defs.onnx_opset_version() + 5
    path = tmp_path / "future.onnx"
    path.write_bytes(m.SerializeToString())
    with pytest.raises(BadModelError, match="newer than the installed onnx"):
        open_model(path)


def test_ort_file_named_onnx_is_recognised(tmp_path):
    path = tmp_path / "x.onnx"
    path.write_bytes(b"\x10\x00\x00\x00ORTM" + b"\x00" * 64)
    with pytest.raises(BadModelError, match="ORT"):
        open_model(path)


def test_folder_input_is_recursive_and_skips_optimized(tmp_path):
    save(conv_bn_relu(), tmp_path / "a.onnx")
    save(conv_bn_relu(), tmp_path / "sub" / "b.onnx")
    save(conv_bn_relu(), tmp_path / "sub" / "b.optimized.onnx")
    (tmp_path / "notes.txt").write_text("x")
    found = resolve_inputs(tmp_path)
    assert [str(m.relative) for m in found] == ["a.onnx", os.path.join("sub", "b.onnx")]


def test_folder_without_models_is_a_usage_error(tmp_path):
    from ortprep.core.errors import UsageError

    with pytest.raises(UsageError, match="no models"):
        resolve_inputs(tmp_path)
