"""A field's embeddings in a trained model's shared space, as one typed record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from plait.bundle import TrainedModel
from plait.data.dataset import LoadReport, TensorTable, load_rows, load_table
from plait.errors import ConfigError
from plait.models.inference import run_embeddings
from plait.registry import suggest


@dataclass(frozen=True)
class Embeddings:
    """Rows of one field in the shared space. vectors (N, dim) float32 unit rows; a row where the
    field is absent is NaN there and False in `present` — never another row's vector."""

    field: str
    vectors: np.ndarray
    present: np.ndarray
    model_id: str

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return int(self.vectors.shape[0])


def space_fields(trained: TrainedModel) -> tuple[str, ...]:
    """The fields a model puts into its shared space (empty without one)."""
    space = trained.model.space
    return () if space is None else space.fields


def require_space(trained: TrainedModel) -> tuple[str, ...]:
    """The fields in the model's shared space; a ConfigError saying how to get one when it has none."""
    fields = space_fields(trained)
    if not fields:
        raise ConfigError(
            "this model has no shared space, so it has no embeddings; train it with a `space:` section "
            "(or a `{kind: contrastive, epochs: N}` stage)"
        )
    return fields


def check_space_field(trained: TrainedModel, field: str, what: str = "field") -> None:
    """`field` has a projection in the model's shared space; else a ConfigError that says which do."""
    fields = require_space(trained)
    if field not in fields:
        hint = suggest(field, list(fields))
        listed = ", ".join(fields)
        raise ConfigError(
            f"{what} '{field}' is not in the model's shared space;{hint} Fields in it: {listed}"
        )


def fields_to_embed(trained: TrainedModel, fields: Sequence[str] = ()) -> tuple[str, ...]:
    """`fields`, each checked to be in the space; none given: every field in the space."""
    if not fields:
        return require_space(trained)
    for field in fields:
        check_space_field(trained, field)
    return tuple(fields)


def embed_tensors(trained: TrainedModel, tensors: TensorTable, fields: tuple[str, ...]) -> list[Embeddings]:
    """Each of `fields` for every row of `tensors` (loaded through those fields' modalities)."""
    for field in fields:
        check_space_field(trained, field)
    vectors = run_embeddings(trained.model, tensors, fields=fields)  # field -> (N, dim)
    out = []
    for field in fields:
        present = tensors.present[field].bool().numpy()
        z = vectors[field].numpy().astype(np.float32, copy=True)
        z[~present] = np.nan
        out.append(Embeddings(field=field, vectors=z, present=present, model_id=trained.model_id))
    return out


def embed_frame(
    trained: TrainedModel, frame: pl.DataFrame, fields: tuple[str, ...], root: Path
) -> tuple[list[Embeddings], LoadReport]:
    """`fields` of every row of `frame` (media under `root`), loading only those fields."""
    modalities = {f: trained.modalities[f] for f in fields}
    tensors, report = load_table(frame, modalities, root)
    return embed_tensors(trained, tensors, fields), report


def embed_records(
    trained: TrainedModel, records: Sequence[Mapping[str, Any]], fields: tuple[str, ...], root: Path
) -> tuple[list[Embeddings], LoadReport]:
    """`fields` of each record (column -> value, as a table row holds them), loading only those."""
    modalities = {f: trained.modalities[f] for f in fields}
    tensors, report = load_rows(records, modalities, root)
    return embed_tensors(trained, tensors, fields), report


def empty_embeddings(trained: TrainedModel, field: str) -> Embeddings:
    """No rows of `field`: vectors (0, dim)."""
    space = trained.model.space
    dim = 0 if space is None else space.dim
    return Embeddings(field, np.zeros((0, dim), np.float32), np.zeros(0, bool), trained.model_id)
