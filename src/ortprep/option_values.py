"""Option values as the CLI writes them (``N=1``, ``x=1,3,224,224``, ``nnapi,xnnpack``) or as
Python callers pass them (mappings, sequences), turned into one typed form, once.

The CLI and the Python API (:mod:`ortprep.api`) both go through these functions, so a value the
CLI refuses is refused the same way from Python, with the same message and hint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path

from ortprep.core.errors import UsageError

PathLikeStr = str | PathLike[str]


def as_path(value: PathLikeStr | None) -> Path | None:
    return None if value is None else Path(value)


def _items(values: Mapping[str, object] | Iterable[str] | str | None) -> list[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        return [values]
    if isinstance(values, Mapping):
        return None
    return [str(v) for v in values]


def parse_fix_dims(values: Mapping[str, int] | Iterable[str] | str | None) -> dict[str, int]:
    """``["N=1", "H=224"]`` (or ``{"N": 1, "H": 224}``) -> ``{"N": 1, "H": 224}``; bad syntax or
    a value that is not a positive integer is a usage error."""
    if isinstance(values, Mapping):
        values = [f"{k}={v}" for k, v in values.items()]
    dims: dict[str, int] = {}
    for item in _items(values) or []:
        name, sep, value = item.rpartition("=")  # a dim name may hold "=", a value never
        value = value.strip()
        if not sep or not name.strip() or not (value.isascii() and value.isdigit()):
            raise UsageError(
                f"--fix-dim {item!r}: expected NAME=VALUE with VALUE a positive integer",
                "example: --fix-dim batch=1",
            )
        if not 0 < int(value) <= MAX_DIM:
            raise UsageError(
                f"--fix-dim {item!r}: VALUE must be between 1 and {MAX_DIM}",
                "example: --fix-dim batch=1",
            )
        dims[name.strip()] = int(value)
    return dims


MAX_DIM = 2**31 - 1
"""The largest value ``--fix-dim`` takes: far beyond any real dimension, and inside what every
consumer (ORT's int64 dims, numpy, the ONNX checker) takes."""


def parse_fix_inputs(
    values: Mapping[str, Sequence[int]] | Iterable[str] | str | None,
) -> dict[str, tuple[int, ...]]:
    """``["x=1,3,224,224"]`` (or ``{"x": (1, 3, 224, 224)}``) -> ``{"x": (1, 3, 224, 224)}``."""
    from ortprep.stages.fix_shapes import parse_input_shape

    if isinstance(values, Mapping):
        values = [f"{k}={','.join(str(d) for d in v)}" for k, v in values.items()]
    return dict(parse_input_shape(item) for item in _items(values) or [])


def parse_ep_list(values: Iterable[str] | str | None, default: str = "all") -> tuple[str, ...]:
    """``"all"``, ``"nnapi,xnnpack"`` or ``["nnapi", "xnnpack"]`` -> the EP ids, checked."""
    from ortprep.eps.registry import parse_eps

    if values is None:
        values = default
    if not isinstance(values, str):
        values = ",".join(str(v) for v in values)
    return parse_eps(values)


def one_of(option: str, value: str, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices``, else a usage error naming them."""
    allowed = tuple(choices)
    if value not in allowed:
        raise UsageError(f"{option} {value!r}", f"choose one of {', '.join(allowed)}")
    return value
