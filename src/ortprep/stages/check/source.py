"""The graphs ``check`` analyses, from one call: :func:`graph_views`.

For an ``.onnx`` model that is the graph after the basic (level 1) optimizations ORT applies
before it assigns nodes to EPs, obtained from ORT itself in its child process
(:mod:`ortprep.core.ort_child`), with shapes inferred; with dynamic input shapes, also the same
graph with every dynamic dim fixed (the what-if). For an ``.ort`` file it is the graph stored in
the file (ORT does not re-run level 1 on ORT-format models, ort-internals §2.6).

No weight is read in this process, nor copied by ORT: ORT reads a lean copy of the user's file
(its big inline tensors are references into the file, :mod:`ortprep.core.lean_onnx`) and its
compile API saves a graph that points where the source does. Dims are fixed by ORT's
free-dimension overrides (the what-if's, and ``--fix-dim``), or, for dims without a name and
``--fix-input``, in a copy of the lean proto (``fix-shapes``'s edit, weights still in the file).

All the scheduling is here. ORT starts on the user's file at once and the model is validated
while it works (validation errors, exit 2, win: ORT's job is then cancelled). The what-if runs
beside the first job when the model's proto (weights left out) is small and the user fixed
nothing, otherwise after it.
ORT's child infers the saved graph's shapes (while this process reads the nodes) when the model
has many nodes (:attr:`OrtGraphOptions.child_infers_from`), otherwise this process infers them
after ORT is done: a rule on the model alone, so the same model always takes the same path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ortprep.core.errors import BadModelError, UsageError
from ortprep.core.graph import Model, ValueType
from ortprep.core.memory import can_release
from ortprep.core.ort_child import Job, OrtChild
from ortprep.core.progress import ProgressFn, no_progress
from ortprep.core.runtime import SessionRecipe
from ortprep.eps.registry import ep_spec
from ortprep.stages.check.results import CheckOptions, OrtGraphOptions

if TYPE_CHECKING:
    from ortprep.stages.fix_values import FixValues

Fixes = tuple[dict[str, int], dict[str, tuple[int, ...]]]
"""Dims fixed by name, and inputs fixed by name to a whole shape."""

# Below this size the what-if runs beside the first job (two of ORT's graphs in memory at once).
_PARALLEL_WHAT_IF_BYTES = 256 << 20


@dataclass(frozen=True)
class GraphViews:
    """What the EPs analyse, and what the result says about it."""

    model: Model
    """The graph the EPs see (ORT's level-1 graph of an ``.onnx``; an ``.ort`` file's own)."""
    what_if: Model | None
    """The same with every dynamic input dim fixed (None without dynamic inputs or what-if)."""
    inputs: tuple[ValueType, ...]
    """The model's runtime inputs, as its file declares them."""
    analyzed: str
    """``basic-optimized`` or ``ort-file``."""
    assumed: Mapping[str, int]
    """The what-if's values for named dims."""
    fix_command: str | None
    """The ``ortprep fix-shapes`` command that makes the what-if real."""
    level1: Path | None = None
    """ORT's saved level-1 ``.onnx`` that :attr:`model` views (in the workdir; None for an
    ``.ort`` file): the exact graph, node for node, that overlays and annotated copies key into."""
    what_if_refused: str | None = None
    """ORT's reason when it refused the model with the what-if's dims fixed (a model may need
    sizes no guess gives, e.g. a text recognizer's height of 48): the what-if is then absent
    and no fix command is suggested; the model's own answers stand."""
    fix_guesses: str = ""
    """Which values of :attr:`fix_command` are guesses and how to pass one's own (one line,
    stages/fix_values.py ``FixValues.guess_note``); "" when none is."""


def graph_views(
    path: Path, options: CheckOptions, workdir: Path, progress: ProgressFn = no_progress
) -> GraphViews:
    """The views of ``path`` the EPs analyse; ORT's files go to ``workdir``, which must outlive
    the views (a graph saved with external initializers reads them from there)."""
    from ortprep.core.inputs import file_kind, open_model

    if not path.is_file():
        open_model(path)  # the loader's clear message for a missing path or a folder
    progress("basic optimizations (ORT)", 0, 1)
    if file_kind(path) == "onnx":
        views = _onnx_views(path, options, workdir)
    else:
        if options.fix_dims or options.fix_inputs:
            raise UsageError(
                "--fix-dim/--fix-input apply to .onnx models",
                "fix the shapes of the .onnx, then convert it again",
            )
        model = open_model(path)
        inputs = tuple(model.graph.runtime_inputs)
        views = GraphViews(model, None, inputs, "ort-file", {}, None)
    progress("basic optimizations (ORT)", 1, 1)
    return views


class _Source(NamedTuple):
    """The user's ``.onnx`` as ORT's jobs read it."""

    path: Path
    """The user's file."""
    model: Path
    """What ORT reads: the file, or a copy in the work folder (a lean copy whose big inline
    tensors point into the file, or a copy with shapes fixed)."""
    folder: Path | None
    """For a copy: the folder its external references are relative to (the user's)."""
    nbytes: int
    """Bytes of the proto ORT parses (weights left in the file not counted)."""


class _Facts(NamedTuple):
    """What validating the user's file tells the scheduling."""

    inputs: tuple[ValueType, ...]
    nodes: int  # nodes of the main graph
    proto: Any  # the validated onnx.ModelProto, lean (for a copy with shapes fixed)
    external_names: dict[str, str]  # the user's external data file of each tensor, by name


def _lean_source(path: Path, workdir: Path) -> tuple[_Source, Any] | None:
    """The source ORT reads, from a lean scan of ``path`` (:mod:`ortprep.core.lean_onnx`), and
    the scan (None for a small file, read whole); None when the scan cannot read the file
    (validation then says why)."""
    from ortprep.core.onnx_file import scan_lean, worth_scanning

    if not worth_scanning(path):
        return _Source(path, path, None, path.stat().st_size), None
    scanned = scan_lean(path)
    if scanned is None:
        return None
    if not scanned.tensors:
        return _Source(path, path, None, len(scanned.data)), scanned
    copy = workdir / f"{path.stem}.lean.onnx"
    copy.write_bytes(scanned.data)
    return _Source(path, copy, path.parent, len(scanned.data)), scanned


def _validate(path: Path, scanned: Any) -> _Facts:
    from ortprep.core.onnx_file import external_tensor_files, load_lean
    from ortprep.core.onnx_view import runtime_input_types

    proto, files, scanned = load_lean(path, scanned)
    own = path.name if scanned is not None and scanned.tensors else None
    return _Facts(
        tuple(runtime_input_types(proto)),
        len(proto.graph.node),
        proto,
        external_tensor_files(proto, own) if files else {},  # one more walk, only if needed
    )


def _onnx_views(path: Path, options: CheckOptions, workdir: Path) -> GraphViews:
    user_fixes: Fixes = (dict(options.fix_dims), dict(options.fix_inputs))
    user_fixed = bool(options.fix_dims or options.fix_inputs)
    what_if: Fixes | None = None
    values: FixValues | None = None
    lean = _lean_source(path, workdir)
    source = lean[0] if lean is not None else None
    with _jobs(workdir, options.ort) as start:
        # ORT starts on the (lean) file at once, named dims fixed by its free-dimension
        # overrides, and the model is validated meanwhile (ORT itself refuses external data
        # outside the model's folder). A whole input shape to fix (--fix-input) or a file the
        # scan cannot read waits for validation.
        main = None
        if source is not None and not options.fix_inputs:
            main = start(source, user_fixes[0])
        facts = _validate(path, lean[1] if lean is not None else None)
        if source is None:
            source = _Source(path, path, None, path.stat().st_size)
        if options.fix_dims:  # ORT ignores a free dimension no input has: say so here
            from ortprep.stages.fix_shapes import check_fix_dims

            check_fix_dims(options.fix_dims, facts.inputs)

        def start_fixed(fixes: Fixes) -> _Level1:
            """ORT's level-1 graph with these fixes: named dims through ORT's free-dimension
            overrides; dims without a name or whole input shapes through a copy of the lean
            proto with the shapes fixed (no weight read)."""
            dims, inputs = fixes
            if not inputs:
                return start(source, dims)
            return start(_fixed_copy(source, facts.proto, fixes, workdir), {})

        if main is None:
            main = start_fixed(user_fixes)
        child_infers = facts.nodes >= options.ort.child_infers_from
        main.decide(child_infers)
        # Without the user's fixes the inputs ORT keeps are the source's, so the what-if runs
        # beside the first job, on another core; both at once only for models whose proto
        # (weights left in the file) is small enough to hold two of ORT's graphs.
        small = source.nbytes < _PARALLEL_WHAT_IF_BYTES
        beside = options.what_if and small and not user_fixed
        second = None
        if beside and any(v.dynamic for v in facts.inputs):
            values = what_if_values(facts.inputs, path)
            what_if = values.fixes
            second = start_fixed(what_if)
            second.decide(child_infers)
        for ep in options.eps:  # load the rules while ORT works in its process
            ep_spec(ep)
        model = main.model(facts.external_names)
        dynamic = any(v.dynamic for v in model.graph.runtime_inputs)
        if options.what_if and not beside and dynamic:
            values = what_if_values(model.graph.runtime_inputs, path)
            what_if = values.fixes
            second = start_fixed(_with_user_fixes(options, what_if))
            second.decide(child_infers)
        fixed_model, refused = _what_if_model(second, facts.external_names)
    assumed: dict[str, int] = {}
    fix_command = None
    guesses = ""
    if what_if is not None:
        assumed = dict(what_if[0])
        if refused is None:
            fix_command = fix_shapes_command(path, *_with_user_fixes(options, what_if))
    if values is not None and fix_command is not None:
        guesses = values.guess_note([*options.fix_dims, *options.fix_inputs])
    return GraphViews(
        model,
        fixed_model,
        facts.inputs,
        "basic-optimized",
        assumed,
        fix_command,
        main.target,
        refused,
        fix_guesses=guesses,
    )


def _what_if_model(
    job: _Level1 | None, external_names: Mapping[str, str]
) -> tuple[Model | None, str | None]:
    """The what-if's view, or ORT's reason for refusing the model with those dims fixed: that is
    a fact about the guessed sizes, not about the model, so it never fails the check."""
    if job is None:
        return None, None
    try:
        return job.model(external_names), None
    except BadModelError as exc:
        return None, exc.message.removeprefix(f"{job.path}: ")


def _fixed_copy(source: _Source, proto: Any, fixes: Fixes, workdir: Path) -> _Source:
    """A copy of the validated (lean) proto with the shapes fixed as ``fix-shapes`` fixes them,
    in the work folder; its weights stay in the user's files."""
    from ortprep.stages.fix_shapes import FixShapesOptions, fixed_proto

    data = fixed_proto(proto, FixShapesOptions(*fixes)).SerializeToString()
    copy = workdir / f"{source.path.stem}.fixed{len(list(workdir.glob('*.fixed*')))}.onnx"
    copy.write_bytes(data)
    return _Source(source.path, copy, source.path.parent, len(data))


# --------------------------------------------------------------------------- ORT's jobs


def _read_saved(file: Path) -> Any:
    """A file ORT saved, as a proto, without the bytes of its big inline tensors (they stay
    references into the file: a session's save of a model keeps some weights inline)."""
    import onnx

    from ortprep.core.onnx_file import scan_lean

    scanned = scan_lean(file)
    if scanned is None:
        return onnx.load(str(file), load_external_data=False)
    return onnx.ModelProto.FromString(scanned.data)


class _Level1:
    """ORT saving the level-1 graph of a source in its child; :meth:`model` reads the result."""

    def __init__(self, source: _Source, target: Path, data_name: str, job: Job) -> None:
        self.source = source
        self.path = source.path
        self.target = target
        self.data_name = data_name  # the data file ORT writes beside target (a session's save)
        self.child = OrtChild.start(job)
        self.child_infers = False

    def decide(self, child_infers: bool) -> None:
        """Tell the child whether it infers the shapes (where it can: see :func:`_jobs`)."""
        if self.child.job.infer_to is None:
            return
        self.child_infers = child_infers
        if child_infers:
            self.child.infer()
        else:
            self.child.skip()

    def cancel(self) -> None:
        self.child.cancel()

    def model(self, external_names: Mapping[str, str]) -> Model:
        """Wait for ORT, then read its graph with shapes inferred into the view the EPs judge
        (``external_names``: the user's external data file of each tensor, by name).

        Shapes are inferred file to file, inside onnx's C++ (no second copy of a big graph in
        Python): by the child while this process reads the nodes, or here after ORT is done.
        """
        view = self._view(external_names)  # the saved graph's view, named as the user's file
        return dataclasses.replace(view, path=self.path, size_bytes=self.path.stat().st_size)

    def _view(self, external_names: Mapping[str, str]) -> Model:
        import onnx

        from ortprep.core.onnx_view import DataPlaces, model_view, with_value_types

        target = self.target
        inferred = target.with_name(f"{self.path.stem}.basic.inferred.onnx")
        # ORT's save keeps the source's references (the compile API, kept_weight_files), or
        # writes its own data file (a session); a lean read leaves inline bytes in the file read.
        work = target.parent
        places = DataPlaces(
            self.path.parent,
            inline={self.path.name: self.path.parent, target.name: work, inferred.name: work},
            rewritten={self.data_name: work},
            external_names=external_names,
        )

        files = tuple(dict.fromkeys(external_names.values()))  # the user's, as validated

        def view(file: Path, value_info: bool = True) -> Model:
            return model_view(_read_saved(file), target, files, value_info, places)

        if not self.child_infers:
            self.child.wait()  # BadModelError with ORT's reason when it refused the model
            try:
                onnx.shape_inference.infer_shapes_path(
                    str(target), str(inferred), strict_mode=False
                )
            except Exception:  # noqa: BLE001 -- keep ORT's value_info when onnx cannot infer
                inferred = target
            return view(inferred)
        self.child.saved()  # raises as wait() when ORT refused the model
        untyped = view(target, value_info=False)
        self.child.wait()
        if not inferred.exists():  # onnx could not infer: ORT's own value info
            return view(target)
        if any(n.subgraphs for n in untyped.graph.nodes):  # subgraphs carry their own types
            return view(inferred)
        typed = with_value_types(untyped.graph, _read_saved(inferred).graph)
        return dataclasses.replace(untyped, graph=typed)


@contextmanager
def _jobs(
    workdir: Path, ort: OrtGraphOptions
) -> Iterator[Callable[[_Source, Mapping[str, int]], _Level1]]:
    """A function starting ORT's level-1 save of a source with named dims fixed; every job
    started is cancelled on the way out (a no-op for finished ones; ends ORT when something
    failed)."""
    started: list[_Level1] = []

    def start(source: _Source, free_dims: Mapping[str, int]) -> _Level1:
        folder = workdir / f"job{len(started)}"
        folder.mkdir()
        job = _start(source, folder, {**ort.free_dims, **free_dims}, ort)
        started.append(job)
        return job

    try:
        yield start
    finally:
        for job in started:
            job.cancel()


def _start(
    source: _Source, workdir: Path, free_dims: Mapping[str, int], ort: OrtGraphOptions
) -> _Level1:
    """Start ORT on the graph it hands to EPs: ``source`` with ORT's free-dimension overrides
    and the level-1 optimizations, saved to ``workdir``."""
    from ortprep.core.ort_child import EXTERNAL_FOLDER

    stem = source.path.stem
    target = workdir / f"{stem}.basic.onnx"
    data_name = f"{stem}.ortprep-basic.data"
    extra = dict(ort.config)
    # Through the compile API no weight is written: the saved graph points where the source
    # does. A session writes the weights to its own data file (the view maps them back to the
    # user's files, or to inline, by name: DataPlaces), so the saved graph stays small.
    extra["session.optimized_model_external_initializers_file_name"] = data_name
    if source.folder is not None:
        extra[EXTERNAL_FOLDER] = str(source.folder)
    recipe = SessionRecipe(
        level="basic",
        save_to=target,
        save_format="ONNX",
        free_dims=dict(free_dims) or None,
        extra=extra,
        threads=1,
        compile_only=ort.compile_only,
        keep_weight_files=True,
    )
    # The child may infer the shapes of what it saved while this process reads the nodes; only
    # where it can hand ORT's freed graph back to the OS first (glibc), or the two would hold
    # ORT's memory and onnx's at once.
    inferred = target.with_name(f"{stem}.basic.inferred.onnx") if can_release() else None
    return _Level1(source, target, data_name, Job(source.model, recipe, inferred))


# --------------------------------------------------------------------------- the what-if


def fix_shapes_command(
    path: Path, dims: Mapping[str, int], inputs: Mapping[str, tuple[int, ...]]
) -> str:
    """The ``ortprep fix-shapes`` command for these fixes, quoted for a POSIX shell (dim names
    such as ``?`` or paths with spaces stay one argument each)."""
    import shlex

    args = ["ortprep", "fix-shapes", str(path), "-o", f"{path.stem}.fixed.onnx"]
    for name, value in dims.items():
        args += ["--fix-dim", f"{name}={value}"]
    for name, shape in inputs.items():
        args += ["--fix-input", f"{name}={','.join(map(str, shape))}"]
    return shlex.join(args)


def _with_user_fixes(
    options: CheckOptions, what_if: tuple[dict[str, int], dict[str, tuple[int, ...]]]
) -> tuple[dict[str, int], dict[str, tuple[int, ...]]]:
    """The user's fixes plus the what-if's: the what-if only fixes what they left dynamic."""
    return {**options.fix_dims, **what_if[0]}, {**options.fix_inputs, **what_if[1]}


def what_if_fix(
    runtime_inputs: Sequence[ValueType], path: Path
) -> tuple[dict[str, int], dict[str, tuple[int, ...]]]:
    """Values for every dynamic input dim, from the model where it says (metadata, sibling
    dims), else 1 for batch dims and a typical size, flagged as a guess (stages/fix_values.py)."""
    return what_if_values(runtime_inputs, path).fixes


def what_if_values(runtime_inputs: Sequence[ValueType], path: Path) -> FixValues:
    """:func:`what_if_fix` with where each value comes from (which are guesses)."""
    from ortprep.stages.fix_values import for_file

    return for_file(path, runtime_inputs)
