"""``.ort`` files as ORT's converter names and writes them, for ``convert`` and the configs.

ORT writes the file itself, through session options (ort-internals §2.7, §4): Fixed style = every
optimization of the level baked in; Runtime style = level 1 baked in and the recordable fusions
saved as records (``optimization.minimal_build_optimizations=save``); ``apply`` mode bakes them
in (what a Runtime-style config also needs: ORT's convert_onnx_models_to_ort.py does the same).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from ortprep.core.errors import BadModelError, OrtprepError, ort_failure_hint
from ortprep.core.files import atomic_path
from ortprep.core.runtime import SessionRecipe, create_session, describe_ort_error

__all__ = ["ort_files_for_config", "ort_recipe", "suffix", "write_with_ort"]


def suffix(level: str, style: str, ext: str) -> str:
    """ORT's converter's naming: ``[.LEVEL][.with_runtime_opt]EXT`` (LEVEL omitted for all)."""
    level_part = "" if level == "all" else f".{level}"
    style_part = ".with_runtime_opt" if style == "runtime" else ""
    return f"{level_part}{style_part}{ext}"


def write_with_ort(model: Path, target: Path, recipe: SessionRecipe) -> None:
    """Let ORT optimize ``model`` and save it at ``target`` atomically (format set explicitly)."""
    with atomic_path(target) as tmp:
        recipe = dataclasses.replace(recipe, save_to=tmp, threads=1)  # saves only
        try:
            create_session(model, recipe)
        except OrtprepError:
            raise
        except Exception as exc:  # noqa: BLE001 -- ORT reports failures as plain exceptions
            said = describe_ort_error(exc)
            raise BadModelError(
                f"{model}: ONNX Runtime could not convert the model ({said})",
                ort_failure_hint(said),
            ) from None


def ort_recipe(
    style: str,
    level: str,
    target_platform: str,
    mode: str | None = None,
    custom_op_library: Path | None = None,
    free_dims: Mapping[str, int] | None = None,
) -> SessionRecipe:
    """The session recipe for one ORT-format conversion (``mode`` overrides save/apply)."""
    if mode is None:
        mode = "save" if style == "runtime" else None
    return SessionRecipe(
        level=level,
        target_platform=target_platform,
        save_format="ORT",
        minimal_build_optimizations=mode,
        custom_op_library=custom_op_library,
        free_dims=free_dims,
    )


def ort_files_for_config(
    model_path: Path,
    workdir: Path,
    style: str = "fixed",
    level: str = "all",
    target_platform: str = "arm",
) -> list[Path]:
    """Convert ``model_path`` into ``workdir`` the way ORT's converter does to build its config.

    Fixed: the one ``.ort`` file. Runtime: the saved file and the ``apply``-mode file, because
    replay may or may not happen on the device, so the build needs both sets of ops.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    stem = model_path.stem
    target = workdir / f"{stem}{suffix(level, style, '.ort')}"
    write_with_ort(model_path, target, ort_recipe(style, level, target_platform))
    files = [target]
    if style == "runtime":
        applied = workdir / f"{stem}.apply{suffix(level, 'fixed', '.ort')}"
        write_with_ort(model_path, applied, ort_recipe("fixed", level, target_platform, "apply"))
        files.append(applied)
    return files
