"""Where two streams share data, on one envelope grid: the interval arithmetic behind the offset
estimate (offset.py). Each stream's readings are cut into observed segments (a break wherever
readings stop for over SEGMENT_GAP_S, or ten sampling intervals); the shared windows are the
stretches within ±max_offset_s of both streams' segments, trimmed to where either has readings,
laid end to end with max_lag + 1 unobserved bins between them so no lag pairs two windows."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from plait.align.frames import US_PER_S

SEGMENT_GAP_S = 1.0  # readings further apart than this (and 10 sampling intervals) end a segment


@dataclass(frozen=True)
class Windows:
    """Where two streams of one entity share data: W windows on the global bin grid (bin i covers
    origin_us + i · bin_us), laid end to end with `gap` unobserved bins between them."""

    origin_us: int
    bin_us: float
    first_bin: np.ndarray  # (W,) global grid index of each window's first bin
    n_bins: np.ndarray  # (W,) bins per window
    gap: int  # separator bins between windows (max_lag + 1): no lag reaches across
    shared_s: float  # A's recorded time within ±max_offset_s of B's

    @property
    def total(self) -> int:
        """Bins of the laid-out envelope, separators included."""
        return int(self.n_bins.sum()) + self.gap * max(len(self.n_bins) - 1, 0)

    def layout(self, t_us: np.ndarray) -> np.ndarray:
        """The laid-out bin of each time, −1 outside every window: (N,) -> (N,)."""
        if len(self.first_bin) == 0:
            return np.full(len(t_us), -1, dtype=np.int64)
        grid = np.floor((t_us - self.origin_us) / self.bin_us).astype(np.int64)
        w = np.searchsorted(self.first_bin, grid, side="right") - 1
        wc = w.clip(min=0)
        inside = (w >= 0) & (grid < self.first_bin[wc] + self.n_bins[wc])
        start = np.concatenate([[0], np.cumsum(self.n_bins[:-1] + self.gap)])  # (W,) laid-out
        return np.where(inside, start[wc] + grid - self.first_bin[wc], -1)

    def grid_of_bins(self) -> tuple[np.ndarray, np.ndarray]:
        """(global grid index, inside a window) of every laid-out bin: (total,) each."""
        runs = np.stack([self.n_bins, np.full(len(self.n_bins), self.gap)], axis=1).ravel()[:-1]
        run_of = np.repeat(np.arange(len(runs)), runs)  # even runs are windows, odd ones separators
        starts = np.stack([self.first_bin, self.first_bin + self.n_bins], axis=1).ravel()[:-1]
        offset = np.arange(len(run_of)) - np.repeat(np.cumsum(runs) - runs, runs)
        return starts[run_of] + offset, run_of % 2 == 0


def shared_windows(a_us: np.ndarray, b_us: np.ndarray, *, max_offset_s: float, rate_hz: float) -> Windows:
    """The windows where readings at times `a_us` and `b_us` (µs) can meet at a lag within
    ±max_offset_s: interval arithmetic on their segments, no envelope yet."""
    bin_us = US_PER_S / rate_hz
    max_us = round(max_offset_s * US_PER_S)
    reach_us = max_us + 2 * math.ceil(bin_us)  # a lag of K bins spans up to K + 1 bins of time
    seg_a, seg_b = _segments(a_us), _segments(b_us)
    near = _intersect(_dilate(seg_a, reach_us), _dilate(seg_b, reach_us))
    hull_s, hull_e = _hulls(_merge(np.r_[seg_a[0], seg_b[0]], np.r_[seg_a[1], seg_b[1]]), near)
    shared_start, shared_end = _intersect(seg_a, _dilate(seg_b, max_us))  # A's readings B can meet
    a0 = int(seg_a[0][0])
    origin = min(a0, max(int(seg_b[0][0]), a0 - max_us))  # the grid phase of a whole-span grid
    gap = max_lag(max_offset_s, rate_hz) + 1
    first = np.floor((hull_s - origin) / bin_us).astype(np.int64)
    end = np.floor((hull_e - origin) / bin_us).astype(np.int64) + 1
    first, end = _merge(first, end + gap)  # windows closer than a separator are one window
    shared_s = float((shared_end - shared_start).sum()) / US_PER_S
    return Windows(origin, bin_us, first, end - gap - first, gap, shared_s)


def _segments(t_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) in µs of a stream's observed segments; each reading lasts one sampling step."""
    t = np.unique(t_us)  # sorted
    steps = np.diff(t)
    step = int(np.median(steps)) if len(steps) else 0
    breaks = np.flatnonzero(steps > max(SEGMENT_GAP_S * US_PER_S, 10 * step))
    return t[np.r_[0, breaks + 1]], t[np.r_[breaks, len(t) - 1]] + step


def _dilate(x: tuple[np.ndarray, np.ndarray], by_us: int) -> tuple[np.ndarray, np.ndarray]:
    return _merge(x[0] - by_us, x[1] + by_us)


def _merge(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of intervals as sorted disjoint ones; touching intervals become one."""
    if len(starts) == 0:
        return starts, ends
    order = np.argsort(starts, kind="stable")
    s, run_end = starts[order], np.maximum.accumulate(ends[order])
    first = np.flatnonzero(np.r_[True, s[1:] > run_end[:-1]])
    return s[first], run_end[np.r_[first[1:] - 1, len(s) - 1]]


def _intersect(
    x: tuple[np.ndarray, np.ndarray], y: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Where two sets of sorted disjoint intervals both hold, by a sweep over their edges."""
    edges = np.concatenate([x[0], x[1], y[0], y[1]])
    n_x, n_y = len(x[0]), len(y[0])
    in_x = np.concatenate([np.ones(n_x), -np.ones(n_x), np.zeros(2 * n_y)])
    in_y = np.concatenate([np.zeros(2 * n_x), np.ones(n_y), -np.ones(n_y)])
    order = np.argsort(edges, kind="stable")
    edges = edges[order]
    both = (np.cumsum(in_x[order]) > 0) & (np.cumsum(in_y[order]) > 0)  # after each edge
    piece = np.flatnonzero(both[:-1] & (edges[1:] > edges[:-1]))
    return _merge(edges[piece], edges[piece + 1])


def _hulls(
    data: tuple[np.ndarray, np.ndarray], near: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Per interval of `near`, the span from its first to its last bit of `data` (none: dropped)."""
    s, e = _intersect(data, near)
    if len(s) == 0:
        return s, e
    owner = np.searchsorted(near[0], s, side="right") - 1
    first = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    return s[first], e[np.r_[first[1:] - 1, len(s) - 1]]


def max_lag(max_offset_s: float, rate_hz: float) -> int:
    return max(1, math.floor(max_offset_s * rate_hz))
