"""ONNX copies of an analysed graph for graph viewers, without weight data.

The graph ``check`` analyses (ORT's level-1 save of an ``.onnx``, or the graph stored in an
``.ort`` file) is written as an ``.onnx`` that viewers open: every node, value type and attribute
as analysed, each node named as ``check`` names it (its own name, or ``<op_type>_<index>``), but
tensors over :data:`INLINE_BYTES` kept as external-data stubs (type, shape and byte length; the
data file they name does not exist). Shape constants, scales and zero points stay readable.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx

    from ortprep.core.graph import Graph, Initializer, Model

INLINE_BYTES = 1024
"""Tensors up to this many bytes keep their values (shapes for Reshape, scales, zero points)."""


def stub_name(filename: str) -> str:
    """The (absent) data file a weightless copy's stubs name: never a real file beside it."""
    return f"{filename}.weights-not-included"


def walk(graph: onnx.GraphProto, path: str = "main") -> Iterator[tuple[str, onnx.GraphProto]]:
    """Every graph and subgraph with its path, named as the graph views name them
    (``main/<node>:<attribute>``, ``[j]`` for a list of graphs): ``check`` results use these."""
    yield path, graph
    for i, node in enumerate(graph.node):
        name = node.name or f"{node.op_type}_{i}"
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from walk(attr.g, f"{path}/{name}:{attr.name}")
            for j, g in enumerate(attr.graphs):
                yield from walk(g, f"{path}/{name}:{attr.name}[{j}]")


def name_nodes(proto: onnx.ModelProto) -> None:
    """Name every node as ``check`` names it, unique within its graph (a duplicate gets ``#2``,
    ``#3``...): viewers key nodes by name, and onnx_ir renames duplicates and unnamed nodes.

    Subgraph paths are taken before any renaming, so they stay the ones ``check`` reports."""
    graphs = list(walk(proto.graph))
    for _, graph in graphs:
        seen: set[str] = set()
        for i, node in enumerate(graph.node):
            name = node.name or f"{node.op_type}_{i}"
            candidate, n = name, 1
            while candidate in seen:
                n += 1
                candidate = f"{name}#{n}"
            seen.add(candidate)
            node.name = candidate


def strip_weights(proto: onnx.ModelProto, stub: str) -> None:
    """Replace every tensor over :data:`INLINE_BYTES` (initializers, tensor attributes, in every
    subgraph) by an external-data stub naming ``stub``; in place."""
    for _, graph in walk(proto.graph):
        for t in graph.initializer:
            _stub(t, stub)
        for sparse in graph.sparse_initializer:
            _stub(sparse.values, stub)
            _stub(sparse.indices, stub)
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    _stub(attr.t, stub)
                for t in attr.tensors:
                    _stub(t, stub)


def _nbytes(t: onnx.TensorProto) -> int:
    """Bytes of the tensor's data (its external length, raw bytes, or elements x item size)."""
    import math

    import onnx

    if t.data_location == onnx.TensorProto.EXTERNAL:
        entries = {e.key: e.value for e in t.external_data}
        return int(entries.get("length", 0) or 0)
    if t.raw_data:
        return len(t.raw_data)
    try:
        item = onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
    except (KeyError, ValueError, TypeError):
        return t.ByteSize()
    if t.data_type == onnx.TensorProto.STRING:
        return sum(len(v) for v in t.string_data)
    return math.prod(t.dims) * item


def _stub(t: onnx.TensorProto, stub: str) -> None:
    import onnx

    size = _nbytes(t)
    if t.data_location != onnx.TensorProto.EXTERNAL and size <= INLINE_BYTES:
        return
    for field in (
        "raw_data",
        "float_data",
        "int32_data",
        "string_data",
        "int64_data",
        "double_data",
        "uint64_data",
    ):
        t.ClearField(field)
    del t.external_data[:]
    t.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", stub), ("offset", "0"), ("length", str(size))):
        entry = t.external_data.add()
        entry.key, entry.value = key, value


def weightless_onnx(source: Path, filename: str) -> onnx.ModelProto:
    """The ONNX file ``source`` (ORT's level-1 save) as a weightless, node-named copy."""
    import onnx

    proto = onnx.load(str(source), load_external_data=False)
    name_nodes(proto)
    strip_weights(proto, stub_name(filename))
    return proto


def weightless_from_view(model: Model, filename: str) -> onnx.ModelProto:
    """An ``.onnx`` of a graph view (an ``.ort`` file's graph), weightless and node-named."""
    import onnx

    graph = _graph_proto(model.graph, stub_name(filename), "main")
    opsets = [
        onnx.helper.make_opsetid("" if d == "ai.onnx" else d, v) for d, v in model.opsets.items()
    ]
    proto = onnx.helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name=model.producer_name or "ortprep",
        producer_version=model.producer_version,
    )
    proto.ir_version = model.ir_version or proto.ir_version
    name_nodes(proto)
    return proto


def _elem_type(dtype: str | None) -> int:
    import onnx

    if dtype is None:
        return onnx.TensorProto.UNDEFINED
    try:
        import numpy as np

        return int(onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))
    except (TypeError, KeyError, ValueError):
        try:
            return int(onnx.TensorProto.DataType.Value(dtype.upper()))
        except ValueError:
            return onnx.TensorProto.UNDEFINED


def _tensor(init: Initializer, stub: str) -> onnx.TensorProto:
    import onnx

    if init.nbytes <= INLINE_BYTES and init.loader is not None:
        try:
            t = onnx.numpy_helper.from_array(init.numpy(), init.name)
        except Exception:  # noqa: BLE001 -- a value we cannot read stays a stub (viewer copy)
            pass
        else:
            return t
    t = onnx.TensorProto(name=init.name, data_type=_elem_type(init.dtype), dims=init.dims)
    t.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", stub), ("offset", "0"), ("length", str(init.nbytes))):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    return t


def _attribute(name: str, value: Any, stub: str) -> onnx.AttributeProto | None:
    import onnx

    from ortprep.core.graph import Initializer

    if isinstance(value, Initializer):
        return onnx.helper.make_attribute(name, _tensor(value, stub))
    if value is None or (isinstance(value, (tuple, list)) and not value):
        return None  # an empty list has no type to write; kinds the views do not keep
    try:
        return onnx.helper.make_attribute(name, value)
    except (TypeError, ValueError):
        return None


def _graph_proto(graph: Graph, stub: str, name: str) -> onnx.GraphProto:
    import onnx

    def info(v: Any) -> onnx.ValueInfoProto:
        if v.shape is None:
            return onnx.helper.make_tensor_value_info(v.name, _elem_type(v.dtype), None)
        dims = [d if isinstance(d, (int, str)) and d != -1 else None for d in v.shape]
        return onnx.helper.make_tensor_value_info(v.name, _elem_type(v.dtype), dims)

    nodes = []
    for n in graph.nodes:
        node = onnx.helper.make_node(
            n.op_type,
            list(n.inputs),
            list(n.outputs),
            name=n.name,
            domain="" if n.domain == "ai.onnx" else n.domain,
        )
        for key, value in n.attributes.items():
            attr = _attribute(key, value, stub)
            if attr is not None:
                node.attribute.append(attr)
        lists: dict[str, list[onnx.GraphProto]] = {}
        for key, sub in n.subgraphs.items():
            g = _graph_proto(sub, stub, f"{n.name}_{key}")
            attr_name, bracket, _ = key.partition("[")
            if bracket:
                lists.setdefault(attr_name, []).append(g)
            else:
                node.attribute.append(onnx.helper.make_attribute(key, g))
        for key, graphs in lists.items():
            node.attribute.append(onnx.helper.make_attribute(key, graphs))
        nodes.append(node)
    declared = {v.name for v in (*graph.inputs, *graph.outputs)}
    return onnx.helper.make_graph(
        nodes,
        name,
        [info(v) for v in graph.inputs],
        [info(v) for v in graph.outputs],
        initializer=[_tensor(t, stub) for t in graph.initializers.values()],
        value_info=[info(v) for k, v in graph.values.items() if k not in declared],
    )
