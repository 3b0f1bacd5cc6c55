"""Clock offset estimation: how far one stream's clock is from another's, from one physical event
seen by both (`plait align --estimate-offset A B`).

Each stream becomes an *energy envelope* on a common grid of `rate_hz` bins; the envelopes are
cross-correlated (FFT) over lags within ±max_offset_s, and the best lag is refined to a fraction of
a bin by a parabola through the peak.

Sign convention — the one the config uses (`true time = stream time + offset_s`): `offset_s` is
the number of seconds to ADD to stream B's times so that they line up with stream A. If a bang
happens at A-time 10.00 s and B's clock says 9.63 s, the estimate is +0.37 s, which is exactly what
goes into B's `offset_s` (A being the reference). Stream frames (frames.py) already carry the
configured offsets in `t_us`, so an estimate made on them is a *correction*: the new config value
is the old one plus the estimate.

The correlation is Pearson's r over the bins both streams observe at that lag (masked normalised
cross-correlation), so gaps and partial overlap do not bias it. Confidence (0..1) says how far the
peak stands above its best rival: (peak − rival) / (peak − baseline), where baseline is the median
r over the searched lags, and rival is the larger of the highest r outside the peak's lobe and the
chance level (baseline + √(2 ln N)·σ, the expected largest of N chance correlations, σ a robust
spread of r over the lags). Repeating events (ambiguous lag) and pure noise both score low.

Cost follows the data the two streams share, not the calendar they span: each stream's readings
are cut into observed segments (a break wherever readings stop for over SEGMENT_GAP_S, or ten
sampling intervals), and envelopes are built only over the *shared windows* — the stretches
within ±max_offset_s of both streams' segments, trimmed to where either has readings. The windows
are laid end to end with max_lag + 1 unobserved bins between them, so no lag pairs bins of two
windows, and one FFT per entity costs O(shared bins · log) instead of O(span · log). No pair of
readings within ±max_offset_s of each other is lost: every time between them lies in a window.
Normalisation (median floor, z-score) is over the observed bins of the windows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from plait.align.frames import KEY, T_US, US_PER_S
from plait.align.windows import Windows, max_lag, shared_windows
from plait.errors import AlignmentError, ConfigError, DataError

RELIABLE_CONFIDENCE = 0.5  # `reliable` needs at least this confidence …
MIN_OVERLAP_S = 10.0  # … and at least this much common observed time (default)
MIN_SHARED_S = 3.0  # below this much shared recording (default) the estimate is refused
MIN_LAG_OVERLAP = 0.5  # a lag is searched only if its overlap is ≥ this share of the best lag's
ALL_KEYS = "*"  # the result key of a pooled (per_key=False) estimate
_LOG_FLOOR = 1e-3  # log(energy + floor), floor = this × the median non-zero bin energy
_OUTSIDE = -2.0  # r of lags not searched (below any Pearson r)
PROGRESS_EVERY_S = 2.0  # at most one progress line this often (and one at the end)

Say = Callable[[str], None]


@dataclass(frozen=True, eq=False)
class EnvelopeSource:
    """One stream of one entity: `t_us` (N,) Int64 microseconds and `values` (N,) or (N, C)."""

    t_us: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class OffsetEstimate:
    offset_s: float  # seconds to ADD to stream B's times to line up with A (B's config offset_s)
    confidence: float  # 0..1, how far the peak stands above its best rival (module docstring)
    peak_correlation: float  # Pearson r of the envelopes at the chosen lag
    resolution_s: float  # lag grid step, 1 / rate_hz (the peak is refined below it)
    overlap_s: float  # common observed time the estimate rests on, at the chosen lag
    reliable: bool  # confidence ≥ RELIABLE_CONFIDENCE, overlap ≥ min_overlap_s, peak not at the limit
    at_limit: bool = False  # peak on the edge of the searched lags (±max_offset_s): may lie beyond
    shared_s: float = 0.0  # A's recorded time within ±max_offset_s of B's (what could be compared)
    segments: int = 0  # shared windows the envelopes were built over (summed over entities)
    envelope_bins: int = 0  # envelope bins computed per stream, separators included: the cost


@dataclass(frozen=True)
class _LagSums:
    """Per-lag sums (lags −K..K) from which Pearson r over the common bins follows; they add across
    entities, which is how a pooled estimate sums correlations across keys."""

    ab: np.ndarray
    a: np.ndarray  # Σ A over the bins where B is observed
    b: np.ndarray
    aa: np.ndarray
    bb: np.ndarray
    n: np.ndarray  # bins both observe
    shared_s: float = 0.0  # what the windows held (OffsetEstimate.shared_s, .segments, .envelope_bins)
    segments: int = 0
    bins: int = 0

    def __add__(self, other: _LagSums) -> _LagSums:
        fields = ("ab", "a", "b", "aa", "bb", "n", "shared_s", "segments", "bins")
        return _LagSums(*(getattr(self, f) + getattr(other, f) for f in fields))


def energy_envelope(
    t_us: np.ndarray, values: np.ndarray, *, rate_hz: float, start_us: int, end_us: int
) -> np.ndarray:
    """The short-time energy of a signal on the grid start_us + i / rate_hz, i < ceil(span · rate_hz).

    Energy per reading is the sum over channels of the squared, mean-removed value (for audio: the
    squared sample); a bin holds the mean energy of its readings. Normalisation: z-score of
    log(energy + floor) over the observed bins (floor = 1e-3 × the median non-zero bin energy), so streams of
    any unit and loudness compare and one huge event does not drown the rest. Bins with no reading
    — gaps, and time the stream does not cover — are 0 (the mean: no evidence either way); a grid
    finer than the signal's own sampling is filled by interpolation between readings instead.
    Readings with a NaN/Inf value are gaps.
    """
    _check_positive(rate_hz, "rate_hz")
    bin_us = US_PER_S / rate_hz
    n_bins = max(0, math.ceil((end_us - start_us) / bin_us))
    one = Windows(start_us, bin_us, np.zeros(1, np.int64), np.full(1, n_bins, np.int64), 0, 0.0)
    env, _ = _envelope(t_us, values, one)
    return env


def estimate_offset(
    a: EnvelopeSource,
    b: EnvelopeSource,
    *,
    max_offset_s: float,
    rate_hz: float = 50.0,
    min_overlap_s: float = MIN_OVERLAP_S,
    min_shared_s: float = MIN_SHARED_S,
) -> OffsetEstimate:
    """The offset to add to B's times to line up with A, searched within ±max_offset_s.
    Refused (AlignmentError) when A has under min_shared_s of readings within ±max_offset_s of B's."""
    windows = _shared_windows(a, b, max_offset_s=max_offset_s, rate_hz=rate_hz, what="streams")
    _check_shared({"": windows}, per_key=False, min_shared_s=min_shared_s, max_offset_s=max_offset_s)
    sums = _source_sums(a, b, windows, max_lag=max_lag(max_offset_s, rate_hz))
    return _estimate(sums, rate_hz=rate_hz, min_overlap_s=min_overlap_s, what="streams")


def estimate_stream_offset(
    a: pl.DataFrame,
    b: pl.DataFrame,
    value_columns_a: Sequence[str],
    value_columns_b: Sequence[str],
    *,
    per_key: bool,
    max_offset_s: float,
    rate_hz: float = 50.0,
    min_overlap_s: float = MIN_OVERLAP_S,
    min_shared_s: float = MIN_SHARED_S,
    names: tuple[str, str] = ("A", "B"),
    say: Say | None = None,
) -> dict[str, OffsetEstimate]:
    """Offsets between two cleaned stream frames (columns key, t_us and the value columns).

    per_key: one estimate per entity both streams have (keys sorted); otherwise one estimate under
    ALL_KEYS ("*") from the correlations summed over those entities (one clock for all of them).
    Entities only one stream has are skipped. Clock segments are not separated: times are taken
    as they stand in `t_us`. Audio frames list files, not samples: the caller decodes them into a
    (key, t_us, sample) frame. Refused (AlignmentError) when the streams share under min_shared_s
    of recording (in all, or for an entity when per_key), before any envelope is built. `say`
    hears a line before the envelopes and one every PROGRESS_EVERY_S and at the end; `names` name
    the streams in messages.
    """
    sources_a = _sources(a, value_columns_a, names[0])
    sources_b = _sources(b, value_columns_b, names[1])
    common = sorted(set(sources_a) & set(sources_b))
    if not common:
        raise AlignmentError(
            f"no entity appears in both streams ({names[0]}: {_some(sources_a)}; "
            f"{names[1]}: {_some(sources_b)}); offsets are estimated per entity both streams observe "
            "— check the key columns"
        )
    windows = {
        key: _shared_windows(
            sources_a[key], sources_b[key], max_offset_s=max_offset_s, rate_hz=rate_hz, what=f"entity {key!r}"
        )
        for key in common
    }
    _check_shared(windows, per_key=per_key, min_shared_s=min_shared_s, max_offset_s=max_offset_s, names=names)
    sums = _entity_sums(sources_a, sources_b, windows, max_lag(max_offset_s, rate_hz), names, say)
    if per_key:
        return {
            k: _estimate(s, rate_hz=rate_hz, min_overlap_s=min_overlap_s, what=f"entity {k!r}")
            for k, s in sums.items()
        }
    pooled = sums[common[0]]
    for key in common[1:]:
        pooled = pooled + sums[key]
    return {ALL_KEYS: _estimate(pooled, rate_hz=rate_hz, min_overlap_s=min_overlap_s, what="all entities")}


def _entity_sums(
    sources_a: Mapping[str, EnvelopeSource],
    sources_b: Mapping[str, EnvelopeSource],
    windows: Mapping[str, Windows],
    max_lag: int,
    names: tuple[str, str],
    say: Say | None,
) -> dict[str, _LagSums]:
    """Each entity's lag sums, with progress lines: counts, bins done and time elapsed."""
    total = sum(w.total for w in windows.values())
    shared_s = sum(w.shared_s for w in windows.values())
    if say is not None:
        say(
            f"offset of {names[1]} against {names[0]}: {_count(len(windows), 'entity', 'entities')}, "
            f"{_count(sum(len(w.n_bins) for w in windows.values()), 'stretch', 'stretches')}, "
            f"{shared_s:,.1f} s shared"
        )
    started = last = time.monotonic()
    done = 0
    out: dict[str, _LagSums] = {}
    for i, (key, w) in enumerate(windows.items(), start=1):
        out[key] = _source_sums(sources_a[key], sources_b[key], w, max_lag=max_lag)
        done += w.total
        now = time.monotonic()
        if say is not None and (i == len(windows) or now - last >= PROGRESS_EVERY_S):
            say(
                f"  {i}/{len(windows)} entities, {done:,}/{total:,} envelope bins, "
                f"{now - started:.1f} s elapsed"
            )
            last = now
    return out


def _check_shared(
    windows: Mapping[str, Windows],
    *,
    per_key: bool,
    min_shared_s: float,
    max_offset_s: float,
    names: tuple[str, str] = ("A", "B"),
) -> None:
    """Refuse before any envelope is built when the streams share too little to estimate from."""
    if not (isinstance(min_shared_s, (int, float)) and math.isfinite(min_shared_s) and min_shared_s >= 0):
        raise ConfigError(f"min_shared_s: expected a finite number >= 0, got {min_shared_s!r}")
    if per_key:
        short = [k for k, w in windows.items() if w.shared_s < min_shared_s or w.shared_s == 0.0]
        if not short:
            return
        chosen = [windows[short[0]]]
        others = (
            f" (and {_count(len(short) - 1, 'other entity', 'other entities')})" if len(short) > 1 else ""
        )
        where = f" for entity {short[0]!r}{others}"
    else:
        chosen = list(windows.values())
        where = f" over {_count(len(windows), 'entity', 'entities')}" if "" not in windows else ""
    shared_s = sum(w.shared_s for w in chosen)
    if shared_s >= min_shared_s and shared_s > 0.0:  # nothing shared is refused even at 0
        return
    stretches = _count(sum(len(w.n_bins) for w in chosen), "stretch", "stretches")
    raise AlignmentError(
        f"{names[0]} and {names[1]} share {shared_s:.1f} s of recording (readings of {names[0]} within "
        f"±{max_offset_s:g} s of {names[1]}'s){where} in {stretches}; the estimate needs at least "
        f"{min_shared_s:g} s: record longer overlaps, widen max_offset_s if the clocks may be further "
        "apart, or set offset_s by hand"
    )


def _shared_windows(
    a: EnvelopeSource, b: EnvelopeSource, *, max_offset_s: float, rate_hz: float, what: str
) -> Windows:
    """The stretches where A and B can meet at some lag within ±max_offset_s (windows.py)."""
    _check_positive(max_offset_s, "max_offset_s")
    _check_positive(rate_hz, "rate_hz")
    for name, src in (("A", a), ("B", b)):
        if len(src.t_us) == 0:
            raise AlignmentError(f"{what}: stream {name} has no readings; nothing to estimate an offset from")
    return shared_windows(
        np.asarray(a.t_us, np.int64), np.asarray(b.t_us, np.int64), max_offset_s=max_offset_s, rate_hz=rate_hz
    )


def _envelope(t_us: np.ndarray, values: np.ndarray, windows: Windows) -> tuple[np.ndarray, np.ndarray]:
    """(envelope, observed mask) over the laid-out windows, both (windows.total,)."""
    n_bins = windows.total
    t, energy = _energy(np.asarray(t_us, dtype=np.int64), np.asarray(values, dtype=np.float64))
    bins = windows.layout(t)
    inside = bins >= 0
    counts = np.bincount(bins[inside], minlength=n_bins)
    total = np.bincount(bins[inside], weights=energy[inside], minlength=n_bins)
    observed = counts > 0
    if not observed.any():
        return np.zeros(n_bins), observed
    mean = np.where(observed, total / np.maximum(counts, 1), 0.0)
    positive = mean[observed & (mean > 0.0)]  # digital silence (exact zeros) must not set the floor
    floor = _LOG_FLOOR * float(np.median(positive)) if len(positive) else 1.0
    log_e = np.log(mean + floor)
    log_e, observed = _fill_sparse(log_e, observed, t, windows)
    spread = float(log_e[observed].std())
    if spread == 0.0:  # a constant signal carries no timing information
        return np.zeros(n_bins), observed
    env = np.where(observed, (log_e - log_e[observed].mean()) / spread, 0.0)
    return env, observed


def _energy(t: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = values.reshape(len(values), -1)  # (N,) or (N, C) -> (N, C)
    if len(v) != len(t):
        raise DataError(
            f"energy envelope: {len(t)} timestamps but {len(v)} value rows; give one row per time"
        )
    finite = np.isfinite(v).all(axis=1)
    t, v = t[finite], v[finite]
    if len(v) == 0:
        return t, np.zeros(0)
    v = v - v.mean(axis=0)  # a constant level (gravity, DC) is not energy
    return t, (v * v).sum(axis=1)


def _fill_sparse(
    log_e: np.ndarray, observed: np.ndarray, t: np.ndarray, windows: Windows
) -> tuple[np.ndarray, np.ndarray]:
    """Bins empty only because the signal is sampled more slowly than the grid are interpolated;
    a hole longer than twice the signal's usual sampling interval stays a gap, and the separators
    between windows stay empty."""
    if len(t) < 2:
        return log_e, observed
    bin_us = windows.bin_us
    step_us = float(np.median(np.diff(np.sort(t))))
    if step_us <= bin_us:
        return log_e, observed
    grid, in_window = windows.grid_of_bins()  # holes are measured in time, not in laid-out bins
    idx = np.flatnonzero(observed)
    pos = np.arange(len(log_e))
    nxt = np.searchsorted(idx, pos).clip(max=len(idx) - 1)
    prv = (np.searchsorted(idx, pos, side="right") - 1).clip(min=0)
    hole_us = (grid[idx[nxt]] - grid[idx[prv]]) * bin_us
    fill = ~observed & in_window & (idx[prv] < pos) & (pos < idx[nxt]) & (hole_us <= 2 * step_us + bin_us)
    filled = np.where(fill, np.interp(pos, idx, log_e[idx]), log_e)
    return filled, observed | fill


def _source_sums(a: EnvelopeSource, b: EnvelopeSource, windows: Windows, *, max_lag: int) -> _LagSums:
    env_a, mask_a = _envelope(a.t_us, a.values, windows)  # (windows.total,) each
    env_b, mask_b = _envelope(b.t_us, b.values, windows)
    sums = _lag_sums(env_a, mask_a.astype(np.float64), env_b, mask_b.astype(np.float64), max_lag)
    return replace(sums, shared_s=windows.shared_s, segments=len(windows.n_bins), bins=windows.total)


def _lag_sums(
    env_a: np.ndarray, m_a: np.ndarray, env_b: np.ndarray, m_b: np.ndarray, max_lag: int
) -> _LagSums:
    """Σ_t x[t]·y[t − k] for lags k = −max_lag..max_lag, for the six products Pearson r needs."""
    size = 1 << int(len(env_a) + max_lag + 1).bit_length()  # zero padding: no circular wrap
    f_a, f_aa, f_ma = (np.fft.rfft(x, size) for x in (env_a, env_a * env_a, m_a))
    f_b, f_bb, f_mb = (np.conj(np.fft.rfft(y, size)) for y in (env_b, env_b * env_b, m_b))
    lags = np.arange(-max_lag, max_lag + 1) % size

    def corr(fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
        return np.fft.irfft(fx * fy, size)[lags]  # (size,) -> (2K+1,)

    n = np.rint(corr(f_ma, f_mb))  # counts: exact after rounding away FFT round-off
    return _LagSums(corr(f_a, f_b), corr(f_a, f_mb), corr(f_ma, f_b), corr(f_aa, f_mb), corr(f_ma, f_bb), n)


def _estimate(sums: _LagSums, *, rate_hz: float, min_overlap_s: float, what: str) -> OffsetEstimate:
    max_lag = (len(sums.n) - 1) // 2
    n_best = float(sums.n.max())
    eligible = (sums.n >= MIN_LAG_OVERLAP * n_best) & (sums.n >= 3)
    if not eligible.any():
        raise AlignmentError(
            f"{what}: streams A and B observe too little common time to compare (fewer than 3 bins); "
            "widen max_offset_s or choose a longer stretch of data"
        )
    r = np.where(eligible, _pearson(sums), _OUTSIDE)
    peak = int(np.argmax(r))  # first maximum: deterministic on ties
    searched = np.flatnonzero(eligible)
    at_limit = peak in (searched[0], searched[-1])
    inner = not at_limit and bool(eligible[peak - 1] and eligible[peak + 1])
    shift = _parabola(r[peak - 1], r[peak], r[peak + 1]) if inner else 0.0
    confidence = _confidence(r, peak, eligible)
    overlap_s = float(sums.n[peak]) / rate_hz
    return OffsetEstimate(
        offset_s=(peak - max_lag + shift) / rate_hz,
        confidence=confidence,
        peak_correlation=float(r[peak]),
        resolution_s=1.0 / rate_hz,
        overlap_s=overlap_s,
        reliable=confidence >= RELIABLE_CONFIDENCE and overlap_s >= min_overlap_s and not at_limit,
        at_limit=bool(at_limit),
        shared_s=float(sums.shared_s),
        segments=int(sums.segments),
        envelope_bins=int(sums.bins),
    )


def _pearson(s: _LagSums) -> np.ndarray:
    n = np.maximum(s.n, 1.0)
    cov = s.ab - s.a * s.b / n
    var_a = np.maximum(s.aa - s.a * s.a / n, 0.0)
    var_b = np.maximum(s.bb - s.b * s.b / n, 0.0)
    den = np.sqrt(var_a * var_b)
    ok = den > 1e-9 * np.maximum(n, 1.0)  # a flat overlap has no correlation to speak of
    return np.where(ok, cov / np.where(ok, den, 1.0), 0.0).clip(-1.0, 1.0)


def _parabola(left: float, mid: float, right: float) -> float:
    """Vertex of the parabola through three equally spaced points, in steps from the middle one."""
    curve = left - 2.0 * mid + right
    if curve >= 0.0:  # not a maximum (flat top): keep the grid point
        return 0.0
    return float(np.clip(0.5 * (left - right) / curve, -0.5, 0.5))


def _confidence(r: np.ndarray, peak: int, eligible: np.ndarray) -> float:
    lo, hi = _lobe(r, peak)
    outside = eligible.copy()
    outside[lo : hi + 1] = False
    values = r[eligible]
    baseline = float(np.median(values))
    sigma = 1.4826 * float(np.median(np.abs(values - baseline)))  # robust std of chance r
    chance = baseline + math.sqrt(2.0 * math.log(max(len(values), 2))) * sigma
    rival = max(float(r[outside].max()) if outside.any() else chance, chance)
    height = float(r[peak]) - baseline
    if height <= 0.0:
        return 0.0
    return float(np.clip((float(r[peak]) - rival) / height, 0.0, 1.0))


def _lobe(r: np.ndarray, peak: int) -> tuple[int, int]:
    """The peak's main lobe: from the peak down to the first local minimum on either side."""
    right = np.diff(r[peak:])  # descending while < 0
    left = np.diff(r[: peak + 1][::-1])
    stop_r = np.flatnonzero(right >= 0.0)
    stop_l = np.flatnonzero(left >= 0.0)
    hi = peak + (int(stop_r[0]) if len(stop_r) else len(right))
    lo = peak - (int(stop_l[0]) if len(stop_l) else len(left))
    return lo, hi


def _sources(frame: pl.DataFrame, columns: Sequence[str], name: str) -> dict[str, EnvelopeSource]:
    if not columns:
        raise ConfigError(f"stream {name}: no value columns given; name the channels whose energy to use")
    missing = [c for c in (KEY, T_US, *columns) if c not in frame.columns]
    if missing:
        raise DataError(
            f"stream {name}: frame lacks column(s) {missing}; it has {frame.columns}. "
            "Pass a cleaned stream frame (key, t_us, values) and its value column names"
        )
    out: dict[str, EnvelopeSource] = {}
    for (key,), part in frame.partition_by(KEY, as_dict=True, maintain_order=True).items():
        values = part.select([pl.col(c).cast(pl.Float64) for c in columns]).to_numpy()
        out[str(key)] = EnvelopeSource(t_us=part[T_US].to_numpy(), values=values)
    return out


def _some(sources: Mapping[str, EnvelopeSource]) -> str:
    keys = sorted(sources)
    return ", ".join(repr(k) for k in keys[:5]) + (", …" if len(keys) > 5 else "") if keys else "none"


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def _check_positive(value: float, name: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{name}: expected a positive finite number, got {value!r}")
