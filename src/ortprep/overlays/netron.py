"""A Netron-friendly annotated copy of the analysed graph.

Netron shows a node's ``doc_string`` as its description and each ``metadata_props`` entry as a
row of the node's properties (lutzroeder/netron, ``source/onnx.js``, ``onnx.Node``:
``this.description = node.doc_string``; ``this.metadata`` from ``node.metadata_props``, every key
but ``input_names``). So each node gets, per EP checked, one line in its ``doc_string`` (taken in
partition N / refused: reason / supported but left to the CPU: reason) and machine-readable
``ortprep.<ep>.partition`` / ``.supported`` / ``.reason`` entries. Weights are left out as in the
analysed copy (:mod:`ortprep.core.weightless`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

    from ortprep.stages.check import CheckResult, NodeResult

# NodeProto.metadata_props is part of ONNX IR version 10 (onnx 1.16); older files cannot carry it.
_NODE_METADATA_IR = 10


def describe(ep: str, n: NodeResult) -> str:
    if n.partition is not None:
        return f"{ep}: taken, partition {n.partition}"
    if n.supported:
        return f"{ep}: supported but left to the CPU: {n.reason}"
    return f"{ep}: refused: {n.reason}"


def annotated(proto: onnx.ModelProto, result: CheckResult) -> onnx.ModelProto:
    """``proto`` (the analysed copy) with every node annotated; in place, returned."""
    from ortprep.overlays.nodes import matched

    eps = [r.ep for r in result.eps]
    for _, node, results in matched(proto, result.eps):
        lines = [describe(ep, n) for ep, n in zip(eps, results, strict=True)]
        node.doc_string = f"ortprep check ({result.analyzed} graph):\n" + "\n".join(lines)
        del node.metadata_props[:]
        for ep, n in zip(eps, results, strict=True):
            for key, value in (
                ("partition", "" if n.partition is None else str(n.partition)),
                ("supported", "true" if n.supported else "false"),
                ("reason", n.reason or ""),
            ):
                entry = node.metadata_props.add()
                entry.key, entry.value = f"ortprep.{ep}.{key}", value
    proto.ir_version = max(proto.ir_version, _NODE_METADATA_IR)
    return proto


def write(result: CheckResult, analyzed: Path, target: Path) -> Path:
    """The annotated copy of ``analyzed`` (check's weightless graph) at ``target``."""
    import onnx

    from ortprep.core.files import write_bytes

    proto = onnx.load(str(analyzed), load_external_data=False)
    write_bytes(target, annotated(proto, result).SerializeToString())
    return target
