from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from plait.align.load import load_stream
from plait.align.spec import StreamSpec
from plait.errors import ConfigError, DataError

T0 = int(datetime(2024, 3, 1, 10, tzinfo=UTC).timestamp()) * 1_000_000
MS = 1_000

# source row: what it exercises
MESSY_CSV = """time,machine,ax,ay
2024-03-01T10:00:00.000Z,m1,1.0,0.1
2024-03-01T10:00:00.100Z,m1,2.0,0.2
2024-03-01T10:00:00.300Z,m1,4.0,0.4
2024-03-01T10:00:00.200Z,m1,3.0,0.3
2024-03-01T10:00:00.300Z,m1,5.0,0.5
2024-03-01T10:00:00.400Z,m1,NaN,0.6
2024-03-01T10:00:00.500Z,m1,6.0,inf
not a time,m1,7.0,0.7
2024-03-01T09:59:00.000Z,m1,8.0,0.8
2024-03-01T09:59:00.100Z,m1,9.0,0.9
2024-03-01T10:00:00.000Z,m2,1.0,1.0
2024-03-01T10:00:00.000Z,m2,3.0,3.0
2024-03-01T10:00:00.100Z,m2,,2.0
"""
# 3: unsorted (0.1 s back); 4: duplicate of 2; 5, 6, 12: NaN / inf / empty; 7: unreadable time;
# 8: a 60-s backward jump (segment 1); 11: duplicate of 10.


def imu(path: str = "imu.csv", **kw: object) -> StreamSpec:
    options: dict[str, object] = {"key": "machine", "columns": ("ax", "ay"), "window_s": 1.0, "rate_hz": 10.0}
    options.update(kw)
    return StreamSpec(name="imu", kind="timeseries", path=path, **options)  # type: ignore[arg-type]


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    (tmp_path / "imu.csv").write_text(MESSY_CSV)
    return tmp_path


@pytest.mark.parametrize(
    ("policy", "ax_at_300", "ay_at_300", "m2_ax", "removed"),
    [("first", 4.0, 0.4, 1.0, (4, 11)), ("last", 5.0, 0.5, 3.0, (2, 10)), ("mean", 4.5, 0.45, 2.0, (4, 11))],
)
def test_messy_stream_counts_and_frame(
    messy: Path, policy: str, ax_at_300: float, ay_at_300: float, m2_ax: float, removed: tuple[int, ...]
) -> None:
    out = load_stream(imu(duplicates=policy), messy)
    s = out.stats
    assert (s.rows_read, s.rows_kept, s.unreadable, s.non_finite, s.unsorted, s.jumps, s.duplicates) == (
        13,
        7,
        1,
        3,
        1,
        1,
        2,
    )
    assert s.time_format == "iso"
    assert s.examples == {
        "unreadable": (7,),
        "non_finite": (5, 6, 12),
        "jumps": (8,),
        "unsorted": (3,),
        "duplicates": removed,
    }
    frame = out.frame
    assert frame.columns == ["key", "t_us", "segment", "ax", "ay"]
    assert frame.dtypes == [pl.String, pl.Int64, pl.Int32, pl.Float64, pl.Float64]
    assert frame["key"].to_list() == ["m1"] * 6 + ["m2"]
    back = T0 - 60_000 * MS
    assert frame["t_us"].to_list() == [
        back,
        back + 100 * MS,
        T0,
        T0 + 100 * MS,
        T0 + 200 * MS,
        T0 + 300 * MS,
        T0,
    ]
    assert frame["segment"].to_list() == [1, 1, 0, 0, 0, 0, 0]
    assert frame["ax"].to_list() == [8.0, 9.0, 1.0, 2.0, 3.0, ax_at_300, m2_ax]
    assert frame["ay"][5] == pytest.approx(ay_at_300)


def test_messy_stream_notes_name_rows_and_examples(messy: Path) -> None:
    notes = load_stream(imu(), messy).stats.notes
    assert "1 row with an unreadable time dropped (rows 7), e.g. 'not a time'" in notes
    assert "3 rows with a NaN/Inf/empty reading dropped (a gap) (rows 5, 6, 12)" in notes
    assert "1 backward clock jump larger than jump_s=1 s, each starting a new segment (rows 8)" in notes
    assert "1 row earlier than the row before (sorted) (rows 3)" in notes


def test_a_larger_jump_threshold_turns_the_jump_into_an_unsorted_row(messy: Path) -> None:
    s = load_stream(imu(jump_s=120.0), messy).stats
    assert (s.jumps, s.unsorted) == (0, 2)
    assert s.examples["unsorted"] == (3, 8)


def test_offsets_shift_true_time_per_entity(messy: Path) -> None:
    out = load_stream(imu(offset_s=1.0, offsets_s={"m2": 0.5, "m9": 2.0}), messy)
    m2 = out.frame.filter(pl.col("key") == "m2")
    assert m2["t_us"].to_list() == [T0 + 1_500 * MS]
    assert out.frame.filter(pl.col("key") == "m1")["t_us"][2] == T0 + 1_000 * MS
    assert "offsets_s names entities not in this stream: m9; check the spelling" in out.stats.notes


def test_parquet_epoch_ms_without_key_is_detected_and_noted(tmp_path: Path) -> None:
    pl.DataFrame({"ts": [T0 // MS + 20, T0 // MS, T0 // MS + 10], "v": [3, 1, 2]}).write_parquet(
        tmp_path / "s.parquet"
    )
    out = load_stream(
        StreamSpec(
            name="s",
            kind="timeseries",
            path="s.parquet",
            time="ts",
            columns=("v",),
            window_s=1.0,
            rate_hz=10.0,
        ),
        tmp_path,
    )
    assert out.stats.time_format == "detected:epoch_ms"
    assert out.stats.notes[0].startswith("times read as epoch milliseconds (detected from magnitude: 1.7e12)")
    assert out.frame["key"].to_list() == ["", "", ""]
    assert out.frame["t_us"].to_list() == [T0, T0 + 10 * MS, T0 + 20 * MS]
    assert out.frame["v"].to_list() == [1.0, 2.0, 3.0] and out.frame["v"].dtype == pl.Float64
    assert (out.stats.unsorted, out.stats.jumps) == (1, 0)


def test_jsonl_text_and_tabular_streams(tmp_path: Path) -> None:
    rows = [
        {"time": "2024-03-01T10:00:01Z", "machine": 7, "note": "bearing noise", "rpm": 1500},
        {"time": "2024-03-01T10:00:00Z", "machine": 7, "note": "start", "rpm": 1400},
        {"time": "2024-03-01T10:00:00Z", "machine": 7, "note": "dup", "rpm": 1600},
    ]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = load_stream(
        StreamSpec(name="log", kind="text", path="log.jsonl", key="machine", columns=("note",), window_s=5.0),
        tmp_path,
    )
    assert text.frame.columns == ["key", "t_us", "segment", "note"]
    assert text.frame["key"].to_list() == ["7", "7"] and text.frame["note"].to_list() == [
        "start",
        "bearing noise",
    ]
    assert (text.stats.duplicates, text.stats.unsorted) == (1, 1)
    table = load_stream(
        StreamSpec(
            name="spec", kind="tabular", path="log.jsonl", key="machine", columns=("rpm",), duplicates="mean"
        ),
        tmp_path,
    )
    assert table.frame["rpm"].dtype == pl.Float64 and table.frame["rpm"].to_list() == [1500.0, 1500.0]
    kept = load_stream(
        StreamSpec(name="spec", kind="tabular", path="log.jsonl", key="machine", columns=("rpm",)), tmp_path
    )
    assert kept.frame["rpm"].dtype == pl.Int64 and kept.frame["rpm"].to_list() == [1400, 1500]


def test_folder_of_pngs_takes_time_and_key_from_file_names(tmp_path: Path) -> None:
    frames = tmp_path / "thermal"
    frames.mkdir()
    for name in ["m2_20240301T100000.png", "m1_20240301T100005.png", "m1_20240301T100000.png", "notes.txt"]:
        Image.new("L", (2, 2)).save(frames / name, format="PNG") if name.endswith(".png") else (
            frames / name
        ).write_text("x")
    spec = StreamSpec(
        name="thermal",
        kind="image",
        path="thermal",
        pattern=r"(?P<key>m\d+)_(?P<time>\d{8}T\d{6})\.png",
        time_format="%Y%m%dT%H%M%S",
        timezone="UTC",
    )
    out = load_stream(spec, tmp_path)
    assert out.frame.columns == ["key", "t_us", "segment", "file"]
    assert out.frame.rows() == [
        ("m1", T0, 0, "thermal/m1_20240301T100000.png"),
        ("m1", T0 + 5_000 * MS, 0, "thermal/m1_20240301T100005.png"),
        ("m2", T0, 0, "thermal/m2_20240301T100000.png"),
    ]
    assert (out.stats.rows_read, out.stats.rows_kept) == (3, 3)
    assert out.stats.time_format == "%Y%m%dT%H%M%S"
    assert out.stats.notes == ("1 file in thermal ignored (not matching the pattern), e.g. notes.txt",)


def test_folder_of_wavs_reads_duration_and_rate_and_drops_unreadable_files(tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(audio / "m1_20240301T100000.wav", np.zeros(800, dtype=np.float32), 8000)
    sf.write(audio / "m1_20240301T100010.wav", np.zeros(3200, dtype=np.float32), 16000)
    (audio / "m1_20240301T100020.wav").write_bytes(b"not a wav")
    spec = StreamSpec(
        name="mic",
        kind="audio",
        path="audio",
        pattern=r"(?P<key>m\d+)_(?P<time>\d{8}T\d{6})\.wav",
        time_format="%Y%m%dT%H%M%S",
        timezone="UTC",
        duration_s=1.0,
    )
    out = load_stream(spec, tmp_path)
    assert out.frame.columns == ["key", "t_us", "segment", "file", "duration_s", "sample_rate"]
    assert out.frame.dtypes == [pl.String, pl.Int64, pl.Int32, pl.String, pl.Float64, pl.Int64]
    assert out.frame["duration_s"].to_list() == [0.1, 0.2]
    assert out.frame["sample_rate"].to_list() == [8000, 16000]
    assert (out.stats.rows_read, out.stats.rows_kept, out.stats.unreadable) == (3, 2, 1)
    assert out.stats.examples["unreadable_file"] == (2,)
    assert (
        "1 row whose file is missing or cannot be read dropped (rows 2), e.g. 'audio/m1_20240301T100020.wav'"
        in out.stats.notes
    )


def test_audio_table_paths_are_relative_to_the_table_and_returned_relative_to_base(tmp_path: Path) -> None:
    (tmp_path / "raw" / "rec").mkdir(parents=True)
    sf.write(tmp_path / "raw" / "rec" / "a.wav", np.zeros(400, dtype=np.float32), 4000)
    pl.DataFrame({"start": ["2024-03-01T10:00:00Z"], "path": ["rec/a.wav"]}).write_csv(
        tmp_path / "raw" / "audio.csv"
    )
    spec = StreamSpec(
        name="mic", kind="audio", path="raw/audio.csv", time="start", file="path", duration_s=0.05
    )
    out = load_stream(spec, tmp_path)
    assert out.frame.rows() == [("", T0, 0, "raw/rec/a.wav", 0.1, 4000)]


def test_errors_name_the_stream_file_column_and_fix(messy: Path) -> None:
    with pytest.raises(DataError, match=r"stream 'imu': 'nope.csv' not found .*streams\.sources\.imu\.path"):
        load_stream(imu("nope.csv"), messy)
    with pytest.raises(
        ConfigError, match=r"streams\.sources\.imu\.time: .*column 'tme' not found .*did you mean 'time'"
    ):
        load_stream(imu(time="tme"), messy)
    with pytest.raises(ConfigError, match=r"sources\.imu\.key: .*'machin'.*did you mean 'machine'"):
        load_stream(imu(key="machin"), messy)
    with pytest.raises(ConfigError, match=r"sources\.imu\.columns: .*'az'"):
        load_stream(imu(columns=("ax", "az")), messy)
    with pytest.raises(ConfigError, match="no time zone"):
        (messy / "naive.csv").write_text("time,machine,ax,ay\n2024-03-01T10:00:00,m1,1,2\n")
        load_stream(imu("naive.csv"), messy)


def test_non_numeric_sensor_column_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "imu.csv").write_text(
        "time,machine,ax,ay\n2024-03-01T10:00:00Z,m1,1,2\n2024-03-01T10:00:01Z,m1,n/a,2\n"
    )
    with pytest.raises(DataError, match=r"sensor column 'ax' is not numeric \('n/a' at row 1\)"):
        load_stream(imu(), tmp_path)


def test_folder_errors(tmp_path: Path) -> None:
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "a.png").write_bytes(b"")
    image = dict(name="cam", kind="image", path="frames", time_format="%Y%m%dT%H%M%S", timezone="UTC")
    with pytest.raises(DataError, match=r"no file in .* matches pattern .*files: a\.png"):
        load_stream(StreamSpec(**image, pattern=r"(?P<time>\d{8}T\d{6})\.png"), tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"\(\?P<time>"):
        load_stream(StreamSpec(**image, pattern=r"(\d+)\.png"), tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="give a regex"):
        load_stream(StreamSpec(**image), tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="only image and audio streams read folders"):
        load_stream(imu("frames"), tmp_path)


@st.composite
def messy_rows(draw: st.DrawFn) -> list[tuple[str, int | None, float]]:
    n = draw(st.integers(0, 40))
    keys = st.sampled_from(["a", "b", "c"])
    times = st.one_of(
        st.integers(0, 30).map(lambda t: T0 // MS + t * 500),
        st.just(None),
        st.sampled_from([T0 // MS - 10_000]),
    )
    values = st.one_of(st.floats(-5, 5), st.just(float("nan")), st.just(float("inf")))
    return [(draw(keys), draw(times), draw(values)) for _ in range(n)]


@settings(max_examples=60, deadline=None)
@given(rows=messy_rows(), policy=st.sampled_from(["first", "last", "mean"]))
def test_cleaning_invariants(rows: list[tuple[str, int | None, float]], policy: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        frame = pl.DataFrame(rows, schema={"k": pl.String, "t": pl.Int64, "v": pl.Float64}, orient="row")
        frame.write_parquet(Path(tmp) / "s.parquet")
        spec = StreamSpec(
            name="s",
            kind="timeseries",
            path="s.parquet",
            time="t",
            time_format="epoch_ms",
            key="k",
            columns=("v",),
            window_s=1.0,
            rate_hz=1.0,
            duplicates=policy,
        )
        first, second = load_stream(spec, Path(tmp)), load_stream(spec, Path(tmp))
    out, s = first.frame, first.stats
    assert out.equals(second.frame) and s == second.stats  # deterministic
    assert out.equals(out.sort(["key", "t_us"], maintain_order=True))  # sorted by (key, t_us)
    assert out.select("key", "t_us").is_duplicated().sum() == 0
    assert s.rows_read == len(rows) and s.rows_kept == out.height
    assert s.rows_kept + s.unreadable + s.non_finite + s.duplicates == s.rows_read
    assert s.unreadable == sum(t is None for _, t, _ in rows)
    assert out["v"].is_finite().all()
    jumps_by_key = out.group_by("key").agg(pl.col("segment").max())["segment"].sum() if out.height else 0
    assert jumps_by_key <= s.jumps


def test_rows_without_a_key_are_dropped_and_counted_as_unreadable(tmp_path: Path) -> None:
    (tmp_path / "imu.csv").write_text(
        "time,machine,ax,ay\n2024-03-01T10:00:00Z,,1,2\n2024-03-01T10:00:01Z,007,1,2\nlater,,1,2\n"
    )
    out = load_stream(imu(), tmp_path)
    assert (out.stats.rows_read, out.stats.rows_kept, out.stats.unreadable) == (3, 1, 2)
    assert out.stats.examples == {"unreadable": (0, 2), "null_key": (0, 2)}
    assert out.frame["key"].to_list() == ["007"]  # keys are read as text: leading zeros stay


def test_an_empty_source_gives_an_empty_frame_and_a_note(tmp_path: Path) -> None:
    (tmp_path / "imu.csv").write_text("time,machine,ax,ay\n")
    out = load_stream(imu(), tmp_path)
    assert out.frame.height == 0 and out.frame.dtypes == [
        pl.String,
        pl.Int64,
        pl.Int32,
        pl.Float64,
        pl.Float64,
    ]
    assert out.stats.notes == ("the source has no rows: every anchor will find this stream absent",)


def test_an_unsorted_sparse_log_is_unsorted_rows_not_clock_jumps(tmp_path: Path) -> None:
    """Regression (issue 13): a log written out of order over hours was reported as hundreds of
    clock jumps, each starting a segment, and windows lost the lines on the other side."""
    rng = np.random.default_rng(0)
    hours = rng.permutation(200)  # one line an hour, in shuffled order
    rows = [
        {
            "time": datetime.fromtimestamp(1_709_287_200 + 3600 * int(h), UTC).isoformat(),
            "machine": "m1",
            "note": f"n{h}",
        }
        for h in hours
    ]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = StreamSpec(
        name="log", kind="text", path="log.jsonl", key="machine", columns=("note",), window_s=7200.0
    )
    out = load_stream(spec, tmp_path)
    assert out.stats.jumps == 0 and out.stats.unsorted > 50
    assert out.frame["segment"].n_unique() == 1 and out.frame.height == 200  # every line kept, one segment
    assert out.frame["t_us"].is_sorted()
