"""A child process that validates one ONNX file: ``python -m ortprep.core.validate_worker PATH``.

``check`` runs it beside ORT's own child process. The parent then neither imports onnx (and
numpy) nor parses the model while ORT holds the big graph: on a 100,000-node model that keeps
about 20 MB off the peak of the whole process tree, which is ORT's peak plus what the parent
holds at that moment. The child prints one JSON line: the model's external data files and its
runtime inputs (and, for check's what-if, the copy it wrote with every dynamic dim fixed), or the
validation error (its class, message and hint).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ortprep.core.errors import BadModelError, OrtprepError, UsageError
from ortprep.core.graph import ValueType

_ERRORS: dict[str, type[OrtprepError]] = {
    "BadModelError": BadModelError,
    "UsageError": UsageError,
    "OrtprepError": OrtprepError,
}


WhatIfCopy = tuple[dict[str, int], dict[str, tuple[int, ...]], Path]
"""check's what-if fixes (dims by name, shapes by input) and the copy written with them."""


def validated(path: Path, what_if_dir: Path | None = None) -> dict[str, Any]:
    """:func:`ortprep.core.onnx_file.load_checked` as data: external files and runtime inputs,
    or the error. With ``what_if_dir``, a model with dynamic inputs also gets check's what-if
    copy (every dynamic dim fixed) written there, from the proto already parsed."""
    from ortprep.core.onnx_file import load_checked, runtime_input_types

    try:
        proto, external = load_checked(path)
        types = runtime_input_types(proto)
        doc: dict[str, Any] = {
            "external": list(external),
            "inputs": [
                [v.name, v.dtype, None if v.shape is None else list(v.shape), v.kind] for v in types
            ],
        }
        if what_if_dir is not None and any(v.dynamic for v in types):
            from ortprep.stages.check import what_if_fix, write_fixed

            dims, shapes = what_if_fix(types)
            copy = write_fixed(proto, path, what_if_dir, dims, shapes)
            doc["what_if"] = [dims, {k: list(v) for k, v in shapes.items()}, str(copy)]
    except OrtprepError as exc:
        return {"error": type(exc).__name__, "message": exc.message, "hint": exc.hint}
    return doc


def read(
    doc: dict[str, Any],
) -> tuple[tuple[str, ...], tuple[ValueType, ...], WhatIfCopy | None]:
    """:func:`validated`'s answer back as (external files, runtime inputs, the what-if copy);
    raises its error."""
    if "error" in doc:
        raise _ERRORS.get(doc["error"], OrtprepError)(doc["message"], doc.get("hint"))
    inputs = tuple(
        ValueType(name, dtype, None if shape is None else tuple(shape), kind)
        for name, dtype, shape, kind in doc["inputs"]
    )
    what_if = None
    if "what_if" in doc:
        dims, shapes, copy = doc["what_if"]
        what_if = (dims, {k: tuple(v) for k, v in shapes.items()}, Path(copy))
    return tuple(doc["external"]), inputs, what_if


class Validation:
    """The child started on ``path`` (see :func:`validated`); :meth:`result` waits for it."""

    def __init__(self, path: Path, what_if_dir: Path | None = None) -> None:
        import subprocess

        self.path = path
        args = [str(path)] if what_if_dir is None else [str(path), str(what_if_dir)]
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "ortprep.core.validate_worker", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def result(self) -> tuple[tuple[str, ...], tuple[ValueType, ...], WhatIfCopy | None]:
        out, err = self._proc.communicate()
        try:
            doc = json.loads(out)
        except ValueError:
            lines = err.decode("utf-8", errors="replace").strip().splitlines()
            why = lines[-1] if lines else f"exit status {self._proc.returncode}"
            raise BadModelError(f"{self.path}: the model could not be validated ({why})") from None
        return read(doc)

    def stop(self) -> None:
        if self._proc.returncode is None:
            self._proc.kill()
            self._proc.communicate()


def main(argv: list[str]) -> int:
    print(json.dumps(validated(Path(argv[0]), Path(argv[1]) if len(argv) > 1 else None)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
