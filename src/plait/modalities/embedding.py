"""A precomputed vector per row (a sentence embedding, a product embedding, …).

`EmbeddingModality("note_vec")` reads a column of equal-length number lists (a polars List/Array
column, numpy arrays, or JSON text such as "[0.1, -0.3]"), standardises each dimension with the
training mean and std and returns FloatTensor[dim]. A vector of another length is absent, not padded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
import torch
from torch import Tensor, nn

from plait.errors import BundleError, DataError
from plait.modalities.base import (
    JSONState,
    NotFittedError,
    is_empty,
    require_columns,
    row_numbers,
    zero_absent,
    zeros_like_batch,
)
from plait.modalities.contract import InputLimits, InputSpec, Widget
from plait.modalities.options import optional_column
from plait.types import Absent, EncoderOutput

MAX_SHOWN = 5
STATE_KEYS = ("column", "dim", "mean", "std")


def as_vector(value: object) -> np.ndarray | Absent:
    """float64 array of one cell, or Absent when it is empty or not a list of numbers."""
    if is_empty(value):
        return Absent("empty")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return Absent("undecodable", "text is not a JSON list of numbers such as [0.1, -0.3]")
    try:
        vector = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return Absent("undecodable", f"expected a list of numbers, got {type(value).__name__}")
    if vector.size == 0:
        return Absent("empty")
    if vector.ndim != 1:
        return Absent("wrong shape", f"expected a flat list of numbers, got shape {vector.shape}")
    return vector


class EmbeddingModality:
    """One vector column → standardised FloatTensor[dim]; every sample has the same length."""

    kind: ClassVar[str] = "embedding"
    perturbations: ClassVar[tuple[str, ...]] = ("gaussian_noise",)
    noise_family: ClassVar[str] = "gaussian_noise"

    def __init__(self, name: str, *, column: str | None = None) -> None:
        optional_column(name, "column", column)
        self.name = name
        self.column = column if column is not None else name
        self.dim_: int | None = None
        self._mean = np.zeros(0)
        self._std = np.ones(0)

    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def input_spec(self, limits: InputLimits) -> InputSpec:
        """A JSON array of numbers (or JSON text of one)."""
        return InputSpec(
            roles={self.column: "vector"},
            accepts="a JSON array of numbers",
            widget=Widget("json", hint="a JSON array of numbers, e.g. [0.1, 0.2, 0.3]"),
        )

    def fit(self, table: pl.DataFrame, root: Path) -> None:
        require_columns(table, self.name, self.columns())
        rows_by_length: dict[int, list[int]] = {}
        vectors: list[np.ndarray] = []
        for i, value in zip(row_numbers(table), table[self.column].to_list(), strict=True):
            vector = as_vector(value)
            if isinstance(vector, np.ndarray):
                rows_by_length.setdefault(vector.shape[0], []).append(i)
                vectors.append(vector)
        if not vectors:
            raise DataError(
                f"field '{self.name}': column '{self.column}' has no vector (list of numbers) in the "
                f"{table.height} training rows; fill the column or remove the field"
            )
        if len(rows_by_length) > 1:
            raise self._mixed_lengths(rows_by_length)
        matrix = np.stack(vectors)  # (N, dim)
        matrix = matrix[np.isfinite(matrix).all(axis=1)]
        dim = matrix.shape[1]
        if matrix.shape[0] == 0:  # only non-finite vectors: nothing to standardise against
            mean, std = np.zeros(dim), np.ones(dim)
        else:
            mean, std = matrix.mean(axis=0), matrix.std(axis=0)
            std = np.where((std > 0) & np.isfinite(std), std, 1.0)
        self._set(dim, mean.tolist(), std.tolist())

    def _mixed_lengths(self, rows_by_length: dict[int, list[int]]) -> DataError:
        common = max(rows_by_length, key=lambda n: (len(rows_by_length[n]), -n))
        parts = []
        for length, rows in sorted(rows_by_length.items(), key=lambda kv: -len(kv[1])):
            shown = ", ".join(map(str, rows[:MAX_SHOWN])) + (", …" if len(rows) > MAX_SHOWN else "")
            parts.append(f"{length} values in {len(rows)} row(s) (rows {shown})")
        return DataError(
            f"field '{self.name}': vectors in column '{self.column}' differ in length: "
            f"{'; '.join(parts)}; every vector must have the same length (most have {common}) — "
            "recompute or drop the odd rows"
        )

    def _set(self, dim: int, mean: list[float], std: list[float]) -> None:
        self.dim_ = dim
        self._mean = np.asarray(mean, dtype=np.float64)
        self._std = np.asarray(std, dtype=np.float64)

    def _fitted_dim(self) -> int:
        if self.dim_ is None:
            raise NotFittedError.for_field(self.name, self.kind)
        return self.dim_

    def get_state(self) -> JSONState:
        dim = self._fitted_dim()
        return {"column": self.column, "dim": dim, "mean": self._mean.tolist(), "std": self._std.tolist()}

    def set_state(self, state: JSONState) -> None:
        missing = [key for key in STATE_KEYS if key not in state]
        if missing:
            raise BundleError(
                f"field '{self.name}': embedding state lacks {', '.join(missing)}; "
                "the preprocessing state is from another version or was edited — re-save the bundle"
            )
        dim = int(state["dim"])
        if len(state["mean"]) != dim or len(state["std"]) != dim:
            raise BundleError(
                f"field '{self.name}': embedding state says dim {dim} but holds {len(state['mean'])} "
                f"means and {len(state['std'])} stds; re-save the bundle"
            )
        self.column = str(state["column"])
        self._set(dim, [float(m) for m in state["mean"]], [float(s) for s in state["std"]])

    def load(self, row: Mapping[str, Any], root: Path) -> Tensor | Absent:
        dim = self._fitted_dim()
        vector = as_vector(row.get(self.column))
        if isinstance(vector, Absent):
            return vector
        if vector.shape[0] != dim:
            return Absent("wrong length", f"expected {dim} values, got {vector.shape[0]}")
        bad = int((~np.isfinite(vector)).sum())
        if bad > 0:
            return Absent("non-finite", f"{bad} of {dim} values are NaN or infinite")
        scaled = (vector - self._mean) / self._std
        return torch.from_numpy(scaled.astype(np.float32))  # (dim,)

    def collate(self, items: Sequence[Tensor | None]) -> tuple[Tensor, Tensor | None]:
        return zeros_like_batch(items, (self._fitted_dim(),), torch.float32), None  # (B, dim)

    def summary_features(self, values: Tensor, mask: Tensor | None) -> Tensor:
        """For the boosting baseline: the vector itself."""
        return values.float()  # (B, dim)

    def build_encoder(self, dim: int) -> EmbeddingEncoder:
        return EmbeddingEncoder(input_dim=self._fitted_dim(), output_dim=dim)


class EmbeddingEncoder(nn.Module):
    """LayerNorm → Linear → GELU → Linear; one token per sample."""

    def __init__(self, input_dim: int, output_dim: int) -> None:
        super().__init__()
        self.output_dim = output_dim
        self.net = nn.Sequential(
            nn.LayerNorm(input_dim), nn.Linear(input_dim, output_dim), nn.GELU(),
            nn.Linear(output_dim, output_dim),
        )  # fmt: skip

    def forward(self, x: Tensor, present: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        pooled = zero_absent(self.net(x), present)  # (B, dim) -> (B, D)
        return EncoderOutput(tokens=pooled.unsqueeze(1), pooled=pooled, token_mask=None)  # (B, 1, D)
