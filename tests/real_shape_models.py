"""Models shaped like real ones whose synthesized inputs are not a given, built with onnx.helper:
a voice-activity model (If on the sample rate + reflect Pad, unnamed dynamic dims, a state input),
a detector with symbolic batch/height/width, a Loop whose trip count is an input, and an embedding
whose ids must stay below its vocabulary size. The QDQ int8 CNN is :func:`models.qdq_cnn`.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from models import _model


def _const(name: str, array: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(array, name)


def _pad_branch(name: str, pad: int) -> onnx.GraphProto:
    """Reflect-pad ``input`` by ``pad`` samples on both sides of axis 1 (an STFT's framing):
    ORT refuses a reflect pad that is not shorter than the signal."""
    pads = _const(f"{name}_pads", np.array([0, pad, 0, pad], np.int64))
    return helper.make_graph(
        [
            helper.make_node("Pad", ["input", f"{name}_pads"], [f"{name}_out"], mode="reflect"),
        ],
        name,
        [],
        [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [None, None])],
        [pads],
    )


def reflect_pad_vad(seed: int = 7) -> onnx.ModelProto:
    """Like silero VAD: ``input`` [?, ?] (dims without names), ``state`` [2, ?, 128], ``sr``
    int64. If sr == 16000 the signal is reflect-padded by 64 samples, else by 32; then framed
    energy and a state update. The synthesized [1, 32] input fails the pad; [1, 256] runs."""
    r = np.random.default_rng(seed)
    w = _const("w", (r.standard_normal((1, 128)) * 0.1).astype(np.float32))
    nodes = [
        helper.make_node("Equal", ["sr", "sr16k"], ["is16k"], name="is_16k"),
        helper.make_node(
            "If",
            ["is16k"],
            ["padded"],
            name="stft_pad",
            then_branch=_pad_branch("pad16k", 64),
            else_branch=_pad_branch("pad8k", 32),
        ),
        helper.make_node("Mul", ["padded", "padded"], ["power"], name="power"),
        helper.make_node("ReduceMean", ["power", "axis1"], ["energy"], name="energy", keepdims=1),
        helper.make_node("Mul", ["energy", "w"], ["drive"], name="drive"),  # [b, 128]
        helper.make_node("Tanh", ["state"], ["kept"], name="keep"),
        helper.make_node("Add", ["kept", "drive"], ["stateN"], name="update"),  # [2, b, 128]
        helper.make_node("ReduceMean", ["stateN", "axes02"], ["m"], name="pool", keepdims=0),
        helper.make_node("Sigmoid", ["energy"], ["output"], name="prob"),
    ]
    graph = helper.make_graph(
        nodes,
        "reflect_pad_vad",
        [
            helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, None]),
            helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, None, 128]),
            helper.make_tensor_value_info("sr", TensorProto.INT64, []),
        ],
        [
            helper.make_tensor_value_info("output", TensorProto.FLOAT, [None, 1]),
            helper.make_tensor_value_info("stateN", TensorProto.FLOAT, [2, None, 128]),
            helper.make_tensor_value_info("m", TensorProto.FLOAT, [None]),
        ],
        [
            w,
            _const("sr16k", np.array(16000, np.int64)),
            _const("axis1", np.array([1], np.int64)),
            _const("axes02", np.array([0, 2], np.int64)),
        ],
    )
    return _model(graph, opset=18)


def dynamic_detector(seed: int = 8) -> onnx.ModelProto:
    """A two-scale detector over ``image`` [batch, 3, height, width]: stride-2 and stride-4
    convs, the deeper map upsampled (Resize x2) and added to the shallower one, then a box head
    and a score head (Sigmoid)."""
    r = np.random.default_rng(seed)

    def weights(name: str, shape: tuple[int, ...]) -> TensorProto:
        return _const(name, (r.standard_normal(shape) * 0.2).astype(np.float32))

    inits = [
        weights("w1", (8, 3, 3, 3)),
        weights("w2", (8, 8, 3, 3)),
        weights("w_box", (4, 8, 1, 1)),
        weights("w_score", (1, 8, 1, 1)),
        _const("scales", np.array([1, 1, 2, 2], np.float32)),
    ]
    nodes = [
        helper.make_node(
            "Conv", ["image", "w1"], ["c1"], name="stem", pads=[1] * 4, strides=[2, 2]
        ),
        helper.make_node("Relu", ["c1"], ["r1"], name="stem_relu"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="down", pads=[1] * 4, strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"], name="down_relu"),
        helper.make_node("Resize", ["r2", "", "scales"], ["up"], name="up", mode="nearest"),
        helper.make_node("Add", ["up", "r1"], ["fpn"], name="fpn"),
        helper.make_node("Conv", ["fpn", "w_box"], ["boxes"], name="box_head"),
        helper.make_node("Conv", ["fpn", "w_score"], ["logits"], name="score_head"),
        helper.make_node("Sigmoid", ["logits"], ["scores"], name="scores"),
    ]
    graph = helper.make_graph(
        nodes,
        "dynamic_detector",
        [
            helper.make_tensor_value_info(
                "image", TensorProto.FLOAT, ["batch", 3, "height", "width"]
            )
        ],
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["batch", 4, None, None]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 1, None, None]),
        ],
        inits,
    )
    return _model(graph)


def loop_decoder() -> onnx.ModelProto:
    """A Loop run ``steps`` times (an int64 input: its trip count) over a carried [1, 4] value:
    acc = tanh(acc * 0.5 + x), x from the outer scope."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"], name="keep_going"),
            helper.make_node("Mul", ["acc_in", "half"], ["scaled"], name="scale"),
            helper.make_node("Add", ["scaled", "x"], ["summed"], name="add_x"),
            helper.make_node("Tanh", ["summed"], ["acc_out"], name="squash"),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [1, 4]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [1, 4]),
        ],
        [_const("half", np.array(0.5, np.float32))],
    )
    nodes = [
        helper.make_node("Loop", ["steps", "", "acc0"], ["acc"], name="decode", body=body),
    ]
    graph = helper.make_graph(
        nodes,
        "loop_decoder",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
            helper.make_tensor_value_info("steps", TensorProto.INT64, []),
        ],
        [helper.make_tensor_value_info("acc", TensorProto.FLOAT, [1, 4])],
        [_const("acc0", np.zeros((1, 4), np.float32))],
    )
    return _model(graph)


def embedding(vocab: int = 3, seed: int = 9) -> onnx.ModelProto:
    """Token ids [batch, sequence] (int64) looked up in a [vocab, 8] table: an id at or above
    ``vocab`` makes ORT's Gather fail."""
    r = np.random.default_rng(seed)
    table = _const("table", r.standard_normal((vocab, 8)).astype(np.float32))
    nodes = [
        helper.make_node("Cast", ["ids"], ["ids32"], name="to_int32", to=TensorProto.INT32),
        helper.make_node("Gather", ["table", "ids32"], ["vectors"], name="lookup"),
        helper.make_node("ReduceSum", ["vectors"], ["y"], name="pool", keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "embedding",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])],
        [table],
    )
    return _model(graph)
