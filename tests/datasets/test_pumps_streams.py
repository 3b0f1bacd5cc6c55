"""The pumps demo as raw streams: determinism, files and columns, the deliberate mess, the config."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf
import yaml

from plait.align.align import align
from plait.config import Config
from plait.datasets.pumps import CLASSES
from plait.datasets.pumps_streams import PumpsStreams, generate_pumps_streams
from plait.errors import ConfigError

N, MACHINES = 60, 6
THERMAL = re.compile(r"(?P<key>m\d+)_(?P<time>\d{8}T\d{6})\.png")


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> PumpsStreams:
    return generate_pumps_streams(tmp_path_factory.mktemp("streams"), n=N, seed=3, machines=MACHINES)


@pytest.fixture(scope="module")
def events(streams: PumpsStreams) -> pl.DataFrame:
    return pl.read_csv(streams.events_path).with_columns(
        pl.col("time").str.to_datetime(time_zone="UTC").dt.epoch("ms").alias("t_ms")
    )


@pytest.fixture(scope="module")
def vibration(streams: PumpsStreams) -> pl.DataFrame:
    return pl.read_parquet(streams.root / "vibration.parquet")


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(tmp_path: Path, streams: PumpsStreams) -> None:
    again = generate_pumps_streams(tmp_path / "a", n=N, seed=3, machines=MACHINES)
    assert _files(again.root) == _files(streams.root)
    assert again.messiness == streams.messiness
    other = generate_pumps_streams(tmp_path / "b", n=N, seed=4, machines=MACHINES)
    assert (other.root / "events.csv").read_bytes() != (streams.root / "events.csv").read_bytes()


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="n must be an integer >= 1"):
        generate_pumps_streams(tmp_path, n=0)
    with pytest.raises(ConfigError, match="machines must be an integer"):
        generate_pumps_streams(tmp_path, n=10, machines=True)


def test_events_are_the_anchors(streams: PumpsStreams, events: pl.DataFrame) -> None:
    assert events.columns[:3] == ["time", "machine", "fault"]
    assert events.height == N
    assert events["time"].str.ends_with("Z").all()
    assert set(events["fault"]) <= set(CLASSES)
    assert events["machine"].n_unique() == MACHINES
    assert events["t_ms"].is_sorted()
    assert streams.classes == CLASSES
    gaps = events.sort("machine", "t_ms").select(pl.col("t_ms").diff().over("machine")).to_series()
    assert int(gaps.drop_nulls().min()) >= 2 * 3600 * 1000  # type: ignore[arg-type]  # a machine's notes and recordings never overlap


def test_vibration_schema_and_rate(vibration: pl.DataFrame, events: pl.DataFrame) -> None:
    assert vibration.schema == pl.Schema(
        {"time": pl.Int64, "machine": pl.String, "ax": pl.Float32, "ay": pl.Float32, "az": pl.Float32}
    )
    steps = vibration.select(pl.col("time").diff().over("machine")).to_series()
    assert float(((steps >= 3) & (steps <= 7)).mean()) > 0.95  # type: ignore[arg-type]  # 200 Hz, ±1 ms of stamping jitter
    first = events.row(0, named=True)
    window = vibration.filter(
        (pl.col("machine") == first["machine"])
        & (pl.col("time") >= first["t_ms"] - 1280 - 1)
        & (pl.col("time") < first["t_ms"])
    )
    assert 240 <= window.height <= 262  # 1.28 s at 200 Hz, less any dropout


def test_vibration_mess_is_there_and_counted(streams: PumpsStreams, vibration: pl.DataFrame) -> None:
    mess = streams.messiness
    assert vibration.height - vibration.unique().height == mess["vibration_duplicate_rows"] > 0
    nan_rows = vibration.select(pl.any_horizontal(pl.col("ax", "ay", "az").is_nan()).sum()).item()
    assert nan_rows == mess["vibration_nan_rows"] > 0
    steps = vibration.select(pl.col("time").diff().over("machine")).to_series().drop_nulls()
    assert int((steps < -1000).sum()) == mess["vibration_clock_jumps"] == 1
    assert int(((steps < 0) & (steps >= -1000)).sum()) == mess["vibration_out_of_order_rows"] > 0
    assert mess["vibration_short_dropouts"] > 0 and mess["vibration_long_dropouts"] > 0


def test_recordings_cover_the_clips_except_the_counted_ones(
    streams: PumpsStreams, events: pl.DataFrame
) -> None:
    index = pl.read_csv(streams.root / "audio_index.csv")
    assert index.columns == ["file", "start", "machine"]
    rate = {sf.info(streams.root / f).samplerate for f in index["file"]}
    assert rate == {8000}
    spans = index.with_columns(
        pl.col("start").str.to_datetime(time_zone="UTC").dt.epoch("ms").alias("s"),
        pl.col("file").map_elements(lambda f: sf.info(streams.root / f).frames // 8, pl.Int64).alias("len"),
    ).with_columns((pl.col("s") + pl.col("len")).alias("e"))
    one = two = none = 0
    for machine, t in events.select("machine", "t_ms").iter_rows():
        rec = spans.filter((pl.col("machine") == machine) & (pl.col("e") > t - 1000) & (pl.col("s") < t))
        rec = rec.sort("s")
        if rec.height == 0:
            none += 1
            continue
        assert 200 <= t - 1000 - rec["s"][0] <= 3000  # it starts 0.2-3 s before the clip
        assert rec["e"][-1] >= t
        if rec.height == 1:
            one += 1
        else:
            two += 1
            assert rec.height == 2 and rec["e"][0] == rec["s"][1]  # the recorder rolled over seamlessly
    assert two == streams.messiness["sound_spanning"] > 0
    assert none == streams.messiness["sound_missing"] > 0
    assert one + two + none == N


def test_thermal_frames_names_and_offsets(streams: PumpsStreams) -> None:
    names = sorted(p.name for p in (streams.root / "thermal").iterdir())
    assert all(THERMAL.fullmatch(name) for name in names)
    assert len(names) == 3 * N - streams.messiness["thermal_missing"]
    offsets = streams.config["streams"]["sources"]["thermal"]["offsets_s"]
    assert sorted(offsets) == sorted({THERMAL.fullmatch(n)["key"] for n in names})  # type: ignore[index]
    assert all(-8.0 <= v <= -2.0 for v in offsets.values())  # each camera runs 2-8 s fast


def test_log_and_register(streams: PumpsStreams) -> None:
    log = pl.read_csv(streams.root / "log.csv")
    assert log.columns == ["time", "machine", "text"]
    mess = streams.messiness
    assert log.height == N - mess["note_missing"] + mess["note_routine_lines"]
    register = pl.read_csv(streams.root / "machines.csv")
    assert register.columns == ["time", "machine", "pump_model", "site", "power_kw", "age_years", "rated_rpm"]
    assert register.height == register["machine"].n_unique() + mess["machines_changes"]
    swapped = register.group_by("machine").agg(pl.col("pump_model").n_unique(), pl.col("age_years").min())
    assert mess["machines_model_swaps"] >= 1
    assert (swapped["age_years"] == 0.1).sum() == mess["machines_model_swaps"]  # a new pump


def test_config_parses_and_is_written(streams: PumpsStreams) -> None:
    config = Config.from_dict(streams.config, base_dir=streams.root)
    assert config.streams is not None
    assert [s.name for s in config.streams.streams] == ["vibration", "sound", "thermal", "note", "machines"]
    assert config.field_names == ("vibration", "sound", "thermal", "note", "machines")
    assert config.task.label == "fault"
    assert yaml.safe_load(streams.config_path.read_text()) == streams.config
    assert Config.from_yaml(streams.config_path).to_dict() == config.to_dict()


def test_alignment_report_counts_the_mess(streams: PumpsStreams, tmp_path: Path) -> None:
    config = Config.from_dict(streams.config, base_dir=streams.root)
    assert config.streams is not None
    result = align(config.streams, streams.root, write=False)
    report = {s.name: s for s in result.report.streams}
    mess = streams.messiness
    assert result.table.height == N
    load = report["vibration"].load
    assert (load.duplicates, load.non_finite, load.jumps, load.unsorted) == (
        mess["vibration_duplicate_rows"],
        mess["vibration_nan_rows"],
        1,
        mess["vibration_out_of_order_rows"],
    )
    assert report["vibration"].absent == mess["vibration_long_dropouts"]
    assert report["sound"].absent == mess["sound_missing"]
    assert report["sound"].details["clips_spanning"] == mess["sound_spanning"]
    assert report["thermal"].absent == mess["thermal_missing"]
    assert report["machines"].absent == mess["machines_unregistered_anchors"]
    dt = result.table["thermal__dt_s"].drop_nulls().to_numpy()
    assert np.all(dt <= 1.8)  # the offsets brought every frame of the run next to its inspection
