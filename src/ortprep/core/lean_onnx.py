"""An ``.onnx`` file's graph without its weight bytes: a scan of the protobuf wire format.

``onnx.load(path, load_external_data=False)`` still parses every inline tensor's ``raw_data``
into a Python ``bytes`` (and reads the whole file first: two copies of the weights at once). The
scan here reads the file through ``mmap`` and copies everything *except* the payload of each
tensor over :data:`INLINE_BYTES`: that payload becomes an external-data reference into the file
itself (``location`` the file's own name, ``offset`` and ``length`` where the bytes sit), which
is exactly how ONNX describes a tensor kept in another file. The result parses as an ordinary
``ModelProto`` of a few hundred kB for a 440 MB transformer; its tensors read their values from
the user's file when a rule asks (``onnx.external_data_helper`` resolves the location against the
model's folder), and ORT reads them the same way when it gets the lean bytes with the folder set
(``session.model_external_initializers_file_folder_path``).

Only messages that can hold a tensor are entered (ModelProto.graph, GraphProto.node/initializer/
sparse_initializer, NodeProto.attribute, AttributeProto.t/g/tensors/graphs/sparse_tensor(s),
SparseTensorProto.values/indices, onnx.proto3 field numbers), and only when they are longer than
:data:`INLINE_BYTES`: a smaller message cannot hold a bigger payload, so the nodes of a graph are
copied in runs without being parsed. Any byte sequence the scan does not understand raises
:class:`~ortprep.core.protowire.WireError`; callers then read the file the ordinary way, whose
errors are the ones users see. The wire format itself is read by :mod:`.protowire`.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from pathlib import Path

from ortprep.core.protowire import LEN, VARINT, WireError, fields, length_field, varint

INLINE_BYTES = 1024
"""Tensor payloads up to this size stay in the lean proto (shapes, axes, scales, zero points):
the size ORT uses by default to keep an initializer inline when it writes external data."""


# Field numbers of onnx.proto3 that lead to tensors (message kind entered for each).
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE = 1, 5, 15
_NODE_ATTRIBUTE = 5
_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE, _ATTR_SPARSES = 5, 6, 10, 11, 22, 23
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_TENSOR_DATA_TYPE, _TENSOR_FLOAT_DATA, _TENSOR_RAW_DATA, _TENSOR_DOUBLE_DATA = 2, 4, 9, 10
_TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 13, 14
_PAYLOADS = (_TENSOR_RAW_DATA, _TENSOR_FLOAT_DATA, _TENSOR_DOUBLE_DATA)
_FLOAT, _DOUBLE, _COMPLEX64, _COMPLEX128 = 1, 11, 14, 15  # TensorProto.DataType


@dataclass(frozen=True)
class LeanModel:
    """A model's bytes with its big tensor payloads left in ``source``."""

    data: bytes
    """A serialized ``ModelProto``: every tensor payload over :data:`INLINE_BYTES` replaced by
    an external-data reference (``location`` = ``source.name``)."""
    source: Path
    tensors: int
    """Payloads referenced instead of copied."""
    payload_bytes: int
    """Their bytes (left in the file)."""


def read_lean(path: Path, inline_bytes: int = INLINE_BYTES) -> LeanModel:
    """Scan ``path`` (a non-empty ``.onnx`` file) into a :class:`LeanModel`."""
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        scan = _Scan(buf, path.name, inline_bytes)
        try:
            data = scan.message(0, len(buf), _model_fields)
        except IndexError:  # a length or varint running past the end of the file
            raise WireError("truncated protobuf") from None
    return LeanModel(data, path, scan.tensors, scan.payload_bytes)


# ------------------------------------------------------------------------- the scan


class _Scan:
    def __init__(self, buf: mmap.mmap, location: str, inline_bytes: int) -> None:
        self.buf = buf
        self.location = location.encode("utf-8")
        self.inline = inline_bytes
        self.tensors = 0
        self.payload_bytes = 0

    def message(self, start: int, end: int, kinds: dict[int, _Entry]) -> bytes:
        """The message in ``buf[start:end]`` rewritten: fields in ``kinds`` (and longer than
        the inline size) are entered, everything else is copied in runs."""
        buf = self.buf
        parts: list[bytes] = []
        run = start  # start of the bytes copied as they are
        for number, wire, field_start, body, field_end in fields(buf, start, end):
            if wire == LEN and field_end - body > self.inline:
                kind = kinds.get(number)
                if kind is not None:
                    parts.append(buf[run:field_start])
                    parts.append(kind(self, number, body, field_end))
                    run = field_end
        if run == start:  # nothing rewritten: the bytes as they are
            return buf[start:end]
        parts.append(buf[run:end])
        return b"".join(parts)

    def tensor(self, number: int, start: int, end: int) -> bytes:
        """A TensorProto field: its payload over the inline size becomes a reference."""
        buf = self.buf
        data_type = 0
        payload: tuple[int, int, int, int] | None = None  # field, its start, offset, length
        # first pass: find the payload and the data type
        for field_no, wire, field_start, value, field_end in fields(buf, start, end):
            if wire == VARINT:
                if field_no == _TENSOR_DATA_TYPE:
                    data_type = value
                elif field_no == _TENSOR_DATA_LOCATION and value != 0:
                    return length_field(number, buf[start:end])  # already external
            elif wire == LEN and field_no in _PAYLOADS:
                if payload is not None:
                    return length_field(number, buf[start:end])  # two payloads: left as it is
                payload = (field_no, field_start, value, field_end - value)
        if payload is None or not _same_layout(payload[0], data_type):
            return length_field(number, buf[start:end])
        _, field_start, offset, length = payload
        if length <= self.inline:
            return length_field(number, buf[start:end])
        self.tensors += 1
        self.payload_bytes += length
        reference = b"".join(
            length_field(_TENSOR_EXTERNAL_DATA, length_field(1, key) + length_field(2, value))
            for key, value in (
                (b"location", self.location),
                (b"offset", str(offset).encode()),
                (b"length", str(length).encode()),
            )
        )
        location = varint(_TENSOR_DATA_LOCATION << 3 | VARINT) + varint(1)
        body = buf[start:field_start] + buf[offset + length : end] + reference + location
        return length_field(number, body)


def _same_layout(field_no: int, data_type: int) -> bool:
    """Whether the payload's bytes are the tensor's raw little-endian layout: always for
    ``raw_data``; packed ``float_data``/``double_data`` only for the types stored as 4- or 8-byte
    floats (other types keep varints there)."""
    if field_no == _TENSOR_RAW_DATA:
        return True
    if field_no == _TENSOR_FLOAT_DATA:
        return data_type in (_FLOAT, _COMPLEX64)
    return data_type in (_DOUBLE, _COMPLEX128)


class _Entry:
    """How a field's message is rewritten: ``fields`` entered inside it, or a tensor."""

    def __init__(self, fields: dict[int, _Entry] | None) -> None:
        self.fields = fields

    def __call__(self, scan: _Scan, number: int, start: int, end: int) -> bytes:
        if self.fields is None:
            return scan.tensor(number, start, end)
        return length_field(number, scan.message(start, end, self.fields))


_TENSOR = _Entry(None)
_graph_fields: dict[int, _Entry] = {}
_GRAPH = _Entry(_graph_fields)
_SPARSE = _Entry({_SPARSE_VALUES: _TENSOR, _SPARSE_INDICES: _TENSOR})
_ATTRIBUTE = _Entry(
    {
        _ATTR_T: _TENSOR,
        _ATTR_G: _GRAPH,
        _ATTR_TENSORS: _TENSOR,
        _ATTR_GRAPHS: _GRAPH,
        _ATTR_SPARSE: _SPARSE,
        _ATTR_SPARSES: _SPARSE,
    }
)
_NODE = _Entry({_NODE_ATTRIBUTE: _ATTRIBUTE})
_graph_fields.update({_GRAPH_NODE: _NODE, _GRAPH_INITIALIZER: _TENSOR, _GRAPH_SPARSE: _SPARSE})
_model_fields: dict[int, _Entry] = {_MODEL_GRAPH: _GRAPH}
