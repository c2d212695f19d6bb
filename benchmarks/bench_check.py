"""Benchmark: ``ortprep check --ep all`` vs ORT's usability checker on a 100,000-node model.

Usage: python benchmarks/bench_check.py [--nodes 100000] [--runs 3] [--no-profile]
Both run as child processes in the same session, alternating, with the step each one cannot go
below: ORT's level-1 session alone (ORT's checker) and the same graph through ORT's compile API
(ortprep); ``ortprep check --json`` (stdout to a file) runs beside them, for what the JSON costs
over the human command (400,000 node records, 58 MB). Wall time and peak memory (the whole
process tree: ortprep runs ORT in a child) are reported per run and as the median. A profile of
where ortprep's time goes follows.
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
    parser.add_argument("--no-profile", action="store_true")
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
        # ORT's checker's floor: ORT's level-1 session saving the optimized graph.
        session_cmd = [
            python(),
            "-c",
            "import sys, onnxruntime as ort; o = ort.SessionOptions(); "
            "o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC; "
            "o.optimized_model_filepath = sys.argv[2]; o.log_severity_level = 3; "
            "ort.InferenceSession(sys.argv[1], o, providers=['CPUExecutionProvider'])",
            str(model),
            str(Path(tmp) / "basic.onnx"),
        ]
        # ortprep's: the same graph through ORT's compile API (no session-state finalization).
        compile_cmd = [
            python(),
            "-c",
            "import sys, onnxruntime as ort; o = ort.SessionOptions(); o.log_severity_level = 3; "
            "ort.ModelCompiler(o, sys.argv[1], graph_optimization_level="
            "ort.GraphOptimizationLevel.ORT_ENABLE_BASIC).compile_to_file(sys.argv[2])",
            str(model),
            str(Path(tmp) / "compiled.onnx"),
        ]
        json_out = Path(tmp) / "check.json"
        json_cmd = [
            python(),
            "-c",
            "import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC); "
            "os.dup2(fd, 1); os.execv(sys.executable, [sys.executable, *sys.argv[2:]])",
            str(json_out),
            *ours_cmd[1:],
            "--json",
        ]
        runs: dict[str, list] = {
            "ours": [],
            "json": [],
            "theirs": [],
            "session": [],
            "compile": [],
        }
        commands = {"ours": ours_cmd, "json": json_cmd, "theirs": theirs_cmd}
        for i in range(args.runs):
            # the tools swap places every run: none always follows another
            order = ("theirs", "ours", "json") if i % 2 == 0 else ("json", "ours", "theirs")
            for name in order:
                runs[name].append(measure(commands[name]))
            runs["session"].append(measure(session_cmd))
            runs["compile"].append(measure(compile_cmd))
            o, t = runs["ours"][-1], runs["theirs"][-1]
            print(
                f"run {i + 1}: ortprep {o.wall:.2f} s, {o.tree_peak:.0f} MB for its process tree "
                f"({o.peak:.0f} MB its biggest process), exit {o.code} | ORT's checker "
                f"{t.wall:.2f} s, {t.tree_peak:.0f} MB, exit {t.code} | ORT's level-1 session "
                f"alone {runs['session'][-1].wall:.2f} s | through its compile API "
                f"{runs['compile'][-1].wall:.2f} s | ortprep --json {runs['json'][-1].wall:.2f} s "
                f"({json_out.stat().st_size / 1e6:.0f} MB)"
            )

        def med(name: str, field: str) -> float:
            return statistics.median(getattr(r, field) for r in runs[name])

        o_wall, t_wall = med("ours", "wall"), med("theirs", "wall")
        # the machine's speed drifts between runs: each run's own ratio, then their median
        pair_ratio = statistics.median(
            o.wall / t.wall for o, t in zip(runs["ours"], runs["theirs"], strict=True)
        )
        s_wall, c_wall = med("session", "wall"), med("compile", "wall")
        json_extra = statistics.median(
            j.wall - o.wall for j, o in zip(runs["json"], runs["ours"], strict=True)
        )
        print(
            f"\nmedian: ortprep {o_wall:.2f} s, {med('ours', 'tree_peak'):.0f} MB "
            f"(process tree) | ORT's checker {t_wall:.2f} s, {med('theirs', 'tree_peak'):.0f} MB "
            f"| ratio {o_wall / t_wall:.2f} (median of the runs' own ratios {pair_ratio:.2f})\n"
            f"ORT's level-1 graph: {s_wall:.2f} s from a session ({s_wall / t_wall:.0%} of ORT's "
            f"checker, {med('session', 'peak'):.0f} MB), {c_wall:.2f} s from the compile API "
            f"({med('compile', 'peak'):.0f} MB)\n"
            f"beyond it: ortprep {o_wall - c_wall:.2f} s, ORT's checker {t_wall - s_wall:.2f} s\n"
            f"--json: {med('json', 'wall'):.2f} s, {json_extra:+.2f} s over the human command "
            f"(median of the runs' own differences), {med('json', 'tree_peak'):.0f} MB"
        )
        if args.no_profile:
            return

        print("\nwhere ortprep's time goes (in-process profile, top 15 by cumulative time):")
        from ortprep.core.gcpause import allow_pausing, gc_paused
        from ortprep.stages import check

        allow_pausing()  # as cli.main does for check

        profiler = cProfile.Profile()
        profiler.enable()
        with gc_paused():
            check.run(model, check.CheckOptions())
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(15)


if __name__ == "__main__":
    main()
