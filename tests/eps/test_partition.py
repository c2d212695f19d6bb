"""ORT's partition forming (partitioning_utils.cc) and QDQ node units, restated in partition.py."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np
import onnx
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from ortprep.core.graph import Graph, Node, ValueType
from ortprep.core.onnx_view import model_view
from ortprep.eps import nnapi, xnnpack
from ortprep.eps.partition import (
    IODef,
    NodeUnit,
    form_partitions,
    node_units,
    partition_io,
    stop_set,
    topological_order,
)

# --------------------------------------------------------------------------- helpers


def dag(spec: list[tuple[str, str, list[str]]], outputs: tuple[str, ...] = ()) -> Graph:
    """A bare graph: (name, op_type, input names); each node outputs a value named after it."""
    nodes = tuple(
        Node(i, name, op, "ai.onnx", tuple(inputs), (name,))
        for i, (name, op, inputs) in enumerate(spec)
    )
    outs = tuple(ValueType(o, "float32", (1,)) for o in outputs)
    return Graph("main", nodes, (ValueType("x", "float32", (1,)),), outs, {}, {})


def names(parts: list[list[Node]]) -> list[list[str]]:
    return [[n.name for n in p] for p in parts]


def by_op(*ops: str):
    return lambda unit: unit.target.op_type in ops


def onnx_graph(nodes, inputs, outputs, inits=(), opset: int = 17) -> Graph:
    model = helper.make_model(
        helper.make_graph(nodes, "t", inputs, outputs, list(inits)),
        opset_imports=[helper.make_opsetid("", opset)],
    )
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model)
    return model_view(model, Path("t.onnx")).graph


def vi(name: str, elem: int, shape: list[int]):
    return helper.make_tensor_value_info(name, elem, shape)


def const(name: str, value) -> TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def qdq_chain(target: str = "Conv", y_zp: int = 128, relu: bool = False) -> Graph:
    """uint8 x -> DQ -> target (Conv with int8 weight, or a unary op) [-> Relu] -> Q -> uint8 y."""
    inits = [
        const("sx", np.float32(0.02)),
        const("zx", np.uint8(128)),
        const("sy", np.float32(0.05)),
        const("zy", np.uint8(y_zp)),
    ]
    nodes = [helper.make_node("DequantizeLinear", ["x", "sx", "zx"], ["xf"], name="dq_x")]
    if target == "Conv":
        inits += [
            const("w", np.ones((4, 3, 3, 3), np.int8)),
            const("sw", np.float32(0.1)),
            const("zw", np.int8(0)),
            const("b", np.zeros(4, np.int32)),
            const("sb", np.float32(0.002)),
            const("zb", np.int32(0)),
        ]
        nodes += [
            helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wf"], name="dq_w"),
            helper.make_node("DequantizeLinear", ["b", "sb", "zb"], ["bf"], name="dq_b"),
            helper.make_node("Conv", ["xf", "wf", "bf"], ["yf"], name="conv", pads=[1, 1, 1, 1]),
        ]
    else:
        nodes.append(helper.make_node(target, ["xf"], ["yf"], name="op"))
    pre_q = "yf"
    if relu:
        nodes.append(helper.make_node("Relu", ["yf"], ["yr"], name="relu"))
        pre_q = "yr"
    nodes.append(helper.make_node("QuantizeLinear", [pre_q, "sy", "zy"], ["y"], name="q_y"))
    return onnx_graph(
        nodes,
        [vi("x", TensorProto.UINT8, [1, 3, 8, 8])],
        [vi("y", TensorProto.UINT8, [1, 4 if target == "Conv" else 3, 8, 8])],
        inits,
    )


# --------------------------------------------------------------------------- partitions


def test_partition_chain_is_split_by_an_unsupported_node():
    g = dag(
        [
            ("a", "Relu", ["x"]),
            ("b", "Relu", ["a"]),
            ("u", "Erf", ["b"]),
            ("c", "Relu", ["u"]),
            ("d", "Relu", ["c"]),
        ]
    )
    assert names(form_partitions(g, by_op("Relu"))) == [["a", "b"], ["c", "d"]]


def test_partition_all_supported_chain_is_one_partition():
    g = dag([("a", "Relu", ["x"]), ("b", "Relu", ["a"]), ("c", "Relu", ["b"])])
    assert names(form_partitions(g, by_op("Relu"))) == [["a", "b", "c"]]


def test_partition_never_contains_a_path_through_an_unsupported_node():
    # a -> u -> c and a -> c: a and c are linked only through u, so they cannot share a partition
    g = dag([("a", "Relu", ["x"]), ("u", "Erf", ["a"]), ("c", "Add", ["a", "u"])])
    assert names(form_partitions(g, by_op("Relu", "Add"))) == [["a"], ["c"]]


def test_partition_unsupported_side_branch_does_not_split_independent_nodes():
    # u hangs off the input; a -> b stays one group because u is not on the group's border
    g = dag([("u", "Erf", ["x"]), ("a", "Relu", ["x"]), ("b", "Relu", ["a"]), ("v", "Erf", ["u"])])
    assert names(form_partitions(g, by_op("Relu"))) == [["a", "b"]]


def test_partition_merge_after_unsupported_branch_goes_to_the_next_partition():
    # a feeds both s (supported) and u (unsupported); m merges s and u
    g = dag(
        [
            ("a", "Relu", ["x"]),
            ("s", "Relu", ["a"]),
            ("u", "Erf", ["a"]),
            ("m", "Add", ["s", "u"]),
            ("t", "Relu", ["m"]),
        ]
    )
    assert names(form_partitions(g, by_op("Relu", "Add"))) == [["a", "s"], ["m", "t"]]


def test_partition_supported_nodes_in_parallel_branches_join_the_same_partition():
    g = dag([("a", "Relu", ["x"]), ("b", "Relu", ["x"]), ("m", "Add", ["a", "b"])])
    assert names(form_partitions(g, by_op("Relu", "Add"))) == [["a", "b", "m"]]


def test_partition_excluded_nodes_are_unsupported():
    g = dag([("a", "Relu", ["x"]), ("b", "Relu", ["a"]), ("c", "Relu", ["b"])])
    assert names(form_partitions(g, by_op("Relu"), excluded={1})) == [["a"], ["c"]]


def test_partition_group_closed_callback_can_drop_a_group():
    g = dag(
        [("a", "Reshape", ["x"]), ("u", "Erf", ["a"]), ("b", "Relu", ["u"]), ("c", "Relu", ["b"])]
    )
    seen: list[list[str]] = []

    def keep(group: list[Node]) -> bool:
        seen.append([n.name for n in group])
        return not (len(group) == 1 and group[0].op_type == "Reshape")

    parts = form_partitions(g, by_op("Reshape", "Relu"), on_group_closed=keep)
    assert seen == [["a"], ["b", "c"]]
    assert names(parts) == [["b", "c"]]


def test_partition_nodes_assigned_to_another_ep_are_unsupported():
    nodes = (
        Node(0, "a", "Relu", "ai.onnx", ("x",), ("a",)),
        Node(1, "b", "Relu", "ai.onnx", ("a",), ("b",), execution_provider="CPUExecutionProvider"),
        Node(2, "c", "Relu", "ai.onnx", ("b",), ("c",)),
    )
    g = Graph("main", nodes, (), (), {}, {})
    parts = form_partitions(g, by_op("Relu"), ep_type="NnapiExecutionProvider")
    assert names(parts) == [["a"], ["c"]]


def test_partition_control_flow_node_depends_on_values_its_subgraph_reads():
    # 'iff' reads 'a' only inside its then-branch; c needs iff's output, so a and c are split
    then_g = Graph(
        "main/iff:then",
        (Node(0, "t", "Relu", "ai.onnx", ("a",), ("t_out",)),),
        (),
        (ValueType("t_out", "float32", (1,)),),
        {},
        {},
    )
    nodes = (
        Node(0, "a", "Relu", "ai.onnx", ("x",), ("a",)),
        Node(1, "iff", "If", "ai.onnx", ("cond",), ("iff",), subgraphs={"then": then_g}),
        Node(2, "c", "Add", "ai.onnx", ("a", "iff"), ("c",)),
    )
    g = Graph("main", nodes, (), (), {}, {})
    assert names(form_partitions(g, by_op("Relu", "Add"))) == [["a"], ["c"]]


def test_partition_io_lists_boundary_values_like_make_compute_capability():
    g = dag(
        [("a", "Relu", ["x"]), ("b", "Add", ["a", "x"]), ("c", "Erf", ["a"]), ("d", "Relu", ["b"])],
        outputs=("d",),
    )
    inputs, outputs = partition_io(g, [g.nodes[0], g.nodes[1], g.nodes[3]])
    assert inputs == ["x"]
    assert outputs == ["a", "d"]


def test_stop_set_excludes_non_max_suppression_and_everything_downstream():
    g = dag(
        [
            ("a", "Relu", ["x"]),
            ("nms", "NonMaxSuppression", ["a"]),
            ("g", "Gather", ["nms"]),
            ("h", "Relu", ["g"]),
            ("side", "Relu", ["a"]),
        ]
    )
    assert stop_set(g, frozenset({"NonMaxSuppression"})) == {1, 2, 3}
    assert stop_set(g, frozenset()) == set()


def test_topological_order_follows_ort_reverse_dfs():
    g = dag([("a", "Relu", ["x"]), ("b", "Relu", ["x"]), ("c", "Add", ["a", "b"])])
    assert topological_order(g) == [1, 0, 2]


def test_partition_100k_node_chain():
    """Scale smoke test (timing is measured by benchmarks/, not asserted here)."""
    n = 100_000
    nodes = tuple(
        Node(
            i,
            f"n{i}",
            "Relu" if i % 1000 else "Erf",
            "ai.onnx",
            (f"v{i - 1}" if i else "x",),
            (f"v{i}",),
        )
        for i in range(n)
    )
    g = Graph("main", nodes, (), (), {}, {})
    parts = form_partitions(g, by_op("Relu"))
    assert len(parts) == 100
    assert sum(len(p) for p in parts) == n - 100


# --------------------------------------------------------------------------- QDQ node units


def test_node_units_group_dq_conv_q_into_one_unit():
    g = qdq_chain("Conv")
    units = [u for u in node_units(g) if u.kind == "qdq"]
    assert len(units) == 1
    unit = units[0]
    assert unit.target.name == "conv"
    assert [n.name for n in unit.dq_nodes] == ["dq_x", "dq_w", "dq_b"]
    assert [n.name for n in unit.q_nodes] == ["q_y"]
    assert [n.name for n in unit.nodes] == ["dq_x", "dq_w", "dq_b", "conv", "q_y"]


def test_node_units_cover_every_node_exactly_once():
    g = qdq_chain("Conv")
    members = [n.name for u in node_units(g) for n in u.nodes]
    assert sorted(members) == sorted(n.name for n in g.nodes)


def test_node_units_take_a_relu_made_redundant_by_q_into_the_unit():
    g = qdq_chain("Conv", y_zp=0, relu=True)  # uint8 zero point 0: the Q already clips at 0
    unit = next(u for u in node_units(g) if u.kind == "qdq")
    assert unit.redundant_clip is not None and unit.redundant_clip.name == "relu"
    assert [n.name for n in unit.nodes] == ["dq_x", "dq_w", "dq_b", "conv", "relu", "q_y"]


def test_node_units_relu_not_redundant_prevents_the_group():
    g = qdq_chain("Conv", y_zp=128, relu=True)
    assert all(u.kind == "single" for u in node_units(g))


def test_node_units_dq_feeding_two_nodes_forms_no_group():
    inits = [const("s", np.float32(0.1)), const("z", np.uint8(128))]
    nodes = [
        helper.make_node("DequantizeLinear", ["x", "s", "z"], ["xf"], name="dq"),
        helper.make_node("Sigmoid", ["xf"], ["a"], name="sig"),
        helper.make_node("Tanh", ["xf"], ["b"], name="tanh"),
        helper.make_node("QuantizeLinear", ["a", "s", "z"], ["qa"], name="qa"),
        helper.make_node("QuantizeLinear", ["b", "s", "z"], ["qb"], name="qb"),
    ]
    g = onnx_graph(
        nodes,
        [vi("x", TensorProto.UINT8, [1, 4])],
        [vi("qa", TensorProto.UINT8, [1, 4]), vi("qb", TensorProto.UINT8, [1, 4])],
        inits,
    )
    assert all(u.kind == "single" for u in node_units(g))


def test_partition_keeps_a_supported_qdq_unit_whole():
    g = qdq_chain("Conv")
    parts = nnapi.partitions(g)
    assert names(parts) == [["dq_x", "dq_w", "dq_b", "conv", "q_y"]]


def test_partition_leaves_an_unsupported_qdq_unit_whole_on_cpu():
    g = qdq_chain("Sigmoid")
    units = node_units(g)
    assert [u.kind for u in units] == ["qdq"]
    assert nnapi.partitions(g) == []
    # the same walk with a unit-level predicate never splits the group
    assert names(form_partitions(g, lambda u: u.kind == "single", units)) == []


def test_partition_qdq_unit_in_degree_counts_edges_into_its_dq_nodes():
    # relu (supported) -> q0 -> [dq -> sigmoid -> q] (unsupported) -> dq2 -> relu2 (supported)
    inits = [const("s", np.float32(0.1)), const("z", np.uint8(128))]
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("QuantizeLinear", ["r", "s", "z"], ["rq"], name="q0"),
        helper.make_node("DequantizeLinear", ["rq", "s", "z"], ["rf"], name="dq"),
        helper.make_node("Sigmoid", ["rf"], ["sg"], name="sig"),
        helper.make_node("QuantizeLinear", ["sg", "s", "z"], ["sq"], name="q"),
        helper.make_node("DequantizeLinear", ["sq", "s", "z"], ["sf"], name="dq2"),
        helper.make_node("Relu", ["sf"], ["y"], name="relu2"),
    ]
    g = onnx_graph(
        nodes, [vi("x", TensorProto.FLOAT, [1, 4])], [vi("y", TensorProto.FLOAT, [1, 4])], inits
    )
    units = node_units(g)
    assert [u.target.name for u in units if u.kind == "qdq"] == ["sig"]
    parts = form_partitions(g, lambda u: u.kind == "single", units)
    assert names(parts) == [["relu", "q0"], ["dq2", "relu2"]]


def test_node_unit_nodes_order_is_dq_target_clip_q():
    a, b, c, d = (
        Node(i, n, op, "ai.onnx", (), (n,))
        for i, (n, op) in enumerate(
            [("d", "DequantizeLinear"), ("t", "Conv"), ("r", "Relu"), ("q", "QuantizeLinear")]
        )
    )
    unit = NodeUnit(b, (a,), (d,), "qdq", c)
    assert [n.name for n in unit.nodes] == ["d", "t", "r", "q"]


# --------------------------------------------------------------------------- properties


def naive_partitions(g: Graph, ok: set[int]) -> list[list[int]]:
    """A literal, slow restatement of CreateSupportedPartitionNodeGroups for single nodes."""
    consumers: dict[int, list[int]] = {n.index: [] for n in g.nodes}
    producer = {o: n.index for n in g.nodes for o in n.outputs}
    indeg = {n.index: 0 for n in g.nodes}
    for n in g.nodes:
        for name in n.inputs:
            if name in producer:
                consumers[producer[name]].append(n.index)
                indeg[n.index] += 1
    for lst in consumers.values():
        lst.sort()
    ready = deque(i for i in topological_order(g) if indeg[i] == 0)
    later: deque[int] = deque()
    groups, group, border = [], [], set()
    while ready or later:
        if not ready:
            if group:
                groups.append(sorted(group))
            group, border = [], set()
            ready, later = later, deque()
            continue
        i = ready.popleft()
        if i not in ok and i in border:
            later.append(i)
            continue
        if i in ok:
            group.append(i)
            border.discard(i)
        for c in consumers[i]:
            if i in ok:
                border.add(c)
            indeg[c] -= 1
            if indeg[c] == 0:
                ready.append(c)
    if group:
        groups.append(sorted(group))
    return groups


@st.composite
def random_dags(draw):
    size = draw(st.integers(1, 25))
    spec, ok = [], set()
    for i in range(size):
        k = draw(st.integers(0, min(i, 3)))
        parents = draw(st.lists(st.integers(0, i - 1), min_size=k, max_size=k)) if i else []
        spec.append((f"n{i}", "Op", [f"n{p}" for p in parents] or ["x"]))
        if draw(st.booleans()):
            ok.add(i)
    return dag(spec), ok


def reaches(g: Graph, start: int) -> set[int]:
    producer = {o: n.index for n in g.nodes for o in n.outputs}
    out: dict[int, list[int]] = {n.index: [] for n in g.nodes}
    for n in g.nodes:
        for name in n.inputs:
            if name in producer:
                out[producer[name]].append(n.index)
    seen, todo = set(), [start]
    while todo:
        for c in out[todo.pop()]:
            if c not in seen:
                seen.add(c)
                todo.append(c)
    return seen


@settings(max_examples=150, deadline=None)
@given(random_dags())
def test_partition_matches_a_literal_restatement_and_is_convex(case):
    g, ok = case
    parts = form_partitions(g, lambda u: u.target.index in ok)
    got = [[n.index for n in p] for p in parts]
    assert got == naive_partitions(g, ok)
    flat = [i for p in got for i in p]
    assert sorted(flat) == sorted(ok)  # every supported node lands in exactly one partition
    for p in got:
        members = set(p)
        for i in p:
            # no path leaves the partition and comes back
            outside = reaches(g, i) - members
            assert not any(reaches(g, o) & members for o in outside)


def test_partition_stop_op_keeps_downstream_nodes_out_of_nnapi():
    spec = [
        ("relu0", "Relu", ["x"]),
        ("nms", "NonMaxSuppression", ["relu0"]),
        ("relu1", "Relu", ["nms"]),
        ("relu2", "Relu", ["relu1"]),
        ("side", "Relu", ["relu0"]),
    ]
    nodes = tuple(
        Node(i, n, op, "ai.onnx", tuple(ins), (n,)) for i, (n, op, ins) in enumerate(spec)
    )
    values = {v: ValueType(v, "float32", (1, 4)) for v in ("x", *(n for n, _, _ in spec))}
    g = Graph("main", nodes, (values["x"],), (values["relu2"], values["side"]), {}, values)
    assert stop_set(g, nnapi.STOP_OPS) == {1, 2, 3}
    assert names(nnapi.partitions(g)) == [["relu0", "side"]]
    assert names(nnapi.partitions(g, stop_ops=frozenset())) == [
        ["relu0", "side"],
        ["relu1", "relu2"],
    ]


def test_partition_public_api_is_listed_in_all():
    from ortprep.eps import partition

    assert all(hasattr(partition, name) for name in partition.__all__)


# --------------------------------------------------------------------------- unit IO defs


def _node(index: int, op: str, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> Node:
    return Node(index, f"{op.lower()}{index}", op, "ai.onnx", inputs, outputs)


def test_unit_io_defs_follow_ort_node_unit_with_a_redundant_clip():
    # node_unit.cc: a QDQ unit's outputs are those of its output producer, the redundant Clip
    # when there is one. The target's own outputs (here a trailing unused optional output) are
    # not the unit's: XNNPACK's former view listed them, with Clip mapped through by name.
    dq = _node(0, "DequantizeLinear", ("xq", "xs"), ("x",))
    pool = _node(1, "AveragePool", ("x",), ("p", ""))
    clip = _node(2, "Relu", ("p",), ("r",))
    q = _node(3, "QuantizeLinear", ("r", "ys", "yz"), ("yq",))
    unit = NodeUnit(pool, (dq,), (q,), "qdq", clip)

    assert unit.inputs == (IODef("xq", "xs", None),)
    assert unit.outputs == (IODef("yq", "ys", "yz"),)
    assert unit.outputs[0].quantized and not IODef("v").quantized

    graph = Graph("main", (dq, pool, clip, q), (), (), {}, {})
    node, io = xnnpack.quantized_view(unit, graph)
    assert node.inputs == ("xq",) and node.outputs == ("yq",)
    assert io.outputs == (IODef("yq", "ys", "yz"),)


def test_unit_io_defs_of_single_nodes():
    qconv = _node(0, "QLinearConv", ("x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"), ("y",))
    assert NodeUnit(qconv).inputs == (IODef("x", "xs", "xz"), IODef("w", "ws", "wz"), IODef("b"))
    assert NodeUnit(qconv).outputs == (IODef("y", "ys", "yz"),)
    qconcat = _node(1, "QLinearConcat", ("ys", "yz", "a", "as", "az", "b", "bs", "bz"), ("y",))
    assert NodeUnit(qconcat).inputs == (IODef("a", "as", "az"), IODef("b", "bs", "bz"))
    assert NodeUnit(qconcat).outputs == (IODef("y", "ys", "yz"),)
    relu = _node(2, "Relu", ("x",), ("y",))
    assert NodeUnit(relu).inputs == (IODef("x"),) and NodeUnit(relu).outputs == (IODef("y"),)


def test_every_qdq_selector_family_has_its_check():
    from ortprep.eps.qdq_selection import _FAMILY_CHECKS, SELECTORS

    assert set(SELECTORS.values()) == set(_FAMILY_CHECKS)
