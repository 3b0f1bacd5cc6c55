"""The leak check: a column that copies the label, predicts it alone, or names the group stops
training (unless accepted, and then recorded); an easy task or a feature that merely varies by
group does not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from plait.config import Config
from plait.data.leaks import LeakError, check_leaks
from plait.data.split_plan import make_split, plan_split
from plait.data.table import prepare_labels
from plait.errors import ConfigError
from plait.workflow.train import train


def windows_table(seed: int = 0) -> pl.DataFrame:
    """6 subjects × 3 recordings × 10 overlapping windows; one activity per recording. `x` is an
    honest, noisy feature; `activity_code` a per-recording table's copy of the label."""
    rng = np.random.default_rng(seed)
    rows = []
    activities = ["walk", "run", "sit"]
    for s in range(6):
        for r in range(3):
            activity = activities[(s + r) % 3]
            level = activities.index(activity)
            for w in range(10):
                rows.append(
                    {
                        "row": len(rows),
                        "subject": f"s{s}",
                        "recording": f"s{s}r{r}",
                        "window": w,
                        "x": level + rng.normal(scale=0.8),
                        "vec": list(rng.normal(size=4) + level),
                        "activity_code": {"walk": 10, "run": 20, "sit": 30}[activity],
                        "activity": activity,
                    }
                )
    return pl.DataFrame(rows)


def config(numeric: list[str], split: object = None, **data: object) -> Config:
    section: dict[str, object] = dict(data)
    if split is not None:
        section["split"] = split
    return Config.from_dict(
        {
            "data": section,
            "task": {"label": "activity"},
            "fields": {"vec": "embedding", "specs": {"kind": "tabular", "numeric": numeric}},
            "model": {"dim": 8, "hidden": 16},
            "train": {"epochs": 1, "progress": False},
        }
    )


def report(
    df: pl.DataFrame, columns: dict[str, list[str]], *, group: str | None = None, split: object = None
):
    cfg = config(["x"], split)
    labels = prepare_labels(df, "activity", "classification", "t")
    return check_leaks(df, labels, make_split(plan_split(cfg), df, labels, "t"), columns, group=group)


def test_training_with_a_label_copy_stops_and_names_the_evidence() -> None:
    df = windows_table()
    with pytest.raises(LeakError) as err:
        train(config(["x", "activity_code"], {"group": "subject"}), table=df)
    message = str(err.value)
    assert "'activity_code' (fields.specs)" in message
    assert "one value per class and one class per value" in message and "10 ↔ walk" in message
    assert "data.allow_leaks: [activity_code]" in message and "--allow-leak activity_code" in message


def test_an_accepted_leak_trains_and_is_recorded_in_the_bundle(tmp_path: Path) -> None:
    cfg = config(["x", "activity_code"], {"group": "subject"}, allow_leaks=["activity_code"])
    messages: list[str] = []
    result = train(cfg, table=windows_table(), out=tmp_path / "b", say=messages.append)
    assert any("accepted: data.allow_leaks" in m and "activity_code" in m for m in messages)
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert metrics["leak_check"]["allowed"] == ["activity_code"]
    assert metrics["leak_check"]["findings"][0]["kind"] == "label_copy"
    assert result.trained.split["kind"] == "group"
    with pytest.raises(ConfigError, match=r"allow_leaks: 'activty_code'.*did you mean 'activity_code'"):
        train(config(["x", "activity_code"], allow_leaks=["activty_code"]), table=windows_table())


def test_a_noisy_numeric_copy_predicts_the_label_alone() -> None:
    df = windows_table().with_columns(
        (pl.col("activity_code") + pl.Series(np.random.default_rng(1).normal(scale=0.5, size=180))).alias(
            "noisy"
        )
    )
    found = report(df, {"specs": ["x", "noisy"]}).findings
    assert [(f.column, f.kind, f.stops) for f in found] == [("noisy", "predicts_label", True)]
    assert "accuracy 1.000" in found[0].evidence and "best other column" in found[0].evidence


def test_honest_features_and_identifiers_pass() -> None:
    df = windows_table()
    grouped = report(df, {"specs": ["x", "row", "window"]}, group="subject", split={"group": "subject"})
    assert grouped.findings == () and grouped.scores["row"] < 0.6  # a row number names no new subject
    # Split at random, the same row number finds its recording's neighbours: the leak a group split stops.
    assert report(df, {"specs": ["row"]}).scores["row"] > 0.8


def test_several_perfect_columns_warn_as_an_easy_task_instead_of_stopping() -> None:
    df = windows_table().with_columns(
        (pl.col("activity_code") * 2.0 + 0.01).alias("a"), (pl.col("activity_code") + 0.5).alias("b")
    )
    labels = prepare_labels(df, "activity", "classification", "t")
    split = make_split(plan_split(config(["x"])), df, labels, "t")
    # copies are copies, whatever else is there
    assert {f.kind for f in check_leaks(df, labels, split, {"s": ["a", "b"]}).findings} == {"label_copy"}
    rng = np.random.default_rng(2)
    easy = df.with_columns(
        (pl.col("activity_code") + pl.Series(rng.normal(scale=0.3, size=180))).alias("e1"),
        (pl.col("activity_code") + pl.Series(rng.normal(scale=0.3, size=180))).alias("e2"),
    )
    found = check_leaks(easy, labels, split, {"s": ["e1", "e2"]}).findings
    assert {(f.kind, f.stops) for f in found} == {("easy_task", False)}


def test_a_column_naming_the_group_stops_a_random_split_and_warns_under_a_group_split() -> None:
    df = windows_table().with_columns(pl.col("recording").str.replace("s", "subject-").alias("rec_name"))
    # one activity per recording: its name looks the label up when recordings straddle the split
    random = report(df, {"specs": ["rec_name"]}, group="recording")
    assert [(f.kind, f.stops) for f in random.findings if f.kind == "identifies_group"] == [
        ("identifies_group", True)
    ]
    grouped = report(df, {"specs": ["rec_name"]}, group="recording", split={"group": "recording"})
    assert [(f.kind, f.stops) for f in grouped.findings] == [("identifies_group", False)]


def test_regression_copy() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=100)
    df = pl.DataFrame({"y": y, "scaled": 3 * y + 1, "x": rng.normal(size=100)})
    labels = prepare_labels(df, "y", "regression", "t")
    cfg = Config.from_dict({"task": {"label": "y"}, "fields": {"t": {"kind": "tabular", "numeric": ["x"]}}})
    found = check_leaks(
        df, labels, make_split(plan_split(cfg), df, labels, "t"), {"t": ["x", "scaled"]}
    ).findings
    assert [(f.column, f.kind) for f in found] == [("scaled", "label_copy")]
    assert "linear function of the label" in found[0].evidence


def test_a_copy_with_gaps_is_still_a_copy() -> None:
    """Regression: a per-entity table joined with some entities missing left gaps, and the check
    counted every gap as a miss, so a copy of the label passed."""
    rng = np.random.default_rng(3)
    df = windows_table().with_columns(
        pl.when(pl.Series(rng.random(180) < 0.1)).then(None).otherwise(pl.col("activity_code")).alias("gappy")
    )
    found = report(df, {"specs": ["x", "gappy"]}).findings
    assert [(f.column, f.kind) for f in found] == [("gappy", "label_copy")]
    assert "of training rows that have a value" in found[0].evidence
    y = rng.normal(size=400)
    noisy = np.where(rng.random(400) < 0.05, np.nan, y + rng.normal(scale=0.01, size=400))
    reg = pl.DataFrame({"y": y, "copy": noisy, "x": rng.normal(size=400)})
    labels = prepare_labels(reg, "y", "regression", "t")
    cfg = Config.from_dict({"task": {"label": "y"}, "fields": {"t": {"kind": "tabular", "numeric": ["x"]}}})
    split = make_split(plan_split(cfg), reg, labels, "t")
    assert [f.column for f in check_leaks(reg, labels, split, {"t": ["x", "copy"]}).blocking] == ["copy"]
