"""Models that fail one model of a batch, built with onnx.helper: one ONNX Runtime cannot run on
synthesized inputs, one with an element type outside ONNX's enum, and a good one beside them."""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def relu() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    return _model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y]))


def reshape_to_input() -> onnx.ModelProto:
    """Reshape to a shape given as an input: ORT loads it, but the synthesized shape values do
    not fit the 2x3 data, so running it raises ORT's own error (a RuntimeException)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    shape = helper.make_tensor_value_info("shape", TensorProto.INT64, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    node = helper.make_node("Reshape", ["x", "shape"], ["y"])
    return _model(helper.make_graph([node], "reshape", [x, shape], [y]))


def unknown_element_type() -> onnx.ModelProto:
    """A Relu whose input claims tensor element type 9999 (not in ONNX's DataType enum)."""
    model = relu()
    model.graph.input[0].type.tensor_type.elem_type = 9999
    return model


def never_runs() -> onnx.ModelProto:
    """Reshape x [n, 3] to Shape(x) + 1 = [n + 1, 4]: 4n + 4 elements never equal 3n, so ORT
    loads and converts it (n is symbolic: nothing to fold) but no input of any size runs."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    one = helper.make_tensor("one", TensorProto.INT64, [1], [1])
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Add", ["s", "one"], ["s1"], name="plus_one"),
        helper.make_node("Reshape", ["x", "s1"], ["y"], name="reshape"),
    ]
    return _model(helper.make_graph(nodes, "never_runs", [x], [y], [one]))
