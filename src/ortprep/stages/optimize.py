"""``optimize``: the optimized ONNX model at each level, what ORT changed, and what it costs.

For each requested level ORT itself optimizes the model and saves the graph as ONNX
(``optimized_model_filepath`` with ``session.save_model_format=ONNX`` set explicitly, weights as
external data for models over ~1 GiB or already using external data), named as ORT's converter
names it: ``NAME[.LEVEL].optimized.onnx`` (LEVEL omitted for ``all``). For an arm target NCHWc is
excluded, as ``convert`` does (ort-internals §1.5, §2.7). Each file is then explained (op
histograms, the fusions found by :func:`ortprep.stages.diff.diff_models`, a plain-words account),
loaded back as is (optimizations disabled) and compared with the original's outputs.

Online vs offline (ort-internals §1.9): creating a session for the original at level ``all``
pays for the optimizations at every load; loading the saved ``all`` model with optimizations
disabled does not. Both are timed (median of a few session creations) so the saving is a number.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ortprep.core.batch import Failure, FailureFields, attempt
from ortprep.core.errors import BadModelError, UsageError
from ortprep.core.inputs import ModelInput
from ortprep.core.progress import ProgressFn, no_progress
from ortprep.core.runtime import PLATFORMS, SessionRecipe, create_session
from ortprep.stages.diff import Fusion
from ortprep.stages.ort_artifacts import LARGE_MODEL_BYTES, save_onnx_with_ort, size_on_disk
from ortprep.stages.verify import Reference, VerifyResult

if TYPE_CHECKING:
    from ortprep.core.graph import Model, Node
    from ortprep.stages.diff import DiffResult

OPTIMIZE_LEVELS = ("basic", "extended", "layout", "all")
"""The levels ``optimize`` saves; ``--level every`` asks for all four, in this order."""

PRE_STEPS = ("onnxslim",)

LOAD_RUNS = 5
"""Session creations timed per mode (online, offline); the median is reported."""

NCHWC_DOMAIN = "com.microsoft.nchwc"
ONNX_DOMAINS = ("ai.onnx", "ai.onnx.ml")
"""Domains any ONNX runtime implements; nodes of other domains are ORT contrib ops."""


def parse_levels(value: str) -> tuple[str, ...]:
    """``"every"`` -> all four levels; ``"extended"`` -> ``("extended",)``."""
    if value == "every":
        return OPTIMIZE_LEVELS
    if value not in OPTIMIZE_LEVELS:
        raise UsageError(f"unknown level {value!r}", "use basic, extended, layout, all or every")
    return (value,)


@dataclass(frozen=True)
class OptimizeOptions:
    levels: tuple[str, ...] = OPTIMIZE_LEVELS
    target_platform: str = "arm"
    pre: str | None = None
    verify: bool = True
    fix_dims: Mapping[str, int] = field(default_factory=dict)
    inputs: Path | None = None  # real inputs for verification (.npz)

    def validate(self) -> None:
        if self.inputs is not None and not self.inputs.is_file():
            raise UsageError(f"{self.inputs}: no such inputs file", "pass an .npz file")
        if not self.levels:
            raise UsageError("no optimization level requested", "use --level every")
        for level in self.levels:
            parse_levels(level)
        if self.target_platform not in PLATFORMS:
            raise UsageError(
                f"unknown target platform {self.target_platform!r}", "use arm or amd64"
            )
        if self.pre is not None:
            if self.pre not in PRE_STEPS:
                raise UsageError(f"unknown --pre step {self.pre!r}", "use --pre onnxslim")
            _import_onnxslim()


def _import_onnxslim() -> Any:
    try:
        import onnxslim  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise UsageError(
            "--pre onnxslim: the onnxslim package is not installed",
            "pip install onnxslim (an optional extra step; ortprep does not depend on it)",
        ) from None
    return onnxslim


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class LevelResult:
    """One saved level: the file, what changed, and whether it still gives the same answers."""

    level: str
    file: str
    size_bytes: int
    nodes_before: int
    nodes_after: int
    ops_before: dict[str, int]
    ops_after: dict[str, int]
    fusions: tuple[Fusion, ...]
    removed: dict[str, int]
    added: dict[str, int]
    hardware_specific: bool
    ort_only: bool
    domains_used: tuple[str, ...]
    summary: tuple[str, ...]
    verified: bool | None
    verification: VerifyResult | None = None
    external_data_file: str | None = None

    @property
    def ok(self) -> bool:
        return self.verified is not False

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "file": self.file,
            "nodes_before": self.nodes_before,
            "nodes_after": self.nodes_after,
            "ops_before": dict(self.ops_before),
            "ops_after": dict(self.ops_after),
            "fusions": [f.to_dict() for f in self.fusions],
            "hardware_specific": self.hardware_specific,
            "verified": self.verified,
            "size_bytes": self.size_bytes,
            "external_data_file": self.external_data_file,
            "removed": dict(self.removed),
            "added": dict(self.added),
            "ort_only": self.ort_only,
            "domains_used": list(self.domains_used),
            "summary": list(self.summary),
            "verification": self.verification.to_dict() if self.verification else None,
        }


@dataclass(frozen=True)
class LoadTimes:
    """Session creation, online (optimize at every load) vs offline (load the saved model)."""

    online_ms: float
    offline_ms: float
    runs: int
    offline_file: str

    @property
    def saved_ms(self) -> float:
        return self.online_ms - self.offline_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "online_ms": round(self.online_ms, 3),
            "offline_ms": round(self.offline_ms, 3),
            "saved_ms": round(self.saved_ms, 3),
            "runs": self.runs,
            "online": "original model, session at level all (optimizations run at every load)",
            "offline": (
                f"{self.offline_file} loaded with optimizations disabled (ORT_DISABLE_ALL)"
            ),
            "statistic": "median",
        }


@dataclass(frozen=True)
class PreStep:
    """What a pre-optimizer (onnxslim) did before ORT saw the model."""

    tool: str
    version: str
    nodes_before: int
    nodes_after: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "version": self.version,
            "nodes_before": self.nodes_before,
            "nodes_after": self.nodes_after,
        }


@dataclass(frozen=True)
class OptimizedModel(FailureFields):
    """Every level of one model, or the error that stopped it."""

    model: str
    levels: tuple[LevelResult, ...] = ()
    load_time: LoadTimes | None = None
    pre: PreStep | None = None
    notes: tuple[str, ...] = ()
    failure: Failure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and all(level.ok for level in self.levels)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "model": self.model,
            "ok": self.ok,
            "levels": [level.to_dict() for level in self.levels],
            "load_time": self.load_time.to_dict() if self.load_time else None,
            "pre": self.pre.to_dict() if self.pre else None,
            "notes": list(self.notes),
        }
        if self.error:
            d["error"] = self.error
            if self.hint:
                d["hint"] = self.hint
        return d


@dataclass(frozen=True)
class OptimizeResult:
    """All models. JSON: one model's document for a file input (the contract's
    ``{"model", "levels"}``), ``{"models": [...]}`` of those for a folder input."""

    models: tuple[OptimizedModel, ...]
    options: OptimizeOptions
    onnxruntime_version: str
    folder_input: bool = False

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.models)

    @property
    def internal_error(self) -> bool:
        return any(m.internal_error for m in self.models)

    @property
    def tracebacks(self) -> tuple[str, ...]:
        return tuple(m.failure.traceback for m in self.models if m.failure and m.failure.traceback)

    def to_dict(self) -> dict[str, Any]:
        o = self.options
        run_info: dict[str, Any] = {
            "ok": self.ok,
            "onnxruntime_version": self.onnxruntime_version,
            "options": {
                "levels": list(o.levels),
                "target_platform": o.target_platform,
                "pre": o.pre,
                "verify": o.verify,
                "fix_dims": dict(o.fix_dims),
                "inputs": None if o.inputs is None else str(o.inputs),
            },
        }
        if len(self.models) == 1 and not self.folder_input:
            return {**self.models[0].to_dict(), **run_info}
        return {**run_info, "models": [m.to_dict() for m in self.models]}


# --------------------------------------------------------------------------- saving


def save_optimized_onnx(
    model: Path, target: Path, level: str, target_platform: str, external_data: bool
) -> Path | None:
    """Let ORT optimize ``model`` at ``level`` and save it as ONNX at ``target``, atomically, with
    its weights in ``TARGET.data`` when ``external_data``; returns that file, if written."""
    recipe = SessionRecipe(level=level, target_platform=target_platform)
    return save_onnx_with_ort(model, target, recipe, external_data)


def _out_path(out_dir: Path, item: ModelInput, level: str) -> Path:
    from ortprep.stages.ort_artifacts import suffix

    rel = item.relative
    stem = rel.name[: -len(rel.suffix)] if rel.suffix else rel.name
    return out_dir / rel.parent / f"{stem}{suffix(level, 'fixed', '.optimized.onnx')}"


# --------------------------------------------------------------------------- explanations


def op_histogram(model: Model) -> dict[str, int]:
    """``{"ai.onnx:Conv": 12, ...}`` over every node, subgraphs included (sorted by op)."""
    return dict(sorted(Counter(n.op_id for _, n in model.all_nodes()).items()))


def _fusion_node(fusion: Fusion, nodes_by_name: dict[str, Node]) -> Node | None:
    """A node the fusion produced (from its examples), or None."""
    for name in fusion.examples:
        node = nodes_by_name.get(name)
        if node is not None:
            return node
    return None


def _op_types(label: str) -> list[str]:
    """``"Conv×2+Relu"`` -> ``["Conv", "Conv", "Relu"]`` (the channels-last remark dropped)."""
    types: list[str] = []
    for part in label.split(" (", 1)[0].split("+"):
        op, _, times = part.partition("×")
        types.extend([op] * (int(times) if times.isdigit() else 1))
    return types


def describe_fusion(fusion: Fusion, node: Node | None = None) -> str:
    """One fusion in plain words: folded into / fused into / expanded into.

    ``node`` is one of the nodes it produced (its domain marks ORT-only ops; a value named
    ``_inlfunc_...`` marks ORT inlining an ONNX function op, e.g. HardSwish).
    """
    source, _, target = fusion.pattern.partition(" -> ")
    src_ops, dst_ops = _op_types(source), _op_types(target)
    domain = node.domain if node is not None else None
    where = f" ({domain}, ORT-only)" if domain and domain not in ONNX_DOMAINS else ""
    if len(dst_ops) == 1 and dst_ops[0] in src_ops:
        return f"{source} folded into {fusion.count} {target}{where}"
    if len(dst_ops) > len(src_ops):
        inlined = node is not None and any("_inlfunc_" in v for v in (*node.inputs, *node.outputs))
        how = " (ORT inlined the op's ONNX function definition)" if inlined else ""
        return f"{fusion.count} {source} expanded into {target}{where}{how}"
    return f"{fusion.count} {source} fused into {target}{where}"


def _count_list(counts: dict[str, int]) -> str:
    return ", ".join(f"{c} {op.removeprefix('ai.onnx:')}" for op, c in counts.items())


def explain_level(
    level: str,
    diff: DiffResult,
    after: Model,
    target_platform: str,
    previous: LevelResult | None,
) -> tuple[tuple[str, ...], bool, bool, tuple[str, ...]]:
    """Plain-words account of one level; also hardware_specific, ort_only, domains used."""
    nodes_by_name = {n.name: n for _, n in after.all_nodes()}
    lines = [describe_fusion(f, _fusion_node(f, nodes_by_name)) for f in diff.fusions]
    if diff.removed:
        lines.append(f"removed {_count_list(diff.removed)}")
    if diff.added:
        lines.append(f"added {_count_list(diff.added)}")
    if not lines:
        lines.append("no change: ORT found nothing to optimize at this level")
    used = tuple(sorted({n.domain for _, n in after.all_nodes()}))
    contrib: dict[str, set[str]] = {}
    for _, n in after.all_nodes():
        if n.domain not in ONNX_DOMAINS:
            contrib.setdefault(n.domain, set()).add(n.op_type)
    ort_only = bool(contrib)
    if ort_only:
        ops = "; ".join(f"{d}: {', '.join(sorted(o))}" for d, o in sorted(contrib.items()))
        lines.append(f"uses ORT contrib ops ({ops}): only ONNX Runtime can run this file")
    hardware_specific = NCHWC_DOMAIN in contrib
    if hardware_specific:
        lines.append(
            "hardware-specific: NCHWc ops (com.microsoft.nchwc) are laid out for the vector "
            "width of the CPU that saved the file (AVX2/AVX-512) and do not exist on ARM; use "
            "--target-platform arm for a portable file"
        )
    elif level in ("layout", "all") and target_platform == "arm":
        lines.append("NCHWc layout excluded (target arm), as ORT's converter does")
    if previous is not None and previous.ops_after == op_histogram(after):
        lines.append(f"same operators as level {previous.level}: this level adds nothing here")
    return tuple(lines), hardware_specific, ort_only, used


def _opset_note(declared: set[str], used: set[str]) -> str | None:
    """ORT's blanket opset_import (ort-internals §1.8) is not a list of dependencies."""
    unused = sorted(declared - used)
    if not unused:
        return None
    return (
        f"ORT writes every domain it knows into opset_import ({len(unused)} declared but unused "
        f"here: {', '.join(unused)}); these are not new dependencies: only the domains nodes use "
        f"are ({', '.join(sorted(used))})"
    )


# --------------------------------------------------------------------------- the stage


def _verify(target: Path, ref: Reference, level: str, target_platform: str) -> VerifyResult:
    """Load the saved file as is (optimizations disabled: the graph in the file is what runs)
    and compare its outputs with the original's optimized at the same level for the same
    target (stages/verify.py: like with like)."""
    from ortprep.stages.verify import RefConfig

    label = "saved graph as is (optimizations disabled)"
    config = RefConfig(level, target_platform)
    return ref.check(target, SessionRecipe(level="disable"), label, config=config)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def measure_load_times(
    original: Path, saved_all: Path, target_platform: str, runs: int = LOAD_RUNS
) -> LoadTimes:
    """Median session creation: ``original`` at level all vs ``saved_all`` with optimizations
    disabled. One untimed creation each first (ORT's one-off start-up, file cache); then the two
    alternate so drift in the machine's load affects both alike."""
    import time

    online = SessionRecipe(level="all", target_platform=target_platform)
    offline = SessionRecipe(level="disable")
    create_session(original, online)
    create_session(saved_all, offline)
    on: list[float] = []
    off: list[float] = []
    for _ in range(runs):
        t = time.perf_counter()
        create_session(original, online)
        on.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        create_session(saved_all, offline)
        off.append((time.perf_counter() - t) * 1000)
    return LoadTimes(_median(on), _median(off), runs, str(saved_all))


def _slim(path: Path, workdir: Path, large: bool) -> tuple[Path, PreStep]:
    """Run onnxslim on ``path``; the slimmed model goes to ``workdir`` (never next to the input)."""
    import onnx

    onnxslim = _import_onnxslim()
    try:
        # whatever it prints must not land in stdout, which holds the JSON document
        with contextlib.redirect_stdout(sys.stderr):
            slimmed = onnxslim.slim(str(path))
    except Exception as exc:  # noqa: BLE001 -- any onnxslim failure is reported per model
        text = str(exc).strip().splitlines()
        raise BadModelError(
            f"{path}: onnxslim failed ({text[0] if text else type(exc).__name__})",
            "run without --pre onnxslim",
        ) from None
    if not isinstance(slimmed, onnx.ModelProto):
        raise BadModelError(f"{path}: onnxslim returned no model", "run without --pre onnxslim")
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / path.name
    if large:
        onnx.save(slimmed, str(target), save_as_external_data=True, location=f"{path.name}.data")
    else:
        onnx.save(slimmed, str(target))
    from ortprep.core.inputs import open_model

    before = sum(1 for _ in open_model(path).all_nodes())
    after = sum(1 for _ in open_model(target).all_nodes())
    version = str(getattr(onnxslim, "__version__", "unknown"))
    return target, PreStep("onnxslim", version, before, after)


def optimize_model(
    item: ModelInput,
    out_dir: Path,
    options: OptimizeOptions,
    workdir: Path,
    progress: ProgressFn = no_progress,
) -> OptimizedModel:
    """Save, explain and verify every requested level of one model.

    A failing model comes back as a result with its ``failure`` (a folder run goes on).
    """
    done = attempt(lambda: _optimize_model(item, out_dir, options, workdir, progress))
    if not isinstance(done, Failure):
        return done
    for level in options.levels:  # a failed model leaves nothing in OUT
        target = _out_path(out_dir, item, level)
        target.unlink(missing_ok=True)
        target.with_name(f"{target.name}.data").unlink(missing_ok=True)
    return OptimizedModel(str(item.path), failure=done)


def _optimize_model(
    item: ModelInput,
    out_dir: Path,
    options: OptimizeOptions,
    workdir: Path,
    progress: ProgressFn,
) -> OptimizedModel:
    from ortprep.core.inputs import open_model
    from ortprep.stages.diff import diff_models

    source = open_model(item.path)
    if source.format != "onnx":
        raise BadModelError(
            f"{item.path}: optimize takes ONNX models, this is {source.format} format",
            "an .ort file is already optimized; `ortprep inspect` shows what it holds",
        )
    large = size_on_disk(source) > LARGE_MODEL_BYTES
    # ORT would otherwise keep references to the input's data files, which are not in OUT
    external = large or bool(source.external_data_files)
    ort_input, before, pre = item.path, source, None
    if options.pre == "onnxslim":
        progress("onnxslim", 0, 1)
        ort_input, pre = _slim(item.path, workdir / "slim", large)
        before = open_model(ort_input)
        progress("onnxslim", 1, 1)
    reference = None
    if options.verify:
        from ortprep.core.feeds import check_inputs_file, graph_inputs
        from ortprep.stages.fix_shapes import check_fix_dims
        from ortprep.stages.verify import make_reference

        # like convert's: the names and the file must fit the model (exit 2), before ORT runs
        runtime_inputs = source.graph.runtime_inputs
        check_fix_dims(options.fix_dims, runtime_inputs, item.path)
        if options.inputs is not None:
            check_inputs_file(options.inputs, graph_inputs(runtime_inputs), item.path)
        hint = "give --inputs or --fix-dim, or skip verification with --no-verify"
        reference = make_reference(item.path, source, options.inputs, options.fix_dims, hint)
    ops_before = op_histogram(before)
    nodes_before = sum(ops_before.values())
    levels: list[LevelResult] = []
    saved: dict[str, Path] = {}
    notes: list[str] = []
    declared: set[str] = set()
    if pre is not None:
        notes.append(
            f"onnxslim {pre.version} ran first ({pre.nodes_before} -> {pre.nodes_after} "
            "nodes); 'before' counts are of the slimmed model, verification compares with "
            "the original"
        )
    total = len(options.levels)
    for i, level in enumerate(options.levels):
        progress("levels", i, total)
        target = _out_path(out_dir, item, level)
        data_file = save_optimized_onnx(ort_input, target, level, options.target_platform, external)
        saved[level] = target
        after = open_model(target)
        diff = diff_models(before, after)
        summary, hardware, ort_only, used = explain_level(
            level, diff, after, options.target_platform, levels[-1] if levels else None
        )
        verification = (
            _verify(target, reference, level, options.target_platform) if reference else None
        )
        levels.append(
            LevelResult(
                level=level,
                file=str(target),
                size_bytes=size_on_disk(after),
                nodes_before=nodes_before,
                nodes_after=diff.nodes_b,
                ops_before=ops_before,
                ops_after=op_histogram(after),
                fusions=diff.fusions,
                removed=diff.removed,
                added=diff.added,
                hardware_specific=hardware,
                ort_only=ort_only,
                domains_used=used,
                summary=summary,
                verified=verification.passed if verification else None,
                verification=verification,
                external_data_file=str(data_file) if data_file else None,
            )
        )
        declared.update(after.opsets)
    progress("levels", total, total)
    note = _opset_note(declared, {d for level in levels for d in level.domains_used})
    if note:
        notes.append(note)
    if any(level.ort_only for level in levels):
        notes.append(
            "levels extended and above write ORT contrib ops (com.microsoft...): such a file "
            "runs only in ONNX Runtime, with the CPU EP it was saved for (ort-internals "
            "§1.6), and a reduced build needs a config made from it, not from the original"
        )
    load_time = _load_times(item, ort_input, saved, options, workdir, external)
    if load_time is None:
        notes.append("load times not measured: a session could not be created for timing")
    return OptimizedModel(str(item.path), tuple(levels), load_time, pre, tuple(notes))


def _load_times(
    item: ModelInput,
    ort_input: Path,
    saved: dict[str, Path],
    options: OptimizeOptions,
    workdir: Path,
    external: bool,
) -> LoadTimes | None:
    import dataclasses

    saved_all = saved.get("all")
    label = None
    if saved_all is None:  # not requested: save one privately to time it
        saved_all = workdir / "timing" / f"{item.path.stem}.optimized.onnx"
        save_optimized_onnx(ort_input, saved_all, "all", options.target_platform, external)
        label = f"level all saved privately (not in OUT: --level {', '.join(options.levels)})"
    try:
        times = measure_load_times(item.path, saved_all, options.target_platform)
    except Exception:  # noqa: BLE001 -- timing is a bonus; a failed load shows in verification
        return None
    return dataclasses.replace(times, offline_file=label) if label else times


def run(
    inputs: list[ModelInput],
    out_dir: Path,
    options: OptimizeOptions,
    progress: ProgressFn = no_progress,
    folder_input: bool = False,
) -> OptimizeResult:
    """Optimize every model at every requested level; one failing model never loses the others.

    ``folder_input`` only shapes the JSON (a ``models`` list even when the folder held one model).
    """
    from ortprep.core.runtime import ort_version

    options.validate()
    results: list[OptimizedModel] = []
    for i, item in enumerate(inputs):
        progress("optimizing", i, len(inputs))
        with tempfile.TemporaryDirectory(prefix="ortprep-optimize-") as tmp:
            results.append(optimize_model(item, out_dir, options, Path(tmp), progress))
    progress("optimizing", len(inputs), len(inputs))
    return OptimizeResult(tuple(results), options, ort_version(), folder_input)
