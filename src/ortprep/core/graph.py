"""The read-only graph view shared by every stage, whatever file it came from.

Both ``.onnx`` (protobuf) and ``.ort`` (flatbuffer) files are opened into these frozen
dataclasses (see :mod:`ortprep.core.onnx_file` and :mod:`ortprep.core.ort`). Tensor data
is never copied into the view: an :class:`Initializer` knows its type, dims and byte size, and
reads its values only when :meth:`Initializer.numpy` is called (rules that need a constant's
value, such as a Pad's pads, ask for it; nothing else does).

Domains are normalized: the default ONNX domain is ``"ai.onnx"`` everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    import numpy as np

_T = TypeVar("_T")

DEFAULT_DOMAIN = "ai.onnx"

Dim = int | str | None
"""A dimension: a fixed size, a symbolic name (``"N"``), or ``None`` when unknown."""


def normalize_domain(domain: str) -> str:
    """Return the domain as ortprep writes it: ``""`` and ``"ai.onnx"`` become ``"ai.onnx"``."""
    return domain or DEFAULT_DOMAIN


@dataclass(frozen=True)
class ValueType:
    """Type and shape of a named value. ``shape`` is ``None`` when even the rank is unknown."""

    name: str
    dtype: str | None
    shape: tuple[Dim, ...] | None
    kind: str = "tensor"  # tensor | sequence | map | optional | sparse_tensor | unknown

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def dynamic(self) -> bool:
        """True when the shape is unknown or has a dimension that is not a fixed number."""
        return self.shape is None or any(not isinstance(d, int) or d < 0 for d in self.shape)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "shape": None if self.shape is None else list(self.shape),
            "dynamic": self.dynamic,
        }


@dataclass(frozen=True)
class Initializer:
    """A constant tensor of a graph. Values are read lazily by :meth:`numpy`."""

    name: str
    dtype: str | None
    dims: tuple[int, ...]
    nbytes: int
    external_file: str | None = None
    loader: Callable[[], np.ndarray] | None = field(default=None, repr=False, compare=False)

    def numpy(self) -> np.ndarray:
        """The tensor's values (reads them now; external data included)."""
        if self.loader is None:
            raise ValueError(f"the values of initializer {self.name!r} are not available")
        return self.loader()


@dataclass(slots=True)
class Node:
    """One node. ``name`` is the model's own, or ``<op_type>_<index>`` when it had none.

    Treat it as immutable: views are shared by every EP and cached analyses. It is not ``frozen``
    because a frozen dataclass sets each of its twelve fields through ``object.__setattr__``,
    which made building the nodes of a 100,000-node view take 0.38 s instead of 0.12 s.
    """

    index: int
    name: str
    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attributes: Mapping[str, Any] = field(default_factory=dict)
    subgraphs: Mapping[str, Graph] = field(default_factory=dict)
    since_version: int | None = None
    synthetic_name: bool = False
    execution_provider: str | None = None
    implicit_inputs: tuple[str, ...] = ()

    @property
    def op_id(self) -> str:
        """``domain:op_type``, e.g. ``ai.onnx:Conv``."""
        return f"{self.domain}:{self.op_type}"

    def input(self, i: int) -> str:
        """Name of input ``i``, or ``""`` when the optional input is absent."""
        return self.inputs[i] if i < len(self.inputs) else ""


def by_attribute_name(subgraphs: dict[str, Graph]) -> dict[str, Graph]:
    """A node's subgraphs in attribute-name order. ORT keeps a node's attributes in a hash map,
    so the files it writes list them in no fixed order (an If's ``else_branch`` comes first from
    a session's save, ``then_branch`` from its compile API): the views order them by name."""
    return dict(sorted(subgraphs.items())) if len(subgraphs) > 1 else subgraphs


@dataclass(frozen=True)
class Graph:
    """A graph (the main graph, or a subgraph whose ``path`` names its owner).

    The view is read-only, so what is derived from it is kept on it, the way onnx-ir keeps
    derived facts on its objects: the lookups below are ``cached_property``s, and the analyses
    of the layers above (which this module does not import) live in :attr:`memo` through
    :meth:`derived`, one entry per documented key:

    - ``"partition.edges"``: ORT's node edges and topological order
      (:data:`ortprep.eps.graph_edges.EDGES_KEY`), with the node units
      :mod:`ortprep.eps.qdq_selection` adds to them;
    - ``"nnapi.graph"``: NNAPI's merged lookups and per-options unit verdicts
      (:data:`ortprep.eps.nnapi.view.NNAPI_GRAPH_KEY`, verdicts filled by
      :mod:`ortprep.eps.nnapi.verdicts`);
    - ``"coreml.facts"``: CoreML's constant/external sets, initializer types and decoded
      constants (:data:`ortprep.eps.coreml.facts.COREML_FACTS_KEY`).

    An entry lives exactly as long as the graph object; there is no module-global cache.
    """

    path: str
    nodes: tuple[Node, ...]
    inputs: tuple[ValueType, ...]
    outputs: tuple[ValueType, ...]
    initializers: Mapping[str, Initializer]
    values: Mapping[str, ValueType]
    memo: dict[str, Any] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )
    """Derived facts by key (see the class docstring); filled by :meth:`derived` only."""

    def derived(self, key: str, build: Callable[[Graph], _T]) -> _T:
        """The fact ``key`` of this graph: ``build(self)`` on first use, the same object after.

        ``key`` is one of the keys listed in the class docstring; ``build`` must depend on the
        graph alone (the view never changes, so neither does the fact)."""
        memo = self.memo
        if key in memo:
            fact: _T = memo[key]
            return fact
        fact = memo[key] = build(self)
        return fact

    @cached_property
    def producers(self) -> dict[str, Node]:
        """Value name to the node that produces it."""
        return {out: n for n in self.nodes for out in n.outputs if out}

    @cached_property
    def consumers(self) -> dict[str, list[Node]]:
        """Value name to the nodes that read it (explicit and implicit inputs)."""
        result: dict[str, list[Node]] = {}
        for n in self.nodes:
            for name in (*n.inputs, *n.implicit_inputs):
                if name:
                    result.setdefault(name, []).append(n)
        return result

    @cached_property
    def output_names(self) -> frozenset[str]:
        return frozenset(v.name for v in self.outputs)

    @cached_property
    def runtime_inputs(self) -> tuple[ValueType, ...]:
        """Inputs a caller must feed: declared inputs that have no initializer."""
        return tuple(v for v in self.inputs if v.name not in self.initializers)

    def value_type(self, name: str) -> ValueType | None:
        """Type of a value, looking at initializers too."""
        vt = self.values.get(name)
        if vt is None and name in self.initializers:
            init = self.initializers[name]
            vt = ValueType(name, init.dtype, init.dims)
        return vt

    def is_constant(self, name: str) -> bool:
        """True if ``name`` is an initializer of this graph (not overridable as a graph input)."""
        return name in self.initializers and name not in self._input_names

    @cached_property
    def _input_names(self) -> frozenset[str]:
        return frozenset(v.name for v in self.inputs)

    def walk(self) -> Iterator[tuple[Graph, Node]]:
        """Every (graph, node) pair, subgraphs included, depth first."""
        for node in self.nodes:
            yield self, node
            for sub in node.subgraphs.values():
                yield from sub.walk()


@dataclass(frozen=True)
class RuntimeOptimizationRecord:
    """One saved fusion of a Runtime-style ``.ort`` file (replayed at load when enabled)."""

    action_id: str
    node_indices: tuple[int | None, ...]  # input-side nodes, target, output-side nodes
    num_inputs: int
    num_outputs: int
    produced_op_ids: tuple[str, ...]  # "domain:op_type:since_version", ai.onnx for ""

    @property
    def produced_ops(self) -> tuple[str, ...]:
        """Produced ops as ortprep writes ops: ``domain:op_type`` (``ai.onnx:QLinearConv``)."""
        ops = []
        for op_id in self.produced_op_ids:
            parts = op_id.split(":")
            ops.append(f"{normalize_domain(parts[0])}:{parts[1]}" if len(parts) >= 2 else op_id)
        return tuple(ops)


@dataclass(frozen=True)
class OrtFormatInfo:
    """What only an ``.ort`` file carries."""

    format_version: str
    runtime_optimizations: Mapping[str, tuple[RuntimeOptimizationRecord, ...]]
    kernel_type_str_resolver: Mapping[str, Mapping[str, tuple[tuple[bool, int], ...]]]
    """op id (``domain:op_type:since_version``) -> type-constraint name ->
    ((is_input, index), ...)"""


@dataclass(frozen=True)
class Model:
    """An opened model file."""

    path: Path
    format: Literal["onnx", "ort"]
    ir_version: int
    producer_name: str
    producer_version: str
    opsets: Mapping[str, int]
    graph: Graph
    size_bytes: int
    external_data_files: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    ort: OrtFormatInfo | None = None

    @property
    def producer(self) -> str:
        return f"{self.producer_name} {self.producer_version}".strip()

    def all_nodes(self) -> Iterator[tuple[Graph, Node]]:
        """Every node of the model, subgraphs included."""
        return self.graph.walk()
