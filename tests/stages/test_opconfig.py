"""opconfig: configs read and written as ORT does, built with ORT's processors, merged, checked."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from models import attention_block, conv_bn_relu, dynamic_cnn, if_subgraph, qdq_cnn, save
from ortprep.stages import opconfig as oc
from ortprep.stages.opconfig import ConfigError, OpConfig, OpEntry, OpTypes

FIXTURES = {
    "conv_bn_relu": conv_bn_relu,
    "qdq_cnn": qdq_cnn,
    "dynamic_cnn": dynamic_cnn,
    "if_subgraph": if_subgraph,
    "attention_block": attention_block,
}


# ------------------------------------------------------------------------------------ helpers


def types_zoo() -> onnx.ModelProto:
    """Ops whose types ORT tracks in unusual ways: OneHot triples, Gather input 1, Where input 1,
    ConstantOfShape output 0, Cast in and out."""
    nodes = [
        helper.make_node("Gather", ["x", "idx"], ["g"], axis=0, name="gather"),
        helper.make_node("Where", ["cond", "g", "x"], ["w"], name="where"),
        helper.make_node("OneHot", ["idx", "depth", "values"], ["oh"], axis=-1, name="onehot"),
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node(
            "ConstantOfShape",
            ["s"],
            ["z"],
            name="zeros",
            value=numpy_helper.from_array(np.array([1], np.int32)),
        ),
        helper.make_node("Cast", ["z"], ["zf"], to=TensorProto.FLOAT, name="to_float"),
        helper.make_node("Add", ["w", "zf"], ["y"], name="add"),
    ]
    graph = helper.make_graph(
        nodes,
        "types_zoo",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("idx", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, ["N", 3]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("oh", TensorProto.FLOAT, ["N", 4]),
        ],
        [
            numpy_helper.from_array(np.array(4, np.int64), "depth"),
            numpy_helper.from_array(np.array([0, 1], np.float32), "values"),
        ],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def cast_model(opset: int) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.INT64, name="cast")],
        "cast",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [2])],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7
    return m


def to_ort(src: Path, dst: Path, mode: str | None = None) -> Path:
    """An ORT-format file as ORT's converter makes it (arm target), by an ORT session."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.optimized_model_filepath = str(dst)
    so.add_session_config_entry("session.save_model_format", "ORT")
    so.add_session_config_entry("session.qdqisint8allowed", "1")
    if mode:
        so.add_session_config_entry("optimization.minimal_build_optimizations", mode)
    ort.InferenceSession(
        str(src), so, providers=["CPUExecutionProvider"], disabled_optimizers=["NchwcTransformer"]
    )
    return dst


def op_lines(text: str) -> list[str]:
    """A config's lines without comments and blank lines (comments name files, so differ)."""
    return [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def ort_reference_config(
    models_dir: Path, tmp: Path, style: str, type_reduction: bool, platform: str = "arm"
) -> str:
    """The config ORT's converter writes, run on a copy (it writes next to its input)."""
    src = tmp / "copy"
    shutil.copytree(models_dir, src)
    out = tmp / "ort_out"
    args = [
        sys.executable,
        "-m",
        "onnxruntime.tools.convert_onnx_models_to_ort",
        str(src),
        "--output_dir",
        str(out),
        "--optimization_style",
        style.capitalize(),
        "--target_platform",
        platform,
    ]
    if type_reduction:
        args.append("--enable_type_reduction")
    subprocess.run(args, check=True, capture_output=True)
    (config,) = out.glob("*.config")
    return config.read_text()


def needs_conversion() -> None:
    artifacts = pytest.importorskip("ortprep.stages.ort_artifacts")
    if not hasattr(artifacts, "ort_files_for_config"):
        pytest.skip("the conversion stage (ort_files_for_config) is not there yet")


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("onnx")
    for name, build in FIXTURES.items():
        save(build(), folder / f"{name}.onnx")
    return folder


@pytest.fixture(scope="module")
def ort_dir(tmp_path_factory, onnx_dir) -> Path:
    """Fixed-style .ort files of the fixture models plus the types zoo."""
    folder = tmp_path_factory.mktemp("ort")
    for src in sorted(onnx_dir.glob("*.onnx")):
        to_ort(src, folder / f"{src.stem}.ort")
    zoo = save(types_zoo(), tmp_path_factory.mktemp("zoo") / "types_zoo.onnx")
    to_ort(zoo, folder / "types_zoo.ort")
    return folder


@pytest.fixture(scope="module")
def ort_files(ort_dir) -> list[Path]:
    return sorted(ort_dir.glob("*.ort"))


@pytest.fixture(scope="module")
def typed_config(ort_files) -> OpConfig:
    return oc.config_from_ort_files(ort_files, type_reduction=True)


def ort_create_config(files: list[Path], out: Path, type_reduction: bool) -> str:
    from onnxruntime.tools.ort_format_model import create_config_from_models

    create_config_from_models(files, out, type_reduction)
    return out.read_text()


# -------------------------------------------------------------------------- reading, writing


@pytest.mark.parametrize("type_reduction", [False, True])
def test_config_from_ort_files_writes_what_orts_create_config_from_models_writes(
    ort_files, tmp_path, type_reduction
):
    reference = ort_create_config(ort_files, tmp_path / "ref.config", type_reduction)
    mine = oc.format_config(oc.config_from_ort_files(ort_files, type_reduction))
    assert op_lines(mine) == op_lines(reference)
    assert len(op_lines(reference)) >= 7


@pytest.mark.parametrize(
    ("style", "type_reduction"), [("fixed", False), ("fixed", True), ("runtime", True)]
)
def test_round_trip_of_a_config_written_by_orts_converter_is_exact(
    onnx_dir, tmp_path, style, type_reduction
):
    reference = ort_reference_config(onnx_dir, tmp_path, style, type_reduction)
    cfg = oc.parse_config(reference)
    written = oc.format_config(cfg)
    assert op_lines(written) == op_lines(reference)
    assert oc.parse_config(written) == cfg
    assert cfg.kind == ("ops-and-types" if type_reduction else "ops-only")
    assert cfg.comments[0].strip().startswith("Generated from model")


def test_parse_reads_the_ops_orts_own_parser_reads(typed_config, tmp_path):
    from onnxruntime.tools.reduced_build_config_parser import parse_config as ort_parse

    path = tmp_path / "c.config"
    path.write_text(oc.format_config(typed_config))
    required, type_filter = ort_parse(str(path), enable_type_reduction=True)
    mine = {d: {v: set(ops) for v, ops in by.items()} for d, by in typed_config.domains().items()}
    assert mine == required
    assert type_filter is not None


def test_hand_written_layout_is_accepted_and_normalized():
    text = (
        "# mine\n\n  ai.onnx;13,14;Relu , Add\n"
        'ai.onnx;13;Conv{"inputs": {"0": ["float"]}},Cast\n'
        "com.microsoft;1;FusedConv\n"
    )
    cfg = oc.parse_config(text)
    assert cfg.opsets_for("ai.onnx", "Add") == (13, 14)
    assert cfg.effective_types("ai.onnx", "Conv") == OpTypes(inputs=((0, ("float",)),))
    assert op_lines(oc.format_config(cfg)) == [
        'ai.onnx;13;Add,Cast,Conv{"inputs": {"0": ["float"]}},Relu',
        "ai.onnx;14;Add,Relu",
        "com.microsoft;1;FusedConv",
    ]


def test_directives_round_trip():
    text = "!globally_allowed_types;int64_t,float\n!no_ops_specified_means_all_ops_are_required\n"
    cfg = oc.parse_config(text)
    assert cfg.globally_allowed_types == ("float", "int64_t")
    assert cfg.requires_all_ops and cfg.kind == "ops-and-types"
    assert oc.parse_config(oc.format_config(cfg)) == cfg


def test_type_json_keeps_index_order_and_onehot_triples():
    t = OpTypes.from_json('{"inputs": {"10": ["b"], "2": ["a"]}, "custom": [["x", "y", "z"]]}')
    assert t.to_json() == '{"inputs": {"2": ["a"], "10": ["b"]}, "custom": [["x", "y", "z"]]}'
    assert OpTypes.from_json("{}").to_json() == "{}"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            'ai.onnx;13;Conv{"inputs": {"0": ["float"]}}\n'
            'ai.onnx;11;Conv{"inputs": {"0": ["double"]}}',
            "different type info",
        ),
        ('!globally_allowed_types;float\nai.onnx;13;Conv{"inputs": {"0": ["float"]}}', "together"),
        ("!globally_allowed_types;float16", "invalid globally allowed type"),
        ("!globally_allowed_types;float\n!globally_allowed_types;bool", "already specified"),
        ("!include_everything", "unknown directive"),
        ("ai.onnx;thirteen;Add", "must be integers"),
        ("ai.onnx;13", "expected DOMAIN;OPSETS;OPS"),
        ('ai.onnx;13;Conv{"inputs": {"0": ["float"]}', "mismatched"),
        ('ai.onnx;13;Conv{"inputs": [1]}', "must map index strings"),
        ("ai.onnx;13;Add,,Relu", "not an operator name"),
    ],
)
def test_bad_configs_are_refused_with_the_line(text, fragment):
    with pytest.raises(ConfigError) as info:
        oc.parse_config(text, "x.config")
    assert fragment in info.value.message


def test_config_file_names_follow_orts_converter():
    assert oc.config_file_name(False) == "required_operators.config"
    assert (
        oc.config_file_name(True, "runtime")
        == "required_operators_and_types.with_runtime_opt.config"
    )
    assert oc.config_file_name(False, "fixed", "det") == "det.required_operators.config"


# ------------------------------------------------------------------------------------- merge


def test_merge_of_per_model_configs_equals_the_config_of_all_models(ort_files, typed_config):
    per_model = [oc.config_from_ort_files([p], type_reduction=True) for p in ort_files]
    merged = oc.merge(per_model)
    assert merged == typed_config
    assert op_lines(oc.format_config(merged)) == op_lines(oc.format_config(typed_config))


def test_merge_is_a_normalized_union_in_any_order(ort_files):
    a = oc.config_from_ort_files(ort_files[:2], type_reduction=True)
    b = oc.config_from_ort_files(ort_files[2:], type_reduction=True)
    assert oc.merge([a, b]) == oc.merge([b, a])
    assert oc.merge([a, a]) == a
    union = {(e.domain, e.opset, e.op) for e in (*a.entries, *b.entries)}
    assert {(e.domain, e.opset, e.op) for e in oc.merge([a, b]).entries} == union


def test_merge_unions_types_and_an_untyped_op_keeps_all_types():
    a = oc.parse_config(
        'ai.onnx;13;Relu{"inputs": {"0": ["float"]}},Sigmoid{"inputs": {"0": ["float"]}}'
    )
    b = oc.parse_config('ai.onnx;14;Relu{"inputs": {"0": ["int8_t"]}}\nai.onnx;13;Sigmoid')
    merged = oc.merge([a, b])
    assert merged.effective_types("ai.onnx", "Relu") == OpTypes(inputs=((0, ("float", "int8_t")),))
    assert merged.effective_types("ai.onnx", "Sigmoid") is None
    assert op_lines(oc.format_config(merged)) == [
        'ai.onnx;13;Relu{"inputs": {"0": ["float", "int8_t"]}},Sigmoid',
        'ai.onnx;14;Relu{"inputs": {"0": ["float", "int8_t"]}}',
    ]


def test_merge_of_globally_allowed_types():
    a = oc.parse_config("!globally_allowed_types;float\nai.onnx;13;Relu")
    b = oc.parse_config("!globally_allowed_types;int8_t\nai.onnx;14;Add")
    assert oc.merge([a, b]).globally_allowed_types == ("float", "int8_t")
    untyped = oc.parse_config("ai.onnx;14;Add")
    assert oc.merge([a, untyped]).globally_allowed_types is None  # no restriction left
    with pytest.raises(ConfigError, match="cannot merge"):
        oc.merge([a, oc.parse_config('ai.onnx;13;Relu{"inputs": {"0": ["float"]}}')])


def test_merge_with_an_all_ops_config_keeps_all_ops():
    everything = oc.parse_config(oc.ALL_OPS_DIRECTIVE)
    assert oc.merge([oc.parse_config("ai.onnx;14;Add"), everything]).requires_all_ops


# ---------------------------------------------------------------------------------- coverage


def test_each_model_is_covered_by_the_config_of_all_of_them(ort_files, typed_config):
    result = oc.check_coverage(typed_config, ort_files)
    assert result.ok, [m.to_dict() for m in result.models if not m.ok]
    assert all(m.ops_checked > 0 for m in result.models)
    ops_only = oc.config_from_ort_files(ort_files, type_reduction=False)
    assert oc.check_coverage(ops_only, ort_files).ok


def test_check_names_a_removed_op(ort_dir, typed_config):
    result = oc.check_coverage(
        typed_config.without("ai.onnx", "Relu"),
        [ort_dir / "if_subgraph.ort", ort_dir / "dynamic_cnn.ort"],
    )
    assert not result.ok
    by_name = {Path(m.path).name: m for m in result.models}
    assert by_name["dynamic_cnn.ort"].ok  # its Relu was fused away
    (missing,) = by_name["if_subgraph.ort"].missing_ops
    assert (missing.domain, missing.op, missing.opset) == ("ai.onnx", "Relu", 14)
    assert "not in the config" in missing.reason


def test_check_catches_an_opset_beyond_the_configs(ort_dir):
    cfg = oc.parse_config("ai.onnx;13;Abs,Add,Mul,Relu,Sigmoid\nai.onnx;16;If")
    result = oc.check_coverage(cfg, [ort_dir / "if_subgraph.ort"])
    missing = {(m.op, m.opset): m for m in result.models[0].missing_ops}
    assert set(missing) == {("Add", 14), ("Mul", 14), ("Relu", 14)}
    assert missing[("Add", 14)].listed_opsets == (13,)
    assert "registered for opset 14 and later" in missing[("Add", 14)].reason
    # the model's own opset import (17) covers every op of it: the same registration range
    assert oc.check_coverage(
        oc.parse_config("ai.onnx;17;Abs,Add,Mul,Relu,Sigmoid,If"), [ort_dir / "if_subgraph.ort"]
    ).ok


def test_check_follows_kernel_registration_ranges_not_schema_versions(tmp_path):
    # Cast at opset 11 resolves to the schema of version 9; ORT's CPU kernel spans opsets 6-12.
    src = save(cast_model(11), tmp_path / "cast.onnx")
    ort_file = to_ort(src, tmp_path / "cast.ort")
    assert oc.check_coverage(oc.parse_config("ai.onnx;6;Cast"), [ort_file]).ok
    assert oc.check_coverage(oc.parse_config("ai.onnx;12;Cast"), [ort_file]).ok
    result = oc.check_coverage(oc.parse_config("ai.onnx;13;Cast"), [ort_file])
    (missing,) = result.models[0].missing_ops
    assert missing.opset == 9 and "opsets 6-12" in missing.reason


def test_check_catches_a_missing_type(ort_dir, typed_config):
    narrowed = OpConfig(
        tuple(
            OpEntry(e.domain, e.opset, e.op, OpTypes(inputs=((0, ("float",)),)))
            if e.op == "MaxPool"
            else e
            for e in typed_config.entries
        )
    )
    result = oc.check_coverage(narrowed, [ort_dir / "qdq_cnn.ort", ort_dir / "conv_bn_relu.ort"])
    by_name = {Path(m.path).name: m for m in result.models}
    assert by_name["conv_bn_relu.ort"].ok
    (gap,) = by_name["qdq_cnn.ort"].missing_types
    assert (gap.op, gap.kind, gap.index, gap.type) == ("MaxPool", "input", 0, "int8_t")
    assert gap.allowed == ("float",)


def test_check_catches_types_on_secondary_inputs_and_onehot_triples(ort_dir, typed_config):
    text = oc.format_config(typed_config)
    text = text.replace('"1": ["int64_t"]', '"1": ["int32_t"]')  # Gather's indices
    text = text.replace('[["int64_t", "float", "int64_t"]]', '[["int32_t", "float", "int64_t"]]')
    result = oc.check_coverage(oc.parse_config(text), [ort_dir / "types_zoo.ort"])
    gaps = {(g.op, g.kind, g.index, g.type) for g in result.models[0].missing_types}
    assert ("Gather", "input", 1, "int64_t") in gaps
    assert ("OneHot", "types", None, "int64_t/float/int64_t") in gaps


def test_globally_allowed_types_restrict_tracked_and_typed_ops(ort_dir, typed_config):
    ops = tuple(OpEntry(e.domain, e.opset, e.op) for e in typed_config.entries)
    wide = OpConfig(ops, ("bool", "float", "int32_t", "int64_t", "int8_t"))
    assert oc.check_coverage(wide, [ort_dir / "types_zoo.ort", ort_dir / "qdq_cnn.ort"]).ok
    narrow = OpConfig(ops, ("bool", "float"))
    result = oc.check_coverage(narrow, [ort_dir / "types_zoo.ort"])
    gaps = {(g.op, g.type) for g in result.models[0].missing_types}
    assert {("ConstantOfShape", "int32_t"), ("Gather", "int64_t"), ("Cast", "int32_t")} <= gaps


def test_ops_replayed_from_saved_runtime_optimizations_are_needed(onnx_dir, tmp_path):
    saved = to_ort(onnx_dir / "conv_bn_relu.onnx", tmp_path / "cnn.with_runtime_opt.ort", "save")
    applied = to_ort(onnx_dir / "conv_bn_relu.onnx", tmp_path / "cnn.apply.ort", "apply")
    graph_only = oc.config_from_ort_files([saved], type_reduction=True)
    result = oc.check_coverage(graph_only, [saved])
    missing = {(m.domain, m.op): m for m in result.models[0].missing_ops}
    assert ("com.microsoft", "FusedConv") in missing
    assert missing[("com.microsoft", "FusedConv")].replay
    both = oc.config_from_ort_files([saved, applied], type_reduction=True)
    assert oc.check_coverage(both, [saved]).ok


def test_all_ops_directive_covers_everything(ort_files):
    assert oc.check_coverage(oc.parse_config(oc.ALL_OPS_DIRECTIVE), ort_files).ok


def test_a_single_bad_model_raises_and_one_of_several_is_reported(ort_dir, tmp_path):
    from ortprep.core.errors import BadModelError

    bad = tmp_path / "bad.ort"
    bad.write_bytes(b"\x10\x00\x00\x00ORTM" + b"\x00" * 40)
    cfg = oc.parse_config("ai.onnx;14;Add")
    with pytest.raises(BadModelError):
        oc.check_coverage(cfg, [bad])
    result = oc.check_coverage(cfg, [bad, ort_dir / "dynamic_cnn.ort"])
    assert result.models[0].error and not result.ok


# ------------------------------------------------------------------- .onnx inputs (conversion)


@pytest.mark.parametrize(
    ("style", "type_reduction", "platform"),
    [
        ("fixed", False, "arm"),
        ("fixed", True, "amd64"),
        ("runtime", True, "arm"),
    ],
)
def test_build_from_onnx_equals_orts_converter(onnx_dir, tmp_path, style, type_reduction, platform):
    needs_conversion()
    reference = ort_reference_config(onnx_dir, tmp_path, style, type_reduction, platform)
    out = tmp_path / "mine.config"
    result = oc.run_build(
        [onnx_dir], out, type_reduction=type_reduction, style=style, target_platform=platform
    )
    assert result.ok
    assert op_lines(out.read_text()) == op_lines(reference)


def test_each_onnx_model_passes_its_folders_config_and_fails_without_one_op(onnx_dir, tmp_path):
    needs_conversion()
    cfg = oc.parse_config(ort_reference_config(onnx_dir, tmp_path, "fixed", True))
    models = sorted(onnx_dir.glob("*.onnx"))
    assert oc.check_coverage(cfg, models).ok
    result = oc.check_coverage(cfg.without("ai.onnx", "Softmax"), models)
    failed = {Path(m.path).name: [x.op for x in m.missing_ops] for m in result.models if not m.ok}
    assert failed == {"attention_block.onnx": ["Softmax"], "conv_bn_relu.onnx": ["Softmax"]}


def test_runtime_config_covers_runtime_style_conversions(onnx_dir, tmp_path):
    needs_conversion()
    out = tmp_path / "rt.config"
    oc.run_build([onnx_dir], out, type_reduction=True, style="runtime")
    cfg = oc.read_config(out)
    assert oc.check_coverage(cfg, sorted(onnx_dir.glob("*.onnx")), style="runtime").ok


# ---------------------------------------------------------------------------------- inspect


def test_inspect_config_counts_and_types(typed_config, tmp_path):
    path = tmp_path / "r.config"
    path.write_text(oc.format_config(typed_config))
    doc = oc.inspect_config(path).to_dict()
    assert doc["format"] == "config" and doc["kind"] == "ops-and-types"
    assert doc["counts"]["ops"] == len(typed_config.ops())
    maxpool = next(r for r in doc["ops"] if r["op"] == "MaxPool")
    assert maxpool["types"] == {"inputs": {"0": ["float", "int8_t"]}}
    assert doc["globally_allowed_types"] is None


# ----------------------------------------------------------------------------- build command

OPS_ONLY = oc.parse_config("ai.onnx;13;Conv,Relu\nai.onnx;14;Add")
TYPED = oc.parse_config(
    'ai.onnx;13;Conv{"inputs": {"0": ["float"]}},Relu\ncom.microsoft;1;FusedConv'
)


def _flags(cmd: oc.BuildCommand) -> dict[str, tuple[str, ...]]:
    return {f.flag: f.values for f in cmd.flags}


@pytest.mark.parametrize("target", oc.TARGETS)
def test_build_command_for_each_target(target):
    cmd = oc.build_command(OPS_ONLY, target, config_path="ops.config")
    flags = _flags(cmd)
    assert cmd.build == "minimal" and flags["--minimal_build"] == ()
    assert flags["--include_ops_by_config"] == ("ops.config",)
    assert flags["--config"] == ("MinSizeRel",)
    for size_flag in (
        "--disable_ml_ops",
        "--disable_exceptions",
        "--disable_rtti",
        "--disable_contrib_ops",
        "--skip_tests",
    ):
        assert size_flag in flags
    assert "--enable_reduced_operator_type_support" not in flags
    expected = {
        "android": "--android",
        "ios": "--ios",
        "linux-arm": "--build_shared_lib",
        "linux-x86": "--build_shared_lib",
    }[target]
    assert expected in flags
    if target == "android":
        assert flags["--android_abi"] == ("arm64-v8a",)
        assert {"--android_sdk_path", "--android_ndk_path", "--android_api"} <= set(flags)
    if target == "ios":
        assert {"--use_xcode", "--apple_deploy_target", "--build_apple_framework"} <= set(flags)
    assert all(f.why for f in cmd.flags)
    script = cmd.script()
    assert "python3 tools/ci_build/build.py" in script
    assert script.rstrip().endswith(cmd.flags[-1].flag)
    for f in cmd.flags:
        assert f.flag in script
    # the command line parses back into the argv (placeholders aside)
    assert shlex.split(cmd.command.replace("\\\n", " "))[2:] == [t.strip('"') for t in cmd.argv[2:]]


@pytest.mark.parametrize(
    ("target", "eps", "replay", "extended", "driver"),
    [
        ("android", ["nnapi"], False, False, "NNAPI"),
        ("ios", ["coreml"], False, False, "CoreML"),
        ("linux-arm", ["xnnpack"], False, False, "XNNPACK"),
        ("linux-x86", [], True, False, "replay"),
        ("android", [], False, True, "--extended"),
    ],
)
def test_build_command_picks_extended_minimal_and_says_why(target, eps, replay, extended, driver):
    cmd = oc.build_command(TYPED, target, eps, replay, extended)
    assert cmd.build == "extended-minimal"
    assert _flags(cmd)["--minimal_build"] == ("extended",)
    assert driver in " ".join(cmd.build_reasons) + _flags_why(cmd, "--minimal_build")
    assert "--enable_reduced_operator_type_support" in _flags(cmd)
    assert "--disable_contrib_ops" not in _flags(cmd)  # FusedConv is a contrib op


def _flags_why(cmd: oc.BuildCommand, flag: str) -> str:
    return next(f.why for f in cmd.flags if f.flag == flag)


def test_build_command_ep_flags_and_validation():
    cmd = oc.build_command(OPS_ONLY, "android", ["nnapi,xnnpack"])
    flags = _flags(cmd)
    assert "--use_nnapi" in flags and "--use_xnnpack" in flags
    assert "--disable_contrib_ops" not in flags  # XNNPACK needs contrib ops
    assert "--use_coreml" in _flags(oc.build_command(OPS_ONLY, "ios", ["coreml-mlprogram"]))
    from ortprep.core.errors import UsageError

    with pytest.raises(UsageError, match="not available"):
        oc.build_command(OPS_ONLY, "android", ["coreml"])
    with pytest.raises(UsageError):
        oc.build_command(OPS_ONLY, "windows")


def test_build_command_keeps_ml_ops_when_the_config_lists_them():
    cfg = oc.parse_config("ai.onnx.ml;1;TreeEnsembleClassifier\nai.onnx;13;Relu")
    assert "--disable_ml_ops" not in _flags(oc.build_command(cfg, "linux-x86"))


def test_public_api_is_honest():
    for name in oc.__all__:
        assert hasattr(oc, name), name
