"""Each row's answer from a model run — the one place a prediction is assembled, for
`Predictor.predict` and for `plait serve` alike.

A run's `ModelOutput` holds raw outputs. `calibrated` divides each row's logits by the temperature
of the fields that row has (the one place calibration is applied at prediction time); `row_answers`
turns the run into one `Prediction` per row; `contributions` measures, from leave-one-out runs, how
much each field gave to those answers. All three are pure functions of tensors and the task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from plait.models.calibration import SubsetTemperatures
from plait.task import Task
from plait.types import ModelOutput


@dataclass(frozen=True)
class Example:
    """A real item of an imputed field, near its imputed embedding: what it would have been like."""

    row: int  # of the table the examples came from
    score: float  # cosine similarity in the shared space
    values: Mapping[str, Any]  # the item's columns (a file path, a text)

    def to_json(self) -> dict[str, Any]:
        return {"row": self.row, "score": self.score, "values": dict(self.values)}


@dataclass(frozen=True)
class Prediction:
    prediction: str | float
    probabilities: dict[str, float] | None  # classification only
    fields_used: tuple[str, ...]  # observed: the row's own value of the field was used
    fields_missing: tuple[str, ...]  # neither observed nor imputed: left out
    degraded: bool  # True when any field was missing or imputed
    weights: dict[str, float] | None  # the fusion's per-field weights for this row, when it has them
    model_id: str
    temperature: float | None = None  # the calibration temperature of this row's fields; None: raw
    # fields synthesised in the shared space from the others (`impute="embedding"`), not observed
    fields_imputed: tuple[str, ...] = ()
    examples: Mapping[str, tuple[Example, ...]] | None = None  # imputed field -> nearest real items

    def to_json(self) -> dict[str, Any]:
        return {
            "prediction": self.prediction,
            "probabilities": self.probabilities,
            "fields_used": list(self.fields_used),
            "fields_imputed": list(self.fields_imputed),
            "fields_missing": list(self.fields_missing),
            "degraded": self.degraded,
            "weights": self.weights,
            "model_id": self.model_id,
            "temperature": self.temperature,
            **(
                {}
                if self.examples is None
                else {"examples": {f: [e.to_json() for e in found] for f, found in self.examples.items()}}
            ),
        }


def calibrated(
    logits: Tensor,
    present: Mapping[str, Tensor],
    calibration: SubsetTemperatures | None,
    imputed: Mapping[str, Tensor] | None = None,
) -> Tensor:
    """Logits (N, K), each row divided by the temperature of its own present fields (present[f]:
    BoolTensor[N]; with imputed fields, of that pair of sets); as they are when `calibration` is
    None. The class does not change (T > 0)."""
    if calibration is None:
        return logits
    return calibration.apply_temperatures(logits, present, imputed)  # (N, K) / T(fields of row i)


def row_answers(
    out: ModelOutput,
    present: Mapping[str, Tensor],
    *,
    fields: Sequence[str],
    task: Task,
    calibration: SubsetTemperatures | None,
    model_id: str,
    imputed: Mapping[str, Tensor] | None = None,
) -> list[Prediction]:
    """One Prediction per row of a run: `out.output` (N, K) raw, present[f] BoolTensor[N] for each
    of `fields` (the model's fields, in model order) — observed values only; imputed[f]
    BoolTensor[N] for fields synthesised instead (`impute="embedding"`). With `calibration` a
    classifier's probabilities are those of `calibrated` logits and each answer names its
    temperature; None gives the raw softmax. A regression has no probabilities and ignores
    `calibration`."""
    temperatures = _for_task(task, calibration)
    probabilities = None
    if task.is_classification:
        scaled = calibrated(out.output, present, temperatures, imputed)  # (N, K)
        probabilities = task.probabilities(scaled).tolist()
    weights = None if out.weights is None else out.weights.tolist()  # (N, M) in out.field_order
    rows = torch.stack([present[f].bool() for f in fields], dim=1).tolist()  # (N, F)
    filled = imputed or {}
    synthesised = torch.stack(
        [filled[f].bool() if f in filled else torch.zeros_like(present[f].bool()) for f in fields], dim=1
    ).tolist()  # (N, F)
    answers: list[Prediction] = []
    for i, row in enumerate(rows):
        used = tuple(f for f, on in zip(fields, row, strict=True) if on)
        made = tuple(f for f, on in zip(fields, synthesised[i], strict=True) if on)
        missing = tuple(f for f, on, m in zip(fields, row, synthesised[i], strict=True) if not on and not m)
        answers.append(
            Prediction(
                prediction=task.answer(out.output[i]),  # from the raw output: T > 0 keeps the class
                probabilities=(
                    None
                    if probabilities is None
                    else {c: round(p, 6) for c, p in zip(task.classes, probabilities[i], strict=True)}
                ),
                fields_used=used,
                fields_missing=missing,
                degraded=bool(missing) or bool(made),
                weights=(
                    None
                    if weights is None
                    else {f: round(w, 6) for f, w in zip(out.field_order, weights[i], strict=True)}
                ),
                model_id=model_id,
                temperature=None if temperatures is None else temperatures.temperature_for(used, made),
                fields_imputed=made,
            )
        )
    return answers


def contributions(
    out: ModelOutput,
    present: Mapping[str, Tensor],
    left_out: Mapping[str, ModelOutput],
    *,
    task: Task,
    calibration: SubsetTemperatures | None,
    imputed: Mapping[str, Tensor] | None = None,
) -> dict[str, Tensor]:
    """field -> (N,) how much each row's answer falls when that field is left out: the probability
    of the answered class (calibrated as the answer is), or for a regression the prediction in
    target units. `left_out[f]`: the run under `present` with field f marked absent in every row.
    With `imputed`, `present` counts the imputed fields too (what the fusion read)."""
    temperatures = _for_task(task, calibration)
    filled = dict(imputed or {})
    if task.is_classification:
        chosen = out.output.argmax(dim=1, keepdim=True)  # (N, 1)

        def score(output: Tensor, mask: Mapping[str, Tensor], made: Mapping[str, Tensor]) -> Tensor:
            observed = {f: m.bool() & ~made[f].bool() if f in made else m for f, m in mask.items()}
            logits = calibrated(output, observed, temperatures, made or None)
            return task.probabilities(logits).gather(1, chosen).squeeze(1)  # (N,)

    else:

        def score(output: Tensor, mask: Mapping[str, Tensor], made: Mapping[str, Tensor]) -> Tensor:
            return output[:, 0] * task.target_std  # (N,); the target mean cancels in the drop

    full = score(out.output, present, filled)
    drops: dict[str, Tensor] = {}
    for field, run in left_out.items():
        without = {**present, field: torch.zeros_like(present[field])}
        made = {**filled, field: torch.zeros_like(present[field])} if field in filled else filled
        drops[field] = full - score(run.output, without, made)
    return drops


def _for_task(task: Task, calibration: SubsetTemperatures | None) -> SubsetTemperatures | None:
    """The temperatures a task's answers use: a classifier's; a regression has none."""
    return calibration if task.is_classification else None
