"""The graphs ``check`` analyses, from one call: :func:`graph_views`.

For an ``.onnx`` model that is the graph after the basic (level 1) optimizations ORT applies
before it assigns nodes to EPs, obtained from ORT itself in its child process
(:mod:`ortprep.core.ort_child`), with shapes inferred; with dynamic input shapes, also the same
graph with every dynamic dim fixed (the what-if). For an ``.ort`` file it is the graph stored in
the file (ORT does not re-run level 1 on ORT-format models, ort-internals §2.6).

All the scheduling is here. ORT starts on the user's file at once and the model is validated
while it works (validation errors, exit 2, win: ORT's job is then cancelled). The what-if runs
beside the first job when the model is small and the user fixed nothing, otherwise after it.
ORT's child infers the saved graph's shapes (while this process reads the nodes) when the model
has many nodes (:attr:`OrtGraphOptions.child_infers_from`), otherwise this process infers them
after ORT is done: a rule on the model alone, so the same model always takes the same path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from ortprep.core.errors import UsageError
from ortprep.core.graph import Model, ValueType
from ortprep.core.memory import can_release
from ortprep.core.ort_child import Job, OrtChild
from ortprep.core.progress import ProgressFn, no_progress
from ortprep.core.runtime import SessionRecipe
from ortprep.eps.registry import ep_spec
from ortprep.stages.check.results import CheckOptions, OrtGraphOptions

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


class _Facts(NamedTuple):
    """What validating the user's file tells the scheduling."""

    inputs: tuple[ValueType, ...]
    external: bool  # the model keeps initializers in external files
    nodes: int  # nodes of the main graph


def _validate(path: Path) -> _Facts:
    from ortprep.core.onnx_file import load_checked, runtime_input_types

    proto, external_files = load_checked(path)
    return _Facts(tuple(runtime_input_types(proto)), bool(external_files), len(proto.graph.node))


def _onnx_views(path: Path, options: CheckOptions, workdir: Path) -> GraphViews:
    user_fixes: Fixes = (dict(options.fix_dims), dict(options.fix_inputs))
    user_fixed = bool(options.fix_dims or options.fix_inputs)
    what_if: Fixes | None = None
    with _jobs(path, workdir, options.ort) as start:
        # Without fixes to apply, ORT starts on the file at once and the model is validated
        # meanwhile (ORT itself refuses external data outside the model's folder); with fixes,
        # it is validated before it is read to be fixed.
        main = None if user_fixed else start(({}, {}), False)
        facts = _validate(path)
        child_infers = facts.nodes >= options.ort.child_infers_from
        if main is None or (facts.external and not main.big):
            if main is not None:  # the EPs must see the external data the user ships
                main.cancel()
            main = start(user_fixes, facts.external)
        main.decide(child_infers)
        # Without the user's fixes the inputs ORT keeps are the source's, so the what-if runs
        # beside the first job, on another core; both at once only for models small enough to
        # hold two of ORT's graphs.
        small = path.stat().st_size < _PARALLEL_WHAT_IF_BYTES
        beside = options.what_if and small and not user_fixed
        second = None
        if beside and any(v.dynamic for v in facts.inputs):
            what_if = what_if_fix(facts.inputs)
            second = start(what_if, facts.external)
            second.decide(child_infers)
        for ep in options.eps:  # load the rules while ORT works in its process
            ep_spec(ep)
        model = main.model()
        dynamic = any(v.dynamic for v in model.graph.runtime_inputs)
        if options.what_if and not beside and dynamic:
            what_if = what_if_fix(model.graph.runtime_inputs)
            second = start(_with_user_fixes(options, what_if), facts.external)
            second.decide(child_infers)
        fixed_model = second.model() if second is not None else None
    assumed: dict[str, int] = {}
    fix_command = None
    if what_if is not None:
        assumed = dict(what_if[0])
        fix_command = fix_shapes_command(path, *_with_user_fixes(options, what_if))
    return GraphViews(
        model, fixed_model, facts.inputs, "basic-optimized", assumed, fix_command, main.target
    )


# --------------------------------------------------------------------------- ORT's jobs


class _Level1:
    """ORT saving the level-1 graph of ``path`` in its child; :meth:`model` reads the result."""

    def __init__(self, path: Path, target: Path, big: bool, job: Job) -> None:
        self.path = path
        self.target = target
        self.big = big
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

    def model(self) -> Model:
        """Wait for ORT, then read its graph with shapes inferred into the view the EPs judge.

        Shapes are inferred file to file, inside onnx's C++ (no second copy of a big graph in
        Python): by the child while this process reads the nodes, or here after ORT is done.
        """
        path = self.path
        view = self._view()
        return Model(
            path=path,
            format="onnx",
            ir_version=view.ir_version,
            producer_name=view.producer_name,
            producer_version=view.producer_version,
            opsets=view.opsets,
            graph=view.graph,
            size_bytes=path.stat().st_size,
        )

    def _view(self) -> Model:
        import dataclasses

        import onnx

        from ortprep.core.onnx_file import model_view, with_value_types

        target = self.target
        inferred = target.with_name(f"{self.path.stem}.basic.inferred.onnx")
        external = None if self.big else ()

        def load(file: Path) -> Any:
            return onnx.load(str(file), load_external_data=False)

        if not self.child_infers:
            self.child.wait()  # BadModelError with ORT's reason when it refused the model
            try:
                onnx.shape_inference.infer_shapes_path(
                    str(target), str(inferred), strict_mode=False
                )
            except Exception:  # noqa: BLE001 -- keep ORT's value_info when onnx cannot infer
                inferred = target
            return model_view(load(inferred), target, external)
        self.child.saved()  # raises as wait() when ORT refused the model
        untyped = model_view(load(target), target, external, value_info=False)
        self.child.wait()
        if not inferred.exists():  # onnx could not infer: ORT's own value info
            return model_view(load(target), target, external)
        if any(n.subgraphs for n in untyped.graph.nodes):  # subgraphs carry their own types
            return model_view(load(inferred), target, external)
        typed = with_value_types(untyped.graph, load(inferred).graph)
        return dataclasses.replace(untyped, graph=typed)


@contextmanager
def _jobs(
    path: Path, workdir: Path, ort: OrtGraphOptions
) -> Iterator[Callable[[Fixes, bool], _Level1]]:
    """A function starting ORT's level-1 save of ``path`` with fixes applied; every job started
    is cancelled on the way out (a no-op for finished ones; ends ORT when something failed)."""
    started: list[_Level1] = []

    def start(fixes: Fixes, external: bool) -> _Level1:
        folder = workdir / f"job{len(started)}"
        folder.mkdir()
        job = _start(path, folder, fixes, external, ort)
        started.append(job)
        return job

    try:
        yield start
    finally:
        for job in started:
            job.cancel()


def _start(
    path: Path, workdir: Path, fixes: Fixes, external: bool, ort: OrtGraphOptions
) -> _Level1:
    """Start ORT on the graph it hands to EPs: ``path`` (shapes fixed first when asked) with
    the level-1 optimizations, saved to ``workdir``."""
    dims, inputs = fixes
    source = path
    if dims or inputs:
        import onnx

        from ortprep.core.onnx_file import load_proto
        from ortprep.stages.fix_shapes import FixShapesOptions, fixed_proto

        proto = load_proto(path)
        onnx.load_external_data_for_model(proto, str(path.parent))
        source = workdir / "fixed.onnx"
        onnx.save(
            fixed_proto(proto, FixShapesOptions(dims, inputs)),
            str(source),
            save_as_external_data=proto.ByteSize() > 1 << 30,
        )
        del proto
    target = workdir / f"{path.stem}.basic.onnx"
    # Only a model near protobuf's 2 GiB limit is saved with external initializers: external
    # data is itself a refusal reason for some EPs (CoreML), and the user's model has none.
    big = source.stat().st_size > 1 << 30 or external
    extra = dict(ort.config)
    if big:
        extra["session.optimized_model_external_initializers_file_name"] = f"{path.stem}.basic.data"
    recipe = SessionRecipe(
        level="basic",
        save_to=target,
        save_format="ONNX",
        free_dims=dict(ort.free_dims) or None,
        extra=extra,
        threads=1,
        compile_only=ort.compile_only,
    )
    # The child may infer the shapes of what it saved while this process reads the nodes; only
    # where it can hand ORT's freed graph back to the OS first (glibc), or the two would hold
    # ORT's memory and onnx's at once.
    inferred = target.with_name(f"{path.stem}.basic.inferred.onnx") if can_release() else None
    return _Level1(path, target, big, Job(source, recipe, inferred))


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
    runtime_inputs: Sequence[ValueType],
) -> tuple[dict[str, int], dict[str, tuple[int, ...]]]:
    """Values for every dynamic input dim: 1 for batch-like dims, 32 otherwise (documented)."""
    from ortprep.core.feeds import input_shape

    dims: dict[str, int] = {}
    inputs: dict[str, tuple[int, ...]] = {}
    for v in runtime_inputs:
        if not v.dynamic or v.shape is None:
            continue
        shape = input_shape(v.shape, {})
        if all(isinstance(d, (int, str)) for d in v.shape) and any(
            isinstance(d, str) for d in v.shape
        ):
            for d, value in zip(v.shape, shape, strict=True):
                if isinstance(d, str):
                    dims.setdefault(d, value)
        if any(d is None or (isinstance(d, int) and d < 0) for d in v.shape):
            inputs[v.name] = shape
    return dims, inputs
