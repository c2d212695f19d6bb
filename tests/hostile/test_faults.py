"""Faults: a killed run, a killed parent, a batch with bad models, ORT's own words."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from models import conv_bn_relu, relu_chain, save, unknown_op

from . import corpus
from .conftest import ESC, assert_clean_failure

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def _ortprep(*args: object, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ortprep", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
        **kw,
    )


def _temps(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    for i in range(3):
        save(conv_bn_relu(seed=i), root / f"m{i}.onnx")
    save(relu_chain(400), root / "sub" / "chain.onnx")
    return root


def _loads(path: Path) -> None:
    import onnxruntime as ort

    ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("command", ["convert", "prepare"])
def test_kill_9_then_rerun_leaves_no_temporaries(folder, tmp_path, command):
    out = tmp_path / "out"
    proc = _ortprep(command, folder, "-o", out)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if _temps(out) if out.exists() else False:
            break  # a file is being written: kill now
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # a killed run of an earlier time, as well: its temporary for a name the rerun writes
    (out / "sub").mkdir(parents=True, exist_ok=True)
    planted = out / "sub" / f".chain.ort.{_dead_pid()}.abcd1234.tmp"
    planted.write_bytes(b"half a file")
    rerun = subprocess.run(
        [sys.executable, "-m", "ortprep", command, str(folder), "-o", str(out)],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert _temps(out) == []
    finals = sorted(out.rglob("*.ort"))
    assert len(finals) >= 8  # two styles for each of the four models
    for f in finals:
        _loads(f)


def test_a_live_runs_temporaries_are_left_alone(tmp_path):
    from ortprep.core.files import write_text

    live = tmp_path / f".a.config.{os.getppid()}.abcd1234.tmp"
    live.write_text("another run is writing this")
    other = tmp_path / ".a.config.notours.tmp"
    other.write_text("not ortprep's pattern")
    write_text(tmp_path / "a.config", "x\n")
    assert live.exists() and other.exists()


def test_killed_bench_parent_takes_its_child(tmp_path):
    model = corpus.good(tmp_path)
    proc = _ortprep("bench", model, "--runs", "100000000", "--warmup", "0")
    children: list[int] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not children:
        time.sleep(0.05)
        path = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        if not path.exists():
            pytest.skip("needs /proc (Linux)")
        children = [int(c) for c in path.read_text().split()]
    assert children, "bench started no child"
    time.sleep(0.5)  # the child is measuring
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{children[0]}").exists():
        status = Path(f"/proc/{children[0]}/status")
        if status.exists() and "zombie" in status.read_text():
            break
        time.sleep(0.05)
    alive = Path(f"/proc/{children[0]}/status")
    orphaned = alive.exists() and "zombie" not in alive.read_text()
    if orphaned:  # do not leave it measuring for ever
        os.kill(children[0], signal.SIGKILL)
    assert not orphaned


# --------------------------------------------------------------------------- batches


@pytest.mark.parametrize("command", ["convert", "optimize", "prepare"])
def test_bad_models_in_a_folder_fail_alone(cli, tmp_path, unchanged, command):
    root = tmp_path / "models"
    corpus.good(root)
    corpus.input_type_9999(root / "bad")
    corpus.evil_names(root / "evil")
    corpus.rank_1000(root / "rank")
    out = tmp_path / "out"
    args = (command, root, "-o", out) + (("--level", "basic") if command == "optimize" else ())
    with unchanged(root):
        r = cli(*args)
    assert r.code == 1, r.stderr
    assert ESC not in r.stdout + r.stderr and "Traceback" not in r.stderr
    written = {p.relative_to(out).parts[0] for p in out.rglob("*") if p.is_file()}
    assert "bad" not in written and "rank" not in written
    assert any(p.name.startswith("good.") for p in out.rglob("*"))


# --------------------------------------------------------------------------- ORT's words


def test_no_ort_log_lines_before_the_error(cli, tmp_path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    g = helper.make_graph(
        [helper.make_node("Reshape", ["x", "s"], ["y"], name="r\x1b[31m")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([5], np.int64), "s")],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path = tmp_path / "reshape.onnx"
    onnx.save(m, str(path))
    r = subprocess.run(
        [sys.executable, "-m", "ortprep", "verify", str(path), str(path)],
        capture_output=True,
        text=True,
        env=ENV,
    )
    # #11: a model that runs on no input tried is "not verified" (exit 1), said on stdout
    assert r.returncode == 1, r.stderr
    assert "not verified: the original model fails on synthesized inputs" in r.stdout
    for stream in (r.stdout, r.stderr):
        assert "[E:onnxruntime" not in stream and ESC not in stream


def test_custom_op_hint_only_for_unknown_ops(cli, tmp_path):
    model = save(unknown_op(), tmp_path / "custom.onnx")
    r = cli("convert", model, "-o", tmp_path / "out")
    assert_clean_failure(r, 2)
    assert "--custom-op-library" in r.stderr
    from ortprep.core.errors import ort_failure_hint

    assert "custom-op" not in ort_failure_hint("FAIL : No space left on device")
    assert "custom-op" not in ort_failure_hint("External data file weights.bin is too short")
    assert "custom-op" in ort_failure_hint("Fatal error: x:Op(-1) is not a registered function/op")
