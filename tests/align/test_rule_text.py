from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from plait.align.frames import RuleContext
from plait.align.rules.text import align_text
from plait.align.spec import StreamSpec

CTX = RuleContext(base_dir=Path("."), media_dir=Path("media"))
US = 1_000_000


def log(rows: list[tuple[str, float, str | None]], segments: list[int] | None = None) -> pl.DataFrame:
    """A text stream frame sorted by (key, t_us), as load.py hands it."""
    order = sorted(range(len(rows)), key=lambda i: (rows[i][0], rows[i][1]))
    return pl.DataFrame(
        {
            "key": [rows[i][0] for i in order],
            "t_us": [round(rows[i][1] * US) for i in order],
            "segment": [segments[i] if segments else 0 for i in order],
            "note": [rows[i][2] for i in order],
        },
        schema={"key": pl.Utf8, "t_us": pl.Int64, "segment": pl.Int32, "note": pl.Utf8},
    )


def anchors(rows: list[tuple[str, float]]) -> pl.DataFrame:
    data = sorted((round(t * US), k) for k, t in rows)
    return pl.DataFrame(
        {"anchor": range(len(data)), "key": [k for _, k in data], "t_us": [t for t, _ in data]},
        schema={"anchor": pl.UInt32, "key": pl.Utf8, "t_us": pl.Int64},
    )


def spec(**kw: object) -> StreamSpec:
    base = {"name": "log", "kind": "text", "path": "log.csv", "key": "machine", "columns": ("note",)}
    return StreamSpec(**{**base, "window_s": 1.0, **kw})  # type: ignore[arg-type]


def test_window_is_closed_at_start_and_open_at_the_anchor() -> None:
    stream = log(
        [("a", 8.999999, "too old"), ("a", 9.0, "first"), ("a", 9.5, "second"), ("a", 10.0, "at anchor")]
    )
    out = align_text(stream, anchors([("a", 10.0)]), spec(), CTX).columns
    assert out.to_dicts() == [
        {
            "log__status": "observed",
            "log__imputed_frac": 0.0,
            "log__dt_s": 0.5,
            "log": "first\nsecond",
            "log__lines": 2,
        }
    ]
    assert out.schema["log__lines"] == pl.Int32


def test_lines_are_joined_in_time_order_and_keys_never_mix() -> None:
    stream = log([("a", 9.7, "c"), ("b", 9.5, "other"), ("a", 9.1, "a"), ("a", 9.4, "b")])
    out = align_text(stream, anchors([("a", 10.0), ("c", 10.0)]), spec(), CTX).columns
    assert out["log"].to_list() == ["a\nb\nc", None]
    assert out["log__lines"].to_list() == [3, 0]
    assert out["log__status"].to_list() == ["observed", "absent"]
    assert out["log__dt_s"].to_list()[1] is None
    assert out["log__imputed_frac"].to_list()[1] is None


def test_empty_window_is_absent_and_null_text_is_not_a_line() -> None:
    stream = log([("a", 5.0, "long ago"), ("a", 9.5, None)])
    result = align_text(stream, anchors([("a", 10.0)]), spec(), CTX)
    assert result.columns["log__status"].to_list() == ["absent"]
    assert result.columns["log"].to_list() == [None]
    assert result.details["null_lines"] == 1


def test_empty_string_is_a_line() -> None:
    out = align_text(log([("a", 9.5, "")]), anchors([("a", 10.0)]), spec(), CTX).columns
    assert out["log"].to_list() == [""]
    assert out["log__lines"].to_list() == [1]


def test_window_keeps_the_latest_lines_clock_segment() -> None:
    stream = log([("a", 9.2, "s0 early"), ("a", 9.4, "s1"), ("a", 9.6, "s0 late")], segments=[0, 1, 0])
    result = align_text(stream, anchors([("a", 10.0)]), spec(), CTX)
    assert result.columns["log"].to_list() == ["s0 early\ns0 late"]
    assert result.columns["log__lines"].to_list() == [2]
    assert result.details["other_segment"] == 1


def test_keyless_log_matches_every_entity() -> None:
    out = align_text(log([("", 9.5, "site-wide")]), anchors([("a", 10.0), ("b", 10.0)]), spec(key=None), CTX)
    assert out.columns["log"].to_list() == ["site-wide", "site-wide"]


def test_hundred_thousand_anchors_are_fast() -> None:
    rng = np.random.default_rng(0)
    n_keys, n_lines, n_anchors = 1000, 200_000, 100_000
    keys = np.array([f"m{i:04d}" for i in range(n_keys)])
    stream = (
        pl.DataFrame(
            {"key": keys[rng.integers(0, n_keys, n_lines)], "t_us": rng.integers(0, 3600 * US, n_lines)}
        )
        .unique(["key", "t_us"])
        .with_columns(
            pl.lit(0, dtype=pl.Int32).alias("segment"), pl.format("line {}", pl.col("t_us")).alias("note")
        )
        .sort("key", "t_us")
    )
    a = (
        pl.DataFrame(
            {"key": keys[rng.integers(0, n_keys, n_anchors)], "t_us": rng.integers(0, 3600 * US, n_anchors)}
        )
        .sort("t_us", "key")
        .with_row_index("anchor")
    )
    start = time.perf_counter()
    out = align_text(stream, a, spec(window_s=60.0), CTX).columns
    elapsed = time.perf_counter() - start
    assert out.height == n_anchors
    assert elapsed < 10.0, f"{elapsed:.1f} s for 100k anchors"
    # ~200 lines per entity-hour → ~3.3 lines per minute window on average.
    assert 2.5 < out["log__lines"].mean() < 4.5  # type: ignore[operator]


keys = st.sampled_from(["a", "b"])
times = st.integers(min_value=0, max_value=40).map(lambda ds: ds / 10)


@settings(max_examples=60, deadline=None)
@given(
    line_rows=st.lists(st.tuples(keys, times), max_size=25, unique=True),
    anchor_rows=st.lists(st.tuples(keys, times), min_size=1, max_size=20, unique=True),
    window=st.sampled_from([0.1, 0.5, 2.0]),
)
def test_property_matches_a_plain_reference(
    line_rows: list[tuple[str, float]], anchor_rows: list[tuple[str, float]], window: float
) -> None:
    stream = log([(k, t, f"{k}{t}") for k, t in line_rows])
    a = anchors(anchor_rows)
    out = align_text(stream, a, spec(window_s=window), CTX).columns
    assert out.height == a.height  # no anchor lost
    assert out.equals(align_text(stream, a, spec(window_s=window), CTX).columns)  # deterministic
    for anchor, row in zip(a.iter_rows(named=True), out.iter_rows(named=True), strict=True):
        t, w = anchor["t_us"], round(window * US)
        inside = sorted(
            round(s * US) for k, s in line_rows if k == anchor["key"] and t - w <= round(s * US) < t
        )
        if not inside:
            assert row["log__status"] == "absent" and row["log"] is None and row["log__lines"] == 0
            continue
        assert row["log"] == "\n".join(f"{anchor['key']}{s / US}" for s in inside)
        assert row["log__lines"] == len(inside)
        assert round(row["log__dt_s"] * US) == t - inside[-1]
