"""Gradient boosting (LightGBM) on summary features: the strong simple model a user already has.

Trained on the split's training rows, stopped early on its validation rows (when there are any),
scored on the held-out rows with the task's own metrics, and retrained once without each field
(`retrained_without`): what the user's forest would score had the field never been collected, the
figure a fused model with that field absent is read against (the retrain gap)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from plait.baseline.features import FeatureTable
from plait.data.split import Split
from plait.errors import PlaitError
from plait.task import Task

ROUNDS = 1000  # at most; early stopping on the validation rows usually ends far sooner
NO_VALIDATION_ROUNDS = 300  # when the split has no validation rows to stop on
PATIENCE = 50
NAME = "boosting"


@dataclass(frozen=True)
class BoostingSettings:
    learning_rate: float = 0.05
    num_leaves: int = 31
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    l2: float = 1.0
    threads: int = 0  # 0: torch's thread count

    def params(self, task: Task, rows: int, seed: int) -> dict[str, Any]:
        threads = self.threads or torch.get_num_threads()
        params: dict[str, Any] = {
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": int(min(20, max(2, rows // 20))),
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1,
            "lambda_l2": self.l2,
            "seed": seed,
            "num_threads": threads,
            "deterministic": True,
            "force_col_wise": True,
            "verbose": -1,
        }
        if task.is_classification:
            params.update(objective="multiclass", num_class=len(task.classes), metric="multi_logloss")
        else:
            params.update(objective="regression", metric="l2")
        return params


@dataclass(frozen=True)
class BoostingResult:
    """The baseline on the held-out rows: the headline metric and every task metric, the outputs
    (logits of its probabilities, or standardised predictions) for calibration and paired tests,
    the rounds it kept, each field's share of the split gain, and the headline metric of a
    boosting model retrained without each field."""

    fields: tuple[str, ...]
    metric: float
    metrics: Mapping[str, float]
    output: torch.Tensor  # (N_held_out, K) log-probabilities, or (N_held_out, 1) predictions
    rounds: int
    features: int
    seconds: float
    importance: Mapping[str, float] = field(default_factory=dict)  # field -> share of total gain
    retrained_without: Mapping[str, float] = field(default_factory=dict)


def fit_boosting(
    features: FeatureTable,
    target: torch.Tensor,
    split: Split,
    task: Task,
    *,
    seed: int = 0,
    fields: Sequence[str] | None = None,
    without: bool = True,
    settings: BoostingSettings | None = None,
) -> BoostingResult:
    """Fit on `split.train`, stop on `split.val`, score the held-out rows; `fields` (None: all)
    chooses the fields whose features it sees; `without` also retrains once without each field."""
    start = time.perf_counter()
    settings = settings or BoostingSettings()
    chosen = tuple(dict.fromkeys(fields if fields is not None else features.fields))
    booster, columns = _fit(features, chosen, target, split, task, seed, settings)
    _, held_out = split.held_out()
    output = _predict(booster, features.matrix[np.ix_(held_out, columns)], task)
    y = target[torch.as_tensor(held_out, dtype=torch.long)]
    metrics = task.metrics(output, y)
    retrained: dict[str, float] = {}
    if without and len(chosen) > 1:
        for f in chosen:
            rest = tuple(g for g in chosen if g != f)
            other, cols = _fit(features, rest, target, split, task, seed, settings)
            scored = task.metrics(_predict(other, features.matrix[np.ix_(held_out, cols)], task), y)
            retrained[f] = float(scored[task.headline_metric])
    return BoostingResult(
        fields=chosen,
        metric=float(metrics[task.headline_metric]),
        metrics=metrics,
        output=output,
        rounds=int(booster.best_iteration or booster.current_iteration()),
        features=len(columns),
        seconds=time.perf_counter() - start,
        importance=_importance(booster, [features.fields[j] for j in columns]),
        retrained_without=retrained,
    )


def _fit(
    features: FeatureTable,
    fields: Sequence[str],
    target: torch.Tensor,
    split: Split,
    task: Task,
    seed: int,
    settings: BoostingSettings,
) -> tuple[Any, np.ndarray]:
    lgb = _lightgbm()
    columns = features.columns_of(fields)
    if len(columns) == 0:
        raise PlaitError(f"boosting baseline: the fields {list(fields)} have no summary features")
    y = target.numpy()
    x = features.matrix[:, columns]
    train_set = lgb.Dataset(x[split.train], y[split.train], free_raw_data=False)
    params = settings.params(task, len(split.train), seed)
    if len(split.val):
        valid = lgb.Dataset(x[split.val], y[split.val], reference=train_set)
        booster = lgb.train(
            params,
            train_set,
            num_boost_round=ROUNDS,
            valid_sets=[valid],
            callbacks=[lgb.early_stopping(PATIENCE, verbose=False)],
        )
    else:
        booster = lgb.train(params, train_set, num_boost_round=NO_VALIDATION_ROUNDS)
    return booster, columns


def _predict(booster: Any, x: np.ndarray, task: Task) -> torch.Tensor:
    raw = booster.predict(x, num_iteration=booster.best_iteration or None)
    if task.is_classification:
        probabilities = np.clip(np.asarray(raw, dtype=np.float64).reshape(len(x), -1), 1e-12, 1.0)
        return torch.from_numpy(np.log(probabilities)).float()  # (N, K): softmax gives them back
    return torch.from_numpy(np.asarray(raw, dtype=np.float32)).reshape(-1, 1)  # (N, 1)


def _importance(booster: Any, fields: Sequence[str]) -> dict[str, float]:
    gain = booster.feature_importance(importance_type="gain")  # (D,)
    total = float(np.sum(gain))
    out: dict[str, float] = {}
    for f, g in zip(fields, gain, strict=True):
        out[f] = out.get(f, 0.0) + float(g)
    return {f: round(v / total, 4) if total > 0 else 0.0 for f, v in out.items()}


def _lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError as exc:  # a broken install: lightgbm is a dependency of plait
        raise PlaitError(
            f"the boosting baseline needs LightGBM, which failed to import ({exc}); "
            "reinstall it with `pip install lightgbm`"
        ) from exc
    return lightgbm
