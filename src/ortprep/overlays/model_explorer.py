"""Model Explorer overlays: for each EP, the partition each node runs in, as node data.

Model Explorer (``ai-edge-model-explorer``) colours a graph from a node data file: a JSON object
from graph id to ``{"results": {node id: {"value", "bgColor"}}, "thresholds": [...]}``
(``model_explorer/node_data_builder.py``: ModelNodeData, GraphNodeData, NodeDataResult,
ThresholdItem). The ids are those its ONNX adapter (``model-explorer-onnx``,
``model_explorer_onnx/main.py`` and ``_passes.py``, version 0.4) gives the graph it reads:

- the main graph's id is the graph's name (``<main>`` when it has none); a node's id is its
  name (every node of the analysed copy has a unique one, so the adapter renames none);
- an ``If`` node's branches are drawn inside the graph that holds it (its ``EmbedIfPass``):
  a branch node's id is ``<if id>/<branch attribute>/<name>``, recursively;
- another node with a graph attribute (Loop, Scan) in the main graph gets its own graph, id
  ``<node id>/<attribute>``, whose nodes keep their names (and whose ``If`` nodes are embedded
  as above); deeper subgraphs and lists of graphs are not drawn, so they get no data.

Values: the partition id (as in ``check --json``) for a node the EP takes; -1 for a node the EP
supports but leaves to the CPU (its partition is discarded, or it sits after a stop op); -2 for
a refused node. The thresholds are the legend: refused red, left to the CPU amber, one colour
per partition.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx

    from ortprep.stages.check import CheckResult, EpReport, NodeResult

REFUSED, LEFT_TO_CPU = -2, -1
REFUSED_COLOR, LEFT_TO_CPU_COLOR = "#e53935", "#ffb300"
PALETTE = (
    "#43a047",
    "#1e88e5",
    "#8e24aa",
    "#00acc1",
    "#7cb342",
    "#3949ab",
    "#d81b60",
    "#00897b",
    "#5e35b1",
    "#039be5",
)
MAIN = "<main>"  # the adapter's id for an unnamed main graph
ADAPTER = "model_explorer_onnx"  # the extension module Model Explorer loads for ONNX


def node_data_name(filename: str, ep: str) -> str:
    return f"{filename}.{ep}.node_data.json"


def analyzed_name(filename: str) -> str:
    return f"{filename}.analyzed.onnx"


def adapter_ids(proto: onnx.ModelProto) -> dict[tuple[str, int], tuple[str, str]]:
    """(graph path, node index) -> (graph id, node id) as the ONNX adapter shows the graph;
    nodes it does not draw are left out."""
    ids: dict[tuple[str, int], tuple[str, str]] = {}
    _walk(proto.graph, "main", "", proto.graph.name or MAIN, True, ids)
    return ids


def _walk(
    graph: onnx.GraphProto,
    path: str,
    prefix: str,
    graph_id: str,
    top: bool,
    ids: dict[tuple[str, int], tuple[str, str]],
) -> None:
    for i, node in enumerate(graph.node):
        node_id = prefix + node.name
        ids[(path, i)] = (graph_id, node_id)
        for attr in node.attribute:
            if not attr.HasField("g"):
                continue  # lists of graphs are not drawn
            sub = f"{path}/{node.name}:{attr.name}"
            if node.op_type == "If" and node.domain in ("", "ai.onnx"):
                _walk(attr.g, sub, f"{node_id}/{attr.name}/", graph_id, top, ids)
            elif top:
                _walk(attr.g, sub, "", f"{node_id}/{attr.name}", False, ids)


def value(n: NodeResult) -> int:
    if n.partition is not None:
        return n.partition
    return LEFT_TO_CPU if n.supported else REFUSED


def color(v: int) -> str:
    if v == REFUSED:
        return REFUSED_COLOR
    if v == LEFT_TO_CPU:
        return LEFT_TO_CPU_COLOR
    return PALETTE[v % len(PALETTE)]


def node_data(proto: onnx.ModelProto, report: EpReport) -> dict[str, Any]:
    """One EP's node data (ModelNodeData's JSON form: graph id -> GraphNodeData)."""
    from ortprep.overlays.nodes import matched

    ids = adapter_ids(proto)
    graphs: dict[str, dict[str, Any]] = {}
    for where, _, (n,) in matched(proto, [report]):
        place = ids.get(where)
        if place is None:  # a subgraph the adapter does not draw
            continue
        graph_id, node_id = place
        v = value(n)
        results = graphs.setdefault(graph_id, {})
        results[node_id] = {"value": v, "bgColor": color(v)}
    parts = len(report.outcome.partitions)
    legend = [
        {"value": REFUSED, "bgColor": REFUSED_COLOR},
        {"value": LEFT_TO_CPU, "bgColor": LEFT_TO_CPU_COLOR},
        *({"value": p, "bgColor": color(p)} for p in range(parts)),
    ]
    name = f"{report.ep}: partition (-2 refused, -1 left to the CPU)"
    return {
        graph_id: {"name": name, "results": results, "thresholds": legend}
        for graph_id, results in graphs.items()
    }


def write(result: CheckResult, analyzed: Path, out_dir: Path, filename: str) -> tuple[Path, ...]:
    """``out_dir/<filename>.<ep>.node_data.json`` for every EP of ``result``, keyed to the
    analysed graph ``analyzed`` (written by ``check``); returns the node data files."""
    import onnx

    from ortprep.core.files import write_text

    proto = onnx.load(str(analyzed), load_external_data=False)
    written = []
    for report in result.eps:
        target = out_dir / node_data_name(filename, report.ep)
        write_text(target, json.dumps(node_data(proto, report), indent=1) + "\n")
        written.append(target)
    return tuple(written)


def open_command(analyzed: Path, node_data: Iterable[Path]) -> str:
    """The shell command that opens ``analyzed`` in Model Explorer with the overlays."""
    import shlex

    paths = ",".join(str(p) for p in node_data)
    return shlex.join(
        [
            "model-explorer",
            str(analyzed),
            f"--extensions={ADAPTER}",
            f"--node_data_paths={paths}",
        ]
    )


VIZ_INSTALL = "pip install 'ortprep[viz]'"


def installed() -> bool:
    """Model Explorer and its ONNX adapter are importable (the ``viz`` extra)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("model_explorer", ADAPTER))


def serve(
    analyzed: Path, node_data: Iterable[Path], port: int = 8080, open_browser: bool = True
) -> None:
    """Start Model Explorer on ``analyzed`` with ``node_data`` loaded; returns when the user
    stops the server (Ctrl-C)."""
    import model_explorer

    config = model_explorer.config()
    config.add_model_from_path(str(analyzed))
    for path in node_data:
        config.add_node_data_from_path(str(path))
    model_explorer.visualize_from_config(
        config, port=port, extensions=[ADAPTER], no_open_in_browser=not open_browser
    )
