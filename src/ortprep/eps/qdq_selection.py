"""QDQ node-unit selection: which DQ -> op -> Q patterns ORT groups into one node unit.

Sources (microsoft/onnxruntime, restated, not copied): ``core/framework/node_unit.cc``
(``GetAllNodeUnits``) and ``core/optimizer/qdq_transformer/selectors_actions/`` (``shared/utils.cc``
for the op lists, ``qdq_selectors.cc`` for each family's checks, ``qdq_util.cc`` for
``IsQDQPairSupported`` and ``IsClipMadeRedundantByQ``). Units are EP-agnostic; an EP that
partitions by unit (NNAPI, XNNPACK) judges and places a unit as a whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from ortprep.core.graph import Graph, Node
from ortprep.eps.graph_edges import GraphEdges, graph_edges, topological_order
from ortprep.eps.node_unit import DQ_OP, Q_OP, NodeUnit

# --------------------------------------------------------------------------- QDQ node units

# Selector families: the op lists of the newest shared/utils.cc read (ArgMax/TopK/Pad/Where era);
# Clip uses the 1-3 DQ selector of the newest qdq_selectors.cc. Newer main may register more ops
# (Erf, HardSigmoid, Softplus, Einsum, CumSum, ...), which only matters for ops NNAPI refuses.
_DROP_QDQ = (
    "Gather",
    "Reshape",
    "Expand",
    "Flatten",
    "Transpose",
    "MaxPool",
    "Resize",
    "Squeeze",
    "Unsqueeze",
    "Tile",
)
_DROP_DQ = ("ArgMax", "ArgMin")
_UNARY = (
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "LeakyRelu",
    "ReduceMean",
    "ReduceMin",
    "ReduceMax",
    "ReduceProd",
    "ReduceSum",
    "Relu",
    "Gelu",
    "Elu",
    "HardSwish",
    "Sigmoid",
    "Slice",
    "LogSoftmax",
    "Softmax",
    "Sqrt",
    "Atan",
    "Asin",
    "Sin",
    "Cos",
    "Sign",
    "Tanh",
    "Exp",
    "Log",
    "LRN",
    "Ceil",
    "Floor",
    "Round",
    "Abs",
    "Neg",
    "DepthToSpace",
    "SpaceToDepth",
    "LpNormalization",
)
_BINARY = ("Add", "Div", "Mul", "Pow", "Sub", "PRelu", "GridSample")
_VARIADIC = ("Concat", "Max", "Min")
_LOGICAL = ("Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual")

SELECTORS: dict[str, str] = {
    **dict.fromkeys(_DROP_QDQ, "drop_qdq"),
    **dict.fromkeys(_DROP_DQ, "drop_dq"),
    **dict.fromkeys(_UNARY, "unary"),
    **dict.fromkeys(_BINARY, "binary"),
    **dict.fromkeys(_VARIADIC, "variadic"),
    **dict.fromkeys(_LOGICAL, "logical"),
    "Clip": "clip",
    "Split": "split",
    "Conv": "conv",
    "ConvTranspose": "conv",
    "MatMul": "matmul",
    "Gemm": "gemm",
    "InstanceNormalization": "norm",
    "LayerNormalization": "norm",
    "BatchNormalization": "batchnorm",
    "Where": "where",
    "Pad": "pad",
    "TopK": "topk",
}
"""Op types that can be the target of a QDQ unit, by selector family (EP-agnostic)."""

_SELECTOR_VERSIONS: dict[str, tuple[int, ...]] = {"MaxPool": (12,)}
_SELECTOR_DOMAINS = frozenset({"ai.onnx", "com.microsoft", "com.ms.internal.nhwc"})
_NO_CLIP_FAMILIES = frozenset({"drop_qdq", "drop_dq", "split", "topk"})


def node_units(graph: Graph) -> list[NodeUnit]:
    """Every node of ``graph`` in exactly one unit, units in graph order of their target.

    QDQ units are found as ORT's ``GetAllNodeUnits`` finds them (selectors in ``qdq_selectors.cc``);
    a node whose selector checks fail is a single-node unit, and so are its DQ and Q nodes.

    Computed once per graph object (several EPs ask for the same graph); each call returns a new
    list of the same unit objects.
    """
    e = graph_edges(graph)
    if e.units is None:
        candidates = _qdq_candidates(graph, e)
        if len(candidates) > 1:
            # First claim wins when units overlap, in ORT's topological order.
            is_candidate = set(candidates)
            candidates = [p for p in topological_order(graph) if p in is_candidate]
        e.units = _node_units(graph, e, candidates)
    return list(e.units)


def single_units(graph: Graph) -> list[NodeUnit]:
    """Every node as a unit of its own, for EPs that judge nodes one by one (CoreML); computed
    once per graph object, like :func:`node_units` (whose units they are when it found no QDQ
    group)."""
    e = graph_edges(graph)
    if e.singles is None:
        if e.units is not None and len(e.units) == len(graph.nodes):
            e.singles = e.units
        else:
            e.singles = [NodeUnit(n) for n in graph.nodes]
    return list(e.singles)


def _qdq_candidates(graph: Graph, e: GraphEdges) -> list[int]:
    """Positions of the nodes that may be the target of a QDQ unit, in graph order.

    The cheap part of :func:`_select` (op type, domain, version, a DQ input), so that graphs
    without DQ nodes skip the selectors and the topological order altogether.
    """
    nodes = graph.nodes
    dq = [p for p, n in enumerate(nodes) if n.op_type == DQ_OP]
    if not dq:
        return []
    fed_by_dq = {c for p in dq for c, _, _ in e.outputs[p]}
    result = []
    for p in sorted(fed_by_dq):
        node = nodes[p]
        if node.op_type not in SELECTORS or node.domain not in _SELECTOR_DOMAINS:
            continue
        versions = _SELECTOR_VERSIONS.get(node.op_type)
        if not versions or node.since_version in versions:
            result.append(p)
    return result


def _node_units(graph: Graph, e: GraphEdges, candidates: list[int]) -> list[NodeUnit]:
    nodes = graph.nodes
    claimed: dict[int, NodeUnit] = {}
    for p in candidates:
        unit = _select(graph, e, nodes[p])
        if unit is None:
            continue
        for m in unit.nodes:
            claimed.setdefault(m.index, unit)
    if not claimed:
        return [NodeUnit(n) for n in nodes]
    result: list[NodeUnit] = []
    for n in nodes:
        unit = claimed.get(n.index)
        if unit is None:
            result.append(NodeUnit(n))
        elif unit.target.index == n.index:
            result.append(unit)
    return result


def _select(graph: Graph, e: GraphEdges, node: Node) -> NodeUnit | None:
    family = SELECTORS.get(node.op_type)
    if family is None or node.domain not in _SELECTOR_DOMAINS:
        return None
    versions = _SELECTOR_VERSIONS.get(node.op_type)
    if versions and node.since_version not in versions:
        return None
    p = e.pos_of_index[node.index]
    if not any(graph.nodes[src].op_type == DQ_OP for src, _, _ in e.inputs[p]):
        return None  # every selector needs at least one DQ input
    dq = _dq_parents(graph, e, p)
    clip = _clip_candidate(graph, e, p)
    q = _q_children(graph, e, e.pos_of_index[clip.index] if clip else p)
    if clip is not None and (len(q) != 1 or not _clip_made_redundant(graph, clip, q[0])):
        return None
    if not _SelectorCheck(graph, e, node, clip, dq, q).passes(family):
        return None
    return NodeUnit(node, tuple(dq), tuple(q), "qdq", clip)


def _dq_parents(graph: Graph, e: GraphEdges, p: int) -> list[Node]:
    """DQ producers of the node's explicit inputs, in input-slot order (FindParentsByType)."""
    n_inputs = len(graph.nodes[p].inputs)
    return [
        graph.nodes[src]
        for src, _, dst in sorted(e.inputs[p], key=lambda x: x[2])
        if dst < n_inputs and graph.nodes[src].op_type == DQ_OP
    ]


def _q_children(graph: Graph, e: GraphEdges, p: int) -> list[Node]:
    """Q consumers of the node's outputs, by output slot then edge order (FindChildrenByType)."""
    edges = sorted(e.outputs[p], key=lambda x: x[1])
    return [graph.nodes[c] for c, _, _ in edges if graph.nodes[c].op_type == Q_OP]


def _clip_candidate(graph: Graph, e: GraphEdges, p: int) -> Node | None:
    """A Relu/Clip that is the only consumer of the node and has one consumer itself."""
    if len(e.outputs[p]) != 1:
        return None
    c = e.outputs[p][0][0]
    nxt = graph.nodes[c]
    if (
        nxt.op_type in ("Relu", "Clip")
        and len(e.outputs[c]) == 1
        and not e.produces_graph_output(nxt)
    ):
        return nxt
    return None


_INT_RANGES = {
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int16": (-32768, 32767),
    "uint16": (0, 65535),
}


def _clip_made_redundant(graph: Graph, clip: Node, q: Node) -> bool:
    """``IsClipMadeRedundantByQ`` (qdq_util.cc): the Q's integer range lies inside the Clip's."""
    params = _q_scalar_params(graph, q)
    if params is None:
        return False
    scale, zp, dtype = params
    lo, hi = _INT_RANGES.get(dtype, (None, None))
    if lo is None or hi is None:
        return False
    if clip.op_type == "Relu":
        return zp == lo
    bounds = _clip_bounds(graph, clip)
    if bounds is None:
        return False
    q_lo = _round_half_even(bounds[0] / scale) + zp
    q_hi = _round_half_even(bounds[1] / scale) + zp
    return q_lo <= lo and q_hi >= hi


def _round_half_even(x: float) -> float:
    return x if math.isinf(x) else float(round(x))


def _q_scalar_params(graph: Graph, q: Node) -> tuple[float, int, str] | None:
    scale = _constant_values(graph, q.input(1))
    if scale is None or scale.ndim != 0 or str(scale.dtype) != "float32":
        return None
    if not q.input(2):
        dtype = _onnx_dtype_name(q.attributes.get("output_dtype", 0)) or "uint8"
        return float(scale), 0, dtype
    zp = _constant_values(graph, q.input(2))
    if zp is None or zp.ndim != 0:
        return None
    return float(scale), int(zp), str(zp.dtype)


def _onnx_dtype_name(code: int) -> str | None:
    return {2: "uint8", 3: "int8", 4: "uint16", 5: "int16"}.get(int(code or 0))


def _clip_bounds(graph: Graph, clip: Node) -> tuple[float, float] | None:
    """Clip's (min, max) when they are constants (attributes before opset 11, inputs after)."""
    lo, hi = -3.4028234663852886e38, 3.4028234663852886e38
    if clip.since_version is not None and clip.since_version < 11:
        return float(clip.attributes.get("min", lo)), float(clip.attributes.get("max", hi))
    for slot in (1, 2):
        name = clip.input(slot)
        if not name:
            continue
        value = _constant_values(graph, name)
        if value is None or value.size != 1:
            return None
        if slot == 1:
            lo = float(value.reshape(-1)[0])
        else:
            hi = float(value.reshape(-1)[0])
    return lo, hi


def _constant_values(graph: Graph, name: str) -> Any:
    """A constant initializer's values (numpy), or ``None``."""
    if not name or not graph.is_constant(name):
        return None
    try:
        return graph.initializers[name].numpy()
    except (ValueError, OSError):
        return None


def elem_type(graph: Graph, name: str) -> str | None:
    """Element type of a value; falls back to what a Q node's zero point says it produces."""
    vt = graph.value_type(name) if name else None
    if vt is not None and vt.dtype:
        return vt.dtype
    producer = graph.producers.get(name)
    if producer is not None and producer.op_type == Q_OP:
        zp = producer.input(2)
        if zp:
            zvt = graph.value_type(zp)
            return zvt.dtype if zvt else None
        return _onnx_dtype_name(producer.attributes.get("output_dtype", 0)) or "uint8"
    return None


class _SelectorCheck:
    """The checks of ORT's node-group selectors (qdq_selectors.cc) for one candidate group."""

    def __init__(
        self,
        graph: Graph,
        e: GraphEdges,
        node: Node,
        clip: Node | None,
        dq: list[Node],
        q: list[Node],
    ) -> None:
        self.graph, self.e, self.node, self.clip, self.dq, self.q = graph, e, node, clip, dq, q

    def passes(self, family: str) -> bool:
        if self.clip is not None and family in _NO_CLIP_FAMILIES:
            return False
        return _FAMILY_CHECKS[family](self)

    # -- shared checks

    def _dq_type(self, i: int) -> str | None:
        return elem_type(self.graph, self.dq[i].input(0))

    def _q_type(self, i: int) -> str | None:
        return elem_type(self.graph, self.q[i].outputs[0] if self.q[i].outputs else "")

    def _can_create(self) -> bool:
        """``NodeGroup::CanCreateNodeGroup``: each DQ feeds only the target; Q-consumed outputs
        are consumed only by Q nodes and are not graph outputs."""
        t = self.e.pos_of_index[self.node.index]
        for d in self.dq:
            out = self.e.outputs[self.e.pos_of_index[d.index]]
            if self.e.produces_graph_output(d) or len(out) != 1 or out[0][0] != t:
                return False
        if not self.q:
            return True
        producer = self.clip or self.node
        kinds: dict[int, bool] = {}
        for c, src, _ in self.e.outputs[self.e.pos_of_index[producer.index]]:
            is_q = self.graph.nodes[c].op_type == Q_OP
            if kinds.setdefault(src, is_q) != is_q:
                return False
        return not any(
            is_q and producer.outputs[src] in self.e.graph_outputs for src, is_q in kinds.items()
        )

    def _check_qdq_nodes(self, num_dq: int | None = None, empty_q_ok: bool = False) -> bool:
        """``NodeGroupSelector::CheckQDQNodes``."""
        if num_dq is None:
            num_dq = sum(1 for i in self.node.inputs if i)
        if num_dq != len(self.dq) or not self._can_create():
            return False
        if not self.q:
            return empty_q_ok
        num_outputs = sum(1 for o in self.node.outputs if o)
        out_edges = len(self.e.outputs[self.e.pos_of_index[self.node.index]])
        return num_outputs == len(self.q) == out_edges and not self.e.produces_graph_output(
            self.node
        )

    def _same_io_type(self) -> bool:
        return self._dq_type(0) == self._q_type(0)

    # -- families

    def _drop_qdq(self) -> bool:
        if not self._check_qdq_nodes(1) or not self._same_io_type():
            return False
        return _qdq_pair_same_params(self.graph, self.q[0], self.dq[0])

    def _drop_dq(self) -> bool:
        if len(self.dq) != 1 or not self._can_create():
            return False
        d = self.dq[0]
        scale_ok = _is_const_scalar(self.graph, d.input(1))
        return scale_ok and bool(d.input(2)) and _is_const_scalar(self.graph, d.input(2))

    def _unary(self) -> bool:
        return self._check_qdq_nodes(1) and self._same_io_type()

    def _clip(self) -> bool:
        if not 1 <= len(self.dq) <= 3:
            return False
        return self._check_qdq_nodes(len(self.dq)) and self._same_io_type()

    def _binary(self) -> bool:
        if not self._check_qdq_nodes():
            return False
        return self._dq_type(0) == self._dq_type(1) == self._q_type(0)

    def _variadic(self) -> bool:
        if not self._check_qdq_nodes():
            return False
        dq_types = {self._dq_type(i) for i in range(len(self.dq))}
        q_types = {self._q_type(i) for i in range(len(self.q))}
        return len(dq_types) == 1 and dq_types == q_types

    def _split(self) -> bool:
        if not self._check_qdq_nodes(1):
            return False
        return all(self._q_type(i) == self._dq_type(0) for i in range(len(self.q)))

    def _conv(self) -> bool:
        if not self._check_qdq_nodes() or len(self.dq) < 2 or not self._same_io_type():
            return False
        x, w = self._dq_type(0), self._dq_type(1)
        if x == "int8" and w != x:
            return False
        return len(self.dq) < 3 or self._dq_type(2) == "int32"

    def _matmul(self) -> bool:
        # Without a Q it could only become MatMulIntegerToFloat, which the shared selector
        # manager does not allow (matmulintegertofloat_allowed defaults to false).
        if len(self.dq) != 2 or not self.q:
            return False
        if self._dq_type(0) == "int8" and self._dq_type(1) != "int8":
            return False
        return self._check_qdq_nodes() and self._same_io_type()

    def _gemm(self) -> bool:
        if not self._check_qdq_nodes(empty_q_ok=True) or len(self.dq) < 2:
            return False
        a, b = self._dq_type(0), self._dq_type(1)
        if a == "int8" and b != a:
            return False
        if self.q and self._q_type(0) != a:
            return False
        if len(self.dq) < 3:
            return True
        return float(self.node.attributes.get("beta", 1.0)) == 1.0 and self._dq_type(2) == "int32"

    def _norm(self) -> bool:
        if not self._check_qdq_nodes() or not self._same_io_type():
            return False
        return len(self.dq) <= 2 or self._dq_type(2) == "int32"

    def _batchnorm(self) -> bool:
        if not 3 <= len(self.dq) <= 5 or not self._check_qdq_nodes(len(self.dq)):
            return False
        if not self._same_io_type():
            return False
        return self._dq_type(0) != "int8" or self._dq_type(1) == "int8"

    def _logical(self) -> bool:
        return self._check_qdq_nodes(empty_q_ok=True) and self._dq_type(0) == self._dq_type(1)

    def _where(self) -> bool:
        if not self._check_qdq_nodes(2):
            return False
        return self._dq_type(0) == self._dq_type(1) == self._q_type(0)

    def _pad(self) -> bool:
        if not 1 <= len(self.dq) <= 2 or not self._check_qdq_nodes(len(self.dq)):
            return False
        return len({self._dq_type(i) for i in range(len(self.dq))} | {self._q_type(0)}) == 1

    def _topk(self) -> bool:
        if len(self.dq) != 1 or not self._can_create() or len(self.q) != 1:
            return False
        return self._same_io_type() and _qdq_pair_same_params(self.graph, self.q[0], self.dq[0])


_FAMILY_CHECKS: Mapping[str, Callable[[_SelectorCheck], bool]] = {
    "drop_qdq": _SelectorCheck._drop_qdq,
    "drop_dq": _SelectorCheck._drop_dq,
    "unary": _SelectorCheck._unary,
    "clip": _SelectorCheck._clip,
    "binary": _SelectorCheck._binary,
    "variadic": _SelectorCheck._variadic,
    "split": _SelectorCheck._split,
    "conv": _SelectorCheck._conv,
    "matmul": _SelectorCheck._matmul,
    "gemm": _SelectorCheck._gemm,
    "norm": _SelectorCheck._norm,
    "batchnorm": _SelectorCheck._batchnorm,
    "logical": _SelectorCheck._logical,
    "where": _SelectorCheck._where,
    "pad": _SelectorCheck._pad,
    "topk": _SelectorCheck._topk,
}
"""Each selector family of :data:`SELECTORS` and its check (``qdq_selectors.cc``)."""


def _is_const_scalar(graph: Graph, name: str) -> bool:
    if not name or not graph.is_constant(name):
        return False
    vt = graph.value_type(name)
    return (
        vt is not None
        and vt.shape is not None
        and (len(vt.shape) == 0 or (len(vt.shape) == 1 and vt.shape[0] == 1))
    )


def _qdq_pair_same_params(graph: Graph, q: Node, dq: Node) -> bool:
    """``IsQDQPairSupported``: both have constant scalar scale and zero point, and equal ones."""
    names = (q.input(1), q.input(2), dq.input(1), dq.input(2))
    if not all(_is_const_scalar(graph, n) for n in names):
        return False
    q_scale, q_zp, dq_scale, dq_zp = (_constant_values(graph, n) for n in names)
    if q_zp.dtype != dq_zp.dtype or q_scale.dtype != dq_scale.dtype:
        return False
    same_zp = q_zp.reshape(-1)[0] == dq_zp.reshape(-1)[0]
    return bool(same_zp) and bool(q_scale.reshape(-1)[0] == dq_scale.reshape(-1)[0])


__all__ = ["SELECTORS", "elem_type", "node_units", "single_units"]
