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


def job_json(model: Path, recipe: SessionRecipe) -> str:
    """The child's argument: the model and the recipe's fields that are set."""
    import dataclasses

    spec: dict[str, Any] = {"model": str(model)}
    for f in dataclasses.fields(recipe):
        value = getattr(recipe, f.name)
        if value is not None:
            spec[f.name] = str(value) if f.name in _PATHS else value
    return json.dumps(spec, default=dict)  # free_dims, extra: mappings


def _job(text: str) -> tuple[Path, SessionRecipe]:
    """:func:`job_json`, read back."""
    from ortprep.core.runtime import SessionRecipe

    spec = json.loads(text)
    model = Path(spec.pop("model"))
    for key in _PATHS:
        if spec.get(key) is not None:
            spec[key] = Path(spec[key])
    return model, SessionRecipe(**spec)


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

    model, recipe = _job(argv[0])
    if recipe.compile_only and can_compile_graph():
        try:
            compile_graph(model, recipe)
            return 0
        except Exception:  # noqa: BLE001 -- the compile API is young: a session decides
            pass
    try:
        create_session(model, recipe)
    except Exception as exc:  # noqa: BLE001 -- ORT reports refusals as plain exceptions
        print(describe_ort_error(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
