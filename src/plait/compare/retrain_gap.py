"""The retrain gap: what a field going missing costs a fused model beyond what it costs to have
never had the field.

For a fusion row and a field F, the reference is a plait model trained on every field but F: the
unimodal row of the other field when there are two fields, or the `without-F` row that `plait
compare --retrain-ablation` trains. The gap is the reference's metric minus the fused model's with
F absent at test time, signed so that a positive gap is a loss: the fused model degrades worse than
retraining would. ≤ 0 (within noise) is the target: one model that copes with the field missing as
well as a model built for that case.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from plait.compare.result import FUSION, RETRAINED, UNIMODAL, CompareRow
from plait.task import gain

REFERENCE_KINDS = (UNIMODAL, RETRAINED)


def references(rows: Sequence[CompareRow], fields: Sequence[str]) -> dict[str, CompareRow]:
    """field → the successful plait row trained on exactly every other field (when there is one);
    a retrained row wins over a unimodal row of the same fields (they are the same model)."""
    out: dict[str, CompareRow] = {}
    for field in fields:
        others = set(fields) - {field}
        found = [r for r in rows if r.ok and r.kind in REFERENCE_KINDS and set(r.fields) == others]
        found.sort(key=lambda r: r.kind != RETRAINED)
        if found and others:
            out[field] = found[0]
    return out


def retrain_gaps(row: CompareRow, refs: Mapping[str, CompareRow], higher_is_better: bool) -> dict[str, float]:
    """field → the retrain gap of a fusion row (positive: the field missing costs the fused model
    more than retraining without it); fields without a reference or a `without` figure are left out."""
    if row.kind != FUSION or not row.ok:
        return {}
    out: dict[str, float] = {}
    for field, ref in refs.items():
        absent = row.without_field.get(field)
        if absent is None or ref.metric is None:
            continue
        out[field] = gain(ref.metric, absent, higher_is_better)  # the retrained model's edge
    return out


def retrain_plans(
    fusion: str, fields: Sequence[str], *, unimodal_rows: bool, single_field_fusion: str
) -> list[CompareRow]:
    """The `without-F` rows `--retrain-ablation` adds: `fusion` trained on every field but F
    (`single_field_fusion` when one field is left), for each F whose reference is not already a
    unimodal row (two fields with unimodal rows need none)."""
    if len(fields) < 2:
        return []
    plans = []
    for field in fields:
        others = tuple(f for f in fields if f != field)
        if unimodal_rows and len(others) == 1:
            continue
        how = single_field_fusion if len(others) == 1 else fusion
        plans.append(CompareRow(name=f"without-{field}", kind=RETRAINED, fusion=how, fields=others))
    return plans


def comparison_gaps(
    rows: Sequence[CompareRow], fields: Sequence[str], higher_is_better: bool
) -> dict[str, dict[str, float]]:
    """fusion row name → field → retrain gap, over the rows of one comparison (or one CV run);
    rows with no gap measured are left out."""
    refs = references(rows, fields)
    out = {r.name: retrain_gaps(r, refs, higher_is_better) for r in rows}
    return {name: gaps for name, gaps in out.items() if gaps}
