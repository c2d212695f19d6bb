"""The view behind ``report.html``: plain numbers and strings for the Jinja2 template.

Pictures are inline SVG the template draws from what is computed here: a partition strip per EP
and file (one mark per node in graph order, coloured by partition; a long model's neighbouring
nodes with the same fate are merged so the page stays small) and small bar charts for the
benchmark. Nothing here writes markup: the template does, with autoescaping on, so model-derived
names can never become markup.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ortprep.manifest import Benched, ModelReport, PrepareResult
    from ortprep.stages.check import NodeResult
    from ortprep.stages.verify import VerifyResult

STRIP_WIDTH = 1000
MAX_MARKS = 2000
"""Above this many nodes, runs of neighbouring nodes with the same fate become one mark."""
PALETTE = ("#2b8a3e", "#1971c2", "#0c8599", "#6741d9", "#5c940d", "#1864ab", "#087f5b", "#862e9c")
COLORS = {
    "taken": "#2b8a3e",
    "left": "#f59f00",
    "dynamic": "#e599f7",
    "refused": "#ced4da",
}
LEGEND = {
    "taken": "taken by the EP (one colour per partition)",
    "xnnpack": "run by XNNPACK",
    "left": "supported, but left to the CPU",
    "dynamic": "refused: dynamic shape (fixable)",
    "refused": "refused",
}
ROLE_COLORS = {
    "original": "#868e96",
    "fixed": "#1971c2",
    "runtime": "#0c8599",
    "fixed-host": "#e8590c",
}
ROLE_NAMES = {
    "original": "original .onnx",
    "fixed": "Fixed .ort",
    "runtime": "Runtime .ort",
    "fixed-host": "Fixed .ort, host-built",
}
NOT_REPRESENTATIVE = "#ced4da"
"""The fill of a bar whose file was built for another CPU than this host's (or unknown)."""
BAR_WIDTH = 170
LABEL_WIDTH = 96


def render_report(result: PrepareResult) -> str:
    """The whole page as one string (autoescaped; no external resources)."""
    import jinja2

    env = jinja2.Environment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    source = (
        resources.files("ortprep.report").joinpath("templates/report.html.j2").read_text("utf-8")
    )
    return env.from_string(source).render(view=view(result))


# --------------------------------------------------------------------------- formatting


def size_text(n: int | None) -> str:
    if n is None:
        return "-"
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024 / 1024:.2f} MB"


def _num(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{float(value):.{digits}f}"


def _status(m: ModelReport) -> str:
    if m.error is not None:
        return "failed"
    return "ok" if m.ok else "warn"


# --------------------------------------------------------------------------- partition strips


def _category(n: NodeResult) -> str:
    if n.partition is not None:
        return "taken"
    if n.supported:
        return "left"
    if n.reason and "dynamic" in n.reason:
        return "dynamic"
    return "refused"


def _fill(category: str, partition: int | None, compiles: bool) -> str:
    if category == "taken" and partition is not None and compiles:
        return PALETTE[partition % len(PALETTE)]
    return COLORS[category]


def _node_title(n: NodeResult, compiles: bool) -> str:
    where = f" (subgraph {n.graph})" if n.graph != "main" else ""
    head = f"{n.name} · {n.op}{where}"
    if n.partition is not None:
        return f"{head}\n{'partition ' + str(n.partition) if compiles else 'runs on the EP'}"
    return f"{head}\n{n.reason or 'not taken'}"


def strip(nodes: Sequence[NodeResult], compiles: bool) -> dict[str, Any]:
    """Marks for one strip: x, width, fill and hover title, in graph order."""
    total = len(nodes)
    marks: list[dict[str, Any]] = []
    if total == 0:
        return {"marks": marks, "total": 0, "merged": False}
    unit = STRIP_WIDTH / total
    gap = unit * 0.12 if total <= 160 else 0.0
    if total <= MAX_MARKS:
        for i, n in enumerate(nodes):
            cat = _category(n)
            marks.append(
                {
                    "x": round(i * unit, 3),
                    "w": round(max(unit - gap, 0.2), 3),
                    "fill": _fill(cat, n.partition, compiles),
                    "title": _node_title(n, compiles),
                }
            )
        return {"marks": marks, "total": total, "merged": False}
    start = 0
    for i in range(1, total + 1):
        if i < total and (_category(nodes[i]), nodes[i].partition) == (
            _category(nodes[start]),
            nodes[start].partition,
        ):
            continue
        run = nodes[start:i]
        cat = _category(run[0])
        ops = Counter(n.op for n in run).most_common(4)
        reasons = Counter(n.reason for n in run if n.reason).most_common(2)
        fate = (
            (f"partition {run[0].partition}" if compiles else "runs on the EP")
            if run[0].partition is not None
            else "; ".join(r for r, _ in reasons) or "not taken"
        )
        title = (
            f"nodes {start + 1} to {i} ({len(run)}): {run[0].name} … {run[-1].name}\n"
            + ", ".join(f"{op}×{c}" for op, c in ops)
            + f"\n{fate}"
        )
        marks.append(
            {
                "x": round(start * unit, 3),
                "w": round(len(run) * unit, 3),
                "fill": _fill(cat, run[0].partition, compiles),
                "title": title,
            }
        )
        start = i
    return {"marks": marks, "total": total, "merged": True}


def _fixed_values(m: ModelReport) -> str:
    """`` (batch=1, height=320, width=320)``: the values the what-if used, guesses marked."""
    if m.fix_values is None or not m.fix_values.values:
        return ""
    seen: dict[str, str] = {}
    for v in m.fix_values.values:
        seen.setdefault(v.label, f"{v.label}={v.value}{' (a guess)' if v.guess else ''}")
    return f" ({', '.join(seen.values())})"


def _ep_views(m: ModelReport) -> list[dict[str, Any]]:
    from ortprep.eps.registry import ep_spec

    shipped = m.recommendation.style if m.recommendation and m.recommendation.style else None
    order = [c for role in ("original", "runtime", "fixed") for c in m.checks if c.role == role]
    eps = list(dict.fromkeys(e.ep for c in order for e in c.result.eps))
    views = []
    for ep in eps:
        spec = ep_spec(ep)
        rows: list[dict[str, Any]] = []
        categories: set[str] = set()
        for c in order:
            found = next((e for e in c.result.eps if e.ep == ep), None)
            if found is None:
                continue
            o = found.outcome
            categories.update(_category(n) for n in found.nodes)
            rows.append(
                {
                    "role": c.role,
                    "label": ROLE_NAMES[c.role],
                    "file": c.file,
                    "shipped": c.role == shipped,
                    "verdict": o.verdict,
                    "taken": o.nodes_taken,
                    "total": o.nodes_total,
                    "partitions": len(o.partitions),
                    "largest": max((len(p.nodes) for p in o.partitions), default=0),
                    "summary": found.summary,
                    "strip": strip(found.nodes, spec.compiles),
                    "report": found,
                }
            )
        if not rows:
            continue
        main = next((r for r in rows if r["shipped"]), rows[0])
        original = next((r for r in rows if r["role"] == "original"), None)
        shapes = None
        fixed_shapes = original["report"].if_shapes_fixed if original is not None else None
        if (
            original is not None
            and fixed_shapes is not None
            and (
                fixed_shapes.nodes_taken != original["taken"]
                or fixed_shapes.verdict != original["verdict"]
            )
        ):
            f = fixed_shapes
            shapes = (
                f"with the dynamic input shapes fixed{_fixed_values(m)}: {f.nodes_taken} of "
                f"{f.nodes_total} nodes in {len(f.partitions)} partition(s), verdict {f.verdict}"
            )
        legend = []
        if "taken" in categories:
            key = "taken" if spec.compiles else "xnnpack"
            swatch = list(PALETTE[:4]) if spec.compiles else [COLORS["taken"]]
            legend.append({"label": LEGEND[key], "colors": swatch})
        legend.extend(
            {"label": LEGEND[cat], "colors": [COLORS[cat]]}
            for cat in ("left", "dynamic", "refused")
            if cat in categories
        )
        # reasons and next step as for the user's own graph: the original's check also knows
        # what fixing the dynamic shapes would give, and its advice fits any file
        source = original or main
        shown = source["report"]
        views.append(
            {
                "ep": ep,
                "name": spec.display_name,
                "compiles": spec.compiles,
                "verdict": main["verdict"],
                "main_label": main["label"],
                "rows": rows,
                "legend": legend,
                "reasons": [r.to_dict() for r in shown.top_reasons],
                "reasons_of": source["label"],
                "next_step": shown.next_step,
                "notes": list(shown.notes),
                "shapes": shapes,
            }
        )
    return views


# --------------------------------------------------------------------------- benchmark


def bench_view(rows: Sequence[Benched]) -> dict[str, Any] | None:
    """Three small bar charts (load, median run with p90 whisker, size) and the table."""
    if not rows:
        return None
    largest = max(float(b.metrics.get("size_bytes") or 0) for b in rows)
    size_unit, size_scale = ("MB", 1 / (1024 * 1024)) if largest >= 1 << 20 else ("KB", 1 / 1024)
    metrics = (
        ("load_ms", "load", "ms", None),
        ("p50_ms", "run, median (whisker: p90)", "ms", "p90_ms"),
        ("size_bytes", "file size", size_unit, None),
    )
    charts = []
    for key, title, unit, whisker in metrics:
        scale = size_scale if key == "size_bytes" else 1.0
        values = [float(b.metrics.get(key) or 0) * scale for b in rows]
        tops = [float(b.metrics.get(whisker) or 0) * scale if whisker else 0.0 for b in rows]
        vmax = max([*values, *tops]) or 1.0
        bars = []
        for i, (b, v, top) in enumerate(zip(rows, values, tops, strict=True)):
            # the file size is what ships whatever the host: only timings are greyed
            grey = key != "size_bytes" and b.metrics.get("representative") is not True
            note = f"\n{b.metrics['note']}" if grey and b.metrics.get("note") else ""
            bars.append(
                {
                    "y": 8 + i * 26,
                    "label": ROLE_NAMES[b.role],
                    "w": round(BAR_WIDTH * v / vmax, 2),
                    "whisker": round(BAR_WIDTH * top / vmax, 2) if whisker and top > v else None,
                    "fill": NOT_REPRESENTATIVE if grey else ROLE_COLORS[b.role],
                    "grey": grey,
                    "text": f"{v:.2f} {unit}" if v < 10 else f"{v:.1f} {unit}",
                    "title": f"{b.file}: {v:.3f} {unit}{note}",
                }
            )
        charts.append({"title": title, "bars": bars, "height": 16 + 26 * len(rows)})
    table = [
        {
            "label": ROLE_NAMES[b.role],
            "file": b.file,
            "load": _num(b.metrics.get("load_ms")),
            "first": _num(b.metrics.get("first_run_ms")),
            "p50": _num(b.metrics.get("p50_ms"), 2),
            "p90": _num(b.metrics.get("p90_ms"), 2),
            "p99": _num(b.metrics.get("p99_ms"), 2),
            "throughput": _num(b.metrics.get("throughput_per_s")),
            "rss": _num(b.metrics.get("peak_rss_mb")),
            "size": size_text(b.metrics.get("size_bytes")),
            "built_for": b.metrics.get("target_cpu") or "?",
            "representative": b.metrics.get("representative"),
            "note": b.metrics.get("note") or "",
            "host_twin": b.role == "fixed-host",
        }
        for b in rows
    ]
    threads = rows[0].metrics.get("threads", 1)
    shapes = rows[0].metrics.get("input_shapes") or {}
    inputs = ", ".join(
        f"{name} [{'×'.join(str(d) for d in shape)}]" for name, shape in shapes.items()
    )
    by_note: dict[str, list[str]] = {}
    for b in rows:
        if b.metrics.get("representative") is not True:
            by_note.setdefault(b.metrics.get("note") or "", []).append(ROLE_NAMES[b.role])
    greyed = [{"label": " and ".join(labels), "note": note} for note, labels in by_note.items()]
    twin = next((b for b in rows if b.role == "fixed-host"), None)
    return {
        "charts": charts,
        "table": table,
        "host_cpu": rows[0].metrics.get("host_cpu") or "?",
        "inputs": inputs,
        "greyed": greyed,
        "twin": None if twin is None else {"file": twin.file, "note": twin.metrics.get("note")},
        "threads": threads,
        "bar_width": BAR_WIDTH,
        "label_width": LABEL_WIDTH,
        "width": LABEL_WIDTH + BAR_WIDTH + 76,
    }


# --------------------------------------------------------------------------- models


def _file_rows(m: ModelReport) -> list[dict[str, Any]]:
    rows = []
    for f in m.files:
        a = f.artifact
        pct = (
            f"{100.0 * f.size_bytes / m.size_bytes:.0f}% of the .onnx"
            if m.size_bytes and f.kind == "ort"
            else ""
        )
        rows.append(
            {
                "name": f.name,
                "path": f.path,
                "kind": ".ort" if f.kind == "ort" else "config",
                "style": f.style,
                "size": size_text(f.size_bytes),
                "size_pct": pct,
                "nodes": "-" if a is None or a.nodes is None else a.nodes,
                "verified": f.verified,
                "sessions": [verification_view(v) for v in (a.verification if a else ())],
                "sha256": f.sha256,
                "shipped": m.recommendation is not None and m.recommendation.ship == f.path,
                "notes": list(a.notes) if a else [],
                "warnings": list(a.warnings) if a else [],
            }
        )
    return rows


def verification_view(v: VerifyResult) -> dict[str, Any]:
    """One verification session as the report shows it: the inputs it ran on (name, shape,
    dtype, how the values were made), the reference it was compared with, the tolerances its
    outputs were held to and the separate float figure (stages/verify.py)."""
    from ortprep.stages import verify

    if v.inputs:
        inputs = "; ".join(
            f"{i.name} [{'×'.join(str(d) for d in i.shape)}] {i.dtype} {i.values}" for i in v.inputs
        )
    else:
        inputs = ", ".join(
            f"{name} [{'×'.join(str(d) for d in shape)}]" for name, shape in v.input_shapes.items()
        )
    return {
        "session": v.session,
        "passed": v.passed,
        "inputs": inputs,
        "limits": f"rtol {v.rtol:g}, atol {v.atol:g}",
        "reference": v.reference_config,
        "float": v.float_reference.text if v.float_reference is not None else "",
        "not_verified": v.not_verified or "",
        "tolerances": f"float outputs: |a - b| ≤ atol + rtol·|a| (by default {verify.ATOL:g} + "
        f"{verify.RTOL:g}·|a|); integer and quantized outputs: at most "
        f"{verify.INT_TOLERANCE} apart; NaN and Inf must match",
    }


def _diff_views(m: ModelReport) -> list[dict[str, Any]]:
    views = []
    for d in m.diffs:
        r = d.result
        views.append(
            {
                "file": Path(d.file).name,
                "label": ROLE_NAMES[d.role],
                "nodes_a": r.nodes_a,
                "nodes_b": r.nodes_b,
                "fusions": [f.to_dict() for f in r.fusions],
                "removed": sorted(r.removed.items()),
                "added": sorted(r.added.items()),
                "ops": [
                    {"op": op, "a": a, "b": b, "change": b - a}
                    for op, (a, b) in sorted(r.ops.items())
                ],
            }
        )
    return views


def _model_view(i: int, m: ModelReport) -> dict[str, Any]:
    rec = m.recommendation
    return {
        "anchor": f"model-{i}",
        "name": m.relative,
        "input": m.input,
        "sha256": m.sha256,
        "size": size_text(m.size_bytes),
        "seconds": f"{m.seconds:.1f}",
        "status": _status(m),
        "error": m.error,
        "hint": m.hint,
        "rec": rec,
        "session_options": sorted(rec.session_options.items()) if rec else [],
        "files": _file_rows(m),
        "eps": _ep_views(m) if m.error is None else [],
        "diffs": _diff_views(m),
        "bench": bench_view(m.bench),
        "build": m.build,
        "commands": [c.to_dict() for c in m.commands],
        "problems": list(m.problems),
    }


def view(result: PrepareResult) -> dict[str, Any]:
    """Everything the template shows, as plain data."""
    from ortprep.eps.registry import ep_spec

    models = [_model_view(i, m) for i, m in enumerate(result.models)]
    summary = [
        {
            "anchor": mv["anchor"],
            "name": mv["name"],
            "status": mv["status"],
            "headline": mv["rec"].headline if mv["rec"] else (mv["error"] or ""),
            "size": mv["size"],
            "seconds": mv["seconds"],
        }
        for mv in models
    ]
    o = result.options
    failed = sum(not m.ok for m in result.models)
    return {
        "created": result.created,
        "target": o.target,
        "target_platform": o.target_platform,
        "eps": [ep_spec(e).display_name for e in o.check_eps],
        "versions": dict(result.versions),
        "seconds": f"{result.seconds:.1f}",
        "ok": result.ok,
        "failed": failed,
        "total": len(result.models),
        "summary": summary,
        "combined": result.combined_build,
        "models": models,
        "bench_runs": o.bench_runs,
        "bench_on": o.bench,
        "fix_dims": [f"{k}={v}" for k, v in o.fix_dims.items()],
        "inputs": None if o.inputs is None else str(o.inputs),
        "bench_warmup": o.bench_warmup,
        "workers": o.workers,
    }
