"""A stand-in for ``prepare_model`` whose worker process dies on models named ``crash*``,
the way a segfault inside ONNX Runtime or a custom op library kills it (module-level, so
spawned workers can import it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def prepare_or_crash(item: Any, out_dir: Path, options: Any) -> Any:
    from ortprep.pipeline import ModelReport

    if item.path.stem.startswith("crash"):
        os._exit(70)  # no exception, no cleanup: the process is simply gone
    return ModelReport(input=str(item.path), relative=item.relative.as_posix(), seconds=0.1)
