"""What an ``.onnx`` file says about its interface, without parsing its weights: the runtime
inputs, the outputs and ``metadata_props``.

The model is not parsed as a whole: the protobuf wire format is walked over a memory map
(:mod:`.protowire`), the
length-delimited fields that are not needed (nodes, initializer data) are skipped by their length,
and only the graph's input and output ``ValueInfoProto`` messages, the initializers' names (an
input with an initializer is not fed at run time) and the metadata entries are parsed. Reading the
interface of a 2 GB model costs what reading a 2 KB one does.

:mod:`.lean_onnx` keeps a whole graph without its tensor payloads (for ORT and the rules); this
reads less: the interface alone, for advice that must cost nothing on a model of any size.

Field numbers from onnx.proto: ModelProto ``graph`` 7, ``metadata_props`` 14; GraphProto
``initializer`` 5, ``input`` 11, ``output`` 12; TensorProto ``name`` 8.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from pathlib import Path

from ortprep.core.graph import ValueType
from ortprep.core.protowire import length_fields

__all__ = ["Interface", "read_interface"]


@dataclass(frozen=True)
class Interface:
    """A model's runtime inputs, outputs and metadata."""

    inputs: tuple[ValueType, ...] = ()
    outputs: tuple[ValueType, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)


def read_interface(path: Path) -> Interface:
    """The interface of the ``.onnx`` file at ``path`` (raises ``ValueError`` when the file is not
    a well-formed protobuf, ``OSError`` when it cannot be read)."""
    import onnx
    from google.protobuf.message import DecodeError

    from ortprep.core.onnx_view import runtime_input_types

    try:
        found = _scan(path)
    except (IndexError, ValueError, DecodeError) as exc:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"{path}: not a well-formed ONNX protobuf ({exc})") from None
    if found is None:
        return Interface()
    inputs, outputs, initializers, metadata = found
    proto = onnx.ModelProto()
    proto.graph.input.extend(onnx.ValueInfoProto.FromString(b) for b in inputs)
    proto.graph.initializer.extend(onnx.TensorProto(name=n) for n in initializers)
    typed_outputs = onnx.ModelProto()  # outputs typed the same way: read as inputs
    typed_outputs.graph.input.extend(onnx.ValueInfoProto.FromString(b) for b in outputs)
    return Interface(runtime_input_types(proto), runtime_input_types(typed_outputs), metadata)


def _scan(path: Path) -> tuple[list[bytes], list[bytes], list[str], dict[str, str]] | None:
    import onnx

    inputs: list[bytes] = []
    outputs: list[bytes] = []
    initializers: list[str] = []
    metadata: dict[str, str] = {}
    with path.open("rb") as f:
        if path.stat().st_size == 0:
            return None
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            for number, start, end in length_fields(buf, 0, len(buf)):
                if number == 14:
                    entry = onnx.StringStringEntryProto.FromString(buf[start:end])
                    metadata[entry.key] = entry.value
                elif number == 7:
                    for g_number, g_start, g_end in length_fields(buf, start, end):
                        if g_number == 11:
                            inputs.append(buf[g_start:g_end])
                        elif g_number == 12:
                            outputs.append(buf[g_start:g_end])
                        elif g_number == 5:
                            for t_number, t_start, t_end in length_fields(buf, g_start, g_end):
                                if t_number == 8:
                                    initializers.append(bytes(buf[t_start:t_end]).decode())
    return inputs, outputs, initializers, metadata
