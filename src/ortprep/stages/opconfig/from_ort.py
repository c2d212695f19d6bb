"""What ``.ort`` files need: their ops and types, as ORT's converter finds them for a config."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ortprep.core.errors import BadModelError, UsageError
from ortprep.core.graph import Graph, Model, Node
from ortprep.stages.opconfig.model import OpConfig, OpEntry, OpTypes, combine


@dataclass(frozen=True)
class OrtNeeds:
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


def analyse_ort_model(model: Model, type_reduction: bool, first_inputs: bool = True) -> OrtNeeds:
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
                parts = op_id.split(":")
                if len(parts) != 3 or not (parts[2].isascii() and parts[2].isdigit()):
                    raise BadModelError(  # the verifier checks structure, not this text (#13)
                        f"{model.path}: a saved runtime optimization produces {op_id!r}, not "
                        "DOMAIN:OP:VERSION (the file is corrupt)",
                        "convert the model again",
                    )
                domain, op, since = parts
                produced.add((domain or "ai.onnx", op, int(since)))
    return OrtNeeds(
        OpConfig(tuple(entries)),
        {k: frozenset(v) for k, v in first_input_types.items()},
        frozenset(produced),
    )


def _analyse_ort(path: Path, type_reduction: bool, trusted: bool = False) -> OrtNeeds:
    """Ops, types and replayable ops of one ``.ort`` file (verified first unless ``trusted``:
    written by ORT in this process)."""
    from ortprep.core.ort import read_ort

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
    from ortprep.stages.ort_artifacts import ort_files_for_config

    return list(
        ort_files_for_config(
            model, workdir, style=style, level="all", target_platform=target_platform
        )
    )


def _is_ort_file(path: Path) -> bool:
    from ortprep.core.inputs import file_kind

    return path.is_file() and path.stat().st_size > 0 and file_kind(path) == "ort"


def model_needs(
    path: Path, workdir: Path, style: str, target_platform: str, type_reduction: bool, replay: bool
) -> tuple[OrtNeeds, tuple[str, ...]]:
    """Needs of one model (``.ort`` as is, ``.onnx`` converted) and what was analysed."""
    if not path.exists():
        raise BadModelError(f"{path}: no such file")
    if _is_ort_file(path):
        needs = _analyse_ort(path, type_reduction)
        if not replay:
            needs = OrtNeeds(needs.config, needs.first_input_types, frozenset())
        return needs, (path.name,)
    if path.suffix == ".config":
        raise BadModelError(f"{path}: is an operator config, not a model")
    from ortprep.core.onnx_file import load_lean

    # the same exit-2 words as every command before ORT sees the file (weights not read)
    load_lean(path)
    sub = Path(tempfile.mkdtemp(prefix="m", dir=workdir))
    ort_files = _convert_for_config(path, sub, style, target_platform)
    parts = [_analyse_ort(p, type_reduction, trusted=True) for p in ort_files]  # ORT's, now
    needs = OrtNeeds(
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


def model_paths(paths: Sequence[Path], example: bool = False) -> list[Path]:
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
