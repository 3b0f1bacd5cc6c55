"""Zero-shot classification through the shared space: each class's prompt (`space.prompt`, e.g.
"a recording of a {label} pump") is read by a text field aligned with field X, and a row is given
the class whose prompt lies nearest to its X embedding — no head, no labelled example of X needed.

`prompt_embeddings` is what `Predictor.zero_shot` and the evaluation share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from plait.data.dataset import load_rows
from plait.errors import ConfigError, DataError
from plait.modalities.base import Modality
from plait.modalities.contract import text_column
from plait.models.fusion_model import FusionModel
from plait.modes import evaluating


@dataclass(frozen=True)
class ZeroShot:
    """Rows of field `field` classified by their nearest label prompt as read by `text_field`."""

    field: str
    text_field: str
    prompt: str
    accuracy: float
    rows: int  # evaluated rows where `field` is present
    chance: float  # the most frequent class's share of those rows

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "text_field": self.text_field,
            "prompt": self.prompt,
            "accuracy": self.accuracy,
            "rows": self.rows,
            "chance": self.chance,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ZeroShot:
        return cls(
            field=str(raw["field"]),
            text_field=str(raw["text_field"]),
            prompt=str(raw["prompt"]),
            accuracy=float(raw["accuracy"]),
            rows=int(raw["rows"]),
            chance=float(raw["chance"]),
        )


def text_partners(model: FusionModel, modalities: Mapping[str, Modality]) -> list[tuple[str, str]]:
    """(field, text field) for every aligned pair of the space with a text field on one side."""
    if model.space is None:
        return []
    out: list[tuple[str, str]] = []
    for a, b in model.space.pairs:
        for field, text in ((a, b), (b, a)):
            if text_column(modalities[text]) is not None and (field, text) not in out:
                out.append((field, text))
    return out


@torch.inference_mode()
def prompt_embeddings(
    model: FusionModel, modality: Modality, field: str, prompts: Sequence[str], root: Path
) -> Tensor:
    """The prompts read by text field `field` and put into the shared space: (K, dim)."""
    column = text_column(modality)
    if column is None or model.space is None or field not in model.space.fields:
        raise ConfigError(
            f"field '{field}' is not a text field in this model's shared space; zero-shot needs a text "
            "field aligned with the field to classify (space.pairs)"
        )
    tensors, _ = load_rows([{column: p} for p in prompts], {field: modality}, root)
    absent = [p for p, on in zip(prompts, tensors.present[field].tolist(), strict=True) if not on]
    if absent:
        raise DataError(
            f"zero-shot: field '{field}' could not read the prompts {absent}; give non-empty prompts"
        )
    with evaluating(model):
        batch = tensors.batch(torch.arange(len(prompts)))
        encoder = model.encoders[field]
        out = encoder(batch.values[field], batch.present[field], batch.masks.get(field))
        return model.space.project(field, out.pooled).float()  # (K, D_f) -> (K, dim)


def zero_shot_scores(embedded: Tensor, prompts: Tensor) -> Tensor:
    """Cosine similarity of each row to each class prompt: (N, dim) @ (dim, K) -> (N, K)."""
    return embedded @ prompts.T


def zero_shot_accuracy(
    embedded: Tensor, present: Tensor, labels: Tensor, prompts: Tensor
) -> tuple[float, int, float]:
    """(accuracy, rows, chance) of nearest-prompt classes over rows present and labelled."""
    rows = present.bool() & (labels >= 0)
    n = int(rows.sum())
    if n == 0:
        return float("nan"), 0, float("nan")
    guess = zero_shot_scores(embedded[rows], prompts).argmax(dim=1)  # (n,)
    y = labels[rows].long()
    chance = float(torch.bincount(y).max()) / n
    return round(float((guess == y).double().mean()), 6), n, round(chance, 6)


@dataclass(frozen=True)
class ZeroShotAnswer:
    """One row classified by its nearest prompt: `label` None where the field is absent (nothing is
    guessed); `scores` the cosine similarity to each label's prompt."""

    label: str | None
    scores: Mapping[str, float]


def zero_shot_answers(
    model: FusionModel,
    modalities: Mapping[str, Modality],
    embedded: Tensor,
    present: Tensor,
    *,
    text_field: str,
    labels: Sequence[str],
    prompt: str,
) -> list[ZeroShotAnswer]:
    """Rows' embeddings (N, dim) of one field classified among `labels` by `prompt`s read by
    `text_field`."""
    if "{label}" not in prompt or not labels:
        raise ConfigError(
            f"zero-shot: give labels and a prompt with {{label}} in it; got {prompt!r}, {list(labels)}"
        )
    vectors = prompt_embeddings(
        model, modalities[text_field], text_field, [prompt.format(label=c) for c in labels], Path(".")
    )
    scores = zero_shot_scores(embedded.nan_to_num(), vectors)  # (N, K)
    return [
        ZeroShotAnswer(
            label=labels[int(row.argmax())] if bool(on) else None,
            scores={c: round(float(s), 6) for c, s in zip(labels, row.tolist(), strict=True)}
            if bool(on)
            else {},
        )
        for row, on in zip(scores, present, strict=True)
    ]


def text_partner(
    model: FusionModel, modalities: Mapping[str, Modality], field: str, text_field: str | None
) -> str:
    """The text field that reads prompts for `field`: `text_field`, or the only one aligned with it."""
    partners = [t for f, t in text_partners(model, modalities) if f == field]
    if text_field is not None:
        if text_field not in partners:
            raise ConfigError(
                f"zero-shot: '{text_field}' is not a text field aligned with '{field}' in the shared space; "
                f"text fields aligned with it: {', '.join(partners) or 'none'}"
            )
        return text_field
    if len(partners) != 1:
        named = ", ".join(partners) or "none"
        fix = "name one with text_field" if partners else "pair a text field with it in space.pairs"
        raise ConfigError(
            f"zero-shot: field '{field}' is aligned with {len(partners)} text fields ({named}); {fix}"
        )
    return partners[0]
