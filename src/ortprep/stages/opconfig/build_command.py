"""``config build-command``: the ``build.py`` command that makes a reduced build from a config."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ortprep.core.errors import UsageError
from ortprep.core.runtime import ort_version
from ortprep.stages.opconfig.model import TARGET_EPS, TARGETS, OpConfig, read_config


@dataclass(frozen=True)
class BuildFlag:
    """One ``build.py`` option, its values, and why it is there."""

    flag: str
    values: tuple[str, ...] = ()
    why: str = ""

    def tokens(self) -> list[str]:
        return [self.flag, *self.values]

    def to_dict(self) -> dict[str, Any]:
        return {"flag": self.flag, "values": list(self.values), "why": self.why}


@dataclass(frozen=True)
class BuildCommand:
    """The ``build.py`` invocation for a reduced ORT build, each flag with its reason."""

    target: str
    eps: tuple[str, ...]
    build: str  # "minimal" or "extended-minimal"
    build_reasons: tuple[str, ...]
    config_path: str
    config_kind: str
    flags: tuple[BuildFlag, ...]
    notes: tuple[str, ...]
    onnxruntime_version: str

    @property
    def argv(self) -> list[str]:
        return ["python3", "tools/ci_build/build.py", *(t for f in self.flags for t in f.tokens())]

    @property
    def command(self) -> str:
        """The command on one logical line, continued per flag (values shell-quoted)."""
        parts = ["python3 tools/ci_build/build.py"]
        parts.extend(" ".join([f.flag, *(_shell(v) for v in f.values)]) for f in self.flags)
        return " \\\n  ".join(parts)

    def script(self) -> str:
        """The command preceded by comments saying why each flag is there."""
        kind = "extended minimal" if self.build == "extended-minimal" else "basic minimal"
        lines = [
            f"# Reduced ONNX Runtime build for {self.target}: {kind} build.",
            *(f"#   {r}" for r in self.build_reasons),
            f"# Run in an onnxruntime checkout at tag v{self.onnxruntime_version} (the release "
            "that converts your models).",
            "# Why each flag:",
        ]
        width = max(len(" ".join([f.flag, *f.values])) for f in self.flags)
        lines.extend(f"#   {' '.join([f.flag, *f.values]):<{width}}  {f.why}" for f in self.flags)
        lines.extend(f"# Note: {n}" for n in self.notes)
        lines.append(self.command)
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "eps": list(self.eps),
            "build": self.build,
            "build_reasons": list(self.build_reasons),
            "config": self.config_path,
            "config_kind": self.config_kind,
            "onnxruntime_version": self.onnxruntime_version,
            "argv": self.argv,
            "command": self.command,
            "flags": [f.to_dict() for f in self.flags],
            "notes": list(self.notes),
        }


def _shell(value: str) -> str:
    # Environment-variable placeholders stay expandable; everything else is quoted.
    if value.startswith('"$') and value.endswith('"'):
        return value
    return shlex.quote(value)


def _normalize_eps(target: str, eps: Iterable[str]) -> tuple[str, ...]:
    names: list[str] = []
    for item in eps:
        names.extend(p.strip().lower() for p in item.split(",") if p.strip())
    allowed = TARGET_EPS[target]
    for name in names:
        if name not in allowed:
            raise UsageError(
                f"--ep {name}: not available for --target {target}",
                f"choose from {', '.join(allowed)}",
            )
    return tuple(dict.fromkeys(names))


def build_command(
    config: OpConfig,
    target: str,
    eps: Iterable[str] = (),
    replay: bool = False,
    extended: bool = False,
    *,
    config_path: str = "required_operators.config",
) -> BuildCommand:
    """The ``build.py`` flags for ``target`` (ort-internals §3.1, ``build_args.py``).

    Extended minimal when a compiling EP (NNAPI, CoreML) or XNNPACK is named, when saved runtime
    optimizations are to be replayed, or when asked; otherwise the smaller basic minimal build.
    """
    if target not in TARGETS:
        raise UsageError(f"--target {target!r}: expected one of {', '.join(TARGETS)}")
    eps = _normalize_eps(target, eps)
    coreml = any(e.startswith("coreml") for e in eps)
    reasons: list[str] = []
    if "nnapi" in eps:
        reasons.append(
            "NNAPI compiles the nodes it takes when the model loads; runtime "
            "partitioning for compiling EPs exists only in an extended minimal build."
        )
    if coreml:
        reasons.append(
            "CoreML compiles the nodes it takes when the model loads; runtime "
            "partitioning for compiling EPs exists only in an extended minimal build."
        )
    if "xnnpack" in eps:
        reasons.append(
            "XNNPACK claims nodes when the model loads and moves them to NHWC layout; "
            "runtime partitioning and layout transformation exist only in an extended "
            "minimal build (graph_partitioner.cc)."
        )
    if replay:
        reasons.append(
            "Replaying saved runtime optimizations needs the optimizer code an "
            "extended minimal build keeps (ORT 1.11 and later)."
        )
    if extended and not reasons:
        reasons.append("Asked for with --extended.")
    is_extended = bool(reasons)
    if not is_extended:
        reasons.append(
            "No compiling EP and no replay of saved runtime optimizations: a basic "
            "minimal build (ORT-format models, CPU EP) is the smallest."
        )

    flags: list[BuildFlag] = [
        BuildFlag("--build_dir", (f"build/{target}",), "where build.py puts the build"),
        BuildFlag("--config", ("MinSizeRel",), "optimize for size: the smallest binary"),
        BuildFlag("--parallel", (), "compile on every core"),
        BuildFlag("--skip_tests", (), "tests cannot run against a reduced op set"),
    ]
    if is_extended:
        drivers = [
            name
            for name, on in (
                ("NNAPI", "nnapi" in eps),
                ("CoreML", coreml),
                ("XNNPACK", "xnnpack" in eps),
                ("replay of saved runtime optimizations", replay),
                ("--extended", extended),
            )
            if on
        ]
        flags.append(
            BuildFlag(
                "--minimal_build",
                ("extended",),
                "extended minimal build, for " + ", ".join(drivers),
            )
        )
    else:
        flags.append(
            BuildFlag(
                "--minimal_build",
                (),
                "ORT-format models only, no graph optimizers: the smallest runtime",
            )
        )
    flags.append(
        BuildFlag(
            "--include_ops_by_config", (config_path,), "keep only the kernels the config lists"
        )
    )
    if config.has_types:
        flags.append(
            BuildFlag(
                "--enable_reduced_operator_type_support",
                (),
                "the config carries type info: keep only those types",
            )
        )
    domains = {e.domain for e in config.entries}
    if not any(d.startswith("ai.onnx.ml") for d in domains) and not config.requires_all_ops:
        flags.append(
            BuildFlag(
                "--disable_ml_ops",
                (),
                "the config lists no ai.onnx.ml op: drop ML ops and map types",
            )
        )
    contrib = any(d.startswith("com.microsoft") for d in domains)
    if not contrib and "xnnpack" not in eps and not config.requires_all_ops:
        flags.append(BuildFlag("--disable_contrib_ops", (), "the config lists no com.microsoft op"))
    flags.append(
        BuildFlag(
            "--disable_exceptions",
            (),
            "abort instead of throw: smaller (valid in minimal builds; not with Python bindings)",
        )
    )
    flags.append(BuildFlag("--disable_rtti", (), "no run-time type information: smaller"))
    optional_ops = {"Optional", "OptionalHasElement", "OptionalGetElement"}
    if not config.requires_all_ops and not any(e.op in optional_ops for e in config.entries):
        flags.append(BuildFlag("--disable_types", ("optional",), "the config lists no Optional op"))

    notes: list[str] = []
    if target == "android":
        flags.extend(
            [
                BuildFlag("--android", (), "cross-compile for Android"),
                BuildFlag("--android_sdk_path", ('"$ANDROID_HOME"',), "your Android SDK"),
                BuildFlag("--android_ndk_path", ('"$ANDROID_NDK_HOME"',), "your Android NDK"),
                BuildFlag("--android_abi", ("arm64-v8a",), "64-bit ARM phones"),
                BuildFlag(
                    "--android_api",
                    ("24",),
                    "ORT's own Android packages' minimum SDK; raise to your app's minSdk",
                ),
                BuildFlag("--build_shared_lib", (), "libonnxruntime.so for your app to load"),
            ]
        )
        notes.append(
            "for an AAR, pass the same flags as build_params to "
            "tools/android_custom_build/build_custom_android_package.py"
        )
    elif target == "ios":
        flags.extend(
            [
                BuildFlag("--ios", (), "cross-compile for iOS"),
                BuildFlag("--use_xcode", (), "Xcode generator, as ORT's iOS packages use"),
                BuildFlag(
                    "--apple_sysroot",
                    ("iphoneos",),
                    "device SDK (iphonesimulator for the simulator)",
                ),
                BuildFlag("--osx_arch", ("arm64",), "iPhone CPUs"),
                BuildFlag(
                    "--apple_deploy_target",
                    ("15.1",),
                    "the iOS version ORT's own iOS packages are built for",
                ),
                BuildFlag("--build_apple_framework", (), "onnxruntime.framework for your app"),
            ]
        )
        notes.append(
            "runs on macOS only; for pods use "
            "tools/ci_build/github/apple/build_and_assemble_apple_pods.py"
        )
    else:
        flags.append(BuildFlag("--build_shared_lib", (), "libonnxruntime.so for your app to link"))
        if target == "linux-arm":
            notes.append(
                "build on an aarch64 Linux machine (build.py has no Linux cross-compile "
                "switch) or add --cmake_extra_defines "
                "CMAKE_TOOLCHAIN_FILE=<your aarch64 toolchain file>"
            )
    if "nnapi" in eps:
        flags.append(BuildFlag("--use_nnapi", (), "the NNAPI EP (Android API 27+ at run time)"))
    if coreml:
        flags.append(BuildFlag("--use_coreml", (), "the CoreML EP (NeuralNetwork and ML Program)"))
    if "xnnpack" in eps:
        flags.append(
            BuildFlag(
                "--use_xnnpack",
                (),
                "the XNNPACK EP (needs contrib ops: its NHWC kernels are internal contrib ops)",
            )
        )

    runtime_config = "with_runtime_opt" in Path(config_path).name or any(
        "style=runtime" in c for c in config.comments
    )
    if (eps or replay) and not runtime_config:
        notes.append(
            "with NNAPI, CoreML, XNNPACK or replay, build the config from Runtime-style "
            "conversions (ortprep config build --style runtime) so it lists the ops "
            "both with and without the saved optimizations applied"
        )
    if replay:
        notes.append(
            "the app must set session.enable_saved_runtime_optimizations=1 (trusted "
            "models only) and a graph optimization level of at least extended"
        )
    notes.append("remove --disable_exceptions if you also build Python bindings (--build_wheel)")
    if config.requires_all_ops:
        notes.append(
            "the config keeps every op (no op listed and "
            "!no_ops_specified_means_all_ops_are_required)"
        )
    return BuildCommand(
        target=target,
        eps=eps,
        build="extended-minimal" if is_extended else "minimal",
        build_reasons=tuple(reasons),
        config_path=config_path,
        config_kind=config.kind,
        flags=tuple(flags),
        notes=tuple(notes),
        onnxruntime_version=ort_version(),
    )


def run_build_command(
    config_path: Path,
    target: str,
    eps: Iterable[str] = (),
    replay: bool = False,
    extended: bool = False,
) -> BuildCommand:
    """``config build-command``: read the config and compose the command for it."""
    cfg = read_config(config_path)
    return build_command(cfg, target, eps, replay, extended, config_path=str(config_path))
