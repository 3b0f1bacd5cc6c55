"""The timeseries window rule: hand-checked cases, then properties on random streams with gaps,
overlapping clock segments and several entities, checked against a loop-per-anchor reference."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait.align.frames import RuleContext
from plait.align.rules import timeseries
from plait.align.rules.timeseries import align_timeseries
from plait.align.spec import StreamSpec
from plait.errors import AlignmentError, ConfigError

S = 1_000_000
CTX = RuleContext(base_dir=Path("."), media_dir=Path("media"))


def make_stream(rows: list[tuple[str, int, int, float]], channels: int = 1) -> pl.DataFrame:
    """rows: (key, segment, t_us, value); channel c holds value * (c + 1). Sorted by (key, t_us)."""
    rows = sorted(rows, key=lambda r: (r[0], r[2], r[1]))
    return pl.DataFrame(
        {
            "key": pl.Series([r[0] for r in rows], dtype=pl.Utf8),
            "t_us": pl.Series([r[2] for r in rows], dtype=pl.Int64),
            "segment": pl.Series([r[1] for r in rows], dtype=pl.Int32),
            **{f"c{c}": pl.Series([r[3] * (c + 1) for r in rows], dtype=pl.Float64) for c in range(channels)},
        }
    )


def make_anchors(points: list[tuple[str, int]]) -> pl.DataFrame:
    points = sorted(points, key=lambda p: (p[1], p[0]))
    return pl.DataFrame(
        {
            "anchor": pl.Series(range(len(points)), dtype=pl.UInt32),
            "key": pl.Series([p[0] for p in points], dtype=pl.Utf8),
            "t_us": pl.Series([p[1] for p in points], dtype=pl.Int64),
        }
    )


def make_spec(channels: int = 1, **options: object) -> StreamSpec:
    base: dict[str, object] = {"window_s": 5.0, "rate_hz": 1.0, "tolerance_s": 0.2, "key": "key"}
    base.update(options)
    cols = tuple(f"c{c}" for c in range(channels))
    return StreamSpec(name="v", kind="timeseries", path="-", columns=cols, **base)  # type: ignore[arg-type]


def secs(*pairs: tuple[float, float]) -> list[tuple[str, int, int, float]]:
    return [("m1", 0, round(t * S), v) for t, v in pairs]


# Samples at 5..9 s, a 0.5-s stray, then 15, 16 and 19 s: anchor 10 s sees a full window,
# anchor 20 s has a 3-s hole (grid points 17 and 18 s) between the samples at 16 and 19 s.
HAND = secs((5, 0), (6, 1), (7, 2), (8, 3), (9, 4), (9.5, 5), (15, 10), (16, 11), (19, 14))
HAND_ANCHORS = make_anchors([("m1", 10 * S), ("m1", 20 * S)])


def values(out: pl.DataFrame, row: int) -> list[float] | None:
    cell = out["v"][row]
    return None if cell is None else [point[0] for point in cell.to_list()]


def test_none_keeps_only_full_windows() -> None:
    out = align_timeseries(
        make_stream(HAND), HAND_ANCHORS, make_spec(impute="none", max_gap_s=3), CTX
    ).columns
    assert out.columns == ["v__status", "v__imputed_frac", "v__dt_s", "v", "v__observed", "v__expected"]
    assert out["v__status"].to_list() == ["observed", "absent"]
    assert values(out, 0) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert values(out, 1) is None
    assert out["v__observed"].to_list() == [5, 3]
    assert out["v__expected"].to_list() == [5, 5]
    assert out["v__imputed_frac"].to_list() == [0.0, None]
    assert out["v__dt_s"].to_list() == [1.0, None]  # the sample at 9 s; 9.5 s is no grid point's


def test_hold_fills_a_short_gap_with_the_last_value() -> None:
    out = align_timeseries(make_stream(HAND), HAND_ANCHORS, make_spec(impute="hold", max_gap_s=3), CTX)
    assert out.columns["v__status"].to_list() == ["observed", "imputed"]
    assert values(out.columns, 1) == [10.0, 11.0, 11.0, 11.0, 14.0]
    assert out.columns["v__imputed_frac"].to_list() == [0.0, 0.4]
    assert out.columns["v__dt_s"].to_list() == [1.0, 1.0]
    assert dict(out.details) == {"observed": 1, "imputed": 1, "absent": 0, "imputed_points": 2, "no_data": 0}


def test_interpolate_fills_linearly_and_max_gap_is_inclusive() -> None:
    out = align_timeseries(make_stream(HAND), HAND_ANCHORS, make_spec(impute="interpolate", max_gap_s=3), CTX)
    assert values(out.columns, 1) == [10.0, 11.0, 12.0, 13.0, 14.0]
    shorter = align_timeseries(
        make_stream(HAND), HAND_ANCHORS, make_spec(impute="interpolate", max_gap_s=2.999999), CTX
    )
    assert shorter.columns["v__status"].to_list() == ["observed", "absent"]


def test_interpolate_resamples_observed_points_between_two_near_samples() -> None:
    rows = secs((0.9, 0), (1.1, 10), (2.0, 20))
    anchors = make_anchors([("m1", 3 * S)])
    spec = make_spec(window_s=2.0, impute="interpolate", tolerance_s=0.1)  # grid at 1 s and 2 s
    out = align_timeseries(make_stream(rows), anchors, spec, CTX).columns
    assert out["v__status"].to_list() == ["observed"]
    assert values(out, 0) == [5.0, 20.0]
    near = align_timeseries(make_stream(rows), anchors, make_spec(window_s=2.0, tolerance_s=0.1), CTX)
    assert values(near.columns, 0) == [0.0, 20.0]  # a tie goes to the earlier sample


def test_tolerance_is_inclusive_and_channels_keep_their_order() -> None:
    rows = secs((0.8, 1), (2.0, 2))
    out = align_timeseries(
        make_stream(rows, channels=2), make_anchors([("m1", 3 * S)]), make_spec(2, window_s=2.0), CTX
    )
    assert out.columns["v"].to_list() == [[[1.0, 2.0], [2.0, 4.0]]]
    assert out.columns.schema["v"] == pl.List(pl.List(pl.Float32))
    late = align_timeseries(
        make_stream(secs((0.799999, 1), (2.0, 2))),
        make_anchors([("m1", 3 * S)]),
        make_spec(window_s=2.0),
        CTX,
    )
    assert late.columns["v__status"].to_list() == ["absent"]


def test_samples_at_or_after_the_anchor_are_never_used() -> None:
    # grid at 1 s and 2 s; the only sample near 2 s is at the anchor itself (3 s is too far, tolerance 1 s)
    rows = secs((1.0, 1), (3.0, 3))
    spec = make_spec(window_s=2.0, tolerance_s=1.0, impute="interpolate", max_gap_s=10)
    out = align_timeseries(make_stream(rows), make_anchors([("m1", 3 * S)]), spec, CTX).columns
    assert values(out, 0) == [1.0, 1.0]  # the 3-s sample is not even the far end of a gap
    assert out["v__dt_s"].to_list() == [2.0]


def test_a_gap_between_two_clock_segments_is_never_bridged() -> None:
    rows = [("m1", 0, 1 * S, 1.0), ("m1", 0, 2 * S, 2.0), ("m1", 1, 4 * S, 4.0), ("m1", 1, 5 * S, 5.0)]
    spec = make_spec(window_s=5.0, tolerance_s=0.1, impute="hold", max_gap_s=10)
    out = align_timeseries(make_stream(rows), make_anchors([("m1", 6 * S)]), spec, CTX).columns
    assert out["v__status"].to_list() == ["absent"]
    whole = [(k, 0, t, v) for k, _, t, v in rows]
    joined = align_timeseries(make_stream(whole), make_anchors([("m1", 6 * S)]), spec, CTX).columns
    assert values(joined, 0) == [1.0, 2.0, 2.0, 4.0, 5.0]


def test_overlapping_segments_pick_the_complete_one() -> None:
    # after a backward jump, segment 1 re-covers 0..4 s; only segment 0 covers the window fully
    seg0 = [("m1", 0, t * S, float(t)) for t in range(5)]
    seg1 = [("m1", 1, t * S + S // 2, 100.0 + t) for t in (0, 3)]
    spec = make_spec(window_s=4.0, tolerance_s=0.5)
    out = align_timeseries(make_stream(seg0 + seg1), make_anchors([("m1", 4 * S)]), spec, CTX).columns
    assert values(out, 0) == [0.0, 1.0, 2.0, 3.0]


def test_keyless_stream_serves_every_entity_and_unknown_keys_are_absent() -> None:
    rows = [("", 0, t * S, float(t)) for t in range(6)]
    anchors = make_anchors([("m1", 5 * S), ("m2", 5 * S)])
    shared = align_timeseries(make_stream(rows), anchors, make_spec(key=None, window_s=3.0), CTX).columns
    assert shared["v__status"].to_list() == ["observed", "observed"]
    keyed = align_timeseries(make_stream(rows), anchors, make_spec(window_s=3.0), CTX)
    assert keyed.columns["v__status"].to_list() == ["absent", "absent"]
    assert keyed.details["no_data"] == 2


def test_non_finite_readings_are_gaps() -> None:
    rows = secs((1, 1), (2, math.nan), (3, 3))
    spec = make_spec(window_s=3.0, tolerance_s=0.1)
    out = align_timeseries(make_stream(rows), make_anchors([("m1", 4 * S)]), spec, CTX).columns
    assert out["v__status"].to_list() == ["absent"]
    assert out["v__observed"].to_list() == [2]


def test_empty_inputs_keep_the_schema() -> None:
    spec = make_spec(window_s=3.0)
    none = align_timeseries(make_stream(HAND), make_anchors([]), spec, CTX).columns
    assert none.height == 0 and none.schema["v"] == pl.List(pl.List(pl.Float32))
    empty = align_timeseries(make_stream([]), HAND_ANCHORS, spec, CTX).columns
    assert empty["v__status"].to_list() == ["absent", "absent"]
    assert empty["v__observed"].to_list() == [0, 0]


def test_bad_specs_are_errors() -> None:
    with pytest.raises(ConfigError, match="no grid point"):
        align_timeseries(make_stream(HAND), HAND_ANCHORS, make_spec(window_s=0.1, rate_hz=1.0), CTX)
    with pytest.raises(AlignmentError, match="c1"):
        align_timeseries(make_stream(HAND), HAND_ANCHORS, make_spec(2), CTX)


# ---- properties -----------------------------------------------------------------------------

MS = 1_000


@st.composite
def cases(draw: st.DrawFn) -> tuple[pl.DataFrame, pl.DataFrame, StreamSpec]:
    """Regular ~50-200 Hz segments with jitter and dropped samples, overlapping in time (clock jumps)."""
    rows = []
    keys = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=0, max_size=3, unique=True))
    for key in keys:
        for segment in range(draw(st.integers(1, 3))):
            first, step = draw(st.integers(0, 300)) * MS, draw(st.integers(5, 20)) * MS
            kept = [d > 0 for d in draw(st.lists(st.integers(0, 7), min_size=20, max_size=60))]
            jitter = draw(st.lists(st.integers(0, 2 * MS), min_size=len(kept), max_size=len(kept)))
            rows += [
                (key, segment, first + i * step + j, 0.0)
                for i, (k, j) in enumerate(zip(kept, jitter, strict=True))
                if k
            ]
    rows = [(k, s, t, float(i + 1)) for i, (k, s, t, _) in enumerate(rows)]  # distinct values name rows
    n_anchors = draw(st.integers(0, 6))
    anchors = [
        (draw(st.sampled_from([*keys, "z"])), draw(st.integers(50, 700)) * MS) for _ in range(n_anchors)
    ]
    spec = make_spec(
        2,
        window_s=draw(st.sampled_from([0.05, 0.1, 0.2])),
        rate_hz=draw(st.sampled_from([20.0, 50.0, 100.0])),
        tolerance_s=draw(st.sampled_from([0.0, 0.005, 0.01, 0.02])),
        impute=draw(st.sampled_from(["none", "hold", "interpolate"])),
        max_gap_s=draw(st.sampled_from([0.0, 0.02, 0.05, 0.1])),
    )
    return make_stream(rows, channels=2), make_anchors(anchors), spec


def reference(stream: pl.DataFrame, anchors: pl.DataFrame, spec: StreamSpec) -> list[tuple[Any, ...]]:
    """The rule written plainly, one anchor and one segment at a time."""
    offsets = timeseries.grid_offsets_us(spec)
    tol, gap = round(spec.tolerance_s * S), round(spec.max_gap_s * S)
    out: list[tuple[Any, ...]] = []
    for key, anchor_t in anchors.select("key", "t_us").iter_rows():
        best = None
        for segment in sorted(set(stream.filter(pl.col("key") == key)["segment"].to_list())):
            seg = stream.filter(
                (pl.col("key") == key) & (pl.col("segment") == segment) & (pl.col("t_us") < anchor_t)
            )
            samples = list(zip(seg["t_us"].to_list(), seg["c0"].to_list(), strict=True))
            window = [_point(samples, anchor_t + int(off), tol, gap, spec.impute) for off in offsets]
            codes = [w[0] for w in window]
            score = (codes.count("missing"), -codes.count("observed"), segment)
            best = min(best, (score, window)) if best is not None else (score, window)
        if best is None:
            out.append(("absent", 0, None, None, None))
            continue
        (missing, neg_observed, _), window = best
        if missing:
            out.append(("absent", -neg_observed, None, None, None))
            continue
        imputed = sum(w[0] == "imputed" for w in window)
        dt = (anchor_t - max(w[2] for w in window)) / S
        status = "imputed" if imputed else "observed"
        out.append((status, -neg_observed, imputed / len(window), dt, [np.float32(w[1]) for w in window]))
    return out


def _point(samples: list[tuple[int, float]], g: int, tol: int, gap: int, impute: str) -> tuple[Any, ...]:
    """(status, value, time of the latest sample used) of grid point g, from one segment's samples."""
    before = [s for s in samples if s[0] <= g]
    after = [s for s in samples if s[0] > g]
    p = before[-1] if before else (-(2**62), math.nan)  # none: infinitely far
    n = after[0] if after else (2**62, math.nan)
    dp, dn = g - p[0], n[0] - g
    if dp <= tol and dn <= tol and impute == "interpolate":
        return ("observed", _line(p, n, g), n[0])
    if dp <= tol and (dn > tol or dp <= dn):
        return ("observed", p[1], p[0])
    if dn <= tol:
        return ("observed", n[1], n[0])
    if before and after and impute != "none" and n[0] - p[0] <= gap:
        return ("imputed", _line(p, n, g), n[0]) if impute == "interpolate" else ("imputed", p[1], p[0])
    return ("missing", None, None)


def _line(p: tuple[int, float], n: tuple[int, float], g: int) -> float:
    return p[1] + (g - p[0]) / max(n[0] - p[0], 1) * (n[1] - p[1])


def as_rows(out: pl.DataFrame) -> list[tuple[Any, ...]]:
    rows = []
    for status, observed, frac, dt, value in out.select(
        "v__status", "v__observed", "v__imputed_frac", "v__dt_s", "v"
    ).iter_rows():
        first = None if value is None else [np.float32(point[0]) for point in value]
        rows.append((status, observed, frac, dt, first))
    return rows


FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(cases())
def test_matches_the_plain_reference_and_loses_no_anchor(
    case: tuple[pl.DataFrame, pl.DataFrame, StreamSpec],
) -> None:
    stream, anchors, spec = case
    out = align_timeseries(stream, anchors, spec, CTX).columns
    assert out.height == anchors.height
    assert as_rows(out) == reference(stream, anchors, spec)
    assert out["v__expected"].to_list() == [len(timeseries.grid_offsets_us(spec))] * anchors.height
    second = out["v"].to_list()
    for value in second:  # channel 1 is twice channel 0, point by point
        assert value is None or all(abs(b - 2 * a) <= 1e-4 * max(1.0, abs(a)) for a, b in value)


@FAST
@given(cases())
def test_every_value_comes_from_legal_samples(case: tuple[pl.DataFrame, pl.DataFrame, StreamSpec]) -> None:
    """Each point is a sample within tolerance, or (imputed) lies between two consecutive samples
    of one segment at most max_gap_s apart — all before the anchor, all from one segment."""
    stream, anchors, spec = case
    out = align_timeseries(stream, anchors, spec, CTX).columns
    offsets = timeseries.grid_offsets_us(spec)
    tol, gap = round(spec.tolerance_s * S), round(spec.max_gap_s * S)
    for (key, anchor_t), value in zip(
        anchors.select("key", "t_us").iter_rows(), out["v"].to_list(), strict=True
    ):
        if value is None:
            continue
        rows = stream.filter((pl.col("key") == key) & (pl.col("t_us") < anchor_t))
        segments = set(rows["segment"].to_list())
        for off, point in zip(offsets, value, strict=True):
            g = anchor_t + int(off)
            segments &= _explaining_segments(rows, g, point[0], tol, gap, spec.impute)
        assert segments, f"no single segment explains the window of {key}@{anchor_t}"


def _explaining_segments(rows: pl.DataFrame, g: int, v: float, tol: int, gap: int, impute: str) -> set[int]:
    found = set()
    for segment in set(rows["segment"].to_list()):
        seg = rows.filter(pl.col("segment") == segment)
        ts, xs = seg["t_us"].to_list(), seg["c0"].to_list()
        if any(abs(t - g) <= tol and np.float32(x) == np.float32(v) for t, x in zip(ts, xs, strict=True)):
            found.add(segment)
        for i in range(len(ts) - 1):
            if not ts[i] <= g < ts[i + 1] or impute == "none":
                continue
            lo, hi = sorted((xs[i], xs[i + 1]))
            within = ts[i + 1] - ts[i] <= gap or (g - ts[i] <= tol and ts[i + 1] - g <= tol)
            between = np.float32(v) == np.float32(xs[i]) if impute == "hold" else lo - 1e-6 <= v <= hi + 1e-6
            if within and between:
                found.add(segment)
    return found


@settings(max_examples=60, deadline=None)
@given(cases())
def test_deterministic_order_free_and_the_slow_axis_agrees(
    case: tuple[pl.DataFrame, pl.DataFrame, StreamSpec],
) -> None:
    stream, anchors, spec = case

    def ipc(frame: pl.DataFrame) -> bytes:
        buffer = io.BytesIO()
        frame.write_ipc(buffer)
        return buffer.getvalue()

    first = ipc(align_timeseries(stream, anchors, spec, CTX).columns)
    assert ipc(align_timeseries(stream, anchors, spec, CTX).columns) == first
    by_segment = stream.sort("key", "segment", "t_us")
    assert ipc(align_timeseries(by_segment, anchors, spec, CTX).columns) == first
    with mock.patch.object(timeseries, "AXIS_LIMIT", 0):  # the per-run `by` join
        assert ipc(align_timeseries(stream, anchors, spec, CTX).columns) == first
