"""The note on an ``.ort`` file's contrib ops says what each EP's own rules decided about them.

A Fixed-style file of a Conv+BN+Relu CNN holds ``com.microsoft:FusedConv`` nodes (one of them
with a residual sum input). CoreML MLProgram takes FusedConv without that input (ORT's
FusedConvTest* cases), CoreML NeuralNetwork and NNAPI refuse it: each note must agree with the
same section's node results, never "cannot take" for nodes the EP takes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from models import conv_bn_relu, save
from ortprep.core.runtime import SessionRecipe, create_session
from ortprep.stages import check


@pytest.fixture(scope="module")
def fixed_ort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("contrib")
    src = save(conv_bn_relu(), folder / "cnn.onnx")
    dst = folder / "cnn.ort"
    create_session(src, SessionRecipe(level="all", save_to=dst, save_format="ORT"))
    return dst


def _reports(path: Path) -> dict[str, dict]:
    eps = ("nnapi", "coreml-mlprogram", "coreml-neuralnetwork", "xnnpack")
    result = check.run(path, check.CheckOptions(eps=eps)).to_dict()
    return {e["ep"]: e for e in result["eps"]}


def _contrib_note(report: dict) -> str:
    notes = [n for n in report["notes"] if "contrib ops" in n]
    assert len(notes) == 1, report["notes"]
    return notes[0]


def test_contrib_note_follows_each_eps_rules(fixed_ort: Path) -> None:
    reports = _reports(fixed_ort)
    for ep, report in reports.items():
        fused = [n for n in report["nodes"] if n["op"] == "FusedConv"]
        assert fused, ep
        note = _contrib_note(report)
        taken = sum(1 for n in fused if n["partition"] is not None)
        refused = sum(1 for n in fused if not n["supported"])
        assert "cannot take" not in note
        if taken:
            assert f"{taken} FusedConv" in note.split("takes" if ep != "xnnpack" else "runs")[1]
        if refused:
            assert f"refuses {refused} FusedConv" in note
        if ep != "xnnpack" and taken < len(fused):
            assert "with_runtime_opt" in note
            assert "Runtime-style" in report["next_step"]
    ml = reports["coreml-mlprogram"]
    ml_fused = [n for n in ml["nodes"] if n["op"] == "FusedConv"]
    # MLProgram takes the FusedConv nodes without a residual input, refuses the one with Z (ORT's
    # FusedConvTestRelu / FusedConvWithZInputNotSupported): the note says both, with the reason
    assert sum(n["partition"] is not None for n in ml_fused) == 2
    assert "takes 2 FusedConv; refuses 1 FusedConv" in _contrib_note(ml)
    assert "sum input Z" in _contrib_note(ml)
    nn_note = _contrib_note(reports["coreml-neuralnetwork"])
    assert f"refuses {len(ml_fused)} FusedConv" in nn_note and "MLProgram only" in nn_note
    assert "refuses 3 FusedConv" in _contrib_note(reports["nnapi"])
