"""Verdicts against ORT's own ``PartitioningInfo.suitability()``.

Each model is a chain of Relu nodes (every EP takes them) split into partitions by Hardmax nodes
(no EP takes them), with as many Hardmax nodes as it takes to put the share of nodes taken just
below, on, or just above 50 % and 75 %. Our verdict, computed by ``check`` on the model, must be
the one ORT's usability checker gives for the same partitions and nodes: its class is imported
from the installed onnxruntime wheel (``onnxruntime/tools/mobile_helpers/usability_checker.py``),
so these tests compare with ORT's code, not with a restatement of it.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from models import save
from ortprep.core.inputs import open_model
from ortprep.eps.base import EpOptions
from ortprep.stages import check

usability = pytest.importorskip("onnxruntime.tools.mobile_helpers.usability_checker")

COMPILING = ("nnapi", "coreml-mlprogram", "coreml-neuralnetwork")
TOTAL = 100
# shares of nodes taken, in %: just below, on and just above each of ORT's thresholds
TAKEN = (49, 50, 51, 74, 75, 76)


def ort_verdict(partitions: int, taken: int, total: int) -> str:
    """What ORT's usability checker says for these counts (its own code)."""
    info = usability.PartitioningInfo(total, taken, partitions, None, [], set(), 0, 0, 0, set())
    return info.suitability().name.lower()


# 80, 5 and 5 Softmax nodes (taken by NNAPI and XNNPACK) after which a Hardmax (taken by none)
# ends the run: three partitions, the largest over 75 % of the nodes
SPLIT_80_5_5 = (["Softmax"] * 80 + ["Hardmax"]) + (["Softmax"] * 5 + ["Hardmax"]) * 2


def op_chain(ops: list[str], batch: int | str = 1) -> onnx.ModelProto:
    """One node per op of ``ops``, each reading the one before, from x to y ([batch, 8])."""
    nodes = []
    prev = "x"
    for i, op in enumerate(ops):
        out = "y" if i == len(ops) - 1 else f"v{i}"
        nodes.append(helper.make_node(op, [prev], [out], name=f"{op.lower()}_{i}"))
        prev = out
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 8])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def split_chain(partitions: int, taken: int, total: int) -> onnx.ModelProto:
    """``taken`` Relu nodes in ``partitions`` runs, separated (and followed) by Hardmax nodes
    up to ``total`` nodes."""
    sizes = [taken // partitions + (1 if i < taken % partitions else 0) for i in range(partitions)]
    blockers = total - taken
    # one Hardmax between two runs, the rest at the end of the chain
    between = [1] * (partitions - 1)
    tail = blockers - sum(between)
    assert tail >= 0
    ops: list[str] = []
    for i, size in enumerate(sizes):
        ops += ["Relu"] * size
        ops += ["Hardmax"] * (between[i] if i < len(between) else tail)
    return onnx.shape_inference.infer_shapes(op_chain(ops))


@pytest.mark.parametrize("ep", COMPILING)
@pytest.mark.parametrize("partitions", (1, 2, 3))
@pytest.mark.parametrize("taken", TAKEN)
def test_verdict_is_ort_suitability(tmp_path: Path, ep: str, partitions: int, taken: int) -> None:
    model = open_model(save(split_chain(partitions, taken, TOTAL), tmp_path / "m.onnx"))
    outcome = check.evaluate(model, ep, EpOptions())[0]
    # the model is what the test means: these partitions, these nodes taken
    assert (len(outcome.partitions), outcome.nodes_taken, outcome.nodes_total) == (
        partitions,
        taken,
        TOTAL,
    )
    assert outcome.verdict == ort_verdict(partitions, taken, TOTAL)


@pytest.mark.parametrize("partitions", range(5))
@pytest.mark.parametrize("total", (1, 3, 4, 7, 100, 1001))
def test_rule_matches_ort_on_every_count(partitions: int, total: int) -> None:
    for taken in range(total + 1):
        if partitions == 0 and taken:
            continue  # no partition holds no node
        assert check.ort_suitability(partitions, taken, total) == ort_verdict(
            partitions, taken, total
        ), (partitions, taken, total)


def test_largest_partition_alone_no_longer_decides(tmp_path: Path) -> None:
    """3 partitions, the largest over 75 % of the nodes: ORT says no (the old rule said yes)."""
    # Softmax: taken by NNAPI and by XNNPACK (which has no standalone Relu kernel)
    proto = onnx.shape_inference.infer_shapes(op_chain(SPLIT_80_5_5))
    model = open_model(save(proto, tmp_path / "m.onnx"))
    outcome, _, _, _ = check.evaluate(model, "nnapi", EpOptions())
    assert len(outcome.partitions) == 3 and outcome.verdict == "no"
    assert outcome.largest_partition_share == pytest.approx(80 / 93)
    # XNNPACK keeps ortprep's share rule: 90 of 93 nodes run
    xnn = check.evaluate(model, "xnnpack", EpOptions())[0]
    assert xnn.nodes_taken == 90 and xnn.verdict == "yes"


def test_what_if_and_json_follow_ort(tmp_path: Path) -> None:
    """The what-if (shapes fixed) is judged by the same rule; the JSON carries the largest
    partition's share and which rule made each verdict."""
    ops = ["Softmax"] * 40 + ["Hardmax"] + ["Softmax"] * 40 + ["Hardmax"] + ["Softmax"] * 10
    path = save(op_chain(ops, batch="N"), tmp_path / "dyn.onnx")
    result = check.run(path, check.CheckOptions(eps=("nnapi", "xnnpack"))).to_dict()
    nnapi, xnn = result["eps"]
    assert nnapi["verdict"] == "no" and nnapi["nodes_taken"] == 0  # dynamic shapes
    fixed = nnapi["if_shapes_fixed"]
    # 90 of 92 nodes in 3 partitions: ORT says no (the largest alone, 43 %, said no too; the two
    # largest, 87 %, made it "maybe" before)
    assert fixed["partitions"] == 3 and fixed["nodes_taken"] == 90
    assert fixed["verdict"] == ort_verdict(3, 90, 92) == "no"
    assert fixed["largest_partition_share"] == round(40 / 92, 4)
    assert nnapi["verdict_rule"] == check.ORT_RULE
    assert xnn["verdict_rule"] == check.SHARE_RULE and xnn["verdict"] == "yes"
    assert "suitability()" in result["thresholds"] and "ortprep's own rule" in result["thresholds"]


def test_prepare_does_not_recommend_an_ep_that_splits_the_model(tmp_path: Path) -> None:
    """NNAPI would take 90 of 93 nodes, in 3 partitions: ORT says no, so ``prepare`` neither
    ships the model "with NNAPI" nor says NNAPI takes too little of it."""
    from ortprep.core.inputs import resolve_inputs
    from ortprep.pipeline import PrepareOptions, prepare

    src = save(op_chain(SPLIT_80_5_5), tmp_path / "split.onnx")
    options = PrepareOptions(target="android", eps=("nnapi",), bench_runs=1, bench_warmup=0)
    result = prepare(resolve_inputs(src), tmp_path / "out", options).to_dict()
    model = result["models"][0]
    checked = [e for c in model["checks"] for e in c["eps"] if e["ep"] == "nnapi"]
    assert checked and all(e["verdict"] == "no" for e in checked)
    assert all(e["partitions"] == 3 and e["largest_partition_share"] > 0.75 for e in checked)
    rec = model["recommendation"]
    assert "NNAPI" not in rec["headline"]
    assert "nnapi" not in rec["eps"]
    assert any("in 3 partitions, verdict no" in w for w in rec["why"]), rec["why"]
