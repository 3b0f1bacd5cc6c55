"""Checkpoints every epoch and `plait train --resume` (issue 13, item 7): a run stopped at any epoch
— by an error, or by kill -9 — and resumed ends with the same weights and the same history as a run
that was never interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from plait.config import Config
from plait.errors import DataError
from plait.training import checkpoint as ck
from plait.workflow.train import train

STAGES = [{"kind": "unimodal", "epochs": 3}, {"kind": "end_to_end", "epochs": 6}]


def table(n: int = 300) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    centres = rng.normal(size=(3, 6))
    return pl.DataFrame(
        {
            "vec": [list(v) for v in centres[y] + 1.5 * rng.normal(size=(n, 6))],
            "x": y + rng.normal(size=n),
            "y": [f"c{v}" for v in y],
        }
    )


def config(**train_options: object) -> dict:
    return {
        "task": {"label": "y"},
        "fields": {"vec": "embedding", "num": {"kind": "tabular", "numeric": ["x"]}},
        "model": {"dim": 8, "hidden": 16, "dropout": 0.2},
        "train": {"progress": False, "patience": 3, "modality_dropout": 0.3, **train_options},
    }


def _history(metrics: dict) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in metrics["training"]["history"]]


@pytest.mark.parametrize(("stage", "epoch"), [(1, 1), (2, 2)])
def test_a_run_stopped_at_any_epoch_resumes_to_the_same_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: int, epoch: int
) -> None:
    cfg = Config.from_dict(config(stages=STAGES))
    whole = train(cfg, table=table(), out=tmp_path / "a", checkpoints=tmp_path / "a.ck")
    assert not (tmp_path / "a.ck").exists()  # removed once the bundle is saved

    saving = ck.EpochCheckpoint.on_train_epoch_end

    def stop_after_saving(self, trainer, module):  # type: ignore[no-untyped-def]
        saving(self, trainer, module)
        if (self.number, trainer.current_epoch) == (stage, epoch):
            raise RuntimeError("stopped")

    monkeypatch.setattr(ck.EpochCheckpoint, "on_train_epoch_end", stop_after_saving)
    with pytest.raises(RuntimeError, match="stopped"):
        train(cfg, table=table(), out=tmp_path / "b", checkpoints=tmp_path / "b.ck")
    monkeypatch.setattr(ck.EpochCheckpoint, "on_train_epoch_end", saving)
    said: list[str] = []
    resumed = train(
        cfg, table=table(), out=tmp_path / "b", checkpoints=tmp_path / "b.ck", resume=True, say=said.append
    )
    assert any(m.startswith(f"resumed: stage {stage}") for m in said)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (
        tmp_path / "b" / "model.safetensors"
    ).read_bytes()
    assert _history(whole.trained.metrics) == _history(resumed.trained.metrics)
    assert whole.trained.metrics["metrics"] == resumed.trained.metrics["metrics"]


def test_checkpoints_of_another_run_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = Config.from_dict(config(epochs=3))
    saving = ck.EpochCheckpoint.on_train_epoch_end

    def stop(self, trainer, module):  # type: ignore[no-untyped-def]
        saving(self, trainer, module)
        raise RuntimeError("stopped")

    monkeypatch.setattr(ck.EpochCheckpoint, "on_train_epoch_end", stop)
    with pytest.raises(RuntimeError):
        train(cfg, table=table(), out=tmp_path / "b", checkpoints=tmp_path / "ck")
    monkeypatch.setattr(ck.EpochCheckpoint, "on_train_epoch_end", saving)
    other = Config.from_dict(config(epochs=3, lr=0.01))
    with pytest.raises(DataError, match="checkpoints are of another run"):
        train(other, table=table(), out=tmp_path / "b", checkpoints=tmp_path / "ck", resume=True)


def test_kill_9_then_resume_ends_as_the_uninterrupted_run(tmp_path: Path) -> None:
    """A real `plait train` process killed with SIGKILL mid-training, then `plait train --resume`."""
    table(3000).write_parquet(tmp_path / "t.parquet")
    raw = config(epochs=25, patience=25)
    raw["data"] = {"path": "t.parquet"}
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(json.dumps({**raw, "output": f"bundle-{name}"}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    plait = [sys.executable, "-m", "plait.cli.main", "train"]
    flags = ["--no-progress", "--no-report"]
    subprocess.run([*plait, str(tmp_path / "a.yaml"), *flags], env=env, check=True, capture_output=True)

    run = subprocess.Popen([*plait, str(tmp_path / "b.yaml"), *flags], env=env, stdout=subprocess.DEVNULL)
    progress = tmp_path / "bundle-b.checkpoints" / "stage1.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.poll() is None:
        if progress.is_file() and json.loads(progress.read_text())["epoch"] >= 2:
            os.kill(run.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    run.wait()
    if run.returncode != -signal.SIGKILL:
        pytest.skip("the run finished before it could be killed (a very fast machine)")
    assert not (tmp_path / "bundle-b").exists()
    resumed = subprocess.run(
        [*plait, str(tmp_path / "b.yaml"), *flags, "--resume"], env=env, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "goes on from its last saved epoch" in resumed.stdout
    a, b = tmp_path / "bundle-a", tmp_path / "bundle-b"
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    metrics_a, metrics_b = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    assert metrics_a["metrics"] == metrics_b["metrics"] and _history(metrics_a) == _history(metrics_b)
    assert not (tmp_path / "bundle-b.checkpoints").exists()


def test_an_ensemble_stopped_in_its_second_member_resumes_to_the_same_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each member keeps a checkpoint folder of its own: the finished member is restored, the one
    in progress goes on from its last epoch (issue 15, seed ensembles)."""
    cfg = Config.from_dict(config(epochs=4, ensemble=2))
    whole = train(cfg, table=table(), out=tmp_path / "a", checkpoints=tmp_path / "a.ck")
    saving = ck.EpochCheckpoint.on_train_epoch_end

    def stop_in_member_two(self, trainer, module):  # type: ignore[no-untyped-def]
        saving(self, trainer, module)
        if self.folder.name == "member1" and trainer.current_epoch == 1:
            raise RuntimeError("stopped")

    monkeypatch.setattr(ck.EpochCheckpoint, "on_train_epoch_end", stop_in_member_two)
    with pytest.raises(RuntimeError, match="stopped"):
        train(cfg, table=table(), out=tmp_path / "b", checkpoints=tmp_path / "b.ck")
    assert (tmp_path / "b.ck" / "member0" / "run.json").is_file()
    monkeypatch.setattr(ck.EpochCheckpoint, "on_train_epoch_end", saving)
    said: list[str] = []
    resumed = train(
        cfg, table=table(), out=tmp_path / "b", checkpoints=tmp_path / "b.ck", resume=True, say=said.append
    )
    assert any(m.startswith("resumed: stage 1") for m in said)  # member one was finished
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (
        tmp_path / "b" / "model.safetensors"
    ).read_bytes()
    assert whole.trained.metrics["ensemble"] == resumed.trained.metrics["ensemble"]
