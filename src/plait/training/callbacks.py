"""Callbacks: keep the best weights in memory (no pickled checkpoint) and record the history."""

from __future__ import annotations

import math
import time
from typing import Any

import lightning as L
import torch


class BestWeights(L.Callback):
    """Tracks the epoch with the lowest validation loss and restores its weights when fitting ends."""

    def __init__(self, monitor: str = "val_loss") -> None:
        self.monitor = monitor
        self.best_score = math.inf
        self.best_epoch = -1
        self.best_state: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, Any]] = []
        self._start = 0.0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        score = metrics.get(self.monitor)
        if score is None:
            return
        self.history.append(
            {
                "epoch": trainer.current_epoch,
                **metrics,
                "seconds": round(time.perf_counter() - self._start, 3),
            }
        )
        if score < self.best_score:
            self.best_score = score
            self.best_epoch = trainer.current_epoch
            self.best_state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.best_state is not None:
            pl_module.load_state_dict(self.best_state)
