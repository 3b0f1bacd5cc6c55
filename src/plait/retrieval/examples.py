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


class ExampleIndexes:
    """The indexes of one table of real items, each field's opened once and kept while the table
    is unchanged (a streamed `predict` asks for them chunk after chunk; opening one hashes the
    whole table)."""

    def __init__(self, trained: TrainedModel, bundle: Path | None, table: Path) -> None:
        self.trained = trained
        self.bundle = bundle
        self.table = table
        self._open: dict[str, tuple[tuple[int, int], ItemIndex]] = {}

    def get(self, field: str) -> ItemIndex:
        stat = self.table.stat()
        seen = (stat.st_mtime_ns, stat.st_size)
        held = self._open.get(field)
        if held is None or held[0] != seen:
            index = open_index(self.trained, self.bundle, self.table, field, what="the imputed field")
            held = self._open[field] = (seen, index)
        return held[1]


def with_examples(
    indexes: ExampleIndexes, predictions: Sequence[Prediction], run: ImputedRun, k: int
) -> list[Prediction]:
    """Each prediction with, for every field it imputed, the `k` real items of the indexes' table
    nearest its imputed embedding."""
    if k < 1:
        raise ConfigError(f"examples: expected at least 1 example per imputed field, got {k}")
    out = list(predictions)
    for field, rows in run.imputed.items():
        chosen = rows.nonzero().squeeze(1).tolist()
        if not chosen:
            continue
        nearest = indexes.get(field).nearest(run.embedded[field][chosen].numpy(), k)
        for i, hits in zip(chosen, nearest, strict=True):
            found = tuple(Example(row=h.row, score=h.score, values=dict(h.values)) for h in hits)
            out[i] = replace(out[i], examples={**(out[i].examples or {}), field: found})
    return out
