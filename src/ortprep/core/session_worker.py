"""A child process that lets ORT optimize one model and save it: ``python -m
ortprep.core.session_worker RECIPE_JSON``.

Used where one big session dominates (``check`` on a large graph): the child imports only
onnxruntime, so its peak memory is ORT's own, the parent stays free to validate and prepare while
ORT works, and a crash inside ORT on a hostile model ends the child, not ortprep. It prints ORT's
error on stderr and exits 1 when ORT refuses the model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from ortprep.core.runtime import SessionRecipe, create_session, describe_ort_error

    spec = json.loads(argv[0])
    model = Path(spec.pop("model"))
    for key in ("save_to", "custom_op_library"):
        if spec.get(key) is not None:
            spec[key] = Path(spec[key])
    try:
        create_session(model, SessionRecipe(**spec))
    except Exception as exc:  # noqa: BLE001 -- ORT reports refusals as plain exceptions
        print(describe_ort_error(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
