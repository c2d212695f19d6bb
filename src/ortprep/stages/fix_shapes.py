"""``fix-shapes``: a copy of a model with symbolic dims or input shapes fixed, re-inferred, loaded.

Compiling EPs (NNAPI, CoreML) refuse nodes whose inputs have dynamic dimensions; fixing them is
often the single change that lets the EP take the model. The edits are done by ORT's own helpers
(``onnxruntime.tools.onnx_model_utils.make_dim_param_fixed`` / ``make_input_shape_fixed``), shapes
are re-inferred with onnx, and the result must load in ORT before it is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ortprep.core.errors import BadModelError, UsageError

if TYPE_CHECKING:
    import onnx

    from ortprep.core.graph import ValueType


@dataclass(frozen=True)
class FixShapesOptions:
    dims: Mapping[str, int] = field(default_factory=dict)
    inputs: Mapping[str, tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class FixShapesResult:
    source: str
    output: str
    inputs_before: tuple[Any, ...]
    inputs_after: tuple[Any, ...]
    outputs_after: tuple[Any, ...]
    still_dynamic: tuple[str, ...]
    loaded: bool

    @property
    def ok(self) -> bool:
        return self.loaded

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "output": self.output,
            "inputs_before": [v.to_dict() for v in self.inputs_before],
            "inputs_after": [v.to_dict() for v in self.inputs_after],
            "outputs_after": [v.to_dict() for v in self.outputs_after],
            "still_dynamic": list(self.still_dynamic),
            "loaded_in_onnxruntime": self.loaded,
        }


def parse_input_shape(item: str) -> tuple[str, tuple[int, ...]]:
    """``"x=1,3,224,224"`` -> ``("x", (1, 3, 224, 224))``."""
    name, sep, dims = item.partition("=")
    try:
        shape = tuple(int(d) for d in dims.split(","))
    except ValueError:
        shape = ()
    if not sep or not name or not shape or any(d <= 0 for d in shape):
        raise UsageError(
            f"--fix-input {item!r}: expected NAME=D0,D1,... with positive integers",
            "example: --fix-input x=1,3,224,224",
        )
    return name, shape


def check_fix_dims(dims: Iterable[str], inputs: Iterable[ValueType], model: object = None) -> None:
    """Every ``--fix-dim`` name must be a symbolic dimension of one of ``inputs`` (the model's
    runtime inputs); raises :class:`UsageError` naming the dims the model has."""
    params = {d for v in inputs for d in (v.shape or ()) if isinstance(d, str)}
    for name in dims:
        if name not in params:
            _unknown_dim(name, params, model)


def _unknown_dim(name: str, params: set[str], model: object = None) -> None:
    known = ", ".join(sorted(params)) or "none"
    where = f"{model}: " if model is not None else ""
    raise UsageError(
        f"{where}--fix-dim {name}: no input has a dimension named {name!r}",
        f"symbolic input dims of this model: {known}",
    )


def fixed_proto(proto: onnx.ModelProto, options: FixShapesOptions) -> onnx.ModelProto:
    """Apply the fixes to a copy of ``proto`` and re-infer shapes (input unchanged)."""
    import onnx
    from onnxruntime.tools import onnx_model_utils as utils

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    graph = model.graph
    params = {
        d.dim_param
        for vi in graph.input
        for d in vi.type.tensor_type.shape.dim
        if d.HasField("dim_param")
    }
    for name, value in options.dims.items():
        if name not in params:
            _unknown_dim(name, params)
        utils.make_dim_param_fixed(graph, name, value)
    try:
        for name, shape in options.inputs.items():
            utils.make_input_shape_fixed(graph, name, list(shape))
    except ValueError as exc:
        raise UsageError(f"--fix-input: {exc}") from None
    del model.graph.value_info[:]  # stale symbolic shapes would survive inference otherwise
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:  # noqa: BLE001 -- inference is best effort; ORT validates below
        inferred = model
    if _passes_checker(inferred):
        utils.fix_output_shapes(inferred)
    return inferred


def _passes_checker(model: onnx.ModelProto) -> bool:
    try:
        import onnx

        onnx.checker.check_model(model)
    except Exception:  # noqa: BLE001 -- models with contrib ops fail the checker; skip
        return False
    return True


def run(path: Path, out: Path, options: FixShapesOptions) -> FixShapesResult:
    """Write ``out``: ``path`` with the requested dims fixed; verified by loading it in ORT."""
    from ortprep.core.files import atomic_path
    from ortprep.core.inputs import open_model
    from ortprep.core.onnx_file import load_proto
    from ortprep.core.onnx_view import model_view
    from ortprep.core.runtime import SessionRecipe, create_session, describe_ort_error

    if not options.dims and not options.inputs:
        raise UsageError(
            "nothing to fix", "pass --fix-dim NAME=VALUE or --fix-input NAME=D0,D1,..."
        )
    if out.suffix != ".onnx":
        raise UsageError(f"{out}: the output must be an .onnx file")
    before = open_model(path)
    if before.format != "onnx":
        raise UsageError(
            f"{path}: fix-shapes takes an .onnx model", "fix shapes before converting to ORT format"
        )
    if out.resolve() == path.resolve():
        raise UsageError("the output would overwrite the input", "choose another -o path")
    proto = load_proto(path)
    if before.external_data_files:
        import onnx

        onnx.load_external_data_for_model(proto, str(path.parent))
    fixed = fixed_proto(proto, options)
    with atomic_path(out) as tmp:
        import onnx

        onnx.save(fixed, str(tmp))
        try:
            create_session(tmp, SessionRecipe(level="disable"))
        except Exception as exc:  # noqa: BLE001 -- ORT's refusal is the verdict
            raise BadModelError(
                f"{path}: the model with fixed shapes does not load in ONNX Runtime "
                f"({describe_ort_error(exc)})",
                "the values may contradict the model (e.g. a reshape that needs another size)",
            ) from None
    after = model_view(fixed, out)
    still = tuple(v.name for v in after.graph.runtime_inputs if v.dynamic)
    return FixShapesResult(
        str(path),
        str(out),
        before.graph.runtime_inputs,
        after.graph.runtime_inputs,
        after.graph.outputs,
        still,
        True,
    )
