"""Reduced-build operator configs: read, write, build, merge, check coverage, and the build command.

A config (``required_operators[_and_types]*.config``) lists the kernels a reduced ONNX Runtime build
keeps (``build.py --include_ops_by_config``). This module reads and writes the layout ORT's own
tools read and write (``onnxruntime/tools/reduced_build_config_parser.py`` and
``ort_format_model/utils.py``), builds configs the way ORT's ``OrtFormatModelProcessor`` does, with
ORT's own ``OperatorTypeUsageManager`` tracking the types (never re-implementing type tracking),
and answers "will these models run on a build made from this config?" with the rule ORT's kernel
exclusion applies.

Modules: :mod:`.model` (the config, its file layout, merging), :mod:`.from_ort` (what ``.ort``
files need), :mod:`.build` (``config build``/``merge``), :mod:`.coverage` (``config check``),
:mod:`.info` (``inspect`` of a config), :mod:`.build_command` (``config build-command``).

Example::

    cfg = parse_config(Path("required_operators.config").read_text())
    result = check_coverage(cfg, [Path("model.ort")])
    print(result.ok, [m.missing_ops for m in result.models])
"""

from __future__ import annotations

from ortprep.stages.opconfig.build import (
    BuildResult,
    MergeResult,
    ModelStatus,
    run_build,
    run_merge,
)
from ortprep.stages.opconfig.build_command import (
    BuildCommand,
    BuildFlag,
    build_command,
    run_build_command,
)
from ortprep.stages.opconfig.coverage import (
    CoverageResult,
    MissingOp,
    MissingType,
    ModelCoverage,
    check_coverage,
    run_check,
)
from ortprep.stages.opconfig.from_ort import (
    analyse_ort_model,
    config_from_ort_files,
    config_of_model,
)
from ortprep.stages.opconfig.info import ConfigInfo, inspect_config
from ortprep.stages.opconfig.model import (
    ALL_OPS_DIRECTIVE,
    GLOBAL_TYPES_DIRECTIVE,
    PLATFORMS,
    STYLES,
    TARGET_EPS,
    TARGETS,
    ConfigError,
    OpConfig,
    OpEntry,
    OpTypes,
    combine,
    config_file_name,
    format_config,
    merge,
    parse_config,
    read_config,
)

__all__ = [
    "ALL_OPS_DIRECTIVE",
    "GLOBAL_TYPES_DIRECTIVE",
    "PLATFORMS",
    "STYLES",
    "TARGETS",
    "TARGET_EPS",
    "BuildCommand",
    "BuildFlag",
    "BuildResult",
    "ConfigError",
    "ConfigInfo",
    "CoverageResult",
    "MergeResult",
    "MissingOp",
    "MissingType",
    "ModelCoverage",
    "ModelStatus",
    "OpConfig",
    "OpEntry",
    "OpTypes",
    "analyse_ort_model",
    "build_command",
    "check_coverage",
    "combine",
    "config_file_name",
    "config_from_ort_files",
    "config_of_model",
    "format_config",
    "inspect_config",
    "merge",
    "parse_config",
    "read_config",
    "run_build",
    "run_build_command",
    "run_check",
    "run_merge",
]
