"""Opening ``.ort`` (ORT-format, FlatBuffers) files into the shared graph view.

The flatbuffer classes that the ``onnxruntime`` package ships read the file. Python's
``flatbuffers`` has no verifier (ORT's C++ loader has one), and its accessors follow any offset
they find, so a truncated or corrupt file would raise arbitrary errors or read garbage. Before
anything is read, :class:`_Verifier` walks every table, vector and string the reader will touch
and checks it against the buffer, in time linear in the file size. Anything wrong becomes a
:class:`~ortprep.core.errors.BadModelError`.

Tensor data is not copied: an initializer's :meth:`~ortprep.core.graph.Initializer.numpy` returns a
read-only view into the file's bytes when asked.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator, Mapping
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
    artifacts): the bounds checks guard against untrusted files and cost a third of the read.
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


def _fbs() -> Any:
    """The flatbuffer classes shipped with onnxruntime (importing its tools package adds them)."""
    import onnxruntime.tools.ort_format_model  # noqa: F401  (puts ort_flatbuffers_py on sys.path)
    import ort_flatbuffers_py.fbs as fbs

    return fbs


# --------------------------------------------------------------------------- verifier


class _CorruptError(Exception):
    """Internal: what is wrong with the buffer (turned into a BadModelError by the caller)."""


# Field kinds. A table field is (vtable slot, kind, argument): the slot is 4 + 2 * field id,
# deprecated fields included; the argument is a scalar's width, a vector's element width, a
# table's name, or for a union (slot of its type field, {type value: table name}).
_SCALAR, _STRING, _TABLE, _VECTOR, _STRINGS, _TABLES, _UNION = range(7)

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

    def run(self) -> None:
        """Verify the whole buffer from the root table; raise :class:`_CorruptError` if invalid."""
        if self._size < 8:
            raise _CorruptError("shorter than the 8-byte FlatBuffers header")
        root = _U32.unpack_from(self._buf, 0)[0]
        stack: list[Iterator[_Item]] = [iter([("InferenceSession", root, 0, 0)])]
        while stack:
            item = next(stack[-1], None)
            if item is None:
                stack.pop()
            else:
                stack.extend(self._table(*item))

    def _charge(self, nbytes: int) -> None:
        self._budget -= nbytes
        if self._budget < 0:
            raise _CorruptError("tables shared far more often than a valid file needs")

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
        if vtable < 0 or vtable + 4 > size:
            raise _CorruptError(f"{name} table at byte {pos} has its vtable outside the file")
        vt_size, obj_size = _VTABLE_HEAD.unpack_from(buf, vtable)
        if vt_size < 4 or vt_size % 2 or vtable + vt_size > size:
            raise _CorruptError(f"{name} table at byte {pos} has a malformed vtable")
        if obj_size < 4 or pos + obj_size > size:
            raise _CorruptError(f"{name} table at byte {pos} runs past the end of the file")
        self._charge(obj_size)
        children: list[Iterator[_Item]] = []
        for slot, kind, arg in _SCHEMA[name]:
            field = _U16.unpack_from(buf, vtable + slot)[0] if slot < vt_size else 0
            if field == 0:
                continue
            width = arg if kind == _SCALAR else 4
            if field < 4 or field + width > obj_size:
                raise _CorruptError(f"{name} table at byte {pos} has a field outside itself")
            if kind == _SCALAR:
                continue
            at = pos + field
            target = at + _U32.unpack_from(buf, at)[0]
            if kind == _STRING:
                self._string(target, name)
            elif kind == _TABLE:
                children.append(iter([(arg, target, graphs, types)]))
            elif kind == _VECTOR:
                self._vector(target, arg, name)
            elif kind == _STRINGS:
                self._strings(target, name)
            elif kind == _TABLES:
                children.append(self._tables(target, arg, name, graphs, types))
            else:
                member = self._union_member(pos, vtable, vt_size, obj_size, arg)
                if member is not None:
                    children.append(iter([(member, target, graphs, types)]))
        return children

    def _union_member(
        self, pos: int, vtable: int, vt_size: int, obj_size: int, arg: Any
    ) -> str | None:
        """Table name of a union's value, from its type field (None when absent or unknown)."""
        type_slot, members = arg
        field = _U16.unpack_from(self._buf, vtable + type_slot)[0] if type_slot < vt_size else 0
        if field == 0 or field + 1 > obj_size:
            return None
        return members.get(_U8.unpack_from(self._buf, pos + field)[0])

    def _vector(self, pos: int, width: int, owner: str) -> int:
        """Check a vector of ``width``-byte elements at ``pos``; return its length."""
        if pos + 4 > self._size:
            raise _CorruptError(f"a vector of a {owner} table at byte {pos} lies outside the file")
        count = _U32.unpack_from(self._buf, pos)[0]
        if pos + 4 + count * width > self._size:
            raise _CorruptError(
                f"a vector of a {owner} table at byte {pos} ({count} elements) runs past the end "
                "of the file"
            )
        self._charge(4 + count * width)
        return count

    def _string(self, pos: int, owner: str) -> None:
        length = self._vector(pos, 1, owner)
        end = pos + 4 + length
        if end >= self._size or self._buf[end] != 0:
            raise _CorruptError(f"a string of a {owner} table at byte {pos} is not terminated")

    def _strings(self, pos: int, owner: str) -> None:
        count = self._vector(pos, 4, owner)
        buf = self._buf
        for at in range(pos + 4, pos + 4 + 4 * count, 4):
            self._string(at + _U32.unpack_from(buf, at)[0], owner)

    def _tables(self, pos: int, name: str, owner: str, graphs: int, types: int) -> Iterator[_Item]:
        """Check a vector of tables now; yield its elements one by one (keeps the stack small)."""
        count = self._vector(pos, 4, owner)
        buf = self._buf
        return (
            (name, at + _U32.unpack_from(buf, at)[0], graphs, types)
            for at in range(pos + 4, pos + 4 + 4 * count, 4)
        )


# --------------------------------------------------------------------------- reader


def _text(raw: bytes | None) -> str:
    return "" if raw is None else raw.decode("utf-8", errors="replace")


def _op_id(op_id: str) -> str:
    """``domain:op_type:since_version`` with the ONNX domain written ``ai.onnx``."""
    return DEFAULT_DOMAIN + op_id if op_id.startswith(":") else op_id


class _Reader:
    """Builds the graph view from a verified buffer with onnxruntime's flatbuffer classes.

    Reads only fields listed in :data:`_SCHEMA`, so every access stays inside the buffer.
    """

    def __init__(self, buf: bytes, path: Path) -> None:
        self._buf = buf
        self._path = path
        self._fbs = _fbs()
        self._records: dict[str, list[RuntimeOptimizationRecord]] = {}

    def model(self) -> Model:
        session = self._fbs.InferenceSession.InferenceSession.GetRootAs(self._buf, 0)
        version = _text(session.OrtVersion())
        if not version:
            raise _bad(self._path, "no ORT format version")
        if not re.fullmatch(r"[0-9]{1,9}", version):
            raise _bad(self._path, f"ORT format version {version[:40]!r} is not an integer")
        m = session.Model()
        if m is None:
            raise _bad(self._path, "no model")
        g = m.Graph()
        if g is None:
            raise _bad(self._path, "no graph")
        opsets = {}
        for i in range(m.OpsetImportLength()):
            imp = m.OpsetImport(i)
            opsets[normalize_domain(_text(imp.Domain()))] = imp.Version()
        metadata = {}
        for i in range(m.MetadataPropsLength()):
            prop = m.MetadataProps(i)
            metadata[_text(prop.Key())] = _text(prop.Value())
        graph = self._graph(g, "main")
        info = OrtFormatInfo(
            format_version=version,
            runtime_optimizations={k: tuple(v) for k, v in self._records.items()},
            kernel_type_str_resolver=self._kernel_type_str_resolver(session),
        )
        return Model(
            path=self._path,
            format="ort",
            ir_version=m.IrVersion(),
            producer_name=_text(m.ProducerName()),
            producer_version=_text(m.ProducerVersion()),
            opsets=opsets,
            graph=graph,
            size_bytes=len(self._buf),
            metadata=metadata,
            ort=info,
        )

    # ----------------------------------------------------------------- graphs and nodes

    def _graph(self, g: Any, path: str) -> Graph:
        values = _LazyValues(g, self._value_type)
        inits = {}
        for i in range(g.InitializersLength()):
            init = self._tensor(g.Initializers(i))
            inits[init.name] = init
        self._collect_records(g)  # before the subgraphs' records, which the nodes add
        nodes = tuple(self._node(g.Nodes(i), path) for i in range(g.NodesLength()))
        inputs = tuple(
            self._declared(_text(g.Inputs(i)), values, inits) for i in range(g.InputsLength())
        )
        outputs = tuple(
            self._declared(_text(g.Outputs(i)), values, inits) for i in range(g.OutputsLength())
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

    def _node(self, n: Any, graph_path: str) -> Node:
        index = n.Index()
        op_type = _text(n.OpType())
        own_name = _text(n.Name())
        name = own_name or f"{op_type}_{index}"
        attributes: dict[str, Any] = {}
        subgraphs: dict[str, Graph] = {}
        for j in range(n.AttributesLength()):
            attr = n.Attributes(j)
            attr_name = _text(attr.Name())
            kind = attr.Type()
            if kind == _A_GRAPH:
                g = attr.G()
                if g is not None:
                    subgraphs[attr_name] = self._graph(g, f"{graph_path}/{name}:{attr_name}")
            elif kind == _A_GRAPHS:
                for k in range(attr.GraphsLength()):
                    key = f"{attr_name}[{k}]"
                    subgraphs[key] = self._graph(attr.Graphs(k), f"{graph_path}/{name}:{key}")
            else:
                attributes[attr_name] = self._attribute_value(attr, kind)
        return Node(
            index=index,
            name=name,
            op_type=op_type,
            domain=normalize_domain(_text(n.Domain())),
            inputs=tuple(_text(n.Inputs(j)) for j in range(n.InputsLength())),
            outputs=tuple(_text(n.Outputs(j)) for j in range(n.OutputsLength())),
            attributes=attributes,
            subgraphs=subgraphs,
            since_version=n.SinceVersion() or None,
            synthetic_name=not own_name,
            execution_provider=_text(n.ExecutionProviderType()) or None,
            implicit_inputs=tuple(
                _text(n.ImplicitInputs(j)) for j in range(n.ImplicitInputsLength())
            ),
        )

    def _attribute_value(self, attr: Any, kind: int) -> Any:
        """A plain Python value; tensors as lazily read :class:`Initializer` objects."""
        if kind == _A_FLOAT:
            return attr.F()
        if kind == _A_INT:
            return attr.I()
        if kind == _A_STRING:
            return _text(attr.S())
        if kind == _A_TENSOR:
            t = attr.T()
            return None if t is None else self._tensor(t)
        if kind == _A_FLOATS:
            return tuple(attr.FloatsAsNumpy().tolist()) if attr.FloatsLength() else ()
        if kind == _A_INTS:
            return tuple(attr.IntsAsNumpy().tolist()) if attr.IntsLength() else ()
        if kind == _A_STRINGS:
            return tuple(_text(attr.Strings(k)) for k in range(attr.StringsLength()))
        if kind == _A_TENSORS:
            return tuple(self._tensor(attr.Tensors(k)) for k in range(attr.TensorsLength()))
        return None  # undefined or sparse: ORT format stores no value for them

    # ----------------------------------------------------------------- values and tensors

    def _value_type(self, vi: Any) -> ValueType:
        name = _text(vi.Name())
        info = vi.Type()
        if info is None:
            return ValueType(name, None, None, "unknown")
        kind = info.ValueType()
        if kind == _T_TENSOR:
            tensor = self._union(info, self._fbs.TensorTypeAndShape.TensorTypeAndShape)
            if tensor is None:
                return ValueType(name, None, None, "tensor")
            shape = tensor.Shape()
            dims = None
            if shape is not None:
                dims = tuple(_dim(shape.Dim(k)) for k in range(shape.DimLength()))
            return ValueType(name, _DTYPES.get(tensor.ElemType()), dims, "tensor")
        if kind == _T_SEQUENCE:
            seq = self._union(info, self._fbs.SequenceType.SequenceType)
            elem = None if seq is None else seq.ElemType()
            dtype = None
            if elem is not None and elem.ValueType() == _T_TENSOR:
                tensor = self._union(elem, self._fbs.TensorTypeAndShape.TensorTypeAndShape)
                dtype = None if tensor is None else _DTYPES.get(tensor.ElemType())
            return ValueType(name, dtype, None, "sequence")
        if kind == _T_MAP:
            return ValueType(name, None, None, "map")
        return ValueType(name, None, None, "unknown")

    @staticmethod
    def _union(info: Any, cls: Callable[[], Any]) -> Any:
        table = info.Value()
        if table is None:
            return None
        obj = cls()
        obj.Init(table.Bytes, table.Pos)
        return obj

    def _tensor(self, t: Any) -> Initializer:
        name = _text(t.Name())
        type_id = t.DataType()
        dims = tuple(t.DimsAsNumpy().tolist()) if t.DimsLength() else ()
        if type_id == _STRING_TYPE:
            nbytes = sum(len(t.StringData(k)) for k in range(t.StringDataLength()))
        elif not t.RawDataIsNone() or t.ExternalDataOffset() < 0:
            nbytes = t.RawDataLength()
        else:
            nbytes = _count(dims) * _itemsize(type_id)
        return Initializer(
            name=name,
            dtype=_DTYPES.get(type_id),
            dims=dims,
            nbytes=nbytes,
            loader=_TensorLoader(t, self._path, name, type_id, dims),
        )

    # ----------------------------------------------------------------- ORT-only information

    def _collect_records(self, g: Any) -> None:
        """Add a graph's saved runtime optimizations to the model's records, by optimizer.

        Subgraphs have records too (ORT saves them per graph); they are merged in after the main
        graph's, although their node indices refer to their own graph: the view has no field
        that says which graph a record belongs to.
        """
        opt = g.RuntimeOptimizations()
        if opt is None:
            return
        for i in range(opt.RecordsLength()):
            entry = opt.Records(i)
            records = self._records.setdefault(_text(entry.OptimizerName()), [])
            for j in range(entry.RuntimeOptimizationRecordsLength()):
                records.append(_record(entry.RuntimeOptimizationRecords(j)))

    def _kernel_type_str_resolver(
        self, session: Any
    ) -> dict[str, dict[str, tuple[tuple[bool, int], ...]]]:
        resolver = session.KernelTypeStrResolver()
        result: dict[str, dict[str, tuple[tuple[bool, int], ...]]] = {}
        if resolver is None:
            return result  # format versions before 5 have none
        for i in range(resolver.OpKernelTypeStrArgsLength()):
            entry = resolver.OpKernelTypeStrArgs(i)
            args: dict[str, tuple[tuple[bool, int], ...]] = {}
            for j in range(entry.KernelTypeStrArgsLength()):
                type_str = entry.KernelTypeStrArgs(j)
                args[_text(type_str.KernelTypeStr())] = tuple(
                    (arg.ArgType() == 0, arg.Index())  # ArgType INPUT = 0, OUTPUT = 1
                    for arg in (type_str.Args(k) for k in range(type_str.ArgsLength()))
                )
            result[_op_id(_text(entry.OpId()))] = args
        return result


class _LazyValues(Mapping[str, ValueType]):
    """A graph's value types, decoded from the file on first access.

    Decoding a type through the generated flatbuffer accessors costs about 0.2 ms; most readers
    (inspect, convert's summary, configs) never look at most values, so only names are read here.
    """

    def __init__(self, g: Any, decode: Callable[[Any], ValueType]) -> None:
        self._g = g
        self._decode = decode
        self._pos: dict[str, int] = {}
        for i in range(g.NodeArgsLength()):
            self._pos.setdefault(_text(g.NodeArgs(i).Name()), i)
        self._done: dict[str, ValueType] = {}

    def __getitem__(self, name: str) -> ValueType:
        hit = self._done.get(name)
        if hit is None:
            hit = self._decode(self._g.NodeArgs(self._pos[name]))
            self._done[name] = hit
        return hit

    def __iter__(self) -> Iterator[str]:
        return iter(self._pos)

    def __len__(self) -> int:
        return len(self._pos)

    def __contains__(self, name: object) -> bool:
        return name in self._pos


def _dim(d: Any) -> Dim:
    value = d.Value()
    if value is None:
        return None
    kind = value.DimType()
    if kind == _DIM_VALUE:
        return value.DimValue()
    if kind == _DIM_PARAM:
        return _text(value.DimParam()) or None
    return None


def _record(r: Any) -> RuntimeOptimizationRecord:
    nodes = r.NodesToOptimizeIndices()
    indices: tuple[int | None, ...] = ()
    num_inputs = num_outputs = 0
    if nodes is not None:
        if nodes.NodeIndicesLength():
            raw = nodes.NodeIndicesAsNumpy().tolist()
            indices = tuple(None if i == _NO_INDEX else i for i in raw)
        num_inputs, num_outputs = nodes.NumInputs(), nodes.NumOutputs()
    return RuntimeOptimizationRecord(
        action_id=_text(r.ActionId()),
        node_indices=indices,
        num_inputs=num_inputs,
        num_outputs=num_outputs,
        produced_op_ids=tuple(
            _op_id(_text(r.ProducedOpIds(k))) for k in range(r.ProducedOpIdsLength())
        ),
    )


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
    """Reads one tensor's values from the verified buffer when asked (a view, not a copy)."""

    __slots__ = ("_dims", "_name", "_path", "_tensor", "_type_id")

    def __init__(self, tensor: Any, path: Path, name: str, type_id: int, dims: tuple[int, ...]):
        self._tensor = tensor
        self._path = path
        self._name = name
        self._type_id = type_id
        self._dims = dims

    def __call__(self) -> np.ndarray:
        import numpy as np

        t, dims = self._tensor, self._dims
        if any(d < 0 for d in dims):
            raise self._bad(f"has a negative dimension {dims}")
        count = _count(dims)
        dtype = _DTYPES.get(self._type_id)
        if dtype is None:
            raise self._bad(f"has the unknown data type {self._type_id}")
        if self._type_id == _STRING_TYPE:
            if t.StringDataLength() != count:
                raise self._bad(f"has {t.StringDataLength()} strings for dims {dims}")
            # str elements, as onnx.numpy_helper.to_array gives for an ONNX string tensor
            values = [_text(t.StringData(k)) for k in range(count)]
            return np.array(values, dtype=object).reshape(dims)
        if t.RawDataIsNone() and t.ExternalDataOffset() >= 0:
            raise BadModelError(
                f"{self._path}: initializer {self._name!r} keeps its data outside the .ort file",
                "ortprep reads only ORT-format files with their data inline",
            )
        itemsize = _itemsize(self._type_id)
        size = t.RawDataLength()
        if size != count * itemsize:
            raise self._bad(f"has {size} bytes of data for dims {dims} of {dtype}")
        raw = t.RawDataAsNumpy() if size else np.zeros(0, np.uint8)
        return raw.view(_numpy_dtype(dtype)).reshape(dims)

    def _bad(self, what: str) -> BadModelError:
        return _bad(self._path, f"initializer {self._name!r} {what}")
