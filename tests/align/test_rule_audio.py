from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from plait.align.frames import RuleContext
from plait.align.rules.audio import align_audio
from plait.align.spec import StreamSpec

US = 1_000_000
RATE = 1000


def wav(root: Path, name: str, first: int, frames: int, rate: int = RATE, channels: int = 1) -> str:
    """A PCM_16 WAV whose samples count up from `first` (so any cut is recognisable)."""
    data = np.arange(first, first + frames, dtype=np.int16)
    if channels > 1:
        data = np.stack([data] * channels, axis=1)
    sf.write(str(root / name), data, rate, subtype="PCM_16")
    return name


def recordings(
    rows: list[tuple[str, float, str, float, int]], segments: list[int] | None = None
) -> pl.DataFrame:
    """An audio stream frame sorted by (key, t_us): key, start, file, length, sample rate."""
    order = sorted(range(len(rows)), key=lambda i: (rows[i][0], rows[i][1]))
    return pl.DataFrame(
        {
            "key": [rows[i][0] for i in order],
            "t_us": [round(rows[i][1] * US) for i in order],
            "segment": [segments[i] if segments else 0 for i in order],
            "file": [rows[i][2] for i in order],
            "duration_s": [rows[i][3] for i in order],
            "sample_rate": [rows[i][4] for i in order],
        },
        schema={
            "key": pl.Utf8,
            "t_us": pl.Int64,
            "segment": pl.Int32,
            "file": pl.Utf8,
            "duration_s": pl.Float64,
            "sample_rate": pl.Int64,
        },
    )


def anchors(rows: list[tuple[str, float]]) -> pl.DataFrame:
    data = sorted((round(t * US), k) for k, t in rows)
    return pl.DataFrame(
        {"anchor": range(len(data)), "key": [k for _, k in data], "t_us": [t for t, _ in data]},
        schema={"anchor": pl.UInt32, "key": pl.Utf8, "t_us": pl.Int64},
    )


def spec(**kw: object) -> StreamSpec:
    base = {"name": "mic", "kind": "audio", "path": "audio", "key": "machine", "duration_s": 0.5}
    return StreamSpec(**{**base, "tolerance_s": 0.1, **kw})  # type: ignore[arg-type]


def ctx(root: Path) -> RuleContext:
    return RuleContext(base_dir=root, media_dir=root / "aligned")


def clip(out: pl.DataFrame, i: int) -> tuple[str | None, float | None, float | None, float | None]:
    row = out.row(i, named=True)
    return row["mic"], row["mic__offset_s"], row["mic__duration_s"], row["mic__dt_s"]


def test_one_recording_covers_the_clip(tmp_path: Path) -> None:
    stream = recordings([("m1", 100.0, wav(tmp_path, "a.wav", 0, 1000), 1.0, RATE)])
    out = align_audio(stream, anchors([("m1", 100.6), ("m1", 101.0)]), spec(), ctx(tmp_path))
    assert out.columns.row(0, named=True) == {
        "mic__status": "observed",
        "mic__imputed_frac": 0.0,
        "mic__dt_s": 0.0,
        "mic": "a.wav",
        "mic__offset_s": 0.1,
        "mic__duration_s": 0.5,
    }
    assert clip(out.columns, 1) == ("a.wav", 0.5, 0.5, 0.0)  # a clip ending at the file's end
    assert not (tmp_path / "aligned").exists()


def test_clip_spanning_two_recordings_is_written_exactly(tmp_path: Path) -> None:
    stream = recordings(
        [
            ("m1", 100.0, wav(tmp_path, "a.wav", 0, 1000), 1.0, RATE),
            ("m1", 101.0, wav(tmp_path, "b.wav", 1000, 1000), 1.0, RATE),
        ]
    )
    result = align_audio(stream, anchors([("m1", 101.2)]), spec(), ctx(tmp_path))
    assert result.columns["mic__status"].to_list() == ["observed"]
    assert clip(result.columns, 0) == ("aligned/mic_0.wav", 0.0, 0.5, 0.0)
    data, rate = sf.read(str(tmp_path / "aligned" / "mic_0.wav"), dtype="int16")
    assert rate == RATE
    np.testing.assert_array_equal(data, np.arange(700, 1200, dtype=np.int16))  # [100.7, 101.2)
    assert sf.info(str(tmp_path / "aligned" / "mic_0.wav")).subtype == "PCM_16"
    assert result.details["clips_spanning"] == 1


def test_spanning_across_a_small_gap_reports_the_uncovered_time(tmp_path: Path) -> None:
    stream = recordings(
        [
            ("m1", 100.0, wav(tmp_path, "a.wav", 0, 1000), 1.0, RATE),
            ("m1", 101.05, wav(tmp_path, "b.wav", 2000, 1000), 1.0, RATE),
        ]
    )
    out = align_audio(stream, anchors([("m1", 101.2)]), spec(), ctx(tmp_path)).columns
    path, offset, duration, dt = clip(out, 0)
    assert (path, offset, duration) == ("aligned/mic_0.wav", 0.0, 0.45)
    assert dt == pytest.approx(0.05, abs=1e-12)
    data, _ = sf.read(str(tmp_path / "aligned" / "mic_0.wav"), dtype="int16")
    expected = np.concatenate([np.arange(700, 1000), np.arange(2000, 2150)]).astype(np.int16)
    np.testing.assert_array_equal(data, expected)


def test_gap_wider_than_tolerance_is_not_bridged(tmp_path: Path) -> None:
    stream = recordings([("m1", 100.0, "a.wav", 1.0, RATE), ("m1", 101.3, "b.wav", 1.0, RATE)])
    out = align_audio(stream, anchors([("m1", 101.2)]), spec(), ctx(tmp_path))
    assert out.columns["mic__status"].to_list() == ["absent"]
    assert clip(out.columns, 0) == (None, None, None, None)
    assert out.details["absent"] == 1 and out.details["clips_spanning"] == 0


def test_partial_coverage_within_tolerance_at_either_end(tmp_path: Path) -> None:
    stream = recordings([("m1", 100.05, "late.wav", 1.0, RATE), ("m2", 100.0, "short.wav", 1.0, RATE)])
    a = anchors([("m1", 100.5), ("m2", 101.08), ("m2", 101.2), ("m1", 100.4)])
    result = align_audio(stream, a, spec(), ctx(tmp_path))
    out = result.columns  # anchors: m1@100.4, m1@100.5, m2@101.08, m2@101.2
    assert out["mic__status"].to_list() == ["absent", "observed", "observed", "absent"]
    # starts 0.05 s late: the clip [100.0, 100.5) keeps [100.05, 100.5) of the file
    assert clip(out, 1)[:3] == ("late.wav", 0.0, 0.45)
    assert clip(out, 1)[3] == pytest.approx(0.05, abs=1e-12)
    # ends 0.08 s early: [100.58, 101.08) keeps [100.58, 101.0)
    assert clip(out, 2)[:3] == ("short.wav", 0.58, 0.42)
    assert clip(out, 2)[3] == pytest.approx(0.08, abs=1e-12)
    assert result.details["clips_partial"] == 2


def test_tolerance_edge_is_inclusive(tmp_path: Path) -> None:
    stream = recordings([("m1", 100.0, "a.wav", 1.0, RATE)])
    out = align_audio(stream, anchors([("m1", 101.1), ("m1", 101.100001)]), spec(), ctx(tmp_path)).columns
    assert out["mic__status"].to_list() == ["observed", "absent"]


def test_keys_and_segments_never_mix(tmp_path: Path) -> None:
    stream = recordings(
        [
            ("m2", 100.0, "other.wav", 5.0, RATE),
            ("m1", 100.0, "a.wav", 1.0, RATE),
            ("m1", 101.0, "b.wav", 1.0, RATE),
        ],
        segments=[0, 0, 1],
    )
    result = align_audio(stream, anchors([("m1", 101.2), ("m3", 101.2)]), spec(), ctx(tmp_path))
    assert result.columns["mic__status"].to_list() == ["absent", "absent"]
    assert result.details["clips_spanning"] == 0


def test_different_sample_rates_are_not_joined(tmp_path: Path) -> None:
    stream = recordings(
        [
            ("m1", 100.0, wav(tmp_path, "a.wav", 0, 1000), 1.0, RATE),
            ("m1", 101.0, wav(tmp_path, "b.wav", 0, 2000, rate=2000), 1.0, 2000),
        ]
    )
    result = align_audio(stream, anchors([("m1", 101.2)]), spec(), ctx(tmp_path))
    assert result.columns["mic__status"].to_list() == ["absent"]
    assert result.details["rate_mismatch"] == 1


def test_unreadable_or_mismatched_pieces_are_absent_and_counted(tmp_path: Path) -> None:
    stream = recordings(
        [
            ("m1", 100.0, wav(tmp_path, "a.wav", 0, 1000), 1.0, RATE),
            ("m1", 101.0, wav(tmp_path, "b.wav", 0, 1000, channels=2), 1.0, RATE),
            ("m2", 100.0, "missing.wav", 1.0, RATE),
            ("m2", 101.0, "missing2.wav", 1.0, RATE),
        ]
    )
    result = align_audio(stream, anchors([("m1", 101.2), ("m2", 101.2)]), spec(), ctx(tmp_path))
    assert result.columns["mic__status"].to_list() == ["absent", "absent"]
    assert result.details["channel_mismatch"] == 1 and result.details["unreadable"] == 1


# Per entity, a chain of recordings: (gap after the previous one in hundredths of a second — negative
# is an overlap —, length in hundredths); chains make clips that span two files common.
chain = st.lists(st.tuples(st.integers(-10, 30), st.integers(20, 150)), max_size=5)


@settings(max_examples=60, deadline=None)
@given(
    chains=st.tuples(chain, chain),
    anchor_rows=st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 80).map(lambda d: d / 10)),
        min_size=1,
        max_size=15,
        unique=True,
    ),
    tolerance=st.sampled_from([0.0, 0.1, 0.2]),
)
def test_property_clips_lie_inside_their_recording(
    tmp_path_factory: pytest.TempPathFactory,
    chains: tuple[list[tuple[int, int]], list[tuple[int, int]]],
    anchor_rows: list[tuple[str, float]],
    tolerance: float,
) -> None:
    recs: list[tuple[str, int, int]] = []  # key, start, length in hundredths
    for key, links in zip(("a", "b"), chains, strict=True):
        end = 0
        for gap, length in links:
            start = max(end + gap, recs[-1][1] + 1 if recs and recs[-1][0] == key else 0)
            recs.append((key, start, length))
            end = start + length
    root = tmp_path_factory.mktemp("audio")
    rows = [(k, s / 100, f"{k}_{s}.wav", n / 100, RATE) for k, s, n in recs]
    for _, _, name, seconds, _ in rows:
        wav(root, name, 0, round(seconds * RATE))
    stream, a = recordings(rows), anchors(anchor_rows)
    sp = spec(tolerance_s=tolerance)
    first = align_audio(stream, a, sp, ctx(root)).columns
    second = align_audio(stream, a, sp, ctx(root)).columns
    assert first.height == a.height  # no anchor lost
    assert first.equals(second)  # deterministic (and rewriting a clip is harmless)
    by_file = {name: (k, round(s * US), round(n * US)) for k, s, name, n, _ in rows}
    for anchor, row in zip(a.iter_rows(named=True), first.iter_rows(named=True), strict=True):
        if row["mic__status"] == "absent":
            assert row["mic"] is None and row["mic__dt_s"] is None
            continue
        duration, dt = round(row["mic__duration_s"] * US), round(row["mic__dt_s"] * US)
        assert 0 < duration <= 500_000
        assert 0 <= dt <= 2 * round(tolerance * US)  # at most tolerance_s missing at either end
        if row["mic"].startswith("aligned/"):  # spanning: the file holds exactly the clip
            frames = sf.info(str(root / row["mic"])).frames
            assert frames == round(duration * RATE / US) and row["mic__offset_s"] == 0.0
            assert duration + dt == 500_000
            continue
        key, start, length = by_file[row["mic"]]
        assert key == anchor["key"]
        begin = start + round(row["mic__offset_s"] * US)  # the clip's absolute start
        assert start <= begin and begin + duration <= start + length  # inside the recording
        assert anchor["t_us"] - 500_000 <= begin and begin + duration <= anchor["t_us"]  # inside [t − d, t)
        assert duration + dt == 500_000


def test_overlapping_recordings_do_not_repeat_samples(tmp_path: Path) -> None:
    stream = recordings(
        [
            ("m1", 100.0, wav(tmp_path, "a.wav", 0, 1000), 1.0, RATE),
            ("m1", 100.9, wav(tmp_path, "b.wav", 5000, 1000), 1.0, RATE),
        ]
    )
    out = align_audio(stream, anchors([("m1", 101.2)]), spec(), ctx(tmp_path)).columns
    assert clip(out, 0) == ("aligned/mic_0.wav", 0.0, 0.5, 0.0)
    data, _ = sf.read(str(tmp_path / "aligned" / "mic_0.wav"), dtype="int16")
    expected = np.concatenate([np.arange(700, 1000), np.arange(5100, 5300)]).astype(np.int16)
    np.testing.assert_array_equal(data, expected)
