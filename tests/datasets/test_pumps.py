"""The pumps demo generator: schema, determinism, balance, files, deliberate corruption, signatures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import soundfile as sf
from PIL import Image

from plait.config import Config
from plait.datasets.pumps import CLASSES, NUMERIC, PumpsDataset, generate_pumps
from plait.errors import ConfigError

N = 60


@pytest.fixture(scope="module")
def pumps(tmp_path_factory: pytest.TempPathFactory) -> PumpsDataset:
    return generate_pumps(tmp_path_factory.mktemp("pumps"), n=N, seed=7, corrupt_fraction=0.1)


@pytest.fixture(scope="module")
def table(pumps: PumpsDataset) -> pl.DataFrame:
    return pl.read_parquet(pumps.table_path)


def _rows(table: pl.DataFrame, ids: tuple[str, ...]) -> pl.DataFrame:
    return table.filter(pl.col("inspection_id").is_in(list(ids)))


def _clean(table: pl.DataFrame, pumps: PumpsDataset, *kinds: str) -> pl.DataFrame:
    broken = {i for kind in kinds for i in pumps.corrupted[kind]}
    return table.filter(~pl.col("inspection_id").is_in(list(broken)))


def _loads_png(path: Path) -> bool:
    try:
        with Image.open(path) as img:
            img.load()
    except OSError:
        return False
    return True


def _reads_wav(path: Path) -> bool:
    try:
        sf.read(path)
    except sf.LibsndfileError:
        return False
    return True


def test_table_schema(table: pl.DataFrame, pumps: PumpsDataset) -> None:
    assert list(table.schema.items()) == list(
        {
            "inspection_id": pl.String,
            "pump_model": pl.String,
            "site": pl.String,
            "power_kw": pl.Float64,
            "age_years": pl.Float64,
            "rpm": pl.Float64,
            "vibration": pl.List(pl.List(pl.Float32)),
            "sound": pl.String,
            "thermal": pl.String,
            "note": pl.String,
            "fault": pl.String,
        }.items()
    )
    assert table.height == N
    assert table["inspection_id"].n_unique() == N
    assert pumps.label == "fault"
    assert pumps.classes == CLASSES
    assert pumps.table_path.parent == pumps.root


def test_fields_section_is_a_valid_config(pumps: PumpsDataset, table: pl.DataFrame) -> None:
    cfg = Config.from_dict(
        {
            "data": {"path": pumps.table_path.name},
            "task": {"label": pumps.label},
            "fields": dict(pumps.fields),
        },
        base_dir=pumps.root,
    )
    assert cfg.field_names == ("vibration", "sound", "thermal", "note", "specs")
    assert {f.name: f.kind for f in cfg.fields} == {
        "vibration": "timeseries",
        "sound": "audio",
        "thermal": "image",
        "note": "text",
        "specs": "tabular",
    }
    specs = next(f for f in cfg.fields if f.name == "specs")
    assert set(specs.options["numeric"]) | set(specs.options["categorical"]) <= set(table.columns)


def test_classes_are_balanced(table: pl.DataFrame) -> None:
    counts = dict(table["fault"].value_counts().iter_rows())
    assert set(counts) == set(CLASSES)
    assert max(counts.values()) - min(counts.values()) <= 1


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    a = generate_pumps(tmp_path / "a", n=24, seed=3)
    b = generate_pumps(tmp_path / "b", n=24, seed=3)
    c = generate_pumps(tmp_path / "c", n=24, seed=4)
    assert pl.read_parquet(a.table_path).equals(pl.read_parquet(b.table_path), null_equal=True)
    assert a.corrupted == b.corrupted
    files_a = sorted(p.relative_to(a.root) for p in a.root.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b.root) for p in b.root.rglob("*") if p.is_file())
    for rel in files_a:
        assert (a.root / rel).read_bytes() == (b.root / rel).read_bytes(), rel
    assert (a.root / "thermal" / "insp-00000.png").read_bytes() != (
        c.root / "thermal" / "insp-00000.png"
    ).read_bytes()
    assert pl.read_parquet(a.table_path)["note"].to_list() != pl.read_parquet(c.table_path)["note"].to_list()


def test_media_files_exist_and_decode(pumps: PumpsDataset, table: pl.DataFrame) -> None:
    for rel in table["sound"].to_list() + table["thermal"].to_list():
        assert (pumps.root / rel).is_file(), rel
    clean = _clean(table, pumps, "thermal_truncated", "sound_empty", "sound_garbage")
    for rel in clean["thermal"]:
        with Image.open(pumps.root / rel) as img:
            assert (img.size, img.mode) == ((32, 32), "RGB")
    for rel in clean["sound"]:
        audio, rate = sf.read(pumps.root / rel, dtype="int16")
        assert (rate, audio.shape) == (8000, (8000,))
        assert sf.info(str(pumps.root / rel)).subtype == "PCM_16"


def test_corrupt_rows_are_counted_and_really_broken(pumps: PumpsDataset, table: pl.DataFrame) -> None:
    k = round(0.1 * N)
    sizes = {kind: len(ids) for kind, ids in pumps.corrupted.items()}
    assert sizes == {
        "thermal_truncated": k,
        "sound_empty": k - k // 2,
        "sound_garbage": k // 2,
        "note_empty": k,
        "vibration_nan_run": k - k // 2,
        "vibration_all_nan": k // 2,
        "specs_null": k,
    }
    for rel in _rows(table, pumps.corrupted["thermal_truncated"])["thermal"]:
        assert not _loads_png(pumps.root / rel)
    for rel in _rows(table, pumps.corrupted["sound_empty"])["sound"]:
        assert (pumps.root / rel).stat().st_size == 0
        assert not _reads_wav(pumps.root / rel)
    for rel in _rows(table, pumps.corrupted["sound_garbage"])["sound"]:
        assert (pumps.root / rel).stat().st_size > 0
        assert not _reads_wav(pumps.root / rel)
    assert set(_rows(table, pumps.corrupted["note_empty"])["note"]) == {""}
    for series in _rows(table, pumps.corrupted["vibration_nan_run"])["vibration"]:
        missing = np.isnan(np.array(series.to_list())).all(axis=1)  # (256,) steps with no reading
        steps = np.flatnonzero(missing)
        assert 8 <= steps.size <= 32 and steps[-1] - steps[0] == steps.size - 1  # one short run
    for series in _rows(table, pumps.corrupted["vibration_all_nan"])["vibration"]:
        assert np.isnan(np.array(series.to_list())).all()
    nulls = _rows(table, pumps.corrupted["specs_null"]).select(NUMERIC).null_count().row(0)
    assert sum(nulls) >= k


def test_rows_not_listed_as_corrupt_are_clean(pumps: PumpsDataset, table: pl.DataFrame) -> None:
    for rel in _clean(table, pumps, "thermal_truncated")["thermal"]:
        assert _loads_png(pumps.root / rel)
    for rel in _clean(table, pumps, "sound_empty", "sound_garbage")["sound"]:
        assert _reads_wav(pumps.root / rel)
    assert all(note.strip() for note in _clean(table, pumps, "note_empty")["note"])
    vibration = np.array(
        _clean(table, pumps, "vibration_nan_run", "vibration_all_nan")["vibration"].to_list()
    )
    assert vibration.shape[1:] == (256, 3) and np.isfinite(vibration).all()
    assert _clean(table, pumps, "specs_null").select(NUMERIC).null_count().sum_horizontal().item() == 0


def test_no_corruption_when_fraction_is_zero(tmp_path: Path) -> None:
    clean = generate_pumps(tmp_path, n=12, seed=1, corrupt_fraction=0.0)
    assert all(len(ids) == 0 for ids in clean.corrupted.values())
    table = pl.read_parquet(clean.table_path)
    assert table.null_count().sum_horizontal().item() == 0
    assert np.isfinite(np.array(table["vibration"].to_list())).all()


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"n": 0}, "n must be"), ({"corrupt_fraction": 0.7}, "corrupt")]
)
def test_bad_arguments_name_the_parameter(tmp_path: Path, kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        generate_pumps(tmp_path, **kwargs)  # type: ignore[arg-type]


def test_each_sensor_shows_its_faults(pumps: PumpsDataset, table: pl.DataFrame) -> None:
    """Medians over a class, so the few undeveloped or corrupt rows do not matter."""

    def median_of(fault: str, column: str, stat: Callable[[Any], float | None]) -> float:
        values = [stat(v) for v in table.filter(pl.col("fault") == fault)[column].to_list()]
        return float(np.median([v for v in values if v is not None]))

    def vibration_rms(series: list[list[float]]) -> float | None:
        x = np.array(series)
        return float(np.sqrt(np.nanmean(x**2))) if np.isfinite(x).any() else None

    def hiss_power(rel: str) -> float | None:
        if not _reads_wav(pumps.root / rel):
            return None
        audio, _ = sf.read(pumps.root / rel)
        power = np.abs(np.fft.rfft(audio)) ** 2  # 1 Hz bins
        return float(power[2500:3800].mean())

    def housing_brightness(rel: str) -> float | None:
        if not _loads_png(pumps.root / rel):
            return None
        with Image.open(pumps.root / rel) as img:
            return float(np.asarray(img, dtype=np.float64)[12:20, 8:24].mean())

    assert median_of("imbalance", "vibration", vibration_rms) > 2 * median_of(
        "normal", "vibration", vibration_rms
    )
    assert median_of("seal_leak", "sound", hiss_power) > 5 * median_of("normal", "sound", hiss_power)
    assert median_of("overheating", "thermal", housing_brightness) > 1.3 * median_of(
        "normal", "thermal", housing_brightness
    )
    # the modalities that cannot see a fault: overheating vibrates like normal
    ratio = median_of("overheating", "vibration", vibration_rms) / median_of(
        "normal", "vibration", vibration_rms
    )
    assert 0.7 < ratio < 1.4
