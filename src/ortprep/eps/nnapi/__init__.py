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

Where things are: :mod:`.constants` (EP-wide settings), :mod:`.view` (what the rules read of a
graph and a unit), :mod:`.checks` (checks builders share), :mod:`.op_builders` (each builder's own
conditions), :mod:`.rules` (the rule table and how one builder judges a unit), :mod:`.verdicts`
(per-unit verdicts, memoized on the graph) and :mod:`.partitions` (ORT's walk for NNAPI). To add
an op: its conditions in ``op_builders``, one ``_rule(...)`` line in ``rules``.
"""

from __future__ import annotations

from ortprep.eps.base import EpSpec
from ortprep.eps.nnapi.constants import EP_TYPE, ORT_SOURCE_VERSION, QDQ_TYPES, STOP_OPS
from ortprep.eps.nnapi.partitions import discard, groups, partition_input_refusal, partitions
from ortprep.eps.nnapi.rules import RULES
from ortprep.eps.nnapi.verdicts import check_node, check_unit, unmemoized_verdicts
from ortprep.eps.nnapi.view import UnitContext

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
    "unmemoized_verdicts",
]
