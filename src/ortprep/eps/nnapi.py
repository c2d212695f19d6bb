"""NNAPI EP rules: which nodes ORT's NNAPI EP takes, which partitions it keeps, and why not.

Restates ``onnxruntime/core/providers/nnapi/nnapi_builtin/`` (see :data:`ORT_SOURCE_VERSION`); each
rule names the ORT file it comes from (``builders/impl/<x>_op_builder.cc`` written ``impl/<x>``).

How ORT decides (``nnapi_execution_provider.cc`` GetCapability, ``helper.cc``,
``impl/base_op_builder.cc``):

- nothing inside If/Loop/Scan bodies; nothing at all below Android API 27 (feature level 1);
- nodes are judged per node unit (a DQ -> op -> Q group is one unit, see
  :func:`ortprep.eps.partition.node_units`), by the unit's target op type (domain not checked);
- per unit, in order: a builder exists; the feature level is high enough; a QDQ group is accepted
  only by builders that take it (Conv, Gemm, MatMul, Add, Mul, AveragePool, Resize, Transpose,
  Reshape, Softmax, Concat); every present input (and its scale/zero point) has a fixed shape; the
  builder's input types (default: input 0 float32); no external-data initializer; the node's
  ``since_version`` is in the builder's range (default 1-28); the builder's own conditions;
- uint8 single-node Transpose/Resize/Concat/MaxPool must read outputs of nodes in the same
  partition (they carry no scale/zero point otherwise);
- stop ops (NonMaxSuppression) and everything downstream stay on CPU; a partition that is a lone
  Reshape/Flatten/Identity, or whose inputs are all constants, is dropped.

Feature levels are written as the Android API they come with (FL1 = 27 ... FL5 = 31).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from ortprep.core.gcpause import gc_paused
from ortprep.core.graph import Dim, Graph, Node, ValueType
from ortprep.eps.base import EpOptions, EpSpec, NodeContext, OpRule, rule_table
from ortprep.eps.partition import (
    QUANT_IO_OPS,
    IODef,
    NodeUnit,
    elem_type,
    form_partitions,
    node_units,
    partition_inputs,
    stop_set,
)

ORT_SOURCE_VERSION = (
    "onnxruntime main 2024-2025 (nnapi_builtin op builders with base_op_builder.h max opset 28; "
    "partitioning_utils.cc with node units and redundant-Clip QDQ groups)"
)
"""The ORT source state these rules restate (``check`` prints it)."""

EP_TYPE = "NnapiExecutionProvider"
STOP_OPS = frozenset({"NonMaxSuppression"})
"""Default of session option ``ep.nnapi.partitioning_stop_ops``."""

FL1, FL2, FL3, FL4, FL5 = 27, 28, 29, 30, 31
MIN_API = FL1  # ORT_NNAPI_MIN_API_LEVEL
USE_NCHW = False  # NNAPI_FLAG_USE_NCHW off: the EP prefers NHWC (EpOptions has no flag for it)
DEFAULT_MAX_OPSET = 28  # impl/base_op_builder.h (19 in 2023-24 headers, 15 in 2022)

LONE_DROPPED = frozenset({"Reshape", "Flatten", "Identity"})
"""Ops that NNAPI does not keep as a one-node partition (helper.cc IsValidSupportedNodeGroup)."""

QDQ_TYPES = {
    "Conv": "QDQConv",
    "Resize": "QDQResize",
    "AveragePool": "QDQAveragePool",
    "Add": "QDQAdd",
    "Mul": "QDQMul",
    "Transpose": "QDQTranspose",
    "Reshape": "QDQReshape",
    "Softmax": "QDQSoftmax",
    "Concat": "QDQConcat",
    "Gemm": "QDQGemm",
    "MatMul": "QDQMatMul",
}
"""QDQ groups NNAPI builders accept, by target op type (helper.cc GetQuantizedOpType)."""

_QLINEAR_SINGLE = frozenset(
    {
        "DequantizeLinear",
        "QuantizeLinear",
        "QLinearConv",
        "QLinearMatMul",
        "QLinearAdd",
        "QLinearMul",
        "QLinearSigmoid",
        "QLinearAveragePool",
    }
)
_INTERNAL_QUANT_OPS = frozenset({"Transpose", "Resize", "Concat", "MaxPool"})
_FLOAT = "float32"
_UINT8 = "uint8"
_FLT_MAX = 3.4028234663852886e38


def _api(level: int) -> str:
    return f"NNAPI feature level {level - 26} (Android API {level})"


# --------------------------------------------------------------------------- unit view


@dataclass(slots=True, eq=False)
class UnitContext(NodeContext):
    """A :class:`NodeContext` that also carries the node unit being judged (immutable by
    convention, as its base)."""

    unit: NodeUnit | None = None


class _GraphState:
    """What NNAPI keeps per graph object: the lookups every rule makes, the units, the verdicts.

    ``Graph.value_type`` builds a new ValueType for each initializer it is asked about and
    ``Graph.is_constant`` does two lookups; on a 100,000-node graph the rules ask about 300,000
    times, so the answers are merged into plain dicts/sets once.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        types = dict(graph.values)
        for name, init in graph.initializers.items():
            if name not in types:
                types[name] = ValueType(name, init.dtype, init.dims)
        self.types: dict[str, ValueType] = types
        inputs = {v.name for v in graph.inputs}
        self.constants = frozenset(name for name in graph.initializers if name not in inputs)
        self.external = frozenset(
            name for name, init in graph.initializers.items() if init.external_file
        )
        self.read_by_name = self.constants | self.external  # see _plain_key
        self.fixed_shapes: dict[tuple[Dim, ...], bool] = {}  # shape -> all dims fixed (memo)
        self.units_index: dict[int, NodeUnit] | None = None  # see _units_index
        self.targets: dict[int, NodeUnit] = {}  # target index -> unit judged in _graph_verdicts
        self.verdicts: dict[EpOptions, dict[int, str | None]] = {}  # see _graph_verdicts
        # The options last asked about and their verdicts: callers ask once per unit with the
        # same options object, and hashing the options dataclass costs more than the lookup.
        self.last: tuple[EpOptions, dict[int, str | None]] | None = None

    def dtype(self, name: str) -> str | None:
        """``elem_type`` (the value's type, else what a producing Q says), from the merged dict."""
        if not name:
            return None
        vt = self.types.get(name)
        if vt is not None and vt.dtype:
            return vt.dtype
        return elem_type(self.graph, name)


class _View:
    """What the rules look at for one unit: its IO defs, types, shapes, constants, attributes.

    Built per unit judged, so it is kept light: the unit's IO defs (with scales and zero points)
    are only listed when a rule asks; a plain single node reads its own input names.
    """

    __slots__ = (
        "api",
        "graph",
        "in_names",
        "node",
        "op",
        "plain",
        "qdq",
        "qtype",
        "state",
        "unit",
    )

    def __init__(self, state: _GraphState, options: EpOptions, unit: NodeUnit) -> None:
        node = unit.target
        self.state = state
        self.graph = state.graph
        self.unit = unit
        self.node = node
        self.op = op = node.op_type
        self.api = options.android_api
        self.qdq = qdq = unit.kind == "qdq"
        self.plain = not qdq and op not in QUANT_IO_OPS
        self.qtype = QDQ_TYPES.get(op) if qdq else op if op in _QLINEAR_SINGLE else None
        # What in_name(i) returns: the value read by unit input i (a DQ's input for a QDQ unit).
        self.in_names = node.inputs if self.plain else tuple(io.name for io in self.inputs)

    @property
    def inputs(self) -> tuple[IODef, ...]:
        """The unit's input IO defs (``NodeUnit::Inputs()``, kept on the unit)."""
        return self.unit.inputs

    @property
    def outputs(self) -> tuple[IODef, ...]:
        return self.unit.outputs

    def input_value_names(self) -> tuple[str, ...]:
        """Every input value, scale and zero point of the unit, in order; may contain ``""``."""
        if self.plain:
            return self.node.inputs
        return tuple(name or "" for io in self.inputs for name in io)

    # lookups -----------------------------------------------------------------

    def attr(self, name: str, default: Any = None) -> Any:
        return self.node.attributes.get(name, default)

    def dtype(self, name: str) -> str | None:
        return self.state.dtype(name)

    def shape(self, name: str) -> tuple[Dim, ...] | None:
        vt = self.state.types.get(name) if name else None
        return None if vt is None else vt.shape

    def in_name(self, i: int) -> str:
        names = self.in_names
        return names[i] if i < len(names) else ""

    def in_shape(self, i: int) -> tuple[Dim, ...] | None:
        names = self.in_names
        return self.shape(names[i]) if i < len(names) else None

    def in_rank(self, i: int) -> int | None:
        names = self.in_names
        vt = self.state.types.get(names[i]) if i < len(names) and names[i] else None
        return None if vt is None or vt.shape is None else len(vt.shape)

    def const(self, name: str) -> bool:
        return bool(name) and name in self.state.constants

    def values(self, name: str) -> Any:
        """Values of a constant initializer (numpy), or ``None``."""
        if not self.const(name):
            return None
        return self.graph.initializers[name].numpy()

    @property
    def quantized(self) -> bool:
        return self.qtype is not None


# --------------------------------------------------------------------------- shared checks


def _float_input0(v: _View) -> str | None:
    """Default input type rule (base_op_builder.cc): only input 0 is checked; float32."""
    return _type_is(v, 0, (_FLOAT,))


def _type_is(v: _View, i: int, allowed: tuple[str, ...]) -> str | None:
    name = v.in_name(i)
    dtype = v.dtype(name)
    if dtype is None:
        return f"{v.op}: input '{name}' has no known element type"
    if dtype not in allowed:
        return f"{v.op}: input '{name}' is {dtype}; NNAPI takes {' or '.join(allowed)} here"
    return None


def _rank_between(v: _View, i: int, lo: int, hi: int, what: str = "input") -> str | None:
    rank = v.in_rank(i)
    if rank is None:
        return f"{v.op}: {what} '{v.in_name(i)}' has no known shape"
    if not lo <= rank <= hi:
        want = f"rank {lo}" if lo == hi else f"rank {lo} to {hi}"
        return f"{v.op}: {what} '{v.in_name(i)}' has rank {rank}; NNAPI takes {want}"
    return None


def _no_zero_dims(v: _View, i: int) -> str | None:
    shape = v.in_shape(i) or ()
    if 0 in shape:
        return f"{v.op}: input '{v.in_name(i)}' has a 0 dimension {list(shape)}; NNAPI needs data"
    return None


def _must_be_constant(v: _View, i: int, what: str) -> str | None:
    name = v.in_name(i)
    if name and not v.const(name):
        return f"{v.op}: {what} '{name}' is not a constant initializer; NNAPI needs it constant"
    return None


def _binary_quant_types(v: _View) -> str | None:
    """helper.cc HasValidBinaryOpQuantizedInputTypes: A uint8; B uint8 (or int8 for conv/gemm)."""
    a, b = v.dtype(v.in_name(0)), v.dtype(v.in_name(1))
    conv_or_gemm = v.qtype in ("QLinearConv", "QDQConv", "QLinearMatMul", "QDQGemm", "QDQMatMul")
    if a != _UINT8:
        return f"{v.op}: quantized input A '{v.in_name(0)}' is {a}; NNAPI takes uint8 activations"
    if conv_or_gemm and b not in (_UINT8, "int8"):
        return f"{v.op}: quantized weight '{v.in_name(1)}' is {b}; NNAPI takes uint8 or int8"
    if not conv_or_gemm and b != a:
        return f"{v.op}: quantized input B '{v.in_name(1)}' is {b}; NNAPI needs both inputs uint8"
    return None


def _quant_io(v: _View, indices: tuple[int, ...], is_input: bool) -> str | None:
    """op_builder_helpers.cc IsQuantizedIOSupported: uint8 (int8 weight), constant per-tensor
    scale and zero point; per-channel only for an int8 Conv weight at FL3 with zero points 0."""
    ios = v.inputs if is_input else v.outputs
    side = "input" if is_input else "output"
    matmul = v.qtype in ("QLinearMatMul", "QDQMatMul")
    weight_op = v.qtype in ("QLinearConv", "QDQConv", "QLinearMatMul", "QDQGemm", "QDQMatMul")
    for idx in indices:
        if idx >= len(ios) or ios[idx].scale is None:
            return f"{v.op}: {side} {idx} is not quantized; NNAPI needs a quantized {side} here"
        io = ios[idx]
        dtype = v.dtype(io.name)
        u8s8 = is_input and weight_op and idx == 1 and dtype == "int8"
        if dtype != _UINT8 and not u8s8:
            return (
                f"{v.op}: quantized {side} '{io.name}' is {dtype}; NNAPI takes uint8 "
                "(int8 only for a Conv/MatMul/Gemm weight)"
            )
        reason = _scale_ok(v, io, matmul, u8s8) or _zero_point_ok(v, io, matmul, u8s8)
        if reason:
            return reason
    return None


def _channels(v: _View, name: str) -> int:
    vt = v.graph.value_type(name)
    return 1 if vt is None or not vt.shape else int(vt.shape[0] or 0)


def _scale_ok(v: _View, io: IODef, matmul: bool, u8s8: bool) -> str | None:
    scale = io.scale or ""
    if not v.const(scale):
        return f"{v.op}: scale '{scale}' is not a constant initializer; NNAPI needs it constant"
    count = _channels(v, scale)
    if count == 1:
        return None
    if not u8s8 or matmul:
        return (
            f"{v.op}: '{io.name}' is quantized per channel ({count} scales); NNAPI takes "
            "per-channel quantization only for an int8 Conv weight"
        )
    if v.api < FL3:
        return f"{v.op}: per-channel quantized weights need {_api(FL3)}; the target is API {v.api}"
    dim0 = (v.shape(io.name) or (None,))[0]
    if dim0 != count:
        return f"{v.op}: weight '{io.name}' has {dim0} output channels but {count} scales"
    return None


def _zero_point_ok(v: _View, io: IODef, matmul: bool, u8s8: bool) -> str | None:
    zp = io.zero_point
    if not zp:
        return None
    if not v.const(zp):
        return f"{v.op}: zero point '{zp}' is not a constant initializer; NNAPI needs it constant"
    count = _channels(v, zp)
    if not u8s8:
        if count != 1:
            return (
                f"{v.op}: '{io.name}' is quantized per channel ({count} zero points); NNAPI "
                "takes per-tensor quantization here"
            )
        return None
    if v.dtype(zp) != "int8":
        return f"{v.op}: zero point '{zp}' of an int8 weight is {v.dtype(zp)}; NNAPI needs int8"
    if count != 1 and matmul:
        return f"{v.op}: MatMul weights quantized per channel are not supported by NNAPI"
    dim0 = (v.shape(io.name) or (None,))[0]
    if count not in (1, dim0):
        return f"{v.op}: weight '{io.name}' has {dim0} output channels but {count} zero points"
    values = v.values(zp)
    if values is not None and bool((values != 0).any()):
        return f"{v.op}: int8 weight zero point '{zp}' is not all 0; NNAPI needs symmetric weights"
    return None


def _scale_zp_values(v: _View, io: IODef) -> tuple[float, int] | None:
    scale = v.values(io.scale or "")
    if scale is None:
        return None
    zp = v.values(io.zero_point) if io.zero_point else None
    zp_value = 0 if zp is None else int(zp.reshape(-1)[0])
    return float(scale.reshape(-1)[0]), zp_value


def _required_output_params(v: _View, scale: float, zp: int) -> str | None:
    """op_builder_helpers.cc HasRequiredScaleAndZeroPoint on output 0."""
    import numpy as np

    got = _scale_zp_values(v, v.outputs[0]) if v.outputs else None
    if got is None:
        return f"{v.op}: the output quantization parameters are not constants"
    if np.float32(got[0]) != np.float32(scale) or got[1] != zp:
        return (
            f"{v.op}: quantized output has scale {got[0]:g} and zero point {got[1]}; "
            f"NNAPI needs scale {scale:g} (1/256) and zero point {zp}"
        )
    return None


def _same_params(v: _View, a: IODef, b: IODef, what: str) -> str | None:
    pa, pb = _scale_zp_values(v, a), _scale_zp_values(v, b)
    if pa is None or pb is None or pa != pb:
        return (
            f"{v.op}: {what} has scale/zero point {pb} but input '{a.name}' has {pa}; "
            "NNAPI needs them equal"
        )
    return None


# --------------------------------------------------------------------------- op specs


@dataclass(frozen=True)
class _Spec:
    """How one NNAPI op builder decides (the parts beyond the EP-wide checks)."""

    min_fl: int | Callable[[_View], int] = FL1
    qdq: bool = False  # builder accepts the QDQ group of its op (GetQuantizedOpType)
    io: Callable[[_View], str | None] = _float_input0  # HasSupportedInputOutputsImpl
    impl: Callable[[_View], str | None] | None = None  # IsOpSupportedImpl


def _layout_fl(base: int) -> int:
    return FL3 if USE_NCHW else base


# binary: impl/binary_op_builder.cc ----------------------------------------


def _io_binary(v: _View) -> str | None:
    if v.quantized:
        return _binary_quant_types(v) or _quant_io(v, (0, 1), True) or _quant_io(v, (0,), False)
    if v.op == "Pow":
        return _type_is(v, 0, (_FLOAT,)) or _type_is(v, 1, (_FLOAT,))
    return _float_input0(v)


def _impl_binary(v: _View) -> str | None:
    for i in (0, 1):
        rank = v.in_rank(i)
        if rank is not None and rank > 4:
            return f"{v.op}: input '{v.in_name(i)}' has rank {rank}; NNAPI takes rank 4 or less"
    return None


# unary / activations: impl/unary, relu, elu, leakyrelu, clip, minmax, cast ----------


def _impl_sigmoid(v: _View) -> str | None:
    return _rank_between(v, 0, 1, 4) if v.op == "Sigmoid" else None


def _io_qlinear_sigmoid(v: _View) -> str | None:
    return (
        _quant_io(v, (0,), True)
        or _quant_io(v, (0,), False)
        or _required_output_params(v, 1.0 / 256, 0)
    )


def _impl_leakyrelu(v: _View) -> str | None:
    return _rank_between(v, 0, 1, 4)


def _impl_clip(v: _View) -> str | None:
    # SU GetClipMinMax: before opset 11 min/max are attributes; later, constant inputs.
    lo, hi = -_FLT_MAX, _FLT_MAX
    if (v.node.since_version or 11) < 11:
        lo, hi = float(v.attr("min", lo)), float(v.attr("max", hi))
    else:
        for slot, what in ((1, "min"), (2, "max")):
            name = v.node.input(slot)
            if not name:
                continue
            if not v.const(name):
                return f"Clip: {what} '{name}' is not a constant initializer; NNAPI needs it"
            value = float(v.values(name).reshape(-1)[0])
            lo, hi = (value, hi) if slot == 1 else (lo, value)
    if (lo, hi) in ((0.0, 6.0), (-1.0, 1.0)):
        return None
    return (
        f"Clip: range ({lo:g}, {hi:g}) is neither (0, 6) nor (-1, 1); NNAPI maps Clip only "
        "to RELU6 or RELU1"
    )


def _impl_minmax(v: _View) -> str | None:
    count = len(v.node.inputs)
    if count != 2:
        return f"{v.op}: {count} inputs; NNAPI takes exactly 2"
    return None


def _impl_cast(v: _View) -> str | None:
    to = int(v.attr("to", 0))
    if to not in (1, 6):
        return f"Cast: target type {_onnx_type(to)}; NNAPI casts only to float32 or int32"
    return None


def _onnx_type(code: int) -> str:
    names = {
        1: "float32",
        2: "uint8",
        3: "int8",
        5: "int16",
        6: "int32",
        7: "int64",
        9: "bool",
        10: "float16",
        11: "float64",
    }
    return names.get(code, f"type {code}")


# conv: impl/conv_op_builder.cc ------------------------------------------------


def _io_quantizable(v: _View) -> str | None:
    """Conv/Gemm/MatMul: float32 input 0, or quantized A/B inputs and output."""
    if not v.quantized:
        return _float_input0(v)
    return _binary_quant_types(v) or _quant_io(v, (0, 1), True) or _quant_io(v, (0,), False)


def _impl_conv(v: _View) -> str | None:
    if v.quantized and v.node.domain == "com.microsoft":
        return "QLinearConv: the com.microsoft (NHWC) QLinearConv is not supported by NNAPI"
    weight = v.in_name(1)
    if not v.const(weight):
        return f"{v.op}: weight '{weight}' is not a constant initializer; NNAPI needs it constant"
    dims = v.graph.initializers[weight].dims
    if len(dims) != 4:
        return (
            f"{v.op}: {len(dims) - 2}D convolution (weight rank {len(dims)}); NNAPI takes 2D "
            "convolution only"
        )
    dilations = tuple(v.attr("dilations", (1, 1)))
    if dilations != (1, 1):
        if int(v.attr("group", 1)) != 1 and dims[1] != 1:
            return f"{v.op}: dilations {list(dilations)} on a grouped convolution; NNAPI has none"
        if v.api < FL3:
            return f"{v.op}: dilated convolution needs {_api(FL3)}; the target is API {v.api}"
    if v.quantized and len(v.inputs) > 2:
        return _must_be_constant(v, 2, "bias")
    return None


# pool: impl/pool_op_builder.cc --------------------------------------------------


def _io_pool(v: _View) -> str | None:
    average = v.op in ("AveragePool", "QLinearAveragePool")
    quant_average = v.quantized and average
    if v.op != "MaxPool" and not quant_average:
        return _float_input0(v)
    if quant_average:
        reason = _quant_io(v, (0,), True) or _quant_io(v, (0,), False)
        if reason:
            return reason
    return _type_is(v, 0, (_FLOAT, _UINT8))


def _impl_pool(v: _View) -> str | None:
    reason = _rank_between(v, 0, 4, 4)
    if reason:
        return reason
    if v.op.startswith("Global"):
        return None
    checks = (
        (int(v.attr("count_include_pad", 0)) == 1, "count_include_pad=1"),
        (int(v.attr("storage_order", 0)) == 1, "storage_order=1"),
        (
            len(v.attr("kernel_shape", (1, 1))) != 2,
            f"{len(v.attr('kernel_shape', (1, 1)))}D pooling (NNAPI pools in 2D only)",
        ),
        (int(v.attr("ceil_mode", 0)) == 1, "ceil_mode=1"),
        (tuple(v.attr("dilations", (1, 1))) != (1, 1), "dilations other than 1"),
        (len(v.outputs) != 1, "a second (Indices) output"),
    )
    for failed, what in checks:
        if failed:
            return f"{v.op}: {what} is not supported by NNAPI"
    if v.quantized:
        return _same_params(v, v.inputs[0], v.outputs[0], "output")
    return None


# gemm / matmul: impl/gemm_op_builder.cc, op_builder_helpers.cc IsSupportedBatchMatMul ------


def _batch_matmul(v: _View) -> bool:
    if v.op != "MatMul" or v.qdq or v.api < FL3 or v.dtype(v.in_name(0)) != _FLOAT:
        return False
    a, b = v.in_shape(0), v.in_shape(1)
    if a is None or b is None or len(a) < 3 or len(a) != len(b):
        return False
    return tuple(a[:-2]) == tuple(b[:-2])


def _impl_gemm(v: _View) -> str | None:
    if _batch_matmul(v):
        return None
    a_rank, b_rank = v.in_rank(0), v.in_rank(1)
    if a_rank != 2:
        return f"{v.op}: input A '{v.in_name(0)}' has rank {a_rank}; NNAPI takes 2D A"
    if b_rank != 2:
        return f"{v.op}: input B '{v.in_name(1)}' has rank {b_rank}; NNAPI takes 2D B"
    if v.op == "Gemm":
        reason = _gemm_attributes(v)
        if reason:
            return reason
    elif not v.const(v.in_name(1)):
        return (
            f"{v.op}: B '{v.in_name(1)}' is not a constant initializer; NNAPI needs a constant "
            "B (or batched MatMul with rank >= 3 at API 29+)"
        )
    if v.qtype == "QDQGemm" and len(v.inputs) > 2:
        return _must_be_constant(v, 2, "bias")
    return None


def _gemm_attributes(v: _View) -> str | None:
    trans_a, trans_b = int(v.attr("transA", 0)), int(v.attr("transB", 0))
    alpha, beta = float(v.attr("alpha", 1.0)), float(v.attr("beta", 1.0))
    if trans_a != 0 or alpha != 1.0 or beta != 1.0:
        return (
            f"Gemm: transA={trans_a}, alpha={alpha:g}, beta={beta:g}; NNAPI takes only "
            "transA=0, alpha=1, beta=1"
        )
    if trans_b == 0 and not v.const(v.in_name(1)):
        return f"Gemm: B '{v.in_name(1)}' must be a constant initializer when transB=0"
    if len(v.inputs) < 3 or not v.in_name(2):
        return None
    c_shape = v.in_shape(2) or ()
    b_shape = v.in_shape(1) or (None, None)
    n = b_shape[1] if trans_b == 0 else b_shape[0]
    if len(c_shape) == 0:
        return "Gemm: a scalar C is not supported by NNAPI; C must be a vector of N"
    if len(c_shape) > 1:
        if v.api < FL2:
            return f"Gemm: a C of rank {len(c_shape)} needs {_api(FL2)}; the target is API {v.api}"
        if any(d != 1 for d in c_shape[:-1]):
            return f"Gemm: C has shape {list(c_shape)}; NNAPI takes C of shape (N) or (1, ..., N)"
    if c_shape[-1] != n:
        return f"Gemm: C has {c_shape[-1]} values but N is {n}; NNAPI needs C to be a vector of N"
    return None


# normalization / shape ops ------------------------------------------------------------


def _impl_batchnorm(v: _View) -> str | None:  # impl/batchnorm_op_builder.cc
    if len(v.node.outputs) != 1:
        return "BatchNormalization: training mode (more than one output) is not supported"
    rank = v.in_rank(0)
    if rank is not None and rank > 4:
        return f"BatchNormalization: input has rank {rank}; NNAPI takes rank 4 or less"
    if int(v.attr("spatial", 1)) != 1:
        return "BatchNormalization: spatial=0 is not supported by NNAPI"
    for i, what in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var")):
        reason = _must_be_constant(v, i, what)
        if reason:
            return reason
    return None


def _impl_lrn(v: _View) -> str | None:  # impl/LRN_op_builder.cc
    return _rank_between(v, 0, 4, 4)


def _io_concat(v: _View) -> str | None:
    if v.qdq:
        return _quant_io(v, tuple(range(len(v.inputs))), True) or _quant_io(v, (0,), False)
    return _type_is(v, 0, (_FLOAT, _UINT8))


def _impl_concat(v: _View) -> str | None:  # impl/concat_op_builder.cc
    reason = _rank_between(v, 0, 1, 4)
    if reason or not v.qdq or v.api >= FL3:
        return reason
    for io in (*v.inputs[1:], *v.outputs):
        reason = _same_params(v, v.inputs[0], io, f"'{io.name}'")
        if reason:
            return f"{reason} below {_api(FL3)}"
    return None


def _io_uint8_or_qdq(v: _View) -> str | None:
    """Transpose (and Resize): float32 or uint8; a QDQ group needs quantized input and output."""
    reason = _type_is(v, 0, (_FLOAT, _UINT8))
    if reason or not v.qdq:
        return reason
    return _quant_io(v, (0,), True) or _quant_io(v, (0,), False)


def _impl_transpose(v: _View) -> str | None:  # impl/transpose_op_builder.cc
    return _rank_between(v, 0, 1, 4)


def _io_float_or_qdq(v: _View) -> str | None:
    """Reshape/Softmax: float32, or a QDQ group with quantized input and output."""
    if not v.qdq:
        return _float_input0(v)
    return _quant_io(v, (0,), True) or _quant_io(v, (0,), False)


def _impl_reshape(v: _View) -> str | None:  # impl/reshape_op_builder.cc
    reason = _rank_between(v, 0, 1, 4)
    if reason:
        return reason
    shape_name = v.node.input(1)
    if not v.const(shape_name):
        return (
            f"Reshape: shape '{shape_name}' is not a constant initializer; NNAPI needs a "
            "constant target shape"
        )
    in_shape = v.in_shape(0) or ()
    allow_zero = int(v.attr("allowzero", 0)) == 1
    for i, dim in enumerate(v.values(shape_name).reshape(-1).tolist()):
        if dim == 0 and (allow_zero or (i < len(in_shape) and in_shape[i] == 0)):
            return f"Reshape: shape has 0 at axis {i} with an empty input or allowzero=1"
    return None


def _impl_flatten(v: _View) -> str | None:  # impl/flatten_op_builder.cc
    reason = _rank_between(v, 0, 1, 4)
    if reason:
        return reason
    shape = [d if isinstance(d, int) else 0 for d in v.in_shape(0) or ()]
    axis = int(v.attr("axis", 1))
    axis = axis + len(shape) if axis < 0 else axis
    left = right = 1
    for d in shape[:axis]:
        left *= d
    for d in shape[axis:]:
        right *= d
    if left == 0 and right == 0:
        return "Flatten: both output dimensions would be 0"
    return None


def _impl_squeeze(v: _View) -> str | None:  # impl/squeeze_op_builder.cc, unsqueeze_op_builder.cc
    reason = _rank_between(v, 0, 1, 4)
    if reason or (v.node.since_version or 13) < 13:
        return reason
    return _must_be_constant(v, 1, "axes")


def _impl_slice(v: _View) -> str | None:  # impl/slice_op_builder.cc
    reason = _rank_between(v, 0, 1, 4) or _no_zero_dims(v, 0)
    if reason:
        return reason
    for i, what in ((1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")):
        reason = _must_be_constant(v, i, what)
        if reason:
            return reason
    return None


def _impl_split(v: _View) -> str | None:  # impl/split_op_builder.cc
    shape = v.in_shape(0) or ()
    axis = int(v.attr("axis", 0))
    axis = axis + len(shape) if axis < 0 else axis
    if not 0 <= axis < len(shape):
        return f"Split: axis {axis} is outside the input's rank {len(shape)}"
    dim = int(shape[axis] or 0)
    outputs = len(v.node.outputs)
    if v.node.input(1):
        reason = _must_be_constant(v, 1, "split")
        if reason:
            return reason
        sizes = [int(x) for x in v.values(v.node.input(1)).reshape(-1)]
        if sum(sizes) != dim or len(set(sizes)) > 1:
            return f"Split: sizes {sizes} are not equal parts of {dim}; NNAPI splits evenly only"
        return None
    if (v.node.since_version or 13) >= 18:
        num = v.attr("num_outputs")
        if num is None or int(num) != outputs or int(num) > dim:
            return f"Split: num_outputs {num} must be given, equal {outputs} and be at most {dim}"
    if outputs == 0 or dim % outputs:
        return f"Split: {outputs} outputs do not divide axis size {dim}; NNAPI splits evenly only"
    return None


def _impl_gather(v: _View) -> str | None:  # impl/gather_op_builder.cc
    reason = _rank_between(v, 0, 1, 4) or _no_zero_dims(v, 0)
    if reason:
        return reason
    if v.dtype(v.in_name(1)) != "int32":
        return _must_be_constant(v, 1, "indices (not int32)")
    return None


def _impl_pad(v: _View) -> str | None:  # impl/pad_op_builder.cc
    reason = _rank_between(v, 0, 1, 4) or _no_zero_dims(v, 0)
    if reason:
        return reason
    mode = v.attr("mode", "constant")
    if mode != "constant":
        return f"Pad: mode '{mode}'; NNAPI pads in constant mode only"
    pads = v.node.input(1)
    if not v.const(pads):
        return f"Pad: pads '{pads}' is not a constant initializer; NNAPI needs constant pads"
    values = [int(x) for x in v.values(pads).reshape(-1)]
    if any(x < 0 for x in values):
        return f"Pad: negative pads {values}; NNAPI pads only outward"
    return _must_be_constant(v, 2, "constant_value")


def _impl_depthtospace(v: _View) -> str | None:  # impl/depthtospace_op_builder.cc
    reason = _rank_between(v, 0, 4, 4)
    if reason:
        return reason
    if (v.node.since_version or 1) >= 11 and v.attr("mode", "DCR") != "DCR":
        return f"DepthToSpace: mode '{v.attr('mode')}'; NNAPI takes DCR only"
    if USE_NCHW and v.api < FL3:
        return f"DepthToSpace: NCHW layout needs {_api(FL3)}; the target is API {v.api}"
    return None


def _io_softmax(v: _View) -> str | None:
    reason = _io_float_or_qdq(v)
    if reason or not v.qdq:
        return reason
    return _required_output_params(v, 1.0 / 256, 0)


def _impl_softmax(v: _View) -> str | None:  # impl/softmax_op_builder.cc
    if (v.node.since_version or 13) < 13:
        return None
    rank = v.in_rank(0) or 0
    if rank > 4:
        return f"Softmax: input has rank {rank}; NNAPI takes rank 4 or less"
    if v.api < FL3:
        axis = int(v.attr("axis", -1))
        axis = axis + rank if axis < 0 else axis
        if rank not in (2, 4) or axis != rank - 1:
            return (
                f"Softmax: rank {rank} with axis {axis} needs {_api(FL3)}; below it NNAPI "
                "takes rank 2 or 4 with the last axis"
            )
    return None


def _resize_min_fl(v: _View) -> int:
    return FL2 if v.dtype(v.in_name(0)) == _UINT8 else FL3


def _impl_resize(v: _View) -> str | None:  # impl/resize_op_builder.cc
    reason = _rank_between(v, 0, 4, 4) or _resize_attributes(v)
    if reason:
        return reason
    scales = v.node.input(2)
    scale_values = v.values(scales) if scales else None
    if scales and (scale_values is None or scale_values.size):
        return _resize_scales(v, scales, scale_values)
    sizes = v.node.input(3)
    if not sizes:
        return "Resize: neither scales nor sizes is given as a constant"
    return _resize_sizes(v, sizes)


def _resize_attributes(v: _View) -> str | None:
    mode = v.attr("mode", "nearest")
    if mode not in ("linear", "nearest"):
        return f"Resize: mode '{mode}'; NNAPI takes linear or nearest"
    if int(v.attr("exclude_outside", 0)) != 0:
        return "Resize: exclude_outside=1 is not supported by NNAPI"
    coord = v.attr("coordinate_transformation_mode", "half_pixel")
    if mode == "linear":
        if coord not in ("half_pixel", "align_corners", "asymmetric"):
            return f"Resize: linear with coordinate mode '{coord}' is not supported by NNAPI"
        if v.api < FL4 and coord != "asymmetric":
            return f"Resize: linear with '{coord}' needs {_api(FL4)}; the target is API {v.api}"
    else:
        nearest = v.attr("nearest_mode", "round_prefer_floor")
        if coord != "asymmetric" or nearest != "floor":
            return (
                f"Resize: nearest with coordinate mode '{coord}' and nearest_mode '{nearest}'; "
                "NNAPI takes nearest only with asymmetric and floor"
            )
    if (v.node.since_version or 11) >= 18:
        if int(v.attr("antialias", 0)) != 0:
            return "Resize: antialias=1 is not supported by NNAPI"
        if v.attr("axes"):
            return "Resize: the axes attribute is not supported by NNAPI"
        if v.attr("keep_aspect_ratio_policy", "stretch") != "stretch":
            return "Resize: keep_aspect_ratio_policy other than 'stretch' is not supported"
    return None


def _resize_scales(v: _View, name: str, values: Any) -> str | None:
    if values is None:
        return f"Resize: scales '{name}' is not a constant initializer; NNAPI needs it constant"
    s = [float(x) for x in values.reshape(-1)]
    nchw = s[1] == 1.0
    scale_c, scale_h, scale_w = (s[1], s[2], s[3]) if nchw else (s[3], s[1], s[2])
    if s[0] != 1.0 or scale_c != 1.0:
        return f"Resize: scales {s} resize N or C; NNAPI resizes height and width only"
    if scale_h < 1.0 or scale_w < 1.0:
        shape = v.in_shape(0) or (0, 0, 0, 0)
        h_in, w_in = (shape[2], shape[3]) if nchw else (shape[1], shape[2])
        if not (_divides(h_in, scale_h) and _divides(w_in, scale_w)):
            return (
                f"Resize: downscaling {h_in}x{w_in} by {scale_h:g}x{scale_w:g} does not divide "
                "evenly; NNAPI needs whole-number factors of the input size"
            )
    return _resize_layout(v, nchw)


def _divides(n: Dim, scale: float) -> bool:
    """utils ReciprocalIsAFactorOfN: 1/scale is a whole number that divides n."""
    if not isinstance(n, int) or n == 0 or scale <= 0:
        return False
    factor = 1.0 / scale
    rounded = round(factor)
    return rounded > 0 and abs(factor - rounded) < 1e-6 and n % rounded == 0


def _resize_sizes(v: _View, name: str) -> str | None:
    values = v.values(name)
    if values is None:
        return f"Resize: sizes '{name}' is not a constant initializer; NNAPI needs it constant"
    sizes = [int(x) for x in values.reshape(-1)]
    shape = v.in_shape(0) or (0, 0, 0, 0)
    nchw = sizes[1] == shape[1]
    channel = 1 if nchw else 3
    if sizes[0] != shape[0] or sizes[channel] != shape[channel]:
        return f"Resize: sizes {sizes} change N or C of {list(shape)}; NNAPI resizes H and W only"
    return _resize_layout(v, nchw)


def _resize_layout(v: _View, nchw: bool) -> str | None:
    if nchw and v.api <= FL2:
        return f"Resize: NCHW input needs {_api(FL3)}; the target is API {v.api}"
    return None


def _impl_reduce_mean(v: _View) -> str | None:  # impl/reduction_op_builder.cc
    reason = _rank_between(v, 0, 1, 4)
    if reason or (v.node.since_version or 1) < 18:
        return reason
    if int(v.attr("noop_with_empty_axes", 0)) == 1:
        return "ReduceMean: noop_with_empty_axes=1 is not supported by NNAPI"
    return _must_be_constant(v, 1, "axes")


def _io_quantize(v: _View) -> str | None:  # impl/quantizelinear_op_builder.cc
    return _quant_io(v, (0,), False)


def _io_dequantize(v: _View) -> str | None:  # impl/dequantizelinear_op_builder.cc
    return _quant_io(v, (0,), True)


# --------------------------------------------------------------------------- judging


def _check_rule(op: str, ctx: NodeContext) -> str | None:
    """One builder's verdict on a unit (BaseOpBuilder::IsOpSupported order), EP checks aside."""
    unit = ctx.unit if isinstance(ctx, UnitContext) and ctx.unit else _unit_of(ctx.graph, ctx.node)
    return _judge(op, _View(_state(ctx.graph), ctx.options, unit))


def _judge(op: str, v: _View) -> str | None:
    spec, rule = _BUILDERS[op]
    need = spec.min_fl(v) if callable(spec.min_fl) else spec.min_fl
    if v.api < need:
        return f"{v.op} needs {_api(need)}; the target is API {v.api}"
    if v.qdq and not (spec.qdq and v.qtype):
        return (
            f"{v.op}: NNAPI does not take a quantized DequantizeLinear -> {v.op} -> "
            "QuantizeLinear group; the whole group stays on CPU"
        )
    reason = _fixed_shapes(v) or spec.io(v) or _external_data(v)
    if reason:
        return reason
    since = v.node.since_version
    if since is not None and not rule.min_opset <= since <= (rule.max_opset or since):
        return (
            f"{v.op}: opset version {since} is outside what NNAPI's builder takes "
            f"({rule.min_opset} to {rule.max_opset})"
        )
    return spec.impl(v) if spec.impl else None


def _fixed_shapes(v: _View) -> str | None:
    """base_op_builder.cc: every present input, scale and zero point needs a fixed shape."""
    types, fixed = v.state.types, v.state.fixed_shapes
    for name in v.input_value_names():
        if not name:
            continue
        vt = types.get(name)
        shape = None if vt is None else vt.shape
        if shape is None:
            return _fixed_shape(v, name)
        # Shapes repeat across a graph, so whether one is fixed is remembered per shape.
        ok = fixed.get(shape)
        if ok is None:
            ok = fixed[shape] = _fixed_shape(v, name) is None
        if not ok:
            return _fixed_shape(v, name)  # words the refusal
    return None


def _fixed_shape(v: _View, name: str) -> str | None:
    vt = v.state.types.get(name)
    if vt is None or vt.shape is None:
        return f"input '{name}' has no known shape; NNAPI needs fixed shapes"
    for axis, dim in enumerate(vt.shape):
        if isinstance(dim, str):
            return f"input '{name}' has dynamic dimension '{dim}'; NNAPI needs fixed shapes"
        if dim is None or dim < 0:
            return (
                f"input '{name}' has an unknown dimension at axis {axis}; NNAPI needs fixed shapes"
            )
    return None


def _external_data(v: _View) -> str | None:
    """base_op_builder.cc HasExternalInitializer (versions read; may be gone in the newest)."""
    external = v.state.external
    if not external:
        return None
    for name in v.input_value_names():
        if name in external:
            return (
                f"{v.op}: initializer '{name}' is stored as external data; the NNAPI EP "
                "does not take nodes that read external initializers"
            )
    return None


# --------------------------------------------------------------------------- rule table


_SPECS: dict[str, _Spec] = {}


def _rule(
    op: str,
    spec: _Spec,
    source: str,
    min_opset: int = 1,
    max_opset: int = DEFAULT_MAX_OPSET,
    domain: str = "ai.onnx",
) -> OpRule:
    _SPECS[op] = spec
    return OpRule(op, domain, min_opset, max_opset, partial(_check_rule, op), source)


_BINARY = _Spec(qdq=True, io=_io_binary, impl=_impl_binary)
_UNARY = "impl/unary_op_builder.cc"
_POOL = _Spec(min_fl=_layout_fl(FL2), qdq=True, io=_io_pool, impl=_impl_pool)
_GEMM = _Spec(qdq=True, io=_io_quantizable, impl=_impl_gemm)
_CONV = _Spec(min_fl=_layout_fl(FL2), qdq=True, io=_io_quantizable, impl=_impl_conv)
_SQUEEZE = "impl/squeeze_op_builder.cc"

RULES: Mapping[tuple[str, str], OpRule] = rule_table(
    [
        _rule("Add", _BINARY, "impl/binary_op_builder.cc", 7),
        _rule("Mul", _BINARY, "impl/binary_op_builder.cc", 7),
        _rule("Sub", _Spec(FL2, io=_io_binary, impl=_impl_binary), "impl/binary_op_builder.cc", 7),
        _rule("Div", _Spec(FL2, io=_io_binary, impl=_impl_binary), "impl/binary_op_builder.cc", 7),
        _rule("Pow", _Spec(FL3, io=_io_binary, impl=_impl_binary), "impl/binary_op_builder.cc", 7),
        _rule("PRelu", _Spec(FL3, io=_io_binary, impl=_impl_binary), "impl/binary_op_builder.cc"),
        _rule("QLinearAdd", _BINARY, "impl/binary_op_builder.cc", domain="com.microsoft"),
        _rule("QLinearMul", _BINARY, "impl/binary_op_builder.cc", domain="com.microsoft"),
        *(_rule(op, _Spec(FL3), _UNARY, 6) for op in ("Abs", "Exp", "Neg", "Sin", "Sqrt", "Log")),
        _rule("Floor", _Spec(), _UNARY, 6),
        _rule("Tanh", _Spec(), _UNARY, 6),
        _rule("Sigmoid", _Spec(impl=_impl_sigmoid), _UNARY, 6),
        _rule("QLinearSigmoid", _Spec(io=_io_qlinear_sigmoid), _UNARY, domain="com.microsoft"),
        _rule("Relu", _Spec(), "impl/relu_op_builder.cc"),
        _rule("Elu", _Spec(FL4), "impl/elu_op_builder.cc", 6),
        # LeakyRelu is built from NNAPI LESS/MUL/SELECT (FL3 ops) yet declares no minimum (FL1).
        _rule("LeakyRelu", _Spec(impl=_impl_leakyrelu), "impl/leakyrelu_op_builder.cc", 6),
        _rule("Clip", _Spec(impl=_impl_clip), "impl/clip_op_builder.cc"),
        _rule("Min", _Spec(FL3, impl=_impl_minmax), "impl/minmax_op_builder.cc", 6),
        _rule("Max", _Spec(FL3, impl=_impl_minmax), "impl/minmax_op_builder.cc", 6),
        _rule("Cast", _Spec(FL3, impl=_impl_cast), "impl/cast_op_builder.cc", 6),
        _rule("Identity", _Spec(), "impl/identity_op_builder.cc"),
        _rule("Conv", _CONV, "impl/conv_op_builder.cc"),
        _rule("QLinearConv", _CONV, "impl/conv_op_builder.cc"),
        _rule("AveragePool", _POOL, "impl/pool_op_builder.cc"),
        _rule("MaxPool", _POOL, "impl/pool_op_builder.cc"),
        _rule("GlobalAveragePool", _POOL, "impl/pool_op_builder.cc"),
        _rule("GlobalMaxPool", _POOL, "impl/pool_op_builder.cc"),
        _rule("QLinearAveragePool", _POOL, "impl/pool_op_builder.cc", domain="com.microsoft"),
        _rule("Gemm", _GEMM, "impl/gemm_op_builder.cc", 7),
        _rule("MatMul", _GEMM, "impl/gemm_op_builder.cc"),
        _rule("QLinearMatMul", _GEMM, "impl/gemm_op_builder.cc"),
        _rule("BatchNormalization", _Spec(impl=_impl_batchnorm), "impl/batchnorm_op_builder.cc", 7),
        _rule("LRN", _Spec(FL2, impl=_impl_lrn), "impl/LRN_op_builder.cc"),
        _rule(
            "Concat", _Spec(qdq=True, io=_io_concat, impl=_impl_concat), "impl/concat_op_builder.cc"
        ),
        _rule(
            "Transpose",
            _Spec(FL2, qdq=True, io=_io_uint8_or_qdq, impl=_impl_transpose),
            "impl/transpose_op_builder.cc",
        ),
        _rule(
            "Reshape",
            _Spec(qdq=True, io=_io_float_or_qdq, impl=_impl_reshape),
            "impl/reshape_op_builder.cc",
            5,
        ),
        _rule("Flatten", _Spec(impl=_impl_flatten), "impl/flatten_op_builder.cc"),
        _rule("Squeeze", _Spec(FL2, impl=_impl_squeeze), _SQUEEZE),
        _rule("Unsqueeze", _Spec(impl=_impl_squeeze), "impl/unsqueeze_op_builder.cc"),
        _rule("Slice", _Spec(FL2, impl=_impl_slice), "impl/slice_op_builder.cc", 10),
        _rule("Split", _Spec(FL3, impl=_impl_split), "impl/split_op_builder.cc", 13),
        _rule("Gather", _Spec(FL3, impl=_impl_gather), "impl/gather_op_builder.cc"),
        _rule("Pad", _Spec(FL3, impl=_impl_pad), "impl/pad_op_builder.cc", 11),
        _rule("DepthToSpace", _Spec(impl=_impl_depthtospace), "impl/depthtospace_op_builder.cc"),
        _rule(
            "Softmax",
            _Spec(FL2, qdq=True, io=_io_softmax, impl=_impl_softmax),
            "impl/softmax_op_builder.cc",
        ),
        _rule(
            "Resize",
            _Spec(_resize_min_fl, qdq=True, io=_io_uint8_or_qdq, impl=_impl_resize),
            "impl/resize_op_builder.cc",
            11,
        ),
        _rule("ReduceMean", _Spec(FL2, impl=_impl_reduce_mean), "impl/reduction_op_builder.cc"),
        _rule(
            "QuantizeLinear",
            _Spec(FL3, io=_io_quantize),
            "impl/quantizelinear_op_builder.cc",
            max_opset=27,
        ),
        _rule(
            "DequantizeLinear",
            _Spec(io=_io_dequantize),
            "impl/dequantizelinear_op_builder.cc",
            max_opset=27,
        ),
    ]
)
"""Every op type the NNAPI EP has a builder for (op_builder_factory.cc), keyed (domain, op)."""

_BY_OP_TYPE: dict[str, OpRule] = {rule.op_type: rule for rule in RULES.values()}
_BUILDERS: dict[str, tuple[_Spec, OpRule]] = {
    op: (_SPECS[op], rule) for op, rule in _BY_OP_TYPE.items()
}
"""Op type -> (builder spec, rule): the one lookup per unit (units are judged by op type only)."""


def check_unit(unit: NodeUnit, graph: Graph, options: EpOptions | None = None) -> str | None:
    """NNAPI's verdict on a node unit: ``None`` when supported, else why not.

    The unit is judged by its target node (QDQ acceptance included). The uint8 Transpose/Resize/
    Concat/MaxPool rule is checked as "its input comes from a node NNAPI takes"; the exact
    same-partition condition is applied by the walk (:func:`groups`, which ``check`` uses).

    A unit of ``node_units(graph)`` is answered from the graph's verdicts, judged all at once on
    first use (callers ask for every unit in turn); any other unit is judged on its own.
    """
    options = options or EpOptions()
    state = _state(graph)
    last = state.last  # _graph_verdicts' first step, written out: this runs once per unit
    verdicts = (
        last[1]
        if last is not None and last[0] is options
        else _graph_verdicts(graph, options, state)
    )
    key = unit.target.index
    if state.targets.get(key) is unit:
        return verdicts[key]
    return _unit_verdict(unit, state, options)


def _unit_verdict(unit: NodeUnit, state: _GraphState, options: EpOptions) -> str | None:
    reason = _base_verdict(unit, state, options)
    if reason is None and _internal_quantized(unit, state):
        reason = _internal_quant_proxy(unit, state, options)
    return reason


def _base_verdict(unit: NodeUnit, state: _GraphState, options: EpOptions) -> str | None:
    """Everything but the in-partition uint8 rule (EP-wide checks, then the builder)."""
    return _graph_refusal(state.graph, options) or _builder_verdict(unit, state, options)


def _graph_refusal(graph: Graph, options: EpOptions) -> str | None:
    """The EP-wide refusals, which hold for every unit of the graph alike."""
    if "/" in graph.path:
        return "nodes inside If/Loop/Scan bodies are never taken by NNAPI"
    if options.android_api < MIN_API:
        return (
            f"NNAPI needs Android API {MIN_API} or newer; the target is API {options.android_api}"
        )
    return None


def _builder_verdict(unit: NodeUnit, state: _GraphState, options: EpOptions) -> str | None:
    op = unit.target.op_type
    if op not in _BUILDERS:
        return f"NNAPI has no builder for {unit.target.op_id}"
    # Straight to the builder: what its OpRule.check does, without a context object per unit.
    return _judge(op, _View(state, options, unit))


def _internal_quantized(unit: NodeUnit, state: _GraphState) -> bool:
    """helper.cc IsInternalQuantizedNodeUnit: a single uint8 Transpose/Resize/Concat/MaxPool."""
    node = unit.target
    return (
        unit.kind == "single"
        and node.op_type in _INTERNAL_QUANT_OPS
        and state.dtype(node.input(0)) == _UINT8
    )


def _internal_quant_inputs(node: Node) -> tuple[str, ...]:
    return node.inputs if node.op_type == "Concat" else node.inputs[:1]


def _internal_quant_proxy(unit: NodeUnit, state: _GraphState, options: EpOptions) -> str | None:
    graph = state.graph
    verdicts = _graph_verdicts(graph, options, state)
    index = _units_index(graph, state)
    for name in _internal_quant_inputs(unit.target):
        producer = graph.producers.get(name)
        target_of = index.get(producer.index) if producer else None
        if (
            producer is None
            or target_of is None
            or target_of.target.index != producer.index
            or producer.index not in verdicts
            or verdicts[producer.index] is not None
        ):
            return (
                f"{unit.target.op_type}: uint8 input '{name}' does not come from a node NNAPI "
                "takes; uint8 Transpose/Resize/Concat/MaxPool need their input computed in "
                "the same NNAPI partition (it carries no scale/zero point)"
            )
    return None


def check_node(ctx: NodeContext) -> str | None:
    """NNAPI's verdict on one node: its unit's verdict (DQ/Q nodes share their group's)."""
    unit = _unit_of(ctx.graph, ctx.node)
    verdicts = _graph_verdicts(ctx.graph, ctx.options)
    key = unit.target.index
    reason = verdicts[key] if key in verdicts else check_unit(unit, ctx.graph, ctx.options)
    if reason is None or key == ctx.node.index:
        return reason
    return f"part of the QDQ group around {unit.target.op_type} '{unit.target.name}': {reason}"


# --------------------------------------------------------------------------- per-graph state


NNAPI_GRAPH_KEY = "nnapi.graph"
"""The ``Graph.memo`` key of NNAPI's :class:`_GraphState`."""


def _state(graph: Graph) -> _GraphState:
    """The graph's lookups, units and verdicts, kept on the graph (``Graph.memo``)."""
    return graph.derived(NNAPI_GRAPH_KEY, _GraphState)


def _units_index(graph: Graph, state: _GraphState | None = None) -> dict[int, NodeUnit]:
    """Node index -> the unit holding it (node_units of the graph, cached per graph object)."""
    state = state or _state(graph)
    if state.units_index is None:
        state.units_index = {m.index: unit for unit in node_units(graph) for m in unit.nodes}
    return state.units_index


def _unit_of(graph: Graph, node: Node) -> NodeUnit:
    unit = _units_index(graph).get(node.index)
    return unit if unit is not None else NodeUnit(node)


def _graph_verdicts(
    graph: Graph, options: EpOptions, state: _GraphState | None = None
) -> dict[int, str | None]:
    """Target index -> verdict for every unit of ``graph``, computed once in graph order."""
    state = state or _state(graph)
    if state.last is not None and state.last[0] is options:
        return state.last[1]
    verdicts = state.verdicts.get(options)
    if verdicts is not None:
        state.last = (options, verdicts)
        return verdicts
    verdicts = state.verdicts[options] = {}  # registered first: the uint8 rule reads it
    state.last = (options, verdicts)
    # Graph order is topological: producers are judged before the uint8 rule asks about them.
    # The cyclic GC is paused because judging allocates per unit and each collection walks the
    # whole (large) graph view.
    units = node_units(graph)
    with gc_paused():
        _judge_units(units, state, options, verdicts)
    return verdicts


def unmemoized_verdicts(graph: Graph, options: EpOptions) -> dict[int, str | None]:
    """Target index -> verdict for every unit of ``graph``, judged from scratch: on a new state
    that is not kept on the graph, every builder run (no :func:`_plain_key` sharing). What the
    memoized :func:`check_unit` must agree with (the tests compare them)."""
    state = _GraphState(graph)
    verdicts = state.verdicts[options] = {}
    state.last = (options, verdicts)
    _judge_units(node_units(graph), state, options, verdicts, reuse_accepted=False)
    return verdicts


def _judge_units(
    units: list[NodeUnit],
    state: _GraphState,
    options: EpOptions,
    verdicts: dict[int, str | None],
    reuse_accepted: bool = True,
) -> None:
    """:func:`_unit_verdict` for each unit, in order, into ``verdicts`` (by target index).

    Made cheap for large graphs: the EP-wide refusal is checked once, and a plain single-node unit
    whose :func:`_plain_key` equals that of a unit already accepted is accepted without running its
    builder again (large graphs repeat the same ops on the same types and shapes: a 100,000-node
    Add/Relu chain has two keys). Refusals are not shared: their text names the unit's own values.
    ``reuse_accepted=False`` runs every builder (:func:`unmemoized_verdicts`).
    """
    targets = state.targets
    refusal = _graph_refusal(state.graph, options)
    accepted: set[tuple[Any, ...]] = set()
    for unit in units:
        index = unit.target.index
        targets[index] = unit
        if refusal:
            verdicts[index] = refusal
            continue
        key = _plain_key(unit, state) if reuse_accepted else None
        if key is not None and key in accepted:
            reason = None
        else:
            reason = _builder_verdict(unit, state, options)
            if reason is None and key is not None:
                accepted.add(key)
        if reason is None and _internal_quantized(unit, state):
            reason = _internal_quant_proxy(unit, state, options)
        verdicts[index] = reason


_KEY_SCALARS = (int, float, str)


def _plain_key(unit: NodeUnit, state: _GraphState) -> tuple[Any, ...] | None:
    """Everything the builders can read of a plain single-node unit, or ``None`` for other units.

    A plain unit (not QDQ, not a QLinear/DQ/Q node) is seen by the rules only through its op type,
    domain, since_version, attributes and output count, and per input through the value's element
    type and shape, or, for a constant or external initializer or a value of unknown type, through
    the value itself (its name: constants' contents are read, an unknown type is looked up via its
    producer). So two plain units with equal keys get the same acceptance. Keep it that way: a rule
    that reads anything else of a plain unit (a value's consumers, an output's type, the node name)
    must add it here. Units with attribute values other than numbers, strings and tuples of them
    (tensors) get no key.
    """
    node = unit.target
    if unit.kind != "single" or node.op_type in QUANT_IO_OPS:
        return None
    attrs = node.attributes
    attr_key: tuple[Any, ...] = ()
    if attrs:
        for value in attrs.values():
            if type(value) is tuple:
                if not all(type(x) in _KEY_SCALARS for x in value):
                    return None
            elif type(value) not in _KEY_SCALARS:
                return None
        attr_key = tuple(sorted(attrs.items()))
    types, by_name = state.types, state.read_by_name
    inputs: list[Any] = []
    for name in node.inputs:
        vt = types.get(name) if name else None
        if vt is None or not vt.dtype or name in by_name:
            inputs.append(name)  # "" for an absent input
        else:
            inputs.append((vt.dtype, vt.shape))
    return (
        node.op_type,
        node.domain,
        node.since_version,
        len(node.outputs),
        attr_key,
        tuple(inputs),
    )


# --------------------------------------------------------------------------- partitions


def discard(nodes: list[Node], graph: Graph) -> str | None:
    """Why NNAPI drops a formed partition, or ``None`` when it keeps it.

    helper.cc IsValidSupportedNodeGroup (a one-node Reshape/Flatten/Identity only copies data) and
    the EP's post-filter (a partition whose inputs are all constant initializers, or that has none).
    """
    if len(nodes) == 1 and nodes[0].op_type in LONE_DROPPED:
        return (
            f"a partition made of a single {nodes[0].op_type} only copies data; NNAPI leaves "
            "it to the CPU"
        )
    # Only the first non-constant input is needed, so the inputs are read lazily.
    if all(graph.is_constant(name) for name in partition_inputs(nodes)):
        return "every input of this partition is a constant; NNAPI drops such partitions"
    return None


def groups(
    graph: Graph,
    options: EpOptions | None = None,
    stop_ops: frozenset[str] = STOP_OPS,
    verdicts: Mapping[int, str | None] | None = None,
) -> list[tuple[list[Node], str | None]]:
    """Every group ORT forms for NNAPI, in ORT's order, each with why NNAPI drops it (or None).

    Replays GetCapability exactly: node units, stop ops, the in-partition uint8 rule (judged when
    the unit is reached, first answer cached as ORT does), then :func:`discard` per group (the
    group-closing callback and the all-constant-inputs post-filter; dropping a group does not
    change the walk, so judging afterwards is the same).

    ``verdicts`` (unit target index -> :func:`check_unit`'s answer), when the caller has them,
    spare judging every unit again: a unit that answer accepts passed every rule but the
    in-partition one, which only the walk can judge; one it refuses is refused here too.
    """
    options = options or EpOptions()
    if "/" in graph.path or options.android_api < MIN_API:
        return []
    state = _state(graph)
    units = node_units(graph)
    # Units the in-partition rule applies to; without any, no output needs tracking.
    internal = {u.target.index for u in units if _internal_quantized(u, state)}
    in_group: set[str] = set()
    cache: dict[int, bool] = {}

    def rules_pass(unit: NodeUnit) -> bool:
        key = unit.target.index
        if verdicts is not None:
            return key in verdicts and verdicts[key] is None
        return _base_verdict(unit, state, options) is None

    def supported(unit: NodeUnit) -> bool:
        key = unit.target.index
        if key not in cache:
            ok = rules_pass(unit)
            if ok and key in internal:
                ok = all(name in in_group for name in _internal_quant_inputs(unit.target))
            cache[key] = ok  # ORT keeps its first answer per node
        if cache[key]:
            in_group.update(unit.target.outputs)
        return cache[key]

    def closed(_group: list[Node]) -> bool:
        in_group.clear()  # helper.cc: outputs are tracked per partition node group
        return True

    formed = form_partitions(
        graph,
        supported if internal else rules_pass,
        units,
        stop_set(graph, stop_ops),
        on_group_closed=closed if internal else None,
        # no ep_type: NNAPI is asked first, before any node is assigned, and the EP an .ort file
        # saved per node is dropped when ORT loads it (graph.cc, Node::LoadFromOrtFormat)
    )
    return [(group, discard(group, graph)) for group in formed]


def partition_input_refusal(unit: NodeUnit, graph: Graph) -> str | None:
    """Why the exact walk refused a unit :func:`check_unit` accepts (None if that cannot be the
    reason): a uint8 Transpose/Resize/Concat/MaxPool whose input is not computed in the
    partition being formed (helper.cc IsInternalQuantizedNodeUnit; it has no scale/zero point)."""
    if not _internal_quantized(unit, _state(graph)):
        return None
    names = ", ".join(f"'{n}'" for n in _internal_quant_inputs(unit.target))
    return (
        f"{unit.target.op_type}: uint8 input {names} is not computed in the same NNAPI "
        "partition; uint8 Transpose/Resize/Concat/MaxPool carry no scale/zero point of their own"
    )


def partitions(
    graph: Graph,
    options: EpOptions | None = None,
    stop_ops: frozenset[str] = STOP_OPS,
) -> list[list[Node]]:
    """The partitions NNAPI keeps for ``graph``, in ORT's order, each in graph order."""
    return [group for group, dropped in groups(graph, options, stop_ops) if dropped is None]


SPEC = EpSpec(
    ep_id="nnapi",
    display_name="NNAPI",
    ort_source_version=ORT_SOURCE_VERSION,
    check_node=check_node,
    compiles=True,
    stop_ops=STOP_OPS,
    discard=discard,
    subgraph_policy="nodes inside If/Loop/Scan bodies are never taken (GetCapability returns "
    "nothing for subgraphs); the control-flow nodes themselves have no builder",
    takes_subgraph_nodes=False,
    groups_qdq_units=True,
)

__all__ = [
    "EP_TYPE",
    "ORT_SOURCE_VERSION",
    "QDQ_TYPES",
    "RULES",
    "SPEC",
    "STOP_OPS",
    "UnitContext",
    "check_node",
    "check_unit",
    "discard",
    "groups",
    "partition_input_refusal",
    "partitions",
]
