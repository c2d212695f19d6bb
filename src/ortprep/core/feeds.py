"""What ortprep feeds a model when it runs one: the user's ``--inputs`` file, or generated inputs.

Both are checked against the model's inputs before anything big is made or read. An ``.npz``
file is a zip of ``.npy`` members, each with a small header (dtype, shape): the headers are read
first, and a member whose type, rank or fixed dimensions do not match the model's input, or that
would decompress to more than :data:`MAX_FEED_BYTES`, is refused before a single array is loaded
(a 0.5 MB file can declare a 512 MB array). Generated inputs get the same size bound.
"""

from __future__ import annotations

import math
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ortprep.core.errors import BadModelError, UsageError

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime as ort

MAX_FEED_BYTES = 256 << 20
"""The largest single input ortprep reads from ``--inputs`` or generates (256 MiB): twenty times
a 1024x1024 RGB float image. Verification holds each input and several float64 copies of the
outputs it compares, so memory grows with many times this."""

MAX_RANK = 32
"""The largest input rank ortprep feeds: numpy 1.x makes arrays of up to 32 dimensions (2.x 64),
and no real model input comes close."""

_HINT_INPUTS = "save the arrays with numpy.savez(FILE, NAME=array, ...), one per model input"

# ORT's type strings (InferenceSession.get_inputs()[i].type) as numpy dtype names
_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(int16)": "int16",
    "tensor(uint16)": "uint16",
    "tensor(int32)": "int32",
    "tensor(uint32)": "uint32",
    "tensor(int64)": "int64",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


@dataclass(frozen=True)
class InputSpec:
    """One input a caller feeds: numpy dtype name (None: not a plain tensor) and shape (ints
    fixed, strings or None symbolic; None: rank unknown)."""

    name: str
    dtype: str | None
    shape: tuple[Any, ...] | None
    ort_type: str = ""

    @property
    def type_text(self) -> str:
        return self.ort_type or str(self.dtype)


def session_inputs(session: ort.InferenceSession) -> list[InputSpec]:
    """The inputs of an ORT session, as :class:`InputSpec`."""
    return [
        InputSpec(
            a.name,
            _ORT_TYPES.get(a.type),
            tuple(a.shape) if a.shape is not None else None,
            a.type,
        )
        for a in session.get_inputs()
    ]


def graph_inputs(values: Iterable[Any]) -> list[InputSpec]:
    """The runtime inputs of a graph view (``Graph.runtime_inputs``), as :class:`InputSpec`."""
    return [InputSpec(v.name, v.dtype if v.kind == "tensor" else None, v.shape) for v in values]


# --------------------------------------------------------------------------- --inputs files


@dataclass(frozen=True)
class _Member:
    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int


def check_inputs_file(path: Path, expected: Sequence[InputSpec], model: object = None) -> None:
    """Refuse an ``--inputs`` file that cannot feed ``expected`` (exit 2), reading only headers.

    Not a file, not an ``.npz`` (a single ``.npy`` included), an array missing, of another
    type, rank or fixed size than the model's input, or larger than :data:`MAX_FEED_BYTES`.
    """
    members = _read_headers(path)
    where = f"{path}: " if model is None else f"{path} (for {model}): "
    missing = [i.name for i in expected if i.name not in members]
    if missing:
        raise UsageError(
            f"{where}no array for input(s) {', '.join(repr(m) for m in missing)} "
            f"(the file has {', '.join(repr(m) for m in members) or 'no arrays'})",
            _HINT_INPUTS,
        )
    for spec in expected:
        _check_member(members[spec.name], spec, where)


def _read_headers(path: Path) -> dict[str, _Member]:
    import numpy as np

    if not path.is_file():
        raise UsageError(
            f"{path}: no such inputs file" if not path.exists() else f"{path}: not a file",
            "pass an .npz file",
        )
    try:
        with zipfile.ZipFile(path) as archive:
            members: dict[str, _Member] = {}
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                name = info.filename[: -len(".npy")]
                with archive.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                if dtype.hasobject:
                    raise UsageError(
                        f"{path}: array {name!r} holds Python objects, which ortprep does not "
                        "load (they would need pickle)",
                        _HINT_INPUTS,
                    )
                nbytes = math.prod(shape) * dtype.itemsize
                members[name] = _Member(name, str(dtype), tuple(shape), nbytes)
    except zipfile.BadZipFile:
        single = _is_npy(path)
        raise UsageError(
            f"{path}: a single .npy array, not an .npz file of named inputs"
            if single
            else f"{path}: not an .npz file (not a zip archive of .npy arrays)",
            _HINT_INPUTS,
        ) from None
    except (OSError, ValueError, EOFError, zipfile.LargeZipFile, NotImplementedError) as exc:
        raise UsageError(
            f"{path}: not a readable .npz file of inputs ({exc})", _HINT_INPUTS
        ) from None
    return members


def _is_npy(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(6) == b"\x93NUMPY"


def _check_member(member: _Member, spec: InputSpec, where: str) -> None:
    if spec.dtype is None:
        raise UsageError(
            f"{where}input {spec.name!r} has type {spec.type_text}, which ortprep cannot feed"
        )
    wanted = "object" if spec.dtype == "object" else spec.dtype
    got = "object" if member.dtype.startswith(("<U", ">U", "|U", "|S")) else member.dtype
    if _normal_dtype(got) != _normal_dtype(wanted):
        raise UsageError(
            f"{where}array {spec.name!r} is {member.dtype}, the model's input is {wanted}",
            f"convert it: array.astype('{wanted}')",
        )
    shape_text = f"shape {list(member.shape)}"
    if spec.shape is not None:
        if len(member.shape) != len(spec.shape):
            raise UsageError(
                f"{where}array {spec.name!r} has rank {len(member.shape)} ({shape_text}), the "
                f"model's input has rank {len(spec.shape)} ({_shape_text(spec.shape)})"
            )
        for i, (have, want) in enumerate(zip(member.shape, spec.shape, strict=True)):
            if isinstance(want, int) and want >= 0 and have != want:
                raise UsageError(
                    f"{where}array {spec.name!r} has {shape_text}, the model's input is "
                    f"{_shape_text(spec.shape)} (dimension {i} must be {want})"
                )
    if member.nbytes > MAX_FEED_BYTES:
        raise UsageError(
            f"{where}array {spec.name!r} ({shape_text}, {member.dtype}) would take "
            f"{_size(member.nbytes)} in memory, over ortprep's {_size(MAX_FEED_BYTES)} limit "
            "for one input",
            "pass smaller inputs",
        )


def _size(nbytes: int) -> str:
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MiB"


def _normal_dtype(name: str) -> str:
    import numpy as np

    try:
        return np.dtype(name).name
    except TypeError:
        return name


def _shape_text(shape: Sequence[Any]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def load_inputs(
    path: Path, expected: Sequence[InputSpec] | None = None, model: object = None
) -> dict[str, np.ndarray]:
    """Named input arrays from an ``.npz`` file: checked against ``expected`` first, then only
    the arrays ``expected`` names are read (all of them without ``expected``)."""
    import numpy as np

    if expected is not None:
        check_inputs_file(path, expected, model)
        wanted: set[str] | None = {i.name for i in expected}
    else:
        _read_headers(path)
        wanted = None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files if wanted is None or k in wanted}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{path}: not a readable .npz file of inputs ({exc})") from None


# --------------------------------------------------------------------------- feeds


def check_runnable(session: ort.InferenceSession, model: object = None) -> None:
    """A model ORT loaded but that cannot be run for a comparison: one without outputs."""
    if not session.get_outputs():
        where = f"{model}: " if model is not None else ""
        raise BadModelError(
            f"{where}the model has no outputs: there is nothing to run or compare",
            "export the model with its outputs, or pass --no-verify where the command has it",
        )


def check_generated_shape(spec: InputSpec, shape: tuple[int, ...], model: object = None) -> None:
    """A generated input must be an array numpy can make and that fits in memory."""
    import numpy as np

    where = f"{model}: " if model is not None else ""
    if len(shape) > MAX_RANK:
        raise BadModelError(
            f"{where}input {spec.name!r} has rank {len(shape)}; ortprep makes inputs of rank "
            f"{MAX_RANK} at most",
            "a real model input has a handful of dimensions: check the export",
        )
    itemsize = np.dtype(spec.dtype or "float32").itemsize if spec.dtype != "object" else 8
    nbytes = math.prod(shape) * itemsize
    if nbytes > MAX_FEED_BYTES:
        raise UsageError(
            f"{where}input {spec.name!r} of shape {list(shape)} would take "
            f"{_size(nbytes)}, over ortprep's {_size(MAX_FEED_BYTES)} limit for one input",
            "fix its symbolic dimensions to smaller values with --fix-dim NAME=VALUE",
        )


def make_feeds(
    session: ort.InferenceSession,
    inputs: Path | None,
    fix_dims: Mapping[str, int],
    model: object = None,
) -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    """Feeds for a session: from ``--inputs`` when given (checked first), else seeded random
    ones (bounded); with the shapes fed. ``model`` names the model in messages."""
    check_runnable(session, model)
    specs = session_inputs(session)
    if inputs is not None:
        feeds = load_inputs(inputs, specs, model)
        return feeds, {k: tuple(v.shape) for k, v in feeds.items()}
    for spec in specs:
        check_generated_shape(spec, input_shape(spec.shape, fix_dims), model)
    return generate_inputs(session, fix_dims)


# --------------------------------------------------------------------------- generated inputs

BATCH_DEFAULT = 1
OTHER_DIM_DEFAULT = 32
"""What an unfixed symbolic dimension becomes when inputs are generated: 1 for batch-like dims
(:func:`is_batch_dim`), 32 otherwise. ``--fix-dim`` overrides both."""


_SEQUENCE_NAMES = re.compile(r"seq|len|time|frame|sample|token|step", re.I)


def is_batch_name(name: object, position: int) -> bool:
    """Whether a dim's name says it is a batch: ``batch``, ``batch_size``, ``bs`` anywhere;
    ``N`` or ``b`` only as the first dim (in ``[batch_size, N]`` N counts audio samples)."""
    low = name.lower() if isinstance(name, str) else ""
    return "batch" in low or low in {"bs", "nbatch"} or (position == 0 and low in {"n", "b"})


def is_batch_dim(name: object, position: int) -> bool:
    """Whether a symbolic dim is taken as a batch when inputs are made: named so
    (:func:`is_batch_name`), or the first dim unless its name says sequence or length
    (``seq_len``, ``time``, ``samples``)."""
    if is_batch_name(name, position):
        return True
    low = name if isinstance(name, str) else ""
    return position == 0 and not _SEQUENCE_NAMES.search(low)


def input_shape(
    shape: tuple[Any, ...] | None,
    fix_dims: Mapping[str, int],
    free: int = OTHER_DIM_DEFAULT,
    unnamed: int | None = None,
) -> tuple[int, ...]:
    """A concrete shape: fixed dims kept, symbolic ones from ``fix_dims``, batch dims
    :data:`BATCH_DEFAULT`, the other named ones ``free`` and the other unnamed ones ``unnamed``
    (default: ``free``; the input search keeps a state input's unnamed batch at 1)."""
    if shape is None:
        return ()
    dims = []
    for i, d in enumerate(shape):
        if isinstance(d, int) and d >= 0:
            dims.append(d)
        elif isinstance(d, str) and d in fix_dims:
            dims.append(fix_dims[d])
        elif is_batch_dim(d, i):
            dims.append(BATCH_DEFAULT)
        elif isinstance(d, str) and d:
            dims.append(free)
        else:
            dims.append(free if unnamed is None else unnamed)
    return tuple(dims)


def generate_inputs(
    session: ort.InferenceSession, fix_dims: Mapping[str, int], seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, tuple[int, ...]]]:
    """Seeded random feeds for a session's inputs, and the shapes chosen for them."""
    import numpy as np

    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for arg in session.get_inputs():
        dtype = _ORT_TYPES.get(arg.type)
        if dtype is None:
            raise UsageError(
                f"input {arg.name!r} has type {arg.type}, which ortprep cannot generate",
                "pass real inputs with --inputs FILE.npz",
            )
        shape = input_shape(tuple(arg.shape) if arg.shape is not None else None, fix_dims)
        shapes[arg.name] = shape
        if dtype.startswith("float"):
            feeds[arg.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype == "bool":
            feeds[arg.name] = rng.integers(0, 2, shape).astype(bool)
        elif dtype == "object":  # tensor(string)
            feeds[arg.name] = np.full(shape, "a", dtype=object)
        else:
            feeds[arg.name] = rng.integers(0, 4, shape).astype(dtype)
    return feeds, shapes
