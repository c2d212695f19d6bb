"""The CI gate: ``--require EP=VERDICT`` and ``--require-coverage EP=PERCENT`` on a check result.

A requirement names an EP and either the least verdict it must reach (``yes`` or ``maybe``) or
the least share of the model's nodes it must take. :func:`evaluate` compares them with a
:class:`~ortprep.stages.check.CheckResult`; a failure names the EP, what it reached, what was
required and the refusal that costs it most, so a red CI job says what to fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ortprep.core.errors import UsageError

if TYPE_CHECKING:
    from ortprep.stages.check import CheckResult, EpReport

VERDICT_RANK = {"no": 0, "maybe": 1, "yes": 2}
REQUIRABLE = ("yes", "maybe")


@dataclass(frozen=True)
class Requirement:
    """One EP's bar: a least verdict, or a least share of nodes taken (percent)."""

    ep: str
    verdict: str | None = None
    coverage: float | None = None

    def __str__(self) -> str:
        if self.verdict is not None:
            return f"{self.ep}={self.verdict}"
        return f"{self.ep}={self.coverage:g}%"

    def to_dict(self) -> dict[str, Any]:
        return {"ep": self.ep, "verdict": self.verdict, "coverage": self.coverage}


@dataclass(frozen=True)
class GateFailure:
    """An EP below its bar, with the refusal that costs it most."""

    requirement: Requirement
    verdict: str
    coverage: float
    top_reason: str

    @property
    def message(self) -> str:
        r = self.requirement
        if r.verdict is not None:
            got = f"verdict {self.verdict}, required {r.verdict}"
        else:
            got = f"takes {self.coverage:.1f}% of the nodes, required {r.coverage:g}%"
        return f"{r.ep}: {got} (top reason: {self.top_reason})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "requirement": str(self.requirement),
            "ep": self.requirement.ep,
            "verdict": self.verdict,
            "coverage": round(self.coverage, 2),
            "top_reason": self.top_reason,
            "message": self.message,
        }


@dataclass(frozen=True)
class Gate:
    """The requirements and the ones a check result did not meet."""

    requirements: tuple[Requirement, ...]
    failures: tuple[GateFailure, ...]

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "requirements": [str(r) for r in self.requirements],
            "failures": [f.to_dict() for f in self.failures],
        }


def _pairs(values: Mapping[str, Any] | Iterable[str] | None, option: str) -> list[tuple[str, str]]:
    """``{"nnapi": "yes"}`` or ``["nnapi=yes"]`` -> ``[("nnapi", "yes")]``."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    if isinstance(values, Mapping):
        return [(str(k).strip(), str(v).strip()) for k, v in values.items()]
    pairs = []
    for item in values:
        ep, sep, value = str(item).partition("=")
        if not sep or not ep.strip() or not value.strip():
            example = "nnapi=yes" if option == "--require" else "nnapi=80"
            raise UsageError(
                f"{option} {item!r}: expected EP=VALUE", f"example: {option} {example}"
            )
        pairs.append((ep.strip(), value.strip()))
    return pairs


def parse_requirements(
    require: Mapping[str, str] | Iterable[str] | None,
    require_coverage: Mapping[str, float | str] | Iterable[str] | None,
    checked_eps: Iterable[str],
) -> tuple[Requirement, ...]:
    """The requirements of ``--require`` / ``--require-coverage`` (strings ``EP=VALUE`` or a
    mapping), validated against the EPs being checked: a bad value is a usage error (exit 2)."""
    checked = tuple(checked_eps)
    found: list[Requirement] = []
    seen: set[tuple[str, str]] = set()

    def known(ep: str, option: str, text: str) -> None:
        if ep not in checked:
            raise UsageError(
                f"{option} {text}: {ep!r} is not among the EPs checked ({', '.join(checked)})",
                "require an EP that is checked, or add it with --ep",
            )
        if (ep, option) in seen:
            raise UsageError(f"{option} names {ep} twice", "give one requirement per EP")
        seen.add((ep, option))

    for ep, value in _pairs(require, "--require"):
        text = f"{ep}={value}"
        known(ep, "--require", text)
        verdict = value.lower()
        if verdict not in REQUIRABLE:
            raise UsageError(
                f"--require {text}: the verdict must be yes or maybe",
                "example: --require nnapi=yes (yes: only 'yes' passes; maybe: 'maybe' or 'yes')",
            )
        found.append(Requirement(ep, verdict=verdict))
    for ep, value in _pairs(require_coverage, "--require-coverage"):
        text = f"{ep}={value}"
        known(ep, "--require-coverage", text)
        number = value[:-1] if value.endswith("%") else value
        try:
            percent = float(number)
        except ValueError:
            percent = float("nan")
        if not 0 <= percent <= 100:  # also refuses nan
            raise UsageError(
                f"--require-coverage {text}: expected a percentage from 0 to 100",
                "example: --require-coverage nnapi=80 (80% of the nodes on NNAPI)",
            )
        found.append(Requirement(ep, coverage=percent))
    return tuple(found)


def coverage(report: EpReport) -> float:
    """The share of the model's nodes (subgraphs included) the EP takes, in percent."""
    o = report.outcome
    return 100.0 * o.nodes_taken / o.nodes_total if o.nodes_total else 0.0


def top_reason(report: EpReport) -> str:
    """The refusal whose acceptance gains most, or the EP's summary when nothing is refused."""
    if report.top_reasons:
        g = report.top_reasons[0]
        return f"{g.nodes} x {g.op}: {g.reason}"
    return report.summary


def evaluate(requirements: Iterable[Requirement], result: CheckResult) -> Gate:
    """Which requirements ``result`` does not meet."""
    requirements = tuple(requirements)
    reports = {r.ep: r for r in result.eps}
    failures = []
    for req in requirements:
        report = reports.get(req.ep)
        if report is None:  # parse_requirements only admits checked EPs
            raise UsageError(f"--require {req}: {req.ep} was not checked")
        verdict, share = report.outcome.verdict, coverage(report)
        if req.verdict is not None:
            failed = VERDICT_RANK[verdict] < VERDICT_RANK[req.verdict]
        else:
            failed = req.coverage is not None and share < req.coverage
        if failed:
            failures.append(GateFailure(req, verdict, share, top_reason(report)))
    return Gate(requirements, tuple(failures))
