"""``ortprep view``: Model Explorer with the overlays, or the one command that installs it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from models import conv_bn_relu, save
from ortprep.overlays import model_explorer as me


def test_without_the_viz_extra_view_prints_the_install_command_and_exits_2(
    cli, tmp_path, monkeypatch
):
    monkeypatch.setattr(me, "installed", lambda: False)
    path = save(conv_bn_relu(), tmp_path / "m.onnx")
    r = cli("view", path)
    assert r.code == 2
    assert "hint: pip install 'ortprep[viz]'" in r.stderr
    assert "Traceback" not in r.stderr
    assert not list(tmp_path.glob("*.json"))


def test_view_help_names_the_extra_it_needs(cli):
    r = cli("view", "--help")
    assert r.code == 0
    # rich markup would take [viz] for a style tag and drop it
    assert r.stdout.count("ortprep[viz]") == 2


def test_view_json_writes_the_overlays_without_a_server(cli, tmp_path):
    path = save(conv_bn_relu(), tmp_path / "m.onnx")
    r = cli("view", path, "--ep", "nnapi", "-o", tmp_path / "me", "--json")
    assert r.code == 0
    assert r.json()["written"] == [
        str(tmp_path / "me" / "m.onnx.analyzed.onnx"),
        str(tmp_path / "me" / "m.onnx.nnapi.node_data.json"),
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


@pytest.mark.skipif(not me.installed(), reason="the viz extra is not installed")
def test_view_serves_the_analysed_graph_and_its_overlays(tmp_path):
    path = save(conv_bn_relu(), tmp_path / "m.onnx")
    port = _free_port()
    out = tmp_path / "me"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ortprep",
            "view",
            str(path),
            "--ep",
            "nnapi",
            "-o",
            str(out),
            "--port",
            str(port),
            "--no-browser",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                _get(f"{base}/check_health")
                break
            except OSError:
                assert server.poll() is None, server.stdout.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "Model Explorer did not start"
                time.sleep(0.5)
        node_data = out / "m.onnx.nnapi.node_data.json"
        served = _get(
            f"{base}/api/v1/read_text_file?" + urllib.parse.urlencode({"path": node_data})
        )
        assert json.loads(json.loads(served)["content"]) == json.loads(node_data.read_text())
        command = {
            "cmdId": "convert",
            "extensionId": "onnx_adapter",
            "modelPath": str(out / "m.onnx.analyzed.onnx"),
            "settings": {},
            "deleteAfterConversion": False,
        }
        query = urllib.parse.urlencode({"json": json.dumps(command)})
        graphs = json.loads(_get(f"{base}/api/v1/send_command?{query}"))
        ids = {n["id"] for g in graphs["graphs"] for n in g["nodes"]}
        (graph,) = json.loads(node_data.read_text()).values()
        assert set(graph["results"]) <= ids
    finally:
        server.terminate()
        server.wait(timeout=30)
