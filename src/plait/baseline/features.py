"""Per-field summary features of a loaded table, for the boosting baseline: one row of numbers per
table row, NaN wherever the field is absent (boosting treats NaN as missing, never as a value)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from plait.data.dataset import TensorTable
from plait.modalities.contract import summary_features

BATCH = 256  # rows summarised at a time: images and spectrograms are large


@dataclass(frozen=True)
class FeatureTable:
    """matrix (N, D) float32; `fields[j]` is the field column j summarises."""

    matrix: np.ndarray
    fields: tuple[str, ...]

    def columns_of(self, keep: Sequence[str]) -> np.ndarray:
        """The column indices of the fields in `keep`."""
        wanted = set(keep)
        return np.asarray([j for j, f in enumerate(self.fields) if f in wanted], dtype=np.int64)

    def names(self) -> list[str]:
        """Column names `FIELD:i`, i counting within the field."""
        seen: dict[str, int] = {}
        out = []
        for f in self.fields:
            out.append(f"{f}:{seen.get(f, 0)}")
            seen[f] = seen.get(f, 0) + 1
        return out


def summary_table(modalities: Mapping[str, object], tensors: TensorTable, batch: int = BATCH) -> FeatureTable:
    """Every field of `modalities` summarised over every row of `tensors`, in batches of `batch`."""
    n = len(tensors)
    blocks: list[np.ndarray] = []
    fields: list[str] = []
    for name, modality in modalities.items():
        parts = []
        for start in range(0, n, batch):
            idx = torch.arange(start, min(n, start + batch))
            values = tensors.values[name][idx]
            mask = tensors.masks[name][idx] if name in tensors.masks else None
            with torch.no_grad():
                out = summary_features(modality, values, mask).numpy().astype(np.float32)  # (b, D)
            out[~tensors.present[name][idx].numpy().astype(bool)] = np.nan
            parts.append(out)
        block = np.concatenate(parts, axis=0)  # (N, D)
        blocks.append(block)
        fields += [name] * block.shape[1]
    return FeatureTable(np.concatenate(blocks, axis=1), tuple(fields))
