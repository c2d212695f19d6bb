"""Every command that reads models refuses each model of the hostile corpus the same way: exit 2,
one ``error:`` line (and a hint), no escape byte, the input untouched, nothing left in ``-o``."""

from __future__ import annotations

import pytest

from . import corpus
from .conftest import assert_clean_failure, assert_nothing_left

COMMANDS = {
    "inspect": lambda m, out, good: ("inspect", m),
    "check": lambda m, out, good: ("check", m),
    "convert": lambda m, out, good: ("convert", m, "-o", out),
    "optimize": lambda m, out, good: ("optimize", m, "-o", out, "--level", "basic"),
    "diff": lambda m, out, good: ("diff", good, m),
    "verify": lambda m, out, good: ("verify", good, m),
    "bench": lambda m, out, good: ("bench", m, "--runs", "1", "--warmup", "0"),
    "prepare": lambda m, out, good: ("prepare", m, "-o", out),
    "config build": lambda m, out, good: ("config", "build", m, "-o", out / "x.config"),
    "fix-shapes": lambda m, out, good: ("fix-shapes", m, "-o", out / "x.onnx", "--fix-dim", "N=1"),
}


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    good = corpus.good(folder / "good")
    return (
        folder,
        good,
        {k: (make(folder / k), fragment) for k, (make, fragment) in corpus.BAD_AT_LOAD.items()},
    )


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("case", sorted(corpus.BAD_AT_LOAD))
def test_bad_model_is_refused_cleanly(cli, bad_models, tmp_path, unchanged, case, command):
    folder, good, cases = bad_models
    model, fragment = cases[case]
    out = tmp_path / "out"
    with unchanged(folder):
        r = cli(*COMMANDS[command](model, out, good))
    assert_clean_failure(r, 2, fragment)
    assert_nothing_left(out)
