"""Sliding-window anchors labelled per entity from a labels table (`labels:`): every anchor gets
its entity's label; a label that cannot be used is an error or a note, never silence."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from plait.align.align import align
from plait.align.anchors import build_anchors
from plait.align.spec import AnchorSpec, parse_streams, streams_to_dict
from plait.config import Config
from plait.errors import ConfigError, DataError

T0 = int(datetime(2024, 3, 1, 10, tzinfo=UTC).timestamp()) * 1_000_000
S = 1_000_000
SPANS = {"r1": (T0, T0 + S), "r2": (T0, T0 + 2 * S), "r3": (T0, T0)}
STREAM = {
    "kind": "timeseries",
    "path": "imu.csv",
    "key": "recording",
    "columns": ["ax"],
    "time_format": "epoch_ms",
    "window_s": 1.0,
    "rate_hz": 10,
}


def labels_csv(tmp_path: Path, text: str, name: str = "recordings.csv") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def sliding(**options: Any) -> AnchorSpec:
    base: dict[str, Any] = {"hop_s": 1.0, "key": "recording", "label": "activity", "labels": "recordings.csv"}
    return AnchorSpec(**{**base, **options})


def test_every_anchor_gets_its_entitys_label(tmp_path: Path) -> None:
    labels_csv(tmp_path, "recording,activity,notes\nr2,run,x\nr1,walk,\nr3,sit,\nr2,run,dup is fine\n")
    out = build_anchors(sliding(), tmp_path, SPANS)
    assert out.frame.columns == ["anchor", "key", "t_us", "label"]
    assert out.frame.select("key", "label").rows() == [
        ("r1", "walk"),
        ("r2", "run"),
        ("r3", "sit"),
        ("r1", "walk"),
        ("r2", "run"),
        ("r2", "run"),
    ]
    assert out.frame["t_us"].to_list() == [T0, T0, T0, T0 + S, T0 + S, T0 + 2 * S]
    assert out.notes == (
        "sliding anchors every 1 s: 6 anchors over 3 entities",
        "labels from recordings.csv: 3 entities, 3 classes; 0 of 6 anchors without a label",
    )


def test_keys_compare_as_strings_and_labels_keep_their_type(tmp_path: Path) -> None:
    pl.DataFrame({"subject": [7, 8], "y": [1, 0]}).write_parquet(tmp_path / "subjects.parquet")
    spec = sliding(key="subject", label="y", labels="subjects.parquet")
    out = build_anchors(spec, tmp_path, {"7": (T0, T0), "8": (T0, T0)})
    assert out.frame["label"].dtype == pl.Int64
    assert out.frame.select("key", "label").rows() == [("7", 1), ("8", 0)]
    labels_csv(tmp_path, "subject,y\n007,a\n7,b\n")  # CSV keys are read as text: '007' stays '007'
    spec = sliding(key="subject", label="y")
    assert build_anchors(spec, tmp_path, {"007": (T0, T0)}).frame["label"].to_list() == ["a"]


def test_the_labels_key_column_may_be_named_differently(tmp_path: Path) -> None:
    labels_csv(tmp_path, "rec_id,activity\nr1,walk\nr2,run\nr3,sit\n")
    out = build_anchors(sliding(labels_key="rec_id"), tmp_path, SPANS)
    assert out.frame["label"].to_list() == ["walk", "run", "sit", "walk", "run", "run"]
    with pytest.raises(ConfigError, match=r"streams\.anchors\.key: .*'recording' not found.*rec_id"):
        build_anchors(sliding(), tmp_path, SPANS)


def test_unlabelled_entities_keep_a_null_label_and_are_noted(tmp_path: Path) -> None:
    labels_csv(tmp_path, "recording,activity\nr1,walk\nr2,  \nr9,sit\nr8,sit\n,run\n")
    out = build_anchors(sliding(), tmp_path, SPANS)
    assert out.frame.height == 6  # nothing dropped
    assert out.frame.select("key", "label").rows() == [
        ("r1", "walk"),
        ("r2", None),
        ("r3", None),
        ("r1", "walk"),
        ("r2", None),
        ("r2", None),
    ]
    assert out.notes[1:] == (
        "labels from recordings.csv: 3 entities, 2 classes; 4 of 6 anchors without a label",
        "recordings.csv: no 'recording' in 1 row (rows 4, 0-based); ignored",
        "4 anchors of 2 entities ('r2', 'r3') have no 'activity' in recordings.csv (no row, or an empty "
        "cell): kept with a null label; add their rows, or drop those samples before training",
        "2 entities in recordings.csv ('r9', 'r8') have no anchors: no stream has data for them "
        "(or the span ends before the start)",
    )


def test_an_entity_with_two_labels_is_an_error_naming_them(tmp_path: Path) -> None:
    labels_csv(tmp_path, "recording,activity\nr1,walk\nr2,run\nr1,walk\nr1,sit\nr2,\n")
    with pytest.raises(
        DataError,
        match=r"anchor labels \(recordings\.csv\): 1 entity with more than one 'activity' "
        r"\('r1': 'walk', 'sit' \(rows 0, 2, 3\); rows 0-based\); give each recording one label",
    ):
        build_anchors(sliding(), tmp_path, SPANS)


def test_labels_table_errors(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"anchor labels: 'recordings.csv' not found.*streams\.anchors\.labels"
    ):
        build_anchors(sliding(), tmp_path, SPANS)
    labels_csv(tmp_path, "recording,activty\nr1,walk\n")
    with pytest.raises(
        ConfigError,
        match=r"streams\.anchors\.label: anchor labels \(recordings\.csv\): column 'activity' not found"
        r".*did you mean 'activty'\? columns there: recording, activty",
    ):
        build_anchors(sliding(), tmp_path, SPANS)
    labels_csv(tmp_path, "recordings,activity\nr1,walk\n")
    with pytest.raises(ConfigError, match=r"streams\.anchors\.key: .*did you mean 'recordings'"):
        build_anchors(sliding(), tmp_path, SPANS)


@pytest.mark.parametrize(
    ("anchors", "message"),
    [
        (
            {"hop_s": 1.0, "key": "recording", "label": "activity"},
            r"streams\.anchors\.label: sliding anchors \(hop_s\) have no label of their own, so label: "
            r"'activity' would be ignored; add labels: TABLE .*a column 'recording' like the anchors' key"
            r".*or use labelled events",
        ),
        (
            {"path": "events.csv", "key": "recording", "label": "activity", "labels": "recordings.csv"},
            r"streams\.anchors\.labels: events \(path: events\.csv\) carry their label in their own table",
        ),
        (
            {"path": "events.csv", "label": "activity", "labels_key": "rec"},
            r"streams\.anchors\.labels_key: events",
        ),
        (
            {"hop_s": 1.0, "label": "activity", "labels": "recordings.csv"},
            r"streams\.anchors\.key: labels: recordings\.csv gives one label per entity, so sliding "
            r"anchors need key:",
        ),
        (
            {"hop_s": 1.0, "key": "recording", "labels": "recordings.csv"},
            r"streams\.anchors\.label: labels: recordings\.csv gives each entity a label, but no column",
        ),
        (
            {"hop_s": 1.0, "key": "recording", "labels_key": "rec"},
            r"streams\.anchors\.labels_key: .*no labels: TABLE is given",
        ),
    ],
)
def test_label_options_that_do_not_fit_are_config_errors(anchors: dict[str, Any], message: str) -> None:
    raw = {"anchors": anchors, "sources": {"imu": STREAM}}
    with pytest.raises(ConfigError, match=message):
        parse_streams(raw)
    with pytest.raises(ConfigError, match=message):  # the same rule for a record built in code
        build_anchors(AnchorSpec(**anchors), Path("."), SPANS)


def test_sliding_labels_parse_through_config_and_round_trip(tmp_path: Path) -> None:
    anchors = {"hop_s": 1.0, "key": "recording", "label": "activity", "labels": "recordings.csv"}
    raw = {"task": {"label": "activity"}, "streams": {"anchors": anchors, "sources": {"imu": STREAM}}}
    config = Config.from_dict(raw, base_dir=tmp_path)
    assert config.streams is not None
    assert config.streams.anchors == AnchorSpec(**anchors)  # type: ignore[arg-type]
    assert streams_to_dict(config.streams)["anchors"]["labels"] == "recordings.csv"
    assert Config.from_dict(config.to_dict(), base_dir=tmp_path).streams == config.streams
    renamed = {**anchors, "labels_key": "rec_id"}
    spec = parse_streams({"anchors": renamed, "sources": {"imu": STREAM}})
    assert parse_streams(streams_to_dict(spec)) == spec


def test_align_fills_the_label_column_of_the_sample_table(tmp_path: Path) -> None:
    base_ms = T0 // 1000
    rows = [(rec, base_ms + 100 * i, float(i)) for rec in ("r1", "r2", "r3") for i in range(31)]
    pl.DataFrame(rows, schema=["recording", "time", "ax"], orient="row").write_csv(tmp_path / "imu.csv")
    labels_csv(tmp_path, "recording,activity\nr1,walk\nr2,run\nr4,sit\n")
    raw = {
        "anchors": {"hop_s": 1.0, "key": "recording", "label": "activity", "labels": "recordings.csv"},
        "timezone": "UTC",
        "sources": {"imu": STREAM},
    }
    result = align(parse_streams(raw), tmp_path)
    table = result.table
    assert table.columns[:4] == ["anchor", "recording", "time", "activity"]
    # anchors at 1, 2, 3 s per recording (the first window_s of data is the look-back)
    assert table.height == 9 and table["imu__status"].to_list() == ["observed"] * 9
    by_entity = dict(table.group_by("recording").agg(pl.col("activity").unique()).iter_rows())
    assert by_entity == {"r1": ["walk"], "r2": ["run"], "r3": [None]}
    notes = result.report.notes
    assert "labels from recordings.csv: 3 entities, 3 classes; 3 of 9 anchors without a label" in notes
    assert any(n.startswith("3 anchors of 1 entity ('r3') have no 'activity'") for n in notes)
    assert any(n.startswith("1 entity in recordings.csv ('r4') has no anchors") for n in notes)
    assert result.table_path is not None and result.report_path is not None
    assert pl.read_parquet(result.table_path)["activity"].to_list() == table["activity"].to_list()
    assert json.loads(result.report_path.read_text())["notes"] == list(notes)
