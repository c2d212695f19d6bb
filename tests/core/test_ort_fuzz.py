"""Fuzzing the .ort reader: corrupt or truncated files give a model or BadModelError, quickly.

Real files written by ORT are mutated (bytes flipped, 16/32-bit words overwritten with small or
huge values, prefixes cut, ranges deleted). Each case must either open or raise BadModelError,
never another exception, within two seconds; an opened model is walked completely, tensor values
included, so the lazy paths are fuzzed too.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import if_subgraph
from ortprep.core.errors import BadModelError
from ortprep.core.graph import Initializer, Model
from ortprep.core.ort import parse_ort_bytes

from .test_ort_file import kitchen_sink, tiny_conv_relu, tiny_qdq_conv, to_ort

PATH = Path("fuzzed.ort")
CASE_SECONDS = 2.0
FUZZ = settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> list[bytes]:
    """Small real files covering records, subgraphs, strings, sequences and every attribute kind."""
    folder = tmp_path_factory.mktemp("fuzz")
    files = [
        to_ort(tiny_conv_relu(), folder / "conv_relu.ort", "runtime"),
        to_ort(tiny_qdq_conv(), folder / "qdq.ort", "runtime"),
        to_ort(if_subgraph(), folder / "if.ort", "runtime"),
        to_ort(kitchen_sink(), folder / "sink.ort", "fixed"),
    ]
    return [f.read_bytes() for f in files]


@pytest.fixture(scope="module")
def tensor_fields(seeds) -> list[list[tuple[int, str]]]:
    """Per seed: (position, struct format) of every tensor's data type, dims and data length."""
    return [_tensor_fields(data) for data in seeds]


def _tensor_fields(data: bytes) -> list[tuple[int, str]]:
    import onnxruntime.tools.ort_format_model  # noqa: F401  (puts ort_flatbuffers_py on sys.path)
    import ort_flatbuffers_py.fbs as fbs

    graphs = [fbs.InferenceSession.InferenceSession.GetRootAs(data, 0).Model().Graph()]
    tensors = []
    while graphs:
        graph = graphs.pop()
        tensors += [graph.Initializers(i) for i in range(graph.InitializersLength())]
        for node in (graph.Nodes(i) for i in range(graph.NodesLength())):
            for attr in (node.Attributes(j) for j in range(node.AttributesLength())):
                tensors += [attr.T()] if attr.T() is not None else []
                graphs += [attr.G()] if attr.G() is not None else []
    fields = []
    for t in tensors:
        tab = t._tab  # Tensor slots (ort.fbs): 8 dims, 10 data_type, 12 raw_data, 14 string_data
        if offset := tab.Offset(10):
            fields.append((tab.Pos + offset, "<i"))
        if offset := tab.Offset(8):
            fields += [(tab.Vector(offset) + 8 * k, "<q") for k in range(t.DimsLength())]
        for slot in (12, 14):
            if offset := tab.Offset(slot):
                fields.append((tab.Vector(offset) - 4, "<I"))
    assert fields
    return fields


def walk(model: Model) -> None:
    """Touch everything the view offers, reading every tensor's values."""
    graphs = [model.graph]
    for _, node in model.all_nodes():
        assert node.name and isinstance(node.index, int)
        _ = (node.op_id, node.inputs, node.outputs, node.implicit_inputs, node.since_version)
        for value in node.attributes.values():
            for item in value if isinstance(value, tuple) else (value,):
                if isinstance(item, Initializer):
                    read_values(item)
        graphs.extend(node.subgraphs.values())
    for graph in graphs:
        for init in graph.initializers.values():
            read_values(init)
        for value in (*graph.inputs, *graph.outputs, *graph.values.values()):
            value.to_dict()
        _ = (graph.producers, graph.consumers, graph.runtime_inputs)
    assert model.ort is not None
    for records in model.ort.runtime_optimizations.values():
        for record in records:
            _ = (record.action_id, record.node_indices, record.produced_op_ids)
    for args in model.ort.kernel_type_str_resolver.values():
        for pairs in args.values():
            assert all(isinstance(i, bool) and isinstance(j, int) for i, j in pairs)


def read_values(init: Initializer) -> None:
    try:
        array = init.numpy()
    except BadModelError:
        return
    assert array.shape == init.dims


def check(data: bytes) -> None:
    """The property: a model (walked) or BadModelError, and nothing slow."""
    start = time.perf_counter()
    try:
        model = parse_ort_bytes(data, PATH)
    except BadModelError as exc:
        assert str(PATH) in exc.message
    else:
        walk(model)
    assert time.perf_counter() - start < CASE_SECONDS


def test_seeds_open_and_walk(seeds):
    for data in seeds:
        walk(parse_ort_bytes(data, PATH))


def test_every_prefix_of_a_file_is_refused_or_opens(seeds):
    data = seeds[0]
    for cut in range(len(data)):
        check(data[:cut])


SEED = st.integers(0, 3)
POSITION = st.integers(0, 2**32 - 1)  # taken modulo the file size: wide, so spread evenly
INTERESTING = st.sampled_from(
    [0, 1, 2, 3, 4, 7, 8, 0x7F, 0xFF, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
     0xFFFFFFFC, 0xFFFFFFFF]
)  # fmt: skip


@FUZZ
@given(seed=SEED, flips=st.lists(st.tuples(POSITION, st.integers(1, 255)), min_size=1, max_size=4))
def test_flipped_bytes(seeds, seed, flips):
    data = bytearray(seeds[seed])
    for pos, mask in flips:
        data[pos % len(data)] ^= mask
    check(bytes(data))


@FUZZ
@given(
    seed=SEED,
    writes=st.lists(
        st.tuples(
            POSITION,
            st.booleans(),  # aligned: where offsets and lengths live
            st.sampled_from([2, 4]),  # vtable entries are 16-bit, offsets and lengths 32-bit
            st.one_of(INTERESTING, st.integers(0, 2**32 - 1), st.just(-1)),  # -1: file size
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_overwritten_words(seeds, seed, writes):
    data = bytearray(seeds[seed])
    for pos, aligned, width, value in writes:
        at = pos % (len(data) - width + 1)
        if aligned:
            at -= at % width
        word = len(data) if value < 0 else value
        struct.pack_into("<H" if width == 2 else "<I", data, at, word % (1 << (8 * width)))
    check(bytes(data))


@FUZZ
@given(
    seed=SEED,
    start=POSITION,
    length=st.integers(1, 64),
    cut=st.one_of(st.none(), POSITION),
    flip=st.one_of(st.none(), st.tuples(POSITION, st.integers(1, 255))),
)
def test_truncated_or_shortened(seeds, seed, start, length, cut, flip):
    data = bytearray(seeds[seed])
    if cut is not None:  # keep a prefix
        del data[cut % len(data) :]
    else:  # remove a range inside: everything after it shifts
        at = start % len(data)
        del data[at : at + length]
    if flip is not None and data:
        data[flip[0] % len(data)] ^= flip[1]
    check(bytes(data))


@settings(max_examples=500, deadline=None)
@given(
    seed=SEED,
    writes=st.lists(
        st.tuples(
            st.integers(0, 2**16),
            st.one_of(st.integers(-3, 30), st.integers(-(2**63), 2**63 - 1)),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_corrupt_tensor_fields(seeds, tensor_fields, seed, writes):
    """Data types, dims and data lengths of tensors: where :meth:`Initializer.numpy` looks."""
    data = bytearray(seeds[seed])
    fields = tensor_fields[seed]
    for index, value in writes:
        at, fmt = fields[index % len(fields)]
        bits = 8 * struct.calcsize(fmt)
        value %= 1 << bits  # two's complement for the signed formats
        if fmt != "<I" and value >= 1 << (bits - 1):
            value -= 1 << bits
        struct.pack_into(fmt, data, at, value)
    check(bytes(data))


# --------------------------------------------------------------------------- commands on mutants
# The reader refusing or opening a mutant is not the end: a mutant that passes the verifier can
# hold values the commands trust (a missing attribute, an id that is not a number). Every command
# that reads .ort files must end in 0, 1 or 2 on them, never 3.

MUTANTS_PER_SEED = 8  # 32 mutants, most of which open: a few seconds per command


def _mutants(seeds: list[bytes]) -> list[tuple[str, bytes]]:
    """Seeded mutants of every seed, mostly ones the reader opens (those reach the commands)."""
    import random

    rng = random.Random(13)
    found: list[tuple[str, bytes]] = []
    for s, seed in enumerate(seeds):
        kept = refused = 0
        for attempt_ in range(400):
            data = bytearray(seed)
            for _ in range(rng.randint(1, 3)):
                at = rng.randrange(len(data) - 4)
                if rng.random() < 0.5:
                    data[at] ^= 1 << rng.randrange(8)
                else:
                    at -= at % 4
                    struct.pack_into("<I", data, at, rng.choice([0, 1, 2, 0xFFFF, 0x7FFFFFFF]))
            try:
                parse_ort_bytes(bytes(data), PATH)
            except BadModelError:
                if refused >= 2:
                    continue
                refused += 1
            else:
                if kept >= MUTANTS_PER_SEED - 2:
                    continue
                kept += 1
            found.append((f"seed{s}_{attempt_}", bytes(data)))
            if kept + refused >= MUTANTS_PER_SEED:
                break
    return found


@pytest.fixture(scope="module")
def mutant_folder(seeds, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mutants")
    for name, data in _mutants(seeds):
        (folder / f"{name}.ort").write_bytes(data)
    return folder


def _commands(model: Path, config: Path, good: Path, out: Path) -> dict[str, tuple[object, ...]]:
    return {
        "inspect": ("inspect", model),
        "check": ("check", model, "--ep", "all"),
        "diff": ("diff", good, model),
        "config build": ("config", "build", model, "-o", out / "x.config"),
        "config check": ("config", "check", "--config", config, model),
    }


@pytest.mark.parametrize("command", ["inspect", "check", "diff", "config build", "config check"])
def test_no_command_fails_internally_on_a_mutant(cli, seeds, mutant_folder, tmp_path, command):
    good = tmp_path / "good.ort"
    good.write_bytes(seeds[0])
    config = tmp_path / "all.config"
    assert cli("config", "build", *[tmp_path / "good.ort"], "-o", config).code == 0
    bugs = []
    for model in sorted(mutant_folder.glob("*.ort")):
        r = cli(*_commands(model, config, good, tmp_path / model.stem)[command])
        if r.code not in (0, 1, 2) or "Traceback" in r.stderr or "internal error" in r.stderr:
            bugs.append(f"{model.name}: exit {r.code}: {r.stderr.strip()[:300]}")
    assert not bugs, "\n".join(bugs)


@pytest.mark.parametrize(
    "replacement", [b"com.microsoft:FusedConv:x", b"com.microsoft-FusedConv-1"]
)
@pytest.mark.parametrize("command", ["config build", "config check"])
def test_a_produced_op_id_that_is_not_an_id_is_a_bad_model(
    cli, seeds, tmp_path, replacement, command
):
    """The verifier checks the flatbuffer's structure, not the text of a record's produced op
    (``DOMAIN:OP:VERSION``): a same-length edit keeps the file valid and the id meaningless."""
    data = seeds[0]
    assert data.count(b"com.microsoft:FusedConv:1") == 1
    bad = tmp_path / "bad.ort"
    bad.write_bytes(data.replace(b"com.microsoft:FusedConv:1", replacement))
    good = tmp_path / "good.ort"
    good.write_bytes(data)
    config = tmp_path / "good.config"
    assert cli("config", "build", good, "-o", config).code == 0
    args = {
        "config build": ("config", "build", bad, "-o", tmp_path / "x.config"),
        "config check": ("config", "check", "--config", config, bad),
    }[command]
    r = cli(*args)
    assert r.code == 2, r.stderr
    assert "DOMAIN:OP:VERSION" in r.stderr and "Traceback" not in r.stderr


def test_an_attribute_of_unknown_kind_reads_as_absent(cli, tmp_path):
    """Flatten's ``axis`` with its kind overwritten (the verifier accepts any int): the rules see
    no value, as if the attribute were absent (it was ``int(None)`` in the NNAPI rules)."""
    import onnxruntime.tools.ort_format_model  # noqa: F401  (puts ort_flatbuffers_py on sys.path)
    import ort_flatbuffers_py.fbs as fbs
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["y"], name="flatten", axis=2)],
        "flatten",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 12])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = to_ort(model, tmp_path / "flatten.ort")
    data = bytearray(path.read_bytes())
    g = fbs.InferenceSession.InferenceSession.GetRootAs(bytes(data), 0).Model().Graph()
    node = next(g.Nodes(i) for i in range(g.NodesLength()) if g.Nodes(i).OpType() == b"Flatten")
    attr = next(node.Attributes(j) for j in range(node.AttributesLength()))
    at = attr._tab.Pos + attr._tab.Offset(8)  # Attribute (ort.fbs): name 4, doc_string 6, type 8
    struct.pack_into("<i", data, at, 99)
    path.write_bytes(bytes(data))
    assert "axis" not in parse_ort_bytes(bytes(data), PATH).graph.nodes[0].attributes
    for args in (("check", path, "--ep", "all"), ("inspect", path)):
        r = cli(*args)
        assert r.code in (0, 1, 2) and "internal error" not in r.stderr, r.stderr
