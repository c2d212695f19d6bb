"""The public Python API: ``__all__`` is the API, its keywords are the CLI's options, importing it
is light, and every function works on a small model."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import ortprep
from models import conv_bn_relu, dynamic_cnn, save

API = {
    # API function -> the CLI command whose options it takes
    "check": ("check",),
    "convert": ("convert",),
    "prepare": ("prepare",),
    "inspect": ("inspect",),
    "verify": ("verify",),
    "optimize": ("optimize",),
    "bench": ("bench",),
    "fix_shapes": ("fix-shapes",),
    "diff": ("diff",),
    "config_build": ("config", "build"),
    "config_merge": ("config", "merge"),
    "config_check": ("config", "check"),
    "config_build_command": ("config", "build-command"),
}
NOT_FUNCTIONS = {"OrtprepError", "__version__"}
CLI_ONLY = {"json", "debug"}  # output and tracebacks: the caller's business in Python
API_ONLY = {"progress"}  # the CLI passes its progress bars


def test_all_is_exactly_the_api():
    assert sorted(ortprep.__all__) == sorted(set(API) | NOT_FUNCTIONS)
    for name in ortprep.__all__:
        assert hasattr(ortprep, name), name
    assert ortprep.OrtprepError is __import__("ortprep.core.errors").core.errors.OrtprepError


def _cli_command(path: tuple[str, ...]):
    import typer.main

    from ortprep.cli import app

    command = typer.main.get_command(app)
    for part in path:
        command = command.commands[part]  # type: ignore[attr-defined]
    return command


def _cli_names(path: tuple[str, ...]) -> set[str]:
    """The command's options and arguments, named as the user types them, in snake_case."""
    names = set()
    for param in _cli_command(path).params:
        if param.param_type_name == "argument":
            names.add(param.name)
            continue
        long = [o for o in param.opts if o.startswith("--")]
        names.add(long[0][2:].replace("-", "_"))
    return names


def test_every_command_has_its_function():
    import typer.main

    from ortprep.cli import app

    root = typer.main.get_command(app)
    commands = set()
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        subs = getattr(command, "commands", None)
        commands |= {(name, s) for s in subs} if subs else {(name,)}
    # view starts a server: the Python API has model_explorer.serve and check(model_explorer=)
    assert commands - {("view",)} == set(API.values())


@pytest.mark.parametrize("name", sorted(API))
def test_keywords_are_the_cli_options(name):
    params = inspect.signature(getattr(ortprep, name)).parameters
    api_names = set(params) - API_ONLY
    assert api_names == _cli_names(API[name]) - CLI_ONLY
    # options are keyword-only (their order is not part of the API); positionals are the
    # command's arguments plus -o OUT where the command writes files
    for p in params.values():
        if p.kind is not inspect.Parameter.KEYWORD_ONLY:
            assert p.name in {"path", "paths", "out", "reference", "candidate", "a", "b"} | {
                "files",
                "config",
                "target",
            }, p.name


@pytest.mark.parametrize("name", sorted(API))
def test_functions_are_documented(name):
    assert (getattr(ortprep, name).__doc__ or "").strip()


def test_import_ortprep_loads_no_heavy_module():
    code = (
        "import sys, ortprep\n"
        "heavy = [m for m in ('onnx', 'onnxruntime', 'numpy', 'jinja2', 'typer', 'rich') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_api_leaves_the_garbage_collector_as_it_found_it(tmp_path):
    import gc

    model = save(conv_bn_relu(), tmp_path / "m.onnx")
    assert gc.isenabled()
    ortprep.check(model, ep="xnnpack")
    assert gc.isenabled()


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return save(conv_bn_relu(), tmp_path_factory.mktemp("api") / "cnn.onnx")


def test_check_returns_the_result_the_cli_renders(model):
    result = ortprep.check(model, ep=["nnapi", "xnnpack"])
    assert [r.ep for r in result.eps] == ["nnapi", "xnnpack"]
    assert result.ok
    doc = result.to_dict()
    assert doc["model"] == str(model)
    assert doc["eps"][0]["verdict"] == result.eps[0].outcome.verdict == "yes"


def test_check_takes_the_cli_spelling_of_values_too(tmp_path):
    dyn = save(dynamic_cnn(), tmp_path / "dyn.onnx")
    a = ortprep.check(dyn, ep="nnapi", fix_dim=["N=1"], fix_input=["x=1,3,32,32"]).to_dict()
    b = ortprep.check(dyn, ep=["nnapi"], fix_dim={"N": 1}, fix_input={"x": (1, 3, 32, 32)})
    assert a == b.to_dict()
    assert a["eps"][0]["verdict"] == "yes"


def test_user_errors_raise_ortpreperror_with_a_hint(model, tmp_path):
    with pytest.raises(ortprep.OrtprepError) as e:
        ortprep.check(model, ep="nnapi", fix_dim={"N": 0})
    assert "--fix-dim" in e.value.message and e.value.hint
    with pytest.raises(ortprep.OrtprepError, match="unknown EP"):
        ortprep.check(model, ep="tpu")
    with pytest.raises(ortprep.OrtprepError, match="no such file"):
        ortprep.inspect(tmp_path / "missing.onnx")
    with pytest.raises(ortprep.OrtprepError, match="verdict must be yes or maybe"):
        ortprep.check(model, ep="nnapi", require={"nnapi": "no"})


def test_convert_inspect_verify_diff(model, tmp_path):
    out = tmp_path / "out"
    converted = ortprep.convert(model, out, style="runtime", no_verify=True)
    assert converted.ok
    ort_file = out / "cnn.with_runtime_opt.ort"
    assert ort_file.is_file()
    info = ortprep.inspect(ort_file)
    assert info.to_dict()["format"] == "ort"
    assert ortprep.verify(model, ort_file).ok
    changed = ortprep.diff(model, ort_file)
    assert changed.nodes_a >= changed.nodes_b and isinstance(changed.to_dict(), dict)


def test_convert_of_one_bad_file_raises(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ortprep.OrtprepError):
        ortprep.convert(bad, tmp_path / "out")


def test_optimize_bench_fix_shapes(model, tmp_path):
    optimized = ortprep.optimize(model, tmp_path / "opt", level="basic", no_verify=True)
    assert optimized.ok and (tmp_path / "opt" / "cnn.basic.optimized.onnx").is_file()
    report = ortprep.bench(model, runs=2, warmup=0)
    assert report.ok and report.results[0].runs == 2
    dyn = save(dynamic_cnn(), tmp_path / "dyn.onnx")
    fixed = ortprep.fix_shapes(dyn, tmp_path / "fixed.onnx", fix_dim={"N": 1, "H": 32, "W": 32})
    assert fixed.ok and not fixed.still_dynamic


def test_config_functions(model, tmp_path):
    built = ortprep.config_build(model, tmp_path / "a.config")
    assert built.ok
    merged = ortprep.config_merge([tmp_path / "a.config"], tmp_path / "m.config")
    assert Path(merged.output).is_file()
    assert ortprep.config_check(tmp_path / "m.config", model).ok
    command = ortprep.config_build_command(tmp_path / "m.config", "android", ep="nnapi")
    assert "--use_nnapi" in command.script()


def test_prepare_with_a_gate(model, tmp_path):
    result = ortprep.prepare(model, tmp_path / "out", require={"nnapi": "yes"})
    assert result.ok
    (m,) = result.models
    assert m.gate is not None and m.gate.ok
    assert result.to_dict()["models"][0]["gate"]["requirements"] == ["nnapi=yes"]


def test_optimize_takes_inputs_and_fix_dim_like_the_cli(tmp_path):
    import numpy as np

    from failing_models import reshape_to_input

    src = save(reshape_to_input(), tmp_path / "reshape.onnx")
    npz = tmp_path / "real.npz"
    np.savez(npz, x=np.ones((2, 3), np.float32), shape=np.array([3, 2]))
    result = ortprep.optimize(src, tmp_path / "out", level="basic", inputs=npz)
    assert result.ok and result.models[0].levels[0].verified is True
    dyn = save(dynamic_cnn(), tmp_path / "dyn.onnx")
    fixed = ortprep.optimize(
        dyn, tmp_path / "out2", level="basic", fix_dim={"N": 2, "H": 16, "W": 8}
    )
    assert fixed.to_dict()["levels"][0]["verification"]["inputs"][0]["shape"] == [2, 3, 16, 8]
    with pytest.raises(ortprep.OrtprepError, match="--fix-dim 'N=0'"):
        ortprep.optimize(dyn, tmp_path / "out3", fix_dim=["N=0"])
    with pytest.raises(ortprep.OrtprepError, match="no such inputs file"):
        ortprep.optimize(dyn, tmp_path / "out4", inputs=tmp_path / "missing.npz")
