"""The verifier: every table, vector and string the reader will touch, checked against the buffer.

FlatBuffers for Python has no verifier (ORT's C++ loader has one); a reader that follows any
offset it finds would raise arbitrary errors or read garbage on a truncated or corrupt file. The
walk is linear in the file size; anything wrong becomes a
:class:`~ortprep.core.errors.BadModelError`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ortprep.core.errors import BadModelError
from ortprep.core.ort.format import (
    FILE_IDENTIFIER,
    FLATBUFFERS_LIMIT,
    I32,
    MAX_GRAPH_DEPTH,
    MAX_TYPE_DEPTH,
    T_MAP,
    T_SEQUENCE,
    T_TENSOR,
    U8,
    U16,
    U32,
    bad_file,
    is_ort_bytes,
)

__all__ = ["SCHEMA", "verify_buffer"]


def verify_buffer(data: bytes, path: Path) -> None:
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
        raise bad_file(path, "over the 2 GiB FlatBuffers limit")
    try:
        _Verifier(data).run()
    except _CorruptError as exc:
        raise bad_file(path, str(exc)) from None


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
SCHEMA: dict[str, tuple[tuple[int, int, Any], ...]] = {
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
        (8, _UNION, (6, {T_TENSOR: "TensorTypeAndShape", T_SEQUENCE: "SequenceType",
                         T_MAP: "MapType"})),
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
        self._layouts: dict[str, dict[int, _Layout]] = {name: {} for name in SCHEMA}

    def run(self) -> None:
        """Verify the whole buffer from the root table; raise :class:`_CorruptError` if invalid."""
        if self._size < 8:
            raise _CorruptError("shorter than the 8-byte FlatBuffers header")
        root = U32.unpack_from(self._buf, 0)[0]
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
        vtable = pos - I32.unpack_from(buf, pos)[0]
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
            target = at + U32.unpack_from(buf, at)[0]
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
                    member = members.get(U8.unpack_from(buf, pos + type_field)[0])
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
        vt_size = U16.unpack_from(buf, vtable)[0]
        fields: list[tuple[int, int, Any]] = []
        for slot, kind, arg in SCHEMA[name]:
            field = U16.unpack_from(buf, vtable + slot)[0] if slot < vt_size else 0
            if field == 0:
                continue
            width = arg if kind == _SCALAR else 4
            if field < 4 or field + width > obj_size:
                fields.append((0, _OUTSIDE, None))  # reported when reached, as without the cache
                break
            if kind == _UNION:
                type_slot, members = arg
                type_field = (
                    U16.unpack_from(buf, vtable + type_slot)[0] if type_slot < vt_size else 0
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
        count = U32.unpack_from(self._buf, pos)[0]
        if pos + 4 + count * width > self._size:
            raise _vector_too_long(owner, pos, count)
        self._charge(4 + count * width)
        return count

    def _string(self, pos: int, owner: str) -> None:
        """Check a string: a vector of bytes, then a 0 (the most frequent check: inlined)."""
        buf, size = self._buf, self._size
        if pos + 4 > size:
            raise _vector_outside(owner, pos)
        length = U32.unpack_from(buf, pos)[0]
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
            string(at + U32.unpack_from(buf, at)[0], owner)

    def _tables(self, pos: int, name: str, owner: str, graphs: int, types: int) -> Iterator[_Item]:
        """Check a vector of tables now; yield its elements one by one (keeps the stack small)."""
        count = self._vector(pos, 4, owner)
        buf = self._buf
        return (
            (name, at + U32.unpack_from(buf, at)[0], graphs, types)
            for at in range(pos + 4, pos + 4 + 4 * count, 4)
        )
