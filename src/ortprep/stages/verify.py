"""``verify``: do two models (ONNX or ORT format) give the same answers on the same inputs?

Like with like: the reference for an artifact is the original model run by ORT in the
configuration the artifact stands for (:class:`RefConfig`): a Fixed ``.ort`` or an optimized
``.onnx`` against the original at the same level for the same target platform, a Runtime ``.ort``
against the original at the level its loading session runs (level 1 without replay: an ``.ort`` is
not optimized again at load; extended with replay). So a quantized model is compared with its own
integer kernels. The float comparison (the original with optimizations disabled) is a separate
figure (:class:`FloatFigure`): informative for a quantized model, binding for a float model. Each
reference is computed once per model and configuration (:class:`Reference`).

Tolerances (the contract): float outputs ``|a - b| <= atol + rtol * |a|`` with ``rtol 1e-3,
atol 1e-4``; integer and quantized outputs may differ by at most 1; NaN and Inf must match.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ortprep.core.errors import BadModelError, UsageError, ort_failure_hint
from ortprep.core.input_search import Found, InputUsed
from ortprep.core.runtime import (
    SessionRecipe,
    create_session,
    describe_ort_error,
    lean_source,
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
class RefConfig:
    """The session the original runs in to give the reference for one artifact: ORT's level and
    the target platform (which decides NCHWc and ``session.qdqisint8allowed`` as
    :class:`~ortprep.core.runtime.SessionRecipe` sets them). ``disable`` is the float reference.
    """

    level: str = "disable"
    target_platform: str = "arm"

    @property
    def label(self) -> str:
        if self.level == "disable":
            return "original, optimizations disabled (float reference)"
        text = f"original at level {self.level} for {self.target_platform}"
        if self.level in ("layout", "all"):
            if self.target_platform == "arm":
                text += " (NCHWc excluded, as in the artifact)"
            elif not _host_is_x86():
                text += " (NCHWc does not exist on this host: run without it)"
        return text

    def recipe(
        self, fix_dims: Mapping[str, int], custom_op_library: Path | None = None
    ) -> SessionRecipe:
        return SessionRecipe(
            level=self.level,
            target_platform=self.target_platform,
            free_dims=fix_dims,
            custom_op_library=custom_op_library,
        )


FLOAT_REFERENCE = RefConfig("disable")


def _host_is_x86() -> bool:
    import platform

    return platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


@dataclass(frozen=True)
class FloatFigure:
    """The artifact's outputs against the original run with optimizations disabled.

    For a quantized model this figure is informative (``informative``): optimized, ORT runs its
    integer kernels where the unoptimized graph computes DequantizeLinear -> float op ->
    QuantizeLinear, and the two round differently. For a float model it must pass too.
    """

    max_abs: float
    max_rel: float
    mismatches: int
    ok: bool
    informative: bool

    @property
    def text(self) -> str:
        head = (
            "int8 kernels vs float reference"
            if self.informative
            else "vs float reference (optimizations disabled)"
        )
        figures = f"max abs {self.max_abs:.3g}, max rel {self.max_rel:.3g}"
        if self.informative:
            return f"{head}: {figures} (informative: a quantized model is judged by its kernels)"
        if self.ok:
            return f"{head}: {figures}, within tolerance"
        return f"{head}: {figures}, {self.mismatches} value(s) out of tolerance"

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "mismatches": self.mismatches,
            "ok": self.ok,
            "informative": self.informative,
            "text": self.text,
        }


@dataclass(frozen=True)
class VerifyResult:
    """One artifact loaded in one session and compared with the original.

    ``reference_config`` says which session of the original gave the reference (like with like:
    see :class:`RefConfig`); ``float_reference`` the separate float figure; ``inputs`` what both
    ran on (name, shape, dtype, values) under ``rtol``/``atol``; ``input_attempts`` the inputs the
    original failed on first, one line each. ``not_verified`` says why nothing was compared (the
    original fails on every input tried); such a result has ``passed`` false.
    """

    reference: str
    candidate: str
    passed: bool
    outputs: tuple[OutputComparison, ...]
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    load_error: str | None = None
    session: str = ""
    inputs: tuple[InputUsed, ...] = ()
    rtol: float = RTOL
    atol: float = ATOL
    reference_config: str = ""
    float_reference: FloatFigure | None = None
    input_attempts: tuple[str, ...] = ()
    not_verified: str | None = None
    unverified_because: str = ""
    """Of ``not_verified``, what kept the comparison from happening, without ORT's words or the
    hint ("the original model fails on synthesized inputs")."""
    ort_error: str = ""
    """Of ``not_verified``, ORT's one line on the original's failure (the last attempt's)."""

    @property
    def ok(self) -> bool:
        return self.passed

    @property
    def why_failed(self) -> str:
        """One line: why this result did not pass ("" when it passed)."""
        if self.passed:
            return ""
        if self.not_verified:
            return self.not_verified
        if self.load_error:
            return f"could not be loaded: {self.load_error}"
        bad = [o for o in self.outputs if not o.passed]
        if bad:
            return "outputs differ from the reference: " + ", ".join(
                f"{o.name} ({o.mismatches} mismatches, max abs {o.max_abs:.3g})" for o in bad
            )
        if self.float_reference is not None and not self.float_reference.ok:
            return self.float_reference.text
        return "outputs differ"

    @property
    def inputs_text(self) -> str:
        """The inputs and tolerances, one line, for people."""
        used = "; ".join(i.text for i in self.inputs) or "none"
        return f"inputs: {used}; rtol {self.rtol:g}, atol {self.atol:g}"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "reference": self.reference,
            "candidate": self.candidate,
            "passed": self.passed,
            "outputs": [o.to_dict() for o in self.outputs],
            "input_shapes": {k: list(v) for k, v in self.input_shapes.items()},
            "inputs": [i.to_dict() for i in self.inputs],
            "rtol": self.rtol,
            "atol": self.atol,
            "reference_config": self.reference_config,
            "float_reference": self.float_reference.to_dict() if self.float_reference else None,
            "input_attempts": list(self.input_attempts),
        }
        if self.session:
            d["session"] = self.session
        if self.load_error:
            d["load_error"] = self.load_error
        if self.not_verified:
            d["not_verified"] = self.not_verified
            d["unverified_because"] = self.unverified_because
            d["ort_error"] = self.ort_error
        return d


_QUANTIZED_OPS = frozenset(
    {
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "QLinearConv",
        "QLinearMatMul",
        "MatMulInteger",
        "ConvInteger",
        "QLinearAdd",
        "QLinearMul",
        "QGemm",
        "DynamicQuantizeMatMul",
        "MatMulIntegerToFloat",
        "QAttention",
        "DynamicQuantizeLSTM",
        "QLinearSigmoid",
        "QLinearLeakyRelu",
        "QLinearGlobalAveragePool",
        "QLinearConcat",
        "QLinearAveragePool",
        "QLinearSoftmax",
        "QLinearWhere",
        "MatMulNBits",
    }
)


def is_quantized(model: Any) -> bool:
    """Whether the model computes with quantized values (QDQ pairs, QLinear*, integer MatMul):
    then ORT's optimized kernels and the unoptimized float graph differ by rounding."""
    return any(node.op_type in _QUANTIZED_OPS for _, node in model.all_nodes())


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


NOT_RUN_HINT = "give --inputs or --fix-dim"


def load_and_run(path: Path, recipe: SessionRecipe, feeds: Mapping[str, Any]) -> dict[str, Any]:
    """Outputs of ``path`` loaded with ``recipe`` on ``feeds``; the session ends here."""
    return run_session(create_session(path, recipe), feeds)


@dataclass
class Reference:
    """The original's side of verification for one model: the inputs it runs on (found once,
    :mod:`ortprep.core.input_search`) and its outputs in each configuration an artifact stands
    for, each computed once, on first use, in a session dropped right after (sessions hold the
    model's weights)."""

    path: Path
    found: Found
    steps: dict[str, float]
    quantized: bool
    fix_dims: Mapping[str, int] = field(default_factory=dict)
    custom_op_library: Path | None = None
    not_run: str = ""
    not_run_because: str = ""
    _outputs: dict[RefConfig, dict[str, Any] | str] = field(default_factory=dict, repr=False)

    @property
    def feeds(self) -> dict[str, Any]:
        return self.found.feeds

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return self.found.shapes

    @property
    def expected(self) -> dict[str, Any]:
        """The float reference's outputs (empty when the original ran on nothing)."""
        return self.found.outputs or {}

    def outputs(self, config: RefConfig) -> dict[str, Any] | str:
        """The original's outputs in ``config``, or ORT's words when it failed there."""
        if config == FLOAT_REFERENCE:
            return self.expected
        if config not in self._outputs:
            from ortprep.core.batch import is_ort_error

            recipe = config.recipe(self.fix_dims, self.custom_op_library)
            try:  # the session (and its weights) is gone when this returns
                # the original, its weights mapped from its file (core/runtime.py lean_source)
                source, recipe = lean_source(self.path, recipe)
                self._outputs[config] = run_session(create_session(source, recipe), self.feeds)
            except Exception as exc:
                if not is_ort_error(exc):
                    raise
                self._outputs[config] = describe_ort_error(exc)
        return self._outputs[config]

    def check(
        self,
        candidate: Path,
        recipe: SessionRecipe,
        label: str = "",
        rtol: float = RTOL,
        atol: float = ATOL,
        config: RefConfig = FLOAT_REFERENCE,
    ) -> VerifyResult:
        """Load ``candidate`` with ``recipe`` and compare its outputs with the original's in
        ``config`` (like with like), and with the float reference as a separate figure."""
        base = VerifyResult(
            str(self.path),
            str(candidate),
            False,
            (),
            self.shapes,
            session=label,
            inputs=self.found.inputs,
            rtol=rtol,
            atol=atol,
            reference_config=config.label,
            input_attempts=tuple(a.line for a in self.found.failed),
        )
        if not self.found.ran:
            error = self.found.failed[-1].error if self.found.failed else None
            return replace(
                base,
                not_verified=self.not_run,
                unverified_because=self.not_run_because,
                ort_error=error or "",
            )
        try:
            got = load_and_run(candidate, recipe, self.feeds)
        except Exception as exc:  # noqa: BLE001 -- any load/run failure is the verdict
            return replace(base, load_error=describe_ort_error(exc))
        expected = self.outputs(config)
        if isinstance(expected, str):
            because = f"the {config.label} fails on these inputs"
            return replace(
                base,
                not_verified=f"not verified: {because} ({expected})",
                unverified_because=because,
                ort_error=expected,
            )
        outputs = compare_outputs(expected, got, rtol, atol, self.steps)
        figure = None
        if config != FLOAT_REFERENCE:
            floats = compare_outputs(self.expected, got, rtol, atol, self.steps)
            figure = FloatFigure(
                max((o.max_abs for o in floats), default=0.0),
                max((o.max_rel for o in floats), default=0.0),
                sum(o.mismatches for o in floats),
                all(o.passed for o in floats),
                self.quantized,
            )
        passed = all(o.passed for o in outputs) and (
            figure is None or figure.ok or figure.informative
        )
        return replace(base, passed=passed, outputs=outputs, float_reference=figure)


def make_reference(
    path: Path,
    source: Model,
    inputs: Path | None,
    fix_dims: Mapping[str, int],
    hint: str = NOT_RUN_HINT,
    custom_op_library: Path | None = None,
) -> Reference:
    """Find inputs the original ``path`` (opened as ``source``) runs on, unoptimized, and keep
    its outputs on them (the float reference). The first inputs tried have the sizes the model
    gives itself (stages/fix_values.py ``own_sizes``: metadata, sibling dims, never a guess).
    When it runs on none, the reference says so and every check against it is "not verified"
    (with ``hint``); ORT refusing to load the model is a :class:`BadModelError`."""
    from ortprep.core.input_search import search
    from ortprep.stages.fix_values import own_sizes

    # the model's own sizes first (a 320×320 detector verifies at 320×320), then the defaults
    preferred = own_sizes(path, source.graph.runtime_inputs) if inputs is None else {}
    session = float_session(path, fix_dims, custom_op_library)
    found = search(session, source, fix_dims, inputs, path, preferred=preferred)
    del session
    if inputs is not None:
        because = f"the original model fails on the inputs of {inputs.name}"
    else:
        because = "the original model fails on synthesized inputs"
    not_run = f"not verified: {because}"
    if found.failed:
        not_run += f" ({found.failed[-1].error})"
    return Reference(
        path,
        found,
        quantization_steps(source),
        is_quantized(source),
        fix_dims,
        custom_op_library,
        f"{not_run}; {hint}",
        because,
    )


def float_session(
    path: Path, fix_dims: Mapping[str, int], custom_op_library: Path | None = None
) -> ort.InferenceSession:
    """The original model with graph optimizations disabled: the float reference."""
    try:
        return create_session(
            *lean_source(path, FLOAT_REFERENCE.recipe(fix_dims, custom_op_library))
        )
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


def candidate_config(candidate: Any, replay: bool) -> RefConfig:
    """The configuration a candidate loaded by ``verify`` stands for (like with like).

    An ``.ort`` file is not optimized again at load (ort-internals §2.6): one with saved runtime
    optimization records (Runtime style) runs its level-1 graph, or the replayed fusions with
    ``--replay-runtime-optimizations`` (level extended); another ``.ort`` is taken as a Fixed file
    of ORT's default converter level, all. An ``.onnx`` is optimized at load at level all (extended
    with replay). NCHWc ops in the candidate mean it was made for amd64.
    """
    nchwc = any(n.domain == "com.microsoft.nchwc" for _, n in candidate.all_nodes())
    platform = "amd64" if nchwc else "arm"
    ort_info = candidate.ort
    if ort_info is not None and any(ort_info.runtime_optimizations.values()):
        return RefConfig("extended" if replay else "basic", platform)
    return RefConfig("extended" if replay and ort_info is None else "all", platform)


def run(reference: Path, candidate: Path, options: VerifyOptions) -> VerifyResult:
    """Compare ``candidate`` against ``reference`` on the same inputs, like with like."""
    from ortprep.core.inputs import open_model

    ref_model = open_model(reference)  # clean exit-2 errors for bad files before ORT sees them
    cand_model = open_model(candidate)
    ref = make_reference(reference, ref_model, options.inputs, options.fix_dims)
    config = candidate_config(cand_model, options.replay_runtime_optimizations)
    recipe = SessionRecipe(
        level="extended" if options.replay_runtime_optimizations else "all",
        replay_saved=options.replay_runtime_optimizations,
        free_dims=options.fix_dims,
    )
    return ref.check(candidate, recipe, rtol=options.rtol, atol=options.atol, config=config)
