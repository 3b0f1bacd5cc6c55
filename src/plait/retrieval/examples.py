"""`impute="embedding"` at prediction: checking that the bundle can impute, and the nearest real
items of each imputed field — examples of what the missing value would have been — from a table
of real items (`examples_from`), searched in the shared space."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from plait.bundle import TrainedModel
from plait.errors import ConfigError
from plait.models.answers import Example, Prediction
from plait.models.inference import ImputedRun
from plait.registry import unknown_name_message
from plait.retrieval.search import ItemIndex, open_index

IMPUTE_CHOICES = ("embedding",)


def check_impute(trained: TrainedModel, impute: str | None, examples_from: Path | str | None) -> bool:
    """Whether this prediction imputes; a ConfigError for an unknown choice, for a bundle without
    an imputer, or for examples asked without imputing."""
    if impute is None:
        if examples_from is not None:
            raise ConfigError("examples_from: examples are of imputed fields; ask for impute='embedding' too")
        return False
    if impute not in IMPUTE_CHOICES:
        raise ConfigError(f"impute: {unknown_name_message('imputation', impute, list(IMPUTE_CHOICES))}")
    if trained.model.imputer is None:
        raise ConfigError(
            "impute='embedding': this bundle has no embedding imputer; train it with `space: {impute: true}` "
            "(the imputer is fitted on the training rows after the model)"
        )
    return True


def with_examples(
    trained: TrainedModel,
    bundle: Path | None,
    table: Path,
    predictions: Sequence[Prediction],
    run: ImputedRun,
    k: int,
) -> list[Prediction]:
    """Each prediction with, for every field it imputed, the `k` real items of `table` nearest its
    imputed embedding (the index is saved beside `bundle`, or built in memory without one)."""
    if k < 1:
        raise ConfigError(f"examples: expected at least 1 example per imputed field, got {k}")
    indexes: dict[str, ItemIndex] = {}
    out = list(predictions)
    for field, rows in run.imputed.items():
        chosen = rows.nonzero().squeeze(1).tolist()
        if not chosen:
            continue
        if field not in indexes:
            indexes[field] = open_index(trained, bundle, table, field, what="the imputed field")
        nearest = indexes[field].nearest(run.embedded[field][chosen].numpy(), k)
        for i, hits in zip(chosen, nearest, strict=True):
            found = tuple(Example(row=h.row, score=h.score, values=dict(h.values)) for h in hits)
            out[i] = replace(out[i], examples={**(out[i].examples or {}), field: found})
    return out
