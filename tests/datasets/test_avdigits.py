"""The AV-digits builder on the real shared data (skipped where it is absent): pairing, the
leave-one-speaker-out split, PCA degradation, determinism, and loading through plait's modalities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf
import torch
from PIL import Image

from plait.build import build_modalities
from plait.config import Config
from plait.data.dataset import load_table
from plait.data.split import split_counts
from plait.datasets.avdigits import (
    LABEL,
    SPEAKERS,
    TABLE_COLUMNS,
    AVDigits,
    AVDigitsSources,
    build_avdigits,
    default_avdigits_paths,
    pca_degrade,
)
from plait.errors import ConfigError, DataError

LIMIT = 4  # takes per digit and speaker: 240 rows
HELD_OUT = "nicolas"


@pytest.fixture(scope="module")
def sources() -> AVDigitsSources:
    found = default_avdigits_paths()
    if found is None:
        pytest.skip("the shared MNIST/FSDD data (../shared/data or $PLAIT_SHARED_DATA) is not here")
    return found


@pytest.fixture(scope="module")
def avd(sources: AVDigitsSources, tmp_path_factory: pytest.TempPathFactory) -> AVDigits:
    out = tmp_path_factory.mktemp("avdigits")
    return build_avdigits(
        sources.mnist, sources.fsdd, out, held_out_speaker=HELD_OUT, seed=3, limit_per_digit_speaker=LIMIT
    )


@pytest.fixture(scope="module")
def table(avd: AVDigits) -> pl.DataFrame:
    return pl.read_csv(avd.table_path)


@pytest.fixture(scope="module")
def mnist(sources: AVDigitsSources) -> dict[str, np.ndarray]:
    with np.load(sources.mnist) as data:
        return {key: data[key] for key in data.files}


def _original(mnist: dict[str, np.ndarray], index: int) -> tuple[np.ndarray, int]:
    """The MNIST image and label behind a rasbt index (train 0..59999, test 60000..69999)."""
    if index < 60000:
        return mnist["x_train"][index], int(mnist["y_train"][index])
    return mnist["x_test"][index - 60000], int(mnist["y_test"][index - 60000])


def _png(root: Path, relative: str) -> np.ndarray:
    with Image.open(root / relative) as image:
        assert image.mode == "L" and image.size == (28, 28)
        return np.asarray(image)


def test_table_schema_and_counts(avd: AVDigits, table: pl.DataFrame) -> None:
    assert tuple(table.columns) == TABLE_COLUMNS
    rows = 10 * len(SPEAKERS) * LIMIT
    assert table.height == rows == sum(avd.counts.values())
    assert table["id"].n_unique() == rows
    assert dict(table["split"].value_counts().iter_rows()) == dict(avd.counts)
    assert set(table["split"]) == {"train", "val", "test"}
    assert avd.table_path.parent == avd.root
    assert (avd.held_out_speaker, avd.seed, avd.val_fraction) == (HELD_OUT, 3, 0.15)


def test_leave_one_speaker_out(table: pl.DataFrame) -> None:
    test = table.filter(pl.col("split") == "test")
    rest = table.filter(pl.col("split") != "test")
    assert set(test["speaker"]) == {HELD_OUT}
    assert test.height == 10 * LIMIT
    assert HELD_OUT not in set(rest["speaker"])
    assert set(rest["speaker"]) == set(SPEAKERS) - {HELD_OUT}
    per_digit = (len(SPEAKERS) - 1) * LIMIT
    expected_val = split_counts(per_digit, 0.15, 0.0)[1]
    val_per_digit = rest.filter(pl.col("split") == "val").group_by(LABEL).len()
    assert sorted(val_per_digit["len"].to_list()) == [expected_val] * 10


def test_each_row_pairs_one_digit(
    avd: AVDigits, table: pl.DataFrame, mnist: dict[str, np.ndarray], sources: AVDigitsSources
) -> None:
    for row in table.iter_rows(named=True):
        digit, speaker, take = row["id"].split("_")
        assert (int(digit), speaker, int(take)) == (row[LABEL], row["speaker"], row["take"])
        _, image_label = _original(mnist, row["mnist_index"])
        assert image_label == row[LABEL]
        assert (row["mnist_index"] >= 60000) == (row["split"] == "test")  # test rows use MNIST test images
        assert row["audio"] == f"audio/{row['id']}.wav"
    for row in table.head(5).iter_rows(named=True):
        source = sources.fsdd / "recordings" / f"{row['id']}.wav"
        assert (avd.root / row["audio"]).read_bytes() == source.read_bytes()


def test_images_are_distinct(table: pl.DataFrame) -> None:
    assert table["mnist_index"].n_unique() == table.height
    assert table["image"].n_unique() == table.height


def test_pca_removes_most_variance(avd: AVDigits, table: pl.DataFrame, mnist: dict[str, np.ndarray]) -> None:
    assert 0.0 < avd.variance_kept < 0.5
    residual = total = 0.0
    for row in table.filter(pl.col("split") == "test").iter_rows(named=True):
        original, _ = _original(mnist, row["mnist_index"])
        degraded = _png(avd.root, row["image"]).astype(np.float64)
        residual += float(np.square(degraded - original).sum())
        total += float(np.square(original - original.mean()).sum())
    assert residual / total > 0.4  # most of each unseen image is gone


def test_pca_degrade_keeps_everything_with_all_components(mnist: dict[str, np.ndarray]) -> None:
    images = mnist["x_train"][:50]
    rebuilt, kept = pca_degrade(images, images, 50)
    assert kept == pytest.approx(1.0)
    assert np.abs(rebuilt.astype(int) - images.astype(int)).max() <= 1
    few, kept_few = pca_degrade(images, images, 2)
    assert kept_few < 1.0
    assert np.abs(few.astype(int) - images.astype(int)).max() > 50
    with pytest.raises(DataError, match="needs at least 60 training images"):
        pca_degrade(images, images, 60)


def test_same_seed_same_bytes_and_overwrites(
    avd: AVDigits, sources: AVDigitsSources, tmp_path: Path, table: pl.DataFrame
) -> None:
    again = build_avdigits(
        sources.mnist,
        sources.fsdd,
        tmp_path,
        held_out_speaker=HELD_OUT,
        seed=3,
        limit_per_digit_speaker=LIMIT,
    )
    assert again.table_path.read_bytes() == avd.table_path.read_bytes()
    for relative in table["image"].head(10):
        assert (tmp_path / relative).read_bytes() == (avd.root / relative).read_bytes()
    other = build_avdigits(
        sources.mnist,
        sources.fsdd,
        tmp_path,
        held_out_speaker=HELD_OUT,
        seed=4,
        limit_per_digit_speaker=LIMIT,
    )  # into the same folder: overwritten
    changed = pl.read_csv(other.table_path)
    assert changed["id"].to_list() == table["id"].to_list()
    assert changed["mnist_index"].to_list() != table["mnist_index"].to_list()
    for relative in changed["image"].head(10):
        assert (tmp_path / relative).read_bytes() != (avd.root / relative).read_bytes()


def test_unknown_speaker_names_the_speakers(sources: AVDigitsSources, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="did you mean 'theo'") as info:
        build_avdigits(sources.mnist, sources.fsdd, tmp_path, held_out_speaker="teo")
    assert all(speaker in str(info.value) for speaker in SPEAKERS)
    assert not (tmp_path / "avdigits.csv").exists()


def test_bad_settings_are_config_errors(sources: AVDigitsSources, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pca_components"):
        build_avdigits(sources.mnist, sources.fsdd, tmp_path, pca_components=0)
    with pytest.raises(ConfigError, match="limit_per_digit_speaker"):
        build_avdigits(sources.mnist, sources.fsdd, tmp_path, limit_per_digit_speaker=51)


def test_config_loads_rows_through_plait(avd: AVDigits, table: pl.DataFrame) -> None:
    config = Config.from_yaml(avd.config_path)
    assert config.table_path().resolve() == avd.table_path.resolve()
    assert config.media_root().resolve() == avd.root.resolve()
    assert (config.task.label, config.data.split.column) == (LABEL, "split")
    assert config.field_names == ("image", "audio")
    modalities = build_modalities(config)
    few = table.head(12)
    for modality in modalities.values():
        modality.fit(few, config.media_root())
    tensors, report = load_table(few, modalities, config.media_root())
    assert report.absent_total == 0
    assert all(bool(p.all()) for p in tensors.present.values())
    assert tensors.values["image"].shape == (12, 1, 28, 28)
    assert tensors.values["audio"].shape[:2] == (12, 32)
    assert torch.isfinite(tensors.values["audio"]).all()
    info = sf.info(avd.root / few["audio"][0])
    assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")


def test_default_paths_absent_gives_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAIT_SHARED_DATA", str(tmp_path))
    assert default_avdigits_paths() is None
