"""NNAPI EP-wide constants: the ORT source state, feature levels, op sets the rules share."""

from __future__ import annotations

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

QLINEAR_SINGLE = frozenset(
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
INTERNAL_QUANT_OPS = frozenset({"Transpose", "Resize", "Concat", "MaxPool"})
FLOAT = "float32"
UINT8 = "uint8"
FLT_MAX = 3.4028234663852886e38


def api_name(level: int) -> str:
    return f"NNAPI feature level {level - 26} (Android API {level})"
