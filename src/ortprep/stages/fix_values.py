"""Which values to suggest for a model's dynamic input dims, where each comes from, and what a
fixed shape costs.

A fix-shapes suggestion is only worth following when its values are the model's own. In order:

1. ``user``: a size the user passed (``--fix-dim NAME=VALUE``).
2. ``metadata``: the model's ``metadata_props``: a key named like the dim, image sizes
   (Ultralytics' ``imgsz: [320, 320]``, ``img_size``, ``input_size``, ``height``/``width``),
   ``batch``, sequence lengths (``max_seq_len``, ``max_length``...).
3. ``sibling``: another input or output of the same rank that shares a named dim at the same
   position and has a fixed value where this one is dynamic (``attention_mask [batch, 128]``
   beside ``input_ids [batch, seq]``).
4. ``batch``: a batch dim is 1 (one sample per run, as an app on a device runs).
5. ``equal``: the other spatial dim of an image input, when one is known (a square model; a
   guess, said so).
6. ``guess``: a typical size, said to be a guess (images 224, or 640 for a model with spatial or
   per-box outputs; sequences 128; audio 16000 samples; frames 100; anything else 32).

A name used for dims that get different values (ONNX exporters name unknown dims ``?``, so
``[?, 3, ?, ?]`` shares one name between batch and height), or an unnamed dim, cannot be fixed by
name: that input is fixed whole (``--fix-input NAME=D0,D1,...``).

Used by ``check`` for its what-if and its ``fix-shapes`` command (stages/check/source.py) and by
``prepare``'s recommendation (recommend.py), so both say the same values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ortprep.core.feeds import is_batch_name
from ortprep.core.graph import ValueType

__all__ = ["DimValue", "FixValues", "for_file", "own_sizes", "suggest"]

GUESSES = frozenset({"guess", "equal"})
_GENERIC = re.compile(
    r"^(\?|unk__\d+|p2o\.dynamicdimension\.\d+|.*_dim_\d+|dim_?\d+|dynamic.*|none|-1)$",
    re.IGNORECASE,
)
_SIZE_KEYS = ("imgsz", "img_size", "image_size", "input_size", "input_shape", "imgsize")
_HEIGHT_KEYS = ("height", "input_height", "img_h", "image_height")
_WIDTH_KEYS = ("width", "input_width", "img_w", "image_width")
_BATCH_KEYS = ("batch", "batch_size")
_SEQ_KEYS = ("max_seq_len", "max_seq_length", "max_length", "seq_len", "sequence_length")
_INT = re.compile(r"-?\d+")


@dataclass(frozen=True)
class DimValue:
    """The value suggested for one dynamic dim of one input, and where it comes from."""

    input: str
    position: int
    name: str | None
    value: int
    source: str  # user | metadata | sibling | batch | equal | guess
    why: str

    @property
    def guess(self) -> bool:
        return self.source in GUESSES

    @property
    def label(self) -> str:
        return self.name if self.name else f"{self.input}[{self.position}]"

    def to_dict(self) -> dict[str, object]:
        return {
            "input": self.input,
            "position": self.position,
            "dim": self.name,
            "value": self.value,
            "source": self.source,
            "guess": self.guess,
            "why": self.why,
        }


@dataclass(frozen=True)
class FixValues:
    """Suggested values for every dynamic input dim of a model."""

    values: tuple[DimValue, ...] = ()
    dims: Mapping[str, int] = field(default_factory=dict)
    """Dims fixed by name (``--fix-dim``)."""
    inputs: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    """Inputs fixed whole (``--fix-input``): an unnamed dim, or a name shared by dims that get
    different values."""
    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    """The shape every dynamic input would then have."""
    kinds: Mapping[str, str] = field(default_factory=dict)
    """``image``, ``sequence`` or ``tensor`` per dynamic input (for the cost sentence)."""

    @property
    def fixes(self) -> tuple[dict[str, int], dict[str, tuple[int, ...]]]:
        return dict(self.dims), dict(self.inputs)

    @property
    def known_dims(self) -> dict[str, int]:
        """The named dims whose value the model (or the user) gives, guesses and batch left out:
        sizes worth running the model at."""
        return {
            v.name: v.value
            for v in self.values
            if v.name and v.name in self.dims and not v.guess and v.source != "batch"
        }

    @property
    def guesses(self) -> tuple[DimValue, ...]:
        return tuple(v for v in self.values if v.guess)

    def explain(self) -> tuple[str, ...]:
        """Where the values come from, which are guesses, and what a fixed shape costs."""
        if not self.values:
            return ()
        sentences = []
        known = [v for v in self.values if not v.guess]
        if known:
            sentences.append(
                "Suggested values: " + "; ".join(_said(v) for v in _by_label(known)) + "."
            )
        guessed = self.guesses
        if guessed:
            names = ", ".join(f"{v.label}={v.value}" for v in _by_label(guessed))
            first = guessed[0]
            if first.input in self.inputs:
                open_ = {g.position for g in guessed if g.input == first.input}
                shape = ",".join(
                    "VALUE" if i in open_ else str(d)
                    for i, d in enumerate(self.shapes[first.input])
                )
                flag = f"--fix-input {first.input}={shape}"
            else:
                flag = f"--fix-dim {first.label}=VALUE"
            sentences.append(
                f"Guessed, the model does not say: {names} ({first.why}); give the sizes your "
                f"app feeds instead ({flag})."
            )
        sized = {v.input for v in self.values if v.source != "batch"}
        costs = [
            _cost(name, shape, self.kinds.get(name, "tensor"))
            for name, shape in self.shapes.items()
            if name in sized
        ]
        if costs:
            sentences.append("A fixed shape has a cost: " + "; ".join(costs[:3]) + ".")
        else:
            sentences.append("A fixed batch of 1 means one sample per run.")
        return tuple(sentences)

    def guess_note(self, given: Iterable[str] = ()) -> str:
        """One short line to print after a fix command: which of its values are guesses, why
        each was chosen, and the flag that passes the user's own ("N=16000 is a guess (one
        second of 16 kHz audio); pass your size with --fix-dim N=VALUE"). Dims or inputs in
        ``given`` (the user's own) are left out; "" when no value is a guess."""
        mine = set(given)
        guessed = [
            v for v in _by_label(self.guesses) if v.label not in mine and v.input not in mine
        ]
        if not guessed:
            return ""
        names = ", ".join(f"{v.label}={v.value}" for v in guessed)
        whys = "; ".join(dict.fromkeys(v.why for v in guessed))
        one = len(guessed) == 1
        flags: list[str] = []
        for v in guessed:
            if v.input in self.inputs:
                open_ = {g.position for g in guessed if g.input == v.input}
                shape = ",".join(
                    "VALUE" if i in open_ else str(d) for i, d in enumerate(self.shapes[v.input])
                )
                flag = f"--fix-input {v.input}={shape}"
            else:
                flag = f"--fix-dim {v.label}=VALUE"
            if flag not in flags:
                flags.append(flag)
        verb = "is a guess" if one else "are guesses"
        return f"{names} {verb} ({whys}); pass your {'size' if one else 'sizes'} with " + " ".join(
            flags
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "dims": dict(self.dims),
            "inputs": {k: list(v) for k, v in self.inputs.items()},
            "values": [v.to_dict() for v in self.values],
            "guesses": [v.label for v in self.guesses],
        }


def _by_label(values: Sequence[DimValue]) -> list[DimValue]:
    """One entry per named dim (a name used by several inputs is said once)."""
    seen: dict[str, DimValue] = {}
    for v in values:
        seen.setdefault(v.label, v)
    return list(seen.values())


def _said(v: DimValue) -> str:
    return f"{v.label}={v.value} ({v.why})"


def _cost(name: str, shape: tuple[int, ...], kind: str) -> str:
    dims = "×".join(str(d) for d in shape)
    if kind == "image":
        h, w = _spatial(shape)
        return (
            f"input '{name}' becomes [{dims}], a {h}×{w}-only model: the app must resize or pad "
            f"every image to {h}×{w}"
        )
    if kind == "sequence":
        return (
            f"input '{name}' becomes [{dims}]: only sequences of exactly that length, so the "
            "app pads shorter ones and splits longer ones"
        )
    return f"input '{name}' becomes [{dims}] and takes exactly that shape, nothing else"


# --------------------------------------------------------------------------- roles


def _image_positions(shape: tuple[object, ...]) -> tuple[int, int] | None:
    """Height and width positions of an image input (NCHW or NHWC, 1, 3 or 4 channels)."""
    if len(shape) != 4:
        return None
    if shape[1] in (1, 3, 4):
        return (2, 3)
    if shape[3] in (1, 3, 4):
        return (1, 2)
    return None


def _spatial(shape: tuple[int, ...]) -> tuple[int, int]:
    pos = _image_positions(shape) or (len(shape) - 2, len(shape) - 1)
    return shape[pos[0]], shape[pos[1]]


def _is_batch(name: str | None, position: int, rank: int, kind: str) -> bool:
    if is_batch_name(name, position):
        return True
    generic = name is None or bool(_GENERIC.match(name))
    return position == 0 and rank >= 2 and (generic or kind == "image")


_SEQ_WORDS = ("seq", "token", "length", "len", "text", "word", "char")


def _named_guess(name: str | None, input_name: str) -> tuple[int, str, str] | None:
    """A guess from what the dim or its input is called: ``(value, kind, why)``."""
    words = f"{name or ''} {input_name}".lower()
    if any(w in words for w in ("sample", "audio", "wav", "pcm")):
        return 16000, "tensor", "one second of 16 kHz audio"
    if any(w in words for w in ("time", "frame")):
        return 100, "sequence", "100 frames"
    if any(w in words for w in _SEQ_WORDS) or input_name.endswith(("_ids", "_mask")):
        return 128, "sequence", "a common maximum sequence length"
    return None


# --------------------------------------------------------------------------- metadata


def _ints(text: str) -> list[int]:
    return [int(x) for x in _INT.findall(text)][:8]


def _lookup(metadata: Mapping[str, str], keys: Sequence[str]) -> tuple[str, list[int]] | None:
    lowered = {k.lower(): (k, v) for k, v in metadata.items()}
    for key in keys:
        if key in lowered:
            original, value = lowered[key]
            found = [n for n in _ints(value) if n > 0]
            if found:
                return f"{original}={value.strip()[:40]}", found
    return None


def _metadata_size(metadata: Mapping[str, str]) -> tuple[int, int, str, bool] | None:
    """``(height, width, where, square_by_word)`` from the metadata, if it gives an image size."""
    size = _lookup(metadata, _SIZE_KEYS)
    if size is not None:
        where, n = size
        if len(n) == 1:
            return n[0], n[0], where, True
        if len(n) == 2:
            return n[0], n[1], where, n[0] == n[1]
        if len(n) in (3, 4):
            h, w = n[-2], n[-1]
            if n[-1] in (1, 3, 4) and len(n) >= 3:  # NHWC / HWC
                h, w = n[-3], n[-2]
            return h, w, where, h == w
    height, width = _lookup(metadata, _HEIGHT_KEYS), _lookup(metadata, _WIDTH_KEYS)
    if height is not None and width is not None:
        return height[1][0], width[1][0], f"{height[0]}, {width[0]}", False
    return None


# --------------------------------------------------------------------------- siblings


def _siblings(values: Sequence[ValueType]) -> dict[str, tuple[int, str]]:
    """Named dims another input or output fixes at the same position (sharing a named dim)."""
    found: dict[str, tuple[int, str]] = {}
    shaped = [v for v in values if v.shape is not None]
    for a in shaped:
        for b in shaped:
            if a is b or len(a.shape or ()) != len(b.shape or ()):
                continue
            pairs = list(zip(a.shape or (), b.shape or (), strict=True))
            if not any(isinstance(x, str) and x == y for x, y in pairs):
                continue
            for x, y in pairs:
                if isinstance(x, str) and isinstance(y, int) and y > 0 and x not in found:
                    found[x] = (y, f"'{b.name}' has {y} where '{a.name}' has '{x}'")
    return found


# --------------------------------------------------------------------------- suggest


@dataclass(frozen=True)
class _Known:
    """What the model (and the user) say about sizes."""

    given: Mapping[str, int]
    by_key: Mapping[str, str]
    siblings: Mapping[str, tuple[int, str]]
    size: tuple[int, int, str, bool] | None
    batch: tuple[str, list[int]] | None
    seq: tuple[str, list[int]] | None
    spatial_outputs: bool


def _decide(
    k: _Known, v: ValueType, i: int, name: str | None, image: tuple[int, int] | None
) -> tuple[int, str, str, str | None]:
    """``(value, source, why, kind)`` for dim ``i`` of input ``v`` (``kind``: what the input
    turns out to be, when this dim says it)."""
    shape = v.shape or ()
    named = _named_guess(name, v.name)
    if name is not None and name in k.given:
        return k.given[name], "user", "the value you passed", None
    if name is not None and name.lower() in k.by_key and _ints(k.by_key[name.lower()]):
        return _ints(k.by_key[name.lower()])[0], "metadata", f"from its metadata {name}", None
    if name is not None and name in k.siblings:
        return k.siblings[name][0], "sibling", k.siblings[name][1], None
    if _is_batch(name, i, len(shape), "image" if image else "tensor"):
        if k.batch is not None:
            return k.batch[1][0], "metadata", f"from its metadata {k.batch[0]}", None
        return 1, "batch", "one sample per run", None
    if image is not None and i in image:
        if k.size is not None:
            h, w, where, _ = k.size
            return (h if i == image[0] else w), "metadata", f"from its metadata {where}", None
        other = shape[image[1] if i == image[0] else image[0]]
        if isinstance(other, int) and other > 0:
            return other, "equal", f"the same as the other side, {other}: square", None
        what = "detector" if k.spatial_outputs else "classifier"
        return 640 if k.spatial_outputs else 224, "guess", f"a typical {what} input size", None
    if named is not None and named[1] == "sequence" and k.seq is not None:
        return k.seq[1][0], "metadata", f"from its metadata {k.seq[0]}", "sequence"
    if named is not None:
        return named[0], "guess", named[2], named[1]
    return 32, "guess", "the model gives no size", None


def suggest(
    inputs: Sequence[ValueType],
    outputs: Sequence[ValueType] = (),
    metadata: Mapping[str, str] | None = None,
    user: Mapping[str, int] | None = None,
) -> FixValues:
    """Values for every dynamic dim of ``inputs`` (the model's runtime inputs)."""
    meta = dict(metadata or {})
    known = _Known(
        given=dict(user or {}),
        by_key={k.lower(): v for k, v in meta.items()},
        siblings=_siblings([*inputs, *outputs]),
        size=_metadata_size(meta),
        batch=_lookup(meta, _BATCH_KEYS),
        seq=_lookup(meta, _SEQ_KEYS),
        spatial_outputs=any((o.rank or 0) >= 3 for o in outputs),
    )
    values: list[DimValue] = []
    kinds: dict[str, str] = {}
    for v in inputs:
        if not v.dynamic or v.shape is None:
            continue
        image = _image_positions(v.shape)
        kind = "image" if image else "tensor"
        mine: list[DimValue] = []
        for i, d in enumerate(v.shape):
            if isinstance(d, int) and d >= 0:
                continue
            name = d if isinstance(d, str) and d else None
            value, source, why, said = _decide(known, v, i, name, image)
            mine.append(DimValue(v.name, i, name, value, source, why))
            role = said or (g[1] if (g := _named_guess(name, v.name)) else None)
            if source != "batch" and role is not None and kind == "tensor":
                kind = role
        values.extend(_square(mine, image))
        kinds[v.name] = kind
    return _assemble(inputs, values, kinds)


def _square(mine: list[DimValue], image: tuple[int, int] | None) -> list[DimValue]:
    """An image side that is a guess takes the other side's value when that one is known."""
    if image is None:
        return mine
    sides = {v.position: v for v in mine if v.position in image}
    if len(sides) != 2:
        return mine
    h, w = sides[image[0]], sides[image[1]]
    for this, other in ((h, w), (w, h)):
        if this.guess and not other.guess:
            i = mine.index(this)
            mine[i] = DimValue(
                this.input,
                this.position,
                this.name,
                other.value,
                "equal",
                f"the same as {other.label} ({other.value}): assumed square",
            )
    return mine


def _assemble(
    inputs: Sequence[ValueType], values: list[DimValue], kinds: dict[str, str]
) -> FixValues:
    per_name: dict[str, set[int]] = {}
    for v in values:
        if v.name is not None:
            per_name.setdefault(v.name, set()).add(v.value)
    whole = {v.input for v in values if v.name is None or len(per_name[v.name]) > 1}
    dims: dict[str, int] = {}
    for v in values:
        if v.input not in whole and v.name is not None:
            dims[v.name] = v.value
    at = {(v.input, v.position): v.value for v in values}
    shapes: dict[str, tuple[int, ...]] = {}
    for t in inputs:
        if t.dynamic and t.shape is not None:
            shapes[t.name] = tuple(
                d if isinstance(d, int) and d >= 0 else at[(t.name, i)]
                for i, d in enumerate(t.shape)
            )
    fixed_inputs = {name: shapes[name] for name in shapes if name in whole}
    return FixValues(tuple(values), dims, fixed_inputs, shapes, kinds)


def for_file(
    path: Path,
    inputs: Sequence[ValueType] | None = None,
    user: Mapping[str, int] | None = None,
) -> FixValues:
    """:func:`suggest` with the outputs and metadata the ``.onnx`` file at ``path`` declares
    (``inputs``: the runtime inputs to fix, when the caller has them; else the file's)."""
    from ortprep.core.onnx_header import Interface, read_interface

    try:
        interface = read_interface(path)
    except (OSError, ValueError):  # the interface is advice: an unreadable file gives none
        interface = Interface()
    return suggest(
        interface.inputs if inputs is None else inputs,
        interface.outputs,
        interface.metadata,
        user,
    )


def own_sizes(path: Path, inputs: Sequence[ValueType] | None = None) -> dict[str, int]:
    """The sizes the model at ``path`` gives its dynamic named dims itself (metadata, sibling
    dims; never a guess, batch dims left out): :attr:`FixValues.known_dims`, the one rule for
    "the model's own sizes" that verification's first inputs (stages/verify.py) and prepare's
    benchmark (pipeline.py) follow. Empty when every input is static."""
    if inputs is not None and not any(v.dynamic for v in inputs):
        return {}
    return for_file(path, inputs).known_dims
