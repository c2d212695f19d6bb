"""The CLI's JSON: one compact document, per-node records encoded fast and equal to the dicts."""

from __future__ import annotations

import io
import json
import sys

import pytest

from models import conv_bn_relu, dynamic_cnn, save
from ortprep.cli import render
from ortprep.core.json_records import JsonText, encode_records

HOSTILE = ["plain", 'quo"te', "back\\slash", "nul\x00byte", "\x1b[2J", "名前 ü", "\u202e", ""]


def test_records_encode_as_json_dumps_of_the_dicts():
    fields = ("name", "op", "domain", "supported", "partition", "reason")
    rows = [
        (name, op, "ai.onnx", supported, partition, reason)
        for name in HOSTILE
        for op, supported, partition, reason in (
            ("Relu", True, 0, None),
            ("Conv", False, None, "input 'x\x00' has dynamic dimension 'N'"),
            ("Relu", True, 0, None),  # a tail seen before
            ("Add", True, 12, "supported, but not placed in a partition"),
        )
    ]
    expected = json.dumps([dict(zip(fields, r, strict=True)) for r in rows], separators=(",", ":"))
    assert encode_records(fields, rows).text == expected
    assert encode_records(fields, []).text == "[]"


def _emitted(document, monkeypatch) -> str:
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", out)
    render.emit_json(document)
    return out.buffer.getvalue().decode("ascii")


def test_spliced_records_land_where_they_belong_whatever_the_strings(monkeypatch):
    rows = [(name, "x") for name in HOSTILE]
    plain = [{"name": n, "v": v} for n, v in rows]
    for forged in ("0:0", "deadbeef:0", '"', "\\u0000"):  # strings that look like placeholders
        document = {"a": forged, "nodes": encode_records(("name", "v"), rows), "b": [forged]}
        text = _emitted(document, monkeypatch)
        assert text.endswith("\n") and text.count("\n") == 1
        assert json.loads(text) == {"a": forged, "nodes": plain, "b": [forged]}
        assert text[:-1] == json.dumps(
            {"a": forged, "nodes": plain, "b": [forged]}, separators=(",", ":")
        )
    assert json.loads(_emitted(JsonText("[1]"), monkeypatch)) == [1]


def test_big_documents_are_written_in_pieces_and_whole(monkeypatch):
    monkeypatch.setattr(render, "_CHUNK", 7)
    rows = [(f"n{i}", i % 3) for i in range(500)]
    text = _emitted({"nodes": encode_records(("name", "p"), rows), "tail": "ü"}, monkeypatch)
    assert json.loads(text) == {"nodes": [{"name": n, "p": p} for n, p in rows], "tail": "ü"}


@pytest.mark.parametrize("build", [conv_bn_relu, dynamic_cnn])
def test_check_json_is_the_results_document(cli, tmp_path, build):
    from ortprep.stages import check

    path = save(build(), tmp_path / "m.onnx")
    r = cli("check", path, "--json")
    assert r.code == 0, r.stderr
    assert r.stdout.count("\n") == 1  # one compact document
    assert r.json() == json.loads(json.dumps(check.run(path, check.CheckOptions()).to_dict()))
