"""Timeseries rule: per anchor at time t, the window [t - window_s, t) resampled to a fixed grid of
T = round(window_s * rate_hz) points at t - window_s + k / rate_hz (k = 0..T-1).

A grid point is *observed* when a sample of the same entity and clock segment lies within
`tolerance_s` of it (inclusive): it takes the nearest such sample (a tie goes to the earlier one),
or, with `impute: interpolate`, the linear interpolation between the samples either side of it when
both are within tolerance (still observed data, resampled). Otherwise the point is a gap. With
`impute: hold | interpolate` a gap whose surrounding real samples (same segment) are at most
`max_gap_s` apart (inclusive) is filled — the previous value, or the line between the two — and
counted as *imputed*; otherwise the point is missing. An anchor with any missing point has the field
absent (value null): a partial window is never padded. Samples at or after the anchor are never used,
not even as the far edge of a gap: the window is [t - window_s, t), and a label must not see its future.

A window never mixes clock segments: when the segments of an entity overlap around an anchor (a
backward clock jump), each is tried and the one with the fewest missing points wins (then the most
observed, then the first segment). A stream without a key (`key: null`) is shared by every anchor.

How it is fast: the stream's (entity, segment) runs are laid end to end on one Int64 axis
(`t_us + shift[run]`, runs kept apart), so one `join_asof` without `by` finds every grid point's
previous sample; the next sample is the row after it. No loop runs per anchor or per row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import polars as pl

from plait.align.frames import (
    ABSENT,
    IMPUTED,
    KEY,
    OBSERVED,
    SEGMENT,
    T_US,
    US_PER_S,
    RuleContext,
    RuleOutput,
    dt_col,
    imputed_frac_col,
    seconds_to_us,
    status_col,
)
from plait.align.rules.channels import typed_channels
from plait.align.rules.kind import StreamKind
from plait.errors import AlignmentError, ConfigError

if TYPE_CHECKING:
    from plait.align.spec import StreamSpec

I64 = npt.NDArray[np.int64]

AXIS_LIMIT = 2**62  # the end-to-end axis must stay inside Int64; past it, match run by run with `by`
_GAP = 3  # axis units between two runs: a grid point clipped next to one run never reaches another
_OBS, _IMP, _MISS = 0, 1, 2  # per grid point
_STATUS = np.array([OBSERVED, IMPUTED, ABSENT], dtype=object)


@dataclass(frozen=True)
class Runs:
    """The stream's (key, segment) runs: rows start..end-1 of the run-ordered stream."""

    key: pl.Series  # (R,) Utf8
    start: I64  # (R,)
    end: I64  # (R,)
    first_t: I64  # (R,) t_us of the first and last sample
    last_t: I64  # (R,)
    shift: I64  # (R,) axis = t_us + shift[run]
    axis: I64 | None  # (rows,) strictly ordered across runs; None when it would overflow Int64


@dataclass(frozen=True)
class GridMatch:
    """Each candidate window (an anchor tried against one run) and its grid matched to the stream."""

    stream: pl.DataFrame  # the stream in run order: `prev` indexes its rows
    runs: Runs
    anchor: I64  # (N_c,) anchor position
    run: I64  # (N_c,)
    anchor_t: I64  # (N_c,)
    grid_t: I64  # (N_c, T)
    prev: I64  # (N_c, T) row of the last sample at or before the grid point, anywhere; < start: none


def grid_offsets_us(spec: StreamSpec) -> I64:
    """(T,) grid times relative to the anchor, in µs: -window_s + k / rate_hz."""
    window_s, rate_hz = spec.window_s, spec.rate_hz
    if window_s is None or rate_hz is None or window_s <= 0 or rate_hz <= 0:
        raise ConfigError(
            f"streams.sources.{spec.name}: a timeseries stream needs window_s > 0 and rate_hz > 0 "
            f"(got window_s={window_s}, rate_hz={rate_hz}); e.g. window_s: 1.28, rate_hz: 200"
        )
    points = round(window_s * rate_hz)
    if points < 1:
        raise ConfigError(
            f"streams.sources.{spec.name}: window_s * rate_hz = {window_s * rate_hz:g} gives no grid "
            "point; widen window_s or raise rate_hz"
        )
    steps = np.array([round(k * US_PER_S / rate_hz) for k in range(points)], dtype=np.int64)
    return steps - seconds_to_us(window_s)


def match_grid(stream: pl.DataFrame, anchors: pl.DataFrame, spec: StreamSpec) -> GridMatch:
    """The matching step: candidate windows, their grids, and each grid point's previous sample."""
    offsets = grid_offsets_us(spec)
    stream, heads = _in_run_order(_finite_rows(stream, spec))
    runs = _runs(stream, heads)
    anchor, run, anchor_t = _candidates(anchors, runs, spec)
    grid_t = anchor_t[:, None] + offsets[None, :]  # (N_c, T)
    prev = _prev_rows(runs, stream[T_US].to_numpy(), run, grid_t)
    return GridMatch(stream, runs, anchor, run, anchor_t, grid_t, prev)


def align_timeseries(
    stream: pl.DataFrame, anchors: pl.DataFrame, spec: StreamSpec, ctx: RuleContext
) -> RuleOutput:
    match = match_grid(stream, anchors, spec)
    points = _resolve(match, spec)
    chosen = _choose(match, points)
    return _assemble(match, points, chosen, anchors.height, spec)


def _finite_rows(stream: pl.DataFrame, spec: StreamSpec) -> pl.DataFrame:
    """The channel rows as floats; a row with a null/NaN/Inf reading is a gap (the loader drops
    them already; this keeps the rule safe when called directly)."""
    missing = [c for c in (KEY, T_US, SEGMENT, *spec.columns) if c not in stream.columns]
    if missing:
        raise AlignmentError(
            f"stream '{spec.name}': column(s) {missing} not in the loaded frame (has {stream.columns}); "
            "check `columns:` in its config"
        )
    stream = stream.select(
        pl.col(KEY).cast(pl.Utf8),
        pl.col(T_US).cast(pl.Int64),
        pl.col(SEGMENT).cast(pl.Int32),
        *(pl.col(c).cast(pl.Float64) for c in spec.columns),
    )
    # a finite sum means every reading is finite: one cheap pass in the usual clean case
    if any(stream[c].has_nulls() or not math.isfinite(stream[c].sum()) for c in spec.columns):
        stream = stream.filter(
            pl.all_horizontal(pl.col(c).is_finite().fill_null(False) for c in spec.columns)
        )
    return stream


def _in_run_order(stream: pl.DataFrame) -> tuple[pl.DataFrame, npt.NDArray[np.bool_]]:
    """Rows grouped by (key, segment), each group in time order, and where each group starts. The
    contract sorts by (key, t_us): run order already, unless a clock jump made two segments of one
    key overlap."""
    heads = _run_heads(stream)
    t = stream[T_US]
    t_back = (t.slice(1) < t.slice(0, max(len(t) - 1, 0))) & ~heads.slice(1)
    head_rows = stream.select(KEY, SEGMENT).filter(heads)
    if t_back.any() or head_rows.n_unique() < head_rows.height:
        stream = stream.sort(KEY, SEGMENT, T_US, maintain_order=True)
        heads = _run_heads(stream)
    return stream, heads.to_numpy()


def _run_heads(stream: pl.DataFrame) -> pl.Series:
    """True where a (key, segment) run starts (compared on zero-copy slices, no shifted copies)."""
    n = max(stream.height - 1, 0)  # pairs of neighbouring rows
    key, segment = stream[KEY], stream[SEGMENT]
    changed = (key.slice(1) != key.slice(0, n)) | (segment.slice(1) != segment.slice(0, n))
    return pl.concat([pl.Series([True] if stream.height else [], dtype=pl.Boolean), changed])


def _runs(stream: pl.DataFrame, heads: npt.NDArray[np.bool_]) -> Runs:
    start = np.flatnonzero(heads).astype(np.int64)
    end = np.append(start[1:], stream.height).astype(np.int64)[: len(start)]
    t = stream[T_US].to_numpy()
    first_t, last_t = t[start], t[end - 1]
    span = last_t - first_t + _GAP
    base = 1 + np.cumsum(span, dtype=np.int64) - span  # where each run starts on the axis
    fits = int(np.sum(span, dtype=np.float64)) + _GAP < AXIS_LIMIT
    shift = base - first_t
    axis = t + np.repeat(shift, end - start) if fits else None
    return Runs(stream[KEY].gather(start), start, end, first_t, last_t, shift, axis)


def _candidates(anchors: pl.DataFrame, runs: Runs, spec: StreamSpec) -> tuple[I64, I64, I64]:
    """(anchor position, run, anchor t) for every run of the anchor's entity with data before the
    anchor and near enough to its window; sorted by (run, t) so the grid is nearly in axis order."""
    key = pl.lit("", dtype=pl.Utf8) if spec.key is None else pl.col(KEY).cast(pl.Utf8)
    left = anchors.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("_a"), key.alias(KEY), pl.col(T_US))
    right = pl.DataFrame(
        {KEY: runs.key, "_run": np.arange(len(runs.start)), "_first": runs.first_t, "_last": runs.last_t}
    )
    reach = seconds_to_us((spec.window_s or 0.0) + spec.tolerance_s + spec.max_gap_s)
    near = (pl.col("_first") < pl.col(T_US)) & (pl.col("_last") >= pl.col(T_US) - reach)
    cand = left.join(right, on=KEY, how="inner").filter(near).sort("_run", T_US, "_a")
    return (
        cand["_a"].to_numpy().astype(np.int64),
        cand["_run"].to_numpy().astype(np.int64),
        cand[T_US].to_numpy().astype(np.int64),
    )


def _prev_rows(runs: Runs, t: I64, run: I64, grid_t: I64) -> I64:
    """(N_c, T) the stream row of the last sample of the candidate's run at or before each grid point
    (start - 1 or less when there is none). Grid points are clipped to just outside their run so
    that, laid on the shared axis, they never land among another run's samples."""
    if grid_t.size == 0:
        return np.zeros(grid_t.shape, dtype=np.int64)
    lo, hi = (runs.first_t - 1)[run][:, None], (runs.last_t + 1)[run][:, None]
    clipped = np.clip(grid_t, lo, hi)  # (N_c, T)
    if runs.axis is not None:
        flat = (clipped + runs.shift[run][:, None]).ravel()
        order = np.argsort(flat, kind="stable")  # nearly sorted already: cheap
        left = pl.DataFrame({"_ax": pl.Series(flat[order]).set_sorted()})
        right = pl.DataFrame({"_ax": pl.Series(runs.axis).set_sorted()}).with_row_index("_row", offset=1)
        found = left.join_asof(right, on="_ax", strategy="backward")["_row"]
    else:  # too long to lay end to end: the same match, grouped by run (slower)
        flat_run = np.broadcast_to(run[:, None], grid_t.shape).ravel()
        flat = clipped.ravel()
        order = np.lexsort((flat, flat_run))
        left = pl.DataFrame({"_run": flat_run[order], "_t": flat[order]})
        row_run = np.repeat(np.arange(len(runs.start)), runs.end - runs.start)
        right = pl.DataFrame({"_run": row_run, "_t": t}).with_row_index("_row", offset=1)
        found = left.join_asof(right, on="_t", by="_run", strategy="backward", check_sortedness=False)["_row"]
    prev = np.empty(flat.shape, dtype=np.int64)
    prev[order] = found.fill_null(0).to_numpy()  # rows were numbered from 1: 0 is "none"
    prev -= 1
    return prev.reshape(grid_t.shape)


@dataclass(frozen=True)
class _Points:
    """Per grid point (N_c, T): status and how its value is made, value = x[a] + lam * (x[b] - x[a])."""

    code: npt.NDArray[np.int8]
    a: I64
    b: I64
    lam: npt.NDArray[np.float64]
    used_t: I64  # time of the latest real sample whose value is used


def _resolve(match: GridMatch, spec: StreamSpec) -> _Points:
    t = match.stream[T_US].to_numpy()
    tol, max_gap = seconds_to_us(spec.tolerance_s), seconds_to_us(spec.max_gap_s)
    lo, hi = match.runs.start[match.run][:, None], match.runs.end[match.run][:, None]  # (N_c, 1)
    g, p = match.grid_t, match.prev
    n = np.maximum(p + 1, lo)  # the run's first sample when nothing in it precedes the point
    has_p, has_n = p >= lo, n < hi
    tp = t.take(p, mode="clip")  # only read where has_p / has_n: clipping just keeps it in bounds
    tn = t.take(n, mode="clip")
    has_n &= tn < match.anchor_t[:, None]  # nothing at or after the anchor
    dp, dn = g - tp, tn - g
    near_p, near_n = has_p & (dp <= tol), has_n & (dn <= tol)
    observed = near_p | near_n
    fill = ~observed & has_p & has_n & (tn - tp <= max_gap) & (spec.impute != "none")
    line = fill | (observed & near_p & near_n) if spec.impute == "interpolate" else np.zeros_like(fill)
    take_n = near_n & ~(near_p & (dp <= dn)) & ~line
    a = np.where(take_n, n, p)
    b = np.where(line, n, a)
    lam = np.where(line, dp / np.maximum(tn - tp, 1), 0.0)
    used_t = np.where(line | take_n, tn, tp)
    code = np.where(observed, _OBS, np.where(fill, _IMP, _MISS)).astype(np.int8)
    return _Points(code, a, b, lam, used_t)


@dataclass(frozen=True)
class _Chosen:
    """One candidate per anchor that has any: positions into the candidate arrays."""

    cand: I64  # (N_a,)
    anchor: I64  # (N_a,)
    observed: npt.NDArray[np.int32]  # (N_a,) observed points of the chosen window
    imputed: npt.NDArray[np.int32]
    present: npt.NDArray[np.bool_]  # no missing point


def _choose(match: GridMatch, points: _Points) -> _Chosen:
    obs = (points.code == _OBS).sum(axis=1, dtype=np.int32)  # (N_c,)
    imp = (points.code == _IMP).sum(axis=1, dtype=np.int32)
    miss = points.code.shape[1] - obs - imp
    # fewest missing, then most observed, then the first run; one candidate per anchor in most streams
    order = np.lexsort((match.run, -obs, miss, match.anchor))
    anchors_sorted = match.anchor[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = anchors_sorted[1:] != anchors_sorted[:-1]
    cand = order[first]
    return _Chosen(cand, match.anchor[cand], obs[cand], imp[cand], miss[cand] == 0)


def _assemble(match: GridMatch, points: _Points, chosen: _Chosen, n: int, spec: StreamSpec) -> RuleOutput:
    s, channels = spec.name, spec.columns
    n_points = points.code.shape[1]
    observed = np.zeros(n, dtype=np.int32)
    imputed = np.zeros(n, dtype=np.int32)
    present = np.zeros(n, dtype=bool)
    last_t = np.zeros(n, dtype=np.int64)
    observed[chosen.anchor], imputed[chosen.anchor] = chosen.observed, chosen.imputed
    present[chosen.anchor] = chosen.present
    rows = chosen.cand[chosen.present]  # candidates that give a value
    at = chosen.anchor[chosen.present]
    values = np.zeros((n, n_points, len(channels)), dtype=np.float32)  # (N, T, C)
    if len(rows):
        a, b, lam = points.a[rows], points.b[rows], points.lam[rows]  # (P, T)
        for c, column in enumerate(channels):
            x = match.stream[column].to_numpy()
            xa = x[a]
            values[at, :, c] = xa + lam * (x[b] - xa)
        last_t[at] = points.used_t[rows].max(axis=1)
    anchor_t = np.zeros(n, dtype=np.int64)
    anchor_t[match.anchor] = match.anchor_t
    code = np.where(present, np.where(imputed > 0, _IMP, _OBS), _MISS)
    value_type = pl.List(pl.List(pl.Float32))
    frame = pl.DataFrame(
        {
            "_present": present,
            "_status": pl.Series(_STATUS[code], dtype=pl.Utf8),
            "_frac": imputed / n_points,
            "_dt": (anchor_t - last_t) / US_PER_S,
            "_value": pl.Series(values.ravel()).reshape((n, n_points, len(channels))).cast(value_type),
            "_observed": observed,
        }
    )
    ok = pl.col("_present")
    columns = frame.select(
        pl.col("_status").alias(status_col(s)),
        pl.when(ok).then(pl.col("_frac")).alias(imputed_frac_col(s)),
        pl.when(ok).then(pl.col("_dt")).alias(dt_col(s)),
        pl.when(ok).then(pl.col("_value")).alias(s),
        pl.col("_observed").alias(f"{s}__observed"),
        pl.lit(n_points, dtype=pl.Int32).alias(f"{s}__expected"),
    )
    return RuleOutput(columns=columns, details=_details(code, imputed, present, n, len(chosen.anchor)))


def _details(
    code: I64, imputed: npt.NDArray[np.int32], present: npt.NDArray[np.bool_], n: int, with_data: int
) -> dict[str, int]:
    return {
        OBSERVED: int((code == _OBS).sum()),
        IMPUTED: int((code == _IMP).sum()),
        ABSENT: int((code == _MISS).sum()),
        "imputed_points": int(imputed[present].sum()),
        "no_data": n - with_data,  # anchors with no sample of their entity near the window
    }


def _check(spec: StreamSpec, path: str) -> None:
    if spec.window_s is None or spec.window_s <= 0 or spec.rate_hz is None or spec.rate_hz <= 0:
        raise ConfigError(
            f"{path}: a timeseries stream needs window_s > 0 and rate_hz > 0 (got window_s={spec.window_s}, "
            f"rate_hz={spec.rate_hz}); e.g. window_s: 1.28, rate_hz: 200"
        )
    if not spec.columns:
        raise ConfigError(f"{path}.columns: list the sensor channel columns, e.g. [ax, ay, az]")


def _field(spec: StreamSpec, table: pl.DataFrame) -> dict[str, Any]:
    return {"kind": spec.kind, "channels": len(spec.columns)}


def _signal(frame: pl.DataFrame, spec: StreamSpec, base_dir: Path) -> tuple[pl.DataFrame, list[str]]:
    return frame, list(spec.columns)


TIMESERIES = StreamKind(
    name="timeseries",
    align=align_timeseries,
    check=_check,
    field_spec=_field,
    typed=typed_channels,
    signal=_signal,
    interpolates=True,
    finite=True,
    jumps=True,
    averages=True,
)
