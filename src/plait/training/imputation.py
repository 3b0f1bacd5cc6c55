"""Fitting the embedding imputer (`space.impute: true`) after the model is trained: the encoders and
the space are fixed, so their outputs on the training rows are computed once and the small
per-field models learn from them (plain torch on tensors in memory — no data loading, no Lightning
loop needed), with early stopping on the validation rows.

Each step hides a random part of every row's other fields (each kept with probability ½, at
least one kept), so the imputer learns to work from any subset of fields, as prediction needs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from plait.data.dataset import TensorTable
from plait.models.fusion_hooks import pooled_outputs
from plait.models.fusion_model import FusionModel
from plait.models.imputer import EmbeddingImputer
from plait.objectives.imputation import imputation_loss


@dataclass(frozen=True)
class ImputerFit:
    epochs: int
    best_epoch: int
    val_loss: float
    cosine: dict[str, float]  # field -> mean cosine of imputed and real embeddings, on validation rows

    def to_json(self) -> dict[str, object]:
        return {
            "epochs": self.epochs,
            "best_epoch": self.best_epoch,
            "val_loss": self.val_loss,
            "cosine": self.cosine,
        }


def fit_imputer(
    model: FusionModel,
    tensors: TensorTable,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    *,
    seed: int,
    epochs: int = 300,
    lr: float = 3e-3,
    batch_size: int = 256,
    patience: int = 20,
) -> ImputerFit:
    imputer, space = model.imputer, model.space
    assert imputer is not None and space is not None  # built together (build.py)
    train = _encodings(model, tensors, train_rows)
    val = _encodings(model, tensors, val_rows if len(val_rows) else train_rows)
    pooled_var = {f: _variance(train[1][f][train[2][f]]) for f in imputer.fields}  # field -> (D_f,)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(imputer.parameters(), lr=lr, weight_decay=1e-4)
    best, best_epoch, best_state, waited, epoch = float("inf"), 0, None, 0, 0
    val_hidden = _hide(val[2], imputer.fields, torch.Generator().manual_seed(seed + 1))
    imputer.train()
    n = len(train[0][imputer.fields[0]])
    for epoch in range(1, epochs + 1):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            batch = _rows(train, rows)
            given = _hide(batch[2], imputer.fields, generator)
            loss = _loss(imputer, batch, given, pooled_var)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            imputer.eval()
            score = float(_loss(imputer, val, val_hidden, pooled_var))
            imputer.train()
        if score < best - 1e-5:
            best, best_epoch, waited = score, epoch, 0
            best_state = {k: v.detach().clone() for k, v in imputer.state_dict().items()}
        else:
            waited += 1
            if waited >= patience:
                break
    if best_state is not None:
        imputer.load_state_dict(best_state)
    imputer.eval()
    return ImputerFit(
        epochs=epoch,
        best_epoch=best_epoch,
        val_loss=round(best, 6),
        cosine=_cosines(imputer, val, val_hidden),
    )


Encodings = tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]  # space z, pooled, present


def _rows(encodings: Encodings, rows: Tensor) -> Encodings:
    z, pooled, present = encodings
    return (
        {f: x[rows] for f, x in z.items()},
        {f: x[rows] for f, x in pooled.items()},
        {f: x[rows] for f, x in present.items()},
    )


def _variance(pooled: Tensor) -> Tensor:
    """Per dimension over the rows (n, D) -> (D,); ones with fewer than two rows."""
    return pooled.var(dim=0) if pooled.shape[0] > 1 else torch.ones(pooled.shape[1])


@torch.no_grad()
def _encodings(model: FusionModel, tensors: TensorTable, rows: np.ndarray) -> Encodings:
    assert model.space is not None
    pooled, present, _ = pooled_outputs(model, tensors, rows)
    fields = model.space.fields
    z = model.space.project_all({f: pooled[f] for f in fields})
    return z, {f: pooled[f].cpu() for f in fields}, {f: present[f].bool().cpu() for f in fields}


def _hide(
    present: Mapping[str, Tensor], fields: tuple[str, ...], generator: torch.Generator
) -> dict[str, Tensor]:
    """Each present field kept with probability ½; a row left with none keeps what it had."""
    kept = {f: present[f] & (torch.rand(present[f].shape, generator=generator) < 0.5) for f in fields}
    none = ~torch.stack([kept[f] for f in fields]).any(dim=0)
    return {f: torch.where(none, present[f], kept[f]) for f in fields}


def _loss(
    imputer: EmbeddingImputer, batch: Encodings, given: Mapping[str, Tensor], pooled_var: Mapping[str, Tensor]
) -> Tensor:
    """The mean over fields of the loss on rows where the field is present and some other is given."""
    z, pooled, present = batch
    losses = []
    for field in imputer.fields:
        others = torch.stack([given[g] for g in imputer.fields if g != field]).any(dim=0)
        z_hat, pooled_hat = imputer(field, z, given)
        losses.append(
            imputation_loss(
                z_hat, z[field], pooled_hat, pooled[field], present[field] & others, pooled_var[field]
            )
        )
    return torch.stack(losses).mean()


@torch.no_grad()
def _cosines(imputer: EmbeddingImputer, batch: Encodings, given: Mapping[str, Tensor]) -> dict[str, float]:
    z, _, present = batch
    out = {}
    for field in imputer.fields:
        others = torch.stack([given[g] for g in imputer.fields if g != field]).any(dim=0)
        rows = present[field] & others
        if bool(rows.any()):
            z_hat, _ = imputer(field, z, given)
            out[field] = round(float((z_hat[rows] * z[field][rows]).sum(dim=1).mean()), 4)
    return out
