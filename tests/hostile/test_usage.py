"""Options and paths checked at the boundary: exit 2 with one line, before any work."""

from __future__ import annotations

import errno
import os
import pathlib

import numpy as np
import pytest

from . import corpus
from .conftest import assert_clean_failure, assert_nothing_left


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return corpus.good(tmp_path_factory.mktemp("good"))


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("verify", "{m}", "{m}", "--rtol", "nan"), "--rtol nan"),
        (("verify", "{m}", "{m}", "--atol", "nan"), "--atol nan"),
        (("verify", "{m}", "{m}", "--rtol", "-1"), "--rtol -1"),
        (("verify", "{m}", "{m}", "--atol", "inf"), "--atol inf"),
        (("check", "{m}", "--android-api", "0"), "from 21 to 36"),
        (("check", "{m}", "--android-api", "-5"), "from 21 to 36"),
        (("check", "{m}", "--android-api", "99999"), "from 21 to 36"),
        (("check", "{m}", "--coreml-version", "0"), "from 1 to 9"),
        (("check", "{m}", "--coreml-version", "999"), "from 1 to 9"),
        (("bench", "{m}", "--threads", "100000"), "--threads 100000"),
        (("bench", "{m}", "--threads", "-1"), "--threads -1"),
        (("prepare", "{m}", "-o", "{out}", "--workers", "100000"), "--workers 100000"),
        (("prepare", "{m}", "-o", "{out}", "--workers", "0"), "--workers 0"),
        (("convert", "{m}", "-o", "{out}", "--fix-dim", "Q=1"), "no input has a dimension named"),
        (("convert", "{m}", "-o", "{out}", "--fix-dim", "N=1e20"), "--fix-dim"),
        (("convert", "{m}", "-o", "{out}", "--fix-dim", "N=99999999999999999999"), "between 1"),
        (("check", "{m}", "--fix-dim", "N=²"), "positive integer"),
        (("bench", "{m}", "--fix-dim", "N=2000000000"), "GiB"),
    ],
)
def test_bad_option_is_exit_2(cli, good, tmp_path, unchanged, args, fragment):
    out = tmp_path / "out"
    with unchanged(good.parent):
        r = cli(*(a.format(m=good, out=out) for a in args))
    assert_clean_failure(r, 2, fragment)
    assert_nothing_left(out)


def test_threads_within_the_bound_are_taken(cli, good):
    r = cli("bench", good, "--threads", str(os.cpu_count() or 1), "--runs", "1", "--warmup", "0")
    assert r.code == 0, r.stderr


# --------------------------------------------------------------------------- -o


def _outs(tmp_path, good):
    afile = tmp_path / "afile"
    afile.write_text("x")
    return {
        "an existing file": (afile, "is a file"),
        "a path under a file": (afile / "sub", "is a file"),
        "/dev/null": (pathlib.Path("/dev/null"), "is a file"),
        "the input itself": (good, "one of the inputs"),
        "the input's folder": (good.parent, "one of the inputs"),
    }


@pytest.mark.parametrize("command", ["convert", "optimize", "prepare"])
@pytest.mark.parametrize(
    "which",
    ["an existing file", "a path under a file", "/dev/null", "the input itself"],
)
def test_bad_output_folder_is_refused_first(
    cli, good, tmp_path, unchanged, monkeypatch, command, which
):
    out, fragment = _outs(tmp_path, good)[which]
    if which == "the input itself":
        out, fragment = good.parent, "one of the inputs"
        model = good.parent
    else:
        model = good
    # before any work: the conversion must not even start
    from ortprep.core import inputs

    monkeypatch.setattr(inputs, "open_model", lambda p: pytest.fail("work started"))
    with unchanged(good.parent):
        r = cli(command, model, "-o", out)
    assert_clean_failure(r, 2, fragment)


def test_read_only_output_folder_is_refused(cli, good, tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if pathlib.Path(p) == ro else real(p, mode)
    )
    r = cli("convert", good, "-o", ro / "out")
    assert_clean_failure(r, 2, "not writable")
    assert not (ro / "out").exists()


@pytest.mark.parametrize("out", ["/dev/null", "{folder}", "{good}"])
def test_bad_output_file_is_refused(cli, good, tmp_path, out):
    target = out.format(folder=tmp_path, good=good)
    r = cli("fix-shapes", good, "-o", target, "--fix-dim", "N=1")
    assert_clean_failure(r, 2)
    r = cli("config", "merge", good, "-o", target)
    assert_clean_failure(r, 2)


# --------------------------------------------------------------------------- odd PATHs


def test_proc_self_mem_is_a_bad_model(cli):
    r = cli("inspect", "/proc/self/mem")
    assert_clean_failure(r, 2, "cannot read")


@pytest.mark.parametrize("command", ["inspect", "check", "convert"])
def test_fifo_is_not_a_folder(cli, tmp_path, command):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    args = (command, fifo) + (("-o", tmp_path / "out") if command == "convert" else ())
    r = cli(*args)
    assert_clean_failure(r, 2, "not a file or folder")
    assert "no models" not in r.stderr


def test_full_disk_during_config_merge(cli, good, tmp_path, monkeypatch):
    r = cli("config", "build", good, "-o", tmp_path / "a.config")
    assert r.code == 0, r.stderr

    def full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pathlib.Path, "write_bytes", full)
    r = cli("config", "merge", tmp_path / "a.config", "-o", tmp_path / "merged.config")
    assert_clean_failure(r, 2, "No space left on device")
    assert "custom-op" not in r.stderr
    assert not list(tmp_path.glob(".merged.config.*")) and not (tmp_path / "merged.config").exists()


# --------------------------------------------------------------------------- --inputs


def _declared_only(path, name, shape, dtype):
    """An .npz whose member's header declares ``shape`` but holds 16 bytes of data."""
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{name}.npy", header.getvalue() + bytes(16))
    return path


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("arrays", "fragment"),
    [
        ({"x": np.zeros((1, 4), np.int64)}, "int64"),
        ({"x": np.zeros((1, 5), np.float32)}, "dimension 1 must be 4"),
        ({"x": np.float32(1.0)}, "rank 0"),
        ({"y": np.zeros((1, 4), np.float32)}, "no array for input"),
        ({"x": ((1 << 28, 4), np.float32)}, "4.0 GiB"),
        ({"x": ((1 << 25, 4), np.float32)}, "512 MiB"),  # the 0.5 MB file
    ],
    ids=["dtype", "shape", "rank-0", "missing", "huge", "512MiB"],
)
@pytest.mark.parametrize("command", ["convert", "verify", "bench"])
def test_bad_inputs_file_is_exit_2_and_writes_nothing(
    cli, good, tmp_path, unchanged, command, arrays, fragment
):
    if isinstance(arrays.get("x"), tuple):  # a header declaring a big array over a few bytes
        npz = _declared_only(tmp_path / "in.npz", "x", *arrays["x"])
    else:
        npz = _npz(tmp_path / "in.npz", **arrays)
    out = tmp_path / "out"
    args = {
        "convert": ("convert", good, "-o", out),
        "verify": ("verify", good, good),
        "bench": ("bench", good, "--runs", "1", "--warmup", "0"),
    }[command]
    with unchanged(good.parent):
        r = cli(*args, "--inputs", npz)
    assert_clean_failure(r, 2, fragment)
    assert_nothing_left(out)


def test_a_npy_file_is_not_an_npz(cli, good, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 4), np.float32))
    r = cli("verify", good, good, "--inputs", tmp_path / "x.npy")
    assert_clean_failure(r, 2, "single .npy array")


# --------------------------------------------------------------------------- verification


@pytest.mark.parametrize("case", ["no_outputs", "rank_1000"])
@pytest.mark.parametrize("command", ["convert", "optimize", "verify", "bench"])
def test_models_that_cannot_be_run_are_exit_2(cli, tmp_path, unchanged, case, command):
    model = getattr(corpus, case)(tmp_path / "m")
    out = tmp_path / "out"
    args = {
        "convert": ("convert", model, "-o", out),
        "optimize": ("optimize", model, "-o", out, "--level", "basic"),
        "verify": ("verify", model, model),
        "bench": ("bench", model, "--runs", "1", "--warmup", "0"),
    }[command]
    with unchanged(model.parent):
        r = cli(*args)
    assert_clean_failure(r, 2, "no outputs" if case == "no_outputs" else "rank 1000")


LONG = "a" * 300  # over every common file system's name limit (255)


@pytest.mark.parametrize(
    "args",
    [
        ("inspect", LONG),
        ("check", "{d}/" + LONG + ".onnx"),
        ("convert", "{m}", "-o", "{d}/" + LONG),
        ("convert", "{m}", "-o", "{d}/out", "--custom-op-library", LONG),
        ("fix-shapes", "{m}", "-o", "{d}/" + LONG + ".onnx", "--fix-dim", "N=1"),
        ("verify", "{m}", "{m}", "--inputs", LONG + ".npz"),
        ("bench", LONG),
    ],
    ids=[
        "inspect",
        "check",
        "convert-o",
        "custom-op-library",
        "fix-shapes-o",
        "verify-inputs",
        "bench",
    ],
)
def test_a_path_over_the_os_limit_is_exit_2(cli, good, tmp_path, args):
    r = cli(*(a.format(m=good, d=tmp_path) for a in args))
    assert_clean_failure(r, 2)


def test_an_atomic_write_never_replaces_a_device_or_pipe(tmp_path):
    """A rename onto /dev/null would put a regular file in its place (as root, for everyone); a
    FIFO stands in for the device here."""
    from ortprep.core.errors import OutputError
    from ortprep.core.files import write_text

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="not a regular file"):
        write_text(fifo, "x")
    assert fifo.is_fifo() and [p.name for p in tmp_path.iterdir()] == ["pipe"]


@pytest.mark.parametrize("option", ["--annotate", "--model-explorer"])
def test_check_overlay_outputs_are_checked_first(cli, good, tmp_path, option):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    r = cli("check", good, option, fifo)
    assert_clean_failure(r, 2, option)
    assert fifo.is_fifo()
