"""Big models: external data through convert, optimize and prepare; the ORT format's size limit.

The models here are small: external data is the same path at any size, and the limit is tested
by lowering it (``ort_artifacts.ORT_FORMAT_LIMIT``), never with a 2 GB model. Figures for the
440 MB transformer are the benchmark's (benchmarks/bench_convert.py --folder transformer).
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from models import conv_bn_relu, external_data, save
from ortprep.stages import ort_artifacts


def _locations(path: Path) -> set[str]:
    """The external data files an ONNX file's tensors name."""
    proto = onnx.load(str(path), load_external_data=False)
    return {
        e.value
        for t in proto.graph.initializer
        for e in t.external_data
        if t.data_location == onnx.TensorProto.EXTERNAL and e.key == "location"
    }


def test_convert_keeps_external_data_apart_and_verifies_every_file(cli, tmp_path, hashes):
    src = external_data(tmp_path / "in")
    before = hashes(tmp_path / "in")
    out = tmp_path / "out"
    r = cli(
        "convert",
        src,
        "-o",
        out,
        "--style",
        "both",
        "--type-reduction",
        "--save-optimized-onnx",
        "--json",
    )
    assert r.code == 0, r.stderr
    (model,) = r.json()["models"]
    kinds = sorted((a["kind"], a["style"]) for a in model["artifacts"])
    assert kinds == [
        ("optimized-onnx", "fixed"),
        ("optimized-onnx", "runtime"),
        ("ort", "fixed"),
        ("ort", "runtime"),
    ]
    for a in model["artifacts"]:
        assert a["verified"] is True, a
        if a["kind"] == "optimized-onnx":
            # its weights in a file of its own in OUT, never the input's weights.bin
            data = Path(a["external_data_file"])
            assert data.parent == out and data.name == Path(a["path"]).name + ".data"
            assert _locations(Path(a["path"])) == {data.name}
            assert a["size_bytes"] == Path(a["path"]).stat().st_size + data.stat().st_size
        else:  # the ORT format holds every weight inline
            assert a["external_data_file"] is None
    assert not (out / "weights.bin").exists()
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".config") == [
        "ext.required_operators_and_types.config",
        "ext.required_operators_and_types.with_runtime_opt.config",
    ]
    assert hashes(tmp_path / "in") == before


def test_optimize_writes_external_data_for_an_external_data_model(cli, tmp_path, hashes):
    src = external_data(tmp_path / "in")
    before = hashes(tmp_path / "in")
    r = cli("optimize", src, "-o", tmp_path / "out", "--level", "every", "--json")
    assert r.code == 0, r.stderr
    for level in r.json()["levels"]:
        saved = Path(level["file"])
        assert level["verified"] is True
        assert _locations(saved) == {saved.name + ".data"}
        assert Path(level["external_data_file"]).is_file()
    assert hashes(tmp_path / "in") == before


def test_prepare_takes_an_external_data_model(cli, tmp_path, hashes):
    src = external_data(tmp_path / "in")
    before = hashes(tmp_path / "in")
    out = tmp_path / "out"
    r = cli("prepare", src, "-o", out, "--target", "linux-arm", "--json")
    assert r.code == 0, r.stderr
    doc = json.loads((out / "manifest.json").read_text())
    (model,) = doc["models"]
    ort_files = [a for a in model["artifacts"] if a["kind"] == "ort"]
    assert len(ort_files) == 2 and all(a["verified"] is True for a in ort_files)
    assert hashes(tmp_path / "in") == before


@pytest.fixture
def limit_between(monkeypatch):
    """Lower the ORT format's limit to a size between two models' (the check reads it at call
    time), as if the bigger one were over 2 GiB."""

    def lower(small: Path, big: Path) -> int:
        small_size = small.stat().st_size
        big_size = big.stat().st_size + sum(
            (big.parent / name).stat().st_size for name in _locations(big)
        )
        assert small_size < big_size
        limit = (small_size + big_size) // 2
        monkeypatch.setattr(ort_artifacts, "ORT_FORMAT_LIMIT", limit)
        return limit

    return lower


def test_a_model_over_the_ort_format_limit_fails_in_one_line_and_the_others_convert(
    cli, tmp_path, limit_between
):
    src = tmp_path / "in"
    small = save(conv_bn_relu(channels=4, size=8), src / "small.onnx")
    big = external_data(src, name="big.onnx")
    limit = limit_between(small, big)
    out = tmp_path / "out"
    r = cli("convert", src, "-o", out, "--style", "both", "--json")
    assert r.code == 1
    by_name = {Path(m["input"]).name: m for m in r.json()["models"]}
    assert by_name["small.onnx"]["ok"] is True
    error = by_name["big.onnx"]["error"]
    assert "\n" not in error
    assert "cannot be saved in the ORT format" in error
    assert f"at most {limit:,} bytes" in error
    assert "external data" in by_name["big.onnx"]["hint"]
    written = sorted(p.name for p in out.iterdir())
    assert "small.ort" in written and "small.with_runtime_opt.ort" in written
    assert not [n for n in written if n.startswith("big")]
    assert (out / "required_operators.config").is_file()


def test_a_single_model_over_the_limit_is_exit_1_not_bad_input(cli, tmp_path, limit_between):
    small = save(conv_bn_relu(channels=4, size=8), tmp_path / "small.onnx")
    big = external_data(tmp_path / "in", name="big.onnx")
    limit_between(small, big)
    r = cli("convert", big, "-o", tmp_path / "out", "--json")
    assert r.code == 1, r.stderr
    (model,) = r.json()["models"]
    assert model["ok"] is False and "cannot be saved in the ORT format" in model["error"]
    human = cli("convert", big, "-o", tmp_path / "out2")
    assert human.code == 1
    assert "cannot be saved in the ORT format" in human.stdout + human.stderr
    assert "Traceback" not in human.stdout + human.stderr


def test_prepare_reports_a_model_over_the_limit_and_prepares_the_others(
    cli, tmp_path, limit_between
):
    src = tmp_path / "in"
    small = save(conv_bn_relu(channels=4, size=8), src / "small.onnx")
    big = external_data(src, name="big.onnx")
    limit_between(small, big)
    out = tmp_path / "out"
    r = cli("prepare", src, "-o", out, "--target", "linux-arm", "--no-bench")
    assert r.code == 1, r.stderr
    doc = json.loads((out / "manifest.json").read_text())
    by_name = {Path(m["input"]).name: m for m in doc["models"]}
    assert "cannot be saved in the ORT format" in by_name["big.onnx"]["error"]
    assert (out / "small.ort").is_file()


def test_the_sessions_of_big_models_never_overlap(tmp_path, monkeypatch):
    """Over _ALONE_BYTES a model has ORT to itself: its saves, its reference and its checks run
    one after another, and no other model's session runs beside them (here every model counts
    as big); the folder still converts and verifies completely."""
    import threading
    import time

    from ortprep.core.inputs import ModelInput
    from ortprep.stages import convert, verify

    monkeypatch.setattr(convert, "_ALONE_BYTES", 0)
    active, most, lock = [0], [0], threading.Lock()

    def counted(create):
        def create_session(*args, **kwargs):
            with lock:
                active[0] += 1
                most[0] = max(most[0], active[0])
            try:
                time.sleep(0.01)  # widen the window an overlap would show in
                return create(*args, **kwargs)
            finally:
                with lock:
                    active[0] -= 1

        return create_session

    monkeypatch.setattr(ort_artifacts, "create_session", counted(ort_artifacts.create_session))
    monkeypatch.setattr(verify, "create_session", counted(verify.create_session))
    src = tmp_path / "in"
    items = [
        ModelInput(
            save(conv_bn_relu(seed=i, channels=4, size=8), src / f"m{i}.onnx"), Path(f"m{i}.onnx")
        )
        for i in range(3)
    ]
    result = convert.run(items, tmp_path / "out", convert.ConvertOptions())
    assert result.ok, result.to_dict()
    assert all(a.verified for m in result.models for a in m.artifacts)
    assert most[0] == 1


def test_a_big_onnx_is_saved_from_its_lean_scan_into_the_same_ort_file(tmp_path, monkeypatch):
    """ORT saves a big .onnx from the lean scan (weights mapped from the user's file): the .ort
    holds the same graph and the same weight values, all inline."""
    import numpy as np

    from ortprep.core import onnx_file
    from ortprep.core.ort import read_ort
    from ortprep.core.runtime import EXTERNAL_FOLDER, lean_source

    src = save(conv_bn_relu(channels=32), tmp_path / "cnn.onnx")  # 36 KB weights per conv
    recipe = ort_artifacts.ort_recipe("fixed", "all", "arm")
    ort_artifacts.write_with_ort(src, tmp_path / "path.ort", recipe)
    monkeypatch.setattr(onnx_file, "LEAN_FROM_BYTES", 0)  # "big": scanned
    source, lean_recipe = lean_source(src, recipe)
    assert isinstance(source, bytes) and len(source) < src.stat().st_size // 4
    assert lean_recipe.config_entries()[EXTERNAL_FOLDER] == str(src.parent.resolve())
    ort_artifacts.write_with_ort(src, tmp_path / "lean.ort", recipe)
    a, b = read_ort(tmp_path / "path.ort"), read_ort(tmp_path / "lean.ort")
    nodes = [sorted((n.op_type, n.inputs, n.outputs) for _, n in m.all_nodes()) for m in (a, b)]
    assert nodes[0] == nodes[1] and nodes[0]
    assert a.graph.initializers.keys() == b.graph.initializers.keys()
    for name, t in b.graph.initializers.items():
        assert t.external_file is None
        assert np.array_equal(t.numpy(), a.graph.initializers[name].numpy()), name
