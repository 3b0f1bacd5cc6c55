"""`plait compare`: every fusion strategy and every field alone, trained on the same prepared data."""

from __future__ import annotations

from plait.compare.report import write_reports
from plait.compare.result import CompareRow, Comparison
from plait.compare.run import compare, resolve_fusions

__all__ = ["CompareRow", "Comparison", "compare", "resolve_fusions", "write_reports"]
