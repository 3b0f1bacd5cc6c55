"""The bad-input corpus (issue 13): hostile or careless inputs, generated at test time, each with
the outcome it must have — a typed error (a PlaitError subclass naming what is wrong), a counted
absence (the value becomes an absent field, counted with its reason in the load report), or a
bounded cost. Nothing may crash with a raw traceback, hang, or be silently used or dropped.

Serving attacks (slow clients, decode bombs) have their own tests in tests/serving/."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf
from PIL import Image

from plait.bundle import load_bundle
from plait.config import Config, load_config
from plait.data.dataset import LoadReport, load_table
from plait.errors import BundleError, ConfigError, DataError, PlaitError
from plait.modalities.audio import AudioModality
from plait.modalities.image import ImageModality
from plait.modalities.tabular import TabularModality

TYPED = "typed error"
COUNTED = "counted absence"


@dataclass(frozen=True)
class Case:
    name: str
    outcome: str  # TYPED or COUNTED
    run: Callable[[Path], object]  # raises (TYPED) or returns a LoadReport (COUNTED)
    expect: str  # TYPED: a fragment of the error; COUNTED: the absence reason (or "masked")
    error: type[PlaitError] = PlaitError


def _config_file(tmp: Path, text: str) -> Path:
    path = tmp / "plait.yaml"
    path.write_text("task: {label: y}\nfields: {x: {kind: tabular, numeric: [x]}}\n" + text)
    return path


def _bomb(tmp: Path) -> object:
    levels = ['a0: &a0 ["lol"]'] + [
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)
    ]
    return load_config(_config_file(tmp, "\n".join(levels) + "\n"))


def _images(tmp: Path, damage: Callable[[Path], None]) -> LoadReport:
    for i in range(3):
        Image.new("L", (16, 16), i * 40).save(tmp / f"{i}.png")
    damage(tmp / "2.png")
    modality = ImageModality("photo", size=8, channels=1)
    table = pl.DataFrame({"photo": ["0.png", "1.png", "2.png"]})
    modality.fit(table.head(2), tmp)
    return load_table(table, {"photo": modality}, tmp)[1]


def _wavs(tmp: Path, damage: Callable[[Path], None]) -> LoadReport:
    rng = np.random.default_rng(0)
    for i in range(3):
        sf.write(tmp / f"{i}.wav", (0.1 * rng.normal(size=4000)).astype(np.float32), 8000, subtype="PCM_16")
    damage(tmp / "2.wav")
    modality = AudioModality("sound", sample_rate=8000, max_seconds=0.5)
    table = pl.DataFrame({"sound": ["0.wav", "1.wav", "2.wav"]})
    modality.fit(table.head(2), tmp)
    return load_table(table, {"sound": modality}, tmp)[1]


def _bomb_png(path: Path) -> None:
    """A PNG whose header promises 50,000 × 50,000 pixels (2.5 Gpx) in a few dozen bytes: the
    image must be refused from its header, before any decoding."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 0, 0, 0, 0)  # 8-bit greyscale
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _cut(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _numbers(tmp: Path, values: list[object]) -> LoadReport:
    modality = TabularModality("specs", numeric=["x"])
    modality.fit(pl.DataFrame({"x": [1.0, 2.0, 3.0]}), tmp)
    return load_table(pl.DataFrame({"x": values}, strict=False), {"specs": modality}, tmp)[1]


def _escape(tmp: Path, link: bool) -> LoadReport:
    outside = tmp / "outside"
    inside = tmp / "root"
    outside.mkdir()
    inside.mkdir()
    Image.new("L", (16, 16), 9).save(outside / "secret.png")
    Image.new("L", (16, 16), 9).save(inside / "ok.png")
    if link:
        (inside / "evil.png").symlink_to(outside / "secret.png")
    modality = ImageModality("photo", size=8, channels=1)
    modality.fit(pl.DataFrame({"photo": ["ok.png"]}), inside)
    value = "evil.png" if link else "../outside/secret.png"
    return load_table(pl.DataFrame({"photo": ["ok.png", value]}), {"photo": modality}, inside)[1]


def _bundle(tmp: Path, bundle: Path, damage: Callable[[Path], None]) -> object:
    copy = tmp / "bundle"
    shutil.copytree(bundle, copy)
    damage(copy)
    return load_bundle(copy)


def _edit_json(name: str, edit: Callable[[dict], None]) -> Callable[[Path], None]:
    import json

    def damage(folder: Path) -> None:
        data = json.loads((folder / name).read_text())
        edit(data)
        (folder / name).write_text(json.dumps(data))

    return damage


def _yaml(extra: str) -> Callable[[Path], object]:
    return lambda t: load_config(_config_file(t, extra))


def _unknown_fusion(tmp: Path) -> object:
    from plait.build import check_config

    raw = {"task": {"label": "y"}, "fields": {"x": "tabular"}, "model": {"fusion": "gatd"}}
    check_config(Config.from_dict(raw), paths=False)
    return None


def _tampered(bundle: Path, damage: Callable[[Path], None]) -> Callable[[Path], object]:
    return lambda t: _bundle(t, bundle, damage)


def _weights(data: bytes | None) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        weights = folder / "model.safetensors"
        if data is None:
            _cut(weights)
        else:
            weights.write_bytes(data)

    return damage


def cases(bundle: Path) -> list[Case]:
    no_task = _edit_json("plait.json", lambda d: d.pop("task"))
    reversed_classes = _edit_json("plait.json", lambda d: d["task"]["classes"].reverse())
    return [
        Case("yaml alias bomb", TYPED, _bomb, "expands to more than", ConfigError),
        Case(
            "duplicate yaml key", TYPED, _yaml("train: {epochs: 1, epochs: 2}\n"), "given twice", ConfigError
        ),
        Case("infinite learning rate", TYPED, _yaml("train: {lr: .inf}\n"), "train.lr", ConfigError),
        Case(
            "image size typo",
            TYPED,
            lambda t: ImageModality("photo", size=100000),
            "fields.photo.size",
            ConfigError,
        ),
        Case("unknown fusion", TYPED, _unknown_fusion, "did you mean 'gated'", ConfigError),
        Case("truncated png", COUNTED, lambda t: _images(t, _cut), "undecodable"),
        Case("zero-byte png", COUNTED, lambda t: _images(t, lambda p: p.write_bytes(b"")), "undecodable"),
        Case(
            "garbage as png",
            COUNTED,
            lambda t: _images(t, lambda p: p.write_bytes(b"\x89PNG no")),
            "undecodable",
        ),
        Case("decompression-bomb png", COUNTED, lambda t: _images(t, _bomb_png), "too large"),
        Case("truncated wav", COUNTED, lambda t: _wavs(t, _cut), "truncated"),
        Case("zero-byte wav", COUNTED, lambda t: _wavs(t, lambda p: p.write_bytes(b"")), "undecodable"),
        Case(
            "garbage as wav",
            COUNTED,
            lambda t: _wavs(t, lambda p: p.write_bytes(b"RIFFxxxxWAVEjunk")),
            "undecodable",
        ),
        Case("number beyond float32", COUNTED, lambda t: _numbers(t, [1e308, 2.0]), "masked"),
        Case("text in a numeric column", COUNTED, lambda t: _numbers(t, ["n/a?", 2.0]), "not a number"),
        Case(
            "path escaping the root",
            TYPED,
            lambda t: _escape(t, link=False),
            "outside the media root",
            DataError,
        ),
        Case(
            "symlink out of the root",
            TYPED,
            lambda t: _escape(t, link=True),
            "outside the media root",
            DataError,
        ),
        Case("edited statistics", TYPED, _tampered(bundle, _edit_text(Path())), "modified", BundleError),
        Case("reversed classes", TYPED, _tampered(bundle, reversed_classes), "plait.json", BundleError),
        Case("truncated weights", TYPED, _tampered(bundle, _weights(None)), "model.safetensors", BundleError),
        Case("zero-byte weights", TYPED, _tampered(bundle, _weights(b"")), "model.safetensors", BundleError),
        Case("bundle without a task", TYPED, _tampered(bundle, no_task), "task", BundleError),
        Case("ragged csv", TYPED, _ragged, "could not be read", DataError),
    ]


def _edit_text(tmp: Path) -> Callable[[Path], None]:
    """Nudge one fitted statistic (a mean) of the first field that has them: same shape, new value."""

    def edit(states: dict) -> None:
        state = next(s for s in states.values() if isinstance(s.get("mean"), list) and s["mean"])
        state["mean"][0] = float(state["mean"][0]) + 1.0

    return _edit_json("preprocessing.json", edit)


def _ragged(tmp: Path) -> object:
    from plait.data.table import read_table

    path = tmp / "bad.csv"
    path.write_text('a,b\n1,2\n3,4,5,6\n"unclosed,7\n')
    return read_table(path)


@pytest.fixture(scope="module")
def corpus(pumps_bundle) -> list[Case]:
    return cases(pumps_bundle.bundle_path)


CASE_NAMES = [c.name for c in cases(Path("."))]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_every_bad_input_has_its_outcome(name: str, corpus: list[Case], tmp_path: Path) -> None:
    case = next(c for c in corpus if c.name == name)
    start = time.perf_counter()
    if case.outcome == TYPED:
        with pytest.raises(case.error) as info:
            case.run(tmp_path)
        assert case.expect in str(info.value), str(info.value)
    else:
        report = case.run(tmp_path)
        assert isinstance(report, LoadReport)
        field = report.fields[0]
        if case.expect == "masked":
            assert field.partial_values >= 1, field
        else:
            assert field.reasons.get(case.expect, 0) >= 1, field.reasons
            assert field.absent == sum(field.reasons.values())
    assert time.perf_counter() - start < 60  # a bound on the damage, not a benchmark
