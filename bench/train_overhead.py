"""Epoch time of plait's training (Lightning, PlaitModule, TableDataModule) vs a hand-written PyTorch
loop on the same model, the same preprocessed tensors, the same modality dropout and the same
validation pass, measured in one run. Prints the ratio last (target ≤ 1.10).

    .venv/bin/python bench/train_overhead.py [--rows 1800] [--epochs 6] [--repeats 3] [--threads N]

Run it on an otherwise idle machine: with two torch threads on two busy cores, OpenMP spin-waiting
makes both loops many times slower and the ratio meaningless.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

from plait.build import build_modalities, build_model
from plait.data.dataset import TensorTable, load_table
from plait.data.split import split_rows
from plait.data.table import prepare_labels, read_table
from plait.datasets.pumps import generate_pumps
from plait.demo import demo_config
from plait.models.fusion_model import FusionModel
from plait.models.modality_dropout import drop_modalities
from plait.objectives.supervised import classification_loss
from plait.task import CLASSIFICATION, Task
from plait.training.datamodule import TableDataModule
from plait.training.module import PlaitModule, build_probes


class EpochTimer(L.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []
        self._t = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t = time.perf_counter()

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.times.append(time.perf_counter() - self._t)


def plait_epochs(
    model: FusionModel, table: TensorTable, task: Task, train_idx, val_idx, epochs: int, p: float
) -> list[float]:
    module = PlaitModule(
        model,
        build_probes(model, model.head.output_dim),  # plait also trains a light probe per field
        task=task,
        lr=3e-3,
        weight_decay=1e-4,
        modality_dropout=p,
        max_epochs=epochs,
        seed=0,
    )
    data = TableDataModule(table, train=train_idx, val=val_idx, batch_size=64, seed=0)
    timer = EpochTimer()
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[timer],
        deterministic=True,
    )
    trainer.fit(module, datamodule=data)
    return timer.times


def manual_epochs(
    model: FusionModel, table: TensorTable, train_idx, val_idx, epochs: int, p: float
) -> list[float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=3e-3 * 0.05)
    rng = torch.Generator().manual_seed(0)
    order_rng = torch.Generator().manual_seed(0)
    train_t, val_t = torch.as_tensor(train_idx), torch.as_tensor(val_idx)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        for chunk in train_t[torch.randperm(len(train_t), generator=order_rng)].split(64):
            batch = table.batch(chunk)
            batch = batch.with_present(drop_modalities(batch.present, p, rng))
            loss = classification_loss(model(batch).output, batch.target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            for chunk in val_t.split(64):
                batch = table.batch(chunk)
                classification_loss(model(batch).output, batch.target)
        scheduler.step()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1800)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        ds = generate_pumps(Path(tmp), n=args.rows, seed=0)
        cfg = demo_config(ds.table_path, ds.fields, fusion="gated", seed=0, base_dir=Path(tmp))
        df = read_table(ds.table_path)
        labels = prepare_labels(df, "fault", CLASSIFICATION, str(ds.table_path))
        split = split_rows(
            labels.target, labels.valid, classification=True, val_fraction=0.15, test_fraction=0.15, seed=0
        )
        modalities = build_modalities(cfg)
        for m in modalities.values():
            m.fit(df[split.train.tolist()], Path(tmp))
        table, _ = load_table(df, modalities, Path(tmp), target=labels.target)
    torch.manual_seed(0)
    base = build_model(cfg, modalities, len(labels.classes))
    plait_times: list[float] = []
    manual_times: list[float] = []
    for _ in range(args.repeats):  # alternate so drift in machine load hits both
        # the first epoch of each run warms caches and allocators: leave it out of both
        plait_times += plait_epochs(
            copy.deepcopy(base), table, labels.task, split.train, split.val, args.epochs, 0.25
        )[1:]
        manual_times += manual_epochs(copy.deepcopy(base), table, split.train, split.val, args.epochs, 0.25)[
            1:
        ]
    p_med, m_med = statistics.median(plait_times), statistics.median(manual_times)
    print(
        f"rows={args.rows} train={len(split.train)} val={len(split.val)} batch=64 "
        f"threads={torch.get_num_threads()}"
    )
    print(f"plait (Lightning) epoch: median {p_med * 1000:.1f} ms over {len(plait_times)} epochs")
    print(f"hand-written loop epoch: median {m_med * 1000:.1f} ms over {len(manual_times)} epochs")
    print(f"ratio plait / hand-written: {p_med / m_med:.3f}")


if __name__ == "__main__":
    main()
