"""ortprep: prepare ONNX models for ONNX Runtime on edge and mobile devices.

The Python API is one function per command, with keyword arguments named like the command's
options (``--fix-dim`` is ``fix_dim``), returning the result the command renders::

    import ortprep

    result = ortprep.check("model.onnx", ep="nnapi", require={"nnapi": "maybe"})
    print(result.ok, result.eps[0].summary)

``import ortprep`` loads no onnx, onnxruntime or numpy: each function imports what it needs.
"""

from __future__ import annotations

from ortprep.api import (
    bench,
    check,
    config_build,
    config_build_command,
    config_check,
    config_merge,
    convert,
    diff,
    fix_shapes,
    inspect,
    optimize,
    prepare,
    verify,
)
from ortprep.core.errors import OrtprepError
from ortprep.core.version import ORTPREP_VERSION

__version__ = ORTPREP_VERSION

__all__ = [
    "OrtprepError",
    "__version__",
    "bench",
    "check",
    "config_build",
    "config_build_command",
    "config_check",
    "config_merge",
    "convert",
    "diff",
    "fix_shapes",
    "inspect",
    "optimize",
    "prepare",
    "verify",
]
