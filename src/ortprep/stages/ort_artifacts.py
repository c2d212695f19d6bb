"""Files ORT writes for ``convert`` and ``optimize``: named as ORT's converter names them, written
by ORT itself, atomically, with external data where ONNX needs it and a clear refusal where the ORT
format cannot hold the model.

ORT writes the file itself, through session options (ort-internals §2.7, §4): Fixed style = every
optimization of the level baked in; Runtime style = level 1 baked in and the recordable fusions
saved as records (``optimization.minimal_build_optimizations=save``); ``apply`` mode bakes them
in (what a Runtime-style config also needs: ORT's convert_onnx_models_to_ort.py does the same).
Every ORT session here is handed the model's path, never its bytes: a path lets ORT map external
data instead of copying it, and spares a Python copy of the file next to ORT's own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ortprep.core.errors import BadModelError, OrtprepError, VerdictError, ort_failure_hint
from ortprep.core.files import TEMP_SUFFIX, atomic_path, remove_stale_temps, temp_prefix
from ortprep.core.ort.format import FLATBUFFERS_LIMIT
from ortprep.core.runtime import SessionRecipe, create_session, describe_ort_error, lean_source

if TYPE_CHECKING:
    from ortprep.core.graph import Model

__all__ = [
    "LARGE_MODEL_BYTES",
    "ORT_FORMAT_LIMIT",
    "check_fits_ort_format",
    "ort_files_for_config",
    "ort_recipe",
    "save_onnx_with_ort",
    "saving_only",
    "size_on_disk",
    "stored_bytes",
    "suffix",
    "too_big_for_ort_format",
    "write_with_ort",
]

ORT_FORMAT_LIMIT = FLATBUFFERS_LIMIT
"""The largest ``.ort`` file there can be: 2 GiB - 1 byte. An ``.ort`` file is one FlatBuffers
buffer, whose offsets are 32-bit signed (FLATBUFFERS_MAX_BUFFER_SIZE in flatbuffers/base.h), and
ORT's writer stores every initializer inline (ort-internals §2.9). ORT does not check the size
itself: InferenceSession::SaveToOrtFormat (onnxruntime/core/session/inference_session.cc) writes
``int size = builder.GetSize()``; with ORT 1.32 a model of 2.2 GB of weights fails there with
"SaveToOrtFormat Failed to save ORT format model to file" after the whole conversion, leaving an
empty file."""

LARGE_MODEL_BYTES = 1 << 30
"""Over this size (model file plus external data) an optimized ONNX model keeps its weights in an
external file (``session.optimized_model_external_initializers_file_name``): protobuf cannot hold
more than 2 GiB in one file, and ORT may add weights (e.g. fp32 copies of fp16 ones). A model that
already uses external data gets one too: without it ORT's saved file would point at the input's
data files, which are not in OUT."""

_SAVE_FAILED = "Failed to save ORT format model"
"""What ORT 1.32 says when the ORT-format file could not be written (over 2 GiB, or the disk)."""


def suffix(level: str, style: str, ext: str) -> str:
    """ORT's converter's naming: ``[.LEVEL][.with_runtime_opt]EXT`` (LEVEL omitted for all)."""
    level_part = "" if level == "all" else f".{level}"
    style_part = ".with_runtime_opt" if style == "runtime" else ""
    return f"{level_part}{style_part}{ext}"


def size_on_disk(model: Model) -> int:
    """Bytes of the model file plus the external data files it uses."""
    total = model.path.stat().st_size
    for name in model.external_data_files:
        with contextlib.suppress(OSError):
            total += (model.path.parent / name).stat().st_size
    return total


def stored_bytes(model: Model) -> int:
    """Bytes an ORT-format copy of ``model`` holds at least: the model file (graph and inline
    weights) plus every tensor it keeps in external data (the data files may hold more)."""
    from ortprep.core.graph import Initializer

    nodes = [node for _, node in model.all_nodes()]
    graphs = [model.graph, *(sub for node in nodes for sub in node.subgraphs.values())]
    tensors = [t for g in graphs for t in g.initializers.values()]
    tensors += [v for node in nodes for v in node.attributes.values() if isinstance(v, Initializer)]
    return model.path.stat().st_size + sum(t.nbytes for t in tensors if t.external_file)


def check_fits_ort_format(model: Model) -> None:
    """Refuse, before ORT spends the conversion on it, a model the ORT format cannot hold
    (:data:`ORT_FORMAT_LIMIT`): a :class:`VerdictError`, exit 1 for this model only."""
    size = stored_bytes(model)
    if size > ORT_FORMAT_LIMIT:
        raise too_big_for_ort_format(model.path, size, ORT_FORMAT_LIMIT)


def too_big_for_ort_format(path: Path, size: int, limit: int) -> VerdictError:
    """The one line saying so, with the size and the limit."""
    return VerdictError(
        f"{path}: {size:,} bytes of graph and weights ({size / 2**30:.2f} GiB) cannot be saved "
        f"in the ORT format: an .ort file is one FlatBuffers buffer of at most {limit:,} bytes "
        f"({limit / 2**30:.2f} GiB)",
        "keep this model in ONNX with its weights in external data (a full ONNX Runtime build "
        "loads it: `ortprep optimize`), or make it smaller (quantize the weights, split it)",
    )


def saving_only(recipe: SessionRecipe, save_to: Path) -> SessionRecipe:
    """``recipe`` for a session that saves the model to ``save_to`` and never runs: one intra-op
    thread (no pool to create) and no pre-packing. Pre-packing copies MatMul/Conv weights into
    the kernels' layouts when the session is created, for runs this session never makes; the
    saved graph is the same without it (tests compare both on every fixture). On BERT-base
    (436 MB) it lowers the save's peak from 1.23 GB to 0.90 GB."""
    extra = {**(recipe.extra or {}), "session.disable_prepacking": "1"}
    return dataclasses.replace(recipe, save_to=save_to, threads=1, extra=extra)


def write_with_ort(model: Path, target: Path, recipe: SessionRecipe) -> None:
    """Let ORT optimize ``model`` and save it at ``target`` atomically (format set explicitly).

    The session ends before this returns: its graph and weights are freed (the caller hands
    the freed heap back with :func:`ortprep.core.memory.release` before the next session)."""
    with atomic_path(target) as tmp:
        source, recipe = lean_source(model, saving_only(recipe, tmp))
        _ort_save(model, source, recipe, "convert the model")


def _ort_save(model: Path, source: Path | bytes, recipe: SessionRecipe, doing: str) -> None:
    """Let ORT load ``source`` (``model``, or its lean bytes) with a saving ``recipe``; ORT's
    refusal is the model's problem, a :class:`BadModelError` naming what it was ``doing``."""
    try:
        create_session(source, recipe)
    except OrtprepError:
        raise
    except Exception as exc:  # noqa: BLE001 -- ORT reports failures as plain exceptions
        said = describe_ort_error(exc)
        hint = ort_failure_hint(said)
        if _SAVE_FAILED in said and recipe.save_format == "ORT":
            hint = (
                "if the optimized model is over 2 GiB (constant folding can turn int8 "
                "weights into float ones), the ORT format cannot hold it: keep it in ONNX "
                "with external data; else check the output folder"
            )
        raise BadModelError(f"{model}: ONNX Runtime could not {doing} ({said})", hint) from None


def save_onnx_with_ort(
    model: Path, target: Path, recipe: SessionRecipe, external_data: bool
) -> Path | None:
    """Let ORT optimize ``model`` as ``recipe`` says and save it as ONNX at ``target``, atomically.

    With ``external_data`` the weights go to ``TARGET.data`` beside it (always for a model over
    :data:`LARGE_MODEL_BYTES` or already using external data). ORT writes into a private
    temporary folder beside ``target`` (the data file under its final name, since the model
    refers to it by name); both are then renamed into place, data first. Returns the external
    data file, if one was written.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    data_name = f"{target.name}.data" if external_data else None
    if data_name:
        extra = {
            **(recipe.extra or {}),
            "session.optimized_model_external_initializers_file_name": data_name,
        }
        recipe = dataclasses.replace(recipe, extra=extra)
    with tempfile.TemporaryDirectory(
        prefix=temp_prefix(target), suffix=TEMP_SUFFIX, dir=target.parent
    ) as tmp:
        tmp_model = Path(tmp) / target.name
        # the format explicit: ORT would otherwise pick it from the name
        recipe = saving_only(dataclasses.replace(recipe, save_format="ONNX"), tmp_model)
        _ort_save(model, model, recipe, f"optimize the model at level {recipe.level}")
        data_target = None
        if data_name:
            written = Path(tmp) / data_name
            if written.exists():  # no initializer over the minimum size: nothing external
                data_target = target.parent / data_name
                os.replace(written, data_target)
        os.replace(tmp_model, target)
    remove_stale_temps(target)
    return data_target


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
