"""CoreML's rule table and its verdict on one node: every op type a builder is registered for
(``op_builder_factory.cc``) with its formats, opset range, input types, own conditions and ORT
source file; the EP-wide rules applied before them (``helper.cc`` ``IsNodeSupported`` ->
``base_op_builder.cc``; ``coreml_execution_provider.cc``); the partitions CoreML drops.

The table and the verdict share a module because one rule needs both: NeuralNetwork folds a Cast
into the ArgMax before it, so the Cast is taken only when that ArgMax is (:func:`_cast`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ortprep.core.graph import Graph, Node, ValueType
from ortprep.eps.base import NodeContext, OpRule, all_static, rule_table
from ortprep.eps.coreml.constants import (
    BOTH,
    INT32,
    MAX_RANK,
    MIN_COREML_VERSION,
    MIN_MLPROGRAM_VERSION,
    ML,
    ML_ONLY,
    NN,
    NN_ONLY,
    ONNX_TYPES,
    TRIVIAL_OPS,
    Predicate,
)
from ortprep.eps.coreml.conv_pool_norm import (
    check_batch_norm,
    check_conv,
    check_conv_transpose,
    check_fused_conv,
    check_lrn,
    check_normalization,
    check_pool,
    check_prelu,
    check_reduce,
)
from ortprep.eps.coreml.facts import GraphFacts, facts_of, format_name, init_type, shape_str
from ortprep.eps.coreml.input_types import (
    and_types,
    cast_types,
    float_type,
    gather_nd_types,
    gather_types,
    input0_float,
    norm_types,
    pow_types,
    shape_types,
    typed_inputs,
    where_types,
)
from ortprep.eps.coreml.resize import check_resize
from ortprep.eps.coreml.tensor_ops import (
    check_argmax,
    check_clip,
    check_concat,
    check_depth_to_space,
    check_flatten,
    check_gather,
    check_gather_nd,
    check_gemm,
    check_grid_sample,
    check_pad,
    check_reshape,
    check_shape,
    check_slice,
    check_softmax,
    check_split,
    check_squeeze,
    check_tile,
)

# --------------------------------------------------------------------------- the table


def _cast(ctx: NodeContext, ml: bool) -> str | None:
    # impl/cast: MLProgram emits a MIL cast and looks at no neighbour (ORT's test
    # CastBoolMLProgramPartition in test/providers/coreml/coreml_basic_test.cc takes a Cast fed
    # by a graph input). NeuralNetwork has no cast layer: the Cast is folded into the ArgMax that
    # produces it, so that producer must be an ArgMax it takes and the Cast must be to int32
    # (same file: ArgMaxUnsupportedCastTest, CastNonArgMaxNeuralNetworkNotSupported).
    if ml:
        return None
    producer = ctx.graph.producers.get(ctx.node.input(0))
    if producer is None:
        return (
            "its input is a graph input or initializer; CoreML (NeuralNetwork) takes a Cast "
            "only after an ArgMax"
        )
    if producer.op_type != "ArgMax":
        return (
            f"its producer '{producer.name}' is {producer.op_type}; CoreML (NeuralNetwork) takes "
            "a Cast only folded into the ArgMax before it"
        )
    reason = FORMATS[NN].check(NodeContext(ctx.graph, producer, ctx.options))
    if reason:
        return f"its producer '{producer.name}' is not taken by CoreML (NeuralNetwork): {reason}"
    if ctx.attr("to", 0) != INT32:
        dst = ONNX_TYPES.get(int(ctx.attr("to", 0)), f"type {ctx.attr('to', 0)}")
        return f"casts to {dst}; CoreML (NeuralNetwork) folds only a Cast to int32 into its ArgMax"
    return None


@dataclass(frozen=True)
class CoreMLOp:
    """One registered CoreML op builder: formats, opset range, input types, conditions."""

    op_type: str
    formats: frozenset[str]
    source: str  # builders/impl/<source>_op_builder.cc
    check: Predicate | None = None
    types: Predicate = input0_float
    min_opset: int = 1
    max_opset: int = 20  # base_op_builder.h default
    domain: str = "ai.onnx"  # for display only: ORT matches the op type in any domain
    allow_empty_inputs: bool = False

    def rule(self, ml: bool) -> OpRule:
        def check(ctx: NodeContext) -> str | None:
            return self.types(ctx, ml) or (self.check(ctx, ml) if self.check else None)

        src = f"onnxruntime/core/providers/coreml/builders/impl/{self.source}_op_builder.cc"
        return OpRule(self.op_type, self.domain, self.min_opset, self.max_opset, check, src)


def _ops(names: str, formats: frozenset[str], source: str, **kw: Any) -> list[CoreMLOp]:
    return [CoreMLOp(n, formats, source, **kw) for n in names.split()]


_F32_I64 = frozenset({"float32", "int64"})

OPS: tuple[CoreMLOp, ...] = (
    # impl/activation: opset 5- used consumed_inputs, hence min 6
    *_ops("Sigmoid Tanh Relu LeakyRelu HardSigmoid", BOTH, "activation", min_opset=6),
    CoreMLOp("PRelu", BOTH, "activation", check_prelu, min_opset=6),
    CoreMLOp("Gelu", ML_ONLY, "activation", min_opset=6),
    # Elu/Softplus (PR #26462): NeuralNetwork path and Softplus-1 opset not re-read (unclear)
    CoreMLOp("Elu", ML_ONLY, "activation", min_opset=6),
    CoreMLOp("Softplus", ML_ONLY, "activation"),
    CoreMLOp("QuickGelu", ML_ONLY, "quick_gelu", domain="com.microsoft"),
    # FusedConv: MLProgram only (ORT test FusedConvNeuralNetworkNotSupported, coreml_basic_test.cc)
    CoreMLOp("FusedConv", ML_ONLY, "conv", check_fused_conv, domain="com.microsoft"),
    # impl/unary
    *_ops("Sqrt Reciprocal", BOTH, "unary"),
    *_ops("Erf Round Exp Ceil Sin Cos", ML_ONLY, "unary"),
    # impl/binary: opset 6- had broadcast attributes, hence min 7
    *_ops("Add Sub Mul Div", BOTH, "binary", min_opset=7),
    CoreMLOp("Pow", BOTH, "binary", types=pow_types, min_opset=7),
    CoreMLOp("Max", ML_ONLY, "binary", min_opset=7),
    *_ops("AveragePool MaxPool GlobalAveragePool GlobalMaxPool", BOTH, "pool", check=check_pool),
    *_ops("ReduceSum ReduceMean", BOTH, "reduction", check=check_reduce),
    *_ops("ReduceMax ReduceMin ReduceProd", ML_ONLY, "reduction", check=check_reduce),
    CoreMLOp("BatchNormalization", BOTH, "batch_norm", check_batch_norm, min_opset=7),
    *_ops(
        "InstanceNormalization LayerNormalization GroupNormalization",
        ML_ONLY,
        "normalization",
        check=check_normalization,
        types=norm_types,
    ),
    CoreMLOp("And", ML_ONLY, "logical", types=and_types),
    CoreMLOp("ArgMax", BOTH, "argmax", check_argmax),
    CoreMLOp("Cast", BOTH, "cast", _cast, types=cast_types),
    CoreMLOp("Clip", BOTH, "clip", check_clip),
    CoreMLOp("Concat", BOTH, "concat", check_concat),
    CoreMLOp("Conv", BOTH, "conv", check_conv),
    CoreMLOp("ConvTranspose", ML_ONLY, "convtranspose", check_conv_transpose),
    CoreMLOp("DepthToSpace", BOTH, "depthtospace", check_depth_to_space),
    CoreMLOp("Flatten", NN_ONLY, "flatten", check_flatten),
    CoreMLOp("Gather", BOTH, "gather", check_gather, types=gather_types),
    CoreMLOp("GatherND", ML_ONLY, "gather_nd", check_gather_nd, types=gather_nd_types),
    *_ops("Gemm MatMul", BOTH, "gemm", check=check_gemm),
    CoreMLOp("GridSample", ML_ONLY, "gridsample", check_grid_sample),
    CoreMLOp("Identity", BOTH, "identity"),
    CoreMLOp("LRN", NN_ONLY, "LRN", check_lrn),
    CoreMLOp("Pad", BOTH, "pad", check_pad, min_opset=11),
    CoreMLOp("Reshape", BOTH, "reshape", check_reshape, min_opset=5),
    CoreMLOp("Resize", BOTH, "resize", check_resize, min_opset=11, allow_empty_inputs=True),
    CoreMLOp("Shape", BOTH, "shape", check_shape, types=shape_types),
    CoreMLOp(
        "Slice",
        BOTH,
        "slice",
        check_slice,
        types=typed_inputs(_F32_I64, f16_ml_from=6),
        min_opset=10,
    ),
    CoreMLOp("Softmax", BOTH, "softmax", check_softmax),
    CoreMLOp("Split", BOTH, "split", check_split),
    CoreMLOp("Squeeze", BOTH, "squeeze", check_squeeze),
    CoreMLOp("Unsqueeze", ML_ONLY, "squeeze", check_squeeze),
    CoreMLOp(
        "Tile",
        BOTH,
        "tile",
        check_tile,
        types=typed_inputs(frozenset({"float32", "int32", "int64", "bool"}), f16_ml_from=6),
    ),
    CoreMLOp("Transpose", BOTH, "transpose"),
    CoreMLOp("Where", ML_ONLY, "where", types=where_types),
)
"""Every op builder registered on ORT main (``op_builder_factory.cc``)."""

OPS_BY_TYPE: Mapping[str, CoreMLOp] = {op.op_type: op for op in OPS}
# Per format, the builders it has: one dict lookup finds a node's builder, and a miss is the
# "no builder" / "other format only" refusal, returned before any input of the node is read.
BUILDERS: Mapping[bool, Mapping[str, CoreMLOp]] = {
    True: {op.op_type: op for op in OPS if ML in op.formats},
    False: {op.op_type: op for op in OPS if NN in op.formats},
}

MLPROGRAM_RULES: Mapping[tuple[str, str], OpRule] = rule_table(
    [op.rule(True) for op in OPS if ML in op.formats]
)
NEURALNETWORK_RULES: Mapping[tuple[str, str], OpRule] = rule_table(
    [op.rule(False) for op in OPS if NN in op.formats]
)
"""Per-format rule tables (op-specific types and conditions; EP-wide rules are in check_node)."""


# --------------------------------------------------------------------------- EP-wide rules


@dataclass(frozen=True)
class Format:
    model_format: str
    require_static_input_shapes: bool = False
    enable_on_subgraphs: bool = False
    ml: bool = field(init=False)  # stored, not a property: read for every node

    def __post_init__(self) -> None:
        object.__setattr__(self, "ml", self.model_format == ML)

    def check(self, ctx: NodeContext) -> str | None:
        """The EP's verdict on one node in this format (an :class:`EpSpec` ``check_node``)."""
        version = ctx.options.coreml_version
        if version < MIN_COREML_VERSION:
            return f"CoreML {version} is below the EP's minimum {MIN_COREML_VERSION} (iOS 13)"
        if not self.enable_on_subgraphs and ctx.graph.path != "main":
            return (
                "inside a control-flow subgraph; the CoreML EP skips subgraphs "
                "(EnableOnSubgraphs=0)"
            )
        if self.ml and version < MIN_MLPROGRAM_VERSION:
            reason = _check_op(ctx, self, False)
            if reason:
                reason += (
                    f" (MLProgram needs CoreML 5+; on CoreML {version} ORT uses NeuralNetwork)"
                )
            return reason
        return _check_op(ctx, self, self.ml)


FORMATS = {ML: Format(ML), NN: Format(NN)}


def _no_builder(op_type: str) -> str:
    if op_type in ("QuantizeLinear", "DequantizeLinear"):
        return "CoreML has no quantize/dequantize builder; QDQ nodes stay on CPU"
    if op_type in ("If", "Loop", "Scan"):
        return "control-flow ops have no CoreML builder"
    return f"CoreML has no builder for {op_type}"


@lru_cache(maxsize=1024)
def _not_built(op_type: str, ml: bool) -> str:
    """Why an op has no builder in the format in effect (none at all, or the other format's);
    one string per op, shared by its nodes."""
    if op_type not in OPS_BY_TYPE:
        return f"{op_type}: {_no_builder(op_type)}"
    other = "NeuralNetwork" if ml else "MLProgram"
    return f"{op_type}: not supported by CoreML {format_name(ml)} ({other} only)"


def _opset(ctx: NodeContext, op: CoreMLOp) -> str | None:
    version = ctx.since_version
    if version is None and ctx.node.domain != "ai.onnx":
        version = 1  # contrib ops (com.microsoft) are all version 1 in ORT's registry
    if version is None or op.min_opset <= version <= op.max_opset:
        return None
    return (
        f"since_version {version} is outside the CoreML builder's range "
        f"{op.min_opset}-{op.max_opset}"
    )


def _input_shape(name: str, vt: ValueType | None, fmt: Format, allow_empty: bool) -> str | None:
    # helper.cc IsInputSupported, for one present input (outputs are not checked).
    if vt is None or vt.shape is None:
        return f"input '{name}' has no shape information; CoreML needs at least its rank"
    shape = vt.shape
    if fmt.require_static_input_shapes and not all_static(shape):
        return (
            f"input '{name}' has dynamic shape {shape_str(shape)}; the EP option "
            "RequireStaticInputShapes=1 refuses it"
        )
    if not allow_empty and 0 in shape:
        return f"input '{name}' has a 0 dim ({shape_str(shape)}); CoreML refuses empty tensors"
    if len(shape) > MAX_RANK:
        return (
            f"input '{name}' has rank {len(shape)} ({shape_str(shape)}); "
            f"CoreML takes rank {MAX_RANK} at most"
        )
    return None


def _external(graph: Graph, facts: GraphFacts, node: Node) -> str | None:
    # impl/base HasExternalInitializer
    for name in node.inputs:
        if name and name in facts.external:
            init = graph.initializers[name]
            return (
                f"input '{name}' is an initializer stored as external data ({init.external_file}); "
                "the CoreML builders refuse external-data initializers"
            )
    return None


def _check_op(ctx: NodeContext, fmt: Format, ml: bool) -> str | None:
    # The rules in the order ORT applies them (module docstring); the first refusal is reported.
    # Each rule is first tested with a cheap condition that every refusal meets; only then is
    # the exact rule (and its message) worked out, so a taken node costs a few lookups.
    node = ctx.node
    op = BUILDERS[ml].get(node.op_type)
    if op is None:
        return _not_built(node.op_type, ml)
    version = node.since_version
    if version is None or not op.min_opset <= version <= op.max_opset:
        reason = _opset(ctx, op)  # also decides a missing version (contrib ops count as 1)
        if reason:
            return f"{node.op_type}: {reason}"
    graph = ctx.graph
    facts = facts_of(graph)
    values, init_types = graph.values, facts.init_types
    check_all = fmt.require_static_input_shapes
    inputs = node.inputs
    vt0 = None
    for name in inputs:
        if name:
            # _in_type inlined: value info first, then the initializer types seen so far
            vt = values.get(name) or init_types.get(name) or init_type(graph, facts, name)
            shape = vt.shape if vt is not None else None
            if check_all or shape is None or 0 in shape or len(shape) > MAX_RANK:
                reason = _input_shape(name, vt, fmt, op.allow_empty_inputs)
                if reason:
                    return f"{node.op_type}: {reason}"
            if vt0 is None:
                vt0 = vt  # the first present input: input 0 when present (only then read)
    if op.types is input0_float:  # most builders: the default rule on input 0, inlined
        dt = vt0.dtype if vt0 is not None and inputs[0] else None
        reason = None if dt == "float32" else float_type(0, dt, ml)
    else:
        reason = op.types(ctx, ml)
    if not reason and facts.external:
        reason = _external(graph, facts, node)
    if not reason and op.check is not None:
        reason = op.check(ctx, ml)
    return f"{node.op_type}: {reason}" if reason else None


def check_node(ctx: NodeContext, model_format: str = ML) -> str | None:
    """CoreML's verdict on one node on its own: None when taken, else the reason.

    >>> check_node(ctx, NN)  # doctest: +SKIP
    "Gemm: input B ('w') is not a constant initializer; CoreML (NeuralNetwork) needs ..."
    """
    return FORMATS[model_format].check(ctx)


def discard(partition_nodes: list[Node], graph: Graph) -> str | None:
    """Reason CoreML drops a formed partition: one made only of trivial ops (PR #28293)."""
    if partition_nodes and all(n.op_type in TRIVIAL_OPS for n in partition_nodes):
        ops = ", ".join(sorted({n.op_type for n in partition_nodes}))
        return (
            f"the partition holds only trivial ops ({ops}); CoreML drops partitions without a "
            "compute op, as the CPU round trip costs more than it saves"
        )
    return None
