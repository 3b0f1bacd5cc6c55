"""`cross_validate(config, fusions, folds=K, seeds=S)`: every model on K folds × S seeds.

The table is read once; each fold's preprocessing is fitted on that fold's training rows only
(`prepare` with the fold's split), then every model is trained once per seed on it. Folds keep the
run's split kind (grouped folds when a group is set, forward chaining for time; see data/folds.py);
seeds change the model's initialisation, batches and dropout, not the rows. A model failing on one
run is a failed run, not a crash.

The result keeps every run; `CrossValidation` derives the mean ± std per model, per fold and per
seed, and the paired difference of every model against the best with a corrected resampled
t-interval (compare/stats.py) — a ranking inside that interval is not a ranking. Out-of-fold
predictions (each test row, each model and seed) are kept for `oof.parquet`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from plait.baseline.boosting import BoostingResult
from plait.compare.cv_result import CrossValidation, CVRun, OutOfFold
from plait.compare.result import BASELINE, CompareRow
from plait.compare.run import Features, model_plans, outcome, resolve_fusions, train_row
from plait.config import Config
from plait.data.folds import make_folds
from plait.data.split import Split
from plait.data.split_plan import make_split, plan_split
from plait.data.split_unlabelled import unlabelled_rows
from plait.errors import ConfigError, PlaitError
from plait.models.answers import calibrated
from plait.models.inference import run_model
from plait.task import EMBEDDING, Task

if TYPE_CHECKING:
    import polars as pl

    from plait.training.fit import Prepared
    from plait.workflow.train import TrainResult

Say = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """What a cross-validation runs: K folds (1: the config's own split) × these seeds."""

    folds: int
    seeds: tuple[int, ...]

    @staticmethod
    def of(folds: int, seeds: int, first_seed: int) -> Plan:
        if folds < 1:
            raise ConfigError(f"--folds: expected 1 (the config's split) or more, got {folds}")
        if seeds < 1:
            raise ConfigError(f"--seeds: expected 1 or more, got {seeds}")
        return Plan(folds=folds, seeds=tuple(range(first_seed, first_seed + seeds)))


def cross_validate(
    config: Config,
    fusions: Sequence[str],
    *,
    folds: int = 5,
    seeds: int = 1,
    unimodal: bool = True,
    baseline: bool = True,
    retrain: bool = False,
    say: Say | None = None,
    table: pl.DataFrame | None = None,
) -> CrossValidation:
    """Train each fusion (each field alone, with `retrain` the first fusion without each field,
    and the boosting baseline) on every fold and seed; see the module doc."""
    from plait.training.distributed import require_one_process
    from plait.training.fit import prepare, read_training_table  # Lightning: only when training

    require_one_process(config.train, "cross-validation")

    tell: Say = say or (lambda _msg: None)
    names = resolve_fusions(fusions)
    plan = Plan.of(folds, seeds, config.train.seed)
    start = time.perf_counter()
    if not config.labelled:  # a label-free config compares nothing: say so before reading the table
        Task(EMBEDDING, "").require_prediction("plait compare / cross-validation")
    read = read_training_table(config, table=table, say=tell)
    split_plan = plan_split(read.config)
    splits: list[Split] = (
        make_folds(split_plan, read.table, read.labels, plan.folds, read.source)
        if plan.folds > 1
        else [make_split(split_plan, read.table, read.labels, read.source)]
    )
    if any(s.kind == "contrastive" for s in read.config.train.stages):  # as `plait train` does
        splits = [
            replace(s, unlabelled=unlabelled_rows(s, read.table, read.labels.valid, read.source))
            for s in splits
        ]
    models = model_plans(
        names, read.config.field_names, unimodal=unimodal, baseline=baseline, retrain=retrain
    )
    total = len(splits) * len(plan.seeds) * len(models)
    tell(
        f"cross-validation: {len(splits)} fold{'s' if len(splits) != 1 else ''} × {len(plan.seeds)} "
        f"seed{'s' if len(plan.seeds) != 1 else ''} × {len(models)} models = {total} trainings"
    )
    runs: list[CVRun] = []
    oof: list[OutOfFold] = []
    done = 0
    prepared = None
    for fold, split in enumerate(splits):
        try:
            prepared = prepare(
                read.config, table=read, say=tell if fold == 0 else _fold_lines(tell), split=split
            )
        except PlaitError as exc:
            if fold == 0:
                raise  # the first fold fails fast: the data or config is wrong for every fold
            tell(f"fold {fold + 1}/{len(splits)}: FAILED to prepare — {exc}")
            done += len(plan.seeds) * len(models)
            runs += _failed(models, fold, plan.seeds, split, f"{type(exc).__name__}: {exc}")
            continue
        features = Features(prepared)  # the boosting row's, once per fold
        for seed in plan.seeds:
            for model in models:
                done += 1
                where = f"[{done}/{total}] fold {fold + 1}/{len(splits)} · seed {seed} · {model.name}"
                tell(f"{where}: training…")
                trained = train_row(
                    prepared, model, None, lambda m: None, seed=seed, extras=False, features=features
                )
                tell(f"{where}: {outcome(trained.row, prepared.task)}{_eta(start, done, total)}")
                runs.append(CVRun(fold=fold, seed=seed, row=trained.row, split=split.to_json()))
                if trained.result is not None:
                    oof.append(_out_of_fold(prepared, model.name, fold, seed, trained.result))
                elif trained.baseline is not None:
                    oof.append(_baseline_out_of_fold(prepared, model.name, fold, seed, trained.baseline))
    if prepared is None or not any(r.row.ok for r in runs if r.row.kind != BASELINE):
        failures = "; ".join(sorted({f"{r.row.name}: {r.row.error}" for r in runs}))
        raise PlaitError(f"cross-validation: every run failed; fix these and run again: {failures}")
    return CrossValidation(
        config=read.config.to_dict(),
        task=prepared.task,
        fields=read.config.field_names,
        models=tuple(m.name for m in models),
        kinds=tuple(m.kind for m in models),
        folds=len(splits),
        seeds=plan.seeds,
        split_kind=split_plan.kind,
        split_column=split_plan.column,
        split_why=split_plan.why,
        runs=tuple(runs),
        out_of_fold=tuple(oof),
        seconds=time.perf_counter() - start,
        source=read.source,
    )


def _out_of_fold(prepared: Prepared, model: str, fold: int, seed: int, result: TrainResult) -> OutOfFold:
    """The model's predictions on this fold's test rows (calibrated where the bundle would be)."""
    trained = result.trained
    rows = prepared.split.test
    tensors = prepared.tensors.select(list(trained.modalities))
    out = run_model(trained.model, tensors, torch.as_tensor(rows, dtype=torch.long)).output
    if trained.task.is_classification:
        present = {f: tensors.present[f][torch.as_tensor(rows)] for f in trained.modalities}
        out = calibrated(out, present, trained.calibration)  # (N, K)
    return _predictions(prepared, model, fold, seed, rows, out)


def _baseline_out_of_fold(
    prepared: Prepared, model: str, fold: int, seed: int, fit: BoostingResult
) -> OutOfFold:
    """The boosting baseline's predictions on this fold's held-out rows (its probabilities as they
    are: boosting is not temperature-scaled)."""
    _, rows = prepared.split.held_out()
    return _predictions(prepared, model, fold, seed, rows, fit.output)


def _predictions(
    prepared: Prepared, model: str, fold: int, seed: int, rows: np.ndarray, output: torch.Tensor
) -> OutOfFold:
    """Outputs on `rows` ((N, K) logits, or (N, 1) standardised values) as out-of-fold rows."""
    task = prepared.task
    assert prepared.tensors.target is not None  # training tables are labelled
    truth = task.to_target_units(prepared.tensors.target[torch.as_tensor(rows, dtype=torch.long)].double())
    if task.is_classification:
        probabilities = task.probabilities(output).numpy()
        predicted = probabilities.argmax(axis=1).astype(np.float64)
    else:
        probabilities = None
        predicted = task.to_target_units(output).numpy()
    return OutOfFold(
        model=model,
        fold=fold,
        seed=seed,
        rows=rows,
        truth=truth.numpy(),  # class indices, or values in target units
        predicted=predicted,
        probabilities=probabilities,
    )


def _failed(
    models: Sequence[CompareRow], fold: int, seeds: Sequence[int], split: Split, error: str
) -> list[CVRun]:
    """Every model × seed of a fold that could not be prepared, as failed runs."""
    return [
        CVRun(fold=fold, seed=seed, row=replace(model, error=error), split=split.to_json())
        for seed in seeds
        for model in models
    ]


def _eta(start: float, done: int, total: int) -> str:
    """' · about N min left', from the mean time per training so far (nothing after the last)."""
    if done >= total:
        return ""
    left = (time.perf_counter() - start) / done * (total - done)
    return f" · about {left / 60:.0f} min left" if left >= 90 else f" · about {left:.0f} s left"


def _fold_lines(tell: Say) -> Say:
    """After the first fold, only what differs between folds: the split and warnings (the load
    report is the same for every fold)."""

    def say(message: str) -> None:
        if " rows, fold " in message or message.startswith("warning"):
            tell(message)

    return say
