"""XNNPACK's rule table and its verdict on one node (``xnnpack_execution_provider.cc``
GetCapability and RegisterKernels): which ops it claims from which since-version, why the others
are not claimed, and the Relu/Clip fusion rule (``detail/node_support_checker.cc``).

The fusion rule shares the module with the verdict because it needs it: a Relu or Clip is claimed
only when the Conv or pool before it is (:func:`_fusion`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache

from ortprep.core.graph import Graph, Node
from ortprep.eps.base import EpOptions, NodeContext, OpRule, rule_table
from ortprep.eps.partition import DQ_OP, Q_OP
from ortprep.eps.xnnpack.constants import FUSION_PRODUCERS, NO_KERNEL_FROM_22, ONNX
from ortprep.eps.xnnpack.op_rules import (
    check_average_pool,
    check_conv,
    check_gemm,
    check_matmul,
    check_max_pool,
    check_resize,
    check_softmax,
)

# --------------------------------------------------------------------------- Relu/Clip fusion


def _fused_activation(ctx: NodeContext) -> str | None:
    """Relu/Clip: only fused into the claimed Conv, MaxPool or AveragePool it directly follows."""
    return _fusion(ctx.graph, ctx.node, ctx.options, ctx)


def _fusion(
    graph: Graph, node: Node, options: EpOptions, ctx: NodeContext | None = None
) -> str | None:
    """:func:`_fused_activation` on the node itself: most Relu/Clip nodes follow an op that
    cannot fuse them, which is told without building a :class:`NodeContext`."""
    # onnxruntime/core/providers/xnnpack/detail/node_support_checker.cc (ClipReluChecker), #28814
    name = node.inputs[0] if node.inputs else ""
    producer = graph.producers.get(name)
    only = "XNNPACK takes Relu/Clip only fused into a Conv, MaxPool or AveragePool it claims"
    if producer is None:
        return f"input '{name}' is not produced by a node of this graph; {only}"
    if producer.domain != ONNX or producer.op_type not in FUSION_PRODUCERS:
        return f"it follows {producer.op_type} node '{producer.name}'; {only}"
    reason = verdict(graph, producer, options)
    if reason:
        return f"its producer '{producer.name}' is not claimed ({reason}); {only}"
    consumers = graph.consumers.get(name, [])
    if len(consumers) != 1:
        return (
            f"'{name}' of '{producer.name}' has {len(consumers)} consumers; XNNPACK fuses only "
            "a sole consumer (ORT #28814)"
        )
    if name in graph.output_names:
        return (
            f"'{name}' of '{producer.name}' is also a graph output; XNNPACK fuses only when "
            "it is not (ORT #28814)"
        )
    if node.op_type != "Clip":
        return None
    return _clip_bounds(ctx or NodeContext(graph, node, options))


def _clip_bounds(ctx: NodeContext) -> str | None:
    if (ctx.since_version or 13) < 11:
        return None  # Clip-1/6: min and max are attributes
    for i, role in ((1, "min"), (2, "max")):
        if i < len(ctx.node.inputs) and not ctx.is_constant(i):
            found = f"'{ctx.node.input(i)}'" if ctx.has_input(i) else "empty"
            return f"{role} input {found} is not a constant initializer; XNNPACK needs it constant"
    return None


# --------------------------------------------------------------------------- the table


RULES: Mapping[tuple[str, str], OpRule] = rule_table(
    [
        OpRule("Conv", min_opset=11, max_opset=21, check=check_conv, source="nn/conv_base.cc"),
        OpRule(
            "ConvTranspose",
            min_opset=11,
            max_opset=21,
            check=check_conv,
            source="nn/conv_base.cc, nn/conv_transpose.cc",
        ),
        OpRule("MaxPool", min_opset=8, max_opset=21, check=check_max_pool, source="nn/max_pool.cc"),
        OpRule(
            "AveragePool",
            min_opset=7,
            max_opset=21,
            check=check_average_pool,
            source="nn/average_pool.cc",
        ),
        OpRule("Softmax", check=check_softmax, source="math/softmax.cc"),
        OpRule("Resize", min_opset=10, check=check_resize, source="tensor/resize.cc"),
        OpRule("Gemm", min_opset=7, check=check_gemm, source="math/gemm.cc"),
        OpRule("MatMul", check=check_matmul, source="math/matmul.cc"),
        OpRule("Relu", check=_fused_activation, source="detail/node_support_checker.cc"),
        OpRule("Clip", check=_fused_activation, source="detail/node_support_checker.cc"),
    ]
)
"""Ops XNNPACK claims (``ai.onnx``), with the since-versions that have a kernel.

Sources are under ``onnxruntime/core/providers/xnnpack/``. Since-versions the checker accepts but
no kernel matches (22+ for the NHWC ops, Gemm 1 and 6) are refused with the failure named.
"""

_NOT_CLAIMED: Mapping[str, str] = {
    DQ_OP: "XNNPACK takes DequantizeLinear only inside a QDQ unit around an op it supports",
    Q_OP: "XNNPACK takes QuantizeLinear only inside a QDQ unit around an op it supports",
    "QLinearConv": "since-version 10 fails ConvBase's since-version >= 11 guard, so XNNPACK "
    "never claims a standalone QLinearConv (nn/conv_base.cc)",
    "GlobalAveragePool": "not claimed by XNNPACK (only a side branch of ORT has a kernel)",
}


def _opset_reason(op: str, since: int | None, rule: OpRule) -> str | None:
    # onnxruntime/core/providers/xnnpack/xnnpack_execution_provider.cc (RegisterKernels)
    if since is None:
        return None
    if op in NO_KERNEL_FROM_22 and since >= 22:
        return (
            f"ORT's XNNPACK EP claims opset-{since} {op} but has no kernel for it (session "
            "creation fails, ORT issue #23164)"
        )
    if op == "Gemm" and since < 7:
        return (
            f"ORT's XNNPACK EP claims Gemm-{since} (its checker has no opset test) but has "
            "kernels from since-version 7 only (session creation fails)"
        )
    if since < rule.min_opset:
        return f"since-version {since}; XNNPACK takes {op} from since-version {rule.min_opset}"
    if rule.max_opset is not None and since > rule.max_opset:
        return f"since-version {since}; XNNPACK takes {op} up to since-version {rule.max_opset}"
    return None


NodeCheck = Callable[[Graph, Node, EpOptions], str | None]

_NODE_CHECKS: Mapping[str, NodeCheck] = {"Relu": _fusion, "Clip": _fusion}
"""Rule checks that run on the node itself, so no :class:`NodeContext` is built for them."""

_BY_OP: Mapping[str, tuple[OpRule, frozenset[int], NodeCheck | None]] = {
    op: (
        rule,
        frozenset(v for v in range(1, 64) if _opset_reason(op, v, rule) is None),
        _NODE_CHECKS.get(op),
    )
    for (domain, op), rule in RULES.items()
    if domain == ONNX
}
"""``RULES`` by op type alone (they are all ``ai.onnx``), for one lookup per node: the rule, the
since-versions :func:`_opset_reason` lets through (worked out here, once) and the node check."""


def op_reason(ctx: NodeContext, check: Callable[[NodeContext], str | None] | None) -> str | None:
    node = ctx.node
    rule = RULES[(node.domain, node.op_type)]
    reason = _opset_reason(node.op_type, ctx.since_version, rule)
    if reason is None and check is not None:
        reason = check(ctx)
    return reason


def check_node(ctx: NodeContext) -> str | None:
    """XNNPACK's verdict on one node on its own: ``None`` when claimed, else the reason.

    Example: ``"MaxPool: ceil_mode=1; XNNPACK takes ceil_mode=0 only"``.
    """
    return verdict(ctx.graph, ctx.node, ctx.options, ctx)


@lru_cache(maxsize=1024)
def _unclaimed(domain: str, op_type: str) -> str:
    """Why a node without a rule is not claimed (one string per op, shared by its nodes)."""
    if domain != ONNX:
        return (
            f"{domain}:{op_type}: XNNPACK checks ai.onnx nodes only (its com.microsoft kernels "
            "serve QDQ fusion)"
        )
    if op_type in _NOT_CLAIMED:
        return f"{op_type}: {_NOT_CLAIMED[op_type]}"
    return f"{op_type}: not claimed by XNNPACK (no kernel in ORT's XNNPACK EP)"


def verdict(
    graph: Graph, node: Node, options: EpOptions, ctx: NodeContext | None = None
) -> str | None:
    """:func:`check_node`, building the :class:`NodeContext` only for a rule check that reads it
    (most nodes of a model have no rule, and Relu/Clip are judged on the node itself)."""
    entry = _BY_OP.get(node.op_type) if node.domain == ONNX else None
    if entry is None:
        return _unclaimed(node.domain, node.op_type)
    rule, kernel_since, on_node = entry
    since = node.since_version
    reason = None
    if since is not None and since not in kernel_since:
        reason = _opset_reason(node.op_type, since, rule)
    if reason is None and rule.check is not None:
        if on_node is not None:
            reason = on_node(graph, node, options)
        else:
            reason = rule.check(ctx or NodeContext(graph, node, options))
    return None if reason is None else f"{node.op_type}: {reason}"
