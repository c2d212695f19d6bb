"""Model strings reach people as text: rich markup escaped, control characters visible, in every
command that prints them; JSON keeps them exact."""

from __future__ import annotations

import json

import pytest

from ortprep.cli import render

from . import corpus
from .conftest import ESC

COMMANDS = {
    "inspect": lambda m, out: ("inspect", m),
    "check": lambda m, out: ("check", m),
    "convert": lambda m, out: ("convert", m, "-o", out),
    "optimize": lambda m, out: ("optimize", m, "-o", out, "--level", "basic"),
    "diff": lambda m, out: ("diff", m, m),
    "verify": lambda m, out: ("verify", m, m),
    "bench": lambda m, out: ("bench", m, "--runs", "1", "--warmup", "0"),
    "prepare": lambda m, out: ("prepare", m, "-o", out),
    "config build": lambda m, out: ("config", "build", m, "-o", out / "x.config"),
    "fix-shapes": lambda m, out: (
        "fix-shapes", m, "-o", out / "x.onnx", "--fix-dim", corpus.EVIL + "dim=1"
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def evil(tmp_path_factory):
    return corpus.evil_names(tmp_path_factory.mktemp("evil"))


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_model_strings_are_shown_as_text(cli, evil, tmp_path, unchanged, command):
    with unchanged(evil.parent):
        r = cli(*COMMANDS[command](evil, tmp_path / "out"))
    assert r.code == 0, r.stderr
    printed = r.stdout + r.stderr
    assert ESC not in printed and "\x9b" not in printed and "\u202e" not in printed
    assert "Traceback" not in printed


def test_the_names_appear_escaped_in_inspect(cli, evil):
    r = cli("inspect", evil)
    assert "x[/]\\x1b[2J\\x1b]8;;http" in r.stdout  # markup shown, the escape as 4 characters


def test_json_keeps_the_strings_exact(cli, evil):
    r = cli("inspect", evil, "--json")
    doc = json.loads(r.stdout)
    assert doc["producer"] == corpus.EVIL + "producer"
    assert doc["inputs"][0]["name"] == corpus.EVIL + "in"


def test_error_messages_quote_model_strings_visibly(cli, evil, tmp_path):
    r = cli("check", evil, "--fix-dim", "nope=1")
    assert r.code == 2
    assert ESC not in r.stderr and r.stderr.startswith("error: ")


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\x1b[31mb", "a\\x1b[31mb"),
        ("[link=http://e]x[/link]", "\\[link=http://e]x\\[/link]"),
        ("[/]", "\\[/]"),
        ("tab\tnl\n", "tab\\x09nl\\x0a"),
        ("\x7f\x85", "\\x7f\\x85"),
        ("\u202eevil\u2066", "\\u202eevil\\u2066"),
        ("plain ü 名前", "plain ü 名前"),
    ],
)
def test_text_escapes_markup_and_makes_controls_visible(raw, shown):
    assert render.text(raw) == shown


def test_internal_error_line_shows_controls_visibly(capsys):
    render.internal_error(RuntimeError("bad \x1b]8;;x\x07 name"))
    err = capsys.readouterr().err
    assert ESC not in err and "\\x1b]8;;x\\x07" in err


def test_build_command_keeps_its_lines_and_shows_controls(cli, tmp_path):
    config = tmp_path / "odd\x1b[2J.config"  # the script names the config file
    config.write_text("ai.onnx;17;Relu\n")
    r = cli("config", "build-command", "--config", config, "--target", "android")
    assert r.code == 0, r.stderr
    assert "\\x0a" not in r.stdout and len(r.stdout.splitlines()) > 10
    assert ESC not in r.stdout


def test_visible_lines_keeps_line_breaks():
    assert render.visible_lines("a\x1b\nb\n") == "a\\x1b\nb\n"
