"""Reduced-build operator configs: read, write, build, merge, check coverage, and the build command.

A config (``required_operators[_and_types]*.config``) lists the kernels a reduced ONNX Runtime build
keeps (``build.py --include_ops_by_config``). This module reads and writes the layout ORT's own
tools read and write (``onnxruntime/tools/reduced_build_config_parser.py`` and
``ort_format_model/utils.py``), builds configs with ORT's own ``OrtFormatModelProcessor`` and
``OperatorTypeUsageManager`` (never re-implementing type tracking), and answers "will these models
run on a build made from this config?" with the rule ORT's kernel exclusion applies.

Example::

    cfg = parse_config(Path("required_operators.config").read_text())
    result = check_coverage(cfg, [Path("model.ort")])
    print(result.ok, [m.missing_ops for m in result.models])
"""

from __future__ import annotations

import json
import shlex
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ortprep.core.errors import BadModelError, OrtprepError, UsageError
from ortprep.core.graph import Graph, Model, Node

__all__ = [
    "ALL_OPS_DIRECTIVE",
    "BuildCommand",
    "BuildFlag",
    "BuildResult",
    "ConfigError",
    "ConfigInfo",
    "CoverageResult",
    "MergeResult",
    "MissingOp",
    "MissingType",
    "ModelCoverage",
    "ModelStatus",
    "OpConfig",
    "OpEntry",
    "OpTypes",
    "build_command",
    "check_coverage",
    "config_file_name",
    "config_from_ort_files",
    "format_config",
    "inspect_config",
    "merge",
    "parse_config",
    "read_config",
    "run_build",
    "run_build_command",
    "run_check",
    "run_merge",
]

ProgressFn = Callable[[str, int, int], None]

GLOBAL_TYPES_DIRECTIVE = "!globally_allowed_types;"
ALL_OPS_DIRECTIVE = "!no_ops_specified_means_all_ops_are_required"
STYLES = ("fixed", "runtime")
PLATFORMS = ("arm", "amd64")
TARGETS = ("android", "ios", "linux-arm", "linux-x86")
# EPs a deployment target can use (ARCHITECTURE.md "Targets"); ``coreml`` stands for both formats.
TARGET_EPS = {
    "android": ("nnapi", "xnnpack"),
    "ios": ("coreml", "coreml-mlprogram", "coreml-neuralnetwork", "xnnpack"),
    "linux-arm": ("xnnpack",),
    "linux-x86": ("xnnpack",),
}


class ConfigError(OrtprepError):
    """A config file ORT's build scripts would reject or misread (exit 2)."""


def _no_progress(description: str, done: int, total: int) -> None:
    """Progress sink used when the caller passes none."""


# --------------------------------------------------------------------------------------------
# The config model
# --------------------------------------------------------------------------------------------

IndexTypes = tuple[tuple[int, tuple[str, ...]], ...]


def _norm_index_types(value: Iterable[tuple[int, Iterable[str]]]) -> IndexTypes:
    merged: dict[int, set[str]] = {}
    for index, names in value:
        merged.setdefault(int(index), set()).update(names)
    return tuple((i, tuple(sorted(merged[i]))) for i in sorted(merged))


@dataclass(frozen=True)
class OpTypes:
    """The type JSON glued to an op name: types per input/output index, or OneHot's triples.

    ``None`` in place of an ``OpTypes`` means "no JSON": ORT then keeps every type of the op.
    An empty ``OpTypes`` (``{}``) is different: ORT keeps none of the op's typed registrations.
    """

    inputs: IndexTypes = ()
    outputs: IndexTypes = ()
    custom: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", _norm_index_types(self.inputs))
        object.__setattr__(self, "outputs", _norm_index_types(self.outputs))
        object.__setattr__(self, "custom", tuple(sorted({tuple(t) for t in self.custom})))

    @classmethod
    def from_json(cls, text: str) -> OpTypes:
        """Parse the JSON of one op (what ORT's ``from_config_entry`` reads)."""
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"type info {text!r} is not valid JSON ({exc.msg})") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"type info {text!r} must be a JSON object")
        unknown = set(doc) - {"inputs", "outputs", "custom"}
        if unknown:
            raise ConfigError(
                f"type info {text!r}: unknown key(s) {sorted(unknown)}",
                'expected "inputs", "outputs" or "custom"',
            )

        def index_map(key: str) -> IndexTypes:
            value = doc.get(key, {})
            ok = isinstance(value, dict) and all(
                str(k).isdigit() and isinstance(v, list) and all(isinstance(t, str) for t in v)
                for k, v in value.items()
            )
            if not ok:
                raise ConfigError(
                    f'type info {text!r}: "{key}" must map index strings to lists of type names'
                )
            return tuple((int(k), tuple(v)) for k, v in value.items())

        custom = doc.get("custom", [])
        if not isinstance(custom, list) or not all(
            isinstance(t, list) and all(isinstance(x, str) for x in t) for t in custom
        ):
            raise ConfigError(f'type info {text!r}: "custom" must be a list of type-name lists')
        return cls(index_map("inputs"), index_map("outputs"), tuple(tuple(t) for t in custom))

    def to_json(self) -> str:
        """The JSON exactly as ORT's ``to_config_entry`` writes it (``json.dumps`` defaults)."""
        doc: dict[str, Any] = {}
        if self.inputs:
            doc["inputs"] = {str(i): list(t) for i, t in self.inputs}
        if self.outputs:
            doc["outputs"] = {str(i): list(t) for i, t in self.outputs}
        if self.custom:
            doc["custom"] = [list(t) for t in self.custom]
        return json.dumps(doc)

    def types_at(self, kind: str, index: int) -> tuple[str, ...] | None:
        """Types listed for ``inputs``/``outputs`` ``index``; ``None`` when the index is absent."""
        return dict(self.inputs if kind == "inputs" else self.outputs).get(index)

    def union(self, other: OpTypes) -> OpTypes:
        """Every type of both (how ORT's processors accumulate over several models)."""
        return OpTypes(
            self.inputs + other.inputs, self.outputs + other.outputs, self.custom + other.custom
        )

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.inputs:
            doc["inputs"] = {str(i): list(t) for i, t in self.inputs}
        if self.outputs:
            doc["outputs"] = {str(i): list(t) for i, t in self.outputs}
        if self.custom:
            doc["custom"] = [list(t) for t in self.custom]
        return doc


@dataclass(frozen=True, order=True)
class OpEntry:
    """One kernel to keep: ``domain;opset;op`` with its optional type info."""

    domain: str
    opset: int
    op: str
    types: OpTypes | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "opset": self.opset,
            "op": self.op,
            "types": None if self.types is None else self.types.to_dict(),
        }


@dataclass(frozen=True)
class OpConfig:
    """A parsed config: entries (domain → opset → op → optional types) plus the two directives.

    Entries are kept sorted and unique, so two configs that ORT reads the same compare equal.
    Comment lines are carried along for writing but never compared.
    """

    entries: tuple[OpEntry, ...] = ()
    globally_allowed_types: tuple[str, ...] | None = None
    all_ops_when_none_listed: bool = False
    comments: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        unique: dict[tuple[str, int, str], OpEntry] = {}
        for e in self.entries:
            key = (e.domain, e.opset, e.op)
            if key not in unique or (unique[key].types is None and e.types is not None):
                unique[key] = e
        entries = tuple(sorted(unique.values()))
        object.__setattr__(self, "entries", entries)
        if self.globally_allowed_types is not None:
            object.__setattr__(
                self, "globally_allowed_types", tuple(sorted(set(self.globally_allowed_types)))
            )
        per_op: dict[tuple[str, str], OpTypes] = {}
        for e in entries:
            if e.types is None:
                continue
            seen = per_op.setdefault((e.domain, e.op), e.types)
            if seen != e.types:
                # ORT tracks types per op, not per opset: of two different lists it would silently
                # keep the last one it reads. Refuse rather than guess which was meant.
                raise ConfigError(
                    f"{e.domain} {e.op}: different type info on different lines; ORT keeps only "
                    "the last one it reads",
                    "give the op one type list (ortprep config merge writes consistent files)",
                )
        if per_op and self.globally_allowed_types is not None:
            raise ConfigError(
                "Specifying globally allowed types and per-op type reduction info together is "
                "unsupported (ORT's build script rejects such a config)",
                "keep either the !globally_allowed_types line or the per-op type JSON",
            )

    @property
    def has_per_op_types(self) -> bool:
        return any(e.types is not None for e in self.entries)

    @property
    def has_types(self) -> bool:
        """Whether the config carries type info (per op, or globally allowed types)."""
        return self.has_per_op_types or self.globally_allowed_types is not None

    @property
    def kind(self) -> str:
        """``ops-and-types`` when the config carries type info, else ``ops-only``."""
        return "ops-and-types" if self.has_types else "ops-only"

    @property
    def requires_all_ops(self) -> bool:
        """True when ORT keeps every op (the directive is present and no op is listed)."""
        return self.all_ops_when_none_listed and not self.entries

    def domains(self) -> dict[str, dict[int, dict[str, OpTypes | None]]]:
        """Nested view: domain → opset → op → types."""
        view: dict[str, dict[int, dict[str, OpTypes | None]]] = {}
        for e in self.entries:
            view.setdefault(e.domain, {}).setdefault(e.opset, {})[e.op] = e.types
        return view

    def opsets_for(self, domain: str, op: str) -> tuple[int, ...]:
        """The opsets at which ``op`` is listed."""
        return tuple(sorted({e.opset for e in self.entries if e.domain == domain and e.op == op}))

    def effective_types(self, domain: str, op: str) -> OpTypes | None:
        """The type info ORT applies to ``op`` (types are per op, whatever line they sit on)."""
        for e in self.entries:
            if e.domain == domain and e.op == op and e.types is not None:
                return e.types
        return None

    def ops(self) -> tuple[tuple[str, str], ...]:
        """Distinct ``(domain, op)`` pairs."""
        return tuple(sorted({(e.domain, e.op) for e in self.entries}))

    def without(self, domain: str, op: str) -> OpConfig:
        """A copy with every entry of ``op`` removed (for what-if checks and tests)."""
        return OpConfig(
            tuple(e for e in self.entries if (e.domain, e.op) != (domain, op)),
            self.globally_allowed_types,
            self.all_ops_when_none_listed,
            self.comments,
        )

    def with_comments(self, comments: Iterable[str]) -> OpConfig:
        return OpConfig(
            self.entries,
            self.globally_allowed_types,
            self.all_ops_when_none_listed,
            tuple(comments),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "globally_allowed_types": None
            if self.globally_allowed_types is None
            else list(self.globally_allowed_types),
            "no_ops_specified_means_all_ops_are_required": self.all_ops_when_none_listed,
            "entries": [e.to_dict() for e in self.entries],
        }


# --------------------------------------------------------------------------------------------
# Reading and writing (the layout of ORT's reduced_build_config_parser.py and utils.py)
# --------------------------------------------------------------------------------------------


def _split_ops(text: str, where: str) -> list[tuple[str, str | None]]:
    """``A,B{json},C`` -> ``[("A", None), ("B", "{json}"), ("C", None)]`` (braces may nest)."""
    found: list[tuple[str, str | None]] = []
    i, end = 0, len(text)
    while i < end:
        comma = text.find(",", i)
        brace = text.find("{", i)
        comma = end if comma == -1 else comma
        if brace != -1 and brace < comma:
            name = text[i:brace].strip()
            depth, j = 0, brace
            while j < end:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
                if depth == 0:
                    break
            if depth != 0:
                raise ConfigError(f"{where}: mismatched {{ and }} in the type info of {name!r}")
            found.append((name, text[brace:j]))
            rest = text[j:].lstrip()
            if rest and not rest.startswith(","):
                raise ConfigError(f"{where}: expected ',' after the type info of {name!r}")
            i = end - len(rest) + 1
        else:
            found.append((text[i:comma].strip(), None))
            i = comma + 1
    for name, _ in found:
        if not name or not name.replace("_", "").isalnum():
            raise ConfigError(f"{where}: {name!r} is not an operator name")
    return found


def _valid_type_names() -> frozenset[str]:
    from onnxruntime.tools.ort_format_model.types import FbsTypeInfo

    return frozenset(FbsTypeInfo.tensordatatype_to_string.values())


def parse_config(text: str, source: str = "config") -> OpConfig:
    """Parse config text as ORT's ``reduced_build_config_parser.parse_config`` reads it.

    Lines: ``# comments``, blank lines, ``!globally_allowed_types;T0,T1``,
    ``!no_ops_specified_means_all_ops_are_required`` and ``DOMAIN;OPSET[,OPSET];OP[{json}],...``
    (entries accumulate across lines). Raises :class:`ConfigError` where ORT's scripts would fail
    and where ORT would silently keep only one of two different type lists for one op.
    """
    entries: list[OpEntry] = []
    comments: list[str] = []
    global_types: tuple[str, ...] | None = None
    all_ops = False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        where = f"{source}, line {lineno}"
        if not line:
            continue
        if line.startswith("#"):
            comments.append(line[1:])
            continue
        if line.startswith(GLOBAL_TYPES_DIRECTIVE):
            if global_types is not None:
                raise ConfigError(f"{where}: globally allowed types were already specified")
            names = tuple(s.strip() for s in line.split(";")[1].split(","))
            invalid = sorted(set(names) - _valid_type_names())
            if invalid:
                raise ConfigError(
                    f"{where}: invalid globally allowed type(s) {invalid}",
                    "use ORT's C++ names: " + ", ".join(sorted(_valid_type_names())),
                )
            global_types = names
            continue
        if line == ALL_OPS_DIRECTIVE:
            all_ops = True
            continue
        if line.startswith("!"):
            raise ConfigError(f"{where}: unknown directive {line.split(';')[0]!r}")
        parts = [p.strip() for p in line.split(";")]
        if len(parts) != 3:
            raise ConfigError(
                f"{where}: expected DOMAIN;OPSETS;OPS, got {line[:60]!r}",
                "example: ai.onnx;13;Add,Conv",
            )
        domain, opsets_text, ops_text = parts
        if not domain:
            raise ConfigError(f"{where}: missing domain")
        try:
            opsets = [int(s) for s in opsets_text.split(",")]
        except ValueError:
            raise ConfigError(f"{where}: opsets {opsets_text!r} must be integers") from None
        if any(o < 1 for o in opsets):
            raise ConfigError(f"{where}: opsets must be positive")
        for name, type_json in _split_ops(ops_text, where):
            try:
                types = None if type_json is None else OpTypes.from_json(type_json)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {name}: {exc.message}", exc.hint) from None
            entries.extend(OpEntry(domain, opset, name, types) for opset in opsets)
    return OpConfig(tuple(entries), global_types, all_ops, tuple(comments))


def read_config(path: Path) -> OpConfig:
    """Read and parse a config file; a missing or unreadable file is a :class:`ConfigError`."""
    if not path.exists():
        raise ConfigError(f"{path}: no such file")
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, expected a .config file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file, so not an operator config") from None
    return parse_config(text, str(path))


def format_config(cfg: OpConfig) -> str:
    """Write ``cfg`` in the layout ORT's ``create_config_from_models`` writes.

    Comments first, then the directives, then one line per (domain, opset) in sorted order with
    the ops sorted by name, each followed by its type JSON when it has one.
    """
    lines = [f"#{c}" for c in cfg.comments]
    if cfg.globally_allowed_types is not None:
        lines.append(GLOBAL_TYPES_DIRECTIVE + ",".join(cfg.globally_allowed_types))
    if cfg.all_ops_when_none_listed:
        lines.append(ALL_OPS_DIRECTIVE)
    for domain, by_opset in sorted(cfg.domains().items()):
        for opset, ops in sorted(by_opset.items()):
            items = [op + ("" if t is None else t.to_json()) for op, t in sorted(ops.items())]
            lines.append(f"{domain};{opset};{','.join(items)}")
    return "".join(line + "\n" for line in lines)


def config_file_name(
    type_reduction: bool, style: str = "fixed", model_stem: str | None = None, level: str = "all"
) -> str:
    """ORT's converter's config file name (ARCHITECTURE.md "File names")."""
    name = "required_operators_and_types" if type_reduction else "required_operators"
    name += "" if level == "all" else f".{level}"
    name += ".with_runtime_opt" if style == "runtime" else ""
    return (f"{model_stem}." if model_stem else "") + name + ".config"


# --------------------------------------------------------------------------------------------
# Merging
# --------------------------------------------------------------------------------------------


def combine(configs: Sequence[OpConfig]) -> OpConfig:
    """Union of per-model configs as ORT's processors accumulate them (no JSON = nothing seen)."""
    types: dict[tuple[str, str], OpTypes] = {}
    for cfg in configs:
        for e in cfg.entries:
            if e.types is not None:
                key = (e.domain, e.op)
                types[key] = types[key].union(e.types) if key in types else e.types
    entries = [
        OpEntry(e.domain, e.opset, e.op, types.get((e.domain, e.op)))
        for cfg in configs
        for e in cfg.entries
    ]
    return OpConfig(tuple(entries))


def merge(configs: Sequence[OpConfig], comments: Iterable[str] = ()) -> OpConfig:
    """The smallest config a build covering every input config needs: normalized and sorted.

    Ops: the union. Types, per op: the union of the inputs' lists, where an op one input lists
    without type info (so with all its types) keeps all its types. Globally allowed types: the
    union when every input has them; a config without any type info lifts the restriction.
    Mixing globally allowed types with per-op type info cannot be expressed, so it is refused.
    """
    if not configs:
        raise UsageError("nothing to merge")
    if any(c.requires_all_ops for c in configs):
        return OpConfig((), None, True, tuple(comments))
    global_ = [c for c in configs if c.globally_allowed_types is not None]
    per_op = [c for c in configs if c.has_per_op_types]
    if global_ and per_op:
        raise ConfigError(
            "cannot merge a config with globally allowed types and one with per-op type info",
            "ORT's build script accepts only one of the two in a config",
        )
    globally: tuple[str, ...] | None = None
    if global_ and len(global_) == len(configs):
        globally = tuple(t for c in global_ for t in c.globally_allowed_types or ())
    types: dict[tuple[str, str], OpTypes | None] = {}
    for cfg in configs:
        typed = cfg.has_per_op_types
        for domain, op in cfg.ops():
            mine = cfg.effective_types(domain, op) if typed else None
            key = (domain, op)
            if key not in types:
                types[key] = mine
            else:
                prev = types[key]
                types[key] = None if prev is None or mine is None else prev.union(mine)
    entries = [
        OpEntry(e.domain, e.opset, e.op, types[(e.domain, e.op)])
        for cfg in configs
        for e in cfg.entries
    ]
    all_ops = any(c.all_ops_when_none_listed for c in configs)
    return OpConfig(tuple(entries), globally, all_ops, tuple(comments))


# --------------------------------------------------------------------------------------------
# Reading ORT-format models with ORT's own processors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _OrtNeeds:
    """What one or more ``.ort`` files need: ops (with types), input-0 types, replayed ops."""

    config: OpConfig
    first_input_types: dict[tuple[str, str], frozenset[str]]
    replay_ops: frozenset[tuple[str, str, int]]


class _FbsNode:
    """One node of our ``.ort`` view with the accessors of ORT's generated ``fbs.Node`` that
    ORT's type-usage processors call (names as ``str``, the keys of :class:`_TypeInfos`)."""

    __slots__ = ("_node",)

    def __init__(self, node: Node) -> None:
        self._node = node

    def OpType(self) -> bytes:  # noqa: N802 -- ORT's generated accessor names
        return self._node.op_type.encode()

    def Domain(self) -> bytes:  # noqa: N802
        return self._node.domain.encode()

    def InputsLength(self) -> int:  # noqa: N802
        return len(self._node.inputs)

    def Inputs(self, i: int) -> str:  # noqa: N802
        return self._node.inputs[i]

    def OutputsLength(self) -> int:  # noqa: N802
        return len(self._node.outputs)

    def Outputs(self, i: int) -> str:  # noqa: N802
        return self._node.outputs[i]


class _TypeInfos(Mapping[str, Any]):
    """Value name -> ``fbs.TypeInfo`` for one graph level and its outer scopes, read on demand
    (ORT's processor builds this dict eagerly for every value, ort_model_processor.py)."""

    def __init__(self, graph: Graph, outer: Mapping[str, Any] | None) -> None:
        self._values: Any = graph.values  # the reader's lazy values (fbs_type_info)
        self._outer = outer

    def __getitem__(self, name: str) -> Any:
        if name in self._values:
            return self._values.fbs_type_info(name)
        if self._outer is not None:
            return self._outer[name]
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return name in self._values or (self._outer is not None and name in self._outer)

    def __iter__(self) -> Iterator[str]:
        yield from self._values
        if self._outer is not None:
            yield from (k for k in self._outer if k not in self._values)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def analyse_ort_model(model: Model, type_reduction: bool, first_inputs: bool = True) -> _OrtNeeds:
    """Ops (with types) of one ``.ort`` model, as ORT's ``OrtFormatModelProcessor`` finds them.

    The walk restates ORT's processor (ort_model_processor.py: every node's domain, since-version
    and op, subgraphs with their outer scope) over our verified reader's view; the type tracking
    proper is ORT's ``OperatorTypeUsageManager``. The type of each node's first input is noted
    too, unless ``first_inputs`` is False: only the globally-allowed-types check needs it (ORT's
    manager has no processor, hence no record, for most ops).
    """
    from onnxruntime.tools.ort_format_model import OperatorTypeUsageManager
    from onnxruntime.tools.ort_format_model.types import value_name_to_typestr

    required: dict[tuple[str, int], set[str]] = {}
    manager = OperatorTypeUsageManager() if type_reduction else None
    first_input_types: dict[tuple[str, str], set[str]] = {}

    def walk(graph: Graph, outer: Mapping[str, Any] | None) -> None:
        infos = _TypeInfos(graph, outer)
        for node in graph.nodes:
            required.setdefault((node.domain, node.since_version or 0), set()).add(node.op_type)
            fbs_node = _FbsNode(node)
            if manager is not None:
                manager.process_node(fbs_node, infos)
            if first_inputs and node.inputs and node.inputs[0]:
                try:
                    type_str = value_name_to_typestr(node.inputs[0], infos)
                except Exception:  # noqa: BLE001 -- map-typed or untyped value: nothing to note
                    pass
                else:
                    first_input_types.setdefault((node.domain, node.op_type), set()).add(type_str)
            for sub in node.subgraphs.values():
                walk(sub, infos)

    try:
        walk(model.graph, None)
    except Exception as exc:  # noqa: BLE001 -- ORT's processors raise plain errors
        raise BadModelError(
            f"{model.path}: not a readable ORT-format model ({type(exc).__name__}: {exc})",
            "re-create it with ortprep convert or ORT's converter",
        ) from None
    entries = []
    for (domain, opset), ops in required.items():
        for op in ops:
            text = manager.get_config_entry(domain, op) if manager is not None else None
            types = OpTypes.from_json(text) if text else None
            entries.append(OpEntry(domain, opset, op, types))
    produced: set[tuple[str, str, int]] = set()
    for records in model.ort.runtime_optimizations.values() if model.ort else ():
        for record in records:
            for op_id in record.produced_op_ids:
                domain, op, since = op_id.split(":")
                produced.add((domain or "ai.onnx", op, int(since)))
    return _OrtNeeds(
        OpConfig(tuple(entries)),
        {k: frozenset(v) for k, v in first_input_types.items()},
        frozenset(produced),
    )


def _analyse_ort(path: Path, type_reduction: bool, trusted: bool = False) -> _OrtNeeds:
    """Ops, types and replayable ops of one ``.ort`` file (verified first unless ``trusted``:
    written by ORT in this process)."""
    from ortprep.core.ort_file import read_ort

    if not path.is_file():
        raise BadModelError(f"{path}: no such file")
    return analyse_ort_model(read_ort(path, verify=not trusted), type_reduction)


def config_from_ort_files(
    paths: Sequence[Path], type_reduction: bool, trusted: bool = False
) -> OpConfig:
    """The config ORT's ``create_config_from_models`` writes for these ``.ort`` files.

    Ops as ORT's ``OrtFormatModelProcessor`` finds them; with ``type_reduction`` every op ORT's
    ``OperatorTypeUsageManager`` has a type processor for carries its types as JSON.
    """
    return combine([_analyse_ort(p, type_reduction, trusted=trusted).config for p in paths])


def config_of_model(model: Model, type_reduction: bool) -> OpConfig:
    """The config of one ``.ort`` model already read (``combine`` several for a folder's)."""
    return analyse_ort_model(model, type_reduction, first_inputs=False).config


def _convert_for_config(model: Path, workdir: Path, style: str, target_platform: str) -> list[Path]:
    """The ``.ort`` file(s) whose union is ORT's config for ``model`` (conversion stage)."""
    from ortprep.stages.convert import ort_files_for_config

    return list(
        ort_files_for_config(
            model, workdir, style=style, level="all", target_platform=target_platform
        )
    )


def _is_ort_file(path: Path) -> bool:
    from ortprep.core.inputs import file_kind

    return path.is_file() and path.stat().st_size > 0 and file_kind(path) == "ort"


def _model_needs(
    path: Path, workdir: Path, style: str, target_platform: str, type_reduction: bool, replay: bool
) -> tuple[_OrtNeeds, tuple[str, ...]]:
    """Needs of one model (``.ort`` as is, ``.onnx`` converted) and what was analysed."""
    if not path.exists():
        raise BadModelError(f"{path}: no such file")
    if _is_ort_file(path):
        needs = _analyse_ort(path, type_reduction)
        if not replay:
            needs = _OrtNeeds(needs.config, needs.first_input_types, frozenset())
        return needs, (path.name,)
    if path.suffix == ".config":
        raise BadModelError(f"{path}: is an operator config, not a model")
    sub = Path(tempfile.mkdtemp(prefix="m", dir=workdir))
    ort_files = _convert_for_config(path, sub, style, target_platform)
    parts = [_analyse_ort(p, type_reduction, trusted=True) for p in ort_files]  # ORT's, now
    needs = _OrtNeeds(
        combine([p.config for p in parts]),
        _merge_first_inputs(p.first_input_types for p in parts),
        frozenset(),
    )
    return needs, tuple(p.name for p in ort_files)


def _merge_first_inputs(
    maps: Iterable[dict[tuple[str, str], frozenset[str]]],
) -> dict[tuple[str, str], frozenset[str]]:
    merged: dict[tuple[str, str], frozenset[str]] = {}
    for m in maps:
        for k, v in m.items():
            merged[k] = merged.get(k, frozenset()) | v
    return merged


def _model_paths(paths: Sequence[Path], example: bool = False) -> list[Path]:
    """Model files named by ``PATH...`` (folders: every ``.onnx``, else every ``.ort``)."""
    from ortprep.core.inputs import resolve_inputs

    if example:
        if paths:
            raise UsageError("give either PATH or --example, not both")
        return [resolve_inputs(None, True)[0].path]
    if not paths:
        raise UsageError("missing PATH", "pass model files or folders, or --example")
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            onnx = [
                m.path
                for m in resolve_inputs(p, suffixes=(".onnx", ".ort"))
                if m.path.suffix == ".onnx"
            ]
            found.extend(onnx or [m.path for m in resolve_inputs(p, suffixes=(".ort",))])
        else:
            found.extend(m.path for m in resolve_inputs(p, suffixes=(".onnx", ".ort")))
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return [Path(p) for p in unique]


# --------------------------------------------------------------------------------------------
# config build
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelStatus:
    """One input model of ``config build``: what was analysed, or why it failed."""

    path: str
    analysed: tuple[str, ...] = ()
    error: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.path,
            "ok": self.ok,
            "analysed": list(self.analysed),
            "error": self.error,
            "notes": list(self.notes),
        }


def _summary(cfg: OpConfig) -> dict[str, Any]:
    return {
        "kind": cfg.kind,
        "domains": len({e.domain for e in cfg.entries}),
        "opsets": len({(e.domain, e.opset) for e in cfg.entries}),
        "ops": len(cfg.ops()),
        "entries": len(cfg.entries),
    }


@dataclass(frozen=True)
class BuildResult:
    """``config build``: the config written and the models it came from."""

    output: str
    config: OpConfig
    style: str
    target_platform: str
    type_reduction: bool
    models: tuple[ModelStatus, ...]
    onnxruntime_version: str

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.models)

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "style": self.style,
            "target_platform": self.target_platform,
            "type_reduction": self.type_reduction,
            "onnxruntime_version": self.onnxruntime_version,
            "ok": self.ok,
            "summary": _summary(self.config),
            "models": [m.to_dict() for m in self.models],
            "config": self.config.to_dict(),
        }


def _ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


def _check_options(style: str, target_platform: str) -> None:
    if style not in STYLES:
        raise UsageError(f"--style {style!r}: expected one of {', '.join(STYLES)}")
    if target_platform not in PLATFORMS:
        raise UsageError(
            f"--target-platform {target_platform!r}: expected one of {', '.join(PLATFORMS)}"
        )


def _output_path(
    out: Path, inputs: Sequence[Path], type_reduction: bool, style: str, single_stem: str | None
) -> Path:
    """``-o FILE``, or ORT's file name inside ``-o FOLDER``; never an input file."""
    target = out
    if out.is_dir():
        target = out / config_file_name(type_reduction, style, single_stem)
    resolved = target.resolve()
    if any(resolved == p.resolve() for p in inputs):
        raise UsageError(f"{target}: is one of the inputs; choose another output file")
    return target


def run_build(
    paths: Sequence[Path],
    out: Path,
    *,
    type_reduction: bool = False,
    style: str = "fixed",
    target_platform: str = "arm",
    example: bool = False,
    progress: ProgressFn | None = None,
) -> BuildResult:
    """``config build``: the config ORT's converter writes for these models, written to ``out``.

    ``.onnx`` inputs are converted (into a temporary folder) with ``style`` and
    ``target_platform`` as ORT's converter does; ``.ort`` inputs are read as they are. With a
    single input, a bad model raises (exit 2); with several, failures are reported per model.
    """
    from ortprep import __version__
    from ortprep.core.files import write_text

    _check_options(style, target_platform)
    progress = progress or _no_progress
    models = _model_paths(paths, example)
    single = models[0].stem if len(models) == 1 and not any(p.is_dir() for p in paths) else None
    target = _output_path(out, models, type_reduction, style, single)
    statuses: list[ModelStatus] = []
    configs: list[OpConfig] = []
    with tempfile.TemporaryDirectory(prefix="ortprep-config-") as tmp:
        for done, model in enumerate(models):
            progress("analysing models", done, len(models))
            try:
                needs, analysed = _model_needs(
                    model, Path(tmp), style, target_platform, type_reduction, replay=True
                )
            except OrtprepError as exc:
                if len(models) == 1:
                    raise
                statuses.append(ModelStatus(str(model), error=exc.message))
                continue
            notes: tuple[str, ...] = ()
            listed = {(e.domain, e.op, e.opset) for e in needs.config.entries}
            unlisted = sorted(f"{d}:{o}:{v}" for d, o, v in needs.replay_ops - listed)
            if unlisted:
                names = ", ".join(unlisted)
                notes = (
                    f"has saved runtime optimizations producing {names}; they are not in "
                    "its graph, so not in this config: build from the .onnx with --style "
                    "runtime to cover replay",
                )
            configs.append(needs.config)
            statuses.append(ModelStatus(str(model), analysed, None, notes))
        progress("analysing models", len(models), len(models))
    version = _ort_version()
    header = [
        f" Generated by ortprep {__version__} (onnxruntime {version}) from model/s:",
        *(f" - {m}" for m in sorted(s.path for s in statuses if s.ok)),
        f" style={style} target_platform={target_platform} "
        f"type_reduction={'on' if type_reduction else 'off'}",
    ]
    cfg = combine(configs).with_comments(header)
    if configs:
        write_text(target, format_config(cfg))
    return BuildResult(
        str(target) if configs else "",
        cfg,
        style,
        target_platform,
        type_reduction,
        tuple(statuses),
        version,
    )


# --------------------------------------------------------------------------------------------
# config merge
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MergeResult:
    """``config merge``: the merged config and where it went."""

    output: str
    inputs: tuple[str, ...]
    config: OpConfig

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "inputs": list(self.inputs),
            "summary": _summary(self.config),
            "config": self.config.to_dict(),
        }


def run_merge(files: Sequence[Path], out: Path) -> MergeResult:
    """``config merge``: the union of config files, normalized and sorted, written to ``out``."""
    from ortprep import __version__
    from ortprep.core.files import write_text

    if not files:
        raise UsageError("missing FILE", "pass two or more .config files")
    if out.is_dir():
        raise UsageError(f"{out}: is a folder; -o takes the merged config's file name")
    if any(out.resolve() == f.resolve() for f in files):
        raise UsageError(f"{out}: is one of the inputs; choose another output file")
    configs = [read_config(f) for f in files]
    comments = [f" Merged by ortprep {__version__} from:", *(f" - {f}" for f in files)]
    cfg = merge(configs, comments)
    write_text(out, format_config(cfg))
    return MergeResult(str(out), tuple(str(f) for f in files), cfg)


# --------------------------------------------------------------------------------------------
# config check: coverage
# --------------------------------------------------------------------------------------------

# Which registration ranges serve which node. ORT's build excludes a kernel registration for
# opsets [start, end] unless the config lists the op at some opset in [start, end]
# (tools/ci_build/exclude_unused_ops_and_types.py). A node with since_version s runs on the
# registration whose range holds s. So a node is covered when some listed opset o and s fall in
# the same registration range. The ranges come from the installed onnxruntime's own CPU kernel
# table (get_all_opkernel_def): the registrations the build script filters
# (cpu_execution_provider.cc, cpu_contrib_kernels.cc; op_registration_utils.py), for the release
# the docs tell you to build from. They are coarser than schema versions at times (Cast 6-12
# serves schemas 6 and 9), which a schema-only rule would get wrong.
# Ops without a CPU kernel for that version (custom ops, other EPs' ops) fall back to schema
# versions: for ai.onnx and ai.onnx.ml, onnx.defs.get_schema(op, o, domain).since_version == s;
# for other domains the same with ORT's schema registry; with no schema at all, o == s.


@lru_cache(maxsize=1)
def _cpu_kernel_ranges() -> dict[tuple[str, str], tuple[tuple[int, int, int], ...]]:
    """(domain, op) -> ((start, end, registrations in that range), ...) on the CPU EP."""
    from onnxruntime.capi import _pybind_state as capi

    counts: dict[tuple[str, str, int, int], int] = {}
    for k in capi.get_all_opkernel_def():
        if k.provider != "CPUExecutionProvider":
            continue
        start, end = k.version_range
        key = (k.domain or "ai.onnx", k.op_name, int(start), int(end))
        counts[key] = counts.get(key, 0) + 1
    table: dict[tuple[str, str], list[tuple[int, int, int]]] = {}
    for (domain, op, start, end), n in counts.items():
        table.setdefault((domain, op), []).append((start, end, n))
    return {k: tuple(sorted(v)) for k, v in table.items()}


@lru_cache(maxsize=1)
def _ort_schema_versions() -> dict[tuple[str, str], tuple[int, ...]]:
    from onnxruntime.capi import _pybind_state as capi

    table: dict[tuple[str, str], set[int]] = {}
    for s in capi.get_all_operator_schema():
        table.setdefault((s.domain or "ai.onnx", s.name), set()).add(int(s.since_version))
    return {k: tuple(sorted(v)) for k, v in table.items()}


def _schema_since(domain: str, op: str, opset: int) -> int | None:
    """The since_version of the schema ``op`` resolves to at ``opset`` (None: unknown op)."""
    if domain in ("ai.onnx", "ai.onnx.ml"):
        import onnx.defs

        try:
            d = "" if domain == "ai.onnx" else domain
            return int(onnx.defs.get_schema(op, opset, d).since_version)
        except Exception:  # noqa: BLE001 -- unknown op, or no version at that opset
            return None
    versions = [v for v in _ort_schema_versions().get((domain, op), ()) if v <= opset]
    return versions[-1] if versions else None


def _covers(domain: str, op: str, since: int, listed: Iterable[int]) -> bool:
    """Whether a listed opset keeps the kernel a node with ``since`` needs (rule above)."""
    listed = tuple(listed)
    ranges = [(a, b) for a, b, _ in _cpu_kernel_ranges().get((domain, op), ()) if a <= since <= b]
    if ranges:
        return any(a <= o <= b for a, b in ranges for o in listed)
    return any(o == since or _schema_since(domain, op, o) == since for o in listed)


def _typed_registrations(domain: str, op: str, since: int) -> bool:
    """Whether the CPU kernel for this version is registered once per type (typed registration)."""
    return any(a <= since <= b and n > 1 for a, b, n in _cpu_kernel_ranges().get((domain, op), ()))


def _kernel_range(domain: str, op: str, since: int) -> tuple[int, int] | None:
    for a, b, _ in _cpu_kernel_ranges().get((domain, op), ()):
        if a <= since <= b:
            return a, b
    return None


@dataclass(frozen=True)
class MissingOp:
    """An op (at the version a model needs) that a build from the config would not have."""

    domain: str
    op: str
    opset: int
    listed_opsets: tuple[int, ...]
    reason: str
    replay: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "op": self.op,
            "opset": self.opset,
            "listed_opsets": list(self.listed_opsets),
            "replay": self.replay,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class MissingType:
    """A type an op of a model uses that a type-reduced build from the config would drop."""

    domain: str
    op: str
    kind: str  # "input", "output" or "types" (OneHot's type triple)
    index: int | None
    type: str
    allowed: tuple[str, ...]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "op": self.op,
            "kind": self.kind,
            "index": self.index,
            "type": self.type,
            "allowed": list(self.allowed),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ModelCoverage:
    """Whether one model runs on a build from the config, and what it lacks if not."""

    path: str
    analysed: tuple[str, ...] = ()
    ops_checked: int = 0
    missing_ops: tuple[MissingOp, ...] = ()
    missing_types: tuple[MissingType, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.missing_ops and not self.missing_types

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.path,
            "ok": self.ok,
            "analysed": list(self.analysed),
            "ops_checked": self.ops_checked,
            "missing_ops": [m.to_dict() for m in self.missing_ops],
            "missing_types": [m.to_dict() for m in self.missing_types],
            "error": self.error,
        }


@dataclass(frozen=True)
class CoverageResult:
    """``config check``: per model, whether a build from the config runs it."""

    config: str
    kind: str
    style: str
    target_platform: str
    models: tuple[ModelCoverage, ...]
    onnxruntime_version: str

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.models)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "kind": self.kind,
            "style": self.style,
            "target_platform": self.target_platform,
            "onnxruntime_version": self.onnxruntime_version,
            "ok": self.ok,
            "models": [m.to_dict() for m in self.models],
        }


def _ort_reading(cfg: OpConfig) -> tuple[dict | None, Any]:
    """``(required_ops, type_filter)`` exactly as ORT's build scripts read ``cfg``."""
    from onnxruntime.tools.reduced_build_config_parser import parse_config as ort_parse_config

    with tempfile.TemporaryDirectory(prefix="ortprep-check-") as tmp:
        path = Path(tmp) / "ops.config"
        path.write_text(format_config(cfg), encoding="utf-8")
        try:
            return ort_parse_config(str(path), enable_type_reduction=True)
        except Exception as exc:  # noqa: BLE001 -- ORT's parser raises plain errors
            raise ConfigError(f"ORT's config parser rejects this config: {exc}") from None


def _reg(type_str: str) -> str:
    """C++ type name as written in a kernel registration (``std::string`` is ``string``)."""
    return "string" if type_str == "std::string" else type_str


# The index whose type keys an op's typed kernel registrations (operator_type_usage_processors.py:
# input 0 by default); other tracked indices are restricted through per-arg allowed-type lists.
_PRIMARY = {
    ("ai.onnx", "Where"): ("inputs", 1),
    ("ai.onnx", "QuantizeLinear"): ("outputs", 0),
    ("ai.onnx", "DynamicQuantizeLinear"): ("outputs", 0),
}


def _needed(type_filter: Any, domain: str, op: str, registration: str) -> bool:
    try:
        return bool(type_filter.is_typed_registration_needed(domain, op, registration))
    except Exception:  # noqa: BLE001 -- ORT's processor cannot judge this registration
        return False


def _type_gaps(
    cfg: OpConfig,
    type_filter: Any,
    domain: str,
    op: str,
    since: int,
    used: OpTypes | None,
    first_inputs: frozenset[str],
) -> list[MissingType]:
    """Types ``op`` uses that the config's type info would drop (ORT's filter semantics)."""
    global_ = cfg.globally_allowed_types
    listed = None if global_ is not None else cfg.effective_types(domain, op)
    if global_ is None and listed is None:
        return []  # no type info for this op: ORT keeps all its types
    allowed_note = (
        "the globally allowed types"
        if global_ is not None
        else "the config's type list for this op"
    )
    gaps: list[MissingType] = []
    if used is None:
        # No type processor for this op: only globally allowed types restrict it, through its
        # typed registrations (keyed by the first input's type).
        if global_ is not None and _typed_registrations(domain, op, since):
            gaps.extend(
                MissingType(
                    domain,
                    op,
                    "input",
                    0,
                    t,
                    tuple(global_),
                    f"{op} input 0 is {t}, not among {allowed_note}",
                )
                for t in sorted(first_inputs)
                if not _needed(type_filter, domain, op, _reg(t))
            )
        return gaps
    primary = _PRIMARY.get((domain, op), ("inputs", 0))
    typed = _typed_registrations(domain, op, since)
    for kind, groups in (("inputs", used.inputs), ("outputs", used.outputs)):
        for index, types in groups:
            restricted = (
                global_
                if global_ is not None
                else (listed.types_at(kind, index) if listed is not None else None)
            )
            if (kind, index) == primary and typed:
                # Typed registrations: ORT's filter decides, always-kept types included
                # (int32_t/int64_t for Add, int8_t/uint8_t/int32_t for DequantizeLinear).
                bad = [t for t in types if not _needed(type_filter, domain, op, _reg(t))]
            elif restricted is None:
                continue  # index not restricted by the config
            else:
                # One registration for all types: the per-arg (or global) allowed-type lists the
                # build writes into op_kernel_type_control_overrides.inc restrict it.
                bad = [t for t in types if t not in restricted]
            gaps.extend(
                MissingType(
                    domain,
                    op,
                    kind[:-1],
                    index,
                    t,
                    tuple(restricted or ()),
                    f"{op} {kind[:-1]} {index} is {t}, not among {allowed_note}",
                )
                for t in bad
            )
    for triple in used.custom:
        registration = "_".join(_reg(t) for t in triple)
        if not _needed(type_filter, domain, op, registration):
            allowed_triples = tuple("/".join(t) for t in (listed.custom if listed else ()))
            gaps.append(
                MissingType(
                    domain,
                    op,
                    "types",
                    None,
                    "/".join(triple),
                    tuple(global_) if global_ is not None else allowed_triples,
                    f"{op} uses the type combination {'/'.join(triple)}, not among {allowed_note}",
                )
            )
    return gaps


def _coverage_of(
    cfg: OpConfig,
    required: dict | None,
    type_filter: Any,
    needs: _OrtNeeds,
    path: str,
    analysed: tuple[str, ...],
) -> ModelCoverage:
    missing_ops: list[MissingOp] = []
    missing_types: list[MissingType] = []
    wanted = {(e.domain, e.op, e.opset): False for e in needs.config.entries}
    for d, o, v in needs.replay_ops:
        wanted.setdefault((d, o, v), True)
    for (domain, op, since), replay in sorted(wanted.items()):
        if required is not None:
            listed = tuple(sorted(v for v, ops in required.get(domain, {}).items() if op in ops))
            if not _covers(domain, op, since, listed):
                missing_ops.append(
                    MissingOp(
                        domain,
                        op,
                        since,
                        listed,
                        _missing_reason(domain, op, since, listed, replay),
                        replay,
                    )
                )
                continue
        if type_filter is not None and not replay:
            missing_types.extend(
                _type_gaps(
                    cfg,
                    type_filter,
                    domain,
                    op,
                    since,
                    needs.config.effective_types(domain, op),
                    needs.first_input_types.get((domain, op), frozenset()),
                )
            )
    unique_types = tuple(dict.fromkeys(missing_types))
    return ModelCoverage(path, analysed, len(wanted), tuple(missing_ops), unique_types)


def _missing_reason(domain: str, op: str, since: int, listed: tuple[int, ...], replay: bool) -> str:
    """Why the op is missing, in plain words (the op itself is named by the caller)."""
    why = (
        (
            "produced when the model's saved runtime optimizations are replayed "
            "(session.enable_saved_runtime_optimizations=1); "
        )
        if replay
        else ""
    )
    if not listed:
        return f"{why}not in the config"
    at = ", ".join(str(v) for v in listed)
    span = _kernel_range(domain, op, since)
    if span is None:
        serves = f"no listed opset resolves to the version-{since} schema"
    elif span[1] >= 2**31 - 1:
        serves = f"ORT's kernel for opset {since} is registered for opset {span[0]} and later"
    elif span[0] == span[1]:
        serves = f"ORT's kernel for opset {since} is registered for opset {span[0]} only"
    else:
        serves = f"ORT's kernel for opset {since} is registered for opsets {span[0]}-{span[1]}"
    return f"{why}the config lists {op} only at opset {at}; {serves}"


def check_coverage(
    config: OpConfig,
    models: Sequence[Path],
    *,
    style: str = "fixed",
    target_platform: str = "arm",
    config_name: str = "config",
    progress: ProgressFn | None = None,
) -> CoverageResult:
    """Will each model run on a build made from ``config``?

    Ops: per node (domain, op, since_version) against the kernel registration ranges (comment
    above ``_cpu_kernel_ranges``). Types (type-reduced configs): the types ORT's own type usage
    processors find in the model's ``.ort`` form, judged by the filter ORT's build script uses
    (``is_typed_registration_needed``). ``.onnx`` models are converted with ``style`` and
    ``target_platform`` first, like ``config build`` does; ``.ort`` models are read as they are,
    and ops their saved runtime optimizations produce on replay count as needed too.
    """
    _check_options(style, target_platform)
    progress = progress or _no_progress
    required, type_filter = _ort_reading(config)
    results: list[ModelCoverage] = []
    with tempfile.TemporaryDirectory(prefix="ortprep-check-") as tmp:
        for done, model in enumerate(models):
            progress("checking models", done, len(models))
            try:
                needs, analysed = _model_needs(
                    model, Path(tmp), style, target_platform, type_reduction=True, replay=True
                )
            except OrtprepError as exc:
                if len(models) == 1:
                    raise
                results.append(ModelCoverage(str(model), error=exc.message))
                continue
            results.append(_coverage_of(config, required, type_filter, needs, str(model), analysed))
        progress("checking models", len(models), len(models))
    return CoverageResult(
        config_name, config.kind, style, target_platform, tuple(results), _ort_version()
    )


def run_check(
    config_path: Path,
    paths: Sequence[Path],
    *,
    style: str = "fixed",
    target_platform: str = "arm",
    example: bool = False,
    progress: ProgressFn | None = None,
) -> CoverageResult:
    """``config check``: read the config, find the models, check each."""
    cfg = read_config(config_path)
    models = _model_paths(paths, example)
    return check_coverage(
        cfg,
        models,
        style=style,
        target_platform=target_platform,
        config_name=str(config_path),
        progress=progress,
    )


# --------------------------------------------------------------------------------------------
# inspect of a config file
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigInfo:
    """What a config file holds (``ortprep inspect FILE.config``)."""

    path: str
    config: OpConfig
    size_bytes: int
    format: str = "config"

    @property
    def kind(self) -> str:
        return self.config.kind

    def ops(self) -> list[dict[str, Any]]:
        rows = []
        for domain, op in self.config.ops():
            types = self.config.effective_types(domain, op)
            rows.append(
                {
                    "domain": domain,
                    "op": op,
                    "opsets": list(self.config.opsets_for(domain, op)),
                    "types": None if types is None else types.to_dict(),
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        cfg = self.config
        domains = []
        for domain, by_opset in sorted(cfg.domains().items()):
            domains.append(
                {
                    "domain": domain,
                    "opsets": sorted(by_opset),
                    "ops": len({op for ops in by_opset.values() for op in ops}),
                }
            )
        return {
            "path": self.path,
            "format": self.format,
            "kind": self.kind,
            "size_bytes": self.size_bytes,
            "counts": _summary(cfg)
            | {
                "ops_with_types": sum(
                    1 for d, o in cfg.ops() if cfg.effective_types(d, o) is not None
                )
            },
            "domains": domains,
            "ops": self.ops(),
            "globally_allowed_types": None
            if cfg.globally_allowed_types is None
            else list(cfg.globally_allowed_types),
            "no_ops_specified_means_all_ops_are_required": cfg.all_ops_when_none_listed,
            "requires_all_ops": cfg.requires_all_ops,
            "comments": list(cfg.comments),
        }


def inspect_config(path: Path) -> ConfigInfo:
    """Summarize a config file: kind, counts, ops with their opsets and types."""
    cfg = read_config(path)
    return ConfigInfo(str(path), cfg, path.stat().st_size)


# --------------------------------------------------------------------------------------------
# build-command
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildFlag:
    """One ``build.py`` option, its values, and why it is there."""

    flag: str
    values: tuple[str, ...] = ()
    why: str = ""

    def tokens(self) -> list[str]:
        return [self.flag, *self.values]

    def to_dict(self) -> dict[str, Any]:
        return {"flag": self.flag, "values": list(self.values), "why": self.why}


@dataclass(frozen=True)
class BuildCommand:
    """The ``build.py`` invocation for a reduced ORT build, each flag with its reason."""

    target: str
    eps: tuple[str, ...]
    build: str  # "minimal" or "extended-minimal"
    build_reasons: tuple[str, ...]
    config_path: str
    config_kind: str
    flags: tuple[BuildFlag, ...]
    notes: tuple[str, ...]
    onnxruntime_version: str

    @property
    def argv(self) -> list[str]:
        return ["python3", "tools/ci_build/build.py", *(t for f in self.flags for t in f.tokens())]

    @property
    def command(self) -> str:
        """The command on one logical line, continued per flag (values shell-quoted)."""
        parts = ["python3 tools/ci_build/build.py"]
        parts.extend(" ".join([f.flag, *(_shell(v) for v in f.values)]) for f in self.flags)
        return " \\\n  ".join(parts)

    def script(self) -> str:
        """The command preceded by comments saying why each flag is there."""
        kind = "extended minimal" if self.build == "extended-minimal" else "basic minimal"
        lines = [
            f"# Reduced ONNX Runtime build for {self.target}: {kind} build.",
            *(f"#   {r}" for r in self.build_reasons),
            f"# Run in an onnxruntime checkout at tag v{self.onnxruntime_version} (the release "
            "that converts your models).",
            "# Why each flag:",
        ]
        width = max(len(" ".join([f.flag, *f.values])) for f in self.flags)
        lines.extend(f"#   {' '.join([f.flag, *f.values]):<{width}}  {f.why}" for f in self.flags)
        lines.extend(f"# Note: {n}" for n in self.notes)
        lines.append(self.command)
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "eps": list(self.eps),
            "build": self.build,
            "build_reasons": list(self.build_reasons),
            "config": self.config_path,
            "config_kind": self.config_kind,
            "onnxruntime_version": self.onnxruntime_version,
            "argv": self.argv,
            "command": self.command,
            "flags": [f.to_dict() for f in self.flags],
            "notes": list(self.notes),
        }


def _shell(value: str) -> str:
    # Environment-variable placeholders stay expandable; everything else is quoted.
    if value.startswith('"$') and value.endswith('"'):
        return value
    return shlex.quote(value)


def _normalize_eps(target: str, eps: Iterable[str]) -> tuple[str, ...]:
    names: list[str] = []
    for item in eps:
        names.extend(p.strip().lower() for p in item.split(",") if p.strip())
    allowed = TARGET_EPS[target]
    for name in names:
        if name not in allowed:
            raise UsageError(
                f"--ep {name}: not available for --target {target}",
                f"choose from {', '.join(allowed)}",
            )
    return tuple(dict.fromkeys(names))


def build_command(
    config: OpConfig,
    target: str,
    eps: Iterable[str] = (),
    replay: bool = False,
    extended: bool = False,
    *,
    config_path: str = "required_operators.config",
) -> BuildCommand:
    """The ``build.py`` flags for ``target`` (ort-internals §3.1, ``build_args.py``).

    Extended minimal when a compiling EP (NNAPI, CoreML) or XNNPACK is named, when saved runtime
    optimizations are to be replayed, or when asked; otherwise the smaller basic minimal build.
    """
    if target not in TARGETS:
        raise UsageError(f"--target {target!r}: expected one of {', '.join(TARGETS)}")
    eps = _normalize_eps(target, eps)
    coreml = any(e.startswith("coreml") for e in eps)
    reasons: list[str] = []
    if "nnapi" in eps:
        reasons.append(
            "NNAPI compiles the nodes it takes when the model loads; runtime "
            "partitioning for compiling EPs exists only in an extended minimal build."
        )
    if coreml:
        reasons.append(
            "CoreML compiles the nodes it takes when the model loads; runtime "
            "partitioning for compiling EPs exists only in an extended minimal build."
        )
    if "xnnpack" in eps:
        reasons.append(
            "XNNPACK claims nodes when the model loads and moves them to NHWC layout; "
            "runtime partitioning and layout transformation exist only in an extended "
            "minimal build (graph_partitioner.cc)."
        )
    if replay:
        reasons.append(
            "Replaying saved runtime optimizations needs the optimizer code an "
            "extended minimal build keeps (ORT 1.11 and later)."
        )
    if extended and not reasons:
        reasons.append("Asked for with --extended.")
    is_extended = bool(reasons)
    if not is_extended:
        reasons.append(
            "No compiling EP and no replay of saved runtime optimizations: a basic "
            "minimal build (ORT-format models, CPU EP) is the smallest."
        )

    flags: list[BuildFlag] = [
        BuildFlag("--build_dir", (f"build/{target}",), "where build.py puts the build"),
        BuildFlag("--config", ("MinSizeRel",), "optimize for size: the smallest binary"),
        BuildFlag("--parallel", (), "compile on every core"),
        BuildFlag("--skip_tests", (), "tests cannot run against a reduced op set"),
    ]
    if is_extended:
        drivers = [
            name
            for name, on in (
                ("NNAPI", "nnapi" in eps),
                ("CoreML", coreml),
                ("XNNPACK", "xnnpack" in eps),
                ("replay of saved runtime optimizations", replay),
                ("--extended", extended),
            )
            if on
        ]
        flags.append(
            BuildFlag(
                "--minimal_build",
                ("extended",),
                "extended minimal build, for " + ", ".join(drivers),
            )
        )
    else:
        flags.append(
            BuildFlag(
                "--minimal_build",
                (),
                "ORT-format models only, no graph optimizers: the smallest runtime",
            )
        )
    flags.append(
        BuildFlag(
            "--include_ops_by_config", (config_path,), "keep only the kernels the config lists"
        )
    )
    if config.has_types:
        flags.append(
            BuildFlag(
                "--enable_reduced_operator_type_support",
                (),
                "the config carries type info: keep only those types",
            )
        )
    domains = {e.domain for e in config.entries}
    if not any(d.startswith("ai.onnx.ml") for d in domains) and not config.requires_all_ops:
        flags.append(
            BuildFlag(
                "--disable_ml_ops",
                (),
                "the config lists no ai.onnx.ml op: drop ML ops and map types",
            )
        )
    contrib = any(d.startswith("com.microsoft") for d in domains)
    if not contrib and "xnnpack" not in eps and not config.requires_all_ops:
        flags.append(BuildFlag("--disable_contrib_ops", (), "the config lists no com.microsoft op"))
    flags.append(
        BuildFlag(
            "--disable_exceptions",
            (),
            "abort instead of throw: smaller (valid in minimal builds; not with Python bindings)",
        )
    )
    flags.append(BuildFlag("--disable_rtti", (), "no run-time type information: smaller"))
    optional_ops = {"Optional", "OptionalHasElement", "OptionalGetElement"}
    if not config.requires_all_ops and not any(e.op in optional_ops for e in config.entries):
        flags.append(BuildFlag("--disable_types", ("optional",), "the config lists no Optional op"))

    notes: list[str] = []
    if target == "android":
        flags.extend(
            [
                BuildFlag("--android", (), "cross-compile for Android"),
                BuildFlag("--android_sdk_path", ('"$ANDROID_HOME"',), "your Android SDK"),
                BuildFlag("--android_ndk_path", ('"$ANDROID_NDK_HOME"',), "your Android NDK"),
                BuildFlag("--android_abi", ("arm64-v8a",), "64-bit ARM phones"),
                BuildFlag(
                    "--android_api",
                    ("24",),
                    "ORT's own Android packages' minimum SDK; raise to your app's minSdk",
                ),
                BuildFlag("--build_shared_lib", (), "libonnxruntime.so for your app to load"),
            ]
        )
        notes.append(
            "for an AAR, pass the same flags as build_params to "
            "tools/android_custom_build/build_custom_android_package.py"
        )
    elif target == "ios":
        flags.extend(
            [
                BuildFlag("--ios", (), "cross-compile for iOS"),
                BuildFlag("--use_xcode", (), "Xcode generator, as ORT's iOS packages use"),
                BuildFlag(
                    "--apple_sysroot",
                    ("iphoneos",),
                    "device SDK (iphonesimulator for the simulator)",
                ),
                BuildFlag("--osx_arch", ("arm64",), "iPhone CPUs"),
                BuildFlag(
                    "--apple_deploy_target",
                    ("15.1",),
                    "the iOS version ORT's own iOS packages are built for",
                ),
                BuildFlag("--build_apple_framework", (), "onnxruntime.framework for your app"),
            ]
        )
        notes.append(
            "runs on macOS only; for pods use "
            "tools/ci_build/github/apple/build_and_assemble_apple_pods.py"
        )
    else:
        flags.append(BuildFlag("--build_shared_lib", (), "libonnxruntime.so for your app to link"))
        if target == "linux-arm":
            notes.append(
                "build on an aarch64 Linux machine (build.py has no Linux cross-compile "
                "switch) or add --cmake_extra_defines "
                "CMAKE_TOOLCHAIN_FILE=<your aarch64 toolchain file>"
            )
    if "nnapi" in eps:
        flags.append(BuildFlag("--use_nnapi", (), "the NNAPI EP (Android API 27+ at run time)"))
    if coreml:
        flags.append(BuildFlag("--use_coreml", (), "the CoreML EP (NeuralNetwork and ML Program)"))
    if "xnnpack" in eps:
        flags.append(
            BuildFlag(
                "--use_xnnpack",
                (),
                "the XNNPACK EP (needs contrib ops: its NHWC kernels are internal contrib ops)",
            )
        )

    runtime_config = "with_runtime_opt" in Path(config_path).name or any(
        "style=runtime" in c for c in config.comments
    )
    if (eps or replay) and not runtime_config:
        notes.append(
            "with NNAPI, CoreML, XNNPACK or replay, build the config from Runtime-style "
            "conversions (ortprep config build --style runtime) so it lists the ops "
            "both with and without the saved optimizations applied"
        )
    if replay:
        notes.append(
            "the app must set session.enable_saved_runtime_optimizations=1 (trusted "
            "models only) and a graph optimization level of at least extended"
        )
    notes.append("remove --disable_exceptions if you also build Python bindings (--build_wheel)")
    if config.requires_all_ops:
        notes.append(
            "the config keeps every op (no op listed and "
            "!no_ops_specified_means_all_ops_are_required)"
        )
    return BuildCommand(
        target=target,
        eps=eps,
        build="extended-minimal" if is_extended else "minimal",
        build_reasons=tuple(reasons),
        config_path=config_path,
        config_kind=config.kind,
        flags=tuple(flags),
        notes=tuple(notes),
        onnxruntime_version=_ort_version(),
    )


def run_build_command(
    config_path: Path,
    target: str,
    eps: Iterable[str] = (),
    replay: bool = False,
    extended: bool = False,
) -> BuildCommand:
    """``config build-command``: read the config and compose the command for it."""
    cfg = read_config(config_path)
    return build_command(cfg, target, eps, replay, extended, config_path=str(config_path))
