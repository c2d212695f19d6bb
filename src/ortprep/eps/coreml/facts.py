"""What CoreML's rules read of a graph, worked out once per graph and kept on it
(``Graph.memo["coreml.facts"]``), and the small lookups and helpers every rule uses."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ortprep.core.graph import Dim, Graph, Node, ValueType
from ortprep.eps.base import NodeContext

# --------------------------------------------------------------------------- per-graph facts


@dataclass
class GraphFacts:
    """What the rules read again and again in one graph, worked out once per graph."""

    constant: frozenset[str]
    """Constant initializers (``Graph.is_constant``: not overridable as a graph input)."""
    external: frozenset[str]
    """Initializers stored as external data (usually none, and then no input is looked up)."""
    init_types: dict[str, ValueType] = field(default_factory=dict)
    """Value types of initializers without value info, built on first use: ``Graph.value_type``
    builds a new one on every call, and a shared weight is read by many nodes."""
    values: dict[tuple[str, type], tuple[Any, ...]] = field(default_factory=dict)
    """Constant values by (name, int or float), decoded once: reading decodes the tensor."""


COREML_FACTS_KEY = "coreml.facts"
"""The ``Graph.memo`` key of CoreML's :class:`GraphFacts`."""


def facts_of(graph: Graph) -> GraphFacts:
    """The facts of ``graph``, worked out once and kept on the graph (``Graph.memo``)."""
    return graph.derived(COREML_FACTS_KEY, _graph_facts)


def _graph_facts(graph: Graph) -> GraphFacts:
    inits = graph.initializers
    return GraphFacts(
        constant=frozenset(inits).difference(v.name for v in graph.inputs),
        external=frozenset(n for n, init in inits.items() if init.external_file),
    )


def init_type(graph: Graph, facts: GraphFacts, name: str) -> ValueType | None:
    """``graph.value_type(name)`` for a name without value info, reused across nodes."""
    vt = facts.init_types.get(name)
    if vt is None:
        vt = graph.value_type(name)
        if vt is not None:
            facts.init_types[name] = vt
    return vt


def _in_type(ctx: NodeContext, i: int) -> ValueType | None:
    """``ctx.input_type(i)``, with initializer types reused: the rules read inputs this way."""
    inputs = ctx.node.inputs
    name = inputs[i] if i < len(inputs) else ""
    if not name:
        return None
    graph = ctx.graph
    vt = graph.values.get(name)
    return vt if vt is not None else init_type(graph, facts_of(graph), name)


def in_shape(ctx: NodeContext, i: int) -> tuple[Dim, ...] | None:
    vt = _in_type(ctx, i)
    return vt.shape if vt is not None else None


def in_dtype(ctx: NodeContext, i: int) -> str | None:
    vt = _in_type(ctx, i)
    return vt.dtype if vt is not None else None


def in_rank(ctx: NodeContext, i: int) -> int | None:
    vt = _in_type(ctx, i)
    return None if vt is None or vt.shape is None else len(vt.shape)


def is_const(ctx: NodeContext, i: int) -> bool:
    """``ctx.is_constant(i)``: input ``i`` is a constant initializer."""
    inputs = ctx.node.inputs
    return i < len(inputs) and bool(inputs[i]) and inputs[i] in facts_of(ctx.graph).constant


def _constant(ctx: NodeContext, i: int, kind: type) -> list[Any] | None:
    """Values of constant input ``i`` as ``kind`` (int or float); None when not constant or not
    readable. Decoded once per graph: Slice, Pad, Reshape... often share their constants."""
    if not is_const(ctx, i):
        return None
    name = ctx.node.inputs[i]
    facts = facts_of(ctx.graph)
    found = facts.values.get((name, kind))
    if found is None:
        try:
            array = ctx.graph.initializers[name].numpy()
        except ValueError:
            return None  # no loader: not readable (not cached, as before)
        found = facts.values[(name, kind)] = tuple(kind(v) for v in array.reshape(-1))
    return list(found)


# --------------------------------------------------------------------------- small helpers


def format_name(ml: bool) -> str:
    return "MLProgram" if ml else "NeuralNetwork"


def shape_str(shape: Iterable[Dim] | None) -> str:
    if shape is None:
        return "unknown"
    return "[" + ",".join(["?" if d is None else str(d) for d in shape]) + "]"


def is_known(d: Dim) -> bool:
    return isinstance(d, int) and d >= 0


def dim_size(d: Dim) -> int | None:
    """A fixed dimension as an int, None when symbolic or unknown."""
    return d if isinstance(d, int) and d >= 0 else None


def const_ints(ctx: NodeContext, i: int) -> list[int] | None:
    """Values of constant input ``i`` as ints; None when not constant or not readable."""
    return _constant(ctx, i, int)


def const_floats(ctx: NodeContext, i: int) -> list[float] | None:
    return _constant(ctx, i, float)


def output_count(node: Node) -> int:
    return sum(1 for o in node.outputs if o)


def need_constant(ctx: NodeContext, i: int, role: str, ml: bool) -> str | None:
    if ctx.has_input(i) and not is_const(ctx, i):
        return (
            f"input {role} ('{ctx.node.input(i)}') is not a constant initializer; "
            f"CoreML ({format_name(ml)}) needs it constant"
        )
    return None
