"""What ``prepare`` learns about each model: its options, the per-model records, the
recommendation and the folder's result; their ``to_dict`` is the manifest's schema
(``OUT/manifest.json``, ARCHITECTURE.md "prepare").

Types only: :mod:`ortprep.pipeline` fills them, :mod:`ortprep.recommend` reads the
:class:`Evidence` and writes a :class:`Recommendation`, :mod:`ortprep.report` renders them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ortprep.core.errors import UsageError

if TYPE_CHECKING:
    from ortprep.gate import Gate, Requirement
    from ortprep.stages.check import CheckResult, EpReport
    from ortprep.stages.convert import Artifact
    from ortprep.stages.diff import DiffResult
    from ortprep.stages.fix_values import FixValues
    from ortprep.stages.opconfig import BuildCommand

__all__ = [
    "HOST_TWIN",
    "MANIFEST",
    "OVERLAYS",
    "REPORT",
    "ROLES",
    "TARGETS",
    "TARGET_EPS",
    "TARGET_PLATFORMS",
    "Benched",
    "Checked",
    "CombinedBuild",
    "Command",
    "Diffed",
    "Evidence",
    "FileRecord",
    "ModelReport",
    "PrepareOptions",
    "PrepareResult",
    "Recommendation",
]

TARGETS = ("android", "ios", "linux-arm", "linux-x86")
TARGET_PLATFORMS = {"android": "arm", "ios": "arm", "linux-arm": "arm", "linux-x86": "amd64"}
TARGET_EPS: Mapping[str, tuple[str, ...]] = {
    "android": ("nnapi", "xnnpack"),
    "ios": ("coreml-mlprogram", "coreml-neuralnetwork", "xnnpack"),
    "linux-arm": ("xnnpack",),
    "linux-x86": ("xnnpack",),
}
HOST_TWIN = "fixed-host"
"""The benchmark role of a Fixed-style file built for this host's CPU (not shipped)."""
ROLES = {
    "original": "original .onnx (after ORT's basic optimizations)",
    "runtime": "Runtime style",
    "fixed": "Fixed style",
    HOST_TWIN: "Fixed style built for this host (not shipped)",
}
MANIFEST = "manifest.json"
OVERLAYS = "model-explorer"  # OUT/model-explorer/: Model Explorer overlays of every file checked
REPORT = "report.html"


@dataclass(frozen=True)
class PrepareOptions:
    target: str = "android"
    eps: tuple[str, ...] | None = None
    """EPs to check; ``None``: the target's (ARCHITECTURE.md "Targets")."""
    workers: int = 1
    bench_runs: int = 20
    """``--runs``: timed runs per file."""
    bench_warmup: int = 3
    bench: bool = True
    """``--no-bench`` turns it off: no benchmark entries, and the report says so."""
    platform: str | None = None
    """``--target-platform``: the CPU the ``.ort`` files are optimized for; ``None``: the
    deployment target's (android, ios, linux-arm: arm; linux-x86: amd64)."""
    fix_dims: Mapping[str, int] = field(default_factory=dict)
    """``--fix-dim``: fixed in the ``.ort`` files (as ``convert`` does), in the original's check,
    in the verification and benchmark inputs."""
    inputs: Path | None = None
    """``--inputs``: real inputs (.npz) for verification and the benchmark."""
    type_reduction: bool = True
    verify: bool = True
    example: bool = False
    """The input is the bundled example (commands then say ``--example``)."""
    require: tuple[Requirement, ...] = ()
    """The CI gate (``--require``, ``--require-coverage``), on the check of each original."""

    @property
    def target_platform(self) -> str:
        return self.platform or TARGET_PLATFORMS[self.target]

    @property
    def check_eps(self) -> tuple[str, ...]:
        return self.eps if self.eps else TARGET_EPS[self.target]

    def validate(self) -> None:
        if self.target not in TARGETS:
            raise UsageError(f"--target {self.target!r}", f"choose one of {', '.join(TARGETS)}")
        allowed = TARGET_EPS[self.target]
        for ep in self.check_eps:
            if ep not in allowed:
                raise UsageError(
                    f"--ep {ep}: not available for --target {self.target}",
                    f"choose from {', '.join(allowed)}",
                )
        from ortprep.core.limits import WORKERS_PER_CORE, check_parallel

        check_parallel("--workers", self.workers, WORKERS_PER_CORE)
        # the same checks, and words, as `convert` and `bench` for the options they share
        from ortprep.stages.bench import BenchOptions
        from ortprep.stages.convert import ConvertOptions

        ConvertOptions(
            target_platform=self.target_platform, fix_dims=self.fix_dims, inputs=self.inputs
        ).validate()
        BenchOptions(runs=self.bench_runs, warmup=self.bench_warmup, inputs=self.inputs).validate()

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "target_platform": self.target_platform,
            "eps": list(self.check_eps),
            "workers": self.workers,
            "convert": {
                "styles": ["fixed", "runtime"],
                "level": "all",
                "type_reduction": self.type_reduction,
                "verify": self.verify,
            },
            "fix_dims": dict(self.fix_dims),
            "inputs": None if self.inputs is None else str(self.inputs),
            "bench": {"runs": self.bench_runs, "warmup": self.bench_warmup, "threads": 1}
            if self.bench
            else None,
            "require": [str(r) for r in self.require],
        }


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class FileRecord:
    """One file prepare wrote for a model: an ``.ort`` (with convert's account) or a config."""

    kind: str  # "ort" | "config"
    style: str
    path: str  # relative to OUT
    size_bytes: int
    sha256: str
    command: str
    artifact: Artifact | None = None

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def verified(self) -> bool | None:
        return None if self.artifact is None else self.artifact.verified

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": self.kind,
            "style": self.style,
            "path": self.path,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "command": self.command,
        }
        if self.artifact is not None:
            a = self.artifact.to_dict()
            for key in ("kind", "style", "path", "size_bytes"):
                a.pop(key)
            d.update(a)
        return d


@dataclass(frozen=True)
class Checked:
    """``check`` on one of a model's files."""

    role: str  # original | runtime | fixed
    file: str
    result: CheckResult
    overlays: tuple[str, ...] = ()
    """Model Explorer overlays of this check (relative to OUT): the analysed graph, node data."""

    @property
    def label(self) -> str:
        return ROLES[self.role]

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "file": self.file,
            "analyzed": self.result.analyzed,
            "overlays": list(self.overlays),
            "eps": [_ep_summary(e) for e in self.result.eps],
        }


def _ep_summary(e: EpReport) -> dict[str, Any]:
    o = e.outcome
    return {
        "ep": e.ep,
        "verdict": o.verdict,
        "summary": e.summary,
        "nodes_total": o.nodes_total,
        "nodes_supported": o.nodes_supported,
        "nodes_taken": o.nodes_taken,
        "partitions": len(o.partitions),
        "largest_partition": max((len(p.nodes) for p in o.partitions), default=0),
        "largest_partition_share": round(o.largest_partition_share, 4),
        "top_reasons": [r.to_dict() for r in e.top_reasons],
        "next_step": e.next_step,
        "if_shapes_fixed": None if e.if_shapes_fixed is None else e.if_shapes_fixed.to_dict(),
    }


@dataclass(frozen=True)
class Diffed:
    role: str
    file: str
    result: DiffResult

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "file": self.file, **self.result.to_dict()}


@dataclass(frozen=True)
class Benched:
    role: str
    file: str
    metrics: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "file": self.file, **self.metrics}


@dataclass(frozen=True)
class Command:
    title: str
    command: str

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "command": self.command}


@dataclass(frozen=True)
class Evidence:
    """What the recommendation is decided from: a model's files, checks and measurements."""

    files: tuple[FileRecord, ...] = ()
    checks: tuple[Checked, ...] = ()
    bench: tuple[Benched, ...] = ()
    fix_values: FixValues | None = None
    """The values a fix-shapes would use for the original's dynamic dims, and whence."""

    def file(self, kind: str, style: str) -> FileRecord | None:
        return next((f for f in self.files if f.kind == kind and f.style == style), None)

    def check(self, role: str) -> Checked | None:
        return next((c for c in self.checks if c.role == role), None)


@dataclass(frozen=True)
class Recommendation:
    """Which file to ship and why, in plain words."""

    ship: str | None  # path relative to OUT; None: do not ship an .ort yet
    style: str | None
    headline: str
    why: tuple[str, ...]
    eps: tuple[str, ...]  # EPs worth registering in the app (and building in)
    session_options: Mapping[str, str] = field(default_factory=dict)
    requirements: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    next_steps: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "ship": self.ship,
            "style": self.style,
            "headline": self.headline,
            "why": list(self.why),
            "eps": list(self.eps),
            "session_options": dict(self.session_options),
            "requirements": list(self.requirements),
            "warnings": list(self.warnings),
            "next_steps": list(self.next_steps),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ModelReport:
    """Everything prepare learned about one model (or why it failed)."""

    input: str
    relative: str
    sha256: str | None = None
    size_bytes: int | None = None
    files: tuple[FileRecord, ...] = ()
    checks: tuple[Checked, ...] = ()
    diffs: tuple[Diffed, ...] = ()
    bench: tuple[Benched, ...] = ()
    build: BuildCommand | None = None
    recommendation: Recommendation | None = None
    fix_values: FixValues | None = None
    commands: tuple[Command, ...] = ()
    problems: tuple[str, ...] = ()
    gate: Gate | None = None
    error: str | None = None
    hint: str | None = None
    internal_error: bool = False
    traceback: str | None = None
    seconds: float = 0.0
    versions: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.relative

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and not self.problems
            and all(f.verified is not False for f in self.files)
            and (self.gate is None or self.gate.ok)
        )

    @property
    def evidence(self) -> Evidence:
        """The files, checks and measurements the recommendation was decided from."""
        return Evidence(self.files, self.checks, self.bench, self.fix_values)

    def file(self, kind: str, style: str) -> FileRecord | None:
        return self.evidence.file(kind, style)

    def check(self, role: str) -> Checked | None:
        return self.evidence.check(role)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "input": self.input,
            "relative": self.relative,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "versions": dict(self.versions),
            "options": dict(self.options),
        }
        if self.error is not None:
            d["error"] = self.error
            d["hint"] = self.hint
            d["internal_error"] = self.internal_error
            return d
        d.update(
            {
                "recommendation": None
                if self.recommendation is None
                else self.recommendation.to_dict(),
                "artifacts": [f.to_dict() for f in self.files],
                "checks": [c.to_dict() for c in self.checks],
                "gate": None if self.gate is None else self.gate.to_dict(),
                "diffs": [x.to_dict() for x in self.diffs],
                "bench": [b.to_dict() for b in self.bench],
                "fix_shapes": None if self.fix_values is None else self.fix_values.to_dict(),
                "build": None if self.build is None else self.build.to_dict(),
                "commands": [c.to_dict() for c in self.commands],
                "problems": list(self.problems),
            }
        )
        return d


@dataclass(frozen=True)
class CombinedBuild:
    """One reduced build for every model of a folder: the merged config and its command."""

    config: str  # relative to OUT
    sha256: str
    models: tuple[str, ...]
    command: BuildCommand

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "sha256": self.sha256,
            "models": list(self.models),
            "build_command": self.command.to_dict(),
        }


@dataclass(frozen=True)
class PrepareResult:
    out_dir: str
    options: PrepareOptions
    versions: Mapping[str, str]
    created: str
    models: tuple[ModelReport, ...]
    combined_build: CombinedBuild | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.models)

    @property
    def internal_error(self) -> bool:
        return any(m.internal_error for m in self.models)

    @property
    def manifest_path(self) -> str:
        return str(Path(self.out_dir) / MANIFEST)

    @property
    def report_path(self) -> str:
        return str(Path(self.out_dir) / REPORT)

    def to_dict(self) -> dict[str, Any]:
        """The manifest (``OUT/manifest.json``)."""
        return {
            "manifest_version": 1,
            "created": self.created,
            "out": self.out_dir,
            "report": REPORT,
            "ok": self.ok,
            "models_total": len(self.models),
            "models_failed": sum(not m.ok for m in self.models),
            "seconds": round(self.seconds, 3),
            "versions": dict(self.versions),
            "options": self.options.to_dict(),
            "combined_build": None
            if self.combined_build is None
            else self.combined_build.to_dict(),
            "models": [m.to_dict() for m in self.models],
        }
