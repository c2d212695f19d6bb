"""The README's Python example and GitHub Actions job, copied as written, work."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from models import conv_bn_relu, save

README = Path(__file__).resolve().parent.parent / "README.md"


def _block(heading: str, language: str) -> str:
    """The first ``language`` code block below the heading that starts with ``heading``."""
    text = README.read_text(encoding="utf-8")
    start = text.index(heading)
    match = re.compile(rf"```{language}\n(.*?)```", re.DOTALL).search(text, start)
    assert match is not None, f"no {language} block under {heading!r}"
    return match.group(1)


def test_readme_api_example_runs_as_written(tmp_path):
    code = _block("## Python API", "python")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(line.startswith("nnapi ") for line in lines)
    assert any(line.startswith("xnnpack ") for line in lines)
    # the bundled model has dynamic shapes: NNAPI says no, and the gate says why
    assert any(line.startswith("gate: nnapi: verdict no, required maybe") for line in lines)
    assert lines[-1].startswith("no-such-model.onnx: no such file")


def test_readme_github_actions_job_runs_as_written(cli, tmp_path, monkeypatch):
    job = _block("### CI gate", "yaml")
    assert len(job.strip().splitlines()) <= 12
    commands = [
        line.split("run:", 1)[1].strip()
        for line in job.splitlines()
        if line.strip().startswith("- run: ortprep ")
    ]
    assert len(commands) == 1
    args = shlex.split(commands[0])
    folder = tmp_path / "models"
    save(conv_bn_relu(), folder / "detector.onnx")
    save(conv_bn_relu(seed=3, channels=4), folder / "sub" / "classifier.onnx")
    monkeypatch.chdir(tmp_path)  # the job runs in the checked-out repository
    r = cli(*args[1:])
    assert r.code == 0, r.stderr
    assert (tmp_path / "ep-report" / "manifest.json").is_file()
    # and it fails the job when a model falls below
    (folder / "sub" / "classifier.onnx").unlink()
    from models import dynamic_cnn

    save(dynamic_cnn(), folder / "dynamic.onnx")
    assert cli(*args[1:]).code == 1
