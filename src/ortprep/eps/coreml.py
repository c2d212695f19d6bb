"""CoreML EP rules for both model formats: which nodes ORT's CoreML EP takes, and why not.

Restates ``onnxruntime/core/providers/coreml/`` (see :data:`ORT_SOURCE_VERSION`); every rule names
the ORT file it comes from (``builders/impl/<x>_op_builder.cc`` written ``impl/<x>``).

How ORT decides, per node (``helper.cc`` ``IsNodeSupported`` -> ``base_op_builder.cc``), in order:

1. a builder is registered for the node's *op type* (the domain is not looked at, which is how
   ``com.microsoft`` QuickGelu and FusedConv are found);
2. with MLProgram, the builder must have an MLProgram path (LRN and Flatten do not);
3. the node's ``since_version`` lies in the builder's range (default 1-20, so ops re-versioned at
   opset 21/22 are refused);
4. every input has shape information (rank known), no 0 dimension, rank <= 5, and, only with
   ``RequireStaticInputShapes=1``, no dynamic dimension; then the builder's input types (default:
   input 0 float32, or float16 with MLProgram);
5. no input is an initializer stored as external data;
6. the builder's own conditions.

EP-wide (``coreml_execution_provider.cc``): nothing inside If/Loop/Scan bodies unless
``EnableOnSubgraphs=1`` (off by default); MLProgram asked for on CoreML < 5 silently falls back to
NeuralNetwork; partitions are formed by ``partitioning_utils.cc`` *without* QDQ node units and a
partition made only of trivial ops (Identity, Cast, Reshape, Squeeze, Unsqueeze, Flatten, Transpose,
Tile, Ceil) is dropped (:func:`discard`).

Types and shapes at run time (not predictable per node, so not refusals here): int64 tensors
cross the CoreML boundary as int32, scalars as shape [1]; a dynamic input that turns out to have
zero elements fails at execution; bool partition inputs/outputs are not filtered on ORT main.

QDQ: ``groups_qdq_units`` is False for both specs. CoreML passes no node-unit map to the
partitioner, so every node is judged on its own; QuantizeLinear/DequantizeLinear have no builder
and stay on CPU, and the float op between them is judged on its own float inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ortprep.core.graph import Dim, Graph, Node, ValueType
from ortprep.eps.base import EpSpec, NodeContext, OpRule, all_static, rule_table

ORT_SOURCE_VERSION = "onnxruntime main ~2026-06 (CoreML EP @ ddb6346e, builders through PR #28598)"
"""The ORT source state these rules restate (``check`` prints it)."""

ML = "mlprogram"
NN = "neuralnetwork"
BOTH = frozenset({ML, NN})
ML_ONLY = frozenset({ML})
NN_ONLY = frozenset({NN})

MIN_COREML_VERSION = 3  # EP constructor throws below this (iOS 13 / macOS 10.15)
MIN_MLPROGRAM_VERSION = 5  # iOS 15 / macOS 12; below it ORT falls back to NeuralNetwork
MAX_RANK = 5
CONV_DIM_LIMIT = 16384  # GPU texture width; conv only since PR #24594

TRIVIAL_OPS = frozenset(
    {"Identity", "Cast", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Transpose", "Tile", "Ceil"}
)
"""Op types that cannot keep a CoreML partition alive on their own (PR #28293)."""

_INT32, _INT64 = 6, 7
_ONNX_TYPES = {1: "float32", 6: "int32", 7: "int64", 9: "bool", 10: "float16"}

Predicate = Callable[[NodeContext, bool], str | None]
"""``(ctx, ml) -> reason``: ``ml`` is True when the MLProgram format is in effect."""


# --------------------------------------------------------------------------- per-graph facts


@dataclass
class _GraphFacts:
    """What the rules read again and again in one graph, worked out once per graph."""

    constant: frozenset[str]
    """Constant initializers (``Graph.is_constant``: not overridable as a graph input)."""
    external: frozenset[str]
    """Initializers stored as external data (usually none, and then no input is looked up)."""
    init_types: dict[str, ValueType] = field(default_factory=dict)
    """Value types of initializers without value info, built on first use: ``Graph.value_type``
    builds a new one on every call, and a shared weight is read by many nodes."""
    values: dict[tuple[str, type], tuple[Any, ...]] = field(default_factory=dict)
    """Constant values by (name, int or float), decoded once: reading decodes the tensor."""


COREML_FACTS_KEY = "coreml.facts"
"""The ``Graph.memo`` key of CoreML's :class:`_GraphFacts`."""


def _facts(graph: Graph) -> _GraphFacts:
    """The facts of ``graph``, worked out once and kept on the graph (``Graph.memo``)."""
    return graph.derived(COREML_FACTS_KEY, _graph_facts)


def _graph_facts(graph: Graph) -> _GraphFacts:
    inits = graph.initializers
    return _GraphFacts(
        constant=frozenset(inits).difference(v.name for v in graph.inputs),
        external=frozenset(n for n, init in inits.items() if init.external_file),
    )


def _init_type(graph: Graph, facts: _GraphFacts, name: str) -> ValueType | None:
    """``graph.value_type(name)`` for a name without value info, reused across nodes."""
    vt = facts.init_types.get(name)
    if vt is None:
        vt = graph.value_type(name)
        if vt is not None:
            facts.init_types[name] = vt
    return vt


def _in_type(ctx: NodeContext, i: int) -> ValueType | None:
    """``ctx.input_type(i)``, with initializer types reused: the rules read inputs this way."""
    inputs = ctx.node.inputs
    name = inputs[i] if i < len(inputs) else ""
    if not name:
        return None
    graph = ctx.graph
    vt = graph.values.get(name)
    return vt if vt is not None else _init_type(graph, _facts(graph), name)


def _in_shape(ctx: NodeContext, i: int) -> tuple[Dim, ...] | None:
    vt = _in_type(ctx, i)
    return vt.shape if vt is not None else None


def _in_dtype(ctx: NodeContext, i: int) -> str | None:
    vt = _in_type(ctx, i)
    return vt.dtype if vt is not None else None


def _in_rank(ctx: NodeContext, i: int) -> int | None:
    vt = _in_type(ctx, i)
    return None if vt is None or vt.shape is None else len(vt.shape)


def _is_const(ctx: NodeContext, i: int) -> bool:
    """``ctx.is_constant(i)``: input ``i`` is a constant initializer."""
    inputs = ctx.node.inputs
    return i < len(inputs) and bool(inputs[i]) and inputs[i] in _facts(ctx.graph).constant


def _constant(ctx: NodeContext, i: int, kind: type) -> list[Any] | None:
    """Values of constant input ``i`` as ``kind`` (int or float); None when not constant or not
    readable. Decoded once per graph: Slice, Pad, Reshape... often share their constants."""
    if not _is_const(ctx, i):
        return None
    name = ctx.node.inputs[i]
    facts = _facts(ctx.graph)
    found = facts.values.get((name, kind))
    if found is None:
        try:
            array = ctx.graph.initializers[name].numpy()
        except ValueError:
            return None  # no loader: not readable (not cached, as before)
        found = facts.values[(name, kind)] = tuple(kind(v) for v in array.reshape(-1))
    return list(found)


# --------------------------------------------------------------------------- small helpers


def _fmt(ml: bool) -> str:
    return "MLProgram" if ml else "NeuralNetwork"


def _shape_str(shape: Iterable[Dim] | None) -> str:
    if shape is None:
        return "unknown"
    return "[" + ",".join(["?" if d is None else str(d) for d in shape]) + "]"


def _known(d: Dim) -> bool:
    return isinstance(d, int) and d >= 0


def _size(d: Dim) -> int | None:
    """A fixed dimension as an int, None when symbolic or unknown."""
    return d if isinstance(d, int) and d >= 0 else None


def _ints(ctx: NodeContext, i: int) -> list[int] | None:
    """Values of constant input ``i`` as ints; None when not constant or not readable."""
    return _constant(ctx, i, int)


def _floats(ctx: NodeContext, i: int) -> list[float] | None:
    return _constant(ctx, i, float)


def _outputs(node: Node) -> int:
    return sum(1 for o in node.outputs if o)


def _need_constant(ctx: NodeContext, i: int, role: str, ml: bool) -> str | None:
    if ctx.has_input(i) and not _is_const(ctx, i):
        return (
            f"input {role} ('{ctx.node.input(i)}') is not a constant initializer; "
            f"CoreML ({_fmt(ml)}) needs it constant"
        )
    return None


# --------------------------------------------------------------------------- input types


def _float_input(ctx: NodeContext, i: int, ml: bool) -> str | None:
    """Default ``HasSupportedInputsImpl`` (``impl/base``): float32, or float16 with MLProgram."""
    return _float_type(i, _in_dtype(ctx, i), ml)


def _float_type(i: int, dt: str | None, ml: bool) -> str | None:
    if dt == "float32" or (ml and dt == "float16"):
        return None
    allowed = "float32 or float16" if ml else "float32 (float16 needs MLProgram)"
    return f"input {i} is {dt or 'of unknown type'}; CoreML ({_fmt(ml)}) takes {allowed}"


def _input0_float(ctx: NodeContext, ml: bool) -> str | None:
    return _float_input(ctx, 0, ml)


def _typed(allowed: frozenset[str], *, f16_ml_from: int | None = None, index: int = 0) -> Predicate:
    """Input ``index`` in ``allowed``; float16 too with MLProgram from CoreML ``f16_ml_from``."""

    def check(ctx: NodeContext, ml: bool) -> str | None:
        dt = _in_dtype(ctx, index)
        if dt in allowed:
            return None
        if f16_ml_from is not None and dt == "float16":
            if ml and ctx.options.coreml_version >= f16_ml_from:
                return None
            return (
                f"input {index} is float16; CoreML takes float16 here only with MLProgram on "
                f"CoreML {f16_ml_from}+ (format {_fmt(ml)}, CoreML {ctx.options.coreml_version})"
            )
        extra = ", float16 (MLProgram)" if f16_ml_from is not None else ""
        return f"input {index} is {dt}; CoreML takes {', '.join(sorted(allowed))}{extra}"

    return check


def _pow_types(ctx: NodeContext, ml: bool) -> str | None:
    # impl/binary: Pow checks both inputs and wants them of one type.
    reason = _float_input(ctx, 0, ml) or _float_input(ctx, 1, ml)
    if reason:
        return reason
    a, b = _in_dtype(ctx, 0), _in_dtype(ctx, 1)
    return None if a == b else f"base is {a} and exponent {b}; CoreML Pow needs one type"


def _and_types(ctx: NodeContext, ml: bool) -> str | None:
    # impl/logical
    found = [_in_dtype(ctx, i) for i in (0, 1)]
    return None if found == ["bool", "bool"] else f"inputs are {found}; CoreML And takes bool only"


def _where_types(ctx: NodeContext, ml: bool) -> str | None:
    # impl/where
    cond, x, y = (_in_dtype(ctx, i) for i in (0, 1, 2))
    if cond != "bool":
        return f"condition is {cond}; CoreML Where needs bool"
    if x != y or x not in ("float32", "float16"):
        return f"X is {x} and Y is {y}; CoreML Where needs both float32 or both float16"
    return None


def _norm_types(ctx: NodeContext, ml: bool) -> str | None:
    # impl/normalization: X, scale and B of one type, float32 or float16.
    found = [_in_dtype(ctx, i) for i, name in enumerate(ctx.node.inputs) if name]
    if found[0] not in ("float32", "float16") or any(d != found[0] for d in found):
        return f"input types are {found}; CoreML needs X, scale and B all float32 or all float16"
    return None


def _cast_types(ctx: NodeContext, ml: bool) -> str | None:
    # impl/cast (HasSupportedInputsImpl): NeuralNetwork takes only the int64 an ArgMax produces.
    if not ml:
        src = _in_dtype(ctx, 0)
        if src == "int64":
            return None
        return f"input is {src}; CoreML (NeuralNetwork) casts only the int64 output of an ArgMax"
    allowed = ("int32", "int64", "float32", "float16", "bool")
    src = _in_dtype(ctx, 0)
    out_vt = ctx.output_type(0)
    dst = (out_vt.dtype if out_vt else None) or _ONNX_TYPES.get(int(ctx.attr("to", 0)))
    if src in allowed and dst in allowed:
        return None
    return f"casts {src} to {dst}; CoreML (MLProgram) casts between {', '.join(allowed)} only"


def _gather_nd_types(ctx: NodeContext, ml: bool) -> str | None:
    # impl/gather_nd
    data, indices = _in_dtype(ctx, 0), _in_dtype(ctx, 1)
    if data not in ("float32", "float16", "int32", "int64", "bool"):
        return f"data is {data}; CoreML GatherND takes float32, float16, int32, int64, bool"
    if indices not in ("int32", "int64"):
        return f"indices are {indices}; CoreML GatherND takes int32 or int64"
    return None


def _shape_types(ctx: NodeContext, ml: bool) -> str | None:
    # impl/shape: NeuralNetwork keeps the default (float32); MLProgram adds int32 and float16.
    dt = _in_dtype(ctx, 0)
    if ml:
        ok = dt in ("int32", "float32", "float16")
        return (
            None if ok else f"input is {dt}; CoreML (MLProgram) Shape takes int32, float32, float16"
        )
    return None if dt == "float32" else f"input is {dt}; CoreML (NeuralNetwork) Shape takes float32"


_gather_data = _typed(frozenset({"float32", "int64"}), f16_ml_from=6)
_gather_indices = _typed(frozenset({"int32", "int64"}), index=1)


def _gather_types(ctx: NodeContext, ml: bool) -> str | None:
    # impl/gather: data float32 or int64 (float16 with MLProgram on CoreML 6+); indices int32/int64.
    return _gather_data(ctx, ml) or _gather_indices(ctx, ml)


# --------------------------------------------------------------------------- activations, unary


def _prelu(ctx: NodeContext, ml: bool) -> str | None:
    # impl/activation (IsPReluOpSupported)
    x = _in_shape(ctx, 0) or ()
    if len(x) not in (3, 4):
        return f"input X has rank {len(x)}; CoreML PRelu takes rank 3 or 4"
    channels = x[-3]
    if not _known(channels):
        return f"channel dim (-3) of X {_shape_str(x)} is not fixed; CoreML PRelu needs it"
    if not _is_const(ctx, 1):
        return f"input slope ('{ctx.node.input(1)}') is not a constant initializer"
    slope = _in_shape(ctx, 1) or ()
    per_channel = len(slope) == 3 and slope[1] == 1 and slope[2] == 1
    single = math.prod(int(d or 0) for d in slope) == 1
    if not (per_channel or single):
        return f"slope shape {_shape_str(slope)} is neither [C,1,1] nor one element"
    if single and channels == 1:
        return "one-element slope with 1 channel crashes CoreML (coremltools#1488); ORT refuses it"
    return None


_FUSED_ACTIVATIONS = frozenset({"Relu", "Sigmoid", "Tanh", "LeakyRelu", "Clip", "HardSigmoid"})


def _fused_conv(ctx: NodeContext, ml: bool) -> str | None:
    # impl/conv, FusedConv branch (PR #28289): Conv rules plus a known activation.
    act = ctx.attr("activation", "")
    if act not in _FUSED_ACTIVATIONS:
        return f"activation {act!r} not supported ({', '.join(sorted(_FUSED_ACTIVATIONS))})"
    if ctx.has_input(3):
        # Unclear in the source read: the decomposition is conv + activation, no sum input.
        return (
            "the fused sum input Z is not handled by the CoreML decomposition (conv + activation)"
        )
    return _conv(ctx, ml)


# --------------------------------------------------------------------------- convolution, pooling


def _conv_memory(shape: tuple[Dim, ...] | None, role: str) -> str | None:
    shape = shape or ()
    for d in shape:
        if isinstance(d, int) and d > CONV_DIM_LIMIT:
            return (
                f"{role} shape {_shape_str(shape)} has a dim over {CONV_DIM_LIMIT} "
                "(CoreML conv limit)"
            )
    return None


def _kernel_matches(ctx: NodeContext, weight: tuple[Dim, ...]) -> str | None:
    kernel = ctx.attr("kernel_shape")
    if kernel is not None and tuple(kernel) != tuple(weight[2:]):
        return f"kernel_shape {list(kernel)} differs from the weight's {_shape_str(weight[2:])}"
    return None


def _conv(ctx: NodeContext, ml: bool) -> str | None:
    # impl/conv: MLProgram takes a runtime weight; 3D conv refused in both formats.
    if not ml and not _is_const(ctx, 1):
        return (
            f"input W ('{ctx.node.input(1)}') is not a constant initializer; "
            "CoreML (NeuralNetwork) needs constant weights"
        )
    weight = _in_shape(ctx, 1) or ()
    if len(weight) not in (3, 4):
        return f"{len(weight) - 2}D convolution (weight rank {len(weight)}); CoreML takes 1D and 2D"
    if ctx.has_input(2) and not _is_const(ctx, 2):
        return f"input B ('{ctx.node.input(2)}') is not a constant initializer"
    reason = _conv_memory(_in_shape(ctx, 0), "input") or _conv_memory(weight, "weight")
    if reason:
        return reason
    version = ctx.options.coreml_version
    if ml and version < 6 and ctx.attr("auto_pad", "NOTSET") == "SAME_LOWER":
        return f"auto_pad SAME_LOWER needs CoreML 6+ with MLProgram (target is CoreML {version})"
    return _kernel_matches(ctx, weight)


def _conv_transpose(ctx: NodeContext, ml: bool) -> str | None:
    # impl/convtranspose (read at 2025 state, after PR #24594)
    reason = _need_constant(ctx, 1, "W", ml) or _need_constant(ctx, 2, "B", ml)
    if reason:
        return reason
    reason = _conv_memory(_in_shape(ctx, 1), "weight") or _conv_memory(_in_shape(ctx, 0), "input")
    if reason:
        return reason
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return f"auto_pad {auto_pad} not supported (NOTSET or VALID only)"
    pads = list(ctx.attr("pads", ()) or ())
    if auto_pad == "NOTSET" and len(set(pads)) > 1:
        return f"pads {pads} are not all equal; CoreML gives inconsistent results otherwise"
    reason = _kernel_matches(ctx, _in_shape(ctx, 1) or ())
    if reason:
        return reason
    if ctx.attr("output_shape") is not None:
        return "output_shape attribute not supported"
    output_padding = list(ctx.attr("output_padding", ()) or ())
    if any(output_padding):
        return f"output_padding {output_padding} not supported (all zeros only)"
    return None


def _pool(ctx: NodeContext, ml: bool) -> str | None:
    # impl/pool
    rank = _in_rank(ctx, 0)
    if rank != 4:
        return f"input rank {rank}; CoreML pools take 4D input (2D pooling) only"
    op = ctx.node.op_type
    if op.startswith("Global"):
        return None
    kernel = list(ctx.attr("kernel_shape", ()) or ())
    if len(kernel) != 2:
        return f"kernel_shape {kernel} is not 2D"
    dilations = list(ctx.attr("dilations", ()) or ())
    if any(d != 1 for d in dilations):
        return f"dilations {dilations} not supported (all 1 only)"
    if op == "MaxPool":
        if ctx.attr("storage_order", 0) != 0:
            return f"storage_order {ctx.attr('storage_order')} not supported (0 only)"
        if _outputs(ctx.node) != 1:
            return "the Indices output is not supported"
    if not ml and ctx.attr("ceil_mode", 0) == 1:
        return "ceil_mode=1 not supported by CoreML NeuralNetwork (MLProgram takes it)"
    return None


# --------------------------------------------------------------------------- reductions, norms


def _axes(ctx: NodeContext) -> list[int] | str:
    """Axes from the constant input 1 (newer opsets) or the attribute; a reason if not constant."""
    if ctx.has_input(1):
        axes = _ints(ctx, 1)
        if axes is None:
            return f"input axes ('{ctx.node.input(1)}') is not a constant initializer"
        return list(axes)
    return list(ctx.attr("axes", ()) or ())


def _reduce(ctx: NodeContext, ml: bool) -> str | None:
    # impl/reduction: axes as a constant input (opset 13/18+) or the attribute.
    axes = _axes(ctx)
    if isinstance(axes, str):
        return axes
    if not ml and ctx.attr("noop_with_empty_axes", 0) == 1 and not axes:
        # ORT reads axes from the tensor's int64 field only: raw-data axes count as empty too.
        return "noop_with_empty_axes=1 with empty axes not supported by CoreML NeuralNetwork"
    return None


def _batch_norm(ctx: NodeContext, ml: bool) -> str | None:
    # impl/batch_norm (has an MLProgram path since PR #22480; see report).
    if _outputs(ctx.node) != 1:
        return "training-mode outputs present; CoreML takes the one-output inference form"
    rank = _in_rank(ctx, 0)
    if rank != 4:
        return f"input rank {rank}; CoreML BatchNormalization takes 4D only"
    if ctx.attr("spatial", 1) != 1:
        return "spatial=0 not supported"
    for i, role in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var")):
        if ctx.node.input(i) not in ctx.graph.initializers:
            return f"input {role} ('{ctx.node.input(i)}') is not an initializer"
    return None


def _normalization(ctx: NodeContext, ml: bool) -> str | None:
    # impl/normalization (Layer/Instance/GroupNormalization, MLProgram only)
    if _outputs(ctx.node) != 1:
        return f"{_outputs(ctx.node)} outputs; CoreML takes the one-output form"
    op = ctx.node.op_type
    if op != "InstanceNormalization" and ctx.attr("stash_type", 1) != 1:
        return f"stash_type {ctx.attr('stash_type')} not supported (1 only)"
    return _need_constant(ctx, 1, "scale", ml) or _need_constant(ctx, 2, "B", ml)


def _lrn(ctx: NodeContext, ml: bool) -> str | None:
    # impl/LRN
    rank = _in_rank(ctx, 0)
    return None if rank in (3, 4) else f"input rank {rank}; CoreML LRN takes rank 3 or 4"


# --------------------------------------------------------------------------- shape-like ops


def _argmax(ctx: NodeContext, ml: bool) -> str | None:
    # impl/argmax: CoreML fuses ArgMax with a following Cast-to-int32.
    if ctx.attr("select_last_index", 0) != 0:
        return "select_last_index=1 not supported"
    consumers = ctx.graph.consumers.get(ctx.node.outputs[0], [])
    casts_to_int32 = [
        c for c in consumers if c.op_type == "Cast" and c.attributes.get("to") == _INT32
    ]
    if ml:
        if len(consumers) != 1:
            return (
                f"output has {len(consumers)} consumer nodes; CoreML (MLProgram) takes ArgMax "
                "with exactly one consumer"
            )
        only = consumers[0]
        if only.op_type == "Cast" and not casts_to_int32:
            return f"its consumer Cast '{only.name}' does not cast to int32"
    elif len(consumers) > 1 and casts_to_int32:
        return "several consumers and one is a Cast to int32 (not supported by NeuralNetwork)"
    return None


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
    reason = _FORMATS[NN].check(NodeContext(ctx.graph, producer, ctx.options))
    if reason:
        return f"its producer '{producer.name}' is not taken by CoreML (NeuralNetwork): {reason}"
    if ctx.attr("to", 0) != _INT32:
        dst = _ONNX_TYPES.get(int(ctx.attr("to", 0)), f"type {ctx.attr('to', 0)}")
        return f"casts to {dst}; CoreML (NeuralNetwork) folds only a Cast to int32 into its ArgMax"
    return None


def _clip(ctx: NodeContext, ml: bool) -> str | None:
    # impl/clip (GetClipMinMax): min/max inputs (opset 11+) must be constant.
    return _need_constant(ctx, 1, "min", ml) or _need_constant(ctx, 2, "max", ml)


def _concat(ctx: NodeContext, ml: bool) -> str | None:
    # impl/concat
    count = sum(1 for i in ctx.node.inputs if i)
    if count < 2:
        return f"{count} input; CoreML Concat needs at least 2"
    if not ml:
        rank = _in_rank(ctx, 0)
        if rank != 4:
            return f"input rank {rank}; CoreML (NeuralNetwork) Concat takes 4D only"
        axis = ctx.attr("axis")
        if axis not in (1, -3):
            return f"axis {axis}; CoreML (NeuralNetwork) concatenates on channels (1) only"
    return None


def _depth_to_space(ctx: NodeContext, ml: bool) -> str | None:
    # impl/depthtospace
    mode = ctx.attr("mode", "DCR")
    if not ml:
        return None if mode == "DCR" else f"mode {mode}; CoreML (NeuralNetwork) takes DCR only"
    if mode == "CRD" and not all_static(_in_shape(ctx, 0)):
        shape = _shape_str(_in_shape(ctx, 0))
        return f"mode CRD needs a fully static input shape (found {shape})"
    version = ctx.options.coreml_version
    if mode == "DCR" and _in_dtype(ctx, 0) == "float16" and version < 7:
        return f"float16 DCR needs CoreML 7+ (target is CoreML {version})"
    return None


def _flatten(ctx: NodeContext, ml: bool) -> str | None:
    # impl/flatten
    return "scalar input not supported" if _in_rank(ctx, 0) == 0 else None


def _gather(ctx: NodeContext, ml: bool) -> str | None:
    # impl/gather (June 2026 form, PR #28278: scalar indices)
    data = _in_shape(ctx, 0) or ()
    indices = _in_shape(ctx, 1) or ()
    if not indices:
        if not all_static(data):
            return f"scalar indices need a static data shape (found {_shape_str(data)})"
        if len(data) > 4:
            return f"scalar indices need data rank <= 4 (found {len(data)})"
    out_rank = len(data) + len(indices) - 1
    return None if out_rank <= MAX_RANK else f"output rank {out_rank} is over {MAX_RANK}"


def _gather_nd(ctx: NodeContext, ml: bool) -> str | None:
    # impl/gather_nd (PR #28598)
    if ctx.attr("batch_dims", 0) != 0:
        return f"batch_dims {ctx.attr('batch_dims')} not supported (0 only)"
    reason = _need_constant(ctx, 1, "indices", ml)
    if reason:
        return reason
    data = _in_shape(ctx, 0) or ()
    depth = (_in_shape(ctx, 1) or (0,))[-1]
    if not isinstance(depth, int) or depth > len(data):
        return f"index depth {depth} is over the data rank {len(data)}"
    if not all_static(data[:depth]):
        return f"indexed leading dims of data {_shape_str(data)} are not fixed"
    return None


def _gemm(ctx: NodeContext, ml: bool) -> str | None:
    # impl/gemm (Gemm and MatMul)
    if ctx.node.op_type == "MatMul":
        return _matmul(ctx, ml)
    if not _is_const(ctx, 1):
        return (
            f"input B ('{ctx.node.input(1)}') is not a constant initializer; "
            f"CoreML ({_fmt(ml)}) needs constant weights"
        )
    for name, want in (("transA", 0), ("alpha", 1.0), ("beta", 1.0)):
        value = ctx.attr(name, want)
        if value != want:
            return f"{name}={value} not supported ({name}={want} only)"
    if not ctx.has_input(2):
        return None
    reason = _need_constant(ctx, 2, "C", ml)
    if reason:
        return reason
    b = _in_shape(ctx, 1) or (0, 0)
    n = b[0] if ctx.attr("transB", 0) else b[-1]
    c = tuple(_in_shape(ctx, 2) or ())
    if c not in ((), (1,), (n,), (1, n)):
        return f"C shape {_shape_str(c)} not supported ([], [1], [{n}] or [1,{n}])"
    return None


def _matmul(ctx: NodeContext, ml: bool) -> str | None:
    if ml:
        return None  # numpy-style N-D matmul; B may be a runtime tensor
    if not _is_const(ctx, 1):
        return (
            f"input B ('{ctx.node.input(1)}') is not a constant initializer; "
            "CoreML (NeuralNetwork) needs constant weights"
        )
    ranks = (_in_rank(ctx, 0), _in_rank(ctx, 1))
    return None if ranks == (2, 2) else f"input ranks {ranks}; CoreML (NeuralNetwork) takes 2D only"


def _grid_sample(ctx: NodeContext, ml: bool) -> str | None:
    # impl/gridsample (corrects the reference: rank != 4 and nearest are refused)
    rank = _in_rank(ctx, 0)
    if rank != 4:
        return f"input rank {rank}; CoreML GridSample takes 4D only"
    mode = ctx.attr("mode", "linear")
    mode = "bilinear" if mode == "linear" else mode
    if mode not in ("bilinear", "zeros"):
        return f"mode {mode!r} not supported (linear/bilinear only)"
    reflection = ctx.attr("padding_mode", "zeros") == "reflection"
    if mode == "bilinear" and reflection and not ctx.attr("align_corners", 0):
        return "linear + padding_mode reflection + align_corners=0 not supported"
    return None


def _pad(ctx: NodeContext, ml: bool) -> str | None:
    # impl/pad (2026 form with reflect in MLProgram)
    pads = _ints(ctx, 1)
    if pads is None:
        return f"input pads ('{ctx.node.input(1)}') is not a constant initializer"
    if any(p < 0 for p in pads):
        return f"negative pads {pads} (cropping) not supported"
    reason = _need_constant(ctx, 2, "constant_value", ml) or _need_constant(ctx, 3, "axes", ml)
    if reason:
        return reason
    shape = _in_shape(ctx, 0) or ()
    rank = len(shape)
    axes = _ints(ctx, 3) if ctx.has_input(3) else list(range(rank))
    axes = [a + rank if a < 0 else a for a in axes or ()]
    half = len(pads) // 2
    padded = {
        ax: (pads[k], pads[k + half])
        for k, ax in enumerate(axes[:half])
        if pads[k] or pads[k + half]
    }
    mode = ctx.attr("mode", "constant")
    if not ml:
        return _pad_nn(ctx, rank, mode, padded)
    if mode not in ("constant", "reflect"):
        return f"mode {mode!r} not supported (constant or reflect)"
    if mode == "reflect":
        for ax, (before, after) in padded.items():
            if ax < rank - 2:
                return f"reflect padding on axis {ax}; CoreML reflects the last two dims only"
            size = _size(shape[ax])
            if size is None or max(before, after) >= size:
                return f"reflect pad {max(before, after)} is not below axis {ax} size {shape[ax]}"
    return None


def _pad_nn(ctx: NodeContext, rank: int, mode: str, padded: Mapping[int, Any]) -> str | None:
    if rank < 2:
        return f"input rank {rank}; CoreML (NeuralNetwork) Pad needs rank 2+"
    if mode != "constant":
        return f"mode {mode!r}; CoreML (NeuralNetwork) pads in constant mode only"
    if not ctx.has_input(2):
        return "no constant_value input; CoreML (NeuralNetwork) needs it given"
    outer = [ax for ax in padded if ax < rank - 2]
    if outer:
        return f"pads on axes {outer}; CoreML (NeuralNetwork) pads the last two dims only"
    return None


def _reshape(ctx: NodeContext, ml: bool) -> str | None:
    # impl/reshape (PR #24594 form)
    new_shape = _ints(ctx, 1)
    if new_shape is None:
        return f"input shape ('{ctx.node.input(1)}') is not a constant initializer"
    if not new_shape:
        return "the new shape is empty"
    if ctx.attr("allowzero", 0) == 1 and 0 in new_shape:
        return f"allowzero=1 with a 0 in the new shape {new_shape}"
    shape = _in_shape(ctx, 0) or ()
    if not ml and not all_static(shape):
        return f"input shape {_shape_str(shape)} is dynamic; CoreML (NeuralNetwork) needs it static"
    if len(new_shape) > MAX_RANK:
        return f"new rank {len(new_shape)} is over {MAX_RANK}"
    for i, d in enumerate(new_shape):
        if d == 0 and (i >= len(shape) or not _known(shape[i])):
            return f"a 0 (copy) in the new shape {new_shape} at dynamic input dim {i}"
    return None


def _shape(ctx: NodeContext, ml: bool) -> str | None:
    # impl/shape
    start, end = ctx.attr("start", 0), ctx.attr("end")
    if not ml:
        if start != 0 or end is not None:
            return "start/end not supported by CoreML (NeuralNetwork)"
        return None
    rank = _in_rank(ctx, 0) or 0
    lo, hi = _clamp_axis(start, rank), _clamp_axis(rank if end is None else end, rank)
    return None if hi > lo else f"start={start}, end={end} select no dims"


def _clamp_axis(v: int, rank: int) -> int:
    return max(0, min(rank, v + rank if v < 0 else v))


def _slice(ctx: NodeContext, ml: bool) -> str | None:
    # impl/slice
    for i, role in ((1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")):
        reason = _need_constant(ctx, i, role, ml)
        if reason:
            return reason
    shape = _in_shape(ctx, 0)
    if not all_static(shape):
        return f"data shape {_shape_str(shape)} is not fully static; CoreML Slice needs it static"
    dims = [_size(d) or 0 for d in shape or ()]
    starts, ends = _ints(ctx, 1) or [], _ints(ctx, 2) or []
    axes = _ints(ctx, 3) if ctx.has_input(3) else list(range(len(starts)))
    steps = _ints(ctx, 4) if ctx.has_input(4) else [1] * len(starts)
    for s, e, a, st in zip(starts, ends, axes or [], steps or [], strict=False):
        ax = a + len(dims) if a < 0 else a
        if 0 <= ax < len(dims) and st and not range(*slice(s, e, st).indices(dims[ax])):
            return f"empty slice on axis {a} (starts {s}, ends {e}, step {st})"
    return None


def _softmax(ctx: NodeContext, ml: bool) -> str | None:
    # impl/softmax (state before PR #24594's MLProgram relaxation, which was not found: see report)
    shape = _in_shape(ctx, 0)
    if not all_static(shape):
        return (
            f"input shape {_shape_str(shape)} is not fully static; CoreML Softmax needs it static"
        )
    return None


def _split(ctx: NodeContext, ml: bool) -> str | None:
    # impl/split (Split-1..12 'split' attribute since PR #28270)
    shape = _in_shape(ctx, 0) or ()
    axis = int(ctx.attr("axis", 0))
    dim = shape[axis + len(shape) if axis < 0 else axis] if shape else None
    if ctx.has_input(1):
        split = _ints(ctx, 1)
        if split is None:
            return f"input split ('{ctx.node.input(1)}') is not a constant initializer"
    else:
        split = list(ctx.attr("split", ()) or ()) or None
    if split is not None:
        if len(split) < 2 or 0 in split:
            return f"split {split} needs 2+ entries and no 0"
        if not _known(dim) or sum(split) != dim:
            return f"split {split} does not sum to the axis dim {dim}"
        return None
    if (ctx.since_version or 0) >= 18:
        n = ctx.attr("num_outputs")
        outs = len(ctx.node.outputs)
        if n is None or n < 2 or n != outs:
            return f"num_outputs {n} must be 2+ and equal the {outs} outputs"
        size = _size(dim)
        if size is None or n > size:
            return f"num_outputs {n} is over the axis dim {dim}"
    return None


def _squeeze(ctx: NodeContext, ml: bool) -> str | None:
    # impl/squeeze (Squeeze and Unsqueeze)
    axes = _axes(ctx)
    if isinstance(axes, str):
        return axes
    if ctx.node.op_type == "Unsqueeze":
        rank = (_in_rank(ctx, 0) or 0) + len(axes)
        if rank > MAX_RANK:
            return f"output rank {rank} is over {MAX_RANK}"
    return None


def _tile(ctx: NodeContext, ml: bool) -> str | None:
    # impl/tile (PR #28293)
    repeats = _ints(ctx, 1)
    if repeats is None:
        return (
            None
            if ml
            else (
                f"input repeats ('{ctx.node.input(1)}') is not a constant initializer; "
                "CoreML (NeuralNetwork) needs it constant"
            )
        )
    rank = _in_rank(ctx, 0)
    if len(repeats) != rank:
        return f"repeats {repeats} do not match the input rank {rank}"
    if any(r < 1 for r in repeats):
        return f"repeats {repeats} must all be 1 or more"
    return None


# --------------------------------------------------------------------------- Resize (§3)


def _resize(ctx: NodeContext, ml: bool) -> str | None:
    # impl/resize
    shape = _in_shape(ctx, 0) or ()
    if 0 in shape:
        return f"input shape {_shape_str(shape)} has a 0 dim"
    rank = len(shape)
    if (not ml and rank != 4) or not 3 <= rank <= 5:
        return f"input rank {rank}; CoreML Resize takes {'3D-5D' if ml else '4D'}"
    for name, want in (("antialias", 0), ("exclude_outside", 0)):
        if ctx.attr(name, want) != want:
            return f"{name}={ctx.attr(name)} not supported"
    if ctx.attr("keep_aspect_ratio_policy", "stretch") != "stretch":
        return f"keep_aspect_ratio_policy {ctx.attr('keep_aspect_ratio_policy')!r} not supported"
    mode = ctx.attr("mode", "nearest")
    if mode not in ("nearest", "linear"):
        return f"mode {mode!r} not supported (linear and nearest only)"
    if mode == "nearest" and ctx.attr("nearest_mode", "round_prefer_floor") != "floor":
        found = ctx.attr("nearest_mode", "round_prefer_floor")
        return f"nearest_mode {found!r} not supported (floor only)"
    use_sizes = bool(ctx.has_input(3) and (_in_shape(ctx, 3) or (0,))[0] != 0)
    index = 3 if use_sizes else 2
    values = _floats(ctx, index)
    if values is None:
        role = "sizes" if use_sizes else "scales"
        return f"input {role} ('{ctx.node.input(index)}') is missing or not a constant initializer"
    full = _full_rank(ctx, values, shape, use_sizes)
    if len(full) != rank:
        role = "sizes" if use_sizes else "scales"
        return f"{role} has {len(full)} values for a rank-{rank} input"
    reason = (
        _resize_scales(ctx, ml, shape, full) if not use_sizes else _resize_sizes(ml, shape, full)
    )
    return reason or _resize_coordinates(ctx, ml, mode, use_sizes, shape, full)


def _full_rank(
    ctx: NodeContext, values: list[float], shape: tuple[Dim, ...], sizes: bool
) -> list[float]:
    """Opset-18 ``axes`` expanded: one value per input dim."""
    axes = ctx.attr("axes")
    if axes is None:
        return values
    rank = len(shape)
    default = -1.0 if sizes else 1.0
    full = [float(_size(d) or default) if sizes else default for d in shape]
    for a, v in zip(axes, values, strict=False):
        full[a + rank if a < 0 else a] = v
    return full


def _resize_scales(
    ctx: NodeContext, ml: bool, shape: tuple[Dim, ...], scales: list[float]
) -> str | None:
    if any(s != 1.0 for s in scales[:-2]):
        return f"scales {scales} change more than the last two axes"
    h, w = shape[-2:]
    if not (_known(h) and _known(w)):
        return f"H and W of the input {_shape_str(shape)} are not fixed"
    sh, sw = scales[-2:]
    if sh >= 1 and sw >= 1:
        if sh != int(sh) or sw != int(sw):
            return f"upsampling scales {sh}, {sw} are not whole numbers"
        return None
    if sh <= 1 and sw <= 1:
        if not ml:
            return f"downsampling scales {sh}, {sw} need MLProgram"
        if any(s <= 0 or (_size(d) or 0) % (1 / s) for s, d in ((sh, h), (sw, w))):
            return f"downsampling scales {sh}, {sw} do not divide H, W ({h}, {w})"
        return None
    return f"scales {sh}, {sw} mix upsampling and downsampling"


def _resize_sizes(ml: bool, shape: tuple[Dim, ...], sizes: list[float]) -> str | None:
    if any(not _known(d) or s != d for s, d in zip(sizes[:-2], shape[:-2], strict=False)):
        return f"sizes {[int(s) for s in sizes]} change more than the last two axes"
    if ml:
        return None
    if not all_static(shape):
        return f"input {_shape_str(shape)} is dynamic; CoreML (NeuralNetwork) needs it static"
    for s, d in zip(sizes[-2:], shape[-2:], strict=False):
        if s % (_size(d) or 1):
            return f"sizes {[int(v) for v in sizes]} are not whole multiples of the input H, W"
    return None


def _resize_coordinates(
    ctx: NodeContext,
    ml: bool,
    mode: str,
    use_sizes: bool,
    shape: tuple[Dim, ...],
    full: list[float],
) -> str | None:
    ctm = ctx.attr("coordinate_transformation_mode", "half_pixel")
    if not ml or mode == "nearest":
        if ctm == "asymmetric":
            return None
        where = "NeuralNetwork" if not ml else "MLProgram nearest"
        return f"coordinate_transformation_mode {ctm!r}; CoreML ({where}) takes asymmetric only"
    if ctm in ("half_pixel", "align_corners"):
        return None
    if ctm == "asymmetric":
        return None if use_sizes else "asymmetric linear resize needs sizes, not scales"
    if ctm == "pytorch_half_pixel":
        out = (
            full[-2:]
            if use_sizes
            else [(_size(d) or -1.0) * s for d, s in zip(shape[-2:], full[-2:], strict=False)]
        )
        ok = all(o > 1 for o in out)
        return None if ok else f"pytorch_half_pixel needs output H and W over 1 (found {out})"
    return f"coordinate_transformation_mode {ctm!r} not supported for linear"


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class CoreMLOp:
    """One registered CoreML op builder: formats, opset range, input types, conditions."""

    op_type: str
    formats: frozenset[str]
    source: str  # builders/impl/<source>_op_builder.cc
    check: Predicate | None = None
    types: Predicate = _input0_float
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
    CoreMLOp("PRelu", BOTH, "activation", _prelu, min_opset=6),
    CoreMLOp("Gelu", ML_ONLY, "activation", min_opset=6),
    # Elu/Softplus (PR #26462): NeuralNetwork path and Softplus-1 opset not re-read (unclear)
    CoreMLOp("Elu", ML_ONLY, "activation", min_opset=6),
    CoreMLOp("Softplus", ML_ONLY, "activation"),
    CoreMLOp("QuickGelu", ML_ONLY, "quick_gelu", domain="com.microsoft"),
    # FusedConv: MLProgram only (ORT test FusedConvNeuralNetworkNotSupported, coreml_basic_test.cc)
    CoreMLOp("FusedConv", ML_ONLY, "conv", _fused_conv, domain="com.microsoft"),
    # impl/unary
    *_ops("Sqrt Reciprocal", BOTH, "unary"),
    *_ops("Erf Round Exp Ceil Sin Cos", ML_ONLY, "unary"),
    # impl/binary: opset 6- had broadcast attributes, hence min 7
    *_ops("Add Sub Mul Div", BOTH, "binary", min_opset=7),
    CoreMLOp("Pow", BOTH, "binary", types=_pow_types, min_opset=7),
    CoreMLOp("Max", ML_ONLY, "binary", min_opset=7),
    *_ops("AveragePool MaxPool GlobalAveragePool GlobalMaxPool", BOTH, "pool", check=_pool),
    *_ops("ReduceSum ReduceMean", BOTH, "reduction", check=_reduce),
    *_ops("ReduceMax ReduceMin ReduceProd", ML_ONLY, "reduction", check=_reduce),
    CoreMLOp("BatchNormalization", BOTH, "batch_norm", _batch_norm, min_opset=7),
    *_ops(
        "InstanceNormalization LayerNormalization GroupNormalization",
        ML_ONLY,
        "normalization",
        check=_normalization,
        types=_norm_types,
    ),
    CoreMLOp("And", ML_ONLY, "logical", types=_and_types),
    CoreMLOp("ArgMax", BOTH, "argmax", _argmax),
    CoreMLOp("Cast", BOTH, "cast", _cast, types=_cast_types),
    CoreMLOp("Clip", BOTH, "clip", _clip),
    CoreMLOp("Concat", BOTH, "concat", _concat),
    CoreMLOp("Conv", BOTH, "conv", _conv),
    CoreMLOp("ConvTranspose", ML_ONLY, "convtranspose", _conv_transpose),
    CoreMLOp("DepthToSpace", BOTH, "depthtospace", _depth_to_space),
    CoreMLOp("Flatten", NN_ONLY, "flatten", _flatten),
    CoreMLOp("Gather", BOTH, "gather", _gather, types=_gather_types),
    CoreMLOp("GatherND", ML_ONLY, "gather_nd", _gather_nd, types=_gather_nd_types),
    *_ops("Gemm MatMul", BOTH, "gemm", check=_gemm),
    CoreMLOp("GridSample", ML_ONLY, "gridsample", _grid_sample),
    CoreMLOp("Identity", BOTH, "identity"),
    CoreMLOp("LRN", NN_ONLY, "LRN", _lrn),
    CoreMLOp("Pad", BOTH, "pad", _pad, min_opset=11),
    CoreMLOp("Reshape", BOTH, "reshape", _reshape, min_opset=5),
    CoreMLOp("Resize", BOTH, "resize", _resize, min_opset=11, allow_empty_inputs=True),
    CoreMLOp("Shape", BOTH, "shape", _shape, types=_shape_types),
    CoreMLOp("Slice", BOTH, "slice", _slice, types=_typed(_F32_I64, f16_ml_from=6), min_opset=10),
    CoreMLOp("Softmax", BOTH, "softmax", _softmax),
    CoreMLOp("Split", BOTH, "split", _split),
    CoreMLOp("Squeeze", BOTH, "squeeze", _squeeze),
    CoreMLOp("Unsqueeze", ML_ONLY, "squeeze", _squeeze),
    CoreMLOp(
        "Tile",
        BOTH,
        "tile",
        _tile,
        types=_typed(frozenset({"float32", "int32", "int64", "bool"}), f16_ml_from=6),
    ),
    CoreMLOp("Transpose", BOTH, "transpose"),
    CoreMLOp("Where", ML_ONLY, "where", types=_where_types),
)
"""Every op builder registered on ORT main (``op_builder_factory.cc``)."""

_BY_TYPE: Mapping[str, CoreMLOp] = {op.op_type: op for op in OPS}
# Per format, the builders it has: one dict lookup finds a node's builder, and a miss is the
# "no builder" / "other format only" refusal, returned before any input of the node is read.
_BUILDERS: Mapping[bool, Mapping[str, CoreMLOp]] = {
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
class _Format:
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


_FORMATS = {ML: _Format(ML), NN: _Format(NN)}


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
    if op_type not in _BY_TYPE:
        return f"{op_type}: {_no_builder(op_type)}"
    other = "NeuralNetwork" if ml else "MLProgram"
    return f"{op_type}: not supported by CoreML {_fmt(ml)} ({other} only)"


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


def _input_shape(name: str, vt: ValueType | None, fmt: _Format, allow_empty: bool) -> str | None:
    # helper.cc IsInputSupported, for one present input (outputs are not checked).
    if vt is None or vt.shape is None:
        return f"input '{name}' has no shape information; CoreML needs at least its rank"
    shape = vt.shape
    if fmt.require_static_input_shapes and not all_static(shape):
        return (
            f"input '{name}' has dynamic shape {_shape_str(shape)}; the EP option "
            "RequireStaticInputShapes=1 refuses it"
        )
    if not allow_empty and 0 in shape:
        return f"input '{name}' has a 0 dim ({_shape_str(shape)}); CoreML refuses empty tensors"
    if len(shape) > MAX_RANK:
        return (
            f"input '{name}' has rank {len(shape)} ({_shape_str(shape)}); "
            f"CoreML takes rank {MAX_RANK} at most"
        )
    return None


def _external(graph: Graph, facts: _GraphFacts, node: Node) -> str | None:
    # impl/base HasExternalInitializer
    for name in node.inputs:
        if name and name in facts.external:
            init = graph.initializers[name]
            return (
                f"input '{name}' is an initializer stored as external data ({init.external_file}); "
                "the CoreML builders refuse external-data initializers"
            )
    return None


def _check_op(ctx: NodeContext, fmt: _Format, ml: bool) -> str | None:
    # The rules in the order ORT applies them (module docstring); the first refusal is reported.
    # Each rule is first tested with a cheap condition that every refusal meets; only then is
    # the exact rule (and its message) worked out, so a taken node costs a few lookups.
    node = ctx.node
    op = _BUILDERS[ml].get(node.op_type)
    if op is None:
        return _not_built(node.op_type, ml)
    version = node.since_version
    if version is None or not op.min_opset <= version <= op.max_opset:
        reason = _opset(ctx, op)  # also decides a missing version (contrib ops count as 1)
        if reason:
            return f"{node.op_type}: {reason}"
    graph = ctx.graph
    facts = _facts(graph)
    values, init_types = graph.values, facts.init_types
    check_all = fmt.require_static_input_shapes
    inputs = node.inputs
    vt0 = None
    for name in inputs:
        if name:
            # _in_type inlined: value info first, then the initializer types seen so far
            vt = values.get(name) or init_types.get(name) or _init_type(graph, facts, name)
            shape = vt.shape if vt is not None else None
            if check_all or shape is None or 0 in shape or len(shape) > MAX_RANK:
                reason = _input_shape(name, vt, fmt, op.allow_empty_inputs)
                if reason:
                    return f"{node.op_type}: {reason}"
            if vt0 is None:
                vt0 = vt  # the first present input: input 0 when present (only then read)
    if op.types is _input0_float:  # most builders: the default rule on input 0, inlined
        dt = vt0.dtype if vt0 is not None and inputs[0] else None
        reason = None if dt == "float32" else _float_type(0, dt, ml)
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
    return _FORMATS[model_format].check(ctx)


def discard(partition_nodes: list[Node], graph: Graph) -> str | None:
    """Reason CoreML drops a formed partition: one made only of trivial ops (PR #28293)."""
    if partition_nodes and all(n.op_type in TRIVIAL_OPS for n in partition_nodes):
        ops = ", ".join(sorted({n.op_type for n in partition_nodes}))
        return (
            f"the partition holds only trivial ops ({ops}); CoreML drops partitions without a "
            "compute op, as the CPU round trip costs more than it saves"
        )
    return None


def make_spec(
    model_format: str,
    *,
    require_static_input_shapes: bool = False,
    enable_on_subgraphs: bool = False,
) -> EpSpec:
    """An :class:`EpSpec` for one CoreML model format and the EP options ORT exposes.

    The defaults are ORT's: dynamic dims allowed (``RequireStaticInputShapes`` off) and subgraphs
    skipped (``EnableOnSubgraphs`` off). ``groups_qdq_units`` is False: CoreML judges each node
    alone (no QDQ node units), so DQ/Q stay on CPU and the op between them is judged by itself.
    """
    if model_format not in _FORMATS:
        raise ValueError(f"unknown CoreML model format {model_format!r} (mlprogram, neuralnetwork)")
    fmt = _Format(model_format, require_static_input_shapes, enable_on_subgraphs)
    name = "MLProgram" if fmt.ml else "NeuralNetwork"
    policy = (
        "nodes in If/Loop/Scan bodies are judged like main-graph nodes (EnableOnSubgraphs=1)"
        if enable_on_subgraphs
        else "If/Loop/Scan bodies are skipped (EnableOnSubgraphs off, ORT's default)"
    )
    return EpSpec(
        ep_id=f"coreml-{model_format}",
        display_name=f"CoreML ({name})",
        ort_source_version=ORT_SOURCE_VERSION,
        check_node=fmt.check,
        compiles=True,
        discard=discard,
        subgraph_policy=policy,
        takes_subgraph_nodes=enable_on_subgraphs,
        groups_qdq_units=False,
    )


MLPROGRAM = make_spec(ML)
NEURALNETWORK = make_spec(NN)

__all__ = [
    "BOTH",
    "MLPROGRAM",
    "MLPROGRAM_RULES",
    "ML_ONLY",
    "NEURALNETWORK",
    "NEURALNETWORK_RULES",
    "NN_ONLY",
    "OPS",
    "ORT_SOURCE_VERSION",
    "TRIVIAL_OPS",
    "CoreMLOp",
    "check_node",
    "discard",
    "make_spec",
]
