"""What a config file holds (``inspect`` of a ``.config``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ortprep.stages.opconfig.model import OpConfig, read_config, summarize


@dataclass(frozen=True)
class ConfigInfo:
    """What a config file holds (``ortprep inspect FILE.config``)."""

    path: str
    config: OpConfig
    size_bytes: int
    format: str = "config"

    @property
    def kind(self) -> str:
        return self.config.kind

    def ops(self) -> list[dict[str, Any]]:
        rows = []
        for domain, op in self.config.ops():
            types = self.config.effective_types(domain, op)
            rows.append(
                {
                    "domain": domain,
                    "op": op,
                    "opsets": list(self.config.opsets_for(domain, op)),
                    "types": None if types is None else types.to_dict(),
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        cfg = self.config
        domains = []
        for domain, by_opset in sorted(cfg.domains().items()):
            domains.append(
                {
                    "domain": domain,
                    "opsets": sorted(by_opset),
                    "ops": len({op for ops in by_opset.values() for op in ops}),
                }
            )
        return {
            "path": self.path,
            "format": self.format,
            "kind": self.kind,
            "size_bytes": self.size_bytes,
            "counts": summarize(cfg)
            | {
                "ops_with_types": sum(
                    1 for d, o in cfg.ops() if cfg.effective_types(d, o) is not None
                )
            },
            "domains": domains,
            "ops": self.ops(),
            "globally_allowed_types": None
            if cfg.globally_allowed_types is None
            else list(cfg.globally_allowed_types),
            "no_ops_specified_means_all_ops_are_required": cfg.all_ops_when_none_listed,
            "requires_all_ops": cfg.requires_all_ops,
            "comments": list(cfg.comments),
        }


def inspect_config(path: Path) -> ConfigInfo:
    """Summarize a config file: kind, counts, ops with their opsets and types."""
    cfg = read_config(path)
    return ConfigInfo(str(path), cfg, path.stat().st_size)
