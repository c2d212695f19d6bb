"""``check``: which nodes NNAPI, CoreML and XNNPACK would take, in how many partitions, and why.

- :mod:`.results`: the options and the results (plain data, ``to_dict`` for JSON);
- :mod:`.source`: the graphs the EPs see, from one call (:func:`graph_views`), with all the
  scheduling of ORT's work;
- :mod:`.engine`: each EP's verdict per node unit and ORT's partition walk;
- :mod:`.verdict`: ORT's suitability rule (and ortprep's share rule for XNNPACK);
- :mod:`.explain`: refusals grouped by rule, summaries, notes and next steps.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ortprep.core.progress import ProgressFn, no_progress
from ortprep.eps.registry import EP_IDS, ep_spec, parse_eps
from ortprep.stages.check.engine import Engine, evaluate
from ortprep.stages.check.explain import compare_with_ort_checker, explain, ort_checker_ops
from ortprep.stages.check.results import (
    CheckOptions,
    CheckResult,
    EpReport,
    NodeResult,
    OrtGraphOptions,
    Outcome,
    Partition,
    ReasonGroup,
)
from ortprep.stages.check.source import GraphViews, fix_shapes_command, graph_views, what_if_fix
from ortprep.stages.check.verdict import ORT_RULE, SHARE_RULE, ort_suitability, share_verdict


def run(path: Path, options: CheckOptions, progress: ProgressFn = no_progress) -> CheckResult:
    """Check one model for every requested EP."""
    # The CLI pauses the cyclic garbage collector around this (cli.main, ortprep.core.gcpause).
    with tempfile.TemporaryDirectory(prefix="ortprep-check-") as tmp:
        views = graph_views(path, options, Path(tmp), progress)
        engine = Engine(views.model, views.what_if, options.ep_options)
        subgraphs = len(engine.graphs) > 1
        reports = []
        for i, ep in enumerate(options.eps):
            progress("checking EPs", i, len(options.eps))
            found = engine.evaluate(ep)
            reports.append(explain(found, views.model, views.fix_command, subgraphs))
        progress("checking EPs", len(options.eps), len(options.eps))
        if options.save_analyzed is not None:
            _save_analyzed(views, options.save_analyzed)
    return CheckResult(
        str(path),
        views.analyzed,
        views.inputs,
        views.assumed,
        tuple(reports),
        views.fix_command,
        what_if_refused=views.what_if_refused,
        fix_guesses=views.fix_guesses,
    )


def _save_analyzed(views: GraphViews, target: Path) -> None:
    """The analysed graph, weightless, to ``target`` (while ORT's level-1 file still exists)."""
    from ortprep.core import weightless
    from ortprep.core.files import write_bytes

    if views.level1 is not None:
        proto = weightless.weightless_onnx(views.level1, target.name)
    else:
        proto = weightless.weightless_from_view(views.model, target.name)
    write_bytes(target, proto.SerializeToString())


__all__ = [
    "EP_IDS",
    "ORT_RULE",
    "SHARE_RULE",
    "CheckOptions",
    "CheckResult",
    "EpReport",
    "GraphViews",
    "NodeResult",
    "OrtGraphOptions",
    "Outcome",
    "Partition",
    "ReasonGroup",
    "compare_with_ort_checker",
    "ep_spec",
    "evaluate",
    "fix_shapes_command",
    "graph_views",
    "ort_checker_ops",
    "ort_suitability",
    "parse_eps",
    "run",
    "share_verdict",
    "what_if_fix",
]
