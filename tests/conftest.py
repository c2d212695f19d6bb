from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self):
        import json

        return json.loads(self.stdout)


@pytest.fixture
def cli():
    """Run ``ortprep ARGS...`` in-process; returns exit code, stdout and stderr."""
    from typer.testing import CliRunner

    from ortprep.cli import app

    def invoke(*args: object) -> CliResult:
        r = CliRunner().invoke(app, [str(a) for a in args])
        if r.exception and not isinstance(r.exception, SystemExit):
            raise r.exception
        return CliResult(r.exit_code, r.stdout, r.stderr)

    return invoke


def tree_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder`` (to prove inputs were not touched)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def hashes():
    return tree_hashes
