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

Where things are: :mod:`.constants`, :mod:`.facts` (per-graph facts on ``Graph.memo`` and the
lookups rules use), :mod:`.input_types`, the builders' own conditions by op family
(:mod:`.conv_pool_norm`, :mod:`.tensor_ops`, :mod:`.resize`) and :mod:`.rules` (the rule table
``OPS``: add an op there, with its conditions in the family module; the EP-wide rules, the
per-node verdict, the partitions CoreML drops).
"""

from __future__ import annotations

from ortprep.eps.base import EpSpec
from ortprep.eps.coreml.constants import (
    BOTH,
    ML,
    ML_ONLY,
    NN,
    NN_ONLY,
    ORT_SOURCE_VERSION,
    TRIVIAL_OPS,
)
from ortprep.eps.coreml.rules import (
    FORMATS,
    MLPROGRAM_RULES,
    NEURALNETWORK_RULES,
    OPS,
    CoreMLOp,
    Format,
    check_node,
    discard,
)


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
    if model_format not in FORMATS:
        raise ValueError(f"unknown CoreML model format {model_format!r} (mlprogram, neuralnetwork)")
    fmt = Format(model_format, require_static_input_shapes, enable_on_subgraphs)
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
