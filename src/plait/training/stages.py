"""The staged Lightning fit: `fit_stages(config, model, task, tensors, split, say)` runs the stages
of `train.stages` in order (unimodal pretraining, frozen-encoder joint training, end-to-end
fine-tuning; one end-to-end stage by default), each its own `lightning.Trainer` with early stopping
and its best weights restored, then the fusion's held-out hook. `fit.py` prepares what goes in;
plait.workflow evaluates, calibrates and bundles what comes out."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping

from plait.config import Config
from plait.data.dataset import TensorTable
from plait.data.split import Split
from plait.errors import DataError
from plait.models.fusion_hooks import fit_fusion_held_out, prepare_fusion
from plait.models.fusion_model import FusionModel
from plait.task import Task
from plait.training.callbacks import BestWeights, CompactProgressBar, EpochLines
from plait.training.checkpoint import Checkpoints, read_checkpoint
from plait.training.datamodule import TableDataModule
from plait.training.distributed import trainer_placement
from plait.training.imputation import ImputerFit, fit_imputer
from plait.training.module import PlaitModule, build_probes, set_trainable

Say = Callable[[str], None]


@dataclass(frozen=True)
class Fitted:
    probes: torch.nn.ModuleDict
    history: list[dict[str, Any]]
    stages: list[dict[str, Any]]
    shares: list[dict[str, float]]  # per epoch that trained the encoders through the fusion
    seconds: float
    imputer: ImputerFit | None = None  # the embedding imputer's fit (space.impute)


def fit_stages(
    config: Config,
    model: FusionModel,
    task: Task,
    tensors: TensorTable,
    split: Split,
    tell: Say,
    checkpoints: Checkpoints | None = None,
) -> Fitted:
    """Run the stages in order (train.stages, or one end_to_end stage), each its own Lightning fit
    with early stopping and its best weights restored; then the fusion's held-out hook. With
    `checkpoints`, every epoch is saved and a run that was killed goes on where it stopped."""
    t = config.train
    plan = t.stage_plan()
    probes = build_probes(model, task.n_outputs)
    val = split.val if len(split.val) else split.train
    history: list[dict[str, Any]] = []
    stages: list[dict[str, Any]] = []
    shares: list[dict[str, float]] = []
    fusion_prepared = False
    start = time.perf_counter()
    placement = trainer_placement(t)
    processes = int(placement["devices"]) * int(placement["num_nodes"])  # type: ignore[call-overload]
    if processes > 1:
        tell(
            f"training on {processes} processes ({placement['strategy']}, {t.accelerator}): each batch of "
            f"{t.batch_size} rows is split across them"
        )
    for number, stage in enumerate(plan, start=1):
        assert stage.lr is not None  # stage_plan fills it in
        if len(plan) > 1:
            tell(f"stage {number}/{len(plan)}: {stage.kind}, {stage.epochs} epochs at lr {stage.lr:g}")
        if stage.kind in ("frozen", "end_to_end") and not fusion_prepared:
            prepare_fusion(model, tensors, split.train, seed=t.seed)
            fusion_prepared = True
        module = PlaitModule(
            model,
            probes,
            task=task,
            lr=stage.lr,
            weight_decay=t.weight_decay,
            modality_dropout=t.modality_dropout if stage.kind in ("frozen", "end_to_end") else 0.0,
            max_epochs=stage.epochs,
            seed=t.seed + number - 1,
            stage=stage.kind,
            aux_loss=t.aux_loss,
            ogm_ge=t.ogm_ge,
            subset_loss=t.subset_loss,
            subset_distill=t.subset_distill,
            space_weight=config.space_weight if stage.kind in ("frozen", "end_to_end") else 0.0,
            pairs=stage.pairs,
        )
        done = None if checkpoints is None else checkpoints.finished(number)
        if done is not None:  # finished before the run was stopped: its weights and records
            checkpoints.load_finished(number, module)  # type: ignore[union-attr]
            history.extend(done["history"])
            shares.extend(done["shares"])
            stages.append(done["record"])
            tell(f"resumed: stage {number} ({stage.kind}) was finished")
            continue
        train_rows = split.train
        if stage.kind == "contrastive" and len(split.unlabelled):  # no labels needed: every safe row
            train_rows = np.sort(np.concatenate([split.train, split.unlabelled]))
        if processes > 1 and len(train_rows) < processes:
            raise DataError(
                f"{len(train_rows)} training rows cannot be shared across {processes} processes (each needs "
                "at least one row per batch); train on fewer processes (train.devices)"
            )
        data = TableDataModule(tensors, train=train_rows, val=val, batch_size=t.batch_size, seed=t.seed)
        best = BestWeights()
        callbacks: list[L.Callback] = [
            best,
            EarlyStopping(monitor="val_loss", patience=t.patience, mode="min"),
        ]
        if t.progress:
            callbacks.append(CompactProgressBar(leave=False))
        else:  # no bars: a log still hears from every epoch
            name = stage.kind if len(plan) > 1 else None
            callbacks.append(EpochLines(tell, epochs=stage.epochs, stage=name))
        saved = None if checkpoints is None else checkpoints.in_progress(number)
        if checkpoints is not None:
            callbacks.append(checkpoints.callback(number))  # last: after early stopping and best weights
        with quiet_lightning():
            trainer = L.Trainer(
                max_epochs=stage.epochs,
                **placement,  # type: ignore[arg-type]
                precision=t.precision,  # type: ignore[arg-type]
                callbacks=callbacks,
                logger=False,
                enable_checkpointing=False,
                enable_model_summary=False,
                enable_progress_bar=t.progress,
                num_sanity_val_steps=0,
                deterministic=True,
                log_every_n_steps=1,
            )
            if saved is not None and saved[1]:  # early stopping had fired: the stage was over
                _finish_from(saved[0], module, best)
                tell(f"resumed: stage {number} ({stage.kind}) had stopped early")
            else:
                if saved is not None:
                    tell(f"resumed: stage {number} ({stage.kind}) goes on from its last saved epoch")
                ckpt = None if saved is None else str(saved[0])
                trainer.fit(module, datamodule=data, ckpt_path=ckpt, weights_only=True)
        rows = [{"stage": stage.kind, **row} for row in best.history]
        record = {
            "kind": stage.kind,
            "epochs": stage.epochs,
            "lr": stage.lr,
            "rows": len(train_rows),  # training rows (a contrastive stage adds safe unlabelled rows)
            "processes": processes,  # > 1: DDP/FSDP, each global batch split across the processes
            "epochs_run": len(best.history),
            "best_epoch": best.best_epoch,
            "best_val_loss": best.best_score,
        }
        history.extend(rows)
        shares.extend(module.share_history)
        stages.append(record)
        if checkpoints is not None:
            done_now = {"record": record, "history": rows, "shares": list(module.share_history)}
            checkpoints.finish_stage(number, module, done_now)
    set_trainable(model, True)
    model.to("cpu")
    probes.to("cpu")
    if fusion_prepared and fit_fusion_held_out(model, tensors, val, task) and not len(split.val):
        tell("the fusion's meta-learner was fitted on the TRAINING rows: there are no validation rows")
    imputer = None
    if model.imputer is not None:
        imputer = fit_imputer(model, tensors, split.train, split.val, seed=t.seed)
        cosines = ", ".join(f"{f} {c:.2f}" for f, c in imputer.cosine.items())
        tell(
            f"embedding imputer: {imputer.epochs} epochs; cosine of imputed to real embeddings on "
            f"validation rows: {cosines}"
        )
    return Fitted(
        probes=probes,
        history=history,
        stages=stages,
        shares=shares,
        seconds=time.perf_counter() - start,
        imputer=imputer,
    )


def _finish_from(path: Path, module: PlaitModule, best: BestWeights) -> None:
    """A stage whose last checkpoint says early stopping fired: its weights, records and best epoch,
    as the uninterrupted run ended it."""
    state = read_checkpoint(path)
    module.load_state_dict(state["state_dict"])
    module.on_load_checkpoint(state)
    best.load_state_dict(state["callbacks"][best.state_key])
    best.restore(module)


class quiet_lightning:
    """Silence Lightning's start-up chatter (GPU available: False, …) and its known benign warnings."""

    def __enter__(self) -> None:
        self._level = logging.getLogger("lightning.pytorch").level
        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
        for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*The number of training batches.*")
        warnings.filterwarnings("ignore", message=".*overridden `transfer_batch_to_device`.*")
        warnings.filterwarnings("ignore", message=".*treespec, LeafSpec.*")

    def __exit__(self, *exc: Any) -> None:
        self._warnings.__exit__(*exc)
        logging.getLogger("lightning.pytorch").setLevel(self._level)
