"""The reader: ``.ort`` (ORT-format, FlatBuffers) files into the shared graph view.

The reader follows the FlatBuffers offsets itself, with :mod:`struct`, as laid out by
onnxruntime's ``ort.fbs`` schema (reading through the generated Python classes that the
``onnxruntime`` package ships took over 5x longer). FlatBuffers for Python has no verifier
(ORT's C++ loader has one), and a reader that follows any offset it finds would raise arbitrary
errors or read garbage on a truncated or corrupt file. Before anything is read,
:func:`~ortprep.core.ort.verify.verify_buffer` walks every table, vector and string the
reader will touch and checks it against the buffer, in time linear in the file size. Anything
wrong becomes a :class:`~ortprep.core.errors.BadModelError`.

Tensor data is not copied: an initializer's :meth:`~ortprep.core.graph.Initializer.numpy` returns a
read-only view into the file's bytes when asked.
"""

from __future__ import annotations

import mmap
import re
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

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
from ortprep.core.ort.format import (
    A_FLOAT,
    A_FLOATS,
    A_GRAPH,
    A_GRAPHS,
    A_INT,
    A_INTS,
    A_STRING,
    A_STRINGS,
    A_TENSOR,
    A_TENSORS,
    DIM_PARAM,
    DIM_VALUE,
    DTYPES,
    FLATBUFFERS_LIMIT,
    HINT,
    I32,
    NO_INDEX,
    STRING_TYPE,
    T_MAP,
    T_SEQUENCE,
    T_TENSOR,
    U8,
    U16,
    U32,
    bad_file,
)
from ortprep.core.ort.tensors import TensorLoader, element_count, item_size
from ortprep.core.ort.verify import verify_buffer

__all__ = ["parse_ort_bytes", "read_ort", "verify_ort"]


def read_ort(path: Path, verify: bool = True) -> Model:
    """Open an ``.ort`` file into the graph view (verified; tensor data not copied).

    ``verify=False`` is only for files ORT wrote moments ago in this process (convert's own
    artifacts): the bounds checks guard against untrusted files and cost over half the read;
    such a file is mapped, not read (:func:`_map`).
    Raises :class:`BadModelError` when the file cannot be read or is not a valid ORT-format file.
    """
    if not verify:
        return _Reader(_map(path), path).model()
    return parse_ort_bytes(_read_bytes(path), path)


def verify_ort(path: Path) -> None:
    """Check that ``path`` is a well-formed ORT-format file, without opening its graph.

    For callers that hand the file to ORT's own (unverifying) flatbuffer readers next.
    """
    verify_buffer(_read_bytes(path), path)


def _map(path: Path) -> bytes | mmap.mmap:
    """The file mapped read-only (its bytes when it cannot be): reading the graph touches the
    graph's pages only, so the weights are never read into memory (BERT-base's 436 MB ``.ort``:
    416 MB of RSS read whole, a few MB mapped). Only for files nobody changes while they are
    mapped: a file truncated under a mapping faults its reader."""
    import mmap

    try:
        with path.open("rb") as f:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # an empty file, a file system without mappings
        return _read_bytes(path)


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > FLATBUFFERS_LIMIT:
            raise BadModelError(
                f"{path}: not a valid ORT-format file ({size / 2**30:.1f} GiB is over the "
                "2 GiB FlatBuffers limit)",
                HINT,
            )
        return path.read_bytes()
    except OSError as exc:
        raise BadModelError(f"{path}: cannot read the file ({exc.strerror or exc})") from None


def parse_ort_bytes(data: bytes, path: Path) -> Model:
    """Verify ``data`` as an ORT-format model and open it into the graph view.

    ``path`` names the model in messages and in :attr:`Model.path`. The returned initializers keep
    a reference to ``data`` and read from it when asked.
    """
    verify_buffer(data, path)
    return _Reader(data, path).model()


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


class _Texts(dict[int, str]):
    """String position -> text, decoded on first lookup.

    ORT stores a value name once and refers to it from every node (and node arg) that uses it:
    decoding it once also shares one str among them. A miss costs a Python call, a hit none.
    """

    def __init__(self, buf: bytes | mmap.mmap) -> None:
        super().__init__()
        self._buf = buf

    def __missing__(self, pos: int) -> str:
        buf, start = self._buf, pos + 4  # _decode, inlined: most strings are read only once
        text = self[pos] = buf[start : start + U32.unpack_from(buf, pos)[0]].decode(
            "utf-8", "replace"
        )
        return text


class _Reader:
    """Builds the graph view from a verified buffer, reading its tables directly.

    Follows only fields listed in the verifier's :data:`~ortprep.core.ort.verify.SCHEMA`, as the
    kind listed there, from the tables the verifier reached through the same fields, so every
    access stays inside what it checked. The field lists in the methods below restate
    ``ort.fbs`` (field ids in declaration order).
    """

    def __init__(self, buf: bytes | mmap.mmap, path: Path) -> None:
        if not isinstance(buf, bytes | bytearray | mmap.mmap):
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
        vtable = pos - I32.unpack_from(buf, pos)[0]
        fields = self._vtables.get(vtable)
        if fields is None:
            # The verifier checked vt_size >= 4, even, and the whole vtable inside the buffer.
            count = min(U16.unpack_from(buf, vtable)[0] // 2 - 2, _MAX_FIELDS)
            fields = _VTABLE_ENTRIES[count].unpack_from(buf, vtable + 4) + _ABSENT[count:]
            self._vtables[vtable] = fields
        return fields

    def _ref(self, at: int) -> int:
        """Position of the table, vector or string the offset stored at ``at`` refers to."""
        return at + U32.unpack_from(self._buf, at)[0]

    def _string(self, pos: int, field: int) -> str:
        """A string field of the table at ``pos`` (``field``: its offset), "" when absent."""
        if not field:
            return ""
        at = pos + field
        return self._texts[at + U32.unpack_from(self._buf, at)[0]]

    def _refs(self, pos: int, field: int) -> list[int]:
        """Positions of the tables (or strings) a vector-of-offsets field refers to."""
        if not field:
            return []
        buf = self._buf
        vector = self._ref(pos + field)
        count = U32.unpack_from(buf, vector)[0]
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
        buf, texts, u32 = self._buf, self._texts, U32.unpack_from
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
        count = U32.unpack_from(self._buf, vector)[0]
        return struct.unpack_from(f"<{count}{code}", self._buf, vector + 4) if count else ()

    def _scalar(self, kind: struct.Struct, pos: int, field: int, default: Any = 0) -> Any:
        return kind.unpack_from(self._buf, pos + field)[0] if field else default

    # ----------------------------------------------------------------- model

    def model(self) -> Model:
        session = U32.unpack_from(self._buf, 0)[0]
        # InferenceSession (ort.fbs): ort_version, model, session_state (deprecated),
        # kernel_type_str_resolver
        version_f, model_f, _, resolver_f = self._fields(session)[:4]
        version = self._string(session, version_f)
        if not version:
            raise bad_file(self._path, "no ORT format version")
        if not re.fullmatch(r"[0-9]{1,9}", version):
            raise bad_file(self._path, f"ORT format version {version[:40]!r} is not an integer")
        if not model_f:
            raise bad_file(self._path, "no model")
        m = self._ref(session + model_f)
        # Model (ort.fbs): ir_version, opset_import, producer_name, producer_version, domain,
        # model_version, doc_string, graph, graph_doc_string, metadata_props
        ir_f, opsets_f, producer_f, producer_version_f, _, _, _, graph_f, _, metadata_f = (
            self._fields(m)[:10]
        )
        if not graph_f:
            raise bad_file(self._path, "no graph")
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
        index = U32.unpack_from(buf, n + index_f)[0] if index_f else 0
        op_type = string(n, op_type_f)
        own_name = string(n, name_f)
        name = own_name or f"{op_type}_{index}"
        attributes: dict[str, Any] = {}
        subgraphs: dict[str, Graph] = {}
        for attr in self._refs(n, attributes_f) if attributes_f else ():
            fields = self._fields(attr)
            attr_name = string(attr, fields[0])
            kind = self._scalar(I32, attr, fields[2])
            if kind == A_GRAPH:
                if fields[7]:
                    subgraphs[attr_name] = self._graph(
                        self._ref(attr + fields[7]), f"{graph_path}/{name}:{attr_name}"
                    )
            elif kind == A_GRAPHS:
                for k, g in enumerate(self._refs(attr, fields[12])):
                    key = f"{attr_name}[{k}]"
                    subgraphs[key] = self._graph(g, f"{graph_path}/{name}:{key}")
            else:
                value = self._attribute_value(attr, fields, kind)
                if value is not None:  # no value the rules could read: as if absent (#13)
                    attributes[attr_name] = value
        return Node(
            index=index,
            name=name,
            op_type=op_type,
            domain=string(n, domain_f) or DEFAULT_DOMAIN,  # normalize_domain, inlined
            inputs=self._strings(n, inputs_f),
            outputs=self._strings(n, outputs_f),
            attributes=attributes,
            subgraphs=by_attribute_name(subgraphs),
            since_version=(I32.unpack_from(buf, n + since_f)[0] if since_f else 0) or None,
            synthetic_name=not own_name,
            execution_provider=string(n, provider_f) or None,
            implicit_inputs=self._strings(n, implicit_f),
        )

    def _attribute_value(self, attr: int, fields: tuple[int, ...], kind: int) -> Any:
        """A plain Python value; tensors as lazily read :class:`Initializer` objects."""
        # Attribute (ort.fbs): name, doc_string, type, f, i, s, t, g, floats, ints, strings,
        # tensors, graphs
        if kind == A_FLOAT:
            return self._scalar(_F32, attr, fields[3], 0.0)
        if kind == A_INT:
            return self._scalar(_I64, attr, fields[4])
        if kind == A_STRING:
            return self._string(attr, fields[5])
        if kind == A_TENSOR:
            return self._tensor(self._ref(attr + fields[6])) if fields[6] else None
        if kind == A_FLOATS:
            return self._scalars(attr, fields[8], "f")
        if kind == A_INTS:
            return self._scalars(attr, fields[9], "q")
        if kind == A_STRINGS:
            return self._strings(attr, fields[10])
        if kind == A_TENSORS:
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
        if kind == T_TENSOR:
            if value is None:
                return ValueType(name, None, None, "tensor")
            elem_f, shape_f = self._fields(value)[
                :2
            ]  # TensorTypeAndShape (ort.fbs): elem_type, shape
            dims = None
            if shape_f:
                shape = self._ref(value + shape_f)
                dims = tuple([self._dim(d) for d in self._refs(shape, self._fields(shape)[0])])
            return ValueType(name, DTYPES.get(self._scalar(I32, value, elem_f)), dims, "tensor")
        if kind == T_SEQUENCE:
            dtype = None
            # SequenceType (ort.fbs): elem_type
            elem_f = 0 if value is None else self._fields(value)[0]
            if elem_f and value is not None:
                elem_kind, elem = self._type_info(self._ref(value + elem_f))
                if elem_kind == T_TENSOR and elem is not None:
                    dtype = DTYPES.get(self._scalar(I32, elem, self._fields(elem)[0]))
            return ValueType(name, dtype, None, "sequence")
        if kind == T_MAP:
            return ValueType(name, None, None, "map")
        return ValueType(name, None, None, "unknown")

    def _type_info(self, info: int) -> tuple[int, int | None]:
        """A TypeInfo's union: (value_type, position of its table or None when absent)."""
        # TypeInfo (ort.fbs): denotation, value_type, value (the union's table)
        _, kind_f, value_f = self._fields(info)[:3]
        return self._scalar(U8, info, kind_f), (self._ref(info + value_f) if value_f else None)

    def _dim(self, d: int) -> Dim:
        value_f = self._fields(d)[0]  # Dimension (ort.fbs): value, denotation
        if not value_f:
            return None
        value = self._ref(d + value_f)
        # DimensionValue (ort.fbs): dim_type, dim_value, dim_param
        kind_f, dim_f, param_f = self._fields(value)[:3]
        kind = self._scalar(_I8, value, kind_f)
        if kind == DIM_VALUE:
            return self._scalar(_I64, value, dim_f)
        if kind == DIM_PARAM:
            return self._string(value, param_f) or None
        return None

    def _tensor(self, t: int) -> Initializer:
        # Tensor (ort.fbs): name, doc_string, dims, data_type, raw_data, string_data,
        # external_data_offset
        name_f, _, dims_f, type_f, raw_f, strings_f, external_f = self._fields(t)[:7]
        name = self._string(t, name_f)
        type_id = self._scalar(I32, t, type_f)
        dims = self._scalars(t, dims_f, "q")
        raw = None
        if raw_f:
            vector = self._ref(t + raw_f)
            raw = (vector + 4, U32.unpack_from(self._buf, vector)[0])
        strings = self._refs(t, strings_f)
        external = self._scalar(_I64, t, external_f, -1)
        if type_id == STRING_TYPE:
            nbytes = sum(U32.unpack_from(self._buf, s)[0] for s in strings)
        elif raw is not None or external < 0:
            nbytes = 0 if raw is None else raw[1]
        else:
            nbytes = element_count(dims) * item_size(type_id)
        return Initializer(
            name=name,
            dtype=DTYPES.get(type_id),
            dims=dims,
            nbytes=nbytes,
            loader=TensorLoader(self._buf, self._path, name, type_id, dims, raw, strings, external),
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
            indices = tuple([None if i == NO_INDEX else i for i in raw])
            num_inputs = self._scalar(U32, nodes, inputs_f)
            num_outputs = self._scalar(U32, nodes, outputs_f)
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
                            self._scalar(U32, arg, index_f),
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
