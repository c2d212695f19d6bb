"""Small, seeded test models with names that say what they are, and a generator of bad inputs.

Every builder returns an ``onnx.ModelProto`` (deterministic for a given seed); ``save`` writes one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _const(name: str, array: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(array, name)


def _model(graph: onnx.GraphProto, opset: int = OPSET, extra: dict[str, int] | None = None):
    imports = [helper.make_opsetid("", opset)]
    imports += [helper.make_opsetid(d, v) for d, v in (extra or {}).items()]
    m = helper.make_model(graph, opset_imports=imports, producer_name="ortprep-tests")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def save(model: onnx.ModelProto, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def conv_bn_relu(seed: int = 0, channels: int = 8, size: int = 32) -> onnx.ModelProto:
    """A CNN: Conv+BN+Relu, Conv+Relu, Conv+Add(residual)+Relu, pool, Gemm classifier."""
    r = _rng(seed)
    c = channels
    inits = [
        _const("w1", r.standard_normal((c, 3, 3, 3)).astype(np.float32) * 0.3),
        _const("b1", r.standard_normal(c).astype(np.float32) * 0.1),
        _const("bn_scale", (1 + 0.1 * r.standard_normal(c)).astype(np.float32)),
        _const("bn_bias", (0.1 * r.standard_normal(c)).astype(np.float32)),
        _const("bn_mean", (0.1 * r.standard_normal(c)).astype(np.float32)),
        _const("bn_var", (1 + 0.1 * r.random(c)).astype(np.float32)),
        _const("w2", r.standard_normal((c, c, 3, 3)).astype(np.float32) * 0.2),
        _const("b2", r.standard_normal(c).astype(np.float32) * 0.1),
        _const("w3", r.standard_normal((c, c, 1, 1)).astype(np.float32) * 0.3),
        _const("b3", r.standard_normal(c).astype(np.float32) * 0.1),
        _const("fc_w", r.standard_normal((c, 4)).astype(np.float32) * 0.3),
        _const("fc_b", r.standard_normal(4).astype(np.float32) * 0.1),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node(
            "BatchNormalization",
            ["c1", "bn_scale", "bn_bias", "bn_mean", "bn_var"],
            ["bn1"],
            name="bn1",
        ),
        helper.make_node("Relu", ["bn1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"], name="conv3"),
        helper.make_node("Add", ["c3", "r1"], ["a3"], name="add3"),
        helper.make_node("Relu", ["a3"], ["r3"], name="relu3"),
        helper.make_node(
            "MaxPool", ["r3"], ["p3"], name="pool3", kernel_shape=[2, 2], strides=[2, 2]
        ),
        helper.make_node("GlobalAveragePool", ["p3"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc"),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "conv_bn_relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 4])],
        inits,
    )
    return _model(graph)


def dynamic_cnn(seed: int = 1) -> onnx.ModelProto:
    """A CNN with dynamic batch, height and width: Conv+Relu, Conv+Sigmoid, global pooling."""
    r = _rng(seed)
    inits = [
        _const("w1", r.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.3),
        _const("b1", np.zeros(4, np.float32)),
        _const("w2", r.standard_normal((6, 4, 3, 3)).astype(np.float32) * 0.3),
        _const("b2", np.zeros(6, np.float32)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c2"], ["s2"], name="sigmoid2"),
        helper.make_node("GlobalAveragePool", ["s2"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["y"], name="flatten"),
    ]
    graph = helper.make_graph(
        nodes,
        "dynamic_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6])],
        inits,
    )
    return _model(graph)


class _Calibration:
    """A calibration data reader for onnxruntime.quantization (seeded random images)."""

    def __init__(self, name: str, shape: tuple[int, ...], count: int = 8, seed: int = 0) -> None:
        r = _rng(seed)
        self._items = iter(
            [{name: r.standard_normal(shape).astype(np.float32)} for _ in range(count)]
        )

    def get_next(self):
        return next(self._items, None)


def qdq_cnn(seed: int = 0, activation_type: str = "int8") -> onnx.ModelProto:
    """``conv_bn_relu`` quantized to QDQ by ``onnxruntime.quantization.quantize_static``.

    ``activation_type`` is ``int8`` (quantize_static's default) or ``uint8``.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    float_model = conv_bn_relu(seed)
    with tempfile.TemporaryDirectory() as tmp:
        src = save(float_model, Path(tmp) / "float.onnx")
        dst = Path(tmp) / "qdq.onnx"
        quantize_static(
            str(src),
            str(dst),
            _Calibration("x", (1, 3, 32, 32), seed=seed),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8 if activation_type == "int8" else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        return onnx.load(str(dst))


def if_subgraph(seed: int = 2) -> onnx.ModelProto:
    """An If whose branches compute Relu(x)+w or Sigmoid(x)*w, chosen by a bool input."""
    r = _rng(seed)
    w = r.standard_normal((1, 4)).astype(np.float32)
    then_g = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["t1"], name="then_relu"),
            helper.make_node("Add", ["t1", "w"], ["then_out"], name="then_add"),
        ],
        "then_branch",
        [],
        [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, [2, 4])],
    )
    else_g = helper.make_graph(
        [
            helper.make_node("Sigmoid", ["x"], ["e1"], name="else_sigmoid"),
            helper.make_node("Mul", ["e1", "w"], ["else_out"], name="else_mul"),
        ],
        "else_branch",
        [],
        [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, [2, 4])],
    )
    nodes = [
        helper.make_node("Abs", ["x_in"], ["x"], name="abs"),
        helper.make_node("If", ["cond"], ["y"], name="if", then_branch=then_g, else_branch=else_g),
    ]
    graph = helper.make_graph(
        nodes,
        "if_subgraph",
        [
            helper.make_tensor_value_info("x_in", TensorProto.FLOAT, [2, 4]),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        [_const("w", w)],
    )
    return _model(graph)


def attention_block(seed: int = 3, seq: int = 8, hidden: int = 16) -> onnx.ModelProto:
    """Self-attention: MatMul/Add projections, scaled Softmax, LayerNormalization residual."""
    r = _rng(seed)

    def weight(name: str, *shape: int) -> TensorProto:
        return _const(name, (r.standard_normal(shape) * 0.2).astype(np.float32))

    inits = [
        weight("wq", hidden, hidden),
        weight("bq", hidden),
        weight("wk", hidden, hidden),
        weight("bk", hidden),
        weight("wv", hidden, hidden),
        weight("bv", hidden),
        weight("wo", hidden, hidden),
        weight("bo", hidden),
        _const("scale", np.array(1.0 / np.sqrt(hidden), np.float32)),
        _const("ln_g", np.ones(hidden, np.float32)),
        _const("ln_b", np.zeros(hidden, np.float32)),
        _const("perm_k", np.array([0, 2, 1], np.int64)),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q0"], name="q_matmul"),
        helper.make_node("Add", ["q0", "bq"], ["q"], name="q_add"),
        helper.make_node("MatMul", ["x", "wk"], ["k0"], name="k_matmul"),
        helper.make_node("Add", ["k0", "bk"], ["k"], name="k_add"),
        helper.make_node("MatMul", ["x", "wv"], ["v0"], name="v_matmul"),
        helper.make_node("Add", ["v0", "bv"], ["v"], name="v_add"),
        helper.make_node("Transpose", ["k"], ["kt"], name="k_transpose", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["s0"], name="scores"),
        helper.make_node("Mul", ["s0", "scale"], ["s"], name="scale_scores"),
        helper.make_node("Softmax", ["s"], ["p"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["ctx"], name="context"),
        helper.make_node("MatMul", ["ctx", "wo"], ["o0"], name="o_matmul"),
        helper.make_node("Add", ["o0", "bo"], ["o"], name="o_add"),
        helper.make_node("Add", ["o", "x"], ["res"], name="residual"),
        helper.make_node(
            "LayerNormalization", ["res", "ln_g", "ln_b"], ["y"], name="layer_norm", axis=-1
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "attention_block",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, seq, hidden])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, seq, hidden])],
        inits,
    )
    return _model(graph)


def external_data(folder: Path, seed: int = 4, name: str = "ext.onnx") -> Path:
    """Write a MatMul model whose 64 KB weight is stored in ``weights.bin`` beside it."""
    r = _rng(seed)
    w = r.standard_normal((128, 128)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="matmul")],
        "external_data",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 128])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 128])],
        [_const("w", w)],
    )
    model = _model(graph)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    onnx.save(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    return path


def relu_chain(length: int, seed: int = 5) -> onnx.ModelProto:
    """A long chain alternating Add(constant) and Relu: ``length`` nodes (for scale tests)."""
    r = _rng(seed)
    nodes = []
    prev = "x"
    c = _const("c", r.standard_normal((1, 8)).astype(np.float32))
    for i in range(length):
        out = f"v{i}" if i < length - 1 else "y"
        if i % 2 == 0:
            nodes.append(helper.make_node("Add", [prev, "c"], [out], name=f"add_{i}"))
        else:
            nodes.append(helper.make_node("Relu", [prev], [out], name=f"relu_{i}"))
        prev = out
    graph = helper.make_graph(
        nodes,
        "relu_chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        [c],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    m.ir_version = 8
    return m


def unknown_op() -> onnx.ModelProto:
    """A valid ONNX model with one op of a custom domain that no runtime has a kernel for
    (ORT refuses to load it: a model that passes validation and fails in ORT)."""
    node = helper.make_node("NoSuchOp", ["x"], ["y"], domain="example.custom")
    graph = helper.make_graph(
        [node],
        "unknown_op",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    return _model(graph, extra={"example.custom": 1})


def bad_inputs(folder: Path) -> dict[str, tuple[Path, str]]:
    """Bad model files, each with a fragment its error message must contain.

    Kinds: empty, random bytes, truncated, text, missing external data, escaping external data,
    a config file where a model is expected.
    """
    folder.mkdir(parents=True, exist_ok=True)
    r = _rng(99)
    good = conv_bn_relu().SerializeToString()
    cases: dict[str, tuple[Path, str]] = {}

    def put(name: str, data: bytes, expect: str) -> None:
        p = folder / name
        p.write_bytes(data)
        cases[name] = (p, expect)

    put("empty.onnx", b"", "empty")
    put("random.onnx", r.integers(0, 256, 4096, dtype=np.uint8).tobytes(), "not")
    put("truncated.onnx", good[: len(good) // 2], "not")
    put("text.onnx", b"this is a README, not a model\n" * 20, "not")

    missing_dir = folder / "missing_ext"
    p = external_data(missing_dir)
    (missing_dir / "weights.bin").unlink()
    cases["missing_external"] = (p, "missing")

    escaping_dir = folder / "escaping_ext"
    p = external_data(escaping_dir)
    m = onnx.load(str(p), load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = "../weights.bin"
    (folder / "weights.bin").write_bytes((escaping_dir / "weights.bin").read_bytes())
    onnx.save(m, str(p))
    cases["escaping_external"] = (p, "outside")
    return cases
