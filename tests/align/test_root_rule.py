"""`plait align` holds every path it opens, lists, follows or writes to training's data-root rule:
under the config's folder, symlinks counted where they lead (issue 13, item 5).

Layout: `tmp/data` is the root (the config's folder), `tmp/outside` lies beside it. Events every
60 s for machine m1; a thermal folder with one frame per event; an audio index with one recording
per event. The entries that escape are dropped unread and counted; the rest train.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import soundfile as sf
from PIL import Image

from plait.align.align import align
from plait.align.frames import RuleContext
from plait.align.paths import OUTSIDE_ROOT, inside_root
from plait.align.rules.audio import align_audio
from plait.align.spec import StreamSpec, parse_streams
from plait.config import Config
from plait.errors import ConfigError

START = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)
EVENTS = 12
RATE = 1000
PATTERN = r"(?P<key>m\d+)_(?P<time>\d{8}T\d{6})\.png"


def at(i: int, seconds: float = 0.0) -> datetime:
    return START + timedelta(seconds=60 * i + seconds)


def png(path: Path, shade: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), shade, dtype=np.uint8)).save(path)


def wav(path: Path, seconds: float, first: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(
        str(path), np.arange(first, first + round(seconds * RATE), dtype=np.int16), RATE, subtype="PCM_16"
    )


def frame_name(i: int) -> str:
    return f"m1_{at(i):%Y%m%dT%H%M%S}.png"


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    """Returns root, outside. Events 0..11; frames for every event: 3 is a link outside, 4 a link
    inside the root; recordings: 1 absolute outside, 2 `../` outside, 5 a link outside, 6 a clip
    joined from two recordings inside, the rest one recording each."""
    root, outside = tmp_path / "data", tmp_path / "outside"
    png(outside / "secret.png", 9)
    wav(outside / "secret_abs.wav", 1.0)
    wav(outside / "secret_rel.wav", 1.0)
    wav(outside / "secret_link.wav", 1.0)
    png(root / "store" / "kept.png", 200)
    for i in range(EVENTS):
        target = root / "thermal" / frame_name(i)
        if i == 3:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(outside / "secret.png")
        elif i == 4:
            target.symlink_to(root / "store" / "kept.png")
        else:
            png(target, 20 * i)
    (root / "recordings").mkdir(parents=True)
    (root / "recordings" / "link.wav").symlink_to(outside / "secret_link.wav")
    rows: list[dict[str, Any]] = []
    for i in range(EVENTS):
        if i == 1:
            rows.append({"start": at(i, -1.0), "file": str(outside / "secret_abs.wav")})
        elif i == 2:
            rows.append({"start": at(i, -1.0), "file": "../outside/secret_rel.wav"})
        elif i == 5:
            rows.append({"start": at(i, -1.0), "file": "recordings/link.wav"})
        elif i == 6:  # [t-1, t-0.2) + [t-0.2, t+0.5): the clip [t-0.5, t) is joined from both
            wav(root / "recordings" / "r6a.wav", 0.8)
            wav(root / "recordings" / "r6b.wav", 0.7, first=800)
            rows.append({"start": at(i, -1.0), "file": "recordings/r6a.wav"})
            rows.append({"start": at(i, -0.2), "file": "recordings/r6b.wav"})
        else:
            wav(root / "recordings" / f"r{i}.wav", 1.0)
            rows.append({"start": at(i, -1.0), "file": f"recordings/r{i}.wav"})
    pl.DataFrame(
        {
            "start": [r["start"].isoformat() for r in rows],
            "machine": ["m1"] * len(rows),
            "file": [r["file"] for r in rows],
        }
    ).write_csv(root / "audio_index.csv")
    pl.DataFrame(
        {
            "time": [at(i).isoformat() for i in range(EVENTS)],
            "machine": ["m1"] * EVENTS,
            "fault": ["a" if i % 2 else "b" for i in range(EVENTS)],
        }
    ).write_csv(root / "events.csv")
    return {"root": root, "outside": outside}


def streams(**overrides: Any) -> dict[str, Any]:
    sources = {
        "thermal": {"kind": "image", "path": "thermal", "key": "machine", "pattern": PATTERN,
                    "time_format": "%Y%m%dT%H%M%S", "timezone": "UTC", "tolerance_s": 1.0},
        "sound": {"kind": "audio", "path": "audio_index.csv", "time": "start", "key": "machine",
                  "file": "file", "duration_s": 0.5, "tolerance_s": 0.05},
    }  # fmt: skip
    raw = {
        "anchors": {"path": "events.csv", "time": "time", "key": "machine", "label": "fault"},
        "sources": sources,
    }
    for key, value in overrides.items():
        if key in sources:
            sources[key] = {**sources[key], **value}
        else:
            raw[key] = value
    return raw


@pytest.fixture
def no_reads_outside(world: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail the test if soundfile opens anything under `outside`; returns the paths it opened."""
    opened: list[str] = []
    outside = world["outside"].resolve()

    def guard(real: Any) -> Any:
        def call(file: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(file, (str, os.PathLike)):
                opened.append(str(file))
                assert not Path(file).resolve().is_relative_to(outside), f"opened {file}, outside the root"
            return real(file, *args, **kwargs)

        return call

    monkeypatch.setattr(sf, "info", guard(sf.info))
    monkeypatch.setattr(sf, "read", guard(sf.read))
    return opened


def test_media_outside_the_root_is_absent_counted_and_never_opened(
    world: dict[str, Path], no_reads_outside: list[str]
) -> None:
    root = world["root"]
    result = align(parse_streams(streams()), root, write=False)
    assert no_reads_outside  # the guard saw the recordings inside
    report = {s.name: s for s in result.report.streams}
    sound, thermal = report["sound"], report["thermal"]

    assert sound.load.outside_root == 3  # absolute, ../ and a symlink leading out
    assert sound.load.examples["outside_root"] == (1, 2, 5)  # audio index rows, 0-based
    assert sound.anomalies()[OUTSIDE_ROOT] == 3
    note = next(n for n in sound.load.notes if OUTSIDE_ROOT in n)
    assert note.startswith("3 rows dropped unread: file outside data root (rows 1, 2, 5), e.g. ")
    assert "secret_abs.wav" in note and "move the files under the config's folder" in note
    table = result.table
    assert table["sound__status"].to_list()[1:7] == [
        "absent",
        "absent",
        "observed",
        "observed",
        "absent",
        "observed",
    ]
    assert sound.details["clips_spanning"] == 1

    assert thermal.load.outside_root == 1
    assert thermal.load.examples["outside_root"] == (3,)  # files in sorted order: event 3's frame
    note = next(n for n in thermal.load.notes if OUTSIDE_ROOT in n)
    assert frame_name(3) in note
    assert table["thermal__status"][3] == "absent"  # the frames either side are 60 s away
    assert table["thermal"][4] == "store/kept.png"  # a symlink inside the root: used, where it leads
    assert report["thermal"].to_json()["anomalies"] == {OUTSIDE_ROOT: 1}


def test_every_path_align_writes_is_accepted_by_training(world: dict[str, Path]) -> None:
    from plait.training.fit import prepare

    root = world["root"]
    raw = {
        "task": {"label": "fault"},
        "streams": streams(),
        "data": {"split": {"kind": "random"}},
        "fields": {
            "thermal": {"kind": "image", "size": 8},
            "sound": {
                "kind": "audio",
                "offset_column": "sound__offset_s",
                "duration_column": "sound__duration_s",
                "sample_rate": RATE,
                "max_seconds": 0.5,
                "n_mels": 8,
                "n_fft": 64,
                "hop_length": 32,
            },
        },
        "train": {"epochs": 1, "batch_size": 4, "progress": False},
    }
    config = Config.from_dict(raw, base_dir=root)
    assert config.streams is not None
    result = align(config.streams, root)
    written = result.table.filter(pl.col("sound__offset_s") == 0.0)["sound"].to_list()
    assert written == ["aligned_media/sound_6.wav"]  # the joined clip, inside the root
    prepared = prepare(config)  # refuses any row whose path leads outside data.root
    for name in ("thermal", "sound"):  # every file align kept is a file training loads
        assert int(prepared.tensors.present[name].sum()) == result.table[name].drop_nulls().len()
    files = [*result.table["sound"].drop_nulls(), *result.table["thermal"].drop_nulls()]
    assert all(not Path(f).is_absolute() and ".." not in Path(f).parts for f in files)


def test_a_clip_is_never_written_through_a_symlink(world: dict[str, Path]) -> None:
    root, outside = world["root"], world["outside"]
    victim = outside / "victim.txt"
    victim.write_text("keep me")
    (root / "aligned_media").mkdir()
    (root / "aligned_media" / "sound_6.wav").symlink_to(victim)
    align(parse_streams(streams()), root, write=False)
    assert victim.read_text() == "keep me"
    clip = root / "aligned_media" / "sound_6.wav"
    assert not clip.is_symlink() and sf.info(str(clip)).frames == 500


def test_the_audio_rule_does_not_read_pieces_outside_the_root(
    world: dict[str, Path], no_reads_outside: list[str]
) -> None:
    """A stream frame that names an outside file (not from load_stream) still never reaches it."""
    root, outside = world["root"], world["outside"]
    stream = pl.DataFrame(
        {
            "key": ["m1", "m1"],
            "t_us": [0, 800_000],
            "segment": [0, 0],
            "file": ["recordings/r0.wav", str(outside / "secret_abs.wav")],
            "duration_s": [0.8, 1.0],
            "sample_rate": [RATE, RATE],
        },
        schema={"key": pl.Utf8, "t_us": pl.Int64, "segment": pl.Int32, "file": pl.Utf8,
                "duration_s": pl.Float64, "sample_rate": pl.Int64},
    )  # fmt: skip
    anchors = pl.DataFrame(
        {"anchor": [0], "key": ["m1"], "t_us": [1_200_000]},
        schema={"anchor": pl.UInt32, "key": pl.Utf8, "t_us": pl.Int64},
    )
    spec = StreamSpec(name="sound", kind="audio", path="x", key="machine", duration_s=0.5, tolerance_s=0.05)
    out = align_audio(stream, anchors, spec, RuleContext(base_dir=root, media_dir=root / "aligned_media"))
    assert out.details["outside_root"] == 1
    assert out.columns["sound__status"].to_list() == ["absent"]
    assert not (root / "aligned_media").exists()


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"sound": {"path": "../outside/index.csv"}}, "streams.sources.sound.path"),
        ({"sound": {"path": "{outside}/index.csv"}}, "streams.sources.sound.path"),
        ({"sound": {"path": "linked_index.csv"}}, "streams.sources.sound.path"),
        ({"thermal": {"path": "{outside}/frames"}}, "streams.sources.thermal.path"),
        ({"anchors": {"path": "../outside/events.csv", "key": "machine"}}, "streams.anchors.path"),
        ({"media_dir": "../outside/clips"}, "streams.media_dir"),
    ],
)
def test_a_source_outside_the_config_folder_is_a_config_error(
    world: dict[str, Path], overrides: dict[str, Any], key: str
) -> None:
    root, outside = world["root"], world["outside"]
    pl.DataFrame({"start": [at(0).isoformat()], "machine": ["m1"], "file": ["x.wav"]}).write_csv(
        outside / "index.csv"
    )
    pl.read_csv(root / "events.csv").write_csv(outside / "events.csv")
    (root / "linked_index.csv").symlink_to(outside / "index.csv")
    png(outside / "frames" / frame_name(0), 1)
    overrides = {
        name: {k: v.format(outside=outside) for k, v in value.items()} if isinstance(value, dict) else value
        for name, value in overrides.items()
    }
    with pytest.raises(ConfigError) as caught:
        align(parse_streams(streams(**overrides)), root, write=False)
    message = str(caught.value)
    assert message.startswith(f"{key}: ")
    assert "outside the data root" in message and str(root.resolve()) in message
    assert "move the data under that folder" in message


def test_labels_table_outside_is_a_config_error(world: dict[str, Path]) -> None:
    root, outside = world["root"], world["outside"]
    pl.DataFrame({"machine": ["m1"], "fault": ["a"]}).write_csv(outside / "labels.csv")
    anchors = {"hop_s": 30.0, "key": "machine", "label": "fault", "labels": "../outside/labels.csv"}
    with pytest.raises(
        ConfigError, match=r"^streams\.anchors\.labels: '\.\./outside/labels\.csv' resolves to"
    ):
        align(parse_streams(streams(anchors=anchors)), root, write=False)


def test_inside_root_follows_links_and_dots(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "in").symlink_to(root / "a")
    (root / "out").symlink_to(tmp_path)
    assert inside_root("in/x.wav", root, "k") == (root / "a" / "x.wav").resolve()
    assert inside_root("a/../a/x.wav", root, "k") == (root / "a" / "x.wav").resolve()
    assert inside_root(str(root / "a"), root, "k") == (root / "a").resolve()
    for escape in ("out/x.wav", "../x.wav", "/etc/passwd", "a/../../x.wav"):
        with pytest.raises(ConfigError, match=r"^k: "):
            inside_root(escape, root, "k")
