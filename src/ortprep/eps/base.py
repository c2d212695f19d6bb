"""What every execution-provider rule module shares: the node context and the rule table shape.

An EP package (``nnapi/``, ``coreml/``, ``xnnpack/``) is data: a table of :class:`OpRule`
(op type, domain, opset range, a small predicate) plus EP-wide settings (:class:`EpSpec`). A
predicate receives a :class:`NodeContext` and returns ``None`` when the EP accepts the node, or a
refusal reason written for a person ("3D convolution: NNAPI takes 2D convolution only").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ortprep.core.errors import UsageError
from ortprep.core.graph import Graph, Node, ValueType

if TYPE_CHECKING:
    from ortprep.eps.partition import NodeUnit

ANDROID_API_RANGE = (21, 36)
"""Android API levels ``--android-api`` takes: from Android 5 (the oldest ORT's Android package
has supported; NNAPI itself starts at 27, which the NNAPI rules explain) to Android 16."""

COREML_VERSION_RANGE = (1, 9)
"""CoreML specification versions ``--coreml-version`` takes: 1 (iOS 11) to 9 (iOS 26); the
CoreML EP refuses anything below 3, which the CoreML rules explain."""


@dataclass(frozen=True)
class EpOptions:
    """EP options as ORT exposes them, with ORT's defaults. Values outside the ranges above
    are a usage error (exit 2) when the options are made."""

    android_api: int = 31  # NNAPI feature level ORT assumes off-device
    coreml_version: int = 8  # CoreML spec generation: 8 = iOS 18 / macOS 15
    xnnpack_fp16: bool = True  # fp16 kernels exist in ARM builds of the XNNPACK EP

    def __post_init__(self) -> None:
        for option, value, (low, high) in (
            ("--android-api", self.android_api, ANDROID_API_RANGE),
            ("--coreml-version", self.coreml_version, COREML_VERSION_RANGE),
        ):
            if not low <= value <= high:
                raise UsageError(f"{option} {value}: use a value from {low} to {high}")


@dataclass(slots=True, eq=False)
class NodeContext:
    """A node with the graph it lives in, plus the lookups rules need.

    Treat it as immutable. It is not ``frozen`` because one is built per node per EP (200,000
    for CoreML's two formats on a 100,000-node graph) and a frozen dataclass sets each field
    through ``object.__setattr__``, three times slower.
    """

    graph: Graph
    node: Node
    options: EpOptions = field(default_factory=EpOptions)

    def attr(self, name: str, default: Any = None) -> Any:
        return self.node.attributes.get(name, default)

    def input_type(self, i: int) -> ValueType | None:
        name = self.node.input(i)
        return self.graph.value_type(name) if name else None

    def output_type(self, i: int) -> ValueType | None:
        name = self.node.outputs[i] if i < len(self.node.outputs) else ""
        return self.graph.value_type(name) if name else None

    def input_dtype(self, i: int) -> str | None:
        vt = self.input_type(i)
        return vt.dtype if vt else None

    def input_shape(self, i: int) -> tuple[int | str | None, ...] | None:
        vt = self.input_type(i)
        return vt.shape if vt else None

    def input_rank(self, i: int) -> int | None:
        shape = self.input_shape(i)
        return None if shape is None else len(shape)

    def has_input(self, i: int) -> bool:
        return bool(self.node.input(i))

    def is_constant(self, i: int) -> bool:
        """True when input ``i`` is a constant initializer (not overridable as a graph input)."""
        name = self.node.input(i)
        return bool(name) and self.graph.is_constant(name)

    def constant(self, i: int) -> Any:
        """Values of constant input ``i`` (a numpy array), or ``None`` when it is not constant."""
        if not self.is_constant(i):
            return None
        return self.graph.initializers[self.node.input(i)].numpy()

    @property
    def since_version(self) -> int | None:
        return self.node.since_version


Check = Callable[[NodeContext], str | None]
"""A per-op predicate: ``None`` = accepted, otherwise the refusal reason."""

UnitCheck = Callable[["NodeUnit", Graph, EpOptions], str | None]
"""An EP's verdict on a whole node unit: ``None`` = accepted, otherwise the refusal reason."""

GroupWalk = Callable[
    [Graph, EpOptions, frozenset[str], Mapping[int, str | None]],
    list[tuple[list[Node], str | None]],
]
"""An EP's own replay of ORT's partition walk: ``(graph, options, stop ops, verdicts)`` -> every
group formed, in ORT's order, each with why the EP drops it (or ``None``). ``verdicts`` maps a
unit's target node index to the unit check's answer."""

InputRefusal = Callable[["NodeUnit", Graph], str | None]
"""Why an EP's walk left out a unit its unit check accepts (a rule on where its inputs come
from), or ``None`` when that cannot be the reason."""


@dataclass(frozen=True)
class OpRule:
    """Support for one op: opset range (``since_version`` of the node), predicate, source file."""

    op_type: str
    domain: str = "ai.onnx"
    min_opset: int = 1
    max_opset: int | None = None
    check: Check | None = None
    source: str = ""


@dataclass(frozen=True)
class EpSpec:
    """One EP as the checker sees it. Each EP module exposes one (or two, for CoreML) of these.

    - ``check_node``: the EP's verdict on one node on its own (per-op rules *and* EP-wide rules
      such as data types or dynamic shapes); ``None`` means supported, else the reason.
    - ``compiles``: True for EPs that fuse their nodes into compiled partitions (NNAPI, CoreML);
      False for EPs with static per-node kernels (XNNPACK), where partitions are only a grouping.
    - ``stop_ops``: op types that, with everything downstream of them, stay on CPU (NNAPI's
      NonMaxSuppression rule).
    - ``discard``: given a formed partition (its nodes, in order) and the graph, return a reason
      when the EP drops the whole partition (a lone Reshape, all-constant inputs), else ``None``.
    - ``subgraph_policy``: how the EP treats nodes inside If/Loop/Scan bodies, said in the output.
    - ``takes_subgraph_nodes``: whether nodes inside subgraphs can be claimed at all.
    - ``groups_qdq_units``: whether the EP judges and places QDQ node units as a whole.
    - ``check_unit``: the EP's own verdict on a node unit; without one, a unit is judged by
      ``check_node`` on each of its nodes (the first refusal refuses the unit).
    - ``exact_groups``: the EP's own replay of ORT's partition walk, for an EP whose walk judges
      more than each unit on its own (NNAPI's in-partition uint8 rule); without one, the generic
      walk (:func:`ortprep.eps.partition.form_partitions`) with ``discard`` is used.
    - ``partition_input_refusal``: with ``exact_groups``, why the walk left out a unit
      ``check_unit`` accepts (said as that unit's reason).
    """

    ep_id: str
    display_name: str
    ort_source_version: str
    check_node: Check
    compiles: bool = True
    stop_ops: frozenset[str] = frozenset()
    discard: Callable[[list[Node], Graph], str | None] | None = None
    subgraph_policy: str = ""
    takes_subgraph_nodes: bool = True
    groups_qdq_units: bool = True
    check_unit: UnitCheck | None = None
    exact_groups: GroupWalk | None = None
    partition_input_refusal: InputRefusal | None = None


def rule_table(rules: list[OpRule]) -> Mapping[tuple[str, str], OpRule]:
    """Index rules by (domain, op_type); duplicates are a bug in the table."""
    table: dict[tuple[str, str], OpRule] = {}
    for r in rules:
        key = (r.domain, r.op_type)
        if key in table:
            raise ValueError(f"duplicate rule for {key}")
        table[key] = r
    return table


def all_static(shape: tuple[int | str | None, ...] | None) -> bool:
    """True when every dimension is a fixed number (rank known)."""
    return shape is not None and all(isinstance(d, int) and d >= 0 for d in shape)


def has_dynamic_dim(shape: tuple[int | str | None, ...] | None) -> bool:
    return not all_static(shape)


def describe_node(node: Node) -> str:
    return f"{node.op_type} node {node.name!r}"


__all__ = [
    "Check",
    "EpOptions",
    "EpSpec",
    "GroupWalk",
    "InputRefusal",
    "NodeContext",
    "OpRule",
    "UnitCheck",
    "all_static",
    "describe_node",
    "has_dynamic_dim",
    "rule_table",
]
