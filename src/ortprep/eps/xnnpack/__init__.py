"""XNNPACK EP rules: which nodes ORT's XNNPACK EP claims, and why not.

Restates ``onnxruntime/core/providers/xnnpack/`` (see :data:`ORT_SOURCE_VERSION` and
``docs/eps/xnnpack.md``); every rule names the ORT file it comes from.

How ORT decides (``xnnpack_execution_provider.cc`` GetCapability):

- the per-op checker runs once per node unit, only for ``ai.onnx`` nodes, and does **not** consult
  the kernel registry, so a few nodes are claimed and then fail session creation (opset-22
  Conv/ConvTranspose/MaxPool/AveragePool, Gemm-1/6, fp16 Softmax without fp16 kernels). ortprep
  reports those as refusals that name the failure;
- a QDQ unit (DQ -> op -> Q) is judged on its target op with the *quantized* tensors and is claimed
  or refused as a whole (:func:`check_unit`); a lone DequantizeLinear/QuantizeLinear is never
  claimed;
- Relu and Clip are claimed only when fused into the Conv, MaxPool or AveragePool they directly
  follow (:func:`check_node` models the fusion on the original graph);
- XNNPACK has static kernels (``compiles=False``): a claimed node is never dropped because of its
  neighbours, and there are no stop ops or partition discards.

Constants read here (weights, Clip bounds, Resize scales) are the current graph's initializers;
outer-scope initializers seen from inside an If/Loop/Scan body are not visible to the graph view.

Where things are: :mod:`.constants` (the ORT source state, the fp16 build default), :mod:`.checks`
(checks the op rules share), :mod:`.op_rules` (each kernel's own conditions), :mod:`.rules` (the
rule table ``RULES``, the Relu/Clip fusion and the per-node verdict) and :mod:`.qdq` (the verdict
on a QDQ unit). To add an op: its conditions in ``op_rules``, one ``OpRule(...)`` line in ``RULES``
(and, if XNNPACK fuses a quantized kernel for it, an entry in ``qdq``'s ``_QDQ_TARGETS``).
"""

from __future__ import annotations

from ortprep.eps.base import EpSpec
from ortprep.eps.xnnpack.constants import FP16_SUPPORTED, ORT_SOURCE_VERSION, fp16_supported
from ortprep.eps.xnnpack.qdq import QuantIO, UnitIO, check_unit, quant_type, quantized_view
from ortprep.eps.xnnpack.rules import RULES, check_node

SPEC = EpSpec(
    ep_id="xnnpack",
    display_name="XNNPACK",
    ort_source_version=ORT_SOURCE_VERSION,
    check_node=check_node,
    compiles=False,
    stop_ops=frozenset(),
    discard=None,
    subgraph_policy="XNNPACK claims nodes inside If/Loop/Scan bodies under the same rules",
    takes_subgraph_nodes=True,
    groups_qdq_units=True,
)

__all__ = [
    "FP16_SUPPORTED",
    "ORT_SOURCE_VERSION",
    "RULES",
    "SPEC",
    "QuantIO",
    "UnitIO",
    "check_node",
    "check_unit",
    "fp16_supported",
    "quant_type",
    "quantized_view",
]
