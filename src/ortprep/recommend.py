"""Which ``.ort`` file to ship for a model, and why, in plain words.

Runtime style when an EP that claims nodes at load time (NNAPI, CoreML) takes enough of the
model, or when the Fixed style's fusions hide nodes from the best EP: the Runtime style keeps the
original ops for the EP, and its saved fusions are replayed for the nodes left to the CPU (with
``session.enable_saved_runtime_optimizations=1``, trusted models only). Fixed style otherwise:
everything baked in, no session option. A file that did not reproduce the original's outputs is
never recommended; when dynamic input shapes keep an accelerator away, the advice says what fixing
them would give (field notes 7, 8, 12; ARCHITECTURE.md "prepare").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ortprep.manifest import HOST_TWIN, Checked, Evidence, FileRecord, Recommendation

if TYPE_CHECKING:
    from ortprep.stages.check import EpReport
    from ortprep.stages.verify import VerifyResult

__all__ = ["COMPILING", "GOOD", "Recommendation", "recommend"]

COMPILING = frozenset({"nnapi", "coreml-mlprogram", "coreml-neuralnetwork"})
"""EPs that compile the nodes they take at load time, and so need the original ops."""
GOOD = ("yes", "maybe")


def _ep_name(ep: str) -> str:
    from ortprep.eps.registry import ep_spec

    return ep_spec(ep).display_name


def _ratio(r: EpReport) -> float:
    o = r.outcome
    return o.nodes_taken / o.nodes_total if o.nodes_total else 0.0


def _share(r: EpReport) -> str:
    o = r.outcome
    return f"{o.nodes_taken} of {o.nodes_total} nodes ({100.0 * _ratio(r):.0f}%)"


def _eps_of(c: Checked | None) -> dict[str, EpReport]:
    return {} if c is None else {e.ep: e for e in c.result.eps}


def _ms(value: Any) -> str:
    if value is None:
        return "?"
    v = float(value)
    return f"{v:.1f} ms" if v >= 10 else f"{v:.2f} ms" if v >= 0.1 else f"{v:.3f} ms"


@dataclass
class _Why:
    """Sentences collected while deciding (mutable scratch; the result is a Recommendation)."""

    why: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    requirements: list[str] = field(default_factory=list)
    session: dict[str, str] = field(default_factory=dict)


def recommend(m: Evidence, eps: Sequence[str]) -> Recommendation:
    """Which ``.ort`` to ship, from the checks, the verification and the benchmark.

    Runtime style when an EP that claims nodes at load time (NNAPI, CoreML) takes enough of the
    model, or when the Fixed style's fusions hide nodes from the best EP: the Runtime style keeps
    the original ops for the EP and replays the CPU fusions for what is left. Fixed style
    otherwise: everything is baked in, no session option, nothing to do at load. A file that did
    not reproduce the original's outputs is never recommended.
    """
    rt, fx = _eps_of(m.check("runtime")), _eps_of(m.check("fixed"))
    files = {"runtime": m.file("ort", "runtime"), "fixed": m.file("ort", "fixed")}
    w = _Why()

    useful = [ep for ep in eps if ep in rt and rt[ep].outcome.verdict in GOOD]
    best = max(useful, key=lambda ep: (ep in COMPILING, rt[ep].outcome.nodes_taken), default=None)
    # Fixed-style fusions merge nodes, so compare the shares the EP takes, not node counts
    hidden = best is not None and best in fx and _ratio(fx[best]) < _ratio(rt[best]) - 0.01
    style = "runtime" if best is not None and (best in COMPILING or hidden) else "fixed"

    # never recommend a file that did not reproduce the original's outputs
    for f in files.values():
        if f is not None and f.artifact is not None:
            w.warnings.extend(
                f"{f.name} ({v.session}): {_why_failed(v)}"
                for v in f.artifact.verification
                if not v.passed
            )
    chosen = files[style]
    if chosen is None or chosen.verified is False:
        other_style = "fixed" if style == "runtime" else "runtime"
        other = files[other_style]
        if other is None or other.verified is False:
            unverified = _not_verified(files.values())
            if unverified is not None:
                return _made_not_verified(m, eps, unverified, w)
            _shape_advice(m, eps, "fixed", w)
            return Recommendation(
                ship=None,
                style=None,
                headline="Do not ship an .ort file yet: neither file reproduced the original's "
                "outputs",
                why=("Both .ort files were loaded back and compared with the original .onnx.",),
                eps=(),
                warnings=tuple(w.warnings),
                next_steps=(
                    "Look at the verification details; meanwhile the full ONNX Runtime package "
                    "runs the original .onnx.",
                    *w.next_steps,
                ),
                notes=tuple(w.notes),
            )
        if chosen is not None:
            w.warnings.insert(
                0,
                f"{chosen.name} did not reproduce the original's outputs, so {other.name} is "
                "recommended instead.",
            )
        chosen, style = other, other_style

    if style == "runtime":
        _why_runtime(m, best or (useful[0] if useful else None), hidden, useful, w)
    else:
        _why_fixed(m, eps, useful, w)
    _shape_advice(m, eps, style, w)
    if chosen.verified is None:
        w.warnings.append(f"{chosen.name} was not verified against the original.")
    on_file = rt if style == "runtime" else fx
    ship_eps = tuple(ep for ep in eps if ep in on_file and on_file[ep].outcome.verdict in GOOD)
    if style == "runtime" and best is not None:
        headline = f"Ship {chosen.name} (Runtime style) with {_ep_name(best)}"
    elif style == "runtime":
        headline = f"Ship {chosen.name} (Runtime style) on the CPU EP"
    else:
        accel = [_ep_name(ep) for ep in ship_eps if ep in COMPILING]
        on = f"with {accel[0]}" if accel else "on the CPU EP"
        on += " and XNNPACK" if accel and "xnnpack" in ship_eps else ""
        on += " with XNNPACK" if not accel and "xnnpack" in ship_eps else ""
        headline = f"Ship {chosen.name} (Fixed style) {on}"
    w.notes.append(
        "The ORT format is for reduced (minimal) builds. If binary size does not matter, the full "
        "ONNX Runtime package runs the original .onnx directly and optimizes it at load."
    )
    return Recommendation(
        ship=chosen.path,
        style=style,
        headline=headline,
        why=tuple(w.why),
        eps=ship_eps,
        session_options=w.session,
        requirements=tuple(w.requirements),
        warnings=tuple(w.warnings),
        next_steps=tuple(w.next_steps),
        notes=tuple(w.notes),
    )


def _why_runtime(
    m: Evidence, best: str | None, hidden: bool, useful: Sequence[str], w: _Why
) -> None:
    rt, fx = _eps_of(m.check("runtime")), _eps_of(m.check("fixed"))
    runtime = m.file("ort", "runtime")
    if best is not None:
        r = rt[best]
        name = _ep_name(best)
        w.why.append(
            f"{name} would take {_share(r)} of the Runtime-style file in "
            f"{len(r.outcome.partitions)} partition(s): verdict {r.outcome.verdict}."
        )
        w.why.append(
            f"The Runtime style keeps the original ONNX ops, so {name} can claim them when the "
            "model loads; the fusions for the CPU are saved as records and replayed only on the "
            "nodes left to the CPU."
        )
        if hidden:
            fused = _contrib(m.file("ort", "fixed"))
            w.why.append(
                f"In the Fixed-style file {name} would take only {_share(fx[best])}: its "
                f"extended fusions{f' ({fused})' if fused else ''} replaced ops {name} can run."
            )
        w.requirements.append(
            f"register the {name} EP in the app; a reduced build must be an extended minimal "
            "build (the EP claims nodes when the model loads)"
        )
        others = [_ep_name(e) for e in useful if e != best]
        if others:
            w.notes.append(f"Also worth measuring on the device: {', '.join(others)}.")
        if best == "nnapi":
            w.notes.append(
                "Google deprecated NNAPI from Android 15: measure it against the CPU EP and "
                "XNNPACK on the devices you target."
            )
    records = dict(runtime.artifact.records) if runtime and runtime.artifact else {}
    if records:
        parts = ", ".join(f"{n} {k}" for k, n in sorted(records.items()))
        w.why.append(f"The Runtime-style file holds saved optimizations ({parts}).")
        w.session["session.enable_saved_runtime_optimizations"] = "1"
        w.requirements.append(
            "load it with session.enable_saved_runtime_optimizations=1 and graph optimization "
            "level extended or higher, or the saved fusions are silently skipped"
        )
        w.warnings.append(
            "Enable the replay only for models you trust: saved records rewrite the graph when "
            "the model loads."
        )
    else:
        w.why.append(
            "This model has nothing the Runtime style can record (no QDQ group, Conv+activation "
            "or int4 MatMul after the basic optimizations), so no session option is needed."
        )


def _why_fixed(m: Evidence, eps: Sequence[str], useful: Sequence[str], w: _Why) -> None:
    rt, fx = _eps_of(m.check("runtime")), _eps_of(m.check("fixed"))
    accelerators = [ep for ep in useful if ep in COMPILING]
    for ep in accelerators[:1]:  # only when the Runtime-style file failed verification
        on_fixed = f"; in the Fixed-style file it takes {_share(fx[ep])}" if ep in fx else ""
        w.why.append(
            f"{_ep_name(ep)} would take {_share(rt[ep])} of the Runtime-style file, but that "
            f"file is not safe to ship (see the warnings){on_fixed}."
        )
    refused = [
        f"{_ep_name(ep)} {_share(rt[ep])}{_split(rt[ep]) if ep in COMPILING else ''}, "
        f"verdict {rt[ep].outcome.verdict}"
        for ep in eps
        if ep in rt and ep not in useful
    ]
    if refused and not accelerators:
        lead = "No execution provider" if not useful else "No accelerator"
        w.why.append(
            f"{lead} checked would take enough of the model in few enough partitions: "
            f"{'; '.join(refused)}."
        )
        blocked = [ep for ep in eps if ep in COMPILING and ep in rt and rt[ep].top_reasons]
        for ep in blocked[:1]:
            top = rt[ep].top_reasons[0]
            w.why.append(
                f"The main obstacle for {_ep_name(ep)}: {top.reason} ({top.nodes} node(s))"
                f"{_dynamic_origin(m, top.reason)}."
            )
    x = fx.get("xnnpack")
    if x is not None and x.outcome.verdict in GOOD:
        w.why.append(
            f"XNNPACK would run {_share(x)} of the Fixed-style file (verdict {x.outcome.verdict}): "
            "register it; the other nodes run on the CPU EP."
        )
    fixed = m.file("ort", "fixed")
    fused = _contrib(fixed) or _fused(fixed)
    w.why.append(
        "On the CPU EP the Fixed style is the better file: every optimization is applied at "
        f"conversion{f' ({fused})' if fused else ''}, so it needs no session option and does no "
        "graph work when it loads."
    )
    timing = _bench_sentence(m)
    if timing:
        w.why.append(timing)


def _shape_advice(m: Evidence, eps: Sequence[str], style: str, w: _Why) -> None:
    """When dynamic input shapes keep an accelerator from the model, say what fixing them gives."""
    checked = m.check("original")
    orig = _eps_of(checked)
    fix_command = checked.result.fix_command if checked is not None else None
    for ep in eps:
        r = orig.get(ep)
        if r is None or ep not in COMPILING or r.if_shapes_fixed is None:
            continue
        f = r.if_shapes_fixed
        if f.nodes_taken <= r.outcome.nodes_taken:
            continue
        name = _ep_name(ep)
        if f.verdict in GOOD and f.verdict != r.outcome.verdict:
            run = (
                f" Run `{fix_command}` and prepare the fixed model"
                if fix_command
                else " Fix them and prepare the model again"
            )
            then = (
                ", whose Runtime-style file is then the one to ship." if style == "fixed" else "."
            )
            said = " ".join(m.fix_values.explain()) if m.fix_values is not None else ""
            w.next_steps.append(
                f"Fix the dynamic input shapes: {name} would then take {f.nodes_taken} of "
                f"{f.nodes_total} nodes in {len(f.partitions)} partition(s) (verdict "
                f"{f.verdict}).{run}{then}" + (f" {said}" if said else "")
            )
        elif f.verdict not in GOOD:
            short = (
                f"but in {len(f.partitions)} partitions"
                if len(f.partitions) > 1
                else f"only {100.0 * f.nodes_taken / f.nodes_total:.0f}% of them"
            )
            w.notes.append(
                f"Fixing the dynamic input shapes would let {name} take {f.nodes_taken} of "
                f"{f.nodes_total} nodes, {short}: verdict still {f.verdict} (ORT's rule)."
            )


def _dynamic_origin(m: Evidence, reason: str) -> str:
    """For a dynamic-shape refusal: the model inputs whose dynamic dims the shapes inside follow
    from (``'images' [batch, 3, height, width]``), named as the model names them."""
    if "dynamic dimension" not in reason and "unknown dimension" not in reason:
        return ""
    checked = m.check("original")
    dynamic = [v for v in checked.result.inputs if v.dynamic] if checked is not None else []
    if not dynamic:
        return ""
    shown = ", ".join(
        f"'{v.name}' [{', '.join('?' if d is None else str(d) for d in v.shape or ())}]"
        for v in dynamic[:3]
    )
    more = f" and {len(dynamic) - 3} more" if len(dynamic) > 3 else ""
    return f"; they follow from the model's dynamic input(s) {shown}{more}"


def _split(r: EpReport) -> str:
    """How many partitions a compiling EP would split the model into (ORT's verdict counts them:
    usability_checker.py suitability(), 3 or more is no)."""
    n = len(r.outcome.partitions)
    return f" in {n} partition{'s' if n != 1 else ''}"


def _contrib(f: FileRecord | None) -> str:
    if f is None or f.artifact is None:
        return ""
    ops = {op: c for op, c in f.artifact.fused_ops.items() if op.startswith("com.microsoft")}
    return ", ".join(f"{c} {op.split(':')[-1]}" for op, c in sorted(ops.items()))


def _fused(f: FileRecord | None) -> str:
    if f is None or f.artifact is None:
        return ""
    return ", ".join(f"{c} {op.split(':')[-1]}" for op, c in sorted(f.artifact.fused_ops.items()))


def _bench_sentence(m: Evidence) -> str:
    rows = {b.role: b.metrics for b in m.bench}
    fx, rt = rows.get("fixed"), rows.get("runtime")
    if not fx or not rt:
        return ""
    text = (
        f"Measured on this machine (CPU EP, {fx.get('threads', 1)} thread): the Fixed-style file "
        f"loads in {_ms(fx.get('load_ms'))} and runs in {_ms(fx.get('p50_ms'))} (median), the "
        f"Runtime-style file with replay in {_ms(rt.get('load_ms'))} and {_ms(rt.get('p50_ms'))}"
    )
    a, b = fx.get("p50_ms"), rt.get("p50_ms")
    if a and b and a > 1.1 * b:
        text += "; here the Runtime-style file ran faster, so measure both on the device"
    if fx.get("representative") is False:
        text += (
            f". Both .ort files were built for {fx.get('target_cpu')}, not for this "
            f"{fx.get('host_cpu')} host, so these timings do not show the device's"
        )
        twin = rows.get(HOST_TWIN)
        if twin:
            text += (
                f"; a Fixed-style file built for this host (not shipped) runs in "
                f"{_ms(twin.get('p50_ms'))}"
            )
    return text + "."


def _not_verified(files: Iterable[FileRecord | None]) -> VerifyResult | None:
    """The first failed verification when every failed one compared nothing (the original
    did not run): the files are then unverified, not wrong."""
    failed = [
        v
        for f in files
        if f is not None and f.artifact is not None
        for v in f.artifact.verification
        if not v.passed
    ]
    if not failed or not all(v.not_verified for v in failed):
        return None
    return failed[0]


def _made_not_verified(m: Evidence, eps: Sequence[str], v: VerifyResult, w: _Why) -> Recommendation:
    """Both files were written, but nothing could be compared: say so, why (ORT's words) and
    what to give (inputs or sizes the model runs on). Never "did not reproduce": no output was
    compared."""
    because = v.unverified_because or "the original model did not run"
    if v.inputs:  # the original ran, unoptimized, but not in the artifact's configuration
        said = f"The original ran with optimizations disabled, but {because}"
    else:
        tried = len(v.input_attempts)
        said = f"ONNX Runtime could not run the original model on {_inputs_tried(tried)}"
    said += f": {v.ort_error}" if v.ort_error else ""
    w.warnings.clear()  # one per file and session, each saying the same: the why says it once
    _shape_advice(m, eps, "fixed", w)
    return Recommendation(
        ship=None,
        style=None,
        headline=f"Not verified: both .ort files were made, but {because}",
        why=(
            said + ".",
            "So no output of the .ort files could be compared with the original's: they are "
            "neither known good nor known bad.",
        ),
        eps=(),
        warnings=tuple(w.warnings),
        next_steps=(
            "Give the model inputs it runs on: --inputs FILE.npz (one array per input name), or "
            "the sizes its dynamic dims take: --fix-dim NAME=VALUE; then prepare it again.",
            *w.next_steps,
        ),
        notes=tuple(w.notes),
    )


def _inputs_tried(n: int) -> str:
    if n <= 1:
        return "the inputs it was given" if n == 1 else "any input"
    return f"any of the {n} sets of inputs tried"


def _why_failed(v: VerifyResult) -> str:
    if v.not_verified:
        return v.not_verified
    if v.load_error:
        return f"did not load: {v.load_error}"
    bad = [o for o in v.outputs if not o.passed]
    return "outputs differ from the original's: " + ", ".join(
        f"{o.name} ({o.mismatches} mismatches, max abs {o.max_abs:.3g})" for o in bad
    )
