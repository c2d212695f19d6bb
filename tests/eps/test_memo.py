"""Derived facts kept on the read-only Graph (Graph.memo) and the NNAPI verdicts memoized there.

``check_unit`` judges a graph's units once per options object and shares an acceptance between
plain units with equal ``_plain_key``s; these tests hold it to the verdicts judged from scratch.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from models import (
    attention_block,
    conv_bn_relu,
    dynamic_cnn,
    external_data,
    if_subgraph,
    qdq_cnn,
    relu_chain,
    unknown_op,
)
from ortprep.core.graph import Graph
from ortprep.core.inputs import open_model
from ortprep.core.onnx_view import model_view
from ortprep.eps import nnapi
from ortprep.eps.base import EpOptions
from ortprep.eps.nnapi import verdicts as nnapi_verdicts
from ortprep.eps.partition import node_units

OPTIONS = (EpOptions(android_api=27), EpOptions(android_api=29), EpOptions())


def _graphs(tmp: Path) -> list[tuple[str, Graph]]:
    protos = {
        "conv_bn_relu": conv_bn_relu(),
        "dynamic_cnn": dynamic_cnn(),
        "qdq_cnn_int8": qdq_cnn(),
        "qdq_cnn_uint8": qdq_cnn(activation_type="uint8"),
        "if_subgraph": if_subgraph(),
        "attention_block": attention_block(),
        "relu_chain": relu_chain(64),
        "unknown_op": unknown_op(),
    }
    # As written (value types mostly unknown) and with inferred shapes, as check sees them.
    models = [(name, model_view(proto, Path(f"{name}.onnx"))) for name, proto in protos.items()]
    models += [
        (f"{name}+shapes", model_view(onnx.shape_inference.infer_shapes(proto), Path("m.onnx")))
        for name, proto in protos.items()
    ]
    models.append(("external_data", open_model(external_data(tmp))))
    found: list[tuple[str, Graph]] = []
    for name, model in models:
        graphs = {model.graph.path: model.graph}  # the main graph and every subgraph
        for graph, _node in model.all_nodes():
            graphs.setdefault(graph.path, graph)
        found += [(f"{name}:{path}", graph) for path, graph in graphs.items()]
    return found


def _memoized(graph: Graph, options: EpOptions) -> dict[int, str | None]:
    return {u.target.index: nnapi.check_unit(u, graph, options) for u in node_units(graph)}


@pytest.fixture(scope="module")
def graphs(tmp_path_factory) -> list[tuple[str, Graph]]:
    return _graphs(tmp_path_factory.mktemp("models"))


def _differences(graphs: list[tuple[str, Graph]]) -> list[str]:
    """Every (graph, options, unit) where the memoized verdict differs from the unmemoized one,
    each graph judged on a fresh copy so that no earlier memo is reused."""
    found = []
    for name, original in graphs:
        for options in OPTIONS:
            graph = _fresh(original)
            memoized = _memoized(graph, options)
            reference = nnapi.unmemoized_verdicts(_fresh(original), options)
            assert memoized.keys() == reference.keys()
            found += [
                f"{name} api {options.android_api} unit {key}: {memoized[key]!r} != {ref!r}"
                for key, ref in reference.items()
                if memoized[key] != ref
            ]
    return found


def _fresh(graph: Graph) -> Graph:
    return Graph(
        graph.path, graph.nodes, graph.inputs, graph.outputs, graph.initializers, graph.values
    )


def test_memoized_nnapi_verdicts_equal_unmemoized_ones(graphs):
    assert _differences(graphs) == []


def test_the_comparison_sees_verdicts_both_ways_and_the_memo_at_work(graphs, monkeypatch):
    # Not vacuous: the models give accepted and refused units, and the memo spares builders.
    verdicts = [
        v for _, g in graphs for v in nnapi.unmemoized_verdicts(_fresh(g), EpOptions()).values()
    ]
    assert None in verdicts and any(v is not None for v in verdicts)
    runs = {"memo": 0}
    builder = nnapi_verdicts._builder_verdict

    def counted(*args):
        runs["memo"] += 1
        return builder(*args)

    monkeypatch.setattr(nnapi_verdicts, "_builder_verdict", counted)
    chain = next(g for name, g in graphs if name.startswith("relu_chain+shapes"))
    _memoized(_fresh(chain), EpOptions())
    assert 0 < runs["memo"] < len(node_units(chain)) // 4


def test_the_comparison_fails_when_the_memo_key_is_too_coarse(graphs, monkeypatch):
    # A key that forgets input types and shapes shares acceptances it must not share.
    def coarse(unit, state):
        key = nnapi_plain_key(unit, state)
        return None if key is None else key[:5]

    nnapi_plain_key = nnapi_verdicts._plain_key
    monkeypatch.setattr(nnapi_verdicts, "_plain_key", coarse)
    assert _differences(graphs)


def test_derived_facts_live_on_the_graph_not_in_a_module():
    graph = model_view(relu_chain(8), Path("chain.onnx")).graph
    assert graph.memo == {}
    nnapi.check_unit(node_units(graph)[0], graph, EpOptions())
    assert set(graph.memo) == {"partition.edges", "nnapi.graph"}
    # A copy of the view starts empty: facts are never shared between graph objects.
    assert _fresh(graph).memo == {}
    assert (
        graph.derived("nnapi.graph", lambda g: pytest.fail("rebuilt")) is graph.memo["nnapi.graph"]
    )
