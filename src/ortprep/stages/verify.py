"""``verify``: do two models (ONNX or ORT format) give the same answers on the same inputs?

Tolerances (the contract): float outputs ``|a - b| <= atol + rtol * |a|`` with ``rtol 1e-3,
atol 1e-4``; integer and quantized outputs may differ by at most 1; NaN and Inf must match.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ortprep.core.errors import BadModelError, UsageError, ort_failure_hint
from ortprep.core.runtime import (
    SessionRecipe,
    create_session,
    describe_ort_error,
)

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime as ort

    from ortprep.core.graph import Model

RTOL = 1e-3
ATOL = 1e-4
INT_TOLERANCE = 1


@dataclass(frozen=True)
class OutputComparison:
    name: str
    max_abs: float
    max_rel: float
    mismatches: int
    passed: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "mismatches": self.mismatches,
            "passed": self.passed,
        }
        if self.note:
            d["note"] = self.note
        return d


@dataclass(frozen=True)
class VerifyOptions:
    inputs: Path | None = None
    fix_dims: Mapping[str, int] = field(default_factory=dict)
    rtol: float = RTOL
    atol: float = ATOL
    replay_runtime_optimizations: bool = False

    def __post_init__(self) -> None:
        check_tolerances(self.rtol, self.atol)


def check_tolerances(rtol: float, atol: float) -> None:
    """Tolerances are finite numbers, 0 or more: a NaN tolerance makes every comparison pass
    (``diff > nan`` is false), a negative one makes equal outputs fail."""
    import math

    for option, value in (("--rtol", rtol), ("--atol", atol)):
        if not math.isfinite(value) or value < 0:
            raise UsageError(
                f"{option} {value}: use a finite number, 0 or more",
                f"the defaults are --rtol {RTOL} --atol {ATOL}",
            )


@dataclass(frozen=True)
class VerifyResult:
    reference: str
    candidate: str
    passed: bool
    outputs: tuple[OutputComparison, ...]
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    load_error: str | None = None
    session: str = ""

    @property
    def ok(self) -> bool:
        return self.passed

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "reference": self.reference,
            "candidate": self.candidate,
            "passed": self.passed,
            "outputs": [o.to_dict() for o in self.outputs],
            "input_shapes": {k: list(v) for k, v in self.input_shapes.items()},
        }
        if self.session:
            d["session"] = self.session
        if self.load_error:
            d["load_error"] = self.load_error
        return d


def quantization_steps(model: Any) -> dict[str, float]:
    """Float outputs that are dequantized values, with their quantization step (the scale).

    Such an output is a quantized value in disguise: fused QLinear kernels may round one step
    differently from the unfused DequantizeLinear/QuantizeLinear chain, and the contract allows
    quantized values to differ by 1 (here: one step).
    """
    import numpy as np

    steps: dict[str, float] = {}
    graph = model.graph
    for out in graph.outputs:
        node = graph.producers.get(out.name)
        if node is None or node.op_type != "DequantizeLinear":
            continue
        scale = graph.initializers.get(node.input(1))
        if scale is None:
            continue
        try:
            steps[out.name] = float(np.max(np.abs(scale.numpy())))
        except Exception:  # noqa: BLE001 -- unreadable scale: keep the plain float tolerance
            continue
    return steps


def compare_arrays(
    name: str,
    ref: np.ndarray,
    got: np.ndarray,
    rtol: float = RTOL,
    atol: float = ATOL,
    step: float = 0.0,
) -> OutputComparison:
    """Compare one output under the contract's tolerances (``step``: a dequantized output's
    quantization step, one of which is allowed)."""
    import numpy as np

    ref = np.asarray(ref)
    got = np.asarray(got)
    if ref.shape != got.shape:
        return OutputComparison(
            name,
            float("inf"),
            float("inf"),
            max(ref.size, got.size),
            False,
            f"shape {list(got.shape)} != reference {list(ref.shape)}",
        )
    if ref.dtype != got.dtype:
        return OutputComparison(
            name,
            float("inf"),
            float("inf"),
            ref.size,
            False,
            f"type {got.dtype} != reference {ref.dtype}",
        )
    if ref.size == 0:
        return OutputComparison(name, 0.0, 0.0, 0, True)
    if ref.dtype.kind in "OSU":
        bad = int(np.count_nonzero(ref != got))
        return OutputComparison(name, 0.0 if not bad else float("inf"), 0.0, bad, bad == 0)
    if ref.dtype.kind == "b":
        bad = int(np.count_nonzero(ref != got))
        return OutputComparison(name, float(bad > 0), 0.0, bad, bad == 0)
    if ref.dtype.kind in "iu":
        diff = np.abs(ref.astype(np.int64) - got.astype(np.int64))
        bad = int(np.count_nonzero(diff > INT_TOLERANCE))
        max_abs = float(diff.max())
        rel = diff / np.maximum(np.abs(ref.astype(np.float64)), 1.0)
        return OutputComparison(name, max_abs, float(rel.max()), bad, bad == 0)
    r = ref.astype(np.float64)
    g = got.astype(np.float64)
    special = ~np.isfinite(r) | ~np.isfinite(g)
    special_bad = special & ~((np.isnan(r) & np.isnan(g)) | (r == g))
    finite = ~special
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite pairs are judged above
        diff = np.where(finite, np.abs(r - g), 0.0)
    allowed = atol + rtol * np.abs(np.where(finite, r, 0.0)) + step * (1 + 1e-6)
    bad = int(np.count_nonzero(diff > allowed) + np.count_nonzero(special_bad))
    rel = diff / np.maximum(np.abs(np.where(finite, r, 0.0)), 1e-12)
    return OutputComparison(name, float(diff.max()), float(rel.max()), bad, bad == 0)


def run_session(session: ort.InferenceSession, feeds: Mapping[str, Any]) -> dict[str, Any]:
    names = [o.name for o in session.get_outputs()]
    wanted = {i.name for i in session.get_inputs()}
    values = session.run(names, {k: v for k, v in feeds.items() if k in wanted})
    return dict(zip(names, values, strict=True))


@dataclass(frozen=True)
class Reference:
    """The original's outputs on the verification inputs, computed once per model and compared
    with every file made from it."""

    path: Path
    expected: dict[str, Any]
    feeds: dict[str, Any]
    shapes: dict[str, tuple[int, ...]]
    steps: dict[str, float]

    def check(
        self,
        candidate: Path,
        recipe: SessionRecipe,
        label: str = "",
        rtol: float = RTOL,
        atol: float = ATOL,
    ) -> VerifyResult:
        """Load ``candidate`` with ``recipe`` and compare its outputs with the original's."""
        return check_candidate(
            str(self.path),
            candidate,
            self.expected,
            self.feeds,
            recipe,
            self.shapes,
            label,
            rtol,
            atol,
            self.steps,
        )


def make_reference(
    path: Path,
    source: Model,
    inputs: Path | None,
    fix_dims: Mapping[str, int],
    hint: str = "pass inputs that fit the model with --inputs",
) -> Reference:
    """Run the original ``path`` (opened as ``source``) once, unoptimized, on ``--inputs`` or
    seeded random feeds. ORT failing on it is a :class:`BadModelError` with ``hint``."""
    session = reference_session(path, fix_dims)
    feeds, shapes = make_feeds(session, inputs, fix_dims, path)
    expected = reference_outputs(session, feeds, path, hint)
    return Reference(path, expected, feeds, shapes, quantization_steps(source))


def reference_outputs(
    session: ort.InferenceSession,
    feeds: Mapping[str, Any],
    path: Path,
    hint: str = "pass inputs that fit the model with --inputs",
) -> dict[str, Any]:
    """The original's outputs on ``feeds``: ORT refusing to run it is the model's (or the
    inputs') problem, a :class:`BadModelError`, never an internal error."""
    from ortprep.core.batch import is_ort_error

    try:
        return run_session(session, feeds)
    except Exception as exc:
        if not is_ort_error(exc):
            raise
        raise BadModelError(
            f"{path}: ONNX Runtime could not run the model on the verification inputs "
            f"({describe_ort_error(exc)})",
            hint,
        ) from None


def reference_session(path: Path, fix_dims: Mapping[str, int]) -> ort.InferenceSession:
    """The original model as ground truth: ORT with graph optimizations disabled."""
    try:
        return create_session(path, SessionRecipe(level="disable", free_dims=fix_dims))
    except BadModelError:
        raise
    except Exception as exc:  # noqa: BLE001 -- ORT raises plain exceptions for bad models
        raise BadModelError(
            f"{path}: ONNX Runtime cannot load the model ({describe_ort_error(exc)})",
            ort_failure_hint(describe_ort_error(exc)),
        ) from None


def compare_outputs(
    ref: Mapping[str, Any],
    got: Mapping[str, Any],
    rtol: float = RTOL,
    atol: float = ATOL,
    steps: Mapping[str, float] | None = None,
) -> tuple[OutputComparison, ...]:
    steps = steps or {}
    results = []
    for name, value in ref.items():
        if name not in got:
            results.append(
                OutputComparison(
                    name, float("inf"), float("inf"), 0, False, "output missing from the candidate"
                )
            )
        else:
            results.append(compare_arrays(name, value, got[name], rtol, atol, steps.get(name, 0.0)))
    return tuple(results)


def check_candidate(
    reference: str,
    candidate: Path,
    expected: Mapping[str, Any],
    feeds: Mapping[str, Any],
    recipe: SessionRecipe,
    input_shapes: Mapping[str, tuple[int, ...]],
    label: str = "",
    rtol: float = RTOL,
    atol: float = ATOL,
    steps: Mapping[str, float] | None = None,
) -> VerifyResult:
    """Load ``candidate`` with ``recipe``, run it on ``feeds`` and compare with ``expected``.

    A candidate ORT cannot load is a failed verification (never an exception).
    """
    try:
        session = create_session(candidate, recipe)
        got = run_session(session, feeds)
    except Exception as exc:  # noqa: BLE001 -- any load/run failure is the verdict
        return VerifyResult(
            reference,
            str(candidate),
            False,
            (),
            input_shapes,
            load_error=describe_ort_error(exc),
            session=label,
        )
    outputs = compare_outputs(expected, got, rtol, atol, steps)
    return VerifyResult(
        reference,
        str(candidate),
        all(o.passed for o in outputs),
        outputs,
        input_shapes,
        session=label,
    )


def make_feeds(
    session: ort.InferenceSession,
    inputs: Path | None,
    fix_dims: Mapping[str, int],
    model: object = None,
) -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    """Feeds for a model: from ``--inputs`` when given, else seeded random ones (both checked
    against the model's inputs first: :mod:`ortprep.core.feeds`)."""
    from ortprep.core import feeds

    return feeds.make_feeds(session, inputs, fix_dims, model)


def run(reference: Path, candidate: Path, options: VerifyOptions) -> VerifyResult:
    """Compare ``candidate`` against ``reference`` on the same inputs."""
    from ortprep.core.inputs import open_model

    ref_model = open_model(reference)  # clean exit-2 errors for bad files before ORT sees them
    open_model(candidate)
    ref = make_reference(reference, ref_model, options.inputs, options.fix_dims)
    recipe = SessionRecipe(
        level="extended" if options.replay_runtime_optimizations else "all",
        replay_saved=options.replay_runtime_optimizations,
        free_dims=options.fix_dims,
    )
    return ref.check(candidate, recipe, rtol=options.rtol, atol=options.atol)
