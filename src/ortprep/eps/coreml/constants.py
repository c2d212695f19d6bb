"""CoreML EP-wide constants: the ORT source state, model formats, limits, trivial ops."""

from __future__ import annotations

from collections.abc import Callable

from ortprep.eps.base import NodeContext

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

INT32 = 6  # TensorProto.INT32, the `to` of the Cast an ArgMax folds
ONNX_TYPES = {1: "float32", 6: "int32", 7: "int64", 9: "bool", 10: "float16"}

Predicate = Callable[[NodeContext, bool], str | None]
"""``(ctx, ml) -> reason``: ``ml`` is True when the MLProgram format is in effect."""
