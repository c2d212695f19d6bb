"""``report.html``: one self-contained page (inline CSS and SVG, no scripts, no network).

Every model-derived string goes through Jinja2's autoescaping; the SVG pictures are drawn by the
template from plain numbers computed in :mod:`ortprep.report.html`.
"""

from __future__ import annotations

from ortprep.report.html import render_report

__all__ = ["render_report"]
