"""What NNAPI's rules look at: the per-graph lookups (kept on the graph) and one unit's view.

A unit is read through its IO defs (``NodeUnit::Inputs()``/``Outputs()``, kept on the unit by
:mod:`ortprep.eps.node_unit`); the graph's merged type/constant lookups, its units by node and its
verdicts per options live in :class:`GraphState`, one per graph (``Graph.memo["nnapi.graph"]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ortprep.core.graph import Dim, Graph, Node, ValueType
from ortprep.eps.base import EpOptions, NodeContext
from ortprep.eps.nnapi.constants import QDQ_TYPES, QLINEAR_SINGLE
from ortprep.eps.partition import (
    QUANT_IO_OPS,
    IODef,
    NodeUnit,
    elem_type,
    node_units,
)

# --------------------------------------------------------------------------- unit view


@dataclass(slots=True, eq=False)
class UnitContext(NodeContext):
    """A :class:`NodeContext` that also carries the node unit being judged (immutable by
    convention, as its base)."""

    unit: NodeUnit | None = None


class GraphState:
    """What NNAPI keeps per graph object: the lookups every rule makes, the units, the verdicts.

    ``Graph.value_type`` builds a new ValueType for each initializer it is asked about and
    ``Graph.is_constant`` does two lookups; on a 100,000-node graph the rules ask about 300,000
    times, so the answers are merged into plain dicts/sets once.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        types = dict(graph.values)
        for name, init in graph.initializers.items():
            if name not in types:
                types[name] = ValueType(name, init.dtype, init.dims)
        self.types: dict[str, ValueType] = types
        inputs = {v.name for v in graph.inputs}
        self.constants = frozenset(name for name in graph.initializers if name not in inputs)
        self.external = frozenset(
            name for name, init in graph.initializers.items() if init.external_file
        )
        self.read_by_name = self.constants | self.external  # see _plain_key
        self.fixed_shapes: dict[tuple[Dim, ...], bool] = {}  # shape -> all dims fixed (memo)
        self.units_index: dict[int, NodeUnit] | None = None  # see units_index
        self.targets: dict[int, NodeUnit] = {}  # target index -> unit judged in _graph_verdicts
        self.verdicts: dict[EpOptions, dict[int, str | None]] = {}  # see _graph_verdicts
        # The options last asked about and their verdicts: callers ask once per unit with the
        # same options object, and hashing the options dataclass costs more than the lookup.
        self.last: tuple[EpOptions, dict[int, str | None]] | None = None

    def dtype(self, name: str) -> str | None:
        """``elem_type`` (the value's type, else what a producing Q says), from the merged dict."""
        if not name:
            return None
        vt = self.types.get(name)
        if vt is not None and vt.dtype:
            return vt.dtype
        return elem_type(self.graph, name)


class UnitView:
    """What the rules look at for one unit: its IO defs, types, shapes, constants, attributes.

    Built per unit judged, so it is kept light: the unit's IO defs (with scales and zero points)
    are only listed when a rule asks; a plain single node reads its own input names.
    """

    __slots__ = (
        "api",
        "graph",
        "in_names",
        "node",
        "op",
        "plain",
        "qdq",
        "qtype",
        "state",
        "unit",
    )

    def __init__(self, state: GraphState, options: EpOptions, unit: NodeUnit) -> None:
        node = unit.target
        self.state = state
        self.graph = state.graph
        self.unit = unit
        self.node = node
        self.op = op = node.op_type
        self.api = options.android_api
        self.qdq = qdq = unit.kind == "qdq"
        self.plain = not qdq and op not in QUANT_IO_OPS
        self.qtype = QDQ_TYPES.get(op) if qdq else op if op in QLINEAR_SINGLE else None
        # What in_name(i) returns: the value read by unit input i (a DQ's input for a QDQ unit).
        self.in_names = node.inputs if self.plain else tuple(io.name for io in self.inputs)

    @property
    def inputs(self) -> tuple[IODef, ...]:
        """The unit's input IO defs (``NodeUnit::Inputs()``, kept on the unit)."""
        return self.unit.inputs

    @property
    def outputs(self) -> tuple[IODef, ...]:
        return self.unit.outputs

    def input_value_names(self) -> tuple[str, ...]:
        """Every input value, scale and zero point of the unit, in order; may contain ``""``."""
        if self.plain:
            return self.node.inputs
        return tuple(name or "" for io in self.inputs for name in io)

    # lookups -----------------------------------------------------------------

    def attr(self, name: str, default: Any = None) -> Any:
        return self.node.attributes.get(name, default)

    def dtype(self, name: str) -> str | None:
        return self.state.dtype(name)

    def shape(self, name: str) -> tuple[Dim, ...] | None:
        vt = self.state.types.get(name) if name else None
        return None if vt is None else vt.shape

    def in_name(self, i: int) -> str:
        names = self.in_names
        return names[i] if i < len(names) else ""

    def in_shape(self, i: int) -> tuple[Dim, ...] | None:
        names = self.in_names
        return self.shape(names[i]) if i < len(names) else None

    def in_rank(self, i: int) -> int | None:
        names = self.in_names
        vt = self.state.types.get(names[i]) if i < len(names) and names[i] else None
        return None if vt is None or vt.shape is None else len(vt.shape)

    def const(self, name: str) -> bool:
        return bool(name) and name in self.state.constants

    def values(self, name: str) -> Any:
        """Values of a constant initializer (numpy), or ``None``."""
        if not self.const(name):
            return None
        return self.graph.initializers[name].numpy()

    @property
    def quantized(self) -> bool:
        return self.qtype is not None


# --------------------------------------------------------------------------- per-graph state


NNAPI_GRAPH_KEY = "nnapi.graph"
"""The ``Graph.memo`` key of NNAPI's :class:`GraphState`."""


def graph_state(graph: Graph) -> GraphState:
    """The graph's lookups, units and verdicts, kept on the graph (``Graph.memo``)."""
    return graph.derived(NNAPI_GRAPH_KEY, GraphState)


def units_index(graph: Graph, state: GraphState | None = None) -> dict[int, NodeUnit]:
    """Node index -> the unit holding it (node_units of the graph, cached per graph object)."""
    state = state or graph_state(graph)
    if state.units_index is None:
        state.units_index = {m.index: unit for unit in node_units(graph) for m in unit.nodes}
    return state.units_index


def unit_of(graph: Graph, node: Node) -> NodeUnit:
    unit = units_index(graph).get(node.index)
    return unit if unit is not None else NodeUnit(node)
