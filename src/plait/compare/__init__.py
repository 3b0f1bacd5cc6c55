"""`plait compare`: every fusion strategy and every field alone, trained on the same prepared data;
`cross_validate` does it over K folds × S seeds."""

from __future__ import annotations

from plait.compare.crossval import cross_validate
from plait.compare.cv_report import write_cv_reports
from plait.compare.cv_result import CrossValidation
from plait.compare.report import write_reports
from plait.compare.result import CompareRow, Comparison
from plait.compare.run import compare, resolve_fusions

__all__ = [
    "CompareRow",
    "Comparison",
    "CrossValidation",
    "compare",
    "cross_validate",
    "resolve_fusions",
    "write_cv_reports",
    "write_reports",
]
