"""The contrastive stage under Lightning DDP on 2 CPU processes (gloo): every process's batch meets
the other's rows as negatives (even when the last batches differ in size), and both processes end
with the same parameters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

TESTS = Path(__file__).resolve().parents[1]

_SCRIPT = """
import os
import sys
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, sys.argv[2])
from conftest import latent_pairs
from plait.build import build_model
from plait.config import Config
from plait.training.datamodule import TableDataModule
from plait.training.fit import prepare
from plait.training.module import PlaitModule, build_probes

out = Path(sys.argv[1])
torch.manual_seed(0)
latent_pairs(157, seed=3).drop("y").write_parquet(out / "pairs.parquet")  # batches of 16: a last one of 13
cfg = Config.from_dict(
    {
        "data": {
            "path": "pairs.parquet", "split": {"kind": "random"}, "val_fraction": 0.1, "test_fraction": 0.0,
        },
        "fields": {"va": "embedding", "vb": "embedding"},
        "space": {"dim": 8, "impute": True},  # the imputer must sit out: DDP wants every grad
        "train": {"stages": [{"kind": "contrastive", "epochs": 2}], "progress": False},
    },
    base_dir=out,
)
prepared = prepare(cfg)
torch.manual_seed(0)
model = build_model(cfg, prepared.modalities, 1)
module = PlaitModule(
    model, build_probes(model, 1), task=prepared.task, lr=1e-2, weight_decay=0.0,
    modality_dropout=0.0, max_epochs=2, seed=0, stage="contrastive",
)
sizes = []
gather = module._gather


def spy(a, b, both):
    g = gather(a, b, both)
    sizes.append((int(a.shape[0]), int(g.a.shape[0]), int(g.both.sum()), int(both.sum())))
    return g


module._gather = spy
split = prepared.split
data = TableDataModule(prepared.tensors, train=split.train, val=split.val, batch_size=16, seed=0)
trainer = L.Trainer(
    max_epochs=2, accelerator="cpu", devices=2, strategy="ddp", logger=False, use_distributed_sampler=False,
    enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
)
trainer.fit(module, datamodule=data)
torch.save({"sizes": sizes, "state": {k: v.clone() for k, v in model.state_dict().items()}},
           out / f"rank{trainer.global_rank}.pt")
trainer.strategy.barrier()  # both saved; then leave without a gloo teardown, which can hang
os._exit(0)
"""


@pytest.mark.slow
def test_contrastive_stage_gathers_negatives_under_lightning_ddp(tmp_path: Path) -> None:
    script = tmp_path / "ddp.py"
    script.write_text(_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), str(TESTS)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for rank in ranks:
        assert rank["sizes"], "the gather never ran: the loss did not see the other process"
        for local, gathered, pairs_everywhere, pairs_here in rank["sizes"]:
            assert gathered == 2 * max(local, gathered // 2) and gathered >= 2 * local
            assert pairs_everywhere > pairs_here  # the other process's rows are negatives too
    assert any(local < 16 for local, *_ in ranks[0]["sizes"] + ranks[1]["sizes"])  # an uneven batch came
    for name, tensor in ranks[0]["state"].items():
        assert torch.equal(tensor, ranks[1]["state"][name]), name
