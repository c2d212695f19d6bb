"""``.ort`` (ORT-format, FlatBuffers) files: :mod:`.format` (the schema's facts), :mod:`.verify`
(the bounds checks), :mod:`.reader` (the graph view), :mod:`.tensors` (initializer values)."""

from __future__ import annotations

from ortprep.core.ort.format import FILE_IDENTIFIER, MAX_GRAPH_DEPTH, MAX_TYPE_DEPTH, is_ort_bytes
from ortprep.core.ort.reader import parse_ort_bytes, read_ort, verify_ort

__all__ = [
    "FILE_IDENTIFIER",
    "MAX_GRAPH_DEPTH",
    "MAX_TYPE_DEPTH",
    "is_ort_bytes",
    "parse_ort_bytes",
    "read_ort",
    "verify_ort",
]
