from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from plait.align.offset import (
    ALL_KEYS,
    RELIABLE_CONFIDENCE,
    EnvelopeSource,
    energy_envelope,
    estimate_offset,
    estimate_stream_offset,
)
from plait.align.offset_write import write_offset
from plait.errors import AlignmentError, ConfigError

EPOCH_US = 1_772_000_000_000_000  # 2026: times far from 0, as real ones are
DUR_S = 30.0
STEP_S = 1 / 50.0  # the default grid


def _events(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """True times (s) and strengths of n bangs both streams hear."""
    return np.sort(rng.uniform(1.0, DUR_S - 1.0, n)), rng.uniform(0.5, 2.0, n)


def _sensor(
    rng: np.random.Generator,
    events: tuple[np.ndarray, np.ndarray],
    *,
    clock_s: float = 0.0,
    hz: float = 200.0,
) -> EnvelopeSource:
    """A jittered 3-axis accelerometer (gravity on z) ringing at 30 Hz after each event; its clock
    reads true time − clock_s, so clock_s is the offset to add to line it up."""
    t = np.arange(0.0, DUR_S, 1 / hz) + rng.normal(0.0, 0.1 / hz, round(DUR_S * hz))
    x = rng.normal(0.0, 0.3, (len(t), 3)) + np.array([0.0, 0.0, 9.81])
    for te, amp in zip(*events, strict=True):
        x += (amp * np.exp(-0.5 * ((t - te) / 0.08) ** 2) * np.sin(2 * np.pi * 30 * t))[:, None]
    return EnvelopeSource(_us(t - clock_s), x)


def _audio(
    rng: np.random.Generator,
    events: tuple[np.ndarray, np.ndarray],
    *,
    clock_s: float = 0.0,
    hz: float = 8000.0,
) -> EnvelopeSource:
    t = np.arange(0.0, DUR_S, 1 / hz)
    x = rng.normal(0.0, 0.05, len(t))
    for te, amp in zip(*events, strict=True):
        near = np.abs(t - te) < 0.5
        x[near] += amp * np.exp(-0.5 * ((t[near] - te) / 0.05) ** 2) * np.sin(2 * np.pi * 440 * t[near])
    return EnvelopeSource(_us(t - clock_s), x)


def _us(seconds: np.ndarray) -> np.ndarray:
    return EPOCH_US + np.round(seconds * 1e6).astype(np.int64)


@pytest.mark.parametrize("clock_s", [0.37, -1.2])
def test_offset_recovered_with_the_config_sign(clock_s: float) -> None:
    rng = np.random.default_rng(7)
    events = _events(rng, 12)
    a = _sensor(rng, events)
    b = _audio(rng, events, clock_s=clock_s)  # B's clock is clock_s behind true (A) time
    est = estimate_offset(a, b, max_offset_s=3.0)
    assert abs(est.offset_s - clock_s) <= STEP_S
    assert est.confidence >= 0.6 and est.reliable and not est.at_limit
    assert est.peak_correlation > 0.5
    assert est.resolution_s == pytest.approx(STEP_S)
    assert est.overlap_s == pytest.approx(DUR_S, abs=2 * STEP_S)  # all of A: B covers the same span
    # the meaning of the sign: B's time of the first bang + offset_s = A's time of it
    first_b = (events[0][0] - clock_s) + est.offset_s
    assert abs(first_b - events[0][0]) <= STEP_S


def test_swapping_the_streams_flips_the_sign() -> None:
    rng = np.random.default_rng(8)
    events = _events(rng, 12)
    a, b = _sensor(rng, events), _audio(rng, events, clock_s=0.37)
    forward = estimate_offset(a, b, max_offset_s=2.0)
    backward = estimate_offset(b, a, max_offset_s=2.0)
    assert forward.offset_s == pytest.approx(-backward.offset_s, abs=STEP_S)


def test_subsample_refinement_beats_the_grid() -> None:
    rng = np.random.default_rng(9)
    events = _events(rng, 15)
    errors = []
    for clock_s in (0.31, 0.325, 0.339):  # between grid points
        b = _audio(rng, events, clock_s=clock_s)
        errors.append(abs(estimate_offset(_sensor(rng, events), b, max_offset_s=1.0).offset_s - clock_s))
    assert max(errors) < STEP_S / 2


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_pure_noise_is_not_reliable(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    no_events = _events(rng, 0)
    est = estimate_offset(_sensor(rng, no_events), _audio(rng, no_events), max_offset_s=3.0)
    assert est.confidence < RELIABLE_CONFIDENCE / 2
    assert not est.reliable


def test_unrelated_events_are_not_reliable() -> None:
    rng = np.random.default_rng(5)
    est = estimate_offset(_sensor(rng, _events(rng, 12)), _audio(rng, _events(rng, 12)), max_offset_s=3.0)
    assert not est.reliable


def test_too_little_overlap_is_not_reliable() -> None:
    rng = np.random.default_rng(11)
    events = _events(rng, 12)
    est = estimate_offset(
        _sensor(rng, events), _audio(rng, events, clock_s=0.5), max_offset_s=2.0, min_overlap_s=DUR_S + 1
    )
    assert abs(est.offset_s - 0.5) <= STEP_S and est.confidence >= RELIABLE_CONFIDENCE
    assert not est.reliable


def test_offset_beyond_the_search_is_flagged_at_limit() -> None:
    rng = np.random.default_rng(12)
    events = _events(rng, 12)
    # the true lag (1.06 s) lies just outside ±1 s: the best lag searched is the edge, on its flank
    est = estimate_offset(_sensor(rng, events), _audio(rng, events, clock_s=1.06), max_offset_s=1.0)
    assert est.at_limit and est.offset_s == pytest.approx(1.0)
    assert not est.reliable
    inside = estimate_offset(_sensor(rng, events), _audio(rng, events, clock_s=1.06), max_offset_s=1.5)
    assert not inside.at_limit and inside.reliable and abs(inside.offset_s - 1.06) <= STEP_S


def test_streams_that_never_meet_raise() -> None:
    rng = np.random.default_rng(13)
    events = _events(rng, 5)
    b = _audio(rng, events, clock_s=-100.0)
    with pytest.raises(AlignmentError, match="widen max_offset_s"):
        estimate_offset(_sensor(rng, events), b, max_offset_s=5.0)
    with pytest.raises(ConfigError, match="max_offset_s"):
        estimate_offset(_sensor(rng, events), b, max_offset_s=0.0)


def test_energy_envelope_grid_gaps_and_normalisation() -> None:
    hz = 100.0
    t = np.arange(0.0, 10.0, 1 / hz)
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 0.1, (len(t), 2)) + 5.0  # an offset level is not energy
    x[(t >= 4.0) & (t < 4.2)] += 3.0 * rng.normal(size=(20, 2))
    keep = (t < 6.0) | (t >= 7.0)  # a one-second dropout
    env = energy_envelope(
        _us(t[keep]), x[keep], rate_hz=10.0, start_us=EPOCH_US, end_us=EPOCH_US + 12_000_000
    )
    assert env.shape == (120,)
    assert np.all(env[60:70] == 0.0) and np.all(env[100:] == 0.0)  # the dropout and past the end
    seen = np.r_[env[:60], env[70:100]]
    assert seen.mean() == pytest.approx(0.0, abs=1e-9) and seen.std() == pytest.approx(1.0)
    assert int(np.argmax(env)) in (40, 41) and env[40] > 3.0


def test_energy_envelope_bridges_a_grid_finer_than_the_signal() -> None:
    t = np.arange(0.0, 10.0, 0.05)  # 20 Hz signal on a 50 Hz grid: empty bins are not gaps
    x = np.random.default_rng(2).normal(size=len(t))
    keep = (t < 5.0) | (t >= 6.0)
    env = energy_envelope(
        _us(t[keep]), x[keep], rate_hz=50.0, start_us=EPOCH_US, end_us=EPOCH_US + 10_000_000
    )
    assert np.count_nonzero(env[:245]) == 245  # interpolated between readings
    assert np.all(env[255:295] == 0.0)  # a real one-second dropout stays a gap


def _frame(sources: dict[str, EnvelopeSource], columns: list[str]) -> pl.DataFrame:
    parts = []
    for key, src in sources.items():
        values = src.values.reshape(len(src.t_us), -1)
        data = {"key": [key] * len(src.t_us), "t_us": src.t_us, "segment": np.zeros(len(src.t_us), np.int32)}
        data |= {c: values[:, i] for i, c in enumerate(columns)}
        parts.append(pl.DataFrame(data))
    return pl.concat(parts).sort("key", "t_us")


def test_per_key_offsets_recovered_and_pooled_estimate() -> None:
    rng = np.random.default_rng(21)
    clocks = {"m1": 0.37, "m2": -1.2, "m3": 0.0}
    events = {k: _events(rng, 10) for k in clocks}
    a = _frame({k: _sensor(rng, events[k]) for k in clocks}, ["ax", "ay", "az"])
    b = _frame({k: _audio(rng, events[k], clock_s=c, hz=2000.0) for k, c in clocks.items()}, ["sample"])
    per_key = estimate_stream_offset(
        a, b, ["ax", "ay", "az"], ["sample"], per_key=True, max_offset_s=2.0, rate_hz=50.0
    )
    assert list(per_key) == ["m1", "m2", "m3"]
    for key, clock_s in clocks.items():
        assert abs(per_key[key].offset_s - clock_s) <= STEP_S and per_key[key].reliable

    same = _frame({k: _audio(rng, events[k], clock_s=0.5, hz=2000.0) for k in clocks}, ["sample"])
    pooled = estimate_stream_offset(
        a, same, ["ax", "ay", "az"], ["sample"], per_key=False, max_offset_s=2.0, rate_hz=50.0
    )
    assert list(pooled) == [ALL_KEYS]
    assert abs(pooled[ALL_KEYS].offset_s - 0.5) <= STEP_S and pooled[ALL_KEYS].reliable
    assert pooled[ALL_KEYS].overlap_s == pytest.approx(3 * DUR_S, abs=0.2)  # summed over keys


def test_stream_offset_needs_a_common_entity() -> None:
    rng = np.random.default_rng(22)
    events = _events(rng, 4)
    a = _frame({"m1": _sensor(rng, events)}, ["ax", "ay", "az"])
    b = _frame({"m9": _audio(rng, events, hz=1000.0)}, ["sample"])
    with pytest.raises(AlignmentError, match="no entity appears in both"):
        estimate_stream_offset(
            a, b, ["ax", "ay", "az"], ["sample"], per_key=True, max_offset_s=1.0, rate_hz=50.0
        )


CONFIG = {
    "task": {"label": "fault"},
    "streams": {
        "anchors": {"hop_s": 1.0},
        "sources": {
            "vib": {
                "kind": "timeseries",
                "path": "vib.csv",
                "columns": ["ax"],
                "window_s": 1.0,
                "rate_hz": 50,
            },
            "mic": {"kind": "audio", "path": "audio", "duration_s": 1.0, "offset_s": 0.1},
        },
    },
}


def test_write_offset_updates_only_the_offset(tmp_path: Path) -> None:
    path = tmp_path / "plait.yaml"
    path.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    write_offset(path, "mic", 0.37000000000000005)
    write_offset(path, "mic", -1.2, key="m2")
    doc = yaml.safe_load(path.read_text())
    mic = doc["streams"]["sources"]["mic"]
    assert mic["offset_s"] == 0.37 and mic["offsets_s"] == {"m2": -1.2}
    rest = {k: v for k, v in mic.items() if k not in ("offset_s", "offsets_s")}
    assert rest == {"kind": "audio", "path": "audio", "duration_s": 1.0}
    assert (
        doc["task"] == CONFIG["task"]
        and doc["streams"]["sources"]["vib"] == CONFIG["streams"]["sources"]["vib"]
    )
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_write_offset_in_a_streams_file_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "streams.yaml"
    path.write_text(yaml.safe_dump(CONFIG["streams"]))
    write_offset(path, "vib", 2.5)
    assert yaml.safe_load(path.read_text())["sources"]["vib"]["offset_s"] == 2.5
    with pytest.raises(ConfigError, match="did you mean 'mic'"):
        write_offset(path, "mik", 1.0)
    bare = tmp_path / "other.yaml"
    bare.write_text("task: {label: y}\n")
    with pytest.raises(ConfigError, match=r"streams\.sources"):
        write_offset(bare, "mic", 1.0)


DAY_S = 86_400.0


def _sparse(rng: np.random.Generator, starts_s: np.ndarray, *, seg_s: float, clock_s: float):
    """A accelerometer and B microphone recording together for seg_s from each start (B from 1 s
    before to 1 s after), hearing 3 bangs each time; B's clock is clock_s behind A's."""
    parts_a, parts_b = [], []
    for s0 in starts_s:
        t_ev = np.sort(rng.uniform(s0 + 1.0, s0 + seg_s - 1.0, 3))
        events = (t_ev - s0, rng.uniform(0.5, 2.0, 3))
        a = _sensor(rng, events)
        b = _audio(rng, (events[0] + 1.0, events[1]), hz=1000.0)  # B's recording starts 1 s early
        keep_a = (a.t_us - EPOCH_US) < seg_s * 1e6
        parts_a.append(EnvelopeSource(a.t_us[keep_a] + round(s0 * 1e6), a.values[keep_a]))
        keep_b = (b.t_us - EPOCH_US) < (seg_s + 2.0) * 1e6
        shift_us = round((s0 - 1.0 - clock_s) * 1e6)
        parts_b.append(EnvelopeSource(b.t_us[keep_b] + shift_us, b.values[keep_b]))
    return tuple(
        EnvelopeSource(np.concatenate([p.t_us for p in ps]), np.concatenate([p.values for p in ps]))
        for ps in (parts_a, parts_b)
    )


def test_cost_follows_the_shared_data_not_the_calendar() -> None:
    """Issue 13 (9): 10 short recordings spread over 30 days once built a 130-million-bin grid."""
    seg_s, clock_s, max_offset_s = 8.0, 0.37, 3.0
    estimates = []
    for span_days in (1, 30):
        rng = np.random.default_rng(31)
        starts = np.sort(rng.choice(np.arange(10) * 3600.0 * 2.4 * span_days, 10, replace=False))
        a, b = _sparse(rng, starts, seg_s=seg_s, clock_s=clock_s)
        est = estimate_offset(a, b, max_offset_s=max_offset_s)
        assert abs(est.offset_s - clock_s) <= STEP_S and est.reliable
        assert est.segments == 10 and est.shared_s == pytest.approx(10 * seg_s, abs=0.1)
        estimates.append(est)
    near, far = estimates
    # per stretch: A's seg_s and B's second either side, plus one separator of max_lag + 1 bins
    bound = 10 * (seg_s + 2.0 + max_offset_s) / STEP_S
    assert far.envelope_bins <= bound
    assert abs(far.envelope_bins - near.envelope_bins) <= 10  # the grid's phase, not the span
    assert far.envelope_bins < 1e-4 * 30 * DAY_S / STEP_S


def test_recordings_too_far_apart_to_pair_are_not_windows() -> None:
    rng = np.random.default_rng(32)
    a, _ = _sparse(rng, np.array([0.0, 1000.0]), seg_s=8.0, clock_s=0.0)
    _, b = _sparse(rng, np.array([0.0, 5000.0]), seg_s=8.0, clock_s=0.0)
    est = estimate_offset(a, b, max_offset_s=2.0)  # the two stretches at 0 s pair, the rest do not
    assert est.segments == 1 and est.shared_s == pytest.approx(8.0, abs=0.1)
    assert est.envelope_bins <= (10.0 + 2.0) / STEP_S
    away = EnvelopeSource(b.t_us + 100_000_000, b.values)  # 100 s later: nothing within ±2 s
    with pytest.raises(AlignmentError, match=r"share 0\.0 s .* in 0 stretches"):
        estimate_offset(a, away, max_offset_s=2.0, min_shared_s=0.0)
    fa, fb = _frame({"m1": a, "m2": a}, ["ax", "ay", "az"]), _frame({"m1": b, "m2": away}, ["sample"])
    pooled = estimate_stream_offset(fa, fb, ["ax", "ay", "az"], ["sample"], per_key=False, max_offset_s=2.0)
    assert pooled[ALL_KEYS].segments == 1 and pooled[ALL_KEYS].envelope_bins == est.envelope_bins


def test_too_little_shared_recording_is_refused_with_the_amounts() -> None:
    rng = np.random.default_rng(33)
    events = _events(rng, 12)
    a = _sensor(rng, events)
    b = _audio(rng, events, hz=1000.0)
    late = EnvelopeSource(b.t_us + round((DUR_S - 2.0 + 1.5) * 1e6), b.values)  # 2 s shared at ±1.5 s
    with pytest.raises(AlignmentError, match=r"share 2\.0 s .* needs at least 3 s: record longer"):
        estimate_offset(a, late, max_offset_s=1.5)
    assert estimate_offset(a, late, max_offset_s=1.5, min_shared_s=1.0).shared_s == pytest.approx(
        2.0, abs=0.05
    )

    fa = _frame({"m1": a, "m2": a}, ["ax", "ay", "az"])
    fb = _frame({"m1": b, "m2": late}, ["sample"])
    cols = (["ax", "ay", "az"], ["sample"])
    with pytest.raises(AlignmentError, match=r"vibration and sound share 2\.0 s .* for entity 'm2'"):
        estimate_stream_offset(fa, fb, *cols, per_key=True, max_offset_s=1.5, names=("vibration", "sound"))
    with pytest.raises(AlignmentError, match=r"share 32\.0 s .* over 2 entities .* at least 60 s"):
        estimate_stream_offset(fa, fb, *cols, per_key=False, max_offset_s=1.5, min_shared_s=60.0)


def test_progress_lines_reach_say() -> None:
    rng = np.random.default_rng(34)
    clocks = {"m1": 0.2, "m2": 0.2}
    events = {k: _events(rng, 8) for k in clocks}
    a = _frame({k: _sensor(rng, events[k]) for k in clocks}, ["ax", "ay", "az"])
    b = _frame({k: _audio(rng, events[k], clock_s=c, hz=2000.0) for k, c in clocks.items()}, ["sample"])
    lines: list[str] = []
    est = estimate_stream_offset(
        a,
        b,
        ["ax", "ay", "az"],
        ["sample"],
        per_key=False,
        max_offset_s=1.0,
        names=("vib", "mic"),
        say=lines.append,
    )[ALL_KEYS]
    assert abs(est.offset_s - 0.2) <= STEP_S
    assert lines[0] == f"offset of mic against vib: 2 entities, 2 stretches, {est.shared_s:,.1f} s shared"
    assert f"{est.envelope_bins:,}/{est.envelope_bins:,} envelope bins" in lines[-1]
    assert lines[-1].strip().startswith("2/2 entities") and lines[-1].endswith(" s elapsed")


def test_cli_prints_progress_then_the_table_or_the_refusal(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from plait.cli.main import app

    rng = np.random.default_rng(35)
    events = _events(rng, 10)
    a, b = _sensor(rng, events, hz=100.0), _audio(rng, events, clock_s=0.4, hz=500.0)
    for name, src, cols in (("a", a, ["x", "y", "z"]), ("b", b, ["x"])):
        values = src.values.reshape(len(src.t_us), -1)
        data = {"time": src.t_us // 1000, **{c: values[:, i] for i, c in enumerate(cols)}}
        pl.DataFrame(data).write_csv(tmp_path / f"{name}.csv")
    stream = {"kind": "timeseries", "time_format": "epoch_ms", "window_s": 1.0, "rate_hz": 50}
    sources = {
        "a": {**stream, "path": "a.csv", "columns": ["x", "y", "z"]},
        "b": {**stream, "path": "b.csv", "columns": ["x"]},
    }
    config = tmp_path / "plait.yaml"
    config.write_text(
        yaml.safe_dump({"task": {"label": "y"}, "streams": {"anchors": {"hop_s": 10.0}, "sources": sources}})
    )
    args = ["align", str(config), "--estimate-offset", "a", "b", "--max-offset", "1"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "loaded a: 3,000 readings of 1 entity" in result.output
    assert "offset of b against a: 1 entity, 1 stretch, 30.0 s shared" in result.output
    assert "1/1 entities" in result.output and "+0.4" in result.output

    sources["b"]["offset_s"] = 29.0  # now A's last 2.4 s are within 1 s of B
    config.write_text(
        yaml.safe_dump({"task": {"label": "y"}, "streams": {"anchors": {"hop_s": 10.0}, "sources": sources}})
    )
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert isinstance(result.exception, AlignmentError)
    assert "a and b share 2.4 s of recording (readings of a within ±1 s of b's) in 1 stretch;" in str(
        result.exception
    )
    assert "or set offset_s by hand" in str(result.exception)
