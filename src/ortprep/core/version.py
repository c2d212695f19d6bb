"""ortprep's version, in the lowest layer so that any module can name it (``ortprep.__version__``
re-exports it; importing it from the package root would pull in the whole API)."""

from __future__ import annotations

ORTPREP_VERSION = "0.1.0"
"""Keep equal to ``project.version`` in pyproject.toml (a test compares them)."""
