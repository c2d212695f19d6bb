"""Long lists of records as JSON text, encoded fast (``check``'s 400,000 per-node answers).

The stdlib's C encoder turns 400,000 small dicts into text in about a second, and building the
dicts costs as much again. Records whose values repeat (op types, domains, graphs, reasons and
partitions of a check) need neither: :func:`encode_records` encodes each distinct tail of values
once and only the first value (a node's name) per record. The text equals ``json.dumps`` of the
dicts with compact separators and ``ensure_ascii`` (the CLI's JSON), key for key and byte for
byte; :class:`JsonText` carries it to the writer (:func:`ortprep.cli.render.emit_json`), which
splices it in place.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


class JsonText:
    """A JSON value already encoded (compact, ASCII), to be written as it is."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def encode_records(fields: Sequence[str], rows: Iterable[Sequence[Any]]) -> JsonText:
    """A JSON array with one object per row: ``fields`` are the keys, in order; equal to
    ``json.dumps([dict(zip(fields, row)) for row in rows], separators=(",", ":"))``."""
    import json
    from json.encoder import encode_basestring_ascii as quote  # the C encoder's own

    value = json.JSONEncoder(separators=(",", ":")).encode
    keys = [quote(f) + ":" for f in fields]
    head = "{" + keys[0]
    tails: dict[tuple[Any, ...], str] = {}
    parts: list[str] = []
    append = parts.append
    for row in rows:
        rest = tuple(row[1:])
        tail = tails.get(rest)
        if tail is None:
            tail = tails[rest] = (
                "".join(f",{k}{value(v)}" for k, v in zip(keys[1:], rest, strict=True)) + "}"
            )
        first = row[0]
        append(head + (quote(first) if type(first) is str else value(first)) + tail)
    return JsonText("[" + ",".join(parts) + "]")
