"""XNNPACK EP-wide constants: the ORT source state, the fp16 build property, op sets and limits."""

from __future__ import annotations

from ortprep.eps.base import EpOptions

ORT_SOURCE_VERSION = (
    "onnxruntime main: XNNPACK EP @ 032935e6 (~early 2025) with fixes through #28546 (Gemm, "
    "2026-05) and #28814 (Clip/Relu fusion, 2026-06); docs/eps/xnnpack.md of 2026-11-25"
)
"""The ORT source state these rules restate (``check`` prints it)."""

FP16_SUPPORTED = True
"""Default for whether the XNNPACK build has fp16 kernels.

fp16 is a build property (``XNNPACK_FP16_SUPPORTED`` in ``xnnpack_init.h``), not a runtime option:
it is defined for ARM/ARM64 builds on any OS and for x86 outside Android/iOS, never for
WebAssembly. True matches the usual XNNPACK target (Android arm64); ``EpOptions.xnnpack_fp16``
set to False turns it off for one check (:func:`fp16_supported`). The rules read it here, in
``ortprep.eps.xnnpack.constants`` (the package only re-exports the value).
"""

ONNX = "ai.onnx"
AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER")  # detail/utils.cc IsPaddingTypeSupported
NO_KERNEL_FROM_22 = frozenset({"Conv", "ConvTranspose", "MaxPool", "AveragePool"})
FUSION_PRODUCERS = frozenset({"Conv", "MaxPool", "AveragePool"})
SOFTMAX_Q_SCALE = 1.0 / 256.0


def fp16_supported(options: EpOptions) -> bool:
    """Whether fp16 nodes can run: the build default, unless ``options.xnnpack_fp16`` is off."""
    return FP16_SUPPORTED and bool(options.xnnpack_fp16)
