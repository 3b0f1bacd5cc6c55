"""The evaluation report page: `render_report(EvaluationReport) -> str`, one self-contained HTML page
(inline CSS and SVG, no script, no external URL)."""

from __future__ import annotations

from plait.report.html import render_report

__all__ = ["render_report"]
