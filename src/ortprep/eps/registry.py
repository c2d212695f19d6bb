"""The execution providers ortprep knows, by id: each one's :class:`EpSpec`, complete.

An EP's rule module (or package) defines its ``SPEC`` (id, name, node check, EP-wide settings)
and, where the EP has them, its unit check, its own partition walk and its partition-input
refusal; this registry puts them together into one typed spec. Everything that needs an EP
(``check``, the recommendation, the report) asks here. To add an EP: write its module under
``ortprep/eps/``, add its id to :data:`EP_IDS` and a branch to :func:`_load`.

The EP modules are imported on first use only (``ortprep --help`` loads none of them).
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

from ortprep.core.errors import UsageError
from ortprep.eps.base import EpSpec

EP_IDS = ("nnapi", "coreml-mlprogram", "coreml-neuralnetwork", "xnnpack")
"""Every EP id, in the order results list them."""


def ep_spec(ep_id: str) -> EpSpec:
    """The complete spec of an EP id (a clear usage error for an unknown one)."""
    if ep_id not in EP_IDS:
        raise UsageError(f"unknown EP {ep_id!r}", f"choose from all, {', '.join(EP_IDS)}")
    return _load(ep_id)


@cache
def _load(ep_id: str) -> EpSpec:
    if ep_id == "nnapi":
        from ortprep.eps import nnapi

        return replace(
            nnapi.SPEC,
            check_unit=nnapi.check_unit,
            exact_groups=nnapi.groups,
            partition_input_refusal=nnapi.partition_input_refusal,
        )
    if ep_id == "coreml-mlprogram":
        from ortprep.eps import coreml

        return coreml.MLPROGRAM
    if ep_id == "coreml-neuralnetwork":
        from ortprep.eps import coreml

        return coreml.NEURALNETWORK
    if ep_id == "xnnpack":
        from ortprep.eps import xnnpack

        return replace(xnnpack.SPEC, check_unit=xnnpack.check_unit)
    raise AssertionError(f"{ep_id} is in EP_IDS but has no module")


def parse_eps(value: str) -> tuple[str, ...]:
    """``--ep``'s value: ``all`` or a comma list of EP ids."""
    if value.strip() == "all":
        return EP_IDS
    eps = tuple(e.strip() for e in value.split(",") if e.strip())
    for e in eps:
        ep_spec(e)
    if not eps:
        raise UsageError("--ep is empty", f"choose from all, {', '.join(EP_IDS)}")
    return eps


__all__ = ["EP_IDS", "ep_spec", "parse_eps"]
