"""What the shared space adds to a request of `plait serve`: `?impute=embedding` checked against the
bundle, the fields `/v1/embed` returns, and its answer for one record."""

from __future__ import annotations

from typing import Any

from plait.bundle import TrainedModel
from plait.registry import suggest
from plait.retrieval.examples import IMPUTE_CHOICES
from plait.serving.engine import Served
from plait.serving.inputs import RequestError


def asks_imputation(trained: TrainedModel, impute: str | None) -> bool:
    """`?impute=`: absent (no imputation) or `embedding` on a bundle with an imputer; else 422."""
    if impute is None:
        return False
    if impute not in IMPUTE_CHOICES:
        raise RequestError(422, "bad_parameter", f"impute: expected `embedding`, got {impute!r}", None)
    if trained.model.imputer is None:
        raise RequestError(
            422,
            "bad_parameter",
            "impute=embedding: this model has no embedding imputer (it was trained without "
            "`space: {impute: true}`); predict without ?impute",
            None,
        )
    return True


def space_fields(trained: TrainedModel, asked: list[str] | None) -> tuple[str, ...]:
    """The fields /v1/embed returns: those asked for (each in the model's shared space), or all."""
    space = trained.model.space
    if space is None:
        raise RequestError(
            422,
            "bad_parameter",
            "this model has no shared space, so no embeddings; train it with `space:`",
            None,
        )
    for name in asked or ():
        if name not in space.fields:
            hint = suggest(name, list(space.fields))
            raise RequestError(
                422,
                "unknown_field",
                f"field '{name}' is not in the model's shared space;{hint} "
                f"Fields in it: {', '.join(space.fields)}",
                name,
            )
    return tuple(asked) if asked else space.fields


def embedding_answer(served: Served, fields: tuple[str, ...]) -> dict[str, Any]:
    vectors = served.embeddings or {}
    p = served.prediction
    return {
        "embeddings": {f: vectors.get(f) for f in fields},
        "fields_used": [f for f in p.fields_used if f in fields],
        "fields_imputed": [f for f in p.fields_imputed if f in fields],
        "fields_missing": [f for f in p.fields_missing if f in fields],
        "fields": {
            s.field: {"state": s.state, "reason": s.reason} for s in served.fields if s.field in fields
        },
        "model_id": p.model_id,
    }
