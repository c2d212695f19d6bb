"""Opening ``.ort`` (ORT-format, FlatBuffers) files into the shared graph view.

The reader follows the FlatBuffers offsets itself, with :mod:`struct`, as laid out by
onnxruntime's ``ort.fbs`` schema (reading through the generated Python classes that the
``onnxruntime`` package ships took over 5x longer). FlatBuffers for Python has no verifier
(ORT's C++ loader has one), and a reader that follows any offset it finds would raise arbitrary
errors or read garbage on a truncated or corrupt file. Before anything is read,
:class:`_Verifier` walks every table, vector and string the reader will touch and checks it
against the buffer, in time linear in the file size. Anything wrong becomes a
:class:`~ortprep.core.errors.BadModelError`.

Tensor data is not copied: an initializer's :meth:`~ortprep.core.graph.Initializer.numpy` returns a
read-only view into the file's bytes when asked.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ortprep.core.errors import BadModelError
from ortprep.core.graph import (
    DEFAULT_DOMAIN,
    Dim,
    Graph,
    Initializer,
    Model,
    Node,
    OrtFormatInfo,
    RuntimeOptimizationRecord,
    ValueType,
    by_attribute_name,
    normalize_domain,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "FILE_IDENTIFIER",
    "MAX_GRAPH_DEPTH",
    "MAX_TYPE_DEPTH",
    "is_ort_bytes",
    "parse_ort_bytes",
    "read_ort",
]

FILE_IDENTIFIER = b"ORTM"
"""The schema's ``file_identifier``, stored at bytes 4..8 after the root offset."""

FLATBUFFERS_LIMIT = 2**31 - 1
"""FlatBuffers uses 32-bit signed offsets: no valid buffer reaches 2 GiB."""

MAX_GRAPH_DEPTH = 64
"""Deepest subgraph nesting accepted (the main graph is level 1)."""

MAX_TYPE_DEPTH = 32
"""Deepest sequence/map type nesting accepted."""

_HINT = "the file is truncated or corrupt: copy it again, or re-convert the model with onnxruntime"
_NO_INDEX = 0xFFFFFFFF  # NodesToOptimizeIndices: an absent optional node (uint32 max)

# TensorDataType -> numpy-style name (values as in ort.fbs, which match onnx.TensorProto).
_DTYPES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    8: "string", 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
    14: "complex64", 15: "complex128", 16: "bfloat16", 17: "float8_e4m3fn",
    18: "float8_e4m3fnuz", 19: "float8_e5m2", 20: "float8_e5m2fnuz",
}  # fmt: skip
_STRING_TYPE = 8

# AttributeType values (ort.fbs).
_A_FLOAT, _A_INT, _A_STRING, _A_TENSOR, _A_GRAPH = 1, 2, 3, 4, 5
_A_FLOATS, _A_INTS, _A_STRINGS, _A_TENSORS, _A_GRAPHS = 6, 7, 8, 9, 10

# TypeInfoValue union members and DimensionValueType values (ort.fbs).
_T_TENSOR, _T_SEQUENCE, _T_MAP = 1, 2, 3
_DIM_VALUE, _DIM_PARAM = 1, 2


def is_ort_bytes(head: bytes) -> bool:
    """True when ``head`` (the first 8 bytes or more) carries the ``ORTM`` file identifier."""
    return len(head) >= 8 and head[4:8] == FILE_IDENTIFIER


def read_ort(path: Path, verify: bool = True) -> Model:
    """Open an ``.ort`` file into the graph view (verified; tensor data not copied).

    ``verify=False`` is only for files ORT wrote moments ago in this process (convert's own
    artifacts): the bounds checks guard against untrusted files and cost over half the read.
    Raises :class:`BadModelError` when the file cannot be read or is not a valid ORT-format file.
    """
    data = _read_bytes(path)
    if not verify:
        return _Reader(data, path).model()
    return parse_ort_bytes(data, path)


def verify_ort(path: Path) -> None:
    """Check that ``path`` is a well-formed ORT-format file, without opening its graph.

    For callers that hand the file to ORT's own (unverifying) flatbuffer readers next.
    """
    _verified(_read_bytes(path), path)


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > FLATBUFFERS_LIMIT:
            raise BadModelError(
                f"{path}: not a valid ORT-format file ({size / 2**30:.1f} GiB is over the "
                "2 GiB FlatBuffers limit)",
                _HINT,
            )
        return path.read_bytes()
    except OSError as exc:
        raise BadModelError(f"{path}: cannot read the file ({exc.strerror or exc})") from None


def parse_ort_bytes(data: bytes, path: Path) -> Model:
    """Verify ``data`` as an ORT-format model and open it into the graph view.

    ``path`` names the model in messages and in :attr:`Model.path`. The returned initializers keep
    a reference to ``data`` and read from it when asked.
    """
    _verified(data, path)
    return _Reader(data, path).model()


def _verified(data: bytes, path: Path) -> None:
    if not data:
        raise BadModelError(
            f"{path}: the file is empty", "check that the copy or download finished"
        )
    if not is_ort_bytes(data):
        raise BadModelError(
            f"{path}: not an ORT-format file (no {FILE_IDENTIFIER.decode()} file identifier)",
            "pass an .ort file written by onnxruntime, or an .onnx model",
        )
    if len(data) > FLATBUFFERS_LIMIT:
        raise _bad(path, "over the 2 GiB FlatBuffers limit")
    try:
        _Verifier(data).run()
    except _CorruptError as exc:
        raise _bad(path, str(exc)) from None


def _bad(path: Path, what: str) -> BadModelError:
    return BadModelError(f"{path}: not a valid ORT-format file ({what})", _HINT)


# --------------------------------------------------------------------------- verifier


class _CorruptError(Exception):
    """Internal: what is wrong with the buffer (turned into a BadModelError by the caller)."""


# Field kinds. A table field is (vtable slot, kind, argument): the slot is 4 + 2 * field id,
# deprecated fields included; the argument is a scalar's width, a vector's element width, a
# table's name, or for a union (slot of its type field, {type value: table name}).
_SCALAR, _STRING, _TABLE, _VECTOR, _STRINGS, _TABLES, _UNION = range(7)
_OUTSIDE = 7  # not a schema kind: marks a field found outside its table (see _Verifier._layout)

# The tables and fields the reader uses, restated from
# onnxruntime/core/flatbuffers/schema/ort.fbs (Tensor.external_data_offset from the 1.32 Python
# bindings). Fields the reader never touches (doc strings, node edges, sparse initializers, the
# deprecated session state) are not verified, and never read.
_SCHEMA: dict[str, tuple[tuple[int, int, Any], ...]] = {
    "InferenceSession": (
        (4, _STRING, 0), (6, _TABLE, "Model"), (10, _TABLE, "KernelTypeStrResolver"),
    ),
    "Model": (
        (4, _SCALAR, 8), (6, _TABLES, "OperatorSetId"), (8, _STRING, 0), (10, _STRING, 0),
        (18, _TABLE, "Graph"), (22, _TABLES, "StringStringEntry"),
    ),
    "OperatorSetId": ((4, _STRING, 0), (6, _SCALAR, 8)),
    "StringStringEntry": ((4, _STRING, 0), (6, _STRING, 0)),
    "Graph": (
        (4, _TABLES, "Tensor"), (6, _TABLES, "ValueInfo"), (8, _TABLES, "Node"),
        (14, _STRINGS, 0), (16, _STRINGS, 0), (20, _TABLE, "RuntimeOptimizations"),
    ),
    "Node": (
        (4, _STRING, 0), (8, _STRING, 0), (10, _SCALAR, 4), (12, _SCALAR, 4), (14, _STRING, 0),
        (18, _STRING, 0), (20, _STRINGS, 0), (22, _STRINGS, 0), (24, _TABLES, "Attribute"),
        (28, _STRINGS, 0),
    ),
    "Attribute": (
        (4, _STRING, 0), (8, _SCALAR, 4), (10, _SCALAR, 4), (12, _SCALAR, 8), (14, _STRING, 0),
        (16, _TABLE, "Tensor"), (18, _TABLE, "Graph"), (20, _VECTOR, 4), (22, _VECTOR, 8),
        (24, _STRINGS, 0), (26, _TABLES, "Tensor"), (28, _TABLES, "Graph"),
    ),
    "Tensor": (
        (4, _STRING, 0), (8, _VECTOR, 8), (10, _SCALAR, 4), (12, _VECTOR, 1), (14, _STRINGS, 0),
        (16, _SCALAR, 8),
    ),
    "ValueInfo": ((4, _STRING, 0), (8, _TABLE, "TypeInfo")),
    "TypeInfo": (
        (6, _SCALAR, 1),
        (8, _UNION, (6, {_T_TENSOR: "TensorTypeAndShape", _T_SEQUENCE: "SequenceType",
                         _T_MAP: "MapType"})),
    ),
    "TensorTypeAndShape": ((4, _SCALAR, 4), (6, _TABLE, "Shape")),
    "SequenceType": ((4, _TABLE, "TypeInfo"),),
    "MapType": ((4, _SCALAR, 4), (6, _TABLE, "TypeInfo")),
    "Shape": ((4, _TABLES, "Dimension"),),
    "Dimension": ((4, _TABLE, "DimensionValue"),),
    "DimensionValue": ((4, _SCALAR, 1), (6, _SCALAR, 8), (8, _STRING, 0)),
    "RuntimeOptimizations": ((4, _TABLES, "RuntimeOptimizationRecordContainerEntry"),),
    "RuntimeOptimizationRecordContainerEntry": (
        (4, _STRING, 0), (6, _TABLES, "RuntimeOptimizationRecord"),
    ),
    "RuntimeOptimizationRecord": (
        (4, _STRING, 0), (6, _TABLE, "NodesToOptimizeIndices"), (10, _STRINGS, 0),
    ),
    "NodesToOptimizeIndices": (
        (4, _VECTOR, 4), (6, _SCALAR, 4), (8, _SCALAR, 4), (10, _SCALAR, 1), (12, _SCALAR, 1),
        (14, _SCALAR, 4), (16, _SCALAR, 4),
    ),
    "KernelTypeStrResolver": ((4, _TABLES, "OpIdKernelTypeStrArgsEntry"),),
    "OpIdKernelTypeStrArgsEntry": ((4, _STRING, 0), (6, _TABLES, "KernelTypeStrArgsEntry")),
    "KernelTypeStrArgsEntry": ((4, _STRING, 0), (6, _TABLES, "ArgTypeAndIndex")),
    "ArgTypeAndIndex": ((4, _SCALAR, 1), (6, _SCALAR, 4)),
}  # fmt: skip

_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_VTABLE_HEAD = struct.Struct("<HH")  # vtable size, inline object size

# A work item: table name, table position, graph nesting, type nesting.
_Item = tuple[str, int, int, int]
# A checked vtable: the table's size, and (offset, kind, argument) of each present field that
# leads elsewhere (a scalar needs no more checks once it lies inside the table).
_Layout = tuple[int, tuple[tuple[int, int, Any], ...]]


_SHARED = "tables shared far more often than a valid file needs"


def _vector_outside(owner: str, pos: int) -> _CorruptError:
    return _CorruptError(f"a vector of a {owner} table at byte {pos} lies outside the file")


def _vector_too_long(owner: str, pos: int, count: int) -> _CorruptError:
    return _CorruptError(
        f"a vector of a {owner} table at byte {pos} ({count} elements) runs past the end "
        "of the file"
    )


class _Verifier:
    """Checks every offset, vtable, vector and string the reader will follow, in linear time.

    Like FlatBuffers' own verifier: tables, their vtables and inline fields, vectors (with their
    element sizes) and null-terminated strings must lie inside the buffer. Offsets are unsigned,
    so a child always lies after its parent and cycles cannot exist; but one table may be shared
    by many parents, and a chain of shared subgraphs would take exponential time to walk. A work
    budget proportional to the file size stops that: every visit is charged the bytes it covers,
    strings at every reference (the reader copies a string at each reference, so it stays linear
    too). Nesting is bounded so the reader's recursion stays shallow. Alignment is not checked:
    Python reads unaligned values fine.
    """

    def __init__(self, buf: bytes) -> None:
        self._buf = buf
        self._size = len(buf)
        # A tree-shaped file charges at most its size; the factor leaves room for ORT's shared
        # strings (a value name is stored once and referenced by every node that uses it).
        self._budget = 16 * self._size + 2**16
        # table name -> vtable position -> its checked layout (see _layout)
        self._layouts: dict[str, dict[int, _Layout]] = {name: {} for name in _SCHEMA}

    def run(self) -> None:
        """Verify the whole buffer from the root table; raise :class:`_CorruptError` if invalid."""
        if self._size < 8:
            raise _CorruptError("shorter than the 8-byte FlatBuffers header")
        root = _U32.unpack_from(self._buf, 0)[0]
        stack: list[Iterator[_Item]] = [iter([("InferenceSession", root, 0, 0)])]
        table = self._table
        while stack:
            for item in stack[-1]:
                children = table(*item)
                if children:  # depth first: go on with them, then with this iterator
                    stack.extend(children)
                    break
            else:
                stack.pop()

    def _charge(self, nbytes: int) -> None:
        self._budget -= nbytes
        if self._budget < 0:
            raise _CorruptError(_SHARED)

    def _table(self, name: str, pos: int, graphs: int, types: int) -> list[Iterator[_Item]]:
        """Check one table and its strings and vectors; return iterators over its child tables."""
        buf, size = self._buf, self._size
        if name == "Graph":
            graphs += 1
            if graphs > MAX_GRAPH_DEPTH:
                raise _CorruptError(f"subgraphs nested deeper than {MAX_GRAPH_DEPTH} levels")
        elif name == "TypeInfo":
            types += 1
            if types > MAX_TYPE_DEPTH:
                raise _CorruptError(f"value types nested deeper than {MAX_TYPE_DEPTH} levels")
        if pos + 4 > size:
            raise _CorruptError(f"{name} table at byte {pos} lies outside the file")
        vtable = pos - _I32.unpack_from(buf, pos)[0]
        layouts = self._layouts[name]
        layout = layouts.get(vtable)
        if layout is None:
            obj_size = self._vtable(name, pos, vtable)
            self._charge(obj_size)
            layout = layouts[vtable] = self._layout(name, vtable, obj_size)
        else:
            obj_size = layout[0]
            if pos + obj_size > size:
                raise _CorruptError(f"{name} table at byte {pos} runs past the end of the file")
            self._budget -= obj_size
            if self._budget < 0:
                raise _CorruptError(_SHARED)
        children: list[Iterator[_Item]] = []
        for field, kind, arg in layout[1]:
            if kind == _OUTSIDE:
                raise _CorruptError(f"{name} table at byte {pos} has a field outside itself")
            at = pos + field
            target = at + _U32.unpack_from(buf, at)[0]
            if kind == _STRING:
                self._string(target, name)
            elif kind == _TABLE:
                children.append(iter(((arg, target, graphs, types),)))
            elif kind == _VECTOR:
                self._vector(target, arg, name)
            elif kind == _STRINGS:
                self._strings(target, name)
            elif kind == _TABLES:
                children.append(self._tables(target, arg, name, graphs, types))
            else:
                type_field, members = arg
                if type_field:
                    member = members.get(_U8.unpack_from(buf, pos + type_field)[0])
                    if member is not None:
                        children.append(iter(((member, target, graphs, types),)))
        return children

    def _vtable(self, name: str, pos: int, vtable: int) -> int:
        """Check the vtable of the table at ``pos`` and the table's extent; return its size."""
        size = self._size
        if vtable < 0 or vtable + 4 > size:
            raise _CorruptError(f"{name} table at byte {pos} has its vtable outside the file")
        vt_size, obj_size = _VTABLE_HEAD.unpack_from(self._buf, vtable)
        if vt_size < 4 or vt_size % 2 or vtable + vt_size > size:
            raise _CorruptError(f"{name} table at byte {pos} has a malformed vtable")
        if obj_size < 4 or pos + obj_size > size:
            raise _CorruptError(f"{name} table at byte {pos} runs past the end of the file")
        return obj_size

    def _layout(self, name: str, vtable: int, obj_size: int) -> _Layout:
        """Check the schema's fields against a vtable; return the present non-scalar ones.

        The checks depend only on the vtable (which holds the table's size too), so the caller
        caches the result per vtable: FlatBuffers shares one vtable among all tables of the same
        layout. A field that lies outside the table ends the list with an ``_OUTSIDE`` entry. A
        union's argument becomes (offset of its type field, 0 when absent or outside the table;
        its members).
        """
        buf = self._buf
        vt_size = _U16.unpack_from(buf, vtable)[0]
        fields: list[tuple[int, int, Any]] = []
        for slot, kind, arg in _SCHEMA[name]:
            field = _U16.unpack_from(buf, vtable + slot)[0] if slot < vt_size else 0
            if field == 0:
                continue
            width = arg if kind == _SCALAR else 4
            if field < 4 or field + width > obj_size:
                fields.append((0, _OUTSIDE, None))  # reported when reached, as without the cache
                break
            if kind == _UNION:
                type_slot, members = arg
                type_field = (
                    _U16.unpack_from(buf, vtable + type_slot)[0] if type_slot < vt_size else 0
                )
                fields.append(
                    (field, kind, (0 if type_field + 1 > obj_size else type_field, members))
                )
            elif kind != _SCALAR:
                fields.append((field, kind, arg))
        return obj_size, tuple(fields)

    def _vector(self, pos: int, width: int, owner: str) -> int:
        """Check a vector of ``width``-byte elements at ``pos``; return its length."""
        if pos + 4 > self._size:
            raise _vector_outside(owner, pos)
        count = _U32.unpack_from(self._buf, pos)[0]
        if pos + 4 + count * width > self._size:
            raise _vector_too_long(owner, pos, count)
        self._charge(4 + count * width)
        return count

    def _string(self, pos: int, owner: str) -> None:
        """Check a string: a vector of bytes, then a 0 (the most frequent check: inlined)."""
        buf, size = self._buf, self._size
        if pos + 4 > size:
            raise _vector_outside(owner, pos)
        length = _U32.unpack_from(buf, pos)[0]
        end = pos + 4 + length
        if end > size:
            raise _vector_too_long(owner, pos, length)
        self._budget -= 4 + length
        if self._budget < 0:
            raise _CorruptError(_SHARED)
        if end >= size or buf[end] != 0:
            raise _CorruptError(f"a string of a {owner} table at byte {pos} is not terminated")

    def _strings(self, pos: int, owner: str) -> None:
        count = self._vector(pos, 4, owner)
        buf, string = self._buf, self._string
        for at in range(pos + 4, pos + 4 + 4 * count, 4):
            string(at + _U32.unpack_from(buf, at)[0], owner)

    def _tables(self, pos: int, name: str, owner: str, graphs: int, types: int) -> Iterator[_Item]:
        """Check a vector of tables now; yield its elements one by one (keeps the stack small)."""
        count = self._vector(pos, 4, owner)
        buf = self._buf
        return (
            (name, at + _U32.unpack_from(buf, at)[0], graphs, types)
            for at in range(pos + 4, pos + 4 + 4 * count, 4)
        )


# --------------------------------------------------------------------------- reader

# The reader follows offsets itself with struct, at the positions the verifier computed and
# checked: the generated accessors re-read the vtable and wrap every table in an object at each
# field access, which cost 65-200 us per node. A table's vtable lists, per field id (declaration
# order in ort.fbs, deprecated fields included), the field's offset inside the table, 0 when
# absent; a vtable shorter than the schema (a file from an older schema) leaves the trailing
# fields absent, as the generated Offset() does.
_MAX_FIELDS = 16
"""vtable entries fetched per table: Node and Attribute, the widest tables read, have 13 fields.
A corrupt vtable that claims thousands of entries therefore costs no more than a real one."""
_VTABLE_ENTRIES = tuple(struct.Struct(f"<{k}H") for k in range(_MAX_FIELDS + 1))
_ABSENT = (0,) * _MAX_FIELDS

_I8 = struct.Struct("<b")
_I64 = struct.Struct("<q")
_F32 = struct.Struct("<f")


def _op_id(op_id: str) -> str:
    """``domain:op_type:since_version`` with the ONNX domain written ``ai.onnx``."""
    return DEFAULT_DOMAIN + op_id if op_id.startswith(":") else op_id


def _decode(buf: bytes, pos: int) -> str:
    """The string object at ``pos`` (a uint32 length, then the bytes)."""
    start = pos + 4
    return buf[start : start + _U32.unpack_from(buf, pos)[0]].decode("utf-8", "replace")


class _Texts(dict[int, str]):
    """String position -> text, decoded on first lookup.

    ORT stores a value name once and refers to it from every node (and node arg) that uses it:
    decoding it once also shares one str among them. A miss costs a Python call, a hit none.
    """

    def __init__(self, buf: bytes) -> None:
        super().__init__()
        self._buf = buf

    def __missing__(self, pos: int) -> str:
        buf, start = self._buf, pos + 4  # _decode, inlined: most strings are read only once
        text = self[pos] = buf[start : start + _U32.unpack_from(buf, pos)[0]].decode(
            "utf-8", "replace"
        )
        return text


class _Reader:
    """Builds the graph view from a verified buffer, reading its tables directly.

    Follows only fields listed in :data:`_SCHEMA`, as the kind listed there, from the tables the
    verifier reached through the same fields, so every access stays inside what it checked. The
    field lists in the methods below restate ``ort.fbs`` (field ids in declaration order).
    """

    def __init__(self, buf: bytes, path: Path) -> None:
        if not isinstance(buf, bytes | bytearray):
            buf = bytes(buf)  # slices of it must decode
        self._buf = buf
        self._path = path
        self._records: dict[str, list[RuntimeOptimizationRecord]] = {}
        # vtable position -> field offsets: FlatBuffers shares one vtable among all tables with
        # the same layout, so e.g. all the nodes of a graph mostly have two or three.
        self._vtables: dict[int, tuple[int, ...]] = {}
        self._texts = _Texts(buf)

    # ----------------------------------------------------------------- primitives

    def _fields(self, pos: int) -> tuple[int, ...]:
        """Offsets of the table at ``pos``'s fields by field id (0 = absent), _MAX_FIELDS long."""
        buf = self._buf
        vtable = pos - _I32.unpack_from(buf, pos)[0]
        fields = self._vtables.get(vtable)
        if fields is None:
            # The verifier checked vt_size >= 4, even, and the whole vtable inside the buffer.
            count = min(_U16.unpack_from(buf, vtable)[0] // 2 - 2, _MAX_FIELDS)
            fields = _VTABLE_ENTRIES[count].unpack_from(buf, vtable + 4) + _ABSENT[count:]
            self._vtables[vtable] = fields
        return fields

    def _ref(self, at: int) -> int:
        """Position of the table, vector or string the offset stored at ``at`` refers to."""
        return at + _U32.unpack_from(self._buf, at)[0]

    def _string(self, pos: int, field: int) -> str:
        """A string field of the table at ``pos`` (``field``: its offset), "" when absent."""
        if not field:
            return ""
        at = pos + field
        return self._texts[at + _U32.unpack_from(self._buf, at)[0]]

    def _refs(self, pos: int, field: int) -> list[int]:
        """Positions of the tables (or strings) a vector-of-offsets field refers to."""
        if not field:
            return []
        buf = self._buf
        vector = self._ref(pos + field)
        count = _U32.unpack_from(buf, vector)[0]
        if not count:
            return []
        first = vector + 4
        offsets = struct.unpack_from(f"<{count}I", buf, first)
        return [
            at + off for at, off in zip(range(first, first + 4 * count, 4), offsets, strict=True)
        ]

    def _strings(self, pos: int, field: int) -> tuple[str, ...]:
        """A vector-of-strings field, () when absent.

        Written out for speed: a node has three of these, mostly with no or one element.
        """
        if not field:
            return ()
        buf, texts, u32 = self._buf, self._texts, _U32.unpack_from
        at = pos + field
        vector = at + u32(buf, at)[0]
        count = u32(buf, vector)[0]
        if not count:
            return ()
        first = vector + 4
        if count == 1:
            return (texts[first + u32(buf, first)[0]],)
        return tuple([texts[at + u32(buf, at)[0]] for at in range(first, first + 4 * count, 4)])

    def _scalars(self, pos: int, field: int, code: str) -> tuple[Any, ...]:
        """A vector-of-scalars field (struct ``code``), () when absent."""
        if not field:
            return ()
        vector = self._ref(pos + field)
        count = _U32.unpack_from(self._buf, vector)[0]
        return struct.unpack_from(f"<{count}{code}", self._buf, vector + 4) if count else ()

    def _scalar(self, kind: struct.Struct, pos: int, field: int, default: Any = 0) -> Any:
        return kind.unpack_from(self._buf, pos + field)[0] if field else default

    # ----------------------------------------------------------------- model

    def model(self) -> Model:
        session = _U32.unpack_from(self._buf, 0)[0]
        # InferenceSession (ort.fbs): ort_version, model, session_state (deprecated),
        # kernel_type_str_resolver
        version_f, model_f, _, resolver_f = self._fields(session)[:4]
        version = self._string(session, version_f)
        if not version:
            raise _bad(self._path, "no ORT format version")
        if not re.fullmatch(r"[0-9]{1,9}", version):
            raise _bad(self._path, f"ORT format version {version[:40]!r} is not an integer")
        if not model_f:
            raise _bad(self._path, "no model")
        m = self._ref(session + model_f)
        # Model (ort.fbs): ir_version, opset_import, producer_name, producer_version, domain,
        # model_version, doc_string, graph, graph_doc_string, metadata_props
        ir_f, opsets_f, producer_f, producer_version_f, _, _, _, graph_f, _, metadata_f = (
            self._fields(m)[:10]
        )
        if not graph_f:
            raise _bad(self._path, "no graph")
        opsets = {}
        for imp in self._refs(m, opsets_f):
            domain_f, version_f = self._fields(imp)[:2]  # OperatorSetId (ort.fbs): domain, version
            opsets[normalize_domain(self._string(imp, domain_f))] = self._scalar(
                _I64, imp, version_f
            )
        metadata = {}
        for prop in self._refs(m, metadata_f):
            key_f, value_f = self._fields(prop)[:2]  # StringStringEntry (ort.fbs): key, value
            metadata[self._string(prop, key_f)] = self._string(prop, value_f)
        graph = self._graph(self._ref(m + graph_f), "main")
        info = OrtFormatInfo(
            format_version=version,
            runtime_optimizations={k: tuple(v) for k, v in self._records.items()},
            kernel_type_str_resolver=self._kernel_type_str_resolver(session, resolver_f),
        )
        return Model(
            path=self._path,
            format="ort",
            ir_version=self._scalar(_I64, m, ir_f),
            producer_name=self._string(m, producer_f),
            producer_version=self._string(m, producer_version_f),
            opsets=opsets,
            graph=graph,
            size_bytes=len(self._buf),
            metadata=metadata,
            ort=info,
        )

    # ----------------------------------------------------------------- graphs and nodes

    def _graph(self, g: int, path: str) -> Graph:
        # Graph (ort.fbs): initializers, node_args, nodes, max_node_index, node_edges, inputs,
        # outputs, sparse_initializers, runtime_optimizations
        inits_f, args_f, nodes_f, _, _, inputs_f, outputs_f, _, records_f = self._fields(g)[:9]
        values = _LazyValues(self, self._refs(g, args_f))
        inits = {}
        for t in self._refs(g, inits_f):
            init = self._tensor(t)
            inits[init.name] = init
        self._collect_records(g, records_f)  # before the subgraphs', which the nodes add
        nodes = tuple([self._node(n, path) for n in self._refs(g, nodes_f)])
        inputs = tuple([self._declared(name, values, inits) for name in self._strings(g, inputs_f)])
        outputs = tuple(
            [self._declared(name, values, inits) for name in self._strings(g, outputs_f)]
        )
        return Graph(path, nodes, inputs, outputs, inits, values)

    @staticmethod
    def _declared(
        name: str, values: Mapping[str, ValueType], inits: dict[str, Initializer]
    ) -> ValueType:
        """A graph input or output: its node arg's type, else its initializer's, else unknown."""
        if name in values:
            return values[name]
        if name in inits:
            return ValueType(name, inits[name].dtype, inits[name].dims)
        return ValueType(name, None, None, "unknown")

    def _node(self, n: int, graph_path: str) -> Node:
        # Node (ort.fbs): name, doc_string, domain, since_version, index, op_type, type,
        # execution_provider_type, inputs, outputs, attributes, input_arg_counts, implicit_inputs
        (
            name_f, _, domain_f, since_f, index_f, op_type_f, _, provider_f, inputs_f,
            outputs_f, attributes_f, _, implicit_f,
        ) = self._fields(n)[:13]  # fmt: skip
        buf, string = self._buf, self._string
        index = _U32.unpack_from(buf, n + index_f)[0] if index_f else 0
        op_type = string(n, op_type_f)
        own_name = string(n, name_f)
        name = own_name or f"{op_type}_{index}"
        attributes: dict[str, Any] = {}
        subgraphs: dict[str, Graph] = {}
        for attr in self._refs(n, attributes_f) if attributes_f else ():
            fields = self._fields(attr)
            attr_name = string(attr, fields[0])
            kind = self._scalar(_I32, attr, fields[2])
            if kind == _A_GRAPH:
                if fields[7]:
                    subgraphs[attr_name] = self._graph(
                        self._ref(attr + fields[7]), f"{graph_path}/{name}:{attr_name}"
                    )
            elif kind == _A_GRAPHS:
                for k, g in enumerate(self._refs(attr, fields[12])):
                    key = f"{attr_name}[{k}]"
                    subgraphs[key] = self._graph(g, f"{graph_path}/{name}:{key}")
            else:
                attributes[attr_name] = self._attribute_value(attr, fields, kind)
        return Node(
            index=index,
            name=name,
            op_type=op_type,
            domain=string(n, domain_f) or DEFAULT_DOMAIN,  # normalize_domain, inlined
            inputs=self._strings(n, inputs_f),
            outputs=self._strings(n, outputs_f),
            attributes=attributes,
            subgraphs=by_attribute_name(subgraphs),
            since_version=(_I32.unpack_from(buf, n + since_f)[0] if since_f else 0) or None,
            synthetic_name=not own_name,
            execution_provider=string(n, provider_f) or None,
            implicit_inputs=self._strings(n, implicit_f),
        )

    def _attribute_value(self, attr: int, fields: tuple[int, ...], kind: int) -> Any:
        """A plain Python value; tensors as lazily read :class:`Initializer` objects."""
        # Attribute (ort.fbs): name, doc_string, type, f, i, s, t, g, floats, ints, strings,
        # tensors, graphs
        if kind == _A_FLOAT:
            return self._scalar(_F32, attr, fields[3], 0.0)
        if kind == _A_INT:
            return self._scalar(_I64, attr, fields[4])
        if kind == _A_STRING:
            return self._string(attr, fields[5])
        if kind == _A_TENSOR:
            return self._tensor(self._ref(attr + fields[6])) if fields[6] else None
        if kind == _A_FLOATS:
            return self._scalars(attr, fields[8], "f")
        if kind == _A_INTS:
            return self._scalars(attr, fields[9], "q")
        if kind == _A_STRINGS:
            return self._strings(attr, fields[10])
        if kind == _A_TENSORS:
            return tuple([self._tensor(t) for t in self._refs(attr, fields[11])])
        return None  # undefined or sparse: ORT format stores no value for them

    # ----------------------------------------------------------------- values and tensors

    def _value_name(self, vi: int) -> str:
        return self._string(vi, self._fields(vi)[0])  # ValueInfo (ort.fbs): name, doc_string, type

    def _value_type(self, vi: int) -> ValueType:
        name_f, _, type_f = self._fields(vi)[:3]  # ValueInfo (ort.fbs): name, doc_string, type
        name = self._string(vi, name_f)
        if not type_f:
            return ValueType(name, None, None, "unknown")
        kind, value = self._type_info(self._ref(vi + type_f))
        if kind == _T_TENSOR:
            if value is None:
                return ValueType(name, None, None, "tensor")
            elem_f, shape_f = self._fields(value)[
                :2
            ]  # TensorTypeAndShape (ort.fbs): elem_type, shape
            dims = None
            if shape_f:
                shape = self._ref(value + shape_f)
                dims = tuple([self._dim(d) for d in self._refs(shape, self._fields(shape)[0])])
            return ValueType(name, _DTYPES.get(self._scalar(_I32, value, elem_f)), dims, "tensor")
        if kind == _T_SEQUENCE:
            dtype = None
            # SequenceType (ort.fbs): elem_type
            elem_f = 0 if value is None else self._fields(value)[0]
            if elem_f and value is not None:
                elem_kind, elem = self._type_info(self._ref(value + elem_f))
                if elem_kind == _T_TENSOR and elem is not None:
                    dtype = _DTYPES.get(self._scalar(_I32, elem, self._fields(elem)[0]))
            return ValueType(name, dtype, None, "sequence")
        if kind == _T_MAP:
            return ValueType(name, None, None, "map")
        return ValueType(name, None, None, "unknown")

    def _type_info(self, info: int) -> tuple[int, int | None]:
        """A TypeInfo's union: (value_type, position of its table or None when absent)."""
        # TypeInfo (ort.fbs): denotation, value_type, value (the union's table)
        _, kind_f, value_f = self._fields(info)[:3]
        return self._scalar(_U8, info, kind_f), (self._ref(info + value_f) if value_f else None)

    def _dim(self, d: int) -> Dim:
        value_f = self._fields(d)[0]  # Dimension (ort.fbs): value, denotation
        if not value_f:
            return None
        value = self._ref(d + value_f)
        # DimensionValue (ort.fbs): dim_type, dim_value, dim_param
        kind_f, dim_f, param_f = self._fields(value)[:3]
        kind = self._scalar(_I8, value, kind_f)
        if kind == _DIM_VALUE:
            return self._scalar(_I64, value, dim_f)
        if kind == _DIM_PARAM:
            return self._string(value, param_f) or None
        return None

    def _tensor(self, t: int) -> Initializer:
        # Tensor (ort.fbs): name, doc_string, dims, data_type, raw_data, string_data,
        # external_data_offset
        name_f, _, dims_f, type_f, raw_f, strings_f, external_f = self._fields(t)[:7]
        name = self._string(t, name_f)
        type_id = self._scalar(_I32, t, type_f)
        dims = self._scalars(t, dims_f, "q")
        raw = None
        if raw_f:
            vector = self._ref(t + raw_f)
            raw = (vector + 4, _U32.unpack_from(self._buf, vector)[0])
        strings = self._refs(t, strings_f)
        external = self._scalar(_I64, t, external_f, -1)
        if type_id == _STRING_TYPE:
            nbytes = sum(_U32.unpack_from(self._buf, s)[0] for s in strings)
        elif raw is not None or external < 0:
            nbytes = 0 if raw is None else raw[1]
        else:
            nbytes = _count(dims) * _itemsize(type_id)
        return Initializer(
            name=name,
            dtype=_DTYPES.get(type_id),
            dims=dims,
            nbytes=nbytes,
            loader=_TensorLoader(
                self._buf, self._path, name, type_id, dims, raw, strings, external
            ),
        )

    # ----------------------------------------------------------------- ORT-only information

    def _collect_records(self, g: int, field: int) -> None:
        """Add a graph's saved runtime optimizations to the model's records, by optimizer.

        Subgraphs have records too (ORT saves them per graph); they are merged in after the main
        graph's, although their node indices refer to their own graph: the view has no field
        that says which graph a record belongs to.
        """
        if not field:
            return
        opt = self._ref(g + field)
        # RuntimeOptimizations (ort.fbs): records
        for entry in self._refs(opt, self._fields(opt)[0]):
            # RuntimeOptimizationRecordContainerEntry (ort.fbs): optimizer_name,
            # runtime_optimization_records
            name_f, records_f = self._fields(entry)[:2]
            records = self._records.setdefault(self._string(entry, name_f), [])
            records.extend([self._record(r) for r in self._refs(entry, records_f)])

    def _record(self, r: int) -> RuntimeOptimizationRecord:
        # RuntimeOptimizationRecord (ort.fbs): action_id, nodes_to_optimize_indices,
        # produced_nodes (deprecated), produced_op_ids
        action_f, nodes_f, _, produced_f = self._fields(r)[:4]
        indices: tuple[int | None, ...] = ()
        num_inputs = num_outputs = 0
        if nodes_f:
            nodes = self._ref(r + nodes_f)
            # NodesToOptimizeIndices (ort.fbs): node_indices, num_inputs, num_outputs, ...
            indices_f, inputs_f, outputs_f = self._fields(nodes)[:3]
            raw = self._scalars(nodes, indices_f, "I")
            indices = tuple([None if i == _NO_INDEX else i for i in raw])
            num_inputs = self._scalar(_U32, nodes, inputs_f)
            num_outputs = self._scalar(_U32, nodes, outputs_f)
        return RuntimeOptimizationRecord(
            action_id=self._string(r, action_f),
            node_indices=indices,
            num_inputs=num_inputs,
            num_outputs=num_outputs,
            produced_op_ids=tuple([_op_id(s) for s in self._strings(r, produced_f)]),
        )

    def _kernel_type_str_resolver(
        self, session: int, field: int
    ) -> dict[str, dict[str, tuple[tuple[bool, int], ...]]]:
        result: dict[str, dict[str, tuple[tuple[bool, int], ...]]] = {}
        if not field:
            return result  # format versions before 5 have none
        resolver = self._ref(session + field)
        # KernelTypeStrResolver (ort.fbs): op_kernel_type_str_args
        for entry in self._refs(resolver, self._fields(resolver)[0]):
            # OpIdKernelTypeStrArgsEntry (ort.fbs): op_id, kernel_type_str_args
            op_id_f, args_f = self._fields(entry)[:2]
            args: dict[str, tuple[tuple[bool, int], ...]] = {}
            for type_str in self._refs(entry, args_f):
                # KernelTypeStrArgsEntry (ort.fbs): kernel_type_str, args
                type_str_f, pairs_f = self._fields(type_str)[:2]
                pairs = []
                for arg in self._refs(type_str, pairs_f):
                    # ArgTypeAndIndex (ort.fbs): arg_type, index
                    kind_f, index_f = self._fields(arg)[:2]
                    pairs.append(
                        (
                            self._scalar(_I8, arg, kind_f) == 0,  # ArgType INPUT = 0, OUTPUT = 1
                            self._scalar(_U32, arg, index_f),
                        )
                    )
                args[self._string(type_str, type_str_f)] = tuple(pairs)
            result[_op_id(self._string(entry, op_id_f))] = args
        return result


class _LazyValues(Mapping[str, ValueType]):
    """A graph's value types, decoded from the file on first access.

    Most readers (inspect, convert's summary, configs) never look at most values, so only names
    are read here.
    """

    def __init__(self, reader: _Reader, tables: list[int]) -> None:
        self._reader = reader
        self._pos: dict[str, int] = {}
        for vi in tables:
            self._pos.setdefault(reader._value_name(vi), vi)
        self._done: dict[str, ValueType] = {}

    def __getitem__(self, name: str) -> ValueType:
        hit = self._done.get(name)
        if hit is None:
            hit = self._reader._value_type(self._pos[name])
            self._done[name] = hit
        return hit

    def __iter__(self) -> Iterator[str]:
        return iter(self._pos)

    def __len__(self) -> int:
        return len(self._pos)

    def __contains__(self, name: object) -> bool:
        return name in self._pos

    def fbs_type_info(self, name: str) -> Any:
        """``name``'s type as ORT's generated ``fbs.TypeInfo`` (None when untyped), for ORT's
        type-usage processors, which read types through those classes."""
        reader = self._reader
        vi = self._pos[name]
        type_f = reader._fields(vi)[2]  # ValueInfo (ort.fbs): name, doc_string, type
        if not type_f:
            return None
        import onnxruntime.tools.ort_format_model  # noqa: F401 -- puts ORT's fbs package on sys.path
        from ort_flatbuffers_py.fbs.TypeInfo import TypeInfo

        info = TypeInfo()
        info.Init(reader._buf, reader._ref(vi + type_f))
        return info


# --------------------------------------------------------------------------- tensor values

_ITEMSIZES = {
    1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16,
    16: 2, 17: 1, 18: 1, 19: 1, 20: 1,
}  # fmt: skip


def _itemsize(type_id: int) -> int:
    return _ITEMSIZES.get(type_id, 0)


def _count(dims: tuple[int, ...]) -> int:
    """Number of elements, or 0 when a dimension is negative (corrupt)."""
    count = 1
    for d in dims:
        if d < 0:
            return 0
        count *= d
    return count


def _numpy_dtype(name: str) -> np.dtype:
    """numpy dtype for a type name; bfloat16 and float8 come from ml_dtypes (as in onnx)."""
    import numpy as np

    if name.startswith(("bfloat", "float8")):
        try:
            import ml_dtypes
        except ImportError:  # older onnx without ml_dtypes: give the raw bits
            return np.dtype(np.uint16 if name == "bfloat16" else np.uint8)
        return np.dtype(getattr(ml_dtypes, name))
    return np.dtype(name)


class _TensorLoader:
    """Reads one tensor's values from the verified buffer when asked (a view, not a copy).

    ``raw`` is (position, length) of the raw_data bytes or None when absent, ``strings`` the
    positions of the string_data strings, ``external`` the external_data_offset (-1 if absent).
    """

    __slots__ = ("_buf", "_dims", "_external", "_name", "_path", "_raw", "_strings", "_type_id")

    def __init__(
        self,
        buf: bytes,
        path: Path,
        name: str,
        type_id: int,
        dims: tuple[int, ...],
        raw: tuple[int, int] | None,
        strings: list[int],
        external: int,
    ) -> None:
        self._buf = buf
        self._path = path
        self._name = name
        self._type_id = type_id
        self._dims = dims
        self._raw = raw
        self._strings = strings
        self._external = external

    def __call__(self) -> np.ndarray:
        import numpy as np

        dims = self._dims
        if any(d < 0 for d in dims):
            raise self._bad(f"has a negative dimension {dims}")
        count = _count(dims)
        dtype = _DTYPES.get(self._type_id)
        if dtype is None:
            raise self._bad(f"has the unknown data type {self._type_id}")
        if self._type_id == _STRING_TYPE:
            if len(self._strings) != count:
                raise self._bad(f"has {len(self._strings)} strings for dims {dims}")
            # str elements, as onnx.numpy_helper.to_array gives for an ONNX string tensor
            values = [_decode(self._buf, s) for s in self._strings]
            return np.array(values, dtype=object).reshape(dims)
        if self._raw is None and self._external >= 0:
            raise BadModelError(
                f"{self._path}: initializer {self._name!r} keeps its data outside the .ort file",
                "ortprep reads only ORT-format files with their data inline",
            )
        start, size = self._raw or (0, 0)
        itemsize = _itemsize(self._type_id)
        if size != count * itemsize:
            raise self._bad(f"has {size} bytes of data for dims {dims} of {dtype}")
        raw = np.frombuffer(self._buf, np.uint8, size, start) if size else np.zeros(0, np.uint8)
        return raw.view(_numpy_dtype(dtype)).reshape(dims)

    def _bad(self, what: str) -> BadModelError:
        return _bad(self._path, f"initializer {self._name!r} {what}")
