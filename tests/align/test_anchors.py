from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from plait.align.anchors import build_anchors
from plait.align.spec import AnchorSpec
from plait.errors import ConfigError, DataError

T0 = int(datetime(2024, 3, 1, 10, tzinfo=UTC).timestamp()) * 1_000_000
S = 1_000_000


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "events.csv").write_text(text)
    return tmp_path


def test_events_are_sorted_by_time_then_key_and_numbered(tmp_path: Path) -> None:
    write(
        tmp_path,
        "time,machine,fault\n"
        "2024-03-01T10:00:05Z,m2,1\n"
        "2024-03-01T10:00:01Z,m1,0\n"
        "2024-03-01T10:00:05Z,m1,\n"
        "2024-03-01T10:00:05Z,m1,1\n",
    )
    out = build_anchors(AnchorSpec(path="events.csv", key="machine", label="fault"), tmp_path, None)
    frame = out.frame
    assert frame.columns == ["anchor", "key", "t_us", "label"]
    assert frame.dtypes == [pl.UInt32, pl.String, pl.Int64, pl.Int64]
    assert frame.rows() == [
        (0, "m1", T0 + 1 * S, 0),
        (1, "m1", T0 + 5 * S, None),  # source row 2 before row 3: ties keep source order
        (2, "m1", T0 + 5 * S, 1),
        (3, "m2", T0 + 5 * S, 1),
    ]
    assert out.notes == (
        "events sharing their key and time with another event (all kept): 2 events (rows 2, 3, 0-based)",
        "events without a label: 1 event (rows 2, 0-based)",
    )


def test_events_without_key_get_the_empty_key_and_epoch_detection_is_noted(tmp_path: Path) -> None:
    write(tmp_path, "ts\n1709287202000\n1709287200000\n")
    out = build_anchors(AnchorSpec(path="events.csv", time="ts"), tmp_path, None)
    assert out.frame.rows() == [(0, "", T0), (1, "", T0 + 2 * S)]
    assert out.notes[0].startswith("times read as epoch milliseconds")


def test_unreadable_event_times_and_missing_keys_are_errors_naming_rows(tmp_path: Path) -> None:
    write(tmp_path, "time,machine\n2024-03-01T10:00:00Z,m1\nsoon,m1\n2024-03-01T10:00:09Z,m2\nlater,m2\n")
    with pytest.raises(
        DataError, match=r"unreadable time in 2 events \(rows 1, 3, 0-based\) \(e\.g\. 'soon'"
    ):
        build_anchors(AnchorSpec(path="events.csv", key="machine"), tmp_path, None)
    write(tmp_path, "time,machine\n2024-03-01T10:00:00Z,m1\n2024-03-01T10:00:01Z,\n")
    with pytest.raises(DataError, match=r"no entity key in 1 event \(rows 1, 0-based\)"):
        build_anchors(AnchorSpec(path="events.csv", key="machine"), tmp_path, None)


def test_event_table_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"anchors: 'events.csv' not found"):
        build_anchors(AnchorSpec(path="events.csv"), tmp_path, None)
    write(tmp_path, "time,machine\n")
    with pytest.raises(DataError, match="no rows"):
        build_anchors(AnchorSpec(path="events.csv"), tmp_path, None)
    write(tmp_path, "time,machine\n2024-03-01T10:00:00Z,m1\n")
    with pytest.raises(ConfigError, match=r"streams\.anchors\.label: .*'fault' not found"):
        build_anchors(AnchorSpec(path="events.csv", label="fault"), tmp_path, None)
    with pytest.raises(ConfigError, match="did you mean 'machine'"):
        build_anchors(AnchorSpec(path="events.csv", key="machines"), tmp_path, None)


def test_sliding_anchors_cover_each_entity_span_inclusive(tmp_path: Path) -> None:
    spans = {"m2": (T0, T0 + 1 * S), "m1": (T0 + S // 2, T0 + 2 * S), "m3": (T0 + 5 * S, T0 + 4 * S)}
    out = build_anchors(AnchorSpec(hop_s=0.5), tmp_path, spans)
    assert out.frame.columns == ["anchor", "key", "t_us"]
    assert out.frame.rows() == [
        (0, "m2", T0),
        (1, "m1", T0 + S // 2),
        (2, "m2", T0 + S // 2),
        (3, "m1", T0 + S),
        (4, "m2", T0 + S),
        (5, "m1", T0 + 3 * S // 2),
        (6, "m1", T0 + 2 * S),
    ]
    assert out.notes == (
        "sliding anchors every 0.5 s: 7 anchors over 3 entities",
        "no anchors for 'm3': its span ends before the start",
    )


def test_sliding_anchors_with_start_and_end(tmp_path: Path) -> None:
    spec = AnchorSpec(hop_s=0.75, start="2024-03-01T10:00:00Z", end="2024-03-01T10:00:02Z")
    alone = build_anchors(spec, tmp_path, None)
    assert alone.frame["key"].to_list() == ["", "", ""]
    assert alone.frame["t_us"].to_list() == [T0, T0 + 750_000, T0 + 1_500_000]
    per_entity = build_anchors(spec, tmp_path, {"a": (0, 1), "b": (0, 1)})
    assert per_entity.frame.height == 6 and per_entity.frame["anchor"].to_list() == list(range(6))
    local = AnchorSpec(
        hop_s=1.0, start="2024-03-01T11:00:00", end="2024-03-01T11:00:01", timezone="Europe/Berlin"
    )
    assert build_anchors(local, tmp_path, None).frame["t_us"].to_list() == [T0, T0 + S]


def test_sliding_anchor_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="span or both start and end"):
        build_anchors(AnchorSpec(hop_s=1.0), tmp_path, None)
    with pytest.raises(ConfigError, match=r"streams\.anchors\.start: times have no time zone"):
        build_anchors(AnchorSpec(hop_s=1.0, start="2024-03-01T10:00:00"), tmp_path, {"a": (T0, T0 + S)})
    with pytest.raises(ConfigError, match=r"streams\.anchors\.end: 'tomorrow' is not an ISO-8601 time"):
        build_anchors(AnchorSpec(hop_s=1.0, end="tomorrow"), tmp_path, {"a": (T0, T0 + S)})
    with pytest.raises(ConfigError, match="hop_s > 0"):
        build_anchors(AnchorSpec(hop_s=1e-9), tmp_path, {"a": (T0, T0 + S)})
