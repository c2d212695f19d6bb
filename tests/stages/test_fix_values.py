"""fix_values: the values a fix-shapes suggestion uses come from the model (metadata, sibling
dims), the user, or are said to be guesses; and every sentence names the real inputs and dims."""

from __future__ import annotations

import json
import shlex

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from models import dynamic_cnn, save
from ortprep.core.graph import ValueType
from ortprep.core.onnx_header import read_interface
from ortprep.stages.check.explain import named_reason
from ortprep.stages.fix_values import for_file, suggest


def _detector(metadata: dict[str, str] | None = None) -> onnx.ModelProto:
    """A dynamic detector: images [batch, 3, height, width] -> boxes [batch, 6, anchors]."""
    w = np.random.default_rng(0).standard_normal((6, 3, 3, 3)).astype(np.float32) * 0.3
    nodes = [
        helper.make_node("Conv", ["images", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Reshape", ["r", "shape"], ["boxes"], name="flat"),
    ]
    graph = helper.make_graph(
        nodes,
        "detector",
        [
            helper.make_tensor_value_info(
                "images", TensorProto.FLOAT, ["batch", 3, "height", "width"]
            )
        ],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["batch", 6, "anchors"])],
        [
            onnx.numpy_helper.from_array(w, "w"),
            onnx.numpy_helper.from_array(np.array([0, 6, -1], np.int64), "shape"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    return model


ULTRALYTICS = {"imgsz": "[320, 320]", "batch": "1", "stride": "32", "task": "detect"}


def test_metadata_sizes_are_the_models_own_not_guesses(tmp_path):
    path = save(_detector(ULTRALYTICS), tmp_path / "det.onnx")
    fv = for_file(path)
    assert fv.dims == {"batch": 1, "height": 320, "width": 320}
    assert not fv.guesses
    assert {v.source for v in fv.values} == {"metadata"}
    text = " ".join(fv.explain())
    assert "height=320 (from its metadata imgsz=[320, 320])" in text
    assert "a 320×320-only model" in text
    assert "Guessed" not in text


def test_without_metadata_the_sizes_are_guesses_and_say_so(tmp_path):
    path = save(_detector(), tmp_path / "det.onnx")
    fv = for_file(path)
    assert fv.dims == {"batch": 1, "height": 640, "width": 640}  # spatial outputs: a detector
    assert [v.name for v in fv.guesses] == ["height", "width"]
    text = " ".join(fv.explain())
    assert "Guessed, the model does not say: height=640, width=640" in text
    assert "--fix-dim height=VALUE" in text
    assert "a 640×640-only model" in text
    classifier = for_file(save(dynamic_cnn(), tmp_path / "cls.onnx"))
    assert classifier.dims == {"N": 1, "H": 224, "W": 224}


def test_a_size_the_user_passes_wins_and_the_other_side_follows_as_a_guess():
    x = ValueType("x", "float32", ("N", 3, "H", "W"))
    fv = suggest([x], user={"H": 96})
    by_name = {v.name: v for v in fv.values}
    assert (by_name["H"].value, by_name["H"].source) == (96, "user")
    assert (by_name["W"].value, by_name["W"].source, by_name["W"].guess) == (96, "equal", True)
    assert "assumed square" in by_name["W"].why


def test_a_static_sibling_fixes_the_same_named_dim():
    ids = ValueType("input_ids", "int64", ("batch", "seq"))
    mask = ValueType("attention_mask", "int64", ("batch", 128))
    out = ValueType("logits", "float32", ("batch", "seq", 2))
    fv = suggest([ids, mask], [out])
    assert fv.dims == {"batch": 1, "seq": 128}
    seq = next(v for v in fv.values if v.name == "seq")
    assert seq.source == "sibling" and not seq.guess
    assert "'attention_mask' has 128 where 'input_ids' has 'seq'" in seq.why
    assert "only sequences of exactly that length" in " ".join(fv.explain())


def test_sequence_metadata_and_a_metadata_key_named_like_the_dim():
    ids = ValueType("input_ids", "int64", ("batch", "tokens"))
    assert suggest([ids], metadata={"max_seq_len": "256"}).dims == {"batch": 1, "tokens": 256}
    assert suggest([ids], metadata={"tokens": "64"}).dims == {"batch": 1, "tokens": 64}


def test_a_name_shared_by_batch_and_image_sides_fixes_the_input_whole():
    """Exporters name unknown dims '?': --fix-dim ?=1 would make a 1x1 image."""
    x = ValueType("x", "float32", ("?", 3, "?", "?"))
    fv = suggest([x])
    assert fv.dims == {}
    assert fv.inputs == {"x": (1, 3, 224, 224)}
    assert "--fix-input x=1,3,VALUE,VALUE" in " ".join(fv.explain())
    unnamed = suggest([ValueType("audio", "float32", (None, None))])
    assert unnamed.inputs == {"audio": (1, 16000)}


def test_the_interface_reader_matches_onnx_and_skips_initializer_inputs(tmp_path):
    model = _detector(ULTRALYTICS)
    model.graph.input.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, [6, 3, 3, 3]))
    path = save(model, tmp_path / "det.onnx")
    found = read_interface(path)
    assert [v.name for v in found.inputs] == ["images"]  # "w" has an initializer
    assert found.inputs[0].shape == ("batch", 3, "height", "width")
    assert [(v.name, v.shape) for v in found.outputs] == [("boxes", ("batch", 6, "anchors"))]
    assert found.metadata == ULTRALYTICS
    (tmp_path / "bad.onnx").write_bytes(b"\x0a\xff\xff\xff\xff\x0f")
    with pytest.raises(ValueError, match="not a well-formed"):
        read_interface(tmp_path / "bad.onnx")
    assert for_file(tmp_path / "bad.onnx").values == ()  # advice only: nothing to suggest


def test_check_what_if_and_fix_command_use_the_models_metadata(cli, tmp_path):
    path = save(_detector(ULTRALYTICS), tmp_path / "det.onnx")
    doc = cli("check", path, "--ep", "nnapi", "--json").json()
    assert doc["what_if_dims"] == {"batch": 1, "height": 320, "width": 320}
    args = shlex.split(doc["fix_command"])
    assert args[args.index("--fix-dim") :] == [
        "--fix-dim",
        "batch=1",
        "--fix-dim",
        "height=320",
        "--fix-dim",
        "width=320",
    ]


def test_a_grouped_reason_names_the_real_values():
    members = [
        ("input 'x' has dynamic dimension 'N'; NNAPI needs fixed shapes", 1),
        ("input 'c1' has dynamic dimension 'N'; NNAPI needs fixed shapes", 1),
        ("input 'r1' has dynamic dimension 'H'; NNAPI needs fixed shapes", 1),
        ("input 'c2' has dynamic dimension 'N'; NNAPI needs fixed shapes", 1),
        ("input 's2' has dynamic dimension 'N'; NNAPI needs fixed shapes", 1),
    ]
    generic = "input '…' has dynamic dimension '…'; NNAPI needs fixed shapes"
    said = named_reason(generic, members)
    assert said == (
        "input 'x', 'c1', 'r1' or 2 others has dynamic dimension 'N' or 'H'; "
        "NNAPI needs fixed shapes"
    )
    assert named_reason(generic, members[:1]) == members[0][0]
    formula = "'floor(floor(floor(height/2 - 1/2)/2)/2) + 1)*(floor(floor(width/2)))'"
    long = [
        (f"input 'a' has dynamic dimension {formula}", 1),
        ("input 'b' has dynamic dimension 'N'", 1),
    ]
    cut = named_reason("input '…' has dynamic dimension '…'", long)
    assert "'floor(floor(floor(height/2 - 1/2)/2)/2) + 1)*…' or 'N'" in cut


def test_prepare_headlines_name_the_input_and_dim_and_the_fix_says_its_guesses(cli, tmp_path):
    src = save(dynamic_cnn(), tmp_path / "src" / "dyn.onnx")
    out = tmp_path / "out"
    r = cli("prepare", src, "-o", out, "--no-bench", "--json")
    assert r.code == 0, r.stderr
    (m,) = json.loads((out / "manifest.json").read_text())["models"]
    rec = m["recommendation"]
    everything = json.dumps(m, ensure_ascii=False)
    assert "'…'" not in everything
    obstacle = next(w for w in rec["why"] if w.startswith("The main obstacle"))
    assert "input 'x'" in obstacle and "dimension 'N'" in obstacle
    assert "the model's dynamic input(s) 'x' [N, 3, H, W]" in obstacle
    step = next(s for s in rec["next_steps"] if s.startswith("Fix the dynamic input shapes"))
    assert "--fix-dim N=1 --fix-dim H=224 --fix-dim W=224" in step
    assert "Guessed, the model does not say: H=224, W=224" in step
    assert "a 224×224-only model" in step
    assert m["fix_shapes"]["guesses"] == ["H", "W"]
    html = (out / "report.html").read_text()
    assert "'…'" not in html and "&#39;…&#39;" not in html
    assert "N=1, H=224 (a guess), W=224 (a guess)" in html


def test_prepare_times_a_model_at_the_size_its_metadata_gives(tmp_path):
    """Not at the generated inputs' default: a 64x48 detector is timed at 64x48 (guesses are
    never used for timing)."""
    import ortprep

    path = save(_detector({"imgsz": "[64, 48]"}), tmp_path / "src" / "det.onnx")
    result = ortprep.prepare(path, tmp_path / "out", runs=2)
    (m,) = result.models
    assert m.bench, m.problems
    assert all(b.metrics["input_shapes"] == {"images": [1, 3, 64, 48]} for b in m.bench)
    html = (tmp_path / "out" / "report.html").read_text()
    assert 'inputs <span class="mono">images [1×3×64×48]</span>' in html
    guessed = ortprep.prepare(
        save(_detector(), tmp_path / "g" / "det.onnx"), tmp_path / "o2", runs=2
    )
    (g,) = guessed.models
    assert all(b.metrics["input_shapes"]["images"][2:] != [640, 640] for b in g.bench)


def test_prepare_benchmarks_on_the_inputs_the_verification_found(tmp_path):
    """Generated ids up to 3 break a 2-word embedding's Gather; the verification's search found
    ids that run, and the benchmark uses those (same generator, same seed), not its defaults."""
    import ortprep
    from real_shape_models import embedding

    path = save(embedding(vocab=2), tmp_path / "src" / "emb.onnx")
    result = ortprep.prepare(path, tmp_path / "out", runs=2)
    (m,) = result.models
    assert not [p for p in m.problems if p.startswith("bench")], m.problems
    assert {b.role for b in m.bench} >= {"original", "fixed", "runtime"}
    fixed = m.file("ort", "fixed")
    used = fixed.artifact.verification[0].inputs
    assert all(b.metrics["input_shapes"] == {i.name: list(i.shape) for i in used} for b in m.bench)


def _audio() -> onnx.ModelProto:
    """An audio frontend's shape: waveforms [batch_size, N] -> Relu."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["waveforms"], ["y"], name="relu")],
        "audio",
        [helper.make_tensor_value_info("waveforms", TensorProto.FLOAT, ["batch_size", "N"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch_size", "N"])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_checks_fix_command_is_followed_by_the_values_that_are_guesses(cli, tmp_path):
    """One short line after the printed command names each guessed value, why it was chosen
    and the flag for the user's own size; the batch (1) and the model's own sizes are no
    guesses, and a size the user passed is not said again."""
    src = save(_audio(), tmp_path / "audio.onnx")
    note = "N=16000 is a guess (one second of 16 kHz audio); pass your size with --fix-dim N=VALUE"
    doc = cli("check", src, "--ep", "nnapi", "--json").json()
    assert doc["fix_guesses"] == note
    text = " ".join(cli("check", src, "--ep", "nnapi").stdout.split())
    assert f"--fix-dim batch_size=1 --fix-dim N=16000 {note}" in text
    given = cli("check", src, "--ep", "nnapi", "--fix-dim", "batch_size=1", "--json").json()
    assert given["fix_guesses"] == note  # the user fixed the batch only: N is still guessed
    images = cli("check", save(dynamic_cnn(), tmp_path / "cnn.onnx"), "--json").json()
    every_ep = cli("check", tmp_path / "cnn.onnx", "--ep", "all")
    assert " ".join(every_ep.stdout.split()).count("fix-shapes") >= 2  # several EPs suggest it
    assert every_ep.stdout.count("are guesses") == 1  # the guesses are said once
    assert images["fix_guesses"] == (
        "H=224, W=224 are guesses (a typical classifier input size); pass your sizes with "
        "--fix-dim H=VALUE --fix-dim W=VALUE"
    )
    own = cli("check", save(_detector(ULTRALYTICS), tmp_path / "det.onnx"), "--json").json()
    assert own["fix_command"] and own["fix_guesses"] == ""
