"""The command contract: fast import, help, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_importing_the_cli_loads_no_heavy_modules():
    code = (
        "import sys, ortprep.cli\n"
        "heavy = [m for m in ('onnx', 'onnxruntime', 'numpy', 'jinja2') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_lists_the_commands(cli):
    r = cli("--help")
    assert r.code == 0
    for command in ("convert", "inspect", "verify"):
        assert command in r.stdout


def test_python_dash_m_runs_the_cli():
    out = subprocess.run(
        [sys.executable, "-m", "ortprep", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert out.stdout.startswith("ortprep ")


def test_missing_path_is_exit_2_with_one_line(cli, tmp_path):
    r = cli("inspect", tmp_path / "nope.onnx")
    assert r.code == 2
    assert r.stderr.startswith("error: ")
    assert "no such file" in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2


def test_path_and_example_together_is_a_usage_error(cli, tmp_path):
    r = cli("inspect", tmp_path, "--example")
    assert r.code == 2
    assert "not both" in r.stderr


def test_unknown_option_is_exit_2(cli):
    assert cli("inspect", "--no-such-option").code == 2


def test_internal_error_is_exit_3_without_traceback(cli, monkeypatch):
    from ortprep.stages import inspect as stage

    def boom(path):
        raise RuntimeError("something broke inside")

    monkeypatch.setattr(stage, "run", boom)
    r = cli("inspect", "--example")
    assert r.code == 3
    assert r.stderr.startswith("internal error: RuntimeError: something broke inside")
    assert "--debug" in r.stderr
    assert "Traceback" not in r.stderr


def test_debug_shows_the_traceback(cli, monkeypatch):
    from ortprep.stages import inspect as stage

    monkeypatch.setattr(stage, "run", lambda path: 1 / 0)
    r = cli("inspect", "--example", "--debug")
    assert r.code == 3
    assert "Traceback" in r.stderr


@pytest.mark.parametrize("value", ["N", "N=", "=3", "N=0", "N=x"])
def test_bad_fix_dim_is_a_usage_error(value):
    from ortprep.cli.common import parse_fix_dims
    from ortprep.core.errors import UsageError

    with pytest.raises(UsageError):
        parse_fix_dims([value])


def test_fix_dim_parses():
    from ortprep.cli.common import parse_fix_dims

    assert parse_fix_dims(["N=1", "H=224"]) == {"N": 1, "H": 224}
