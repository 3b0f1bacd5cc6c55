"""Batches straight from the pre-loaded TensorTable: one index list per batch, no per-sample collation.

Under DDP each process takes its share of every global batch (`GlobalBatchShare`): the run sees the
batches one process with the same seed would. Validation is not shared out: every process
validates on all validation rows, so early stopping agrees everywhere."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from plait.data.dataset import TensorTable
from plait.training.distributed import GlobalBatchShare
from plait.types import Batch


class _Rows(Dataset[Batch]):
    """Indexable by a list of positions into `indices`; returns a whole Batch."""

    def __init__(self, table: TensorTable, indices: np.ndarray) -> None:
        self.table = table
        self.indices = torch.as_tensor(indices, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, positions: Sequence[int]) -> Batch:
        return self.table.batch(self.indices[torch.as_tensor(positions, dtype=torch.long)])


def _whole(batch: Any) -> Any:
    """The dataset already returns a whole Batch: nothing to collate."""
    return batch


class TableDataModule(L.LightningDataModule):
    def __init__(
        self,
        table: TensorTable,
        *,
        train: np.ndarray,
        val: np.ndarray,
        batch_size: int,
        seed: int,
    ) -> None:
        super().__init__()
        self.table = table
        self.train_rows = _Rows(table, train)
        self.val_rows = _Rows(table, val)
        self.batch_size = batch_size
        self.seed = seed
        self._generator: torch.Generator | None = None
        self._resumed_generator: torch.Tensor | None = None

    def _loader(self, rows: _Rows, shuffle: bool) -> DataLoader[Batch]:
        base: RandomSampler | SequentialSampler = SequentialSampler(range(len(rows)))
        if shuffle:
            generator = torch.Generator().manual_seed(self.seed)
            if self._resumed_generator is not None:  # a resumed stage draws the batches it would have
                generator.set_state(self._resumed_generator)
            self._generator = generator
            base = RandomSampler(range(len(rows)), generator=generator)
        batches = BatchSampler(base, batch_size=self.batch_size, drop_last=False)
        world = 1 if self.trainer is None else int(self.trainer.world_size)
        if shuffle and world > 1:
            assert self.trainer is not None  # world > 1 only under a trainer
            share = GlobalBatchShare(batches, rank=int(self.trainer.global_rank), world=world)
            return DataLoader(rows, sampler=share, batch_size=None, collate_fn=_whole)
        return DataLoader(rows, sampler=batches, batch_size=None, collate_fn=_whole)

    def state_dict(self) -> dict[str, Any]:
        """The batch order's random stream, for checkpoints (training/checkpoint.py)."""
        return {} if self._generator is None else {"generator": self._generator.get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._resumed_generator = state_dict.get("generator")

    def train_dataloader(self) -> DataLoader[Batch]:
        return self._loader(self.train_rows, shuffle=True)

    def val_dataloader(self) -> DataLoader[Batch]:
        return self._loader(self.val_rows, shuffle=False)
