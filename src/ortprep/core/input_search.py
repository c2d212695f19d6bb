"""Inputs a model runs on: when the synthesized inputs fail, try others, a bounded number of times.

Random inputs of the default shapes (batch-like dims 1, other symbolic dims 32) do not run
every model: a reflect Pad needs more samples than it pads, an embedding needs indices below its
vocabulary size, a voice model needs a sample rate it knows. The search runs the original
(optimizations disabled: the float reference) on a short list of attempts and keeps the first that
runs:

0. the sizes the model gives itself (``preferred``: its metadata, sibling dims, never a guess;
   worked out by the stage that calls, stages/fix_values.py), when given and within
   :data:`MAX_TOTAL_BYTES`, with the values of 1.;
1. the default shapes, float inputs ``normal(0, 1)``, integer inputs fitted to what the graph does
   with them (:func:`integer_hints`);
2. the same shapes with float inputs in ``[0, 1)`` and unhinted integers small and positive, then
   floats in ``[-1, 1)``;
3. other sizes for the symbolic dims (:data:`DIM_SIZES`): first on the main input only (state
   inputs keep 1 where their dim has no name), then on every input, while all inputs together stay
   within :data:`MAX_TOTAL_BYTES`.

At most :data:`MAX_ATTEMPTS` runs. Each failed attempt is kept as one line; what was finally used
(name, shape, dtype, values) is said wherever a verification verdict is shown.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ortprep.core.errors import UsageError
from ortprep.core.feeds import (
    BATCH_DEFAULT,
    InputSpec,
    check_generated_shape,
    check_runnable,
    input_shape,
    is_batch_dim,
    load_inputs,
    session_inputs,
)

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime as ort

    from ortprep.core.graph import Model

DIM_SIZES = (64, 256, 512, 1024, 2048, 4096)
"""Sizes tried for the symbolic dims once the defaults fail (powers of two cover frame sizes and
FFT lengths; 512 is silero's 16 kHz chunk)."""

MAX_ATTEMPTS = 12
"""Runs of the original the search makes at most (each one runs the whole model)."""

MAX_TOTAL_BYTES = 256 << 20
"""All generated inputs of one attempt together (256 MiB): a larger size is not tried."""

SAMPLE_RATE = 16000
"""What an integer input named like a sample rate (``sr``, ``sample_rate``) gets: the rate speech
models are trained at."""

SMALL = (1, 4)
"""The values of an integer that shapes something (a Reshape shape, Range limits, a Loop's trip
count...): small and positive, so shapes stay small."""

_SAMPLE_RATE_NAMES = re.compile(r"^(sr|fs|sample_?rate|sampling_?rate|samplerate)$", re.I)
_LENGTH_NAMES = re.compile(r"(^|_)(len|lens|length|lengths)$|^(len|length)s?(_|$)", re.I)
_MASK_NAMES = re.compile(r"mask", re.I)

# An integer's values survive these ops unchanged (input 0 to output 0): follow them to the op
# that gives the values a meaning.
_PASS_THROUGH = frozenset(
    {
        "Cast",
        "Identity",
        "Squeeze",
        "Unsqueeze",
        "Reshape",
        "Flatten",
        "Expand",
        "Transpose",
        "Tile",
        "Slice",
        "Concat",
        "Gather",
    }
)
# Input positions whose values are sizes, shapes, counts or positions: small non-negative values.
_SHAPE_LIKE = {
    "Reshape": {1},
    "Expand": {1},
    "Tile": {1},
    "Range": {0, 1, 2},
    "Slice": {1, 2, 3, 4},
    "ConstantOfShape": {0},
    "TopK": {1},
    "OneHot": {1},
    "Loop": {0},
    "Resize": {3},
    "Pad": {1},
    "Split": {1},
    "Trilu": {1},
}


@dataclass(frozen=True)
class Values:
    """How one input's values are made: ``normal`` (mean 0, sd 1), ``uniform`` in [low, high),
    ``integers`` in [low, high), ``constant`` (every element ``low``), ``text`` (strings),
    ``file`` (the user's ``--inputs``)."""

    kind: str
    low: float = 0.0
    high: float = 1.0
    why: str = ""

    @property
    def text(self) -> str:
        return f"{self.base} ({self.why})" if self.why else self.base

    @property
    def base(self) -> str:
        """The values without the reason they were chosen (for the list of failed attempts)."""
        if self.kind == "normal":
            base = "normal(0, 1)"
        elif self.kind == "uniform":
            base = f"uniform [{_num(self.low)}, {_num(self.high)})"
        elif self.kind == "integers":
            base = f"integers [{_num(self.low)}, {_num(self.high)})"
        elif self.kind == "constant":
            base = f"all {_num(self.low)}"
        elif self.kind == "text":
            base = "strings 'a'"
        else:
            base = "from --inputs"
        return base


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


@dataclass(frozen=True)
class InputUsed:
    """One input the model was run on: its name, shape, dtype and how its values were made
    (``values``, for people). A generated input also keeps its ``generator`` and the attempt's
    ``seed``, so :func:`regenerate` makes the same arrays again (e.g. to benchmark a model on the
    inputs it was verified on)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    values: str
    generator: Values | None = field(default=None, compare=False)
    seed: int | None = field(default=None, compare=False)

    @property
    def text(self) -> str:
        return f"{self.name} {list(self.shape)} {self.dtype} {self.values}"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "values": self.values,
        }
        if self.generator is not None:
            g = self.generator
            d["generator"] = {"kind": g.kind, "low": g.low, "high": g.high, "seed": self.seed}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InputUsed:
        """The inverse of :meth:`to_dict` (what a child process receives as JSON)."""
        g = d.get("generator")
        generator = Values(g["kind"], g["low"], g["high"]) if g else None
        seed = int(g["seed"]) if g else None
        return cls(d["name"], tuple(d["shape"]), d["dtype"], d["values"], generator, seed)


def regenerate(inputs: Sequence[InputUsed]) -> dict[str, np.ndarray]:
    """The arrays :func:`search` generated for ``inputs`` (one attempt's, in their order), made
    again: same generators, same seed, same draws. Inputs read from a file cannot be remade."""
    import numpy as np

    seeds = {i.seed for i in inputs}
    if any(i.generator is None for i in inputs) or len(seeds) != 1:
        raise ValueError("only the inputs of one generated attempt can be made again")
    rng = np.random.default_rng(seeds.pop())
    return {
        i.name: _make(InputSpec(i.name, i.dtype, i.shape), i.shape, i.generator, rng)
        for i in inputs
        if i.generator is not None
    }


def save_regenerated(inputs: Sequence[InputUsed], target: Path) -> Path:
    """:func:`regenerate` ``inputs`` into ``target`` (an ``.npz``, one array per input name), for
    a process that takes ``--inputs`` (a benchmark child). ``ValueError`` as :func:`regenerate`."""
    import numpy as np

    arrays: dict[str, Any] = dict(regenerate(inputs))
    np.savez(target, **arrays)
    return target


@dataclass(frozen=True)
class Attempt:
    """One set of inputs the search tried: their description and, when it failed, ORT's words."""

    inputs: tuple[InputUsed, ...]
    error: str | None = None

    @property
    def line(self) -> str:
        used = "; ".join(i.text for i in self.inputs)
        return f"{used}: {self.error}" if self.error else used


@dataclass(frozen=True)
class Found:
    """The search's outcome: the feeds that ran and the original's outputs on them, or none.

    ``failed`` holds one :class:`Attempt` per failed try, in order.
    """

    feeds: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] | None = None
    inputs: tuple[InputUsed, ...] = ()
    failed: tuple[Attempt, ...] = ()

    @property
    def ran(self) -> bool:
        return self.outputs is not None

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {i.name: i.shape for i in self.inputs}


# --------------------------------------------------------------------------- integer hints


@dataclass(frozen=True)
class IntHint:
    """What an integer input is for, as far as the graph or its name tells."""

    kind: str  # "index" | "shape" | "sample_rate" | "length" | "mask"
    high: int = 0  # index: the size of the dim it indexes
    why: str = ""


def integer_hints(model: Model | None, names: Sequence[str]) -> dict[str, IntHint]:
    """For each integer input in ``names``, what its values must be for the model to run.

    The name first (a sample rate, a length, a mask), then the op the values reach through ops
    that keep them (Cast, Unsqueeze, Reshape's data...): Gather indices lie in [0, the gathered
    dim); a Reshape shape, Range limits, Slice bounds, a Loop's trip count are small.
    """
    hints: dict[str, IntHint] = {}
    uses = _uses(model) if model is not None else {}
    for name in names:
        if _SAMPLE_RATE_NAMES.match(name):
            hints[name] = IntHint("sample_rate", why="named like a sample rate")
        elif _LENGTH_NAMES.search(name):
            hints[name] = IntHint("length", why="named like a length")
        else:
            found = _hint_from_graph(name, uses)
            if found is not None:
                hints[name] = found
            elif _MASK_NAMES.search(name):
                hints[name] = IntHint("mask", why="named like a mask")
    return hints


def _uses(model: Model) -> dict[str, list[tuple[Any, Any, int]]]:
    """Every (graph, node, input position) that reads a value, subgraphs included (a subgraph's
    nodes read outer values by name)."""
    uses: dict[str, list[tuple[Any, Any, int]]] = {}
    for graph, node in model.all_nodes():
        for i, name in enumerate(node.inputs):
            if name:
                uses.setdefault(name, []).append((graph, node, i))
    return uses


def _hint_from_graph(name: str, uses: Mapping[str, list[tuple[Any, Any, int]]]) -> IntHint | None:
    seen: set[str] = set()
    todo = [(name, 0)]
    shape_like: IntHint | None = None
    while todo:
        value, depth = todo.pop(0)
        if value in seen or depth > 8:
            continue
        seen.add(value)
        for graph, node, pos in uses.get(value, ()):
            op = node.op_type
            if op in ("Gather", "GatherElements") and pos == 1:
                high = _gathered_dim(graph, node)
                if high:
                    return IntHint("index", high, f"indices into {op} {node.name!r} (dim {high})")
            if op == "EmbedLayerNormalization" and pos in (0, 1):
                high = _dim_of(graph, node.input(2 if pos == 0 else 3), 0)
                if high:
                    return IntHint("index", high, f"ids for {op} {node.name!r} ({high} rows)")
            if pos in _SHAPE_LIKE.get(op, ()) and shape_like is None:
                shape_like = IntHint("shape", why=f"a size for {op} {node.name!r}")
            if op in _PASS_THROUGH and pos == 0 and node.outputs:
                todo.append((node.outputs[0], depth + 1))
    return shape_like


def _gathered_dim(graph: Any, node: Any) -> int | None:
    axis = int(node.attributes.get("axis", 0) or 0)
    return _dim_of(graph, node.input(0), axis)


def _dim_of(graph: Any, value: str, axis: int) -> int | None:
    if not value:
        return None
    init = graph.initializers.get(value)
    dims: Sequence[Any] | None = init.dims if init is not None else None
    if dims is None:
        vt = graph.value_type(value)
        dims = vt.shape if vt is not None else None
    if not dims or not -len(dims) <= axis < len(dims):
        return None
    d = dims[axis]
    return d if isinstance(d, int) and d > 0 else None


# --------------------------------------------------------------------------- attempts


@dataclass(frozen=True)
class _Plan:
    """One attempt: a size for the symbolic dims (None: the defaults), on which inputs, and the
    value family (0: normal floats; 1: [0, 1) floats, small positive integers; 2: [-1, 1))."""

    size: int | None = None
    spread: str = "main"  # "main" | "all"
    family: int = 0
    preferred: bool = False


def _plans(has_dims: bool, has_floats: bool, has_preferred: bool) -> Iterator[_Plan]:
    if has_preferred:
        yield _Plan(preferred=True)
    yield _Plan()
    yield _Plan(family=1)
    if has_floats:
        yield _Plan(family=2)
    if has_dims:
        for size in DIM_SIZES:
            yield _Plan(size, "main")
            yield _Plan(size, "all")


def _shapes(
    specs: Sequence[InputSpec],
    fix_dims: Mapping[str, int],
    plan: _Plan,
    preferred: Mapping[str, int] | None = None,
) -> dict[str, tuple[int, ...]]:
    """The shapes of one attempt. Named dims take one value everywhere (ORT's symbolic dims);
    an unnamed dim of an input other than the main one stays 1 under ``spread="main"`` (a state
    input's batch). The ``preferred`` plan gives the named dims the model's own sizes (the
    user's ``fix_dims`` still win), the others their defaults."""
    if plan.preferred:
        return {s.name: input_shape(s.shape, {**(preferred or {}), **fix_dims}) for s in specs}
    if plan.size is None:
        return {s.name: input_shape(s.shape, fix_dims) for s in specs}
    main = next((s.name for s in specs if _free_dims(s, fix_dims)), None)
    return {
        s.name: input_shape(
            s.shape,
            fix_dims,
            free=plan.size,
            unnamed=plan.size if plan.spread == "all" or s.name == main else BATCH_DEFAULT,
        )
        for s in specs
    }


def _free_dims(spec: InputSpec, fix_dims: Mapping[str, int]) -> list[int]:
    return [
        i
        for i, d in enumerate(spec.shape or ())
        if not (isinstance(d, int) and d >= 0)
        and not (isinstance(d, str) and d in fix_dims)
        and not is_batch_dim(d, i)
    ]


def _values(
    spec: InputSpec,
    shape: tuple[int, ...],
    family: int,
    hint: IntHint | None,
    shapes: Mapping[str, tuple[int, ...]],
) -> Values:
    dtype = spec.dtype or ""
    if dtype.startswith("float"):
        return (Values("normal"), Values("uniform", 0, 1), Values("uniform", -1, 1))[family]
    if dtype == "bool":
        return Values("integers", 0, 2)
    if dtype == "object":
        return Values("text")
    if hint is not None:
        if hint.kind == "index":
            return Values("integers", 0, hint.high, hint.why)
        if hint.kind == "sample_rate":
            return Values("constant", SAMPLE_RATE, why=hint.why)
        if hint.kind == "length":
            return Values("constant", _matching_length(spec.name, shapes), why=hint.why)
        if hint.kind == "mask":
            return Values("constant", 1, why=hint.why)
        if hint.kind == "shape":
            return Values("integers", *SMALL, why=hint.why)
    return Values("integers", 0, 4) if family == 0 else Values("integers", *SMALL)


def _matching_length(name: str, shapes: Mapping[str, tuple[int, ...]]) -> int:
    """A length input gets the longest non-batch dim of the other inputs (the sequence it
    describes), 1 when there is none."""
    dims = [d for k, shape in shapes.items() if k != name for d in shape[1:]]
    return max(dims, default=1)


def _make(
    spec: InputSpec, shape: tuple[int, ...], values: Values, rng: np.random.Generator
) -> np.ndarray:
    import numpy as np

    dtype = spec.dtype or "float32"
    if values.kind == "normal":
        return rng.standard_normal(shape).astype(dtype)
    if values.kind == "uniform":
        return rng.uniform(values.low, values.high, shape).astype(dtype)
    if values.kind == "text":
        return np.full(shape, "a", dtype=object)
    if values.kind == "constant":
        return np.full(shape, values.low).astype(dtype)
    low, high = int(values.low), int(values.high)
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    info = np.iinfo(np.dtype(dtype))
    return rng.integers(max(low, info.min), min(high, int(info.max) + 1), shape).astype(dtype)


def _nbytes(specs: Sequence[InputSpec], shapes: Mapping[str, tuple[int, ...]]) -> int:
    import numpy as np

    total = 0
    for s in specs:
        itemsize = 8 if s.dtype in (None, "object") else np.dtype(s.dtype).itemsize
        total += math.prod(shapes[s.name]) * itemsize
    return total


def search(
    session: ort.InferenceSession,
    model: Model | None,
    fix_dims: Mapping[str, int],
    inputs: Path | None = None,
    where: object = None,
    seed: int = 0,
    preferred: Mapping[str, int] | None = None,
) -> Found:
    """Find inputs ``session`` runs on (see the module docstring) and its outputs on them.

    ``preferred``: sizes the model gives its named dims itself (not guesses), tried first; the
    session must not have them as free-dimension overrides (the defaults follow on the same
    session).

    With ``inputs`` (the user's ``--inputs``) there is one attempt: the user's arrays. ORT
    failing on an attempt is recorded, never raised; any other exception is a bug and raised.
    """
    from ortprep.core.batch import is_ort_error
    from ortprep.core.runtime import describe_ort_error

    check_runnable(session, where)
    specs = session_inputs(session)
    if inputs is not None:
        feeds = load_inputs(inputs, specs, where)
        used = tuple(
            InputUsed(k, tuple(v.shape), str(v.dtype), f"from {inputs.name}")
            for k, v in feeds.items()
        )
        try:
            return Found(feeds, _run(session, feeds), used)
        except Exception as exc:
            if not is_ort_error(exc):
                raise
            return Found(failed=(Attempt(used, root_cause(describe_ort_error(exc))),))
    for spec in specs:  # the default shapes are refused as before (exit 2) when too large
        if spec.dtype is None:
            raise UsageError(
                f"input {spec.name!r} has type {spec.type_text}, which ortprep cannot generate",
                "pass real inputs with --inputs FILE.npz",
            )
        check_generated_shape(spec, input_shape(spec.shape, fix_dims), where)
    hints = integer_hints(model, [s.name for s in specs if _is_int(s)])
    has_dims = any(_free_dims(s, fix_dims) or _unnamed(s) for s in specs)
    has_floats = any((s.dtype or "").startswith("float") for s in specs)
    own = {k: v for k, v in (preferred or {}).items() if k not in fix_dims}
    failed: list[Attempt] = []
    tried: set[tuple[InputUsed, ...]] = set()
    for plan in _plans(has_dims, has_floats, bool(own)):
        if len(failed) >= MAX_ATTEMPTS:
            break
        shapes = _shapes(specs, fix_dims, plan, own)
        sized = plan.size is not None or plan.preferred
        if sized and _nbytes(specs, shapes) > MAX_TOTAL_BYTES:
            continue
        chosen = {
            s.name: _values(s, shapes[s.name], plan.family, hints.get(s.name), shapes)
            for s in specs
        }
        attempt_seed = seed + len(tried)  # a retry draws other values
        used = tuple(
            InputUsed(
                s.name,
                shapes[s.name],
                s.dtype or "float32",
                chosen[s.name].text,
                chosen[s.name],
                attempt_seed,
            )
            for s in specs
        )
        if used in tried:
            continue
        tried.add(used)
        feeds = regenerate(used)
        try:
            return Found(feeds, _run(session, feeds), used, tuple(failed))
        except Exception as exc:
            if not is_ort_error(exc):
                raise
            briefly = tuple(InputUsed(u.name, u.shape, u.dtype, chosen[u.name].base) for u in used)
            failed.append(Attempt(briefly, root_cause(describe_ort_error(exc))))
    return Found(failed=tuple(failed))


_NODE_FAILED = re.compile(r"running (\S+) node\. Name:'(.*?)' Status Message: ")


def root_cause(said: str) -> str:
    """ORT's error, down to the innermost node that failed: "Pad node 'stft/Pad': Pad reflect:
    post-pad (64) exceeds maximum allowed (31)" (a failure inside an If names every enclosing
    node first)."""
    matches = list(_NODE_FAILED.finditer(said))
    if not matches:
        return _without_source_location(said)
    last = matches[-1]
    node = f"{last.group(1)} node {last.group(2)!r}" if last.group(2) else f"{last.group(1)} node"
    return f"{node}: {_without_source_location(said[last.end() :])}"


_SOURCE_LOCATION = re.compile(r"^/\S+:\d+ .*? was false\. ")


def _without_source_location(text: str) -> str:
    """ORT's checks start with the C++ file, line, function and condition: not for people."""
    return _SOURCE_LOCATION.sub("", text)


def _is_int(spec: InputSpec) -> bool:
    return spec.dtype is not None and spec.dtype[:3] in ("int", "uin")


def _unnamed(spec: InputSpec) -> bool:
    return any(not isinstance(d, int) and not d for d in (spec.shape or ())[1:])


def _run(session: ort.InferenceSession, feeds: Mapping[str, Any]) -> dict[str, Any]:
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, dict(feeds))
    return dict(zip(names, values, strict=True))
