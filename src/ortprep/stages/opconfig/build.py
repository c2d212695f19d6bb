"""``config build`` and ``config merge``: configs written from models, or from other configs."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ortprep.core.errors import OrtprepError, UsageError
from ortprep.core.progress import ProgressFn, no_progress
from ortprep.core.runtime import ort_version
from ortprep.stages.opconfig.from_ort import model_needs, model_paths
from ortprep.stages.opconfig.model import (
    PLATFORMS,
    STYLES,
    OpConfig,
    combine,
    config_file_name,
    format_config,
    merge,
    read_config,
    summarize,
)


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
            "summary": summarize(self.config),
            "models": [m.to_dict() for m in self.models],
            "config": self.config.to_dict(),
        }


def check_options(style: str, target_platform: str) -> None:
    """``--style`` and ``--target-platform`` of the config commands (a usage error if unknown)."""
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
    from ortprep.core.files import write_text
    from ortprep.core.version import ORTPREP_VERSION

    check_options(style, target_platform)
    progress = progress or no_progress
    models = model_paths(paths, example)
    single = models[0].stem if len(models) == 1 and not any(p.is_dir() for p in paths) else None
    target = _output_path(out, models, type_reduction, style, single)
    statuses: list[ModelStatus] = []
    configs: list[OpConfig] = []
    with tempfile.TemporaryDirectory(prefix="ortprep-config-") as tmp:
        for done, model in enumerate(models):
            progress("analysing models", done, len(models))
            try:
                needs, analysed = model_needs(
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
    version = ort_version()
    header = [
        f" Generated by ortprep {ORTPREP_VERSION} (onnxruntime {version}) from model/s:",
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
            "summary": summarize(self.config),
            "config": self.config.to_dict(),
        }


def run_merge(files: Sequence[Path], out: Path) -> MergeResult:
    """``config merge``: the union of config files, normalized and sorted, written to ``out``."""
    from ortprep.core.files import write_text
    from ortprep.core.version import ORTPREP_VERSION

    if not files:
        raise UsageError("missing FILE", "pass two or more .config files")
    if out.is_dir():
        raise UsageError(f"{out}: is a folder; -o takes the merged config's file name")
    if any(out.resolve() == f.resolve() for f in files):
        raise UsageError(f"{out}: is one of the inputs; choose another output file")
    configs = [read_config(f) for f in files]
    comments = [f" Merged by ortprep {ORTPREP_VERSION} from:", *(f" - {f}" for f in files)]
    cfg = merge(configs, comments)
    write_text(out, format_config(cfg))
    return MergeResult(str(out), tuple(str(f) for f in files), cfg)
