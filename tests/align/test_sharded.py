"""Sharded alignment gives the in-memory table and report exactly: on the messy fixture (anchors on
bucket boundaries, windows reaching across them, drops), on the pumps demo streams (all five kinds,
audio clips written across recordings), and on random messy streams (hypothesis)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_align_messy import BASE_MS, write_fixture  # the hand-written messy fixture

from plait.align.align import align
from plait.align.report import GAP_N, GAP_US, percentiles_of_gaps
from plait.align.sharded import align_sharded
from plait.align.spec import parse_streams
from plait.config import load_config
from plait.datasets.pumps_streams import generate_pumps_streams
from plait.errors import AlignmentError, ConfigError, UnknownNameError


def assert_same(root: Path, raw: dict[str, Any], **sharding: Any) -> None:
    """In memory and sharded on the same config: equal tables (rows, order, values) and reports."""
    spec = parse_streams(raw)
    expected = align(spec, root, write=False)
    got = align_sharded(spec, root, **sharding)
    table = pl.read_parquet(got.table_path)
    assert table.schema == expected.table.schema
    assert table.equals(expected.table), (table, expected.table)
    assert got.report.to_json() == expected.report.to_json()
    assert got.report_path.read_text() == _report_text(expected)


def _report_text(result: Any) -> str:
    import json

    return json.dumps(result.report.to_json(), indent=2) + "\n"


@pytest.mark.parametrize(
    ("shards", "bucket_s"),
    [(1, None), (2, None), (3, 1.0), (5, 0.5), (2, 3600.0)],
    ids=["one", "keys", "keys-x-1s-on-anchor-boundaries", "keys-x-half-second", "wide-bucket"],
)
def test_messy_fixture_is_identical_sharded(tmp_path: Path, shards: int, bucket_s: float | None) -> None:
    # anchors at 2.0 and 3.0 s fall exactly on 1 s bucket edges; the 1 s sensor window, the 1 h text
    # window and the unbounded machines record all reach back across them
    assert_same(tmp_path, write_fixture(tmp_path), shards=shards, bucket_s=bucket_s, workers=1)


@pytest.mark.parametrize("policy", ["missing_drop", "drop_empty"])
def test_dropped_anchors_are_counted_once(tmp_path: Path, policy: str) -> None:
    raw = write_fixture(tmp_path)
    if policy == "missing_drop":
        raw["sources"]["machines"]["missing"] = "drop"
        raw["sources"]["log"]["missing"] = "drop"
    else:
        raw["drop_empty"] = True
    assert_same(tmp_path, raw, shards=3, bucket_s=1.0, workers=1)


def test_worker_processes_give_the_same_result(tmp_path: Path) -> None:
    assert_same(tmp_path, write_fixture(tmp_path), shards=3, bucket_s=1.0, engine="local", workers=2)


@pytest.fixture(scope="module")
def pumps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_pumps_streams(tmp_path_factory.mktemp("pumps"), n=60, seed=3, machines=6).root


def test_every_stream_kind_is_identical_sharded(pumps: Path, tmp_path: Path) -> None:
    one, sharded = tmp_path / "one", tmp_path / "sharded"
    shutil.copytree(pumps, one)
    shutil.copytree(pumps, sharded)
    a, b = load_config(one / "plait.yaml"), load_config(sharded / "plait.yaml")
    assert a.streams is not None and b.streams is not None
    expected = align(a.streams, a.base_dir)
    got = align_sharded(b.streams, b.base_dir, shards=4, bucket_s=86_400.0, workers=1)
    assert got.shards > 4  # entity groups × days
    assert pl.read_parquet(got.table_path).equals(expected.table)
    assert got.report.to_json() == expected.report.to_json()
    clips = sorted(p.relative_to(one).as_posix() for p in (one / a.streams.media_dir).rglob("*.wav"))
    assert clips, "the fixture has clips spanning two recordings"
    assert clips == sorted(
        p.relative_to(sharded).as_posix() for p in (sharded / b.streams.media_dir).rglob("*.wav")
    )
    assert all((one / c).read_bytes() == (sharded / c).read_bytes() for c in clips)


def test_progress_is_told_per_part_and_shard(tmp_path: Path) -> None:
    lines: list[str] = []
    align_sharded(
        parse_streams(write_fixture(tmp_path)), tmp_path, shards=2, bucket_s=1.0, workers=1, say=lines.append
    )
    assert any(line.startswith("cleaned vibration, entity group 1/2") for line in lines)
    assert any(line.startswith("read vibration: 49 of 51 rows kept") for line in lines)
    shards = [line for line in lines if line.startswith("shard ")]
    assert shards and shards[-1].startswith(f"shard {len(shards)}/{len(shards)} done")


def test_bad_sharding_options_are_refused(tmp_path: Path) -> None:
    spec = parse_streams(write_fixture(tmp_path))
    with pytest.raises(ConfigError, match="shards: expected a number of entity groups ≥ 1, got 0"):
        align_sharded(spec, tmp_path, shards=0)
    with pytest.raises(ConfigError, match="bucket_s: expected a time bucket in seconds > 0, got -1"):
        align_sharded(spec, tmp_path, shards=2, bucket_s=-1.0)
    with pytest.raises(ConfigError, match="workers: expected a number of processes ≥ 1, got 0"):
        align_sharded(spec, tmp_path, shards=2, workers=0)
    with pytest.raises(UnknownNameError, match="unknown engine 'rey'; did you mean 'ray'"):
        align_sharded(spec, tmp_path, shards=2, engine="rey")


def test_groups_that_read_times_differently_are_refused(tmp_path: Path) -> None:
    """Epoch milliseconds detected per entity group note each group's median magnitude; one pass notes
    the whole column's, which the shards cannot know: the run stops and names time_format."""
    keys = ["a", "b"]  # as many rows each: one entity group each
    pl.DataFrame(
        {
            "t": [1.2e12, 1.2e12 + 500, 1.7e12, 1.7e12 + 500],
            "k": [keys[0], keys[0], keys[1], keys[1]],
            "x": [1.0] * 4,
        }
    ).write_csv(tmp_path / "s.csv")
    raw = {
        "anchors": {"hop_s": 1.0, "key": "k"},
        "sources": {"s": {"kind": "tabular", "path": "s.csv", "key": "k", "time": "t", "columns": ["x"]}},
    }
    align(parse_streams(raw), tmp_path, write=False)  # one pass reads it
    with pytest.raises(AlignmentError, match=r"streams.sources.s.time_format"):
        align_sharded(parse_streams(raw), tmp_path, shards=2, workers=1)


@settings(max_examples=120, deadline=None)
@given(
    st.lists(st.integers(0, 10**9), min_size=1, max_size=40),
    st.lists(st.integers(1, 5), min_size=1, max_size=40),
)
def test_gap_percentiles_from_tallies_are_numpys(gaps: list[int], repeats: list[int]) -> None:
    values = np.repeat(
        np.array(gaps, dtype=np.int64), repeats[: len(gaps)] + [1] * (len(gaps) - len(repeats))
    )
    tallies = (
        pl.DataFrame({GAP_US: values}).group_by(GAP_US).agg(pl.len().cast(pl.Int64).alias(GAP_N)).sort(GAP_US)
    )
    seconds = values.astype(np.float64) / 1e6
    p50, p95 = np.percentile(seconds, [50, 95])
    assert percentiles_of_gaps(tallies) == (
        round(float(p50), 6),
        round(float(p95), 6),
        round(float(seconds.max()), 6),
    )


# ----------------------------------------------------------------------------- random messy streams

ENTITIES = ["a", "b", "c", "d", "e"]


@st.composite
def messy_streams(draw: st.DrawFn) -> dict[str, Any]:
    """Sensor rows at 0.25 s steps with gaps, out-of-order rows, backward jumps, duplicates, NaN
    readings, unreadable times and missing keys; text lines; a register; a keyless site log."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(0, 120))
    t = np.sort(rng.choice(np.arange(0, 60_000, 250), size=n, replace=True))  # ms: duplicates happen
    key = rng.choice(ENTITIES[: draw(st.integers(1, 5))], size=n).astype(object)
    order = np.arange(n)
    swaps = rng.integers(0, max(n, 1), size=draw(st.integers(0, 6)))
    for i in swaps[swaps + 1 < n]:
        order[[i, i + 1]] = order[[i + 1, i]]  # out of order by one row (or a jump when far apart)
    if n > 10 and draw(st.booleans()):
        t[n // 2 :] -= 20_000  # a backward clock jump half way
    x = rng.normal(size=n)
    x[rng.random(n) < 0.05] = np.nan
    times: list[str | None] = [_iso_ms(v) for v in t]
    for i in np.flatnonzero(rng.random(n) < 0.03):
        times[i] = "not a time"
    key[rng.random(n) < 0.03] = None
    sensor = pl.DataFrame(
        {"time": [times[i] for i in order], "k": [key[i] for i in order], "x": x[order]},
        schema={"time": pl.String, "k": pl.String, "x": pl.Float64},
    )
    m = draw(st.integers(0, 15))
    text = pl.DataFrame(
        {
            "time": [_iso_ms(v) for v in np.sort(rng.integers(0, 60_000, size=m))],
            "k": rng.choice(ENTITIES, size=m).tolist(),
            "line": [None if rng.random() < 0.2 else f"line {i}" for i in range(m)],
        },
        schema={"time": pl.String, "k": pl.String, "line": pl.String},
    )
    register = pl.DataFrame(
        {"time": [_iso_ms(v) for v in (0, 0, 30_000)], "k": ["a", "b", "a"], "model": ["A", "B", "C"]}
    )
    site = pl.DataFrame({"time": [_iso_ms(v) for v in (5_000, 35_000)], "note": ["rain", "dry"]})
    if draw(st.booleans()):
        anchors: dict[str, Any] = {"hop_s": draw(st.sampled_from([0.5, 1.0, 2.5])), "key": "k"}
        events = None
    else:
        e = draw(st.integers(1, 25))
        events = pl.DataFrame(
            {
                "time": [_iso_ms(v) for v in rng.integers(-5_000, 70_000, size=e) // 250 * 250],
                "k": rng.choice([*ENTITIES, "zz"], size=e).tolist(),
                "y": rng.choice(["ok", "bad"], size=e).tolist(),
            }
        )
        anchors = {"path": "events.csv", "key": "k", "label": "y"}
    return {
        "tables": {"sensor.csv": sensor, "text.csv": text, "register.csv": register, "site.csv": site}
        | ({"events.csv": events} if events is not None else {}),
        "anchors": anchors,
        "impute": draw(st.sampled_from(["none", "hold", "interpolate"])),
        "tabular_tolerance_s": draw(st.sampled_from([0.0, 10.0])),
        "offsets_s": draw(st.sampled_from([{}, {"a": 0.5, "zz_unknown": 1.0}])),
        "missing": draw(st.sampled_from(["mask", "drop"])),
        "shards": draw(st.integers(1, 4)),
        "bucket_s": draw(st.sampled_from([None, 1.0, 7.5, 30.0])),
    }


def _iso_ms(ms: int) -> str:
    return str(pl.select(pl.from_epoch(pl.lit(BASE_MS + int(ms)), time_unit="ms")).item().isoformat()) + "Z"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messy_streams())
def test_random_messy_streams_are_identical_sharded(case: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name, table in case["tables"].items():
            table.write_csv(root / name)
        raw = {
            "anchors": case["anchors"],
            "timezone": "UTC",
            "sources": {
                "sensor": {
                    "kind": "timeseries",
                    "path": "sensor.csv",
                    "key": "k",
                    "columns": ["x"],
                    "window_s": 1.0,
                    "rate_hz": 4,
                    "tolerance_s": 0.1,
                    "impute": case["impute"],
                    "max_gap_s": 0.75,
                    "offsets_s": case["offsets_s"],
                    "jump_s": 1.0,
                },
                "text": {
                    "kind": "text",
                    "path": "text.csv",
                    "key": "k",
                    "columns": ["line"],
                    "window_s": 5.0,
                },
                "register": {
                    "kind": "tabular",
                    "path": "register.csv",
                    "key": "k",
                    "columns": ["model"],
                    "tolerance_s": case["tabular_tolerance_s"],
                    "missing": case["missing"],
                },
                "site": {"kind": "text", "path": "site.csv", "columns": ["note"], "window_s": 20.0},
            },
        }
        try:
            spec = parse_streams(raw)
            expected = align(spec, root, write=False)
        except (ConfigError, AlignmentError) as exc:  # e.g. no span for sliding anchors: both refuse
            with pytest.raises(type(exc)):
                align_sharded(
                    parse_streams(raw), root, shards=case["shards"], bucket_s=case["bucket_s"], workers=1
                )
            return
        got = align_sharded(spec, root, shards=case["shards"], bucket_s=case["bucket_s"], workers=1)
        assert pl.read_parquet(got.table_path).equals(expected.table)
        assert got.report.to_json() == expected.report.to_json()


def test_key_groups_are_balanced_key_ranges_and_keyless_rows_go_first(tmp_path: Path) -> None:
    from plait.align.shards import plan_key_groups

    rows = {"a": 40, "b": 10, "c": 10, "d": 20, "e": 20}
    keys = [k for k, n in rows.items() for _ in range(n)] + [None]
    pl.DataFrame({"t": list(range(len(keys))), "k": keys}).write_csv(tmp_path / "s.csv")
    raw = {
        "anchors": {"hop_s": 1.0, "key": "k"},
        "sources": {
            "s": {"kind": "text", "path": "s.csv", "key": "k", "time": "t", "columns": ["t"], "window_s": 1}
        },
    }
    groups = plan_key_groups(parse_streams(raw), tmp_path, 3)
    assert groups.bounds == ("b", "e")  # cut once a third of the rows is reached: a | b c d | e
    frame = pl.DataFrame({"k": [*rows, None]}, schema={"k": pl.String})
    assert frame.select(groups.group_of(pl.col("k")))["literal"].to_list() == [0, 1, 1, 1, 2, 0]
    for group in range(groups.count):  # every key in exactly the group that keeps it
        kept = frame.filter(groups.keep(group)(pl.col("k")))["k"].to_list()
        assert kept == [k for k, g in zip([*rows, None], [0, 1, 1, 1, 2, 0], strict=True) if g == group]
