"""The comparison as one table of plain strings, shared by compare.md, compare.html and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from plait.compare.result import BASELINE, FUSION, CompareRow, Comparison
from plait.compare.retrain_gap import comparison_gaps

BEST_UNIMODAL = "★"  # marks the best unimodal baseline
RETRAINED = "*"  # a `without FIELD` figure from a model retrained without the field (boosting)
NONE = "—"
LEGEND = (
    f"{BEST_UNIMODAL} marks the best unimodal baseline (one field, trained alone); `without FIELD` is "
    "the model's metric with that field removed at test time, and for the boosting baseline (marked "
    f"{RETRAINED}) the metric of boosting retrained without the field, as a user's own model would be."
)


@dataclass(frozen=True)
class Cells:
    row: CompareRow
    cells: tuple[str, ...]
    best_unimodal: bool


def headers(comparison: Comparison) -> tuple[str, ...]:
    ece = ("ECE",) if comparison.task.is_classification else ()
    return (
        "#",
        "model",
        "kind",
        "fields",
        comparison.metric_name,
        *ece,
        "parameters",
        "train s",
        "ms/sample (batched)",
        "ms (1 row)",
        *(f"without {f}" for f in comparison.fields),
        "robustness (all fields)",
        "eff. robustness vs late",
        "notes",
    )


def table_rows(comparison: Comparison) -> list[Cells]:
    """One entry per row, ranked best first; failed rows last."""
    best = comparison.best("unimodal")
    out = []
    rank = 0
    for row in comparison.ranked():
        if row.ok:
            rank += 1
        is_best = best is not None and row is best
        ece = (_num(row.ece, 3),) if comparison.task.is_classification else ()
        cells = (
            str(rank) if row.ok else NONE,
            f"{row.name} {BEST_UNIMODAL}" if is_best else row.name,
            row.kind,
            "all" if row.kind in (FUSION, BASELINE) else ", ".join(row.fields),
            _num(row.metric, 4) if row.ok else "failed",
            *ece,
            NONE if row.parameters is None else f"{row.parameters:,}",
            _num(row.train_seconds, 1),
            _num(row.latency_ms, 3),
            _num(row.latency_single_ms, 2),
            *(_without(row, f) for f in comparison.fields),
            _num(row.relative_robustness, 3),
            NONE if row.effective_robustness is None else f"{row.effective_robustness:+.3f}",
            _notes(row),
        )
        out.append(Cells(row=row, cells=cells, best_unimodal=is_best))
    return out


def _without(row: CompareRow, field: str) -> str:
    marker = RETRAINED if field in row.retrained_without else ""
    return _num(row.left_out(field), 4) + marker


def _num(value: float | None, digits: int) -> str:
    return NONE if value is None else f"{value:.{digits}f}"


def _notes(row: CompareRow) -> str:
    if row.error is not None:
        return f"failed: {row.error}"
    if row.warnings:
        return f"{len(row.warnings)} balance warning{'s' if len(row.warnings) != 1 else ''}"
    return ""


GAP_LEGEND = (
    "Retrain gap: the metric of a plait model trained without the field (the unimodal row of the "
    "other field, or the `without-FIELD` row of --retrain-ablation) minus this model's with the field "
    "absent at test time. Positive: a missing field costs this model more than retraining would; "
    "≤ 0 is the target."
)


def gap_rows(comparison: Comparison) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """(headers, rows) of the retrain gap per fusion row and field, in ranked order; no rows when
    no reference model was trained."""
    gaps = comparison_gaps(comparison.rows, comparison.fields, comparison.higher_is_better)
    names = ("model", *comparison.fields)
    rows = [
        (row.name, *(_signed(gaps[row.name].get(f)) for f in comparison.fields))
        for row in comparison.ranked()
        if row.name in gaps
    ]
    return names, rows


def _signed(value: float | None) -> str:
    return NONE if value is None else f"{value:+.4f}"
