"""A hostile corpus, generated: models whose strings attack the terminal, whose fields hold values
the format allows but nothing defines, whose external data points nowhere sane.

Every builder writes into a folder and returns the model's path; nothing here is checked in.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from models import external_data, save

# rich markup that closes nothing or plants a link, ANSI clear-screen, an OSC 8 hyperlink,
# a bidirectional override and a C1 control: each must reach the terminal as visible text
EVIL = "x[/]\x1b[2J\x1b]8;;http://evil.example\x07[link=http://evil.example]y[bold]\u202e\x9bz"


def _relu(
    name_in: str = "x",
    name_out: str = "y",
    node: str = "n",
    producer: str = "p",
    dim: str = "N",
    domain: str = "",
) -> onnx.ModelProto:
    g = helper.make_graph(
        [helper.make_node("Relu", [name_in], [name_out], name=node)],
        "g",
        [helper.make_tensor_value_info(name_in, TensorProto.FLOAT, [dim, 4])],
        [helper.make_tensor_value_info(name_out, TensorProto.FLOAT, [dim, 4])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name=producer)
    m.ir_version = 8
    return m


def good(folder: Path) -> Path:
    return save(_relu(), folder / "good.onnx")


def evil_names(folder: Path) -> Path:
    """A valid model whose every string is hostile: names, producer, dim param."""
    m = _relu(EVIL + "in", EVIL + "out", EVIL + "node", EVIL + "producer", EVIL + "dim")
    return save(m, folder / "evil_names.onnx")


def input_type_9999(folder: Path) -> Path:
    m = _relu()
    m.graph.input[0].type.tensor_type.elem_type = 9999
    return save(m, folder / "input_9999.onnx")


def initializer_type_9999(folder: Path) -> Path:
    m = _relu()
    m.graph.node.append(helper.make_node("Add", ["y", "c"], ["z"], name="add"))
    m.graph.output[0].name = "z"
    t = numpy_helper.from_array(np.ones(4, np.float32), "c")
    t.data_type = 9999
    m.graph.initializer.append(t)
    return save(m, folder / "initializer_9999.onnx")


def no_outputs(folder: Path) -> Path:
    m = _relu()
    del m.graph.output[:]
    return save(m, folder / "no_outputs.onnx")


def rank_1000(folder: Path) -> Path:
    shape = [1] * 1000
    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        "rank_1000",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return save(m, folder / "rank_1000.onnx")


def _external_field(folder: Path, name: str, key: str, value: str) -> Path:
    path = external_data(folder, name=f"{name}.onnx")
    m = onnx.load(str(path), load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == key:
                e.value = value
        if key not in {e.key for e in t.external_data}:
            t.external_data.add(key=key, value=value)
    onnx.save(m, str(path))
    return path


def external_offset_text(folder: Path) -> Path:
    return _external_field(folder / "ext_offset", "ext_offset", "offset", "twelve")


def external_length_negative(folder: Path) -> Path:
    return _external_field(folder / "ext_length", "ext_length", "length", "-4")


def external_nul(folder: Path) -> Path:
    return _external_field(folder / "ext_nul", "ext_nul", "location", "weights\0.bin")


def external_long_name(folder: Path) -> Path:
    return _external_field(folder / "ext_long_name", "ext_long_name", "location", "w" * 300)


def external_long_path(folder: Path) -> Path:
    return _external_field(folder / "ext_long_path", "ext_long_path", "location", "d/" * 3000 + "w")


def external_symlink_loop(folder: Path) -> Path:
    path = _external_field(folder / "ext_loop", "ext_loop", "location", "loop.bin")
    os.symlink("loop.bin", folder / "ext_loop" / "loop.bin")
    return path


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field."""
    key, size = (number << 3) | 2, len(payload)
    out = bytearray([key])
    while True:
        byte, size = size & 0x7F, size >> 7
        out.append(byte | (0x80 if size else 0))
        if not size:
            return bytes(out + payload)


def deep_if(folder: Path, depth: int = 60) -> Path:
    """If inside If ``depth`` times: the nesting protobuf refuses to parse (and to write, so the
    bytes are put together by hand: GraphProto.node 1, NodeProto.attribute 5,
    AttributeProto.g 6)."""
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1]).SerializeToString()
    leaf = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "leaf",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    ).SerializeToString()
    graph = leaf
    for _ in range(depth):
        attr = _field(1, b"then_branch") + _field(6, graph) + bytes([0xA0, 0x01, 5])  # type=GRAPH
        node = _field(1, b"c") + _field(2, b"y") + _field(4, b"If") + _field(5, attr)
        graph = _field(1, node) + _field(2, b"g") + _field(12, y)
    top = helper.make_model(
        helper.make_graph(
            [],
            "main",
            [helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    top.ir_version = 8
    head = top.SerializeToString()
    # the model's graph (field 7) is replaced by the nested one: a model is a field list
    data = head + _field(7, graph)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "deep_if.onnx"
    path.write_bytes(data)
    return path


def non_utf8_names(folder: Path) -> Path:
    """A node and an input named with bytes that are not UTF-8 (proto2 does not check)."""
    m = _relu("QQin", "y", "QQnode")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "non_utf8.onnx"
    path.write_bytes(m.SerializeToString().replace(b"QQ", b"\xff\xfe"))
    return path


BAD_AT_LOAD = {
    "input_type_9999": (input_type_9999, "element type 9999"),
    "initializer_type_9999": (initializer_type_9999, "element type 9999"),
    "external_offset_text": (external_offset_text, "not a byte count"),
    "external_length_negative": (external_length_negative, "not a byte count"),
    "external_nul": (external_nul, "NUL byte"),
    "external_long_name": (external_long_name, "external data file"),
    "external_long_path": (external_long_path, "external data file"),
    "external_symlink_loop": (external_symlink_loop, "external data file"),
    "deep_if": (deep_if, "nests subgraphs"),
    "non_utf8_names": (non_utf8_names, "not valid UTF-8"),
}
"""Models every command must refuse as bad input (exit 2 for one model), with a fragment of the
message."""
