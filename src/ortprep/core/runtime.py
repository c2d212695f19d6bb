"""Driving ONNX Runtime: session recipes as ORT's own tools set them, quiet logs, ORT's errors.

Running a recipe in a child process is :mod:`ortprep.core.ort_child`; what a session is fed is
:mod:`ortprep.core.feeds`.

ORT is driven only through its session options (``optimized_model_filepath``,
``session.save_model_format``, ``optimization.minimal_build_optimizations``...), never through
its scripts. Facts: ``ort-internals.md`` §1.8, §2.2, §2.7, §4.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ortprep.core.errors import BadModelError, UsageError

if TYPE_CHECKING:
    import onnxruntime as ort

LEVELS = ("disable", "basic", "extended", "layout", "all")
"""Optimization level names, as ORT's tools spell them."""

PLATFORMS = ("arm", "amd64")

EXTERNAL_FOLDER = "session.model_external_initializers_file_folder_path"
"""The session config entry naming the folder of a model's external data (ORT's
kOrtSessionOptionsModelExternalInitializersFileFolderPath): with it, ORT takes the model's bytes
(a lean scan, core/lean_onnx.py) and reads the weights from the files beside the model."""


def ort_version() -> str:
    import onnxruntime as ort

    return str(ort.__version__)


def level_enum(level: str) -> ort.GraphOptimizationLevel:
    """``"extended"`` -> ``ORT_ENABLE_EXTENDED`` (and so on)."""
    import onnxruntime as ort

    names = {
        "disable": "ORT_DISABLE_ALL",
        "basic": "ORT_ENABLE_BASIC",
        "extended": "ORT_ENABLE_EXTENDED",
        "layout": "ORT_ENABLE_LAYOUT",
        "all": "ORT_ENABLE_ALL",
    }
    if level not in names:
        raise UsageError(
            f"unknown optimization level {level!r}", f"choose one of {', '.join(LEVELS)}"
        )
    value = getattr(ort.GraphOptimizationLevel, names[level], None)
    if value is None:  # ORT before 1.23 has no layout level
        raise UsageError(f"this onnxruntime ({ort.__version__}) has no {level!r} level")
    return value


ORT_LOG_SEVERITY = 4
"""ORT's logger prints only fatal messages (0 verbose ... 3 error, 4 fatal). Errors still raise
as exceptions, which ortprep words itself; ORT's own coloured ``[E:onnxruntime:...]`` lines, with
the model's node names raw in them, would come before ortprep's ``error:`` line."""


def quiet_ort() -> None:
    """Keep ORT's own log lines off the user's terminal (errors still raise)."""
    import onnxruntime as ort

    ort.set_default_logger_severity(ORT_LOG_SEVERITY)


@dataclass(frozen=True)
class SessionRecipe:
    """Everything that decides what an ORT session does with a model, as data (printable)."""

    level: str = "all"
    target_platform: str = "arm"
    save_to: Path | None = None
    save_format: str | None = None  # "ORT" or "ONNX"
    minimal_build_optimizations: str | None = None  # "save" | "apply"
    replay_saved: bool = False
    custom_op_library: Path | None = None
    free_dims: Mapping[str, int] | None = None
    extra: Mapping[str, str] | None = None
    # Intra-op threads; sessions that only save a model run nothing, and one thread spares
    # creating a pool per session (the saved graph is the same: tested on every fixture).
    threads: int | None = None
    # Save through ORT's compile API where this onnxruntime has one (see :func:`compile_graph`):
    # the same transformed graph, without making the session runnable. ONNX output only.
    compile_only: bool = False
    # With the compile API: initializers the source keeps in a file (its external data, or the
    # inline bytes a lean copy points to, ortprep.core.lean_onnx) stay references to that file in
    # the saved model, none is written again (see compile_graph).
    keep_weight_files: bool = False

    def disabled_optimizers(self) -> list[str]:
        # ORT's converter keeps NCHWc (x86 vector-width specific) only for an amd64 target, and
        # only levels layout/all register it.
        if self.target_platform != "amd64" and self.level in ("layout", "all"):
            return ["NchwcTransformer"]
        return []

    def config_entries(self) -> dict[str, str]:
        entries = {"session.qdqisint8allowed": "1" if self.target_platform == "arm" else "0"}
        if self.save_format:
            entries["session.save_model_format"] = self.save_format
        if self.minimal_build_optimizations:
            entries["optimization.minimal_build_optimizations"] = self.minimal_build_optimizations
        if self.replay_saved:
            entries["session.enable_saved_runtime_optimizations"] = "1"
        entries.update(self.extra or {})
        return entries


def session_options(recipe: SessionRecipe) -> ort.SessionOptions:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = level_enum(recipe.level)
    so.log_severity_level = ORT_LOG_SEVERITY
    if recipe.save_to is not None:
        so.optimized_model_filepath = str(recipe.save_to)
    if recipe.threads:
        so.intra_op_num_threads = recipe.threads
    for key, value in recipe.config_entries().items():
        so.add_session_config_entry(key, value)
    for dim, size in (recipe.free_dims or {}).items():
        so.add_free_dimension_override_by_name(dim, size)
    if recipe.custom_op_library is not None:
        try:
            so.register_custom_ops_library(str(recipe.custom_op_library))
        except Exception as exc:  # noqa: BLE001 -- ORT raises plain RuntimeError/Fail
            raise BadModelError(
                f"{recipe.custom_op_library}: cannot load the custom op library "
                f"({_first_line(exc)})",
                "pass the shared library built for this onnxruntime version and platform",
            ) from None
    return so


def create_session(model: Path | bytes, recipe: SessionRecipe) -> ort.InferenceSession:
    """Create a CPU session for ``model`` following ``recipe`` (this is also how ORT saves)."""
    import onnxruntime as ort

    quiet_ort()
    so = session_options(recipe)
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(
        source,
        so,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=recipe.disabled_optimizers() or None,
    )


def lean_source(model: Path, recipe: SessionRecipe) -> tuple[Path | bytes, SessionRecipe]:
    """What ORT loads for a session on the ``.onnx`` at ``model`` that writes no ONNX file: for a
    big one (core/onnx_file.py ``LEAN_FROM_BYTES``), its lean scan (core/lean_onnx.py: the graph,
    each tensor over 1 KB an external reference to where its bytes lie in the file) with the
    model's folder, so ORT maps the weights from the user's file instead of parsing them out of
    the protobuf; else the path itself. The same graph, the same values: an ``.ort`` saved either
    way is the same (tested). BERT-base (436 MB inline) on a loaded machine: an ORT-format save
    903 -> 803 MB peak and 2.9-5.4 s -> 2.0-2.6 s; an unoptimized session 696 -> 395 MB and
    4.5 -> 1.8 s. Not for sessions that save ONNX (the file would refer into the input) nor for
    timing a user's load (bench)."""
    from ortprep.core.onnx_file import scan_lean

    scanned = scan_lean(model) if model.suffix.lower() == ".onnx" else None
    if scanned is None or not scanned.tensors:
        return model, recipe
    extra = {**(recipe.extra or {}), EXTERNAL_FOLDER: str(model.resolve().parent)}
    return scanned.data, replace(recipe, extra=extra)


def can_compile_graph() -> bool:
    """Whether this onnxruntime's compile API takes an optimization level (ORT 1.23+)."""
    import inspect

    import onnxruntime as ort

    compiler = getattr(ort, "ModelCompiler", None)
    if compiler is None:
        return False
    return "graph_optimization_level" in inspect.signature(compiler.__init__).parameters


def compile_graph(model: Path | bytes, recipe: SessionRecipe) -> None:
    """Save the graph a CPU session would run, through ORT's compile API.

    With only the CPU EP nothing is compiled: ORT loads the model, applies the optimizations of
    ``recipe.level``, partitions it and inserts its casts (``TransformGraph`` in
    onnxruntime/core/session/inference_session.cc, the same steps as a session), then saves the
    graph. ORT 1.32 logs "Compile-only session: skipping session-state finalization": no kernels
    are created and no memory is planned. On a 100,000-node chain that halves ORT's time
    (4.6 s instead of 8.8 s) and lowers its peak (380 MB instead of 430 MB). The saved graph
    equals the session's (tests compare what ``check`` concludes from both on every fixture).

    With ``recipe.keep_weight_files`` (and an ORT whose compile API takes
    ``get_initializer_location_func``), every initializer read from a file keeps pointing there
    (its ``OrtExternalInitializerInfo`` handed back as is): no weight is copied or written, and on
    a 440 MB transformer whose weights are external ORT's peak is 60 MB instead of 150 MB.
    Initializers ORT holds in memory (small ones, constants it folded) stay in the saved model.
    """
    import onnxruntime as ort

    if recipe.save_to is None or (recipe.save_format or "ONNX") != "ONNX":
        raise ValueError("the compile API saves ONNX files only")
    if recipe.disabled_optimizers():
        raise ValueError("the compile API cannot disable optimizers")
    quiet_ort()
    so = session_options(replace(recipe, save_to=None))
    # the session's option for external initializers, as the compile API takes it: a file name,
    # written beside the saved model
    external = (recipe.extra or {}).get("session.optimized_model_external_initializers_file_name")
    kwargs: dict[str, Any] = {}
    if recipe.keep_weight_files and _compiler_takes("get_initializer_location_func"):
        kwargs["get_initializer_location_func"] = _keep_location
    else:
        kwargs["external_initializers_file_path"] = external or None
    ort.ModelCompiler(
        so,
        model if isinstance(model, bytes) else str(model),
        graph_optimization_level=level_enum(recipe.level),
        **kwargs,
    ).compile_to_file(str(recipe.save_to))


def _compiler_takes(parameter: str) -> bool:
    import inspect

    import onnxruntime as ort

    return parameter in inspect.signature(ort.ModelCompiler.__init__).parameters


def _keep_location(name: str, value: Any, info: Any) -> Any:
    """ORT's question for each initializer of a compiled model: where it goes. Where it came
    from (None, in the model, for one ORT holds in memory)."""
    return info


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def describe_ort_error(exc: BaseException) -> str:
    """ORT's error text, shortened to its first meaningful line."""
    line = _first_line(exc)
    for prefix in ("[ONNXRuntimeError] : ", "[ONNXRuntimeError]: "):
        if prefix in line:
            line = line.split(prefix, 1)[1]
    return line
