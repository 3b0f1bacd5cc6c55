"""The alignment report: per stream, what was there, what was filled, what was missing, and what
was wrong with the input — as JSON and as lines for the terminal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

from plait.align.frames import ABSENT, IMPUTED, KEY, OBSERVED, SEGMENT, T_US, US_PER_S, LoadStats, status_col
from plait.align.paths import OUTSIDE_ROOT


@dataclass(frozen=True)
class StreamReport:
    name: str
    kind: str
    anchors: int
    observed: int
    imputed: int
    absent: int
    gap_p50_s: float | None  # gaps between consecutive samples of an entity (within a clock segment)
    gap_p95_s: float | None
    gap_max_s: float | None
    load: LoadStats
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def coverage_pct(self) -> float:
        return 100.0 * (self.observed + self.imputed) / self.anchors if self.anchors else 0.0

    def pct(self, count: int) -> float:
        return 100.0 * count / self.anchors if self.anchors else 0.0

    def anomalies(self) -> dict[str, int]:
        s = self.load
        found = {
            "unsorted": s.unsorted,
            "duplicates": s.duplicates,
            "clock jumps": s.jumps,
            "non-finite readings": s.non_finite,
            "unreadable times": s.unreadable,
            OUTSIDE_ROOT: s.outside_root,
        }
        return {k: v for k, v in found.items() if v}

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "anchors": self.anchors,
            "observed": self.observed,
            "imputed": self.imputed,
            "absent": self.absent,
            "coverage_pct": round(self.coverage_pct, 3),
            "observed_pct": round(self.pct(self.observed), 3),
            "imputed_pct": round(self.pct(self.imputed), 3),
            "absent_pct": round(self.pct(self.absent), 3),
            "gap_s": {"p50": self.gap_p50_s, "p95": self.gap_p95_s, "max": self.gap_max_s},
            "load": {**asdict(self.load), "examples": {k: list(v) for k, v in self.load.examples.items()}},
            "anomalies": self.anomalies(),
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class AlignmentReport:
    anchors: int  # anchors asked for
    rows: int  # rows in the sample table (anchors minus dropped ones)
    streams: tuple[StreamReport, ...]
    dropped: Mapping[str, int] = field(default_factory=dict)  # reason → anchors dropped
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "anchors": self.anchors,
            "rows": self.rows,
            "dropped": dict(self.dropped),
            "notes": list(self.notes),
            "streams": [s.to_json() for s in self.streams],
        }

    def summary_rows(self) -> list[tuple[str, ...]]:
        """stream, kind, coverage %, imputed %, absent %, gap p50/p95/max, anomalies — one row per stream."""
        rows: list[tuple[str, ...]] = []
        for s in self.streams:
            gaps = " / ".join(human_seconds(g) for g in (s.gap_p50_s, s.gap_p95_s, s.gap_max_s))
            anomalies = ", ".join(f"{v} {k}" for k, v in s.anomalies().items()) or "none"
            rows.append(
                (
                    s.name,
                    s.kind,
                    f"{s.coverage_pct:.1f}",
                    f"{s.pct(s.imputed):.1f}",
                    f"{s.pct(s.absent):.1f}",
                    gaps,
                    anomalies,
                )
            )
        return rows


def human_seconds(seconds: float | None) -> str:
    """5 ms, 2.4 s, 12 min, 3.1 h, 14.9 d — a gap read at a glance."""
    if seconds is None:
        return "—"
    for limit, unit, scale in (
        (1.0, "ms", 1e-3),
        (120.0, "s", 1.0),
        (7200.0, "min", 60.0),
        (172800.0, "h", 3600.0),
    ):
        if seconds < limit:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 86400.0:.3g} d"


def status_counts(columns: pl.DataFrame, stream: str) -> dict[str, int]:
    counts = columns[status_col(stream)].value_counts()
    found = {str(row[0]): int(row[1]) for row in counts.iter_rows()}
    return {status: found.get(status, 0) for status in (OBSERVED, IMPUTED, ABSENT)}


def gap_percentiles(frame: pl.DataFrame) -> tuple[float | None, float | None, float | None]:
    """p50, p95 and max of the time between consecutive samples of one entity and clock segment."""
    return percentiles_of_gaps(gap_counts(frame))


GAP_US, GAP_N = "gap_us", "n"


def gap_counts(frame: pl.DataFrame) -> pl.DataFrame:
    """How often each gap (µs) between consecutive samples of one entity and clock segment occurs:
    (gap_us, n), sorted by gap. Counts of parts of a stream (whole entities, or rows each counted in
    one part with the gap to the row before) add up to the counts of the whole stream."""
    if frame.height < 2:
        return pl.DataFrame(schema={GAP_US: pl.Int64, GAP_N: pl.Int64})
    by = [KEY, SEGMENT] if SEGMENT in frame.columns else [KEY]
    gaps = frame.select(pl.col(T_US).diff().over(by).alias(GAP_US)).drop_nulls()
    return merge_gap_counts([gaps.group_by(GAP_US).agg(pl.len().cast(pl.Int64).alias(GAP_N))])


def merge_gap_counts(parts: list[pl.DataFrame]) -> pl.DataFrame:
    if not parts:
        return pl.DataFrame(schema={GAP_US: pl.Int64, GAP_N: pl.Int64})
    return pl.concat(parts).group_by(GAP_US).agg(pl.col(GAP_N).sum()).sort(GAP_US)


def percentiles_of_gaps(counts: pl.DataFrame) -> tuple[float | None, float | None, float | None]:
    """p50, p95 and max of the gaps that `counts` tallies, exactly as numpy's linear percentile of
    the whole array of gaps in seconds would give them, without that array."""
    n = int(counts[GAP_N].sum()) if counts.height else 0
    if n == 0:
        return None, None, None
    values = counts[GAP_US].to_numpy().astype(np.float64) / US_PER_S  # (U,) sorted
    ends = np.cumsum(counts[GAP_N].to_numpy())  # (U,) one past the last sorted position of each value

    def at(k: np.ndarray) -> np.ndarray:  # the k-th smallest gap
        return values[np.searchsorted(ends, k, side="right")]

    q = np.true_divide(np.array([50.0, 95.0]), 100)
    virtual = (n - 1) * q  # numpy's "linear" method: index, neighbours, weight, then _lerp
    previous = np.floor(virtual)
    following = previous + 1
    last = virtual >= n - 1
    previous[last], following[last] = n - 1, n - 1
    gamma = virtual - np.floor(virtual)
    a, b = at(previous.astype(np.int64)), at(following.astype(np.int64))
    diff = b - a
    result = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)
    return round(float(result[0]), 6), round(float(result[1]), 6), round(float(values[-1]), 6)
