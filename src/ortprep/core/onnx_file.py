"""Opening ``.onnx`` files: validation of the file and its external data, then the graph view.

Tensor data stays where it is: external data is checked (exists, inside the model's folder, long
enough) but not read; initializer values are read only when a rule asks for them.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from collections.abc import Iterable
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
    ValueType,
    by_attribute_name,
    normalize_domain,
)

if TYPE_CHECKING:
    import onnx

PROTOBUF_LIMIT = 2**31 - 1
"""Protobuf cannot parse a message of 2 GiB or more; such models must keep weights outside."""

_HINT_CORRUPT = "re-export the model, or check that the download or copy finished"


def load_proto(path: Path) -> onnx.ModelProto:
    """Parse and validate ``path`` as an ONNX model, without loading external tensor data.

    Raises :class:`BadModelError` naming the problem: empty, over the protobuf limit, corrupt or
    truncated, not a model, missing or escaping external data, opset newer than supported.
    """
    return load_checked(path)[0]


def load_checked(path: Path) -> tuple[onnx.ModelProto, tuple[str, ...]]:
    """:func:`load_proto`, plus the external data files the model uses (one walk finds both)."""
    import onnx
    from google.protobuf.message import DecodeError

    size = path.stat().st_size
    if size == 0:
        raise BadModelError(f"{path}: the file is empty", _HINT_CORRUPT)
    if size > PROTOBUF_LIMIT:
        raise BadModelError(
            f"{path}: {size / 2**30:.1f} GiB is over protobuf's 2 GiB limit for one file",
            "save the model with its weights as external data "
            "(onnx.save(model, path, save_as_external_data=True))",
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadModelError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if data[4:8] == b"ORTM":
        raise BadModelError(
            f"{path}: this is an ORT-format model named like an ONNX file",
            "rename it to .ort",
        )
    try:
        proto = onnx.ModelProto.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        if "MaxDepth" in str(exc) or "recursion" in str(exc).lower():
            raise BadModelError(
                f"{path}: the model nests subgraphs (If, Loop, Scan bodies) deeper than protobuf "
                "can parse (100 levels of messages, about 30 nested subgraphs)",
                "flatten the nested control flow; ONNX Runtime cannot load it either",
            ) from None
        raise BadModelError(
            f"{path}: not a readable ONNX model (corrupt or truncated protobuf: {exc})",
            _HINT_CORRUPT,
        ) from None
    del data
    _check_is_model(proto, path)
    _check_text(path, "the producer", proto.producer_name, proto.producer_version, proto.domain)
    _check_opsets(proto, path)
    external = _external_entries(proto, path)  # also checks every node has an op type
    _check_external_data(external, path)
    return proto, tuple(dict.fromkeys(info.get("location", "") for _, info in external))


def _check_is_model(proto: onnx.ModelProto, path: Path) -> None:
    # Random bytes and text can decode as a protobuf that happens to be valid wire format;
    # a real model always has an IR version, an opset import and a graph with a node or output.
    graph = proto.graph
    if proto.ir_version <= 0 or not proto.opset_import or not (graph.node or graph.output):
        raise BadModelError(
            f"{path}: not an ONNX model (no IR version, opset import or graph)",
            "pass an .onnx model file, an .ort file, or a folder of models",
        )


def _check_opsets(proto: onnx.ModelProto, path: Path) -> None:
    import onnx.defs

    newest = onnx.defs.onnx_opset_version()
    for imp in proto.opset_import:
        if imp.domain in ("", "ai.onnx") and imp.version > newest:
            raise BadModelError(
                f"{path}: uses ONNX opset {imp.version}, newer than the installed onnx "
                f"{onnx.__version__} supports ({newest})",
                "upgrade onnx and onnxruntime, or export the model with an older opset",
            )
    if proto.ir_version > onnx.IR_VERSION:
        raise BadModelError(
            f"{path}: IR version {proto.ir_version} is newer than the installed onnx "
            f"{onnx.__version__} supports ({onnx.IR_VERSION})",
            "upgrade onnx and onnxruntime, or export the model with an older IR version",
        )


def _external_entries(
    proto: onnx.ModelProto, path: Path | None = None
) -> list[tuple[onnx.TensorProto, dict[str, str]]]:
    """Every tensor stored outside the file, with its data location fields, in one walk over
    every graph. With ``path``, a node without an op type (a truncated or corrupt file) raises."""
    import onnx

    external = onnx.TensorProto.EXTERNAL
    found: list[tuple[onnx.TensorProto, dict[str, str]]] = []

    def note(t: onnx.TensorProto) -> None:
        if path is not None and t.data_type not in _known_types():
            _bad_type(path, "tensor", t.name, t.data_type)
        if t.data_location == external:
            found.append((t, {e.key: e.value for e in t.external_data}))

    stack = [proto.graph]
    while stack:
        g = stack.pop()
        if path is not None:
            _check_value_infos(g, path)
        for t in g.initializer:
            note(t)
        for sp in g.sparse_initializer:
            note(sp.values)
            note(sp.indices)
        for node in g.node:
            if path is not None and not node.op_type:
                raise BadModelError(
                    f"{path}: not a valid ONNX model (a node in graph {g.name!r} has no op type; "
                    "the file is probably truncated or corrupt)",
                    _HINT_CORRUPT,
                )
            if path is not None:
                _check_text(path, f"node {node.name!r}", node.name, node.op_type, node.domain)
                _check_text(path, f"node {node.name!r}", *node.input, *node.output)
            for attr in node.attribute:
                if attr.HasField("t"):
                    note(attr.t)
                for t in attr.tensors:
                    note(t)
                if attr.HasField("g"):
                    stack.append(attr.g)
                stack.extend(attr.graphs)
    return found


@functools.cache
def _known_types() -> frozenset[int]:
    """The tensor element types onnx defines (0, undefined, included: left to ORT to judge)."""
    import onnx

    return frozenset(onnx.TensorProto.DataType.values())


def _bad_type(path: Path, what: str, name: str, elem_type: int) -> None:
    raise BadModelError(
        f"{path}: {what} {name!r} has element type {elem_type}, which ONNX does not define",
        _HINT_CORRUPT,
    )


def _check_text(path: Path, where: str, *texts: str | bytes) -> None:
    """Names must be text. onnx.proto is proto2, whose parser does not check UTF-8: a name that
    is not valid UTF-8 comes back as ``bytes``, which no output (JSON, tables, ORT) can carry."""
    try:
        "".join(texts)  # type: ignore[arg-type]  # bytes among them raise
    except TypeError:
        bad = next(t for t in texts if isinstance(t, bytes))
        raise BadModelError(
            f"{path}: {where}: the name {bad!r} is not valid UTF-8 (ONNX names are UTF-8 text)",
            "re-export the model; a tool wrote raw bytes where ONNX expects text",
        ) from None


def _check_value_infos(g: onnx.GraphProto, path: Path) -> None:
    """Graph inputs and outputs (what callers feed and read) must have element types onnx
    defines, and they and the initializers text names; other values are read leniently
    (:func:`dtype_name`)."""
    _check_text(path, f"graph {g.name!r}", g.name, *[t.name for t in g.initializer])
    for kind, infos in (("input", g.input), ("output", g.output)):
        for vi in infos:
            _check_text(path, f"graph {kind}", vi.name)
            t = vi.type
            which = t.WhichOneof("value")
            if which in ("tensor_type", "sparse_tensor_type"):
                tt = getattr(t, which)
                _check_text(path, f"graph {kind} {vi.name!r}", *[d.dim_param for d in tt.shape.dim])
                elem = tt.elem_type
                if elem not in _known_types():
                    _bad_type(path, kind, vi.name, elem)


def _check_external_data(
    entries: list[tuple[onnx.TensorProto, dict[str, str]]], path: Path
) -> None:
    base = path.parent.resolve()
    sizes: dict[Path, int] = {}
    for tensor, info in entries:
        location = info.get("location", "")
        if not location:
            raise BadModelError(
                f"{path}: tensor {tensor.name!r} is marked external but names no file",
                _HINT_CORRUPT,
            )
        offset = _field_int(info, "offset", tensor.name, path)
        length = _field_int(info, "length", tensor.name, path)
        size = _data_file_size(base, location, tensor.name, path, sizes)
        if length is not None and (offset or 0) + length > size:
            raise BadModelError(
                f"{path}: external data file {location!r} is shorter than tensor "
                f"{tensor.name!r} needs ({(offset or 0) + length} > {size} bytes)",
                "the data file is truncated or belongs to another export",
            )


def _field_int(info: dict[str, str], key: str, tensor: str, path: Path) -> int | None:
    """An external-data ``offset``/``length`` field: a non-negative integer, or absent."""
    value = info.get(key)
    if value is None or value == "":
        return None
    text = value.strip()
    if not text.isdigit() or not text.isascii() or len(text) > 19:
        raise BadModelError(
            f"{path}: tensor {tensor!r} has external data {key} {value!r}, not a byte count",
            _HINT_CORRUPT,
        )
    return int(text)


def _data_file_size(
    base: Path, location: str, tensor: str, path: Path, sizes: dict[Path, int]
) -> int:
    """The size of the external data file ``location`` names (resolved below ``base``).

    ONNX stores the location as a relative path; a name the OS cannot take (a NUL byte, over
    the length limits, a symlink loop) is a bad model, not a crash.
    """
    if "\0" in location:
        raise BadModelError(
            f"{path}: tensor {tensor!r} names its external data file with a NUL byte "
            f"({location!r})",
            _HINT_CORRUPT,
        )
    try:
        target = (base / location).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        raise BadModelError(
            f"{path}: external data file {location!r} of tensor {tensor!r} cannot be "
            f"resolved ({getattr(exc, 'strerror', None) or exc})",
            "the data file must be a regular file beside the model",
        ) from None
    if not target.is_relative_to(base):
        raise BadModelError(
            f"{path}: external data file {location!r} of tensor {tensor!r} "
            "lies outside the model's folder",
            "external data must sit beside the model or below its folder",
        )
    if target in sizes:
        return sizes[target]
    try:
        st = target.stat()
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise BadModelError(
                f"{path}: external data file {location!r} (tensor {tensor!r}) is missing",
                "copy the data file next to the model; it must keep the name the model gives",
            ) from None
        raise BadModelError(
            f"{path}: external data file {location!r} (tensor {tensor!r}) cannot be read "
            f"({exc.strerror or exc})",
            "the data file must be a regular file beside the model",
        ) from None
    if not stat.S_ISREG(st.st_mode):
        raise BadModelError(
            f"{path}: external data file {location!r} (tensor {tensor!r}) is not a regular file",
            "the data file must be a regular file beside the model",
        )
    sizes[target] = st.st_size
    return st.st_size


def external_data_files(proto: onnx.ModelProto) -> tuple[str, ...]:
    """Relative names of the external data files a model uses, in first-use order."""
    names: dict[str, None] = {}
    for _, info in _external_entries(proto):
        names[info.get("location", "")] = None
    return tuple(names)


# --------------------------------------------------------------------------- graph view


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


def _initializer(t: onnx.TensorProto, base: Path) -> Initializer:
    import onnx

    external = None
    if t.data_location == onnx.TensorProto.EXTERNAL:
        external = {e.key: e.value for e in t.external_data}.get("location")

    def load() -> Any:
        from onnx import numpy_helper

        if external is not None:
            from onnx.external_data_helper import load_external_data_for_tensor

            copy = onnx.TensorProto()
            copy.CopyFrom(t)
            load_external_data_for_tensor(copy, str(base))
            return numpy_helper.to_array(copy)
        return numpy_helper.to_array(t)

    return Initializer(
        t.name, dtype_name(t.data_type), tuple(t.dims), _tensor_nbytes(t), external, load
    )


def _attribute_value(attr: onnx.AttributeProto, base: Path) -> Any:
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
        return _initializer(attr.t, base)
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
    base: Path,
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
    inits = {t.name: _initializer(t, base) for t in graph.initializer}
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
                    attr.g, f"{path}/{name}:{attr.name}", base, _since=since
                )
            elif len(attr.graphs):
                for j, g in enumerate(attr.graphs):
                    subgraphs[f"{attr.name}[{j}]"] = graph_view(
                        g, f"{path}/{name}:{attr.name}[{j}]", base, _since=since
                    )
            else:
                value = _attribute_value(attr, base)
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
) -> Model:
    """The read-only view of a parsed, validated ONNX model (``external``: its external data
    files, when the caller already knows them; ``value_info=False``: the main graph's value
    types are left out, for :func:`with_value_types` to add)."""
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
        graph=graph_view(proto.graph, "main", path.parent, opsets, value_info),
        size_bytes=path.stat().st_size if path.exists() else proto.ByteSize(),
        external_data_files=external_data_files(proto) if external is None else external,
        metadata={p.key: p.value for p in proto.metadata_props},
    )


def read_onnx(path: Path) -> Model:
    """Open an ``.onnx`` file into the graph view (validated; tensor data not loaded)."""
    proto, external = load_checked(path)
    return model_view(proto, path, external)


def data_size_on_disk(path: Path, proto: onnx.ModelProto) -> int:
    """Bytes of the model file plus its external data files."""
    total = path.stat().st_size
    for name in external_data_files(proto):
        total += os.path.getsize(path.parent / name)
    return total
