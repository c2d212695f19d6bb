"""The read-only graph view of a parsed ``.onnx`` model (validation: :mod:`.onnx_file`).

Tensor data is never copied into the view: an :class:`~ortprep.core.graph.Initializer` reads its
values when a rule asks. Where the bytes of a tensor stored outside its proto live is a
:class:`DataPlaces`: the user's external data files (external data, as the EPs see it), or the
bytes of an inline tensor left in the model file by a lean read (:mod:`.lean_onnx`), which the
EPs see as inline, as they are in the user's file.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ortprep.core.graph import (
    DEFAULT_DOMAIN,
    Dim,
    Graph,
    Initializer,
    Model,
    Node,
    ValueType,
    by_attribute_name,
    normalize_domain,
)
from ortprep.core.onnx_file import _external_entries, _known_types

if TYPE_CHECKING:
    import onnx


@dataclass(frozen=True)
class DataPlaces:
    """Where the data of a view's external tensors lives, and what the EPs are to see.

    - ``folder``: the folder locations are relative to; a location found in none of the maps
      below is the user's external data file (external data to the EPs);
    - ``inline``: locations that stand for bytes inline in the user's model (a lean read left
      them in the file), with that file's folder: inline to the EPs, as in the user's file;
    - ``rewritten``: data files ORT wrote (its level-1 save), with their folder: a tensor there
      is external to the EPs only when the user's model kept it in ``external_names[name]``.
    """

    folder: Path
    inline: Mapping[str, Path] = field(default_factory=dict)
    rewritten: Mapping[str, Path] = field(default_factory=dict)
    external_names: Mapping[str, str] = field(default_factory=dict)

    def place(self, location: str, name: str) -> tuple[Path, str | None]:
        """The folder of tensor ``name`` stored at ``location``, and the user's external data
        file that holds it (None: inline in the user's model)."""
        folder = self.inline.get(location)
        if folder is not None:
            return folder, None
        folder = self.rewritten.get(location)
        if folder is not None:
            return folder, self.external_names.get(name)
        return self.folder, location

    def external_files(self, proto: onnx.ModelProto) -> tuple[str, ...]:
        """The user's external data files ``proto``'s tensors come from, in first-use order."""
        names: dict[str, None] = {}
        for tensor, info in _external_entries(proto):
            _, file = self.place(info.get("location", ""), tensor.name)
            if file is not None:
                names[file] = None
        return tuple(names)


@functools.lru_cache(maxsize=64)
def dtype_name(elem_type: int) -> str | None:
    """numpy-style name of an ONNX tensor element type (``float32``, ``int8``, ...)."""
    import onnx

    if elem_type == 0:
        return None
    try:
        return str(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, ValueError, TypeError):
        pass
    if elem_type not in _known_types():  # inputs, outputs and tensors were checked at load
        return f"undefined type {elem_type}"
    return onnx.TensorProto.DataType.Name(elem_type).lower()


def _value_type(vi: onnx.ValueInfoProto) -> ValueType:
    t = vi.type
    which = t.WhichOneof("value")
    if which == "tensor_type" or which == "sparse_tensor_type":
        tt = t.tensor_type if which == "tensor_type" else t.sparse_tensor_type
        shape: tuple[Dim, ...] | None = None
        if tt.HasField("shape"):
            dims: list[Dim] = []
            for d in tt.shape.dim:
                kind = d.WhichOneof("value")
                dims.append(
                    d.dim_value
                    if kind == "dim_value"
                    else d.dim_param
                    if kind == "dim_param"
                    else None
                )
            shape = tuple(dims)
        kind = "tensor" if which == "tensor_type" else "sparse_tensor"
        return ValueType(vi.name, dtype_name(tt.elem_type), shape, kind)
    if which == "sequence_type":
        elem = t.sequence_type.elem_type
        dt = dtype_name(elem.tensor_type.elem_type) if elem.HasField("tensor_type") else None
        return ValueType(vi.name, dt, None, "sequence")
    if which == "optional_type":
        return ValueType(vi.name, None, None, "optional")
    if which == "map_type":
        return ValueType(vi.name, None, None, "map")
    return ValueType(vi.name, None, None, "unknown")


def _value_types(infos: Iterable[onnx.ValueInfoProto], into: dict[str, ValueType]) -> None:
    """The types of many values, into ``into`` by name. A big graph has few distinct types
    (100,000 values, one type, on a long chain): values whose type is serialized alike share
    its parsing and its shape tuple."""
    seen: dict[bytes, ValueType] = {}
    for vi in infos:
        key = vi.type.SerializeToString()
        known = seen.get(key)
        if known is None:
            into[vi.name] = seen[key] = _value_type(vi)
        else:
            into[vi.name] = ValueType(vi.name, known.dtype, known.shape, known.kind)


def _tensor_nbytes(t: onnx.TensorProto) -> int:
    import onnx

    if t.data_location == onnx.TensorProto.EXTERNAL:
        info = {e.key: e.value for e in t.external_data}
        if "length" in info:
            return int(info["length"])
    if t.HasField("raw_data"):
        return len(t.raw_data)
    if t.data_type == onnx.TensorProto.STRING:
        return sum(len(s) for s in t.string_data)
    count = 1
    for d in t.dims:
        count *= d
    try:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
    except (KeyError, ValueError, TypeError):
        itemsize = 1
    return count * itemsize


def _initializer(t: onnx.TensorProto, places: DataPlaces) -> Initializer:
    import onnx

    location = file = None
    if t.data_location == onnx.TensorProto.EXTERNAL:
        location = {e.key: e.value for e in t.external_data}.get("location")
        if location is not None:
            folder, file = places.place(location, t.name)

    def load() -> Any:
        from onnx import numpy_helper

        if location is not None:
            from onnx.external_data_helper import load_external_data_for_tensor

            copy = onnx.TensorProto()
            copy.CopyFrom(t)
            load_external_data_for_tensor(copy, str(folder))
            return numpy_helper.to_array(copy)
        return numpy_helper.to_array(t)

    return Initializer(
        t.name,
        dtype_name(t.data_type),
        tuple(t.dims),
        _tensor_nbytes(t),
        file,
        load,
    )


def _attribute_value(attr: onnx.AttributeProto, places: DataPlaces) -> Any:
    import onnx

    a = onnx.AttributeProto
    kind = attr.type
    if kind == a.INT:
        return attr.i
    if kind == a.FLOAT:
        return attr.f
    if kind == a.STRING:
        return attr.s.decode("utf-8", errors="replace")
    if kind == a.INTS:
        return tuple(attr.ints)
    if kind == a.FLOATS:
        return tuple(attr.floats)
    if kind == a.STRINGS:
        return tuple(s.decode("utf-8", errors="replace") for s in attr.strings)
    if kind == a.TENSOR:
        return _initializer(attr.t, places)
    return None  # graphs are in Node.subgraphs; other kinds are not needed by any rule


class _SinceVersions:
    """Memoized ``since_version`` lookups in onnx's schema registry (None for unknown ops)."""

    def __init__(self, opsets: dict[str, int]) -> None:
        self.opsets = opsets
        self.cache: dict[tuple[str, str], int | None] = {}

    def __call__(self, op_type: str, domain: str) -> int | None:
        key = (op_type, domain)
        if key not in self.cache:
            import onnx.defs

            opset = self.opsets.get(domain)
            version = None
            if opset is not None:
                try:
                    schema = onnx.defs.get_schema(
                        op_type, opset, "" if domain == "ai.onnx" else domain
                    )
                    version = int(schema.since_version)
                except Exception:  # noqa: BLE001 -- contrib/custom ops have no onnx schema
                    version = None
            self.cache[key] = version
        return self.cache[key]


def graph_view(
    graph: onnx.GraphProto,
    path: str,
    places: DataPlaces,
    opsets: dict[str, int] | None = None,
    value_info: bool = True,
    _since: _SinceVersions | None = None,
) -> Graph:
    """The read-only view of one ONNX graph (recursively for subgraphs).

    With ``opsets`` (the model's imports), each node's ``since_version`` is looked up in onnx's
    schemas, so ``.onnx`` and ``.ort`` views answer the same question the same way.
    """
    since = _since or _SinceVersions(opsets or {})
    values: dict[str, ValueType] = {}
    if value_info:
        _value_types((*graph.input, *graph.value_info, *graph.output), values)
    inits = {t.name: _initializer(t, places) for t in graph.initializer}
    nodes = []
    for i, n in enumerate(graph.node):
        op_type = n.op_type
        own_name = n.name
        name = own_name or f"{op_type}_{i}"
        subgraphs = {}
        attrs = {}
        for attr in n.attribute:
            if attr.HasField("g"):
                subgraphs[attr.name] = graph_view(
                    attr.g, f"{path}/{name}:{attr.name}", places, _since=since
                )
            elif len(attr.graphs):
                for j, g in enumerate(attr.graphs):
                    subgraphs[f"{attr.name}[{j}]"] = graph_view(
                        g, f"{path}/{name}:{attr.name}[{j}]", places, _since=since
                    )
            else:
                value = _attribute_value(attr, places)
                if value is not None:  # no value the rules could read: as if absent
                    attrs[attr.name] = value
        domain = n.domain or DEFAULT_DOMAIN
        nodes.append(
            Node(
                index=i,
                name=name,
                op_type=op_type,
                domain=domain,
                since_version=since(op_type, domain),
                # a slice copies a repeated field in one call (iterating it costs a call per item)
                inputs=tuple(n.input[:]),
                outputs=tuple(n.output[:]),
                attributes=attrs,
                subgraphs=by_attribute_name(subgraphs),
                synthetic_name=not own_name,
            )
        )
    inputs, outputs = _io_types(graph, values)
    return Graph(path, tuple(nodes), inputs, outputs, inits, values)


def _io_types(
    graph: onnx.GraphProto, values: dict[str, ValueType]
) -> tuple[tuple[ValueType, ...], tuple[ValueType, ...]]:
    inputs = tuple(values.get(vi.name) or _value_type(vi) for vi in graph.input)
    outputs = tuple(values.get(vi.name) or _value_type(vi) for vi in graph.output)
    return inputs, outputs


def with_value_types(graph: Graph, typed: onnx.GraphProto) -> Graph:
    """``graph`` (a main graph without subgraphs) with its value types read from ``typed``, the
    same graph with shapes inferred: the nodes are kept, the types replaced."""
    import dataclasses

    values: dict[str, ValueType] = {}
    _value_types((*typed.input, *typed.value_info, *typed.output), values)
    inputs, outputs = _io_types(typed, values)
    return dataclasses.replace(graph, inputs=inputs, outputs=outputs, values=values)


def runtime_input_types(proto: onnx.ModelProto) -> tuple[ValueType, ...]:
    """The inputs a caller feeds (declared inputs without an initializer), without a full view."""
    inits = {t.name for t in proto.graph.initializer}
    return tuple(_value_type(vi) for vi in proto.graph.input if vi.name not in inits)


def model_view(
    proto: onnx.ModelProto,
    path: Path,
    external: tuple[str, ...] | None = None,
    value_info: bool = True,
    places: DataPlaces | None = None,
) -> Model:
    """The read-only view of a parsed, validated ONNX model (``external``: its external data
    files, when the caller already knows them; ``value_info=False``: the main graph's value
    types are left out, for :func:`with_value_types` to add; ``places``: where external tensor
    data lives, by default beside ``path``, all of it external data)."""
    places = places or DataPlaces(path.parent)
    opsets: dict[str, int] = {}
    for imp in proto.opset_import:
        opsets[normalize_domain(imp.domain)] = imp.version
    return Model(
        path=path,
        format="onnx",
        ir_version=proto.ir_version,
        producer_name=proto.producer_name,
        producer_version=proto.producer_version,
        opsets=opsets,
        graph=graph_view(proto.graph, "main", places, opsets, value_info),
        size_bytes=path.stat().st_size if path.exists() else proto.ByteSize(),
        external_data_files=places.external_files(proto) if external is None else external,
        metadata={p.key: p.value for p in proto.metadata_props},
    )


def read_onnx(path: Path) -> Model:
    """Open an ``.onnx`` file into the graph view (validated; no tensor data read: inline
    tensors are read from the file when a rule asks for their values)."""
    from ortprep.core.onnx_file import load_lean

    proto, external, scanned = load_lean(path)
    inline = {path.name: path.parent} if scanned is not None and scanned.tensors else {}
    return model_view(proto, path, external, places=DataPlaces(path.parent, inline))
