"""`plait align` on a hand-written messy fixture: every count in the report is checked exactly.

vibration (10 Hz, epoch ms, m1 and m2):
  m1: 0.0 … 2.9 s; row 1.2 s written after 1.4 s (1 unsorted); 1.5 s twice (1 duplicate);
      ax at 2.5 s is NaN (1 non-finite reading → a gap that interpolation bridges)
  m2: 10.0 … 10.9 s, then the clock jumps back to 5.0 … 5.9 s (1 jump, 2 segments)
anchors (events): m1@2.0 observed · m1@3.0 imputed (1 of 10 points) · m2@11.0 observed ·
  m2@7.0 absent (no data in [6, 7)) · m3@5.0 absent (no stream knows m3)
log: m1 lines at 1.5 s and 2.5 s → m1@2.0 has 1 line, m1@3.0 has 2; others absent
machines: m1 model A from 0 s, model B from 2.5 s; m2 model C from 0 s → only m3 absent
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from plait.align.align import align
from plait.align.spec import parse_streams
from plait.cli.main import app

BASE_MS = 1_700_000_000_000


def iso(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(BASE_MS / 1000 + seconds, tz=UTC).isoformat().replace("+00:00", "Z")


def write_fixture(root: Path) -> dict:
    rows = []
    m1 = [round(0.1 * i, 1) for i in range(30)]
    order = [t for t in m1 if t != 1.2]
    order.insert(order.index(1.4) + 1, 1.2)  # 1.2 arrives after 1.4
    order.insert(order.index(1.5) + 1, 1.5)  # an exact duplicate
    for t in order:
        ax = math.nan if t == 2.5 else t
        rows.append({"time": BASE_MS + round(t * 1000), "machine": "m1", "ax": ax, "ay": -t})
    for t in [10.0 + 0.1 * i for i in range(10)] + [5.0 + 0.1 * i for i in range(10)]:
        rows.append({"time": BASE_MS + round(t * 1000), "machine": "m2", "ax": t, "ay": -t})
    pl.DataFrame(rows).write_csv(root / "vibration.csv")
    pl.DataFrame(
        {
            "time": [iso(2.0), iso(3.0), iso(11.0), iso(7.0), iso(5.0)],
            "machine": ["m1", "m1", "m2", "m2", "m3"],
            "fault": ["a", "b", "a", "b", "a"],
        }
    ).write_csv(root / "events.csv")
    pl.DataFrame(
        {"time": [iso(1.5), iso(2.5)], "machine": ["m1", "m1"], "text": ["noise at bearing", "grinding now"]}
    ).write_csv(root / "log.csv")
    pl.DataFrame(
        {"time": [iso(0.0), iso(2.5), iso(0.0)], "machine": ["m1", "m1", "m2"], "model": ["A", "B", "C"]}
    ).write_csv(root / "machines.csv")
    return {
        "anchors": {"path": "events.csv", "key": "machine", "label": "fault"},
        "timezone": "UTC",
        "sources": {
            "vibration": {
                "kind": "timeseries",
                "path": "vibration.csv",
                "key": "machine",
                "columns": ["ax", "ay"],
                "time_format": "epoch_ms",
                "window_s": 1.0,
                "rate_hz": 10,
                "tolerance_s": 0.01,
                "impute": "interpolate",
                "max_gap_s": 0.25,
                "duplicates": "first",
                "jump_s": 1.0,
            },
            "log": {
                "kind": "text",
                "path": "log.csv",
                "key": "machine",
                "columns": ["text"],
                "window_s": 3600,
            },
            "machines": {
                "kind": "tabular",
                "path": "machines.csv",
                "key": "machine",
                "columns": ["model"],
                "tolerance_s": 0,
            },
        },
    }


@pytest.fixture()
def messy(tmp_path: Path) -> tuple[Path, dict]:
    return tmp_path, write_fixture(tmp_path)


def test_report_counts_are_exact(messy):
    root, raw = messy
    result = align(parse_streams(raw), root)
    report = {s.name: s for s in result.report.streams}
    vib = report["vibration"]
    assert (
        vib.load.rows_read,
        vib.load.unsorted,
        vib.load.duplicates,
        vib.load.jumps,
        vib.load.non_finite,
    ) == (
        51,
        1,
        1,
        1,
        1,
    )
    assert (vib.observed, vib.imputed, vib.absent) == (2, 1, 2)
    assert (report["log"].observed, report["log"].absent) == (2, 3)
    assert (report["machines"].observed, report["machines"].absent) == (4, 1)
    assert result.report.anchors == 5 and result.report.rows == 5 and not result.report.dropped

    table = result.table
    assert table["time"].is_sorted() and table["anchor"].to_list() == [0, 1, 2, 3, 4]
    by_time = {
        (m, s): i for i, (m, s) in enumerate(zip(table["machine"], table["vibration__status"], strict=True))
    }
    assert ("m3", "absent") in by_time
    m1 = table.filter(pl.col("machine") == "m1").sort("time")
    assert m1["vibration__status"].to_list() == ["observed", "imputed"]
    assert m1["vibration__imputed_frac"].to_list() == pytest.approx([0.0, 0.1])
    assert m1["log__lines"].to_list() == [1, 2]
    assert m1["log"].to_list() == ["noise at bearing", "noise at bearing\ngrinding now"]
    assert m1["machines_model"].to_list() == ["A", "B"]
    series = m1["vibration"].to_list()[1]  # [T=10, C=2] for [2.0, 3.0)
    assert len(series) == 10 and series[5][0] == pytest.approx(2.5)  # interpolated between 2.4 and 2.6
    assert series[4][0] == pytest.approx(2.4) and series[4][1] == pytest.approx(-2.4)
    absent = table.filter(pl.col("vibration__status") == "absent")
    assert absent["vibration"].null_count() == absent.height  # nothing invented


def test_same_input_gives_identical_bytes(messy):
    root, raw = messy
    outputs = []
    for _ in range(2):
        buffer = io.BytesIO()
        align(parse_streams(raw), root, write=False).table.write_ipc(buffer)
        outputs.append(buffer.getvalue())
    assert outputs[0] == outputs[1]


def test_missing_drop_removes_anchors_and_says_why(messy):
    root, raw = messy
    raw["sources"]["machines"]["missing"] = "drop"
    result = align(parse_streams(raw), root, write=False)
    assert result.report.rows == 4 and result.report.dropped == {"no machines data (missing: drop)": 1}


def test_drop_empty_removes_only_anchors_without_any_data(messy):
    root, raw = messy
    raw["drop_empty"] = True
    result = align(parse_streams(raw), root, write=False)
    # m3@5.0 has nothing in any stream; m2@7.0 still has its machines record
    assert result.report.rows == 4 and result.report.dropped == {"no data in any stream (drop_empty)": 1}
    assert "m3" not in result.table["machine"].to_list()


def test_cli_estimates_an_offset_and_writes_it(tmp_path: Path):
    import numpy as np
    import yaml

    rng = np.random.default_rng(0)
    t = np.arange(0, 120, 0.01)  # 100 Hz for two minutes
    bursts = rng.uniform(5, 115, size=25)
    energy = sum(np.exp(-(((t - b) / 0.05) ** 2)) for b in bursts)
    a = energy * rng.normal(1, 0.1, size=t.size) + rng.normal(0, 0.02, size=t.size)
    b = energy * rng.normal(1, 0.1, size=t.size) + rng.normal(0, 0.02, size=t.size)
    shift_ms = 1370  # stream b's clock runs 1.37 s behind: its true time is its own + 1.37 s
    pl.DataFrame({"time": BASE_MS + np.round(t * 1000).astype(np.int64), "x": a}).write_csv(
        tmp_path / "a.csv"
    )
    pl.DataFrame({"time": BASE_MS + np.round(t * 1000).astype(np.int64) - shift_ms, "x": b}).write_csv(
        tmp_path / "b.csv"
    )
    stream = {
        "kind": "timeseries",
        "time_format": "epoch_ms",
        "columns": ["x"],
        "window_s": 1.0,
        "rate_hz": 50,
    }
    raw = {
        "anchors": {"hop_s": 10.0},
        "timezone": "UTC",
        "sources": {"a": {**stream, "path": "a.csv"}, "b": {**stream, "path": "b.csv"}},
    }
    config = tmp_path / "plait.yaml"
    config.write_text(yaml.safe_dump({"task": {"label": "y"}, "streams": raw}))
    result = CliRunner().invoke(
        app, ["align", str(config), "--estimate-offset", "a", "b", "--write"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "+1.37" in result.output and "yes" in result.output
    written = yaml.safe_load(config.read_text())["streams"]["sources"]["b"]["offset_s"]
    assert written == pytest.approx(1.37, abs=0.02)


def test_cli_writes_table_and_report(messy):
    import yaml

    root, raw = messy
    config = root / "plait.yaml"
    config.write_text(yaml.safe_dump({"task": {"label": "fault"}, "streams": raw}))
    result = CliRunner().invoke(app, ["align", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert (root / "samples.parquet").is_file() and (root / "samples.report.json").is_file()
    assert "vibration" in result.output and "1 clock jumps" in result.output
    assert pl.read_parquet(root / "samples.parquet").height == 5
