"""Callbacks: keep the best weights in memory (no pickled checkpoint) and record the history; say
one line per epoch when there are no progress bars; a progress bar that fits an 80-column terminal."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.callbacks.progress.rich_progress import ProcessingSpeedColumn
from rich.progress import BarColumn


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

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # not on_validation_epoch_end: Lightning runs that hook of the callbacks before the module's,
        # where val_accuracy, own_* and share_* are logged, so the row would hold last epoch's
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

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning validates inside the training epoch, before it averages train_loss: the row
        # written at validation held the previous epoch's figure (or none); this epoch's is known now
        train_loss = trainer.callback_metrics.get("train_loss")
        if self.history and self.history[-1]["epoch"] == trainer.current_epoch and train_loss is not None:
            self.history[-1]["train_loss"] = float(train_loss)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.restore(pl_module)

    def restore(self, pl_module: L.LightningModule) -> None:
        """Put the best epoch's weights back."""
        if self.best_state is not None:
            pl_module.load_state_dict(self.best_state)

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "history": [dict(row) for row in self.history],
            "best_state": self.best_state,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_score = float(state_dict["best_score"])
        self.best_epoch = int(state_dict["best_epoch"])
        self.history = [dict(row) for row in state_dict["history"]]
        self.best_state = state_dict["best_state"]


# Shown on a log line and on the progress bar, in this order, under these short names.
EPOCH_METRICS = (("train_loss", "train_loss"), ("val_loss", "val_loss"), ("val_accuracy", "val_acc"))


class EpochLines(L.Callback):
    """One line per epoch through `say`, for runs without progress bars (`train.progress: false`):
    `epoch 3/40: train_loss 0.412, val_loss 0.388, val_acc 0.910 (1.2 s)`, prefixed with the stage
    (`unimodal epoch 3/40: …`) when there are several."""

    def __init__(self, say: Callable[[str], None], *, epochs: int, stage: str | None = None) -> None:
        self.say = say
        self.epochs = epochs
        self.stage = stage
        self._start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning validates before on_train_epoch_end: this epoch's val_* are in callback_metrics
        metrics = trainer.callback_metrics
        parts = [f"{short} {float(metrics[key]):.3f}" for key, short in EPOCH_METRICS if key in metrics]
        prefix = f"{self.stage} " if self.stage else ""
        seconds = time.perf_counter() - self._start
        self.say(
            f"{prefix}epoch {trainer.current_epoch + 1}/{self.epochs}: {', '.join(parts)} ({seconds:.1f} s)"
        )


BAR_WIDTH = 20  # cells of the bar itself (Lightning's default is 40)
BAR_FIXED_COLUMNS = 60  # "Epoch 12/39 " + the bar + "12/12 " + "0:00:03 • 0:00:00 ", with room to spare


class CompactProgressBar(RichProgressBar):
    """Lightning's rich progress bar, made to fit one line of an 80-column terminal: a shorter bar,
    no it/s column, and only the metrics that fit after it (val_loss, then val_acc); Lightning's own
    bar wraps every metric it shows onto lines of its own."""

    def configure_columns(self, trainer: L.Trainer) -> list[Any]:
        columns = [c for c in super().configure_columns(trainer) if not isinstance(c, ProcessingSpeedColumn)]
        for column in columns:
            if isinstance(column, BarColumn):
                column.bar_width = BAR_WIDTH
        return columns

    def _get_train_description(self, current_epoch: int) -> str:
        # 1-based like the epoch lines (Lightning's "Epoch 2/2" is the third of three)
        total = "" if self.trainer.max_epochs is None else f"/{self.trainer.max_epochs}"
        return f"{f'Epoch {current_epoch + 1}{total}':{len(self.validation_description)}}"

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        width = 80 if self._console is None else self._console.width
        return bar_metrics(super().get_metrics(trainer, pl_module), width - BAR_FIXED_COLUMNS)


def bar_metrics(metrics: Mapping[str, Any], room: int) -> dict[str, Any]:
    """The bar's metrics, under their short names, that fit in `room` characters as Lightning
    prints them (`name: 0.123`, one space apart): val_loss, then val_acc."""
    shown: dict[str, Any] = {}
    used = 0
    short_name = dict(EPOCH_METRICS)
    for key in ("val_loss", "val_accuracy"):  # train_loss is logged off the bar
        short = short_name[key]
        if key not in metrics:
            continue
        value = metrics[key]
        width = len(f"{short}: {value:.3f}" if isinstance(value, float) else f"{short}: {value}")
        if used + width + (1 if shown else 0) > room:
            break
        used += width + (1 if shown else 0)
        shown[short] = value
    return shown
