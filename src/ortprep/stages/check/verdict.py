"""The verdict on an EP's partitions: ORT's ``suitability()`` for the EPs that compile what they
take, ortprep's share rule for XNNPACK."""

from __future__ import annotations

# ORT's verdict for the EPs that compile what they take (NNAPI, CoreML) is
# PartitioningInfo.suitability() in onnxruntime/tools/mobile_helpers/usability_checker.py, on
# the share of all nodes (main graph and subgraphs) that lie in partitions and the number of
# partitions (main graph and subgraphs): 1 partition: over 75 % yes, over 50 % maybe, else no;
# 2 partitions: over 75 % maybe, else no; 0 or 3 and more: no (the device copies between
# partitions cost more than the NPU gains). Percentages are compared strictly, as there.
ORT_YES_ONE = 75
ORT_MAYBE_ONE = 50
ORT_MAYBE_TWO = 75
# XNNPACK runs static kernels on the CPU (no device copy): ortprep's own rule on the share of
# nodes it runs, not ORT's.
SHARE_YES = 75
SHARE_MAYBE = 50

ORT_RULE = "ORT's suitability()"
SHARE_RULE = "ortprep's share rule (XNNPACK)"


def ort_suitability(partitions: int, taken: int, total: int) -> str:
    """ORT's ``PartitioningInfo.suitability()`` (usability_checker.py) on ``taken`` of ``total``
    nodes in ``partitions`` partitions, the percentage computed and compared as there."""
    if total == 0:
        return "no"  # ORT divides by zero here; nothing to take is no
    pct = taken / total * 100
    if partitions == 1:
        return "yes" if pct > ORT_YES_ONE else "maybe" if pct > ORT_MAYBE_ONE else "no"
    if partitions == 2:
        return "maybe" if pct > ORT_MAYBE_TWO else "no"
    return "no"


def share_verdict(taken: int, total: int) -> str:
    """ortprep's rule for EPs with static per-node kernels (XNNPACK): nothing is compiled and
    no tensor is copied to a device, so only the share of nodes they run counts: over 75 %: yes;
    over 50 %: maybe; otherwise no."""
    pct = taken / total * 100 if total else 0.0
    return "yes" if pct > SHARE_YES else "maybe" if pct > SHARE_MAYBE else "no"
