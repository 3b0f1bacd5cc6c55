"""Ablation by retraining: the true value of a field is what a model trained without it scores.

Removing a field at test time (the presence mask) asks "what if this field goes dark now?"; a
model trained without the field could have learned to lean on the others instead. This trains one
model per left-out field with the bundle's config, on the same table, split and seed, and measures
it on the same rows as the evaluation — slow (one training run per field), hence optional. It is
the `retrain` hook of `plait.workflow.evaluate.evaluate_report` (`plait evaluate --retrain-ablation`):
evaluation asks for it and never imports training.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from plait.bundle import TrainedModel
from plait.evaluation.evaluate import evaluate_tensors
from plait.training.fit import fit_model, prepare


def retrain_without(
    trained: TrainedModel,
    table: pl.DataFrame,
    root: Path,
    rows: np.ndarray,
    say: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """field → the headline metric on `rows` of a model trained without that field. `table` must be
    the bundle's training table (the caller checks), so the recomputed split is the bundle's."""
    tell = say or (lambda _msg: None)
    names = list(trained.modalities)
    if len(names) < 2:
        return {}
    # one process: a bundle trained on several still retrains here, in this process, one by one
    config = trained.config.with_overrides(
        data={"root": str(root)}, train={"progress": False, "devices": 1, "num_nodes": 1}
    )
    prepared = prepare(config, table=table)
    metric = trained.task.headline_metric
    out: dict[str, float] = {}
    for number, field in enumerate(names, start=1):
        tell(f"retraining without {field} ({number}/{len(names)})…")
        result = fit_model(prepared, fields=[n for n in names if n != field])
        out[field] = evaluate_tensors(result.trained, prepared.tensors, rows).metrics[metric]
    return out
