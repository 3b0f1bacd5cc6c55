"""Supervised training under Lightning DDP on 2 CPU processes (gloo), through `plait.train` as a
user calls it: every process ends with the same parameters, and the bundle's metrics, gradient
shares (the balance probes) and training history are those of one process with the same seed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

TESTS = Path(__file__).resolve().parents[1]

# Dropout layers off (model.dropout, the fusion's own): each process draws its own masks, so with them on
# a run agrees with one process in distribution only, not parameter for parameter.
# argv: out folder, tests folder, devices, extra train settings as JSON
_SCRIPT = """
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, sys.argv[2])
from conftest import latent_pairs
import plait.training.fit as fit
from plait.config import Config
from plait.workflow.train import train

out = Path(sys.argv[1])
devices = int(sys.argv[3])
extra = json.loads(sys.argv[4])
rank = int(os.environ.get("LOCAL_RANK", "0"))
table = latent_pairs(262, seed=5)
cfg = Config.from_dict(
    {
        "data": {
            "path": "pairs.parquet", "split": {"kind": "random"}, "val_fraction": 0.2, "test_fraction": 0.2
        },
        "task": {"label": "y"},
        "fields": {"va": "embedding", "vb": "embedding"},
        "model": {"dim": 16, "fusion": "gated", "dropout": 0.0, "fusion_options": {"dropout": 0.0}},
        "train": {
            "epochs": 5, "batch_size": 16, "progress": False, "seed": 3, "modality_dropout": 0.0,
            "subset_loss": 0.0, "devices": devices, **extra,
        },
    },
    base_dir=out,
)
stages = fit.fit_stages


def spy(config, model, *args, **kwargs):
    done = stages(config, model, *args, **kwargs)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.save({"state": state, "shares": done.shares, "history": done.history}, out / f"rank{rank}.pt")
    return done


fit.fit_stages = spy
result = train(cfg, table=table, out=out / "bundle")  # the other process exits inside, once trained
(out / "metrics.json").write_text(json.dumps(result.trained.metrics["metrics"]))
"""


def _run(folder: Path, devices: int, extra: dict) -> subprocess.CompletedProcess[str]:
    folder.mkdir()
    script = folder / "train.py"
    script.write_text(_SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), str(folder), str(TESTS), str(devices), json.dumps(extra)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=400,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra",
    [
        {},
        # a unimodal stage first (a second Trainer on the same processes) and OGM-GE, whose per-batch
        # scores must be the whole global batch's and whose noise must be alike on every process
        {"stages": [{"kind": "unimodal", "epochs": 2}, {"kind": "end_to_end", "epochs": 4}], "ogm_ge": 0.8},
    ],
    ids=["end_to_end", "stages+ogm"],
)
def test_two_processes_train_as_one(tmp_path: Path, extra: dict) -> None:
    one = _run(tmp_path / "one", 1, extra)
    assert one.returncode == 0, one.stderr[-3000:]
    two = _run(tmp_path / "two", 2, extra)
    assert two.returncode == 0, two.stderr[-3000:]

    ranks = [torch.load(tmp_path / "two" / f"rank{r}.pt") for r in range(2)]
    alone = torch.load(tmp_path / "one" / "rank0.pt")
    for name, tensor in ranks[0]["state"].items():
        assert torch.equal(tensor, ranks[1]["state"][name]), f"{name} differs between the processes"
        # the same batches and the same averaged gradient: the one-process run, to float rounding
        torch.testing.assert_close(tensor, alone["state"][name], rtol=1e-4, atol=1e-5, msg=name)
    assert [h["epoch"] for h in ranks[0]["history"]] == [h["epoch"] for h in alone["history"]]
    for got, want in zip(ranks[0]["history"], alone["history"], strict=True):
        assert got["val_loss"] == pytest.approx(want["val_loss"], rel=1e-4, abs=1e-5)
        assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-4, abs=1e-5)  # all shares
    assert ranks[0]["shares"] and len(ranks[0]["shares"]) == len(alone["shares"])
    for got, want in zip(ranks[0]["shares"], alone["shares"], strict=True):
        assert got == pytest.approx(want, abs=1e-4)  # gradient shares reduced over the processes

    metrics_two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    metrics_one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    for key, value in metrics_one.items():
        assert metrics_two[key] == pytest.approx(value, abs=1e-5), key
    assert (tmp_path / "two" / "bundle" / "model.safetensors").is_file()  # the main process saved it
    assert not list((tmp_path / "two").glob("bundle*.checkpoints"))


@pytest.mark.slow
def test_plait_train_runs_on_two_processes_from_the_command_line(tmp_path: Path) -> None:
    """Lightning starts the second process by running the same `plait train` command again; that
    process stays silent and leaves once trained, and the bundle records the processes."""
    import polars as pl

    sys.path.insert(0, str(TESTS))
    from conftest import latent_pairs

    latent_pairs(200, seed=1).write_parquet(tmp_path / "pairs.parquet")
    (tmp_path / "cfg.yaml").write_text(
        "data: {path: pairs.parquet, split: {kind: random}}\n"
        "task: {label: y}\n"
        "fields: {va: embedding, vb: embedding}\n"
        "model: {dim: 8}\n"
        "train: {epochs: 2, batch_size: 32}\n"
        "output: out/bundle\n"
    )
    plait = Path(sys.executable).with_name("plait")
    done = subprocess.run(
        [str(plait), "train", "cfg.yaml", "--devices", "2", "--no-progress", "--no-report"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("training on 2 processes (ddp, cpu)") == 1  # said once: the worker is quiet
    metrics = json.loads((tmp_path / "out" / "bundle" / "metrics.json").read_text())
    assert [s["processes"] for s in metrics["training"]["stages"]] == [2]
    assert pl.read_parquet(tmp_path / "pairs.parquet").height == 200


def test_fsdp_and_an_unknown_strategy_are_refused_with_the_fix() -> None:
    from plait.config import Config
    from plait.errors import ConfigError

    base = {"data": {"path": "t.parquet"}, "task": {"label": "y"}, "fields": {"x": "embedding"}}
    with pytest.raises(ConfigError, match=r"fsdp is not supported yet.*use ddp"):
        Config.from_dict({**base, "train": {"strategy": "fsdp", "devices": 2}})
    with pytest.raises(ConfigError, match="did you mean 'ddp'"):
        Config.from_dict({**base, "train": {"strategy": "dpp"}})
    with pytest.raises(ConfigError, match=r"train\.num_nodes: expected an integer ≥ 1, got 0"):
        Config.from_dict({**base, "train": {"num_nodes": 0}})


def test_compare_and_cross_validation_refuse_several_processes(tmp_path: Path) -> None:
    from plait.compare.crossval import cross_validate
    from plait.compare.run import compare
    from plait.config import Config
    from plait.errors import ConfigError

    cfg = Config.from_dict(
        {
            "data": {"path": "t.parquet"},
            "task": {"label": "y"},
            "fields": {"x": "embedding"},
            "train": {"devices": 2},
        },
        base_dir=tmp_path,
    )
    with pytest.raises(ConfigError, match=r"plait compare trains many models.*set train\.devices: 1"):
        compare(cfg, ["concat"])
    with pytest.raises(ConfigError, match=r"cross-validation trains many models"):
        cross_validate(cfg, ["concat"], folds=2)


def test_fewer_training_rows_than_processes_is_refused_before_any_process_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import polars as pl

    import plait.training.stages as stages
    from plait.config import Config
    from plait.errors import DataError
    from plait.workflow.train import train

    def no_trainer(*args: object, **kwargs: object) -> None:
        raise AssertionError("a Trainer was built (it would start the other process)")

    monkeypatch.setattr(stages.L, "Trainer", no_trainer)
    table = pl.DataFrame({"x": [[0.1 * i, 0.2] for i in range(10)], "y": ["a", "b"] * 5})
    cfg = Config.from_dict(
        {
            "data": {
                "path": "t.parquet",
                "split": {"kind": "random"},
                "val_fraction": 0.6,
                "test_fraction": 0.3,
            },
            "task": {"label": "y"},
            "fields": {"x": "embedding"},
            "train": {"devices": 3, "epochs": 1, "progress": False, "batch_size": 3},
        },
        base_dir=tmp_path,
    )
    with pytest.raises(DataError, match=r"^2 training rows cannot be shared across 3 processes"):
        train(cfg, table=table)


def test_plait_train_folds_on_several_processes_is_refused_before_any_work(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from plait.cli.main import app

    (tmp_path / "cfg.yaml").write_text(
        "data: {path: t.parquet}\ntask: {label: y}\nfields: {x: embedding}\noutput: out/bundle\n"
    )
    done = CliRunner().invoke(app, ["train", str(tmp_path / "cfg.yaml"), "--folds", "2", "--devices", "2"])
    assert done.exit_code != 0
    assert "cross-validation trains many models" in str(done.exception) + done.output
    assert "drop --devices/--num-nodes" in str(done.exception) + done.output
    assert not (tmp_path / "out").exists()
