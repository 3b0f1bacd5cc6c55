"""Issue 12 end to end, the way a new user meets it: overlapping windows of recordings grouped by
subject, ID columns, and a per-recording table's copy of the label. `plait init` skips the IDs and
says why and splits by subject; training with the label copy stops with a leak error naming it;
without it the model trains on a split that keeps every subject on one side, and the bundle says so."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import yaml
from typer.testing import CliRunner

from plait.cli.main import app

runner = CliRunner()


def windows(seed: int = 0) -> pl.DataFrame:
    """8 subjects × 3 recordings × 8 overlapping 2-s windows (1-s hop); one activity per recording."""
    rng = np.random.default_rng(seed)
    rows = []
    activities = ("walk", "run", "sit")
    for s in range(8):
        for r in range(3):
            activity = activities[(s + r) % 3]
            level = activities.index(activity)
            signal = level + rng.normal(scale=0.7, size=9 + 1)  # shared seconds between windows
            for w in range(8):
                rows.append(
                    {
                        "row_id": len(rows),
                        "subject": f"S{s:02d}",
                        "recording": f"S{s:02d}-R{r}",
                        "start_s": float(w),
                        "mean_acc": float(signal[w : w + 2].mean()),
                        "std_acc": float(abs(rng.normal(0.3 + 0.2 * level, 0.1))),
                        "activity_code": 100 + 10 * level,  # a per-recording table's copy of the label
                        "activity": activity,
                    }
                )
    return pl.DataFrame(rows)


def test_init_skips_ids_the_label_copy_stops_training_and_the_split_keeps_subjects_apart(
    tmp_path: Path,
) -> None:
    table = tmp_path / "windows.csv"
    windows().write_csv(table)
    config = tmp_path / "plait.yaml"
    result = runner.invoke(app, ["init", str(table), "--label", "activity", "-o", str(config)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    for column in ("row_id", "subject", "recording"):
        assert f"{column}: skipped" in said, column
    raw = yaml.safe_load(config.read_text())
    assert raw["data"]["split"] == {"group": "subject"}
    features = raw["fields"]["tabular"]["numeric"] + raw["fields"]["tabular"].get("categorical", [])
    assert not {"row_id", "subject", "recording"} & set(features)
    assert "activity_code" in features  # init cannot know it copies the label: the leak check does

    raw["train"] = {"epochs": 2, "batch_size": 32, "seed": 0}
    config.write_text(yaml.safe_dump(raw))
    leaked = runner.invoke(app, ["train", str(config), "--no-progress", "--no-report"])
    assert leaked.exit_code != 0
    message = " ".join(str(leaked.exception).split())
    assert "leak check: 'activity_code' (fields.tabular)" in message
    assert (
        "one value per class and one class per value" in message and "--allow-leak activity_code" in message
    )

    accepted = runner.invoke(
        app,
        [
            "train",
            str(config),
            "--no-progress",
            "--no-report",
            "--allow-leak",
            "activity_code",
            "-o",
            str(tmp_path / "kept"),
        ],
    )
    assert accepted.exit_code == 0, accepted.output
    assert json.loads((tmp_path / "kept" / "metrics.json").read_text())["leak_check"]["allowed"] == [
        "activity_code"
    ]

    raw["fields"]["tabular"]["numeric"].remove("activity_code")
    config.write_text(yaml.safe_dump(raw))
    trained = runner.invoke(app, ["train", str(config), "--no-progress", "--no-report"])
    assert trained.exit_code == 0, trained.output
    assert "split by group 'subject'" in " ".join(trained.output.split())
    meta = json.loads((tmp_path / "bundle" / "plait.json").read_text())
    assert meta["split"]["kind"] == "group" and meta["split"]["column"] == "subject"
    assert sum(meta["split"]["groups"].values()) == 8  # every subject in exactly one split
    assert json.loads((tmp_path / "bundle" / "metrics.json").read_text())["leak_check"]["findings"] == []
