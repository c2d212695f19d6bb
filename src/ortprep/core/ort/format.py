"""What the ORT format's schema fixes, shared by the verifier, the reader and the tensors.

Values restated from onnxruntime/core/flatbuffers/schema/ort.fbs.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import TYPE_CHECKING

from ortprep.core.errors import BadModelError

if TYPE_CHECKING:
    import mmap

FILE_IDENTIFIER = b"ORTM"
"""The schema's ``file_identifier``, stored at bytes 4..8 after the root offset."""

FLATBUFFERS_LIMIT = 2**31 - 1
"""FlatBuffers uses 32-bit signed offsets: no valid buffer reaches 2 GiB."""

MAX_GRAPH_DEPTH = 64
"""Deepest subgraph nesting accepted (the main graph is level 1)."""

MAX_TYPE_DEPTH = 32
"""Deepest sequence/map type nesting accepted."""

HINT = "the file is truncated or corrupt: copy it again, or re-convert the model with onnxruntime"
NO_INDEX = 0xFFFFFFFF  # NodesToOptimizeIndices: an absent optional node (uint32 max)

# TensorDataType -> numpy-style name (values as in ort.fbs, which match onnx.TensorProto).
DTYPES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    8: "string", 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
    14: "complex64", 15: "complex128", 16: "bfloat16", 17: "float8_e4m3fn",
    18: "float8_e4m3fnuz", 19: "float8_e5m2", 20: "float8_e5m2fnuz",
}  # fmt: skip
STRING_TYPE = 8

# AttributeType values (ort.fbs).
A_FLOAT, A_INT, A_STRING, A_TENSOR, A_GRAPH = 1, 2, 3, 4, 5
A_FLOATS, A_INTS, A_STRINGS, A_TENSORS, A_GRAPHS = 6, 7, 8, 9, 10

# TypeInfoValue union members and DimensionValueType values (ort.fbs).
T_TENSOR, T_SEQUENCE, T_MAP = 1, 2, 3
DIM_VALUE, DIM_PARAM = 1, 2

U8 = struct.Struct("<B")
U16 = struct.Struct("<H")
U32 = struct.Struct("<I")
I32 = struct.Struct("<i")


def is_ort_bytes(head: bytes) -> bool:
    """True when ``head`` (the first 8 bytes or more) carries the ``ORTM`` file identifier."""
    return len(head) >= 8 and head[4:8] == FILE_IDENTIFIER


def decode(buf: bytes | mmap.mmap, pos: int) -> str:
    """The string object at ``pos`` (a uint32 length, then the bytes)."""
    start = pos + 4
    return buf[start : start + U32.unpack_from(buf, pos)[0]].decode("utf-8", "replace")


def bad_file(path: Path, what: str) -> BadModelError:
    return BadModelError(f"{path}: not a valid ORT-format file ({what})", HINT)
