"""Benchmark: ortprep against ORT's own tools on a BERT-base-sized transformer (issue #12).

Usage: python benchmarks/bench_scale.py [--pairs 3] [--workdir DIR] [--only check,inspect,convert]
       [--models inline,external] [--layers 12 --hidden 768] [--json]

Builds the encoder of ``benchmarks/transformer.py`` (12 layers, hidden 768: 436 MB of float32
weights) twice, weights inline and in external data, into a temporary folder or ``--workdir``
(kept and reused there), then times, per model:

- check: ``ortprep check M --ep all`` against ORT's ``check_onnx_model_mobile_usability M``;
- inspect: ``ortprep inspect M`` against ``onnx.load(M)`` (what a script reading it does);
- convert: ``ortprep convert M -o OUT --style both --type-reduction`` (verification on) against
  ORT's ``convert_onnx_models_to_ort M --output_dir OUT --optimization_style Fixed Runtime
  --enable_type_reduction``.

Every command is a child process; wall time and the peak of the RSS summed over its process tree
(ortprep runs ORT in a child; sampled every 20 ms, :mod:`_measure`). Runs alternate (A B, then
B A, ...): ``--pairs`` pairs per task and model; the table gives the medians and the median of
the pairs' own ratios (the machine's speed drifts between pairs; each pair shares its moment).
Outputs of convert runs are deleted after each run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import Run, measure, python

TASKS = ("check", "inspect", "convert")
MODELS = ("inline", "external")


def build_models(folder: Path, kinds: list[str], layers: int, hidden: int) -> dict[str, Path]:
    """The transformer with weights inline and/or external, built once per folder."""
    from transformer import build

    built = {}
    for kind in kinds:
        path = folder / kind / "bert.onnx"
        if not path.exists():
            build(path, layers=layers, hidden=hidden, ffn=4 * hidden, external=kind == "external")
        built[kind] = path
    return built


def model_bytes(path: Path) -> int:
    """The model file plus its external data files."""
    return sum(p.stat().st_size for p in path.parent.glob(f"{path.name}*"))


def commands(task: str, model: Path, out: Path) -> tuple[list[str], list[str]]:
    """(ortprep's command, the reference's command) for one task on one model."""
    if task == "check":
        return (
            [python(), "-m", "ortprep", "check", str(model), "--ep", "all"],
            [python(), "-m", "onnxruntime.tools.check_onnx_model_mobile_usability", str(model)],
        )
    if task == "inspect":
        return (
            [python(), "-m", "ortprep", "inspect", str(model)],
            [python(), "-c", "import sys, onnx; onnx.load(sys.argv[1])", str(model)],
        )
    ours = [python(), "-m", "ortprep", "convert", str(model), "-o", str(out / "ours")]
    theirs = [
        python(),
        "-m",
        "onnxruntime.tools.convert_onnx_models_to_ort",
        str(model),
        "--output_dir",
        str(out / "theirs"),
        "--optimization_style",
        "Fixed",
        "Runtime",
        "--enable_type_reduction",
    ]
    return [*ours, "--style", "both", "--type-reduction"], theirs


def run_pairs(task: str, model: Path, pairs: int, scratch: Path) -> dict[str, Any]:
    """Alternating runs of ortprep and the reference; medians and the pairs' own ratios."""
    ours: list[Run] = []
    theirs: list[Run] = []
    for i in range(pairs):
        order = ("theirs", "ours") if i % 2 == 0 else ("ours", "theirs")
        for who in order:
            out = scratch / f"{task}-{i}-{who}"
            out.mkdir(parents=True)
            ours_cmd, theirs_cmd = commands(task, model, out)
            run = measure(ours_cmd if who == "ours" else theirs_cmd)
            (ours if who == "ours" else theirs).append(run)
            shutil.rmtree(out, ignore_errors=True)
        o, t = ours[-1], theirs[-1]
        print(
            f"  {task} {model.parent.name} pair {i + 1}: ortprep {o.wall:.2f} s "
            f"{o.tree_peak or o.peak:.0f} MB exit {o.code} | reference {t.wall:.2f} s "
            f"{t.tree_peak or t.peak:.0f} MB exit {t.code}",
            file=sys.stderr,
            flush=True,
        )

    def peak(r: Run) -> float:
        return r.tree_peak if r.tree_peak is not None else r.peak

    def med(values: list[float]) -> float:
        return statistics.median(values)

    return {
        "task": task,
        "model": model.parent.name,
        "model_mb": model_bytes(model) / 1e6,
        "ortprep": {
            "wall_s": med([r.wall for r in ours]),
            "peak_mb": med([peak(r) for r in ours]),
            "exit": sorted({r.code for r in ours}),
        },
        "reference": {
            "wall_s": med([r.wall for r in theirs]),
            "peak_mb": med([peak(r) for r in theirs]),
            "exit": sorted({r.code for r in theirs}),
        },
        "wall_ratio": med([o.wall / t.wall for o, t in zip(ours, theirs, strict=True)]),
        "peak_ratio": med([peak(o) / peak(t) for o, t in zip(ours, theirs, strict=True)]),
        "runs": {
            "ortprep": [r._asdict() for r in ours],
            "reference": [r._asdict() for r in theirs],
        },
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'task':<8} {'model':<9} {'MB':>5} | {'ortprep s':>9} {'MB':>6} | "
        f"{'ref s':>7} {'MB':>6} | {'time x':>6} {'peak x':>6} {'peak/model':>10}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        o, t = r["ortprep"], r["reference"]
        lines.append(
            f"{r['task']:<8} {r['model']:<9} {r['model_mb']:>5.0f} | {o['wall_s']:>9.2f} "
            f"{o['peak_mb']:>6.0f} | {t['wall_s']:>7.2f} {t['peak_mb']:>6.0f} | "
            f"{r['wall_ratio']:>6.2f} {r['peak_ratio']:>6.2f} {o['peak_mb'] / r['model_mb']:>10.2f}"
        )
    lines.append(
        "time x / peak x: median of the pairs' own ratios (ortprep / reference); peak: RSS summed "
        "over the process tree; references: ORT's checker, onnx.load, ORT's converter"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="build (and keep) the models here")
    parser.add_argument("--only", default=",".join(TASKS), help="tasks: " + ",".join(TASKS))
    parser.add_argument("--models", default=",".join(MODELS), help="inline,external")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    tasks = [t for t in args.only.split(",") if t]
    kinds = [m for m in args.models.split(",") if m]
    if not set(tasks) <= set(TASKS) or not set(kinds) <= set(MODELS):
        parser.error(f"--only takes {','.join(TASKS)}; --models takes {','.join(MODELS)}")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        folder = args.workdir or Path(tmp)
        models = build_models(folder, kinds, args.layers, args.hidden)
        rows = [
            run_pairs(task, models[kind], args.pairs, Path(tmp) / "scratch")
            for kind in kinds
            for task in tasks
        ]
    if args.json:
        print(json.dumps({"pairs": args.pairs, "results": rows}, indent=1))
    else:
        print(table(rows))


if __name__ == "__main__":
    main()
