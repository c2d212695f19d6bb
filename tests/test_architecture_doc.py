"""docs/architecture.md's worked "add an op rule" example is the code as it is: each line of the
example is a line of the file its comment names."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_add_an_op_rule_example_is_the_code():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = doc.split("## Adding an op rule", 1)[1]
    example = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert example is not None
    checked = 0
    source: set[str] = set()
    for line in example.group(1).splitlines():
        if line.startswith("# src/"):
            path = ROOT / line[2:].split(",")[0].split(" ")[0]
            source = {ln.rstrip() for ln in path.read_text(encoding="utf-8").splitlines()}
        elif line.strip():
            assert line.rstrip() in source, line
            checked += 1
    assert checked >= 4
