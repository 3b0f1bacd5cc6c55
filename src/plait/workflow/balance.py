"""After training: how much each field contributed, and whether one field crowded out another.
It needs both sides — the training's field probes and gradient shares, and the held-out
evaluation — so it lives here, above training and evaluation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from plait.data.dataset import TensorTable
from plait.evaluation.balance import BalanceReport, dominance_warnings, mean_shares, reliance_shares
from plait.evaluation.evaluate import Evaluation
from plait.models.fusion_hooks import pooled_outputs
from plait.models.fusion_model import FusionModel
from plait.task import Task
from plait.training.module import probe_skill


@torch.no_grad()
def balance_report(
    model: FusionModel,
    probes: nn.ModuleDict,
    table: TensorTable,
    *,
    held_out: np.ndarray,
    train_rows: np.ndarray,
    task: Task,
    share_history: Sequence[Mapping[str, float]],
    evaluation: Evaluation,
    mitigation: Mapping[str, float],
) -> BalanceReport:
    """Gradient shares averaged over the epochs that trained the encoders through the fusion;
    reliance from the held-out evaluation with each field removed; each field's own skill from its
    probe on the same held-out rows; warnings from dominance_warnings."""
    pooled, present, target = pooled_outputs(model, table, held_out)
    assert target is not None
    probes.eval()
    outputs = {f: probes[f](pooled[f]).float().cpu() for f in pooled}
    own = probe_skill([(outputs, {f: p.cpu() for f, p in present.items()}, target.cpu())], task)
    metric = task.robustness_metric  # higher is better: accuracy, or R²
    chance = 0.0
    if task.is_classification and table.target is not None:
        train_target = table.target[torch.as_tensor(train_rows, dtype=torch.long)]
        chance = float(torch.bincount(train_target.long()).max()) / max(len(train_target), 1)
    shares = mean_shares(share_history)
    relied = reliance_shares(evaluation.metrics, evaluation.without_field, metric)
    return BalanceReport(
        grad_share=shares,
        reliance=relied,
        own=own,
        own_metric=metric,
        chance=chance,
        warnings=tuple(
            dominance_warnings(
                shares,
                relied,
                own,
                chance,
                metric,
                drops=_drops(evaluation, metric),
                full=evaluation.metrics.get(metric),
            )
        ),
        mitigation=dict(mitigation),
    )


def _drops(evaluation: Evaluation, metric: str) -> dict[str, float]:
    """How much the held-out metric (higher is better) falls when each field is removed."""
    full = evaluation.metrics.get(metric)
    if full is None:
        return {}
    return {f: full - m[metric] for f, m in evaluation.without_field.items() if metric in m}
