from __future__ import annotations

from pathlib import Path

import pytest

from conftest import tree_hashes

ESC = "\x1b"


def assert_clean_failure(r, code: int = 2, fragment: str | None = None) -> None:
    """The contract for a refused input: the code, ``error:`` and at most a hint line, no
    traceback, no escape byte."""
    assert r.code == code, (r.code, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert lines and lines[-1 if code == 1 else 0].startswith("error: "), r.stderr
    if code == 2:
        assert len(lines) <= 2, r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    assert ESC not in r.stdout + r.stderr
    if fragment is not None:
        assert fragment in r.stderr, r.stderr


def assert_nothing_left(out: Path) -> None:
    """A failed run leaves no file in ``-o`` (and no folder it created)."""
    assert not out.exists() or not any(out.rglob("*")), sorted(out.rglob("*"))


@pytest.fixture
def unchanged():
    """``with unchanged(folder): ...`` asserts no file below ``folder`` changed."""
    import contextlib

    @contextlib.contextmanager
    def watch(folder: Path):
        before = tree_hashes(folder)
        yield
        assert tree_hashes(folder) == before

    return watch
