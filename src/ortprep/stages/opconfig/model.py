"""The config model: ops with their opsets and types, read and written in the layout of ORT's
``reduced_build_config_parser.py`` and ``ort_format_model/utils.py``; combining and merging."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ortprep.core.errors import OrtprepError, UsageError

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
        return json.dumps(self.to_dict())

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


def summarize(cfg: OpConfig) -> dict[str, Any]:
    """Counts of what ``cfg`` lists (the ``summary`` of ``config build`` and ``inspect``)."""
    return {
        "kind": cfg.kind,
        "domains": len({e.domain for e in cfg.entries}),
        "opsets": len({(e.domain, e.opset) for e in cfg.entries}),
        "ops": len(cfg.ops()),
        "entries": len(cfg.entries),
    }


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
