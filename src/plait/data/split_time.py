"""Time splits: train before validation before test, by a time column, so the held-out figures
are about the future the model did not see.

The labelled rows are ordered by time and cut at the fractions; rows sharing a timestamp stay
in one split (a cut never falls between equal times). With `gap_s`, the rows of the earlier split
within `gap_s` seconds before the next split starts are left out and counted — overlapping windows
just before a cut would otherwise carry the same seconds of signal into both sides.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from plait.data.split import Split, split_counts
from plait.errors import DataError


def time_seconds(series: pl.Series, valid: np.ndarray, where: str) -> np.ndarray:
    """The column as float seconds (datetimes, dates, durations, numbers as seconds, ISO strings);
    a labelled row without a readable time is an error naming the rows."""
    dtype = series.dtype
    if dtype == pl.Date:
        series = series.cast(pl.Datetime("us"))
        dtype = series.dtype
    if isinstance(dtype, pl.Datetime):
        seconds = series.dt.epoch("us").cast(pl.Float64) / 1e6
    elif isinstance(dtype, pl.Duration):
        seconds = series.dt.total_microseconds().cast(pl.Float64) / 1e6
    elif dtype.is_numeric():
        seconds = series.cast(pl.Float64)
    elif dtype == pl.String:
        seconds = series.str.to_datetime(strict=False, time_unit="us").dt.epoch("us").cast(pl.Float64) / 1e6
    else:
        raise DataError(
            f"data.split.time{where}: column '{series.name}' has dtype {dtype}; expected datetimes, dates, "
            "numbers (seconds) or ISO-8601 strings"
        )
    values = seconds.to_numpy().astype(np.float64)
    bad = np.flatnonzero(valid & ~np.isfinite(values))
    if len(bad):
        shown = ", ".join(str(r) for r in bad[:5]) + (", …" if len(bad) > 5 else "")
        example = series[int(bad[0])]
        raise DataError(
            f"data.split.time{where}: {len(bad)} labelled rows have no readable time in column "
            f"'{series.name}' (rows {shown}, 0-based; e.g. {example!r}); fill them in or fix their format"
        )
    return values


def time_split(
    seconds: np.ndarray,
    valid: np.ndarray,
    *,
    column: str,
    val_fraction: float,
    test_fraction: float,
    gap_s: float,
    seed: int,
) -> Split:
    """Train, then validation, then test, in time."""
    rows = np.flatnonzero(valid)
    order = rows[np.argsort(seconds[rows], kind="stable")]
    n_train, n_val, _ = split_counts(len(order), val_fraction, test_fraction)
    starts = [_start(seconds, order, n_train), _start(seconds, order, n_train + n_val)]
    if n_val and starts[1] <= starts[0]:  # validation and test would start at one tied time:
        later = seconds[order][seconds[order] > starts[0]]  # test starts at the next time instead
        starts[1] = float(later[0]) if len(later) else np.inf
    parts, left_out = cut_in_time(seconds, order, starts, gap_s)
    return Split(
        train=parts[0],
        val=parts[1],
        test=parts[2],
        kind="time",
        column=column,
        seed=seed,
        left_out=left_out,
        gap_s=gap_s,
    )


def _start(seconds: np.ndarray, order: np.ndarray, position: int) -> float:
    return float(seconds[order[position]]) if position < len(order) else np.inf


def cut_in_time(
    seconds: np.ndarray, rows: np.ndarray, starts: list[float], gap_s: float
) -> tuple[list[np.ndarray], int]:
    """Rows before starts[0], between starts[0] and starts[1], from starts[1] on; rows within
    `gap_s` before a start are left out (counted). Returns sorted row indices per part."""
    t = seconds[rows]
    bounds = [-np.inf, *starts, np.inf]
    parts = []
    left = 0
    for p in range(len(bounds) - 1):
        lo, hi = bounds[p], bounds[p + 1]
        inside = (t >= lo) & (t < hi)
        kept = inside & (t < hi - gap_s) if np.isfinite(hi) and gap_s > 0 else inside
        left += int(inside.sum() - kept.sum())
        parts.append(np.sort(rows[kept]).astype(np.int64))
    return parts, left


def check_time_order(split: Split, where: str, *, needs_val: bool = False) -> None:
    """Training rows, and validation rows when a validation fraction was asked for, or say what to
    change (ties and gap_s can empty a period)."""
    what = f"({split.sizes()}, {split.left_out} left out by gap_s)"
    fold = "" if split.fold is None else f" in fold {split.fold + 1}"
    if len(split.train) == 0:
        raise DataError(
            f"data.split.time{where}: no training rows before the validation and test periods{fold} {what}; "
            "lower gap_s or the fractions, or use fewer folds"
        )
    if len(split.test) == 0:
        raise DataError(
            f"data.split.time{where}: no test rows{fold} {what}: too many rows share their time; "
            "use fewer folds"
        )
    if needs_val and len(split.val) == 0:
        raise DataError(
            f"data.split.time{where}: no validation rows between training and test{fold} {what} (ties or "
            "gap_s took them); lower gap_s, raise data.val_fraction, or set it to 0"
        )
