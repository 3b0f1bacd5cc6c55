"""The modality plug-in contract and helpers shared by the plug-ins.

A modality plug-in is constructed per field with plain typed arguments (its options from the
config), learns JSON-serialisable state on the training split only (`fit`), turns one row into a
tensor or `Absent` (`load`), stacks items into a batch (`collate`) and builds its default encoder.
Nothing here is pickled: `get_state`/`set_state` round-trip through JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import polars as pl
import torch
from torch import Tensor

from plait.errors import DataError, PlaitError
from plait.types import Absent, EncoderOutput

JSONState = dict[str, Any]

# `fit` sees only the training rows; this column, when present, carries each row's number in the
# whole table so that errors raised during fit name the row the user can find.
ROW_COLUMN = "__plait_row__"


def row_numbers(table: pl.DataFrame) -> list[int]:
    """Each row's number in the user's table: ROW_COLUMN when present, else its position."""
    if ROW_COLUMN in table.columns:
        return [int(r) for r in table[ROW_COLUMN].to_list()]
    return list(range(table.height))


@runtime_checkable
class Encoder(Protocol):
    """nn.Module turning one field's collated tensor into tokens and a pooled vector."""

    output_dim: int

    def __call__(self, x: Tensor, present: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        """x: the collated values [B, ...]; present: BoolTensor[B]; mask: BoolTensor[B, L] or None.
        Returns tokens [B, L, output_dim] and pooled [B, output_dim], pooled zero where absent."""
        ...


class Modality(Protocol):
    """One field's preprocessing. `name` is the field name; `kind` its name in plait.modalities.MODALITIES."""

    kind: ClassVar[str]
    name: str

    def columns(self) -> tuple[str, ...]:
        """The table columns this field reads."""
        ...

    def fit(self, table: pl.DataFrame, root: Path) -> None:
        """Learn state from the TRAINING rows only (vocabulary, statistics, levels)."""
        ...

    def get_state(self) -> JSONState:
        """The fitted state as plain JSON data (raises if not fitted)."""
        ...

    def set_state(self, state: JSONState) -> None:
        """Restore state produced by `get_state` (from a bundle's preprocessing.json). Options
        recorded in the state win over the constructor's: the bundle is what the model was trained on."""
        ...

    def load(self, row: Mapping[str, Any], root: Path) -> Tensor | Absent:
        """Decode + preprocess one row's value. Empty/unreadable/undecodable → Absent(reason).
        Raises DataError only for input that must stop the run (a path escaping the root)."""
        ...

    def collate(self, items: Sequence[Tensor | None]) -> tuple[Tensor, Tensor | None]:
        """Stack items (None = absent → zero-filled) into values [B, ...] and an optional
        step mask BoolTensor[B, L] (True = real step) for padded sequences."""
        ...

    def build_encoder(self, dim: int) -> Encoder:
        """The default encoder for this field, producing `dim`-wide features."""
        ...


class NotFittedError(PlaitError, RuntimeError):
    """A modality was used before `fit` or `set_state`."""

    @classmethod
    def for_field(cls, name: str, kind: str) -> NotFittedError:
        return cls(
            f"field '{name}': the {kind} modality is not fitted; call fit(table, root) on the "
            "training rows or set_state(...) with a saved state first"
        )


def is_empty(value: object) -> bool:
    """None, NaN, blank strings, empty lists/bytes/arrays count as empty (0 and 0.0 do not)."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, bytes, bytearray)):
        return len(value) == 0
    size = getattr(value, "size", None)  # numpy arrays and tensors
    return isinstance(size, int) and size == 0


def require_columns(table: pl.DataFrame, field: str, columns: Sequence[str]) -> None:
    """Raise a DataError naming the field's columns that the table lacks."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        names = ", ".join(f"'{c}'" for c in missing)
        what = f"column {names} is" if len(missing) == 1 else f"columns {names} are"
        raise DataError(
            f"field '{field}': {what} not in the table (columns: {', '.join(table.columns)}); "
            f"fix the column names under fields.{field}"
        )


def resolve_media_path(value: str, root: Path, field: str) -> Path:
    """Resolve a file path from the table relative to `root`; it may not escape the root.

    Absolute paths are allowed only when they lie inside the root as well.
    """
    root = root.resolve()
    candidate = Path(value)
    path = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not path.is_relative_to(root):
        raise DataError(
            f"field '{field}': path '{value}' resolves to {path}, outside the media root {root}; "
            "keep media files under data.root or set data.root to a folder that contains them"
        )
    return path


def zeros_like_batch(items: Sequence[Tensor | None], shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    """Stack same-shape items, filling None with zeros of `shape`."""
    out = torch.zeros((len(items), *shape), dtype=dtype)
    for i, item in enumerate(items):
        if item is not None:
            out[i] = item
    return out


def masked_mean(tokens: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over L of tokens [B, L, D] using mask [B, L] (True = real) → [B, D]."""
    if mask is None:
        return tokens.mean(dim=1)
    weights = mask.to(tokens.dtype).unsqueeze(-1)  # (B, L, 1)
    return (tokens * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


def masked_max(tokens: Tensor, mask: Tensor) -> Tensor:
    """Max over L of tokens [B, L, D] at real positions (mask [B, L]) → [B, D]; 0 for none."""
    low = torch.finfo(tokens.dtype).min
    best = torch.where(mask[:, :, None], tokens, torch.full_like(tokens, low)).amax(dim=1)
    return torch.where(mask.any(dim=1, keepdim=True), best, torch.zeros_like(best))


def present_steps(x: Tensor, present: Tensor, mask: Tensor | None) -> Tensor:
    """BoolTensor[B, L] of the steps an encoder may read in x (B, …, L): the step mask (every
    step when None) of the samples whose field is present (a dropped-out field contributes nothing)."""
    steps = torch.ones(x.shape[0], x.shape[-1], dtype=torch.bool, device=x.device) if mask is None else mask
    return steps & present[:, None]


def zero_absent(pooled: Tensor, present: Tensor) -> Tensor:
    """Zero the pooled vector [B, D] of absent samples so nothing leaks from zero-filled input."""
    return pooled * present.to(pooled.dtype).unsqueeze(-1)
