"""The protobuf wire format, read in place: varints and the fields of a message, over a buffer
(bytes or a memory map) without parsing the message into Python objects; and the two encoders
the lean copy writes its references with.

Both readers of ``.onnx`` files that must not touch the weights use it: :mod:`.lean_onnx` (the
graph with its tensor payloads left in the file) and :mod:`.onnx_header` (the interface alone).
Encoding from https://protobuf.dev/programming-guides/encoding/: a field is a varint key
(``number << 3 | wire type``) then its value; length-delimited values carry a varint length.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator

VARINT, I64, LEN, I32 = 0, 1, 2, 5
"""Wire types: varint, 64-bit, length-delimited, 32-bit (groups, 3 and 4, are unused by ONNX)."""

Buffer = bytes | memoryview | mmap.mmap


class WireError(ValueError):
    """The bytes are not protobuf these readers understand (the ordinary loader says why)."""


def read_varint(buf: Buffer, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it (``IndexError`` past the end)."""
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint longer than 10 bytes")


def fields(buf: Buffer, start: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
    """Each field of the message in ``buf[start:end]``: ``(number, wire type, where the field
    starts, value, where it ends)``; the value is the number of a varint field and where the
    bytes start for the others (a length-delimited body is ``buf[value:end]``)."""
    pos = start
    while pos < end:
        field_start = pos
        key, pos = read_varint(buf, pos)
        wire = key & 7
        if wire == VARINT:
            value, pos = read_varint(buf, pos)
        elif wire == LEN:
            length, value = read_varint(buf, pos)
            pos = value + length
        elif wire == I64:
            value, pos = pos, pos + 8
        elif wire == I32:
            value, pos = pos, pos + 4
        else:
            raise WireError(f"wire type {wire} (groups) is not used by ONNX")
        if pos > end:
            raise WireError("a field runs past its message")
        yield key >> 3, wire, field_start, value, pos


def length_fields(buf: Buffer, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """``(field number, start, end)`` of each length-delimited field in ``buf[start:end]``; the
    other fields are skipped."""
    for number, wire, _, body, field_end in fields(buf, start, end):
        if wire == LEN:
            yield number, body, field_end


def varint(value: int) -> bytes:
    """``value`` (non-negative) encoded as a varint."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def length_field(number: int, body: bytes) -> bytes:
    """Field ``number`` holding ``body``, length-delimited."""
    return varint(number << 3 | LEN) + varint(len(body)) + body
