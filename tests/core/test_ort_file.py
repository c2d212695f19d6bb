"""Opening .ort files: the view agrees with ORT's own tools; corrupt files get a clean error."""

from __future__ import annotations

import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from models import conv_bn_relu, dynamic_cnn, if_subgraph, qdq_cnn, save
from ortprep.core.errors import BadModelError
from ortprep.core.graph import Graph, Initializer, Model, Node, ValueType
from ortprep.core.ort import (
    MAX_GRAPH_DEPTH,
    MAX_TYPE_DEPTH,
    is_ort_bytes,
    parse_ort_bytes,
    read_ort,
)

# --------------------------------------------------------------------------- fixtures


def to_ort(model: onnx.ModelProto, out: Path, style: str = "fixed", level: str = "all") -> Path:
    """Save ``model`` as an ORT-format file the way ORT's converter does (CPU EP, arm target)."""
    import onnxruntime as ort

    src = save(model, out.with_suffix(".onnx"))
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(out)
    so.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    so.add_session_config_entry("session.save_model_format", "ORT")
    so.add_session_config_entry("session.qdqisint8allowed", "1")
    if style == "runtime":
        so.add_session_config_entry("optimization.minimal_build_optimizations", "save")
    ort.InferenceSession(
        str(src), so, providers=["CPUExecutionProvider"], disabled_optimizers=["NchwcTransformer"]
    )
    return out


def tiny_conv_relu() -> onnx.ModelProto:
    """Conv + Relu, nodes unnamed: the smallest model that gets a ConvActivationFusion record."""
    w = numpy_helper.from_array(np.full((2, 1, 3, 3), 0.5, np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["y"]),
        ],
        "tiny_conv_relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])],
        [w],
    )
    return _model(graph)


def tiny_qdq_conv() -> onnx.ModelProto:
    """Q/DQ around a Conv without bias: its QDQ record has an absent (bias) node slot."""

    def const(name: str, value: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(value, name)

    inits = [
        const("s", np.array(0.05, np.float32)),
        const("zp", np.array(0, np.int8)),
        const("wq", np.arange(-9, 9, dtype=np.int8).reshape(2, 1, 3, 3)),
        const("ws", np.array(0.02, np.float32)),
        const("wzp", np.array(0, np.int8)),
    ]
    graph = helper.make_graph(
        [
            helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"]),
            helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["xd"]),
            helper.make_node("DequantizeLinear", ["wq", "ws", "wzp"], ["wd"]),
            helper.make_node("Conv", ["xd", "wd"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("QuantizeLinear", ["c", "s", "zp"], ["cq"]),
            helper.make_node("DequantizeLinear", ["cq", "s", "zp"], ["y"]),
        ],
        "tiny_qdq_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])],
        inits,
    )
    return _model(graph)


def kitchen_sink() -> onnx.ModelProto:
    """Unnamed nodes with every attribute kind ORT keeps, a string initializer, a sequence
    value, symbolic dims, an ai.onnx.ml op and metadata."""
    value = helper.make_tensor("value", TensorProto.FLOAT, [1], [1.5])
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("ConstantOfShape", ["shape"], ["c"], value=value),
        helper.make_node("LeakyRelu", ["x"], ["l"], alpha=0.25),
        helper.make_node("Add", ["c", "l"], ["a"]),
        helper.make_node("SequenceConstruct", ["a", "x"], ["s"]),
        helper.make_node("SequenceAt", ["s", "idx"], ["y"]),
        helper.make_node("Concat", ["label", "extra"], ["labels"], axis=0),
        helper.make_node(
            "LabelEncoder", ["labels"], ["codes"], domain="ai.onnx.ml",
            keys_strings=["a", "b"], values_int64s=[1, 2], default_int64=0,
        ),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "kitchen_sink",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("idx", TensorProto.INT64, []),
            helper.make_tensor_value_info("label", TensorProto.STRING, ["L"]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("codes", TensorProto.INT64, ["M"]),
        ],
        [numpy_helper.from_array(np.array([b"b", b"zz"], dtype=object), "extra")],
    )
    m = _model(graph, {"ai.onnx.ml": 2})
    helper.set_model_props(m, {"author": "ortprep-tests", "purpose": "kitchen sink"})
    return m


def _model(graph: onnx.GraphProto, extra: dict[str, int] | None = None) -> onnx.ModelProto:
    imports = [helper.make_opsetid("", 17)]
    imports += [helper.make_opsetid(d, v) for d, v in (extra or {}).items()]
    m = helper.make_model(graph, opset_imports=imports, producer_name="ortprep-tests")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


BUILDERS = {
    "conv_bn_relu": conv_bn_relu,
    "qdq_cnn": qdq_cnn,
    "if_subgraph": if_subgraph,
    "dynamic_cnn": dynamic_cnn,
    "tiny_conv_relu": tiny_conv_relu,
    "tiny_qdq_conv": tiny_qdq_conv,
    "kitchen_sink": kitchen_sink,
}


@pytest.fixture(scope="module")
def onnx_models() -> dict[str, onnx.ModelProto]:
    return {name: build() for name, build in BUILDERS.items()}


@pytest.fixture(scope="module")
def ort_files(tmp_path_factory, onnx_models) -> dict[str, Path]:
    """Every builder's model as ``NAME.fixed.ort`` and ``NAME.runtime.ort``."""
    folder = tmp_path_factory.mktemp("ort")
    files = {}
    for name, model in onnx_models.items():
        for style in ("fixed", "runtime"):
            files[f"{name}.{style}"] = to_ort(model, folder / f"{name}.{style}.ort", style)
    return files


# --------------------------------------------------------------------------- agreement with ORT


def ort_required_ops(path: Path) -> dict[str, dict[int, set[str]]]:
    """What ORT's own ORT-format processor lists: domain -> since_version -> op types."""
    from onnxruntime.tools.ort_format_model import OperatorTypeUsageManager, OrtFormatModelProcessor

    ops: dict[str, dict[int, set[str]]] = {}
    OrtFormatModelProcessor(str(path), ops, OperatorTypeUsageManager()).process()
    return ops


def our_ops(model: Model) -> dict[str, dict[int, set[str]]]:
    ops: dict[str, dict[int, set[str]]] = {}
    for _, node in model.all_nodes():
        ops.setdefault(node.domain, {}).setdefault(node.since_version, set()).add(node.op_type)
    return ops


@pytest.mark.parametrize("name", [f"{b}.{s}" for b in BUILDERS for s in ("fixed", "runtime")])
def test_ops_per_domain_and_version_match_orts_processor(ort_files, name):
    path = ort_files[name]
    model = read_ort(path)
    assert model.format == "ort"
    assert our_ops(model) == ort_required_ops(path)


def test_runtime_style_conv_relu_records_conv_act_producing_fused_conv(ort_files):
    model = read_ort(ort_files["conv_bn_relu.runtime"])
    records = model.ort.runtime_optimizations["ConvActivationFusion"]
    assert len(records) == 2  # conv1 (+BN folded) + relu1, conv2 + relu2; conv3 feeds an Add
    by_index = {n.index: n for n in model.graph.nodes}
    for record in records:
        assert record.action_id == "ConvAct"
        assert record.produced_op_ids == ("com.microsoft:FusedConv:1",)
        assert (record.num_inputs, record.num_outputs) == (0, 1)
        conv, relu = (by_index[i] for i in record.node_indices)
        assert (conv.op_type, relu.op_type) == ("Conv", "Relu")
    # the kernel type resolver also covers ops the records may produce
    resolver = model.ort.kernel_type_str_resolver
    assert "com.microsoft:FusedConv:1" in resolver
    assert resolver["ai.onnx:Conv:11"]["T"][0] == (True, 0)


def test_fixed_style_fuses_now_and_keeps_no_records(ort_files):
    model = read_ort(ort_files["conv_bn_relu.fixed"])
    assert model.ort.runtime_optimizations == {}
    assert "com.microsoft:FusedConv" in {n.op_id for n in model.graph.nodes}


def test_runtime_style_qdq_records_qlinear_conv(ort_files):
    model = read_ort(ort_files["qdq_cnn.runtime"])
    records = model.ort.runtime_optimizations["QDQSelectorActionTransformer"]
    convs = [r for r in records if r.action_id == "Conv"]
    assert len(convs) == 3
    by_index = {n.index: n for n in model.graph.nodes}
    for record in convs:
        assert record.produced_op_ids == ("ai.onnx:QLinearConv:10",)
        assert (record.num_inputs, record.num_outputs) == (3, 1)
        ops = [by_index[i].op_type for i in record.node_indices]
        assert ops == ["DequantizeLinear"] * 3 + ["Conv", "QuantizeLinear"]


def test_absent_optional_node_of_a_record_is_none(ort_files):
    model = read_ort(ort_files["tiny_qdq_conv.runtime"])
    (record,) = model.ort.runtime_optimizations["QDQSelectorActionTransformer"]
    assert record.action_id == "Conv"
    assert record.node_indices[2] is None  # no bias DQ
    assert None not in record.node_indices[:2] + record.node_indices[3:]


def test_unnamed_nodes_get_synthetic_names_from_their_file_index(ort_files):
    model = read_ort(ort_files["tiny_conv_relu.runtime"])
    conv, relu = model.graph.nodes
    assert (conv.name, relu.name) == (f"Conv_{conv.index}", f"Relu_{relu.index}")
    assert conv.synthetic_name and relu.synthetic_name
    (record,) = model.ort.runtime_optimizations["ConvActivationFusion"]
    assert record.node_indices == (conv.index, relu.index)
    assert conv.execution_provider == "CPUExecutionProvider"


# --------------------------------------------------------------------------- values and tensors


def test_unoptimized_initializers_match_the_onnx_model(tmp_path, onnx_models):
    for name in ("conv_bn_relu", "qdq_cnn", "kitchen_sink"):
        source = onnx_models[name]
        model = read_ort(to_ort(source, tmp_path / f"{name}.ort", level="disable"))
        expected = {t.name: numpy_helper.to_array(t) for t in source.graph.initializer}
        assert set(model.graph.initializers) == set(expected)
        for init_name, array in expected.items():
            init = model.graph.initializers[init_name]
            assert init.dims == array.shape
            assert init.dtype == ("string" if array.dtype == object else str(array.dtype))
            np.testing.assert_array_equal(init.numpy(), array)
            if array.dtype != object:
                assert init.nbytes == array.nbytes


def test_optimized_initializers_keep_sizes_of_untouched_weights(ort_files, onnx_models):
    for name in ("conv_bn_relu", "qdq_cnn"):
        source = {t.name: numpy_helper.to_array(t) for t in onnx_models[name].graph.initializer}
        for style in ("fixed", "runtime"):
            inits = read_ort(ort_files[f"{name}.{style}"]).graph.initializers
            shared = set(inits) & set(source)
            assert shared
            for init_name in shared:
                assert inits[init_name].nbytes == source[init_name].nbytes
                np.testing.assert_array_equal(inits[init_name].numpy(), source[init_name])


def test_initializer_values_are_read_lazily_as_read_only_views(ort_files):
    model = read_ort(ort_files["conv_bn_relu.runtime"])
    w2 = model.graph.initializers["w2"]
    assert (w2.dtype, w2.dims, w2.nbytes) == ("float32", (8, 8, 3, 3), 8 * 8 * 9 * 4)
    array = w2.numpy()
    assert not array.flags.writeable  # a view into the file's bytes, not a copy


def test_string_initializer_and_tensor_attribute(ort_files):
    model = read_ort(ort_files["kitchen_sink.fixed"])
    extra = model.graph.initializers["extra"]
    assert (extra.dtype, extra.dims, extra.nbytes) == ("string", (2,), 3)
    assert extra.numpy().tolist() == ["b", "zz"]
    nodes = {n.op_type: n for n in model.graph.nodes}
    value = nodes["ConstantOfShape"].attributes["value"]
    assert (value.dtype, value.dims) == ("float32", (1,))
    assert value.numpy().tolist() == [1.5]
    assert nodes["LeakyRelu"].attributes["alpha"] == 0.25
    encoder = nodes["LabelEncoder"]
    assert encoder.domain == "ai.onnx.ml"
    assert encoder.attributes["keys_strings"] == ("a", "b")
    assert encoder.attributes["values_int64s"] == (1, 2)
    assert nodes["Concat"].attributes["axis"] == 0


def test_inputs_outputs_and_values_have_dtypes_and_shapes(ort_files):
    model = read_ort(ort_files["dynamic_cnn.fixed"])
    (x,) = model.graph.inputs
    assert (x.name, x.dtype, x.shape, x.kind, x.dynamic) == (
        "x",
        "float32",
        ("N", 3, "H", "W"),
        "tensor",
        True,
    )
    assert model.graph.outputs[0].shape == ("N", 6)

    model = read_ort(ort_files["if_subgraph.fixed"])
    assert [(v.name, v.dtype, v.shape) for v in model.graph.inputs] == [
        ("x_in", "float32", (2, 4)),
        ("cond", "bool", ()),
    ]

    model = read_ort(ort_files["kitchen_sink.fixed"])
    assert model.graph.values["s"].kind == "sequence"
    assert model.graph.values["s"].dtype == "float32"
    assert model.graph.values["label"].shape == ("L",)
    assert model.graph.values["label"].dtype == "string"


def test_if_subgraphs_are_read_with_paths_and_implicit_inputs(ort_files):
    for style in ("fixed", "runtime"):
        model = read_ort(ort_files[f"if_subgraph.{style}"])
        node = next(n for n in model.graph.nodes if n.op_type == "If")
        assert set(node.subgraphs) == {"then_branch", "else_branch"}
        then = node.subgraphs["then_branch"]
        assert then.path == "main/if:then_branch"
        assert {n.op_type for n in then.nodes} == {"Relu", "Add"}
        assert {n.op_type for n in node.subgraphs["else_branch"].nodes} == {"Sigmoid", "Mul"}
        assert set(node.implicit_inputs) == {"x", "w"}
        assert {g.path for g, _ in model.all_nodes()} == {
            "main",
            "main/if:then_branch",
            "main/if:else_branch",
        }


def test_model_fields(ort_files):
    model = read_ort(ort_files["kitchen_sink.fixed"])
    assert model.ort.format_version == "6"
    assert model.ir_version == 8
    assert model.opsets["ai.onnx"] == 17
    assert model.opsets["ai.onnx.ml"] == 2
    assert "" not in model.opsets
    assert model.metadata == {"author": "ortprep-tests", "purpose": "kitchen sink"}
    assert model.size_bytes == ort_files["kitchen_sink.fixed"].stat().st_size
    counts = Counter(n.op_id for n in model.graph.nodes)
    assert counts["ai.onnx.ml:LabelEncoder"] == 1


def test_bytes_and_path_entries_agree(ort_files):
    path = ort_files["if_subgraph.runtime"]
    by_path, by_bytes = read_ort(path), parse_ort_bytes(path.read_bytes(), path)
    assert by_path == by_bytes


# The reader follows the buffer's offsets itself, for speed. onnxruntime's generated flatbuffer
# classes are the reference for what each field holds: both decode every fixture to the same
# plain structure (the view's normalizations undone: "" for the ONNX domain, type ids, ...).


def generated_view(data: bytes) -> dict:
    """The model as onnxruntime's generated flatbuffer classes decode it."""
    import onnxruntime.tools.ort_format_model  # noqa: F401
    import ort_flatbuffers_py.fbs as fbs

    def text(raw: bytes | None) -> str:
        return "" if raw is None else raw.decode("utf-8", errors="replace")

    def items(get, count: int) -> list:
        return [get(k) for k in range(count)]

    def member(info, cls):
        table, obj = info.Value(), cls()
        obj.Init(table.Bytes, table.Pos)
        return obj

    def dim(d):
        value = d.Value()
        if value is None:
            return None
        return value.DimValue() if value.DimType() == 1 else text(value.DimParam()) or None

    def value_type(vi) -> tuple:
        info = vi.Type()
        if info is None:  # e.g. the "" arg of an absent optional input
            return ("unknown", 0, None)
        if info.ValueType() == 1:  # tensor_type
            tensor = member(info, fbs.TensorTypeAndShape.TensorTypeAndShape)
            shape = tensor.Shape()
            dims = None if shape is None else tuple(map(dim, items(shape.Dim, shape.DimLength())))
            return ("tensor", tensor.ElemType(), dims)
        assert info.ValueType() == 2  # sequence_type: the only other kind in the fixtures
        elem = member(info, fbs.SequenceType.SequenceType).ElemType()
        return (
            "sequence",
            member(elem, fbs.TensorTypeAndShape.TensorTypeAndShape).ElemType(),
            None,
        )

    def tensor(t) -> tuple:
        raw = t.RawDataAsNumpy().tobytes() if t.RawDataLength() else b""
        strings = tuple(items(t.StringData, t.StringDataLength()))
        return (text(t.Name()), t.DataType(), tuple(items(t.Dims, t.DimsLength())), raw, strings)

    def attribute(a):
        getters = {
            1: a.F,
            2: a.I,
            3: lambda: text(a.S()),
            4: lambda: tensor(a.T()),
            5: lambda: graph(a.G()),
            6: lambda: tuple(items(a.Floats, a.FloatsLength())),
            7: lambda: tuple(items(a.Ints, a.IntsLength())),
            8: lambda: tuple(map(text, items(a.Strings, a.StringsLength()))),
            9: lambda: tuple(map(tensor, items(a.Tensors, a.TensorsLength()))),
            10: lambda: tuple(map(graph, items(a.Graphs, a.GraphsLength()))),
        }
        return getters[a.Type()]()

    def node(n) -> tuple:
        attrs = {text(a.Name()): attribute(a) for a in items(n.Attributes, n.AttributesLength())}
        return (
            n.Index(),
            text(n.Name()),
            text(n.OpType()),
            text(n.Domain()),
            n.SinceVersion(),
            text(n.ExecutionProviderType()),
            tuple(map(text, items(n.Inputs, n.InputsLength()))),
            tuple(map(text, items(n.Outputs, n.OutputsLength()))),
            tuple(map(text, items(n.ImplicitInputs, n.ImplicitInputsLength()))),
            attrs,
        )

    def graph(g) -> dict:
        opt = g.RuntimeOptimizations()
        for entry in items(opt.Records, opt.RecordsLength()) if opt else ():
            count = entry.RuntimeOptimizationRecordsLength()
            for r in items(entry.RuntimeOptimizationRecords, count):
                nodes = r.NodesToOptimizeIndices()
                records.append(
                    (
                        text(entry.OptimizerName()),
                        text(r.ActionId()),
                        tuple(items(nodes.NodeIndices, nodes.NodeIndicesLength())),
                        nodes.NumInputs(),
                        nodes.NumOutputs(),
                        tuple(map(text, items(r.ProducedOpIds, r.ProducedOpIdsLength()))),
                    )
                )
        values = items(g.NodeArgs, g.NodeArgsLength())
        return {
            "nodes": list(map(node, items(g.Nodes, g.NodesLength()))),
            "values": {text(v.Name()): value_type(v) for v in values},
            "initializers": list(map(tensor, items(g.Initializers, g.InitializersLength()))),
            "inputs": tuple(map(text, items(g.Inputs, g.InputsLength()))),
            "outputs": tuple(map(text, items(g.Outputs, g.OutputsLength()))),
        }

    records: list[tuple] = []
    session = fbs.InferenceSession.InferenceSession.GetRootAs(data, 0)
    m = session.Model()
    resolver = session.KernelTypeStrResolver()
    kernel_args = {}
    for op in items(resolver.OpKernelTypeStrArgs, resolver.OpKernelTypeStrArgsLength()):
        for entry in items(op.KernelTypeStrArgs, op.KernelTypeStrArgsLength()):
            args = [(a.ArgType(), a.Index()) for a in items(entry.Args, entry.ArgsLength())]
            kernel_args[text(op.OpId()), text(entry.KernelTypeStr())] = tuple(args)
    opsets = items(m.OpsetImport, m.OpsetImportLength())
    metadata = items(m.MetadataProps, m.MetadataPropsLength())
    return {
        "version": text(session.OrtVersion()),
        "ir_version": m.IrVersion(),
        "producer": (text(m.ProducerName()), text(m.ProducerVersion())),
        "opsets": [(text(o.Domain()), o.Version()) for o in opsets],
        "metadata": [(text(e.Key()), text(e.Value())) for e in metadata],
        "graph": graph(m.Graph()),
        "kernel_args": kernel_args,
        "records": sorted(records),
    }


def view_in_generated_terms(model: Model) -> dict:
    """The view as :func:`generated_view` puts it (the view's normalizations undone)."""
    from ortprep.core.ort.format import DTYPES

    type_ids = {name: type_id for type_id, name in DTYPES.items()}

    def onnx_domain(op_id: str) -> str:
        return op_id.removeprefix("ai.onnx") if op_id.startswith("ai.onnx:") else op_id

    def tensor(init: Initializer) -> tuple:
        if init.dtype == "string":
            strings = tuple(s.encode() for s in init.numpy().reshape(-1).tolist())
            return (init.name, type_ids["string"], init.dims, b"", strings)
        assert init.nbytes == init.numpy().nbytes
        return (init.name, type_ids[init.dtype], init.dims, init.numpy().tobytes(), ())

    def attribute(value):
        if isinstance(value, Initializer):
            return tensor(value)
        if isinstance(value, tuple) and value and isinstance(value[0], Initializer):
            return tuple(map(tensor, value))
        return value

    def node(n: Node) -> tuple:
        attrs = {name: attribute(value) for name, value in n.attributes.items()}
        for key, sub in n.subgraphs.items():
            name, _, many = key.partition("[")  # "then_branch" or "branches[0]"
            attrs[name] = (*attrs.get(name, ()), graph(sub)) if many else graph(sub)
        return (
            n.index,
            "" if n.synthetic_name else n.name,
            n.op_type,
            "" if n.domain == "ai.onnx" else n.domain,
            n.since_version or 0,
            n.execution_provider or "",
            n.inputs,
            n.outputs,
            n.implicit_inputs,
            attrs,
        )

    def value(v: ValueType) -> tuple:
        return (v.kind, type_ids.get(v.dtype, 0), v.shape)

    def graph(g: Graph) -> dict:
        return {
            "nodes": [node(n) for n in g.nodes],
            "values": {name: value(v) for name, v in g.values.items()},
            "initializers": [tensor(i) for i in g.initializers.values()],
            "inputs": tuple(v.name for v in g.inputs),
            "outputs": tuple(v.name for v in g.outputs),
        }

    records = [
        (
            optimizer,
            r.action_id,
            tuple(0xFFFFFFFF if i is None else i for i in r.node_indices),
            r.num_inputs,
            r.num_outputs,
            tuple(map(onnx_domain, r.produced_op_ids)),
        )
        for optimizer, by_optimizer in model.ort.runtime_optimizations.items()
        for r in by_optimizer
    ]
    resolver = model.ort.kernel_type_str_resolver
    return {
        "version": model.ort.format_version,
        "ir_version": model.ir_version,
        "producer": (model.producer_name, model.producer_version),
        "opsets": [("" if d == "ai.onnx" else d, v) for d, v in model.opsets.items()],
        "metadata": list(model.metadata.items()),
        "graph": graph(model.graph),
        "kernel_args": {
            (onnx_domain(op_id), type_str): tuple((int(not is_input), i) for is_input, i in args)
            for op_id, by_type_str in resolver.items()
            for type_str, args in by_type_str.items()
        },
        "records": sorted(records),
    }


@pytest.mark.parametrize("name", [f"{b}.{s}" for b in BUILDERS for s in ("fixed", "runtime")])
def test_view_matches_the_generated_flatbuffer_classes(ort_files, name):
    data = ort_files[name].read_bytes()
    assert view_in_generated_terms(parse_ort_bytes(data, Path("m.ort"))) == generated_view(data)


def test_is_ort_bytes(ort_files, onnx_models):
    assert is_ort_bytes(ort_files["tiny_conv_relu.fixed"].read_bytes()[:8])
    assert not is_ort_bytes(onnx_models["tiny_conv_relu"].SerializeToString())
    assert not is_ort_bytes(b"\0\0\0\0ORT")


def test_importing_the_module_loads_no_heavy_package():
    code = (
        "import sys, ortprep.core.ort; "
        "print(sorted(m for m in ('onnx', 'onnxruntime', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- bad files


def _error(data: bytes) -> str:
    with pytest.raises(BadModelError) as info:
        parse_ort_bytes(data, Path("m.ort"))
    message = info.value.message
    assert message.startswith("m.ort: ")
    assert "\n" not in message
    return message


def test_empty_and_foreign_files_are_refused(onnx_models):
    assert "empty" in _error(b"")
    assert "not an ORT-format file" in _error(onnx_models["tiny_conv_relu"].SerializeToString())
    assert "not an ORT-format file" in _error(b"ORTM")


def test_truncated_file_is_refused(ort_files):
    data = ort_files["if_subgraph.fixed"].read_bytes()
    for cut in (8, 12, len(data) // 3, len(data) // 2, len(data) - 8):
        assert "not a valid ORT-format file" in _error(data[:cut])


def _patch_version(data: bytes, version: bytes) -> bytes:
    """Replace the format version string (same length) in place."""
    import onnxruntime.tools.ort_format_model  # noqa: F401
    import ort_flatbuffers_py.fbs as fbs

    session = fbs.InferenceSession.InferenceSession.GetRootAs(data, 0)
    field = session._tab.Pos + session._tab.Offset(4)
    start = field + struct.unpack_from("<I", data, field)[0] + 4
    assert data[start : start + len(version)] == b"6"
    return data[:start] + version + data[start + len(version) :]


def test_non_integer_format_version_is_refused(ort_files):
    data = ort_files["tiny_conv_relu.fixed"].read_bytes()
    assert "version 'x' is not an integer" in _error(_patch_version(data, b"x"))
    model = parse_ort_bytes(_patch_version(data, b"5"), Path("m.ort"))
    assert model.ort.format_version == "5"


def test_read_ort_on_a_missing_file_or_folder(tmp_path):
    with pytest.raises(BadModelError, match="cannot read"):
        read_ort(tmp_path / "absent.ort")
    with pytest.raises(BadModelError, match="cannot read"):
        read_ort(tmp_path)


def _tensor_dims_position(data: bytes, name: str) -> int:
    import onnxruntime.tools.ort_format_model  # noqa: F401
    import ort_flatbuffers_py.fbs as fbs

    graph = fbs.InferenceSession.InferenceSession.GetRootAs(data, 0).Model().Graph()
    for i in range(graph.InitializersLength()):
        t = graph.Initializers(i)
        if t.Name() == name.encode():
            return t._tab.Vector(t._tab.Offset(8))
    raise AssertionError(name)


def test_corrupt_tensor_dims_fail_when_values_are_read(ort_files):
    data = bytearray(ort_files["tiny_conv_relu.fixed"].read_bytes())
    at = _tensor_dims_position(bytes(data), "w")
    struct.pack_into("<q", data, at, -2)
    model = parse_ort_bytes(bytes(data), Path("m.ort"))  # opening reads no tensor data
    with pytest.raises(BadModelError, match="negative dimension"):
        model.graph.initializers["w"].numpy()
    struct.pack_into("<q", data, at, 3)
    model = parse_ort_bytes(bytes(data), Path("m.ort"))
    with pytest.raises(BadModelError, match="bytes of data for dims"):
        model.graph.initializers["w"].numpy()


# Hand-built files: structures ORT never writes, but a hostile file can hold.


def _handmade(build_graph) -> bytes:
    """An ORT-format buffer whose main graph ``build_graph(builder, fbs)`` creates."""
    import flatbuffers
    import onnxruntime.tools.ort_format_model  # noqa: F401
    import ort_flatbuffers_py.fbs as fbs

    b = flatbuffers.Builder(1024)
    graph = build_graph(b, fbs)
    fbs.Model.Start(b)
    fbs.Model.AddIrVersion(b, 8)
    fbs.Model.AddGraph(b, graph)
    model = fbs.Model.End(b)
    version = b.CreateString("6")
    fbs.InferenceSession.Start(b)
    fbs.InferenceSession.AddOrtVersion(b, version)
    fbs.InferenceSession.AddModel(b, model)
    b.Finish(fbs.InferenceSession.End(b), file_identifier=b"ORTM")
    return bytes(b.Output())


def _if_graph(b, fbs, branches: list[int]) -> int:
    """A graph with one If node whose graph attributes are ``branches`` (maybe all the same)."""
    attrs = []
    for branch in branches:
        name = b.CreateString("then_branch")
        fbs.Attribute.Start(b)
        fbs.Attribute.AddName(b, name)
        fbs.Attribute.AddType(b, 5)  # GRAPH
        fbs.Attribute.AddG(b, branch)
        attrs.append(fbs.Attribute.End(b))
    fbs.Node.StartAttributesVector(b, len(attrs))
    for a in reversed(attrs):
        b.PrependUOffsetTRelative(a)
    attr_vector = b.EndVector()
    op_type = b.CreateString("If")
    fbs.Node.Start(b)
    fbs.Node.AddOpType(b, op_type)
    fbs.Node.AddAttributes(b, attr_vector)
    node = fbs.Node.End(b)
    fbs.Graph.StartNodesVector(b, 1)
    b.PrependUOffsetTRelative(node)
    nodes = b.EndVector()
    fbs.Graph.Start(b)
    fbs.Graph.AddNodes(b, nodes)
    return fbs.Graph.End(b)


def _empty_graph(b, fbs) -> int:
    fbs.Graph.Start(b)
    return fbs.Graph.End(b)


def test_handmade_file_with_nested_subgraphs_opens():
    model = parse_ort_bytes(_nested(6), Path("m.ort"))
    paths = [g.path for g, _ in model.all_nodes()]
    assert paths[-1] == "main" + "/If_0:then_branch" * 4
    assert model.ort.kernel_type_str_resolver == {}


def _nested(levels: int) -> bytes:
    """A file whose graphs nest ``levels`` deep (the main graph counts as one)."""

    def build(b, fbs):
        graph = _empty_graph(b, fbs)
        for _ in range(levels - 1):
            graph = _if_graph(b, fbs, [graph])
        return graph

    return _handmade(build)


def test_subgraphs_nested_up_to_the_limit_open_and_deeper_are_refused():
    model = parse_ort_bytes(_nested(MAX_GRAPH_DEPTH), Path("m.ort"))
    assert sum(1 for _ in model.all_nodes()) == MAX_GRAPH_DEPTH - 1
    assert f"nested deeper than {MAX_GRAPH_DEPTH}" in _error(_nested(MAX_GRAPH_DEPTH + 1))


def _sequence_value(levels: int) -> bytes:
    """A file whose one value is ``levels`` sequences around a float tensor."""

    def build(b, fbs):
        fbs.TensorTypeAndShape.Start(b)
        fbs.TensorTypeAndShape.AddElemType(b, 1)
        inner = fbs.TensorTypeAndShape.End(b)
        kind = 1  # tensor_type
        for _ in range(levels):
            fbs.TypeInfo.Start(b)
            fbs.TypeInfo.AddValueType(b, kind)
            fbs.TypeInfo.AddValue(b, inner)
            type_info = fbs.TypeInfo.End(b)
            fbs.SequenceType.Start(b)
            fbs.SequenceType.AddElemType(b, type_info)
            inner, kind = fbs.SequenceType.End(b), 2  # sequence_type
        fbs.TypeInfo.Start(b)
        fbs.TypeInfo.AddValueType(b, kind)
        fbs.TypeInfo.AddValue(b, inner)
        type_info = fbs.TypeInfo.End(b)
        name = b.CreateString("s")
        fbs.ValueInfo.Start(b)
        fbs.ValueInfo.AddName(b, name)
        fbs.ValueInfo.AddType(b, type_info)
        value = fbs.ValueInfo.End(b)
        fbs.Graph.StartNodeArgsVector(b, 1)
        b.PrependUOffsetTRelative(value)
        node_args = b.EndVector()
        fbs.Graph.Start(b)
        fbs.Graph.AddNodeArgs(b, node_args)
        return fbs.Graph.End(b)

    return _handmade(build)


def test_value_types_nested_too_deep_are_refused():
    flat = parse_ort_bytes(_sequence_value(1), Path("m.ort")).graph.values["s"]
    assert (flat.kind, flat.dtype) == ("sequence", "float32")
    nested = parse_ort_bytes(_sequence_value(MAX_TYPE_DEPTH - 1), Path("m.ort")).graph.values["s"]
    assert (nested.kind, nested.dtype) == ("sequence", None)  # sequence of sequences
    assert f"nested deeper than {MAX_TYPE_DEPTH}" in _error(_sequence_value(MAX_TYPE_DEPTH))


def test_shared_subgraphs_that_would_take_exponential_time_are_refused_quickly():
    import time

    def build(b, fbs):
        graph = _empty_graph(b, fbs)
        for _ in range(40):  # each level refers to the one below 4 times: 4**40 visits
            graph = _if_graph(b, fbs, [graph] * 4)
        return graph

    data = _handmade(build)
    start = time.perf_counter()
    assert "shared far more often" in _error(data)
    assert time.perf_counter() - start < 2
