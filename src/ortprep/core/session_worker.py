"""A child process that lets ORT optimize one model and save it: ``python -m
ortprep.core.session_worker RECIPE_JSON`` (or ``--wait``, then the job on stdin).

Used where one big session dominates (``check`` on a large graph): the child imports only
onnxruntime, so its peak memory is ORT's own, the parent stays free to validate and prepare while
ORT works, and a crash inside ORT on a hostile model ends the child, not ortprep. It prints ORT's
error on stderr and exits 1 when ORT refuses the model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ortprep.core.runtime import SessionRecipe

_PATHS = ("save_to", "custom_op_library")


def job_json(model: Path, recipe: SessionRecipe, infer_to: Path | None = None) -> str:
    """The child's argument: the model, the recipe's fields that are set, and where to write
    the saved graph with shapes inferred (see :func:`main`), if wanted."""
    import dataclasses

    spec: dict[str, Any] = {"model": str(model)}
    if infer_to is not None:
        spec["infer_to"] = str(infer_to)
    for f in dataclasses.fields(recipe):
        value = getattr(recipe, f.name)
        if value is not None:
            spec[f.name] = str(value) if f.name in _PATHS else value
    return json.dumps(spec, default=dict)  # free_dims, extra: mappings


def _job(text: str) -> tuple[Path, SessionRecipe, Path | None]:
    """:func:`job_json`, read back."""
    from ortprep.core.runtime import SessionRecipe

    spec = json.loads(text)
    model = Path(spec.pop("model"))
    infer_to = spec.pop("infer_to", None)
    for key in _PATHS:
        if spec.get(key) is not None:
            spec[key] = Path(spec[key])
    return model, SessionRecipe(**spec), None if infer_to is None else Path(infer_to)


def main(argv: list[str]) -> int:
    """Run the job given as the argument, or with ``--wait``: import onnxruntime first, then
    read the job from stdin (``SaveProcess.warm_up``); end-of-file there means no job."""
    if argv == ["--wait"]:
        import onnxruntime  # noqa: F401 -- the import is the point: done before the job arrives

        text = sys.stdin.readline()
        if not text.strip():
            return 0
        argv = [text]
    from ortprep.core.runtime import (
        can_compile_graph,
        compile_graph,
        create_session,
        describe_ort_error,
    )

    model, recipe, infer_to = _job(argv[0])
    saved = False
    if recipe.compile_only and can_compile_graph():
        try:
            compile_graph(model, recipe)
            saved = True
        except Exception:  # noqa: BLE001 -- the compile API is young: a session decides
            pass
    if not saved:
        try:
            create_session(model, recipe)
        except Exception as exc:  # noqa: BLE001 -- ORT reports refusals as plain exceptions
            print(describe_ort_error(exc), file=sys.stderr)
            return 1
    if infer_to is not None and recipe.save_to is not None and wanted(infer_to).exists():
        _infer(recipe.save_to, infer_to)
    return 0


def wanted(infer_to: Path) -> Path:
    """The flag file by which the parent asks, before ORT is done, for the inference into
    ``infer_to``: worth it on big graphs only, where it overlaps the parent's reading of the
    nodes; on small ones importing onnx here costs more than inferring in the parent."""
    return infer_to.with_name(infer_to.name + ".wanted")


def _infer(saved: Path, infer_to: Path) -> None:
    """Say the graph is saved, then infer its shapes into ``infer_to`` (the parent reads the
    nodes meanwhile). ORT's freed graph is handed back to the OS first, so this process holds
    onnx's work only. No file is written when onnx cannot infer: the parent then keeps ORT's
    value info."""
    from ortprep.core.memory import release

    release()
    print("saved", flush=True)
    import onnx

    try:
        onnx.shape_inference.infer_shapes_path(str(saved), str(infer_to), strict_mode=False)
    except Exception:  # noqa: BLE001 -- any failure: no inferred file
        infer_to.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
