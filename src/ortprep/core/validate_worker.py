"""A child process that validates one ONNX file: ``python -m ortprep.core.validate_worker PATH``.

``check`` runs it beside ORT's own child process. The parent then neither imports onnx (and
numpy) nor parses the model while ORT holds the big graph: on a 100,000-node model that keeps
about 20 MB off the peak of the whole process tree, which is ORT's peak plus what the parent
holds at that moment. The child prints one JSON line: the model's external data files and its
runtime inputs, or the validation error (its class, message and hint).
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


def validated(path: Path) -> dict[str, Any]:
    """:func:`ortprep.core.onnx_file.load_checked` as data: external files and runtime inputs,
    or the error."""
    from ortprep.core.onnx_file import load_checked, runtime_input_types

    try:
        proto, external = load_checked(path)
    except OrtprepError as exc:
        return {"error": type(exc).__name__, "message": exc.message, "hint": exc.hint}
    inputs = [
        [v.name, v.dtype, None if v.shape is None else list(v.shape), v.kind]
        for v in runtime_input_types(proto)
    ]
    return {"external": list(external), "inputs": inputs}


def read(doc: dict[str, Any]) -> tuple[tuple[str, ...], tuple[ValueType, ...]]:
    """:func:`validated`'s answer back as (external files, runtime inputs); raises its error."""
    if "error" in doc:
        raise _ERRORS.get(doc["error"], OrtprepError)(doc["message"], doc.get("hint"))
    inputs = tuple(
        ValueType(name, dtype, None if shape is None else tuple(shape), kind)
        for name, dtype, shape, kind in doc["inputs"]
    )
    return tuple(doc["external"]), inputs


class Validation:
    """The child started on ``path``; :meth:`result` waits for its answer."""

    def __init__(self, path: Path) -> None:
        import subprocess

        self.path = path
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "ortprep.core.validate_worker", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def result(self) -> tuple[tuple[str, ...], tuple[ValueType, ...]]:
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
    print(json.dumps(validated(Path(argv[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
