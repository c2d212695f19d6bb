"""Benchmark: ``ortprep check --ep all`` vs ORT's usability checker on a 100,000-node model.

Usage: python benchmarks/bench_check.py [--nodes 100000] [--runs 3]
Both run as child processes in the same session, alternating, with ORT's level-1 session alone
(the floor both share); wall time and peak RSS are reported per run and as the median. A profile
of where ortprep's time goes follows.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import measure, python


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from models import relu_chain, save

    with tempfile.TemporaryDirectory() as tmp:
        model = save(relu_chain(args.nodes), Path(tmp) / "chain.onnx")
        ours_cmd = [python(), "-m", "ortprep", "check", str(model), "--ep", "all"]
        theirs_cmd = [
            python(),
            "-m",
            "onnxruntime.tools.check_onnx_model_mobile_usability",
            str(model),
        ]
        # The floor both tools share: ORT's own level-1 session saving the optimized graph.
        floor_cmd = [
            python(),
            "-c",
            "import sys, onnxruntime as ort; o = ort.SessionOptions(); "
            "o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC; "
            "o.optimized_model_filepath = sys.argv[2]; o.log_severity_level = 3; "
            "ort.InferenceSession(sys.argv[1], o, providers=['CPUExecutionProvider'])",
            str(model),
            str(Path(tmp) / "basic.onnx"),
        ]
        ours, theirs, floor = [], [], []
        for i in range(args.runs):
            theirs.append(measure(theirs_cmd))
            ours.append(measure(ours_cmd))
            floor.append(measure(floor_cmd))
            print(
                f"run {i + 1}: ortprep {ours[-1][0]:.2f} s {ours[-1][1]:.0f} MB (exit "
                f"{ours[-1][2]}) | ORT checker {theirs[-1][0]:.2f} s {theirs[-1][1]:.0f} MB "
                f"(exit {theirs[-1][2]}) | ORT's level-1 session alone {floor[-1][0]:.2f} s "
                f"{floor[-1][1]:.0f} MB"
            )
        o_wall = statistics.median(r[0] for r in ours)
        t_wall = statistics.median(r[0] for r in theirs)
        o_mem = statistics.median(r[1] for r in ours)
        t_mem = statistics.median(r[1] for r in theirs)
        f_wall = statistics.median(r[0] for r in floor)
        print(
            f"\nmedian: ortprep {o_wall:.2f} s, {o_mem:.0f} MB | ORT's checker {t_wall:.2f} s, "
            f"{t_mem:.0f} MB | ratio {o_wall / t_wall:.2f}\n"
            f"the shared floor (ORT's level-1 session, which both run): {f_wall:.2f} s, "
            f"{f_wall / t_wall:.0%} of ORT's checker; ortprep beyond it: {o_wall - f_wall:.2f} s, "
            f"ORT's checker beyond it: {t_wall - f_wall:.2f} s"
        )

        print("\nwhere ortprep's time goes (in-process profile, top 15 by cumulative time):")
        from ortprep.stages import check

        profiler = cProfile.Profile()
        profiler.enable()
        check.run(model, check.CheckOptions())
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(15)


if __name__ == "__main__":
    main()
