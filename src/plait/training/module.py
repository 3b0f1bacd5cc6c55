"""A thin LightningModule around the plain FusionModel: losses, modality dropout, optimiser."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor

from plait.evaluation.metrics import classification_metrics
from plait.models.fusion_model import FusionModel
from plait.models.modality_dropout import drop_modalities
from plait.objectives.supervised import classification_loss, regression_loss
from plait.types import Batch


class PlaitModule(L.LightningModule):
    def __init__(
        self,
        model: FusionModel,
        *,
        task_type: str,
        lr: float,
        weight_decay: float,
        modality_dropout: float,
        max_epochs: int,
        seed: int,
    ) -> None:
        super().__init__()
        self.model = model
        self.task_type = task_type
        self.lr = lr
        self.weight_decay = weight_decay
        self.modality_dropout = modality_dropout
        self.max_epochs = max_epochs
        self.seed = seed
        self._dropout_rng: torch.Generator | None = None
        self._val_outputs: list[tuple[Tensor, Tensor]] = []

    def on_fit_start(self) -> None:
        # one stream per process so DDP ranks drop different fields, reproducibly
        self._dropout_rng = torch.Generator().manual_seed(self.seed * 1000 + self.global_rank)

    def transfer_batch_to_device(self, batch: Batch, device: torch.device, dataloader_idx: int) -> Batch:
        return batch.to(device)

    def _loss(self, output: Tensor, target: Tensor) -> Tensor:
        if self.task_type == "classification":
            return classification_loss(output, target)
        return regression_loss(output, target)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        if self.modality_dropout > 0:
            present = drop_modalities(
                {k: v.cpu() for k, v in batch.present.items()}, self.modality_dropout, self._dropout_rng
            )
            batch = batch.with_present({k: v.to(self.device) for k, v in present.items()})
        out = self.model(batch)
        assert batch.target is not None  # internal invariant: training batches carry targets
        loss = self._loss(out.output, batch.target)
        self.log("train_loss", loss, prog_bar=True, batch_size=batch.size, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        out = self.model(batch)
        assert batch.target is not None
        loss = self._loss(out.output, batch.target)
        self.log(
            "val_loss",
            loss,
            prog_bar=True,
            batch_size=batch.size,
            on_step=False,
            on_epoch=True,
            sync_dist=True,
        )
        if self.task_type == "classification":
            self._val_outputs.append((out.output.detach().float().cpu(), batch.target.cpu()))

    def on_validation_epoch_end(self) -> None:
        if self._val_outputs:
            logits = torch.cat([o for o, _ in self._val_outputs])
            target = torch.cat([t for _, t in self._val_outputs])
            self.log("val_accuracy", classification_metrics(logits, target)["accuracy"], prog_bar=True)
        self._val_outputs.clear()

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=self.max_epochs, eta_min=self.lr * 0.05
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
