"""Where models come from: a file, a folder of models, or the bundled example."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ortprep.core.errors import BadModelError, UsageError
from ortprep.core.graph import Model

EXAMPLE_NAME = "text_orientation.onnx"


def example_model() -> Path:
    """Path of the bundled example: the Apache-2.0 PP-LCNet text-orientation classifier."""
    return Path(__file__).resolve().parent.parent / "data" / "example" / EXAMPLE_NAME


@dataclass(frozen=True)
class ModelInput:
    """One model to process: its path and its path relative to the input root (for outputs)."""

    path: Path
    relative: Path

    @property
    def stem(self) -> str:
        return self.path.stem


def resolve_inputs(
    path: Path | None, example: bool = False, suffixes: tuple[str, ...] = (".onnx",)
) -> list[ModelInput]:
    """The models named by ``PATH`` or ``--example``.

    A folder yields every model below it (recursively, sorted), skipping ``*.optimized.onnx``
    (ortprep's and ORT's own debugging output). Raises :class:`UsageError` (exit 2) for a missing
    path or a folder without models.
    """
    if example and path is not None:
        raise UsageError("give either PATH or --example, not both")
    if example:
        p = example_model()
        return [ModelInput(p, Path(p.name))]
    if path is None:
        raise UsageError("missing PATH", "pass a model file or folder, or --example")
    if not path.exists():
        raise UsageError(
            f"{path}: no such file or folder",
            "check the path (relative paths start from the current folder)",
        )
    if path.is_file():
        return [ModelInput(path, Path(path.name))]
    if not path.is_dir():
        raise UsageError(
            f"{path}: not a file or folder (a pipe, socket or device)",
            "pass a model file or a folder of models",
        )
    found = sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and p.suffix in suffixes and not p.name.endswith(".optimized.onnx")
    )
    if not found:
        kinds = " or ".join(f"*{s}" for s in suffixes)
        raise UsageError(f"{path}: no models ({kinds}) found in this folder")
    return [ModelInput(p, p.relative_to(path)) for p in found]


def file_kind(path: Path) -> str:
    """``onnx``, ``ort`` or ``config``, from the content where the name is not decisive."""
    if path.suffix == ".config":
        return "config"
    if path.suffix == ".ort":
        return "ort"
    head = read_head(path, 8)
    if head[4:8] == b"ORTM":
        return "ort"
    return "onnx"


def read_head(path: Path, size: int) -> bytes:
    """The first ``size`` bytes of ``path``; an unreadable file is a :class:`BadModelError`."""
    try:
        with path.open("rb") as f:
            return f.read(size)
    except OSError as exc:
        raise BadModelError(f"{path}: cannot read the file ({exc.strerror or exc})") from None


def open_model(path: Path) -> Model:
    """Open an ``.onnx`` or ``.ort`` file into the shared graph view.

    Raises :class:`BadModelError` (exit 2) for anything wrong with the file.
    """
    if not path.exists():
        raise BadModelError(f"{path}: no such file", "check the path")
    if path.is_dir():
        raise BadModelError(f"{path}: is a folder, expected a model file")
    if not path.is_file():
        raise BadModelError(f"{path}: not a regular file (a pipe, socket or device)")
    if path.stat().st_size == 0:
        raise BadModelError(
            f"{path}: the file is empty", "check that the copy or download finished"
        )
    kind = file_kind(path)
    if kind == "ort":
        from ortprep.core.ort import read_ort

        return read_ort(path)
    if kind == "config":
        raise BadModelError(f"{path}: is an operator config, not a model")
    from ortprep.core.onnx_view import read_onnx

    return read_onnx(path)
