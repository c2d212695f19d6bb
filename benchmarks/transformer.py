"""A BERT-base-sized text encoder written with onnx.helper, for the scale benchmarks.

At the defaults (12 layers, hidden 768, 12 heads, FFN 3072, vocabulary 30522) the model has
110 M float32 parameters, 438 MB, like BERT-base exported from PyTorch: word, position and
token-type embeddings, then per layer MatMul/Add for Q, K, V and the output projection,
Reshape/Transpose into heads, Softmax attention, two LayerNormalizations and a Gelu FFN.
Input ``input_ids`` is ``[batch, sequence]``: both dims are symbolic, as in a real export.
The weights are random (seeded): the benchmarks time the tools, not the answers.

    python benchmarks/transformer.py bert.onnx              # weights inline (438 MB file)
    python benchmarks/transformer.py bert.onnx --external   # bert.onnx + bert.onnx.data
    python benchmarks/transformer.py big.onnx --external --layers 48 --hidden 1024  # ~2.4 GB
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

OPSET = 20  # Gelu is an ONNX op from opset 20


def build(
    path: Path | str,
    *,
    layers: int = 12,
    hidden: int = 768,
    heads: int = 12,
    ffn: int = 3072,
    vocab: int = 30522,
    max_positions: int = 512,
    external: bool = False,
    seed: int = 0,
) -> Path:
    """Write the encoder to ``path`` (weights inline, or in ``<path>.data`` when ``external``)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if hidden % heads:
        raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
    rng = np.random.default_rng(seed)
    head_dim = hidden // heads
    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def weight(name: str, *shape: int, value: float | None = None) -> str:
        if value is None:
            data = rng.standard_normal(shape, dtype=np.float32)
            data *= 0.02
        else:
            data = np.full(shape, value, dtype=np.float32)
        inits.append(numpy_helper.from_array(data, name))
        return name

    def const(name: str, values: list[int]) -> str:
        inits.append(numpy_helper.from_array(np.array(values, dtype=np.int64), name))
        return name

    def node(op: str, inputs: list[str], out: str, **attrs: object) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def linear(x: str, prefix: str, n_in: int, n_out: int) -> str:
        w = weight(f"{prefix}.weight", n_in, n_out)
        b = weight(f"{prefix}.bias", n_out, value=0.0)
        return node("Add", [node("MatMul", [x, w], f"{prefix}.matmul"), b], f"{prefix}.out")

    def layer_norm(x: str, prefix: str) -> str:
        scale = weight(f"{prefix}.weight", hidden, value=1.0)
        bias = weight(f"{prefix}.bias", hidden, value=0.0)
        return node("LayerNormalization", [x, scale, bias], f"{prefix}.out", axis=-1, epsilon=1e-12)

    # Embeddings: word + position (positions 0..sequence-1) + token type 0.
    word = node("Gather", [weight("embeddings.word", vocab, hidden), "input_ids"], "emb.word")
    shape = node("Shape", ["input_ids"], "emb.shape")
    seq_len = node("Gather", [shape, const("one", [1])], "emb.seq_len", axis=0)
    seq_scalar = node("Squeeze", [seq_len, const("axis0", [0])], "emb.seq_scalar")
    zero = helper.make_tensor("zero", TensorProto.INT64, [], [0])
    step = helper.make_tensor("step", TensorProto.INT64, [], [1])
    inits.extend([zero, step])
    positions = node("Range", ["zero", seq_scalar, "step"], "emb.positions")
    position = node(
        "Gather", [weight("embeddings.position", max_positions, hidden), positions], "emb.position"
    )
    token_type = weight("embeddings.token_type", 1, hidden)
    summed = node("Add", [node("Add", [word, position], "emb.add0"), token_type], "emb.add1")
    x = layer_norm(summed, "emb.norm")

    heads_shape = const("heads_shape", [0, 0, heads, head_dim])
    merged_shape = const("merged_shape", [0, 0, hidden])
    scale = helper.make_tensor("attn_scale", TensorProto.FLOAT, [], [1.0 / math.sqrt(head_dim)])
    inits.append(scale)
    for i in range(layers):
        p = f"layer{i}"

        def split_heads(t: str, name: str, perm: list[int], p: str = p) -> str:
            reshaped = node("Reshape", [t, heads_shape], f"{p}.{name}.reshape")
            return node("Transpose", [reshaped], f"{p}.{name}.heads", perm=perm)

        q = split_heads(linear(x, f"{p}.q", hidden, hidden), "q", [0, 2, 1, 3])
        k = split_heads(linear(x, f"{p}.k", hidden, hidden), "k", [0, 2, 3, 1])
        v = split_heads(linear(x, f"{p}.v", hidden, hidden), "v", [0, 2, 1, 3])
        scores = node("Mul", [node("MatMul", [q, k], f"{p}.qk"), "attn_scale"], f"{p}.scores")
        probs = node("Softmax", [scores], f"{p}.probs", axis=-1)
        context = node("MatMul", [probs, v], f"{p}.context")
        context = node("Transpose", [context], f"{p}.context.t", perm=[0, 2, 1, 3])
        context = node("Reshape", [context, merged_shape], f"{p}.context.merged")
        attn = linear(context, f"{p}.attn_out", hidden, hidden)
        x = layer_norm(node("Add", [attn, x], f"{p}.residual1"), f"{p}.norm1")
        h = node("Gelu", [linear(x, f"{p}.ffn_in", hidden, ffn)], f"{p}.gelu")
        h = linear(h, f"{p}.ffn_out", ffn, hidden)
        x = layer_norm(node("Add", [h, x], f"{p}.residual2"), f"{p}.norm2")

    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))
    graph = helper.make_graph(
        nodes,
        "bert_like_encoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])],
        [
            helper.make_tensor_value_info(
                "last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden]
            )
        ],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ortprep-bench"
    )
    model.ir_version = 9
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if external:
        onnx.save_model(
            model,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=path.name + ".data",
            size_threshold=1024,
        )
    else:
        onnx.save_model(model, str(path))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--ffn", type=int, default=None, help="default: 4 x hidden")
    parser.add_argument("--external", action="store_true", help="weights in <path>.data")
    args = parser.parse_args()
    out = build(
        args.path,
        layers=args.layers,
        hidden=args.hidden,
        heads=args.heads,
        ffn=args.ffn or 4 * args.hidden,
        external=args.external,
    )
    size = sum(p.stat().st_size for p in out.parent.glob(out.name + "*"))
    print(f"{out}: {size / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
