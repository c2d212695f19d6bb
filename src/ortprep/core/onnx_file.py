"""Opening ``.onnx`` files: validation of the file and its external data.

Tensor data stays where it is: external data is checked (exists, inside the model's folder, long
enough) but not read. :func:`load_lean` does not even read the bytes of inline tensors (a scan of
the wire format, :mod:`.lean_onnx`); the graph view over the parsed proto is :mod:`.onnx_view`.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from ortprep.core.errors import BadModelError

if TYPE_CHECKING:
    import onnx

    from ortprep.core.lean_onnx import LeanModel

PROTOBUF_LIMIT = 2**31 - 1
"""Protobuf cannot parse a message of 2 GiB or more; such models must keep weights outside."""

_HINT_CORRUPT = "re-export the model, or check that the download or copy finished"


def load_proto(path: Path) -> onnx.ModelProto:
    """Parse and validate ``path`` as an ONNX model, without loading external tensor data.

    Raises :class:`BadModelError` naming the problem: empty, over the protobuf limit, corrupt or
    truncated, not a model, missing or escaping external data, opset newer than supported.
    """
    return load_checked(path)[0]


def load_checked(path: Path) -> tuple[onnx.ModelProto, tuple[str, ...]]:
    """:func:`load_proto`, plus the external data files the model uses (one walk finds both)."""
    proto, external, _ = _load(path, lean=False, scanned=None)
    return proto, external


def load_lean(
    path: Path, scanned: LeanModel | None = None
) -> tuple[onnx.ModelProto, tuple[str, ...], LeanModel | None]:
    """:func:`load_checked` without reading the bytes of inline tensors over
    :data:`~ortprep.core.lean_onnx.INLINE_BYTES`: in the proto they are external references
    into ``path`` itself (location ``path.name``), left out of the external data files listed.

    The third value is the scan (its bytes are the proto's), or None when the scan could not
    read the file and the proto was parsed the ordinary way (weights inline). Only for reading:
    a proto written elsewhere would point into a file that is not beside it. ``scanned``: the
    scan of ``path`` when the caller already has it.
    """
    return _load(path, lean=True, scanned=scanned)


def _load(
    path: Path, lean: bool, scanned: LeanModel | None
) -> tuple[onnx.ModelProto, tuple[str, ...], LeanModel | None]:
    import onnx
    from google.protobuf.message import DecodeError

    size = path.stat().st_size
    if size == 0:
        raise BadModelError(f"{path}: the file is empty", _HINT_CORRUPT)
    if size > PROTOBUF_LIMIT:
        raise BadModelError(
            f"{path}: {size / 2**30:.1f} GiB is over protobuf's 2 GiB limit for one file",
            "save the model with its weights as external data "
            "(onnx.save(model, path, save_as_external_data=True))",
        )
    if _head(path)[4:8] == b"ORTM":
        raise BadModelError(
            f"{path}: this is an ORT-format model named like an ONNX file",
            "rename it to .ort",
        )
    scanned = (scanned or scan_lean(path)) if lean else None
    if scanned is not None:
        data = scanned.data
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise BadModelError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    try:
        proto = onnx.ModelProto.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        if "MaxDepth" in str(exc) or "recursion" in str(exc).lower():
            raise BadModelError(
                f"{path}: the model nests subgraphs (If, Loop, Scan bodies) deeper than protobuf "
                "can parse (100 levels of messages, about 30 nested subgraphs)",
                "flatten the nested control flow; ONNX Runtime cannot load it either",
            ) from None
        raise BadModelError(
            f"{path}: not a readable ONNX model (corrupt or truncated protobuf: {exc})",
            _HINT_CORRUPT,
        ) from None
    del data
    _check_is_model(proto, path)
    _check_text(path, "the producer", proto.producer_name, proto.producer_version, proto.domain)
    _check_opsets(proto, path)
    external = _external_entries(proto, path)  # also checks every node has an op type
    _check_external_data(external, path)
    files = dict.fromkeys(info.get("location", "") for _, info in external)
    if scanned is not None and scanned.tensors:
        files.pop(path.name, None)  # the scan's references into the file itself
    return proto, tuple(files), scanned


LEAN_FROM_BYTES = 16 << 20
"""Files from this size are read lean; smaller ones are read whole (their weights cost little,
and scanning 100,000 small nodes in Python costs more than parsing them: 0.1 s)."""


def worth_scanning(path: Path) -> bool:
    """Whether :func:`scan_lean` reads ``path`` (a rule on its size alone)."""
    return path.stat().st_size >= LEAN_FROM_BYTES


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(8)
    except OSError as exc:
        raise BadModelError(f"{path}: cannot read the file ({exc.strerror or exc})") from None


def scan_lean(path: Path) -> LeanModel | None:
    """The lean scan of ``path``, or None when the file is small (:data:`LEAN_FROM_BYTES`) or
    the scan cannot read it (the ordinary parse then reads it, and says what is wrong)."""
    from ortprep.core.lean_onnx import read_lean
    from ortprep.core.protowire import WireError

    if not worth_scanning(path):
        return None
    try:
        return read_lean(path)
    except (WireError, OSError, ValueError):
        return None


def _check_is_model(proto: onnx.ModelProto, path: Path) -> None:
    # Random bytes and text can decode as a protobuf that happens to be valid wire format;
    # a real model always has an IR version, an opset import and a graph with a node or output.
    graph = proto.graph
    if proto.ir_version <= 0 or not proto.opset_import or not (graph.node or graph.output):
        raise BadModelError(
            f"{path}: not an ONNX model (no IR version, opset import or graph)",
            "pass an .onnx model file, an .ort file, or a folder of models",
        )


def _check_opsets(proto: onnx.ModelProto, path: Path) -> None:
    import onnx.defs

    newest = onnx.defs.onnx_opset_version()
    for imp in proto.opset_import:
        if imp.domain in ("", "ai.onnx") and imp.version > newest:
            raise BadModelError(
                f"{path}: uses ONNX opset {imp.version}, newer than the installed onnx "
                f"{onnx.__version__} supports ({newest})",
                "upgrade onnx and onnxruntime, or export the model with an older opset",
            )
    if proto.ir_version > onnx.IR_VERSION:
        raise BadModelError(
            f"{path}: IR version {proto.ir_version} is newer than the installed onnx "
            f"{onnx.__version__} supports ({onnx.IR_VERSION})",
            "upgrade onnx and onnxruntime, or export the model with an older IR version",
        )


def _external_entries(
    proto: onnx.ModelProto, path: Path | None = None
) -> list[tuple[onnx.TensorProto, dict[str, str]]]:
    """Every tensor stored outside the file, with its data location fields, in one walk over
    every graph. With ``path``, a node without an op type (a truncated or corrupt file) raises."""
    import onnx

    external = onnx.TensorProto.EXTERNAL
    found: list[tuple[onnx.TensorProto, dict[str, str]]] = []

    def note(t: onnx.TensorProto) -> None:
        if path is not None and t.data_type not in _known_types():
            _bad_type(path, "tensor", t.name, t.data_type)
        if t.data_location == external:
            found.append((t, {e.key: e.value for e in t.external_data}))

    stack = [proto.graph]
    while stack:
        g = stack.pop()
        if path is not None:
            _check_value_infos(g, path)
        for t in g.initializer:
            note(t)
        for sp in g.sparse_initializer:
            note(sp.values)
            note(sp.indices)
        for node in g.node:
            if path is not None and not node.op_type:
                raise BadModelError(
                    f"{path}: not a valid ONNX model (a node in graph {g.name!r} has no op type; "
                    "the file is probably truncated or corrupt)",
                    _HINT_CORRUPT,
                )
            if path is not None:
                _check_text(path, f"node {node.name!r}", node.name, node.op_type, node.domain)
                _check_text(path, f"node {node.name!r}", *node.input, *node.output)
            for attr in node.attribute:
                if attr.HasField("t"):
                    note(attr.t)
                for t in attr.tensors:
                    note(t)
                if attr.HasField("g"):
                    stack.append(attr.g)
                stack.extend(attr.graphs)
    return found


@functools.cache
def _known_types() -> frozenset[int]:
    """The tensor element types onnx defines (0, undefined, included: left to ORT to judge)."""
    import onnx

    return frozenset(onnx.TensorProto.DataType.values())


def _bad_type(path: Path, what: str, name: str, elem_type: int) -> None:
    raise BadModelError(
        f"{path}: {what} {name!r} has element type {elem_type}, which ONNX does not define",
        _HINT_CORRUPT,
    )


def _check_text(path: Path, where: str, *texts: str | bytes) -> None:
    """Names must be text. onnx.proto is proto2, whose parser does not check UTF-8: a name that
    is not valid UTF-8 comes back as ``bytes``, which no output (JSON, tables, ORT) can carry."""
    try:
        "".join(texts)  # type: ignore[arg-type]  # bytes among them raise
    except TypeError:
        bad = next(t for t in texts if isinstance(t, bytes))
        raise BadModelError(
            f"{path}: {where}: the name {bad!r} is not valid UTF-8 (ONNX names are UTF-8 text)",
            "re-export the model; a tool wrote raw bytes where ONNX expects text",
        ) from None


def _check_value_infos(g: onnx.GraphProto, path: Path) -> None:
    """Graph inputs and outputs (what callers feed and read) must have element types onnx
    defines, and they and the initializers text names; other values are read leniently
    (:func:`dtype_name`)."""
    _check_text(path, f"graph {g.name!r}", g.name, *[t.name for t in g.initializer])
    for kind, infos in (("input", g.input), ("output", g.output)):
        for vi in infos:
            _check_text(path, f"graph {kind}", vi.name)
            t = vi.type
            which = t.WhichOneof("value")
            if which in ("tensor_type", "sparse_tensor_type"):
                tt = getattr(t, which)
                _check_text(path, f"graph {kind} {vi.name!r}", *[d.dim_param for d in tt.shape.dim])
                elem = tt.elem_type
                if elem not in _known_types():
                    _bad_type(path, kind, vi.name, elem)


def _check_external_data(
    entries: list[tuple[onnx.TensorProto, dict[str, str]]], path: Path
) -> None:
    base = path.parent.resolve()
    sizes: dict[Path, int] = {}
    for tensor, info in entries:
        location = info.get("location", "")
        if not location:
            raise BadModelError(
                f"{path}: tensor {tensor.name!r} is marked external but names no file",
                _HINT_CORRUPT,
            )
        offset = _field_int(info, "offset", tensor.name, path)
        length = _field_int(info, "length", tensor.name, path)
        size = _data_file_size(base, location, tensor.name, path, sizes)
        if length is not None and (offset or 0) + length > size:
            raise BadModelError(
                f"{path}: external data file {location!r} is shorter than tensor "
                f"{tensor.name!r} needs ({(offset or 0) + length} > {size} bytes)",
                "the data file is truncated or belongs to another export",
            )


def _field_int(info: dict[str, str], key: str, tensor: str, path: Path) -> int | None:
    """An external-data ``offset``/``length`` field: a non-negative integer, or absent."""
    value = info.get(key)
    if value is None or value == "":
        return None
    text = value.strip()
    if not text.isdigit() or not text.isascii() or len(text) > 19:
        raise BadModelError(
            f"{path}: tensor {tensor!r} has external data {key} {value!r}, not a byte count",
            _HINT_CORRUPT,
        )
    return int(text)


def _data_file_size(
    base: Path, location: str, tensor: str, path: Path, sizes: dict[Path, int]
) -> int:
    """The size of the external data file ``location`` names (resolved below ``base``).

    ONNX stores the location as a relative path; a name the OS cannot take (a NUL byte, over
    the length limits, a symlink loop) is a bad model, not a crash.
    """
    if "\0" in location:
        raise BadModelError(
            f"{path}: tensor {tensor!r} names its external data file with a NUL byte "
            f"({location!r})",
            _HINT_CORRUPT,
        )
    try:
        target = (base / location).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        raise BadModelError(
            f"{path}: external data file {location!r} of tensor {tensor!r} cannot be "
            f"resolved ({getattr(exc, 'strerror', None) or exc})",
            "the data file must be a regular file beside the model",
        ) from None
    if not target.is_relative_to(base):
        raise BadModelError(
            f"{path}: external data file {location!r} of tensor {tensor!r} "
            "lies outside the model's folder",
            "external data must sit beside the model or below its folder",
        )
    if target in sizes:
        return sizes[target]
    try:
        st = target.stat()
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise BadModelError(
                f"{path}: external data file {location!r} (tensor {tensor!r}) is missing",
                "copy the data file next to the model; it must keep the name the model gives",
            ) from None
        raise BadModelError(
            f"{path}: external data file {location!r} (tensor {tensor!r}) cannot be read "
            f"({exc.strerror or exc})",
            "the data file must be a regular file beside the model",
        ) from None
    if not stat.S_ISREG(st.st_mode):
        raise BadModelError(
            f"{path}: external data file {location!r} (tensor {tensor!r}) is not a regular file",
            "the data file must be a regular file beside the model",
        )
    sizes[target] = st.st_size
    return st.st_size


def external_tensor_files(proto: onnx.ModelProto, own: str | None = None) -> dict[str, str]:
    """The data file of each tensor ``proto`` keeps as external data, by tensor name; ``own``:
    the model's own file name, whose references (a lean read's) are not external data."""
    found: dict[str, str] = {}
    for tensor, info in _external_entries(proto):
        location = info.get("location", "")
        if location != own:
            found[tensor.name] = location
    return found


def external_data_files(proto: onnx.ModelProto) -> tuple[str, ...]:
    """Relative names of the external data files a model uses, in first-use order."""
    names: dict[str, None] = {}
    for _, info in _external_entries(proto):
        names[info.get("location", "")] = None
    return tuple(names)


def data_size_on_disk(path: Path, proto: onnx.ModelProto) -> int:
    """Bytes of the model file plus its external data files."""
    total = path.stat().st_size
    for name in external_data_files(proto):
        total += os.path.getsize(path.parent / name)
    return total
