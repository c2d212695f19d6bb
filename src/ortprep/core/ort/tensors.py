"""Tensor values of an ``.ort`` file: read from the verified buffer when asked, as views."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ortprep.core.errors import BadModelError
from ortprep.core.ort.format import DTYPES, STRING_TYPE, bad_file, decode

if TYPE_CHECKING:
    import mmap

    import numpy as np

__all__ = ["TensorLoader", "element_count", "item_size"]

_ITEMSIZES = {
    1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16,
    16: 2, 17: 1, 18: 1, 19: 1, 20: 1,
}  # fmt: skip


def item_size(type_id: int) -> int:
    return _ITEMSIZES.get(type_id, 0)


def element_count(dims: tuple[int, ...]) -> int:
    """Number of elements, or 0 when a dimension is negative (corrupt)."""
    count = 1
    for d in dims:
        if d < 0:
            return 0
        count *= d
    return count


def _numpy_dtype(name: str) -> np.dtype:
    """numpy dtype for a type name; bfloat16 and float8 come from ml_dtypes (as in onnx)."""
    import numpy as np

    if name.startswith(("bfloat", "float8")):
        try:
            import ml_dtypes
        except ImportError:  # older onnx without ml_dtypes: give the raw bits
            return np.dtype(np.uint16 if name == "bfloat16" else np.uint8)
        return np.dtype(getattr(ml_dtypes, name))
    return np.dtype(name)


class TensorLoader:
    """Reads one tensor's values from the verified buffer when asked (a view, not a copy).

    ``raw`` is (position, length) of the raw_data bytes or None when absent, ``strings`` the
    positions of the string_data strings, ``external`` the external_data_offset (-1 if absent).
    """

    __slots__ = ("_buf", "_dims", "_external", "_name", "_path", "_raw", "_strings", "_type_id")

    def __init__(
        self,
        buf: bytes | mmap.mmap,
        path: Path,
        name: str,
        type_id: int,
        dims: tuple[int, ...],
        raw: tuple[int, int] | None,
        strings: list[int],
        external: int,
    ) -> None:
        self._buf = buf
        self._path = path
        self._name = name
        self._type_id = type_id
        self._dims = dims
        self._raw = raw
        self._strings = strings
        self._external = external

    def __call__(self) -> np.ndarray:
        import numpy as np

        dims = self._dims
        if any(d < 0 for d in dims):
            raise self._bad(f"has a negative dimension {dims}")
        count = element_count(dims)
        dtype = DTYPES.get(self._type_id)
        if dtype is None:
            raise self._bad(f"has the unknown data type {self._type_id}")
        if self._type_id == STRING_TYPE:
            if len(self._strings) != count:
                raise self._bad(f"has {len(self._strings)} strings for dims {dims}")
            # str elements, as onnx.numpy_helper.to_array gives for an ONNX string tensor
            values = [decode(self._buf, s) for s in self._strings]
            return np.array(values, dtype=object).reshape(dims)
        if self._raw is None and self._external >= 0:
            raise BadModelError(
                f"{self._path}: initializer {self._name!r} keeps its data outside the .ort file",
                "ortprep reads only ORT-format files with their data inline",
            )
        start, size = self._raw or (0, 0)
        width = item_size(self._type_id)
        if size != count * width:
            raise self._bad(f"has {size} bytes of data for dims {dims} of {dtype}")
        raw = np.frombuffer(self._buf, np.uint8, size, start) if size else np.zeros(0, np.uint8)
        return raw.view(_numpy_dtype(dtype)).reshape(dims)

    def _bad(self, what: str) -> BadModelError:
        return bad_file(self._path, f"initializer {self._name!r} {what}")
