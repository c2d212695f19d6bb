"""``diff A B``: what changed between two models (``.onnx``, ``.optimized.onnx``, ``.ort``).

Optimizers keep node and value names where they can: a fused node takes over the output names of
the last node it replaces and reads the inputs of the first. So, for each node of B, walking A
backwards from B's outputs to B's inputs finds the A nodes it absorbed: ``Conv+Relu ->
FusedConv``, ``Conv+BatchNormalization -> Conv``, ``DequantizeLinear+Conv+QuantizeLinear ->
QLinearConv``. A nodes absorbed by nothing were removed (Identity, Dropout); B nodes that absorbed
nothing and are new were added (Transpose, ReorderInput).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ortprep.core.graph import DEFAULT_DOMAIN, Graph, Initializer, Model, Node

MAX_ABSORBED = 32
"""No optimizer fuses more nodes into one; bounds the backward walk."""


@dataclass(frozen=True)
class Fusion:
    pattern: str
    count: int
    examples: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "count": self.count, "examples": list(self.examples)}


@dataclass(frozen=True)
class DiffResult:
    a: str
    b: str
    nodes_a: int
    nodes_b: int
    ops: dict[str, tuple[int, int]]  # op id -> (count in A, count in B), changed ones only
    fusions: tuple[Fusion, ...]
    removed: dict[str, int]
    added: dict[str, int]
    initializer_bytes: tuple[int, int]
    constant_node_bytes: tuple[int, int]  # tensors of Constant nodes (ORT makes them initializers)
    opsets: dict[str, tuple[int | None, int | None]]  # used domains whose import changed
    formats: tuple[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "formats": list(self.formats),
            "nodes": {"a": self.nodes_a, "b": self.nodes_b},
            "ops": [
                {"op": op, "a": ca, "b": cb, "change": cb - ca}
                for op, (ca, cb) in sorted(self.ops.items())
            ],
            "fusions": [f.to_dict() for f in self.fusions],
            "removed": dict(self.removed),
            "added": dict(self.added),
            "initializer_bytes": {"a": self.initializer_bytes[0], "b": self.initializer_bytes[1]},
            "constant_node_bytes": {
                "a": self.constant_node_bytes[0],
                "b": self.constant_node_bytes[1],
            },
            "opsets": {d: {"a": va, "b": vb} for d, (va, vb) in sorted(self.opsets.items())},
        }


def _graphs(model: Model) -> dict[str, Graph]:
    found = {model.graph.path: model.graph}
    for _, node in model.all_nodes():
        for sub in node.subgraphs.values():
            found[sub.path] = sub
    return found


def _absorbed(
    inputs: set[str],
    outputs: list[str],
    a: Graph,
    gone: set[str],
    keep: set[str],
    claimed: set[str],
) -> list[Node]:
    """A nodes between ``inputs`` and ``outputs`` (by value name) that B no longer has.

    ``keep`` names B nodes that also exist in A (e.g. the Conv that absorbed a BatchNormalization).
    """
    frontier = [v for v in outputs if v]
    taken: list[Node] = []
    seen: set[str] = set()
    while frontier and len(taken) < MAX_ABSORBED:
        value = frontier.pop()
        if value in inputs or value in seen:
            continue
        seen.add(value)
        producer = a.producers.get(value)
        if producer is None or producer.name in claimed:
            continue
        if producer.name in gone or producer.name in keep:
            taken.append(producer)
            frontier.extend(v for v in producer.inputs if v)
    return taken


def _clusters(b: Graph, new: list[Node], a_values: set[str]) -> list[list[Node]]:
    """Group new B nodes joined by values A never had (a QLinearConv between layout Transposes)."""
    parent = {n.name: n.name for n in new}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    new_names = set(parent)
    for n in new:
        for v in n.inputs:
            p = b.producers.get(v)
            if p is not None and p.name in new_names and v not in a_values:
                parent[find(p.name)] = find(n.name)
    groups: dict[str, list[Node]] = {}
    for n in new:
        groups.setdefault(find(n.name), []).append(n)
    return list(groups.values())


def _label(nodes: list[Node]) -> str:
    """``DequantizeLinear×3+Conv+QuantizeLinear`` (counts for repeats, first-seen order)."""
    counts: Counter[str] = Counter(n.op_type for n in nodes)
    order = list(dict.fromkeys(n.op_type for n in nodes))
    return "+".join(op if counts[op] == 1 else f"{op}×{counts[op]}" for op in order)


def _target_label(cluster: list[Node]) -> str:
    core = [n for n in cluster if n.op_type != "Transpose"]
    if core and len(core) < len(cluster):
        return _label(core) + " (channels-last, between Transposes)"
    return _label(cluster)


def _graph_diff(a: Graph, b: Graph) -> tuple[Counter[str], Counter[str], Counter[str], dict]:
    b_keys = {(n.name, n.op_type) for n in b.nodes}
    a_keys = {(n.name, n.op_type) for n in a.nodes}
    gone = {n.name for n in a.nodes if (n.name, n.op_type) not in b_keys}
    a_values = {v for n in a.nodes for v in n.outputs} | {v.name for v in a.inputs}
    order = {n.name: i for i, n in enumerate(a.nodes)}
    claimed: set[str] = set()
    fusions: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    added: Counter[str] = Counter()
    new = [n for n in b.nodes if (n.name, n.op_type) not in a_keys]
    units = [[n] for n in b.nodes if (n.name, n.op_type) in a_keys] + _clusters(b, new, a_values)
    for unit in units:
        names = {n.name for n in unit}
        produced = {v for n in unit for v in n.outputs}
        inputs = {v for n in unit for v in (*n.inputs, *n.implicit_inputs)} - produced
        outputs = [
            v
            for v in produced
            if v in b.output_names or any(c.name not in names for c in b.consumers.get(v, []))
        ]
        keep = {n.name for n in unit if (n.name, n.op_type) in a_keys}
        taken = _absorbed(inputs, outputs, a, gone, keep, claimed)
        absorbed_gone = [n for n in taken if n.name in gone]
        if absorbed_gone:
            taken.sort(key=lambda n: order.get(n.name, 0))
            pattern = f"{_label(taken)} -> {_target_label(unit)}"
            fusions[pattern] += 1
            examples.setdefault(pattern, []).append(unit[0].name)
            claimed.update(n.name for n in absorbed_gone)
        elif not keep:
            added.update(n.op_id for n in unit)
    removed = Counter(n.op_id for n in a.nodes if n.name in gone and n.name not in claimed)
    return fusions, removed, added, examples


def _used_domains(model: Model) -> set[str]:
    return {n.domain for _, n in model.all_nodes()}


def diff_models(a: Model, b: Model) -> DiffResult:
    """Compare two opened models."""
    ops_a = Counter(n.op_id for _, n in a.all_nodes())
    ops_b = Counter(n.op_id for _, n in b.all_nodes())
    changed = {
        op: (ops_a[op], ops_b[op]) for op in ops_a.keys() | ops_b.keys() if ops_a[op] != ops_b[op]
    }
    fusions: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    removed: Counter[str] = Counter()
    added: Counter[str] = Counter()
    graphs_b = _graphs(b)
    for path, ga in _graphs(a).items():
        gb = graphs_b.get(path)
        if gb is None:
            removed.update(n.op_id for n in ga.nodes)
            continue
        f, r, ad, ex = _graph_diff(ga, gb)
        fusions.update(f)
        removed.update(r)
        added.update(ad)
        for k, v in ex.items():
            examples.setdefault(k, []).extend(v)
    # ORT writes every domain it knows into opset_import; only domains nodes use matter.
    used = _used_domains(a) | _used_domains(b)
    opsets = {
        d: (a.opsets.get(d), b.opsets.get(d)) for d in used if a.opsets.get(d) != b.opsets.get(d)
    }
    return DiffResult(
        a=str(a.path),
        b=str(b.path),
        nodes_a=sum(ops_a.values()),
        nodes_b=sum(ops_b.values()),
        ops=changed,
        fusions=tuple(
            Fusion(p, c, tuple(examples.get(p, [])[:3]))
            for p, c in sorted(fusions.items(), key=lambda kv: (-kv[1], kv[0]))
        ),
        removed=dict(sorted(removed.items())),
        added=dict(sorted(added.items())),
        initializer_bytes=(_init_bytes(a), _init_bytes(b)),
        constant_node_bytes=(_constant_node_bytes(a), _constant_node_bytes(b)),
        opsets=opsets,
        formats=(a.format, b.format),
    )


def _init_bytes(model: Model) -> int:
    total = sum(i.nbytes for i in model.graph.initializers.values())
    for _, node in model.all_nodes():
        for sub in node.subgraphs.values():
            total += sum(i.nbytes for i in sub.initializers.values())
    return total


def _constant_node_bytes(model: Model) -> int:
    """Bytes of the tensors Constant nodes hold (exporters such as paddle2onnx keep weights
    there; ORT turns them into initializers, so they move from one count to the other)."""
    return sum(
        value.nbytes
        for _, node in model.all_nodes()
        if node.op_type == "Constant" and node.domain == DEFAULT_DOMAIN
        for value in node.attributes.values()
        if isinstance(value, Initializer)
    )


def run(a: Path, b: Path) -> DiffResult:
    from ortprep.core.inputs import open_model

    return diff_models(open_model(a), open_model(b))
