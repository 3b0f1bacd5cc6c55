"""The shared space's section of an evaluation: retrieval in both directions of every aligned pair
(plait.evaluation.retrieval) and, for a classifier with a text field in the space, zero-shot
accuracy from label prompts (plait.evaluation.zero_shot)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from plait.data.dataset import TensorTable
from plait.evaluation.retrieval import METHOD, DirectionRetrieval, pair_retrieval
from plait.evaluation.zero_shot import ZeroShot, prompt_embeddings, text_partners, zero_shot_accuracy
from plait.models.inference import run_embeddings, run_imputed, run_model_subsets

if TYPE_CHECKING:
    from plait.bundle import TrainedModel


@dataclass(frozen=True)
class FieldImputation:
    """The headline metric with `field` missing from every evaluated row: left absent, and
    synthesised from the other fields (`impute="embedding"`)."""

    field: str
    metric: str
    absent: float
    imputed: float
    rows: int

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "metric": self.metric,
            "absent": self.absent,
            "imputed": self.imputed,
            "rows": self.rows,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> FieldImputation:
        return cls(
            field=str(raw["field"]),
            metric=str(raw["metric"]),
            absent=float(raw["absent"]),
            imputed=float(raw["imputed"]),
            rows=int(raw["rows"]),
        )


@dataclass(frozen=True)
class SpaceEvaluation:
    dim: int
    temperature: float  # the learned InfoNCE temperature
    directions: tuple[DirectionRetrieval, ...]
    zero_shot: tuple[ZeroShot, ...] = ()
    method: str = METHOD
    imputation: tuple[FieldImputation, ...] = ()  # with an embedding imputer (space.impute)

    def to_json(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "temperature": self.temperature,
            "method": self.method,
            "retrieval": [d.to_json() for d in self.directions],
            "zero_shot": [z.to_json() for z in self.zero_shot],
            "imputation": [i.to_json() for i in self.imputation],
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SpaceEvaluation:
        return cls(
            dim=int(raw["dim"]),
            temperature=float(raw["temperature"]),
            directions=tuple(DirectionRetrieval.from_json(d) for d in raw["retrieval"]),
            zero_shot=tuple(ZeroShot.from_json(z) for z in raw.get("zero_shot") or ()),
            method=str(raw.get("method", METHOD)),
            imputation=tuple(FieldImputation.from_json(i) for i in raw.get("imputation") or ()),
        )


def evaluate_space(
    trained: TrainedModel,
    tensors: TensorTable,
    rows: Sequence[int] | np.ndarray,
    without: Mapping[str, float] | None = None,
) -> SpaceEvaluation | None:
    """Retrieval and zero-shot on `rows` of `tensors`; None for a model without a shared space.
    `without`: field -> the headline metric on these rows with the field left out, when the
    caller's ablation has it (so imputing is compared against it, not run again)."""
    model = trained.model
    space = model.space
    if space is None:
        return None
    idx = torch.as_tensor(np.asarray(rows), dtype=torch.long)
    embedded = run_embeddings(model, tensors, idx)  # field -> (N, dim)
    present = {f: tensors.present[f][idx].bool() for f in embedded}
    labels = None
    if trained.task.is_classification and tensors.target is not None:
        labels = tensors.target[idx].long()
    directions = pair_retrieval(embedded, present, space.pairs, labels)
    shots: list[ZeroShot] = []
    spec = trained.config.shared_space
    if labels is not None and spec is not None:
        for field, text in text_partners(model, trained.modalities):
            if field == text:
                continue
            prompts = [spec.prompt.format(label=c) for c in trained.task.classes]
            vectors = prompt_embeddings(model, trained.modalities[text], text, prompts, Path("."))
            accuracy, n, chance = zero_shot_accuracy(embedded[field], present[field], labels, vectors)
            if n:
                shots.append(ZeroShot(field, text, spec.prompt, accuracy, n, chance))
    return SpaceEvaluation(
        dim=space.dim,
        temperature=round(float(1.0 / space.scale().detach()), 6),
        directions=directions,
        zero_shot=tuple(shots),
        imputation=_imputation(trained, tensors, idx, without or {}),
    )


def _imputation(
    trained: TrainedModel, tensors: TensorTable, idx: torch.Tensor, without: Mapping[str, float]
) -> tuple[FieldImputation, ...]:
    """Each imputable field left out of every row: the headline metric absent (from `without`, or
    run here) vs imputed."""
    model = trained.model
    if model.imputer is None or tensors.target is None or not trained.task.predicts:
        return ()
    names = list(trained.modalities)
    plan = {f: [n for n in names if n != f] for f in model.imputer.fields}
    target = tensors.target[idx]
    metric = trained.task.headline_metric
    absent = dict(without)
    missing = {f: keep for f, keep in plan.items() if f not in absent}
    if missing:
        for f, run in run_model_subsets(model, tensors, idx, missing).items():
            absent[f] = float(trained.task.metrics(run.output, target)[metric])
    imputed = run_imputed(model, tensors, idx, plan)
    return tuple(
        FieldImputation(
            field=f,
            metric=metric,
            absent=round(float(absent[f]), 6),
            imputed=round(float(trained.task.metrics(imputed[f].out.output, target)[metric]), 6),
            rows=len(idx),
        )
        for f in plan
    )
