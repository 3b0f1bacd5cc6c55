"""Interpretation: which field the fusion leans on, per true class, and the rows where fields disagree.

Two pure functions over tensors the evaluation has already computed (no model calls here):

`weight_distribution` summarises the fusion's per-field weights (gates, attention mass): for each
field its mean and quartiles over the rows where that field is PRESENT, overall and per true class.
Absent fields carry weight 0 by contract (`FusionOutput.weights`); counting those zeros would report
"the model ignores thermal" when thermal was merely missing, so absent rows are left out and `n` says
how many rows each statistic rests on.

`inconsistencies` finds rows where the fields, each seen alone, contradict each other with
confidence: two present fields predicting different classes, both at softmax confidence ≥ threshold
(classification), or present fields whose predictions spread over at least `spread` target standard
deviations (regression). "Seen alone" is the model with only that field present (`run_model_subsets`
under "only:FIELD"), which for decision-level fusions is that field's own head.

This is also what a tampered or mis-joined input looks like. When one field of a row is swapped for
another sample's (a photo from the wrong ticket, a sensor file from the neighbouring machine), each
field on its own still looks typical and is predicted confidently — but for two different samples,
so the fields disagree confidently. An honest hard case tends to make single fields unsure instead.
A high inconsistency score is therefore a reason to look at the row's data before trusting the
fused prediction, which (in the gated or attention fusions) may simply follow whichever field won.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from plait.errors import ConfigError, DataError
from plait.task import Task

DECIMALS = 4


@dataclass(frozen=True)
class WeightStats:
    """One field's weight over the rows where it is present; all None when n is 0."""

    mean: float | None
    q25: float | None
    median: float | None
    q75: float | None
    n: int

    def to_json(self) -> dict[str, Any]:
        return {"mean": self.mean, "q25": self.q25, "median": self.median, "q75": self.q75, "n": self.n}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> WeightStats:
        return cls(raw["mean"], raw["q25"], raw["median"], raw["q75"], int(raw.get("n", 0)))


@dataclass(frozen=True)
class WeightDistribution:
    """overall[field]; by_class[class name][field] (empty for regression); fields in `field_order`."""

    field_order: tuple[str, ...]
    overall: Mapping[str, WeightStats]
    by_class: Mapping[str, Mapping[str, WeightStats]]

    def to_json(self) -> dict[str, Any]:
        return {
            "field_order": list(self.field_order),
            "overall": {f: s.to_json() for f, s in self.overall.items()},
            "by_class": {c: {f: s.to_json() for f, s in stats.items()} for c, stats in self.by_class.items()},
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> WeightDistribution:
        overall = {f: WeightStats.from_json(s) for f, s in raw["overall"].items()}
        return cls(
            field_order=tuple(raw.get("field_order") or overall),
            overall=overall,
            by_class={
                str(c): {f: WeightStats.from_json(s) for f, s in stats.items()}
                for c, stats in (raw.get("by_class") or {}).items()
            },
        )


@dataclass(frozen=True)
class FieldPrediction:
    """What one field alone predicts: a class name and its softmax confidence (classification), or a
    value in target units and confidence None (regression)."""

    prediction: str | float
    confidence: float | None

    def to_json(self) -> dict[str, Any]:
        return {"prediction": self.prediction, "confidence": self.confidence}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> FieldPrediction:
        return cls(raw["prediction"], raw.get("confidence"))


@dataclass(frozen=True)
class InconsistentRow:
    row: int  # the table's row number
    target: str | float
    prediction: str | float  # the fused model's (all fields)
    # classification: min confidence of the most confident disagreeing pair; regression: spread in stds
    score: float
    fields: Mapping[str, FieldPrediction]  # present fields only

    def to_json(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "target": self.target,
            "prediction": self.prediction,
            "score": self.score,
            "fields": {f: p.to_json() for f, p in self.fields.items()},
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> InconsistentRow:
        return cls(
            row=int(raw["row"]),
            target=raw["target"],
            prediction=raw["prediction"],
            score=float(raw["score"]),
            fields={f: FieldPrediction.from_json(p) for f, p in raw["fields"].items()},
        )


@dataclass(frozen=True)
class Inconsistencies:
    threshold: float  # classification: confidence both fields reach; regression: the spread in stds
    rate: float  # share of rows (with ≥ 2 present fields) that are inconsistent; 0.0 if no row has 2
    rows: tuple[InconsistentRow, ...]  # most inconsistent first, at most `top`
    compared: int  # rows with ≥ 2 present fields: 0 (a one-field model) means nothing was compared

    def to_json(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "rate": self.rate,
            "rows": [r.to_json() for r in self.rows],
            "rows_compared": self.compared,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Inconsistencies:
        return cls(
            threshold=float(raw["threshold"]),
            rate=float(raw["rate"]),
            rows=tuple(InconsistentRow.from_json(r) for r in raw["rows"]),
            compared=int(raw["rows_compared"]),
        )


@dataclass(frozen=True)
class Interpretation:
    """The report's `interpretation` section; weights None when the fusion exposes none."""

    weights: WeightDistribution | None
    inconsistencies: Inconsistencies

    def to_json(self) -> dict[str, Any]:
        return {
            "weights": None if self.weights is None else self.weights.to_json(),
            "inconsistencies": self.inconsistencies.to_json(),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Interpretation:
        weights = raw.get("weights")
        return cls(
            weights=None if weights is None else WeightDistribution.from_json(weights),
            inconsistencies=Inconsistencies.from_json(raw["inconsistencies"]),
        )


def weight_distribution(
    weights: Tensor,
    field_order: Sequence[str],
    present: Mapping[str, Tensor],
    target: Tensor,
    task: Task,
) -> WeightDistribution:
    """Mean and quartiles of each field's fusion weight over the rows where the field is present.

    weights (N, M) in `field_order`; present[f] BoolTensor[N]; target (N,) class indices
    (classification) or values (regression, only its length is used). An absent field's weight is 0
    by contract, so absent rows are excluded — including them would drag every statistic of an
    often-missing field towards 0. A field never present (overall or within a class) gets n 0 and
    None statistics. Quantiles are linear interpolation (numpy's default); values rounded to 4 places.
    """
    order = tuple(field_order)
    if len(set(order)) != len(order):
        raise DataError(f"weight_distribution: field_order {list(order)} names a field twice")
    w = _cpu(weights).double()
    if w.ndim != 2 or w.shape[1] != len(order):
        raise DataError(
            f"weight_distribution: expected weights (N, {len(order)}) for fields {list(order)}, "
            f"got shape {tuple(w.shape)}"
        )
    n = int(w.shape[0])
    mask = _presence(present, order, n, "weight_distribution")
    target_cpu = _target(target, n, task, "weight_distribution")
    overall = _stats_per_field(w, mask, order, torch.ones(n, dtype=torch.bool))
    by_class: dict[str, dict[str, WeightStats]] = {}
    if task.is_classification:
        for k, name in enumerate(task.classes):
            by_class[name] = _stats_per_field(w, mask, order, target_cpu == k)
    return WeightDistribution(field_order=order, overall=overall, by_class=by_class)


def inconsistencies(
    per_field: Mapping[str, Tensor],
    present: Mapping[str, Tensor],
    fused: Tensor,
    target: Tensor,
    task: Task,
    rows: Sequence[int] | Tensor,
    *,
    threshold: float = 0.8,
    spread: float = 1.0,
    top: int = 20,
) -> Inconsistencies:
    """Rows where fields, each alone, confidently contradict each other.

    per_field[f] (N, K): the model's output with only f present — logits (classification) or
    standardised predictions, K = 1 (regression). fused (N, K): the output with every field. target
    (N,): class indices, or standardised values like the outputs. rows: each row's table row number.

    Classification: a row is inconsistent when two present fields predict different classes, each
    with softmax confidence ≥ `threshold`; its score is the largest min(conf_f, conf_g) over such
    pairs (0 otherwise). Regression: the score is max - min of the present fields' predictions in
    target standard deviations, inconsistent when ≥ `spread` (reported as `threshold`); predictions
    are listed in target units. Rows with fewer than two present fields are never inconsistent and
    are left out of `rate`; `compared` counts the others (0 for a one-field model: nothing to
    compare). At most `top` rows are listed, highest score first, ties by row number.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"inconsistencies: threshold must be a confidence in [0, 1], got {threshold}")
    if not spread > 0.0:
        raise ConfigError(f"inconsistencies: spread must be > 0 target standard deviations, got {spread}")
    if top < 0:
        raise ConfigError(f"inconsistencies: top must be ≥ 0, got {top}")
    order = tuple(per_field)
    if not order:
        raise DataError("inconsistencies: per_field names no field; pass each field's 'only:FIELD' output")
    fused_cpu = _cpu(fused).double()
    k = task.n_outputs
    if fused_cpu.ndim != 2 or fused_cpu.shape[1] != k:
        raise DataError(
            f"inconsistencies: expected fused output (N, {k}) for this task, got {tuple(fused_cpu.shape)}"
        )
    n = int(fused_cpu.shape[0])
    outputs = torch.stack([_output(per_field[f], f, n, k) for f in order], dim=1)  # M × (N, K) -> (N, M, K)
    mask = _presence(present, order, n, "inconsistencies")  # (N, M)
    target_cpu = _target(target, n, task, "inconsistencies")
    row_numbers = torch.as_tensor(rows).reshape(-1).long()
    if row_numbers.shape[0] != n:
        raise DataError(
            f"inconsistencies: expected {n} row numbers (one per output row), got {row_numbers.shape[0]}"
        )
    if task.is_classification:
        score, flagged, field_pred, field_conf = _classification_scores(outputs, mask, threshold)
    else:
        score, flagged, field_pred = _regression_scores(outputs[:, :, 0], mask, spread, task)
        field_conf = None
    comparable = mask.sum(dim=1) >= 2
    n_comparable = int(comparable.sum())
    rate = _round(float(flagged.sum()) / n_comparable) if n_comparable > 0 else 0.0
    listed = sorted(
        (int(i) for i in torch.nonzero(flagged).reshape(-1)),
        key=lambda i: (-_round(float(score[i])), int(row_numbers[i])),
    )[:top]
    out_rows = tuple(
        InconsistentRow(
            row=int(row_numbers[i]),
            target=_label(target_cpu[i], task),
            prediction=_label(fused_cpu[i], task),
            score=_round(float(score[i])),
            fields={
                f: FieldPrediction(
                    prediction=_field_label(field_pred[i, j], task),
                    confidence=None if field_conf is None else _round(float(field_conf[i, j])),
                )
                for j, f in enumerate(order)
                if bool(mask[i, j])
            },
        )
        for i in listed
    )
    return Inconsistencies(
        threshold=float(threshold if task.is_classification else spread),
        rate=rate,
        rows=out_rows,
        compared=n_comparable,
    )


def _classification_scores(
    logits: Tensor, mask: Tensor, threshold: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """logits (N, M, K), mask (N, M) -> score (N,), flagged (N,), prediction (N, M), confidence (N, M)."""
    conf, pred = torch.softmax(logits, dim=-1).max(dim=-1)  # (N, M, K) -> (N, M)
    sure = mask & (conf >= threshold)
    score = torch.zeros(logits.shape[0], dtype=torch.float64)
    flagged = torch.zeros(logits.shape[0], dtype=torch.bool)
    m = logits.shape[1]
    for a in range(m):
        for b in range(a + 1, m):
            clash = sure[:, a] & sure[:, b] & (pred[:, a] != pred[:, b])
            pair = torch.minimum(conf[:, a], conf[:, b])
            score = torch.where(clash, torch.maximum(score, pair), score)
            flagged |= clash
    return score, flagged, pred, conf


def _regression_scores(
    values: Tensor, mask: Tensor, spread: float, task: Task
) -> tuple[Tensor, Tensor, Tensor]:
    """values (N, M) standardised -> spread in stds (N,), flagged (N,), predictions in target units (N, M)."""
    high = torch.where(mask, values, torch.full_like(values, -torch.inf)).max(dim=1).values
    low = torch.where(mask, values, torch.full_like(values, torch.inf)).min(dim=1).values
    comparable = mask.sum(dim=1) >= 2
    score = torch.where(comparable, high - low, torch.zeros_like(high))
    in_units = task.to_target_units(values.reshape(-1)).reshape(values.shape)  # (N, M)
    return score, comparable & (score >= spread), in_units


def _stats_per_field(w: Tensor, mask: Tensor, order: tuple[str, ...], rows: Tensor) -> dict[str, WeightStats]:
    return {f: _stats(w[mask[:, j] & rows, j]) for j, f in enumerate(order)}


def _stats(values: Tensor) -> WeightStats:
    if values.numel() == 0:
        return WeightStats(mean=None, q25=None, median=None, q75=None, n=0)
    x = values.numpy()
    q25, median, q75 = np.quantile(x, [0.25, 0.5, 0.75])
    return WeightStats(
        mean=_round(float(x.mean())), q25=_round(q25), median=_round(median), q75=_round(q75), n=int(x.size)
    )


def _presence(present: Mapping[str, Tensor], order: tuple[str, ...], n: int, where: str) -> Tensor:
    """present[f] BoolTensor[N] for exactly the fields in `order` -> (N, M) in that order."""
    missing = [f for f in order if f not in present]
    extra = [f for f in present if f not in order]
    if missing or extra:
        raise DataError(
            f"{where}: presence masks must name exactly the fields {list(order)}; "
            f"missing {missing}, unexpected {extra}"
        )
    columns = []
    for f in order:
        p = _cpu(present[f])
        if p.dtype != torch.bool or p.shape != (n,):
            raise DataError(
                f"{where}: present['{f}'] must be a BoolTensor of shape ({n},), "
                f"got {p.dtype} of shape {tuple(p.shape)}"
            )
        columns.append(p)
    return torch.stack(columns, dim=1) if columns else torch.zeros(n, 0, dtype=torch.bool)  # (N, M)


def _target(target: Tensor, n: int, task: Task, where: str) -> Tensor:
    t = _cpu(target)
    if t.shape != (n,):
        raise DataError(f"{where}: expected target of shape ({n},), got {tuple(t.shape)}")
    if task.is_classification:
        if t.dtype.is_floating_point or t.dtype == torch.bool:
            raise DataError(
                f"{where}: classification target must hold class indices (integers), got {t.dtype}"
            )
        if n > 0 and (int(t.min()) < 0 or int(t.max()) >= len(task.classes)):
            raise DataError(
                f"{where}: target class indices must lie in [0, {len(task.classes)}) for classes "
                f"{list(task.classes)}, got values from {int(t.min())} to {int(t.max())}"
            )
        return t.long()
    return t.double()


def _output(x: Tensor, name: str, n: int, k: int) -> Tensor:
    out = _cpu(x).double()
    if out.shape != (n, k):
        raise DataError(
            f"inconsistencies: per_field['{name}'] must have the fused output's shape ({n}, {k}), "
            f"got {tuple(out.shape)}"
        )
    return out


def _label(value: Tensor, task: Task) -> str | float:
    """A target (scalar) or an output row (K,) as a class name or a value in target units."""
    answer = task.answer(value)
    return answer if isinstance(answer, str) else _round(answer)


def _field_label(value: Tensor, task: Task) -> str | float:
    """A field's prediction: a class index, or a value already in target units."""
    return task.classes[int(value)] if task.is_classification else _round(float(value))


def _round(x: float) -> float:
    return round(float(x), DECIMALS)


def _cpu(x: Tensor) -> Tensor:
    return x.detach().cpu()
