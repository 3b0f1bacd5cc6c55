"""`avdigits`: spoken digits (FSDD) paired with degraded handwritten digits (MNIST), AV-MNIST style.

Each of FSDD's 3,000 clips (10 digits x 6 speakers x 50 takes, 8 kHz int16 mono) becomes one row
with a distinct MNIST image of the same digit, labelled `digit`:

- Leave one speaker out: the held-out speaker's rows are `test`; of the other five speakers a
  seeded, digit-stratified `val_fraction` is `val`, the rest `train`. Test audio comes from a voice
  the model never heard.
- Images are drawn without replacement per digit, seeded: `train`/`val` rows from MNIST's training
  images, `test` rows from MNIST's test images, so no test image was seen by PCA or the model.
- Images are degraded as in MultiBench's AV-MNIST: PCA (numpy SVD) is fitted on the `train` rows'
  images only and every image is rebuilt from the mean plus its first `pca_components` components,
  rounded and clipped to 0..255. The default 5 components keep a third of the variance (0.33).
- Clips are hard-linked (copied where linking fails) into `audio/`, images written to `images/`,
  both under the output folder, so every media path stays inside plait's data root. A rebuild
  unlinks each file before writing it, so it never writes through a link into the source data.

The table `avdigits.csv` (columns `TABLE_COLUMNS`) and a plait config `plait.yaml` go to the output
folder; same inputs and seed, same bytes. Building all 3,000 rows takes about 2 s.

Measured before issue 15 (audio on the former `conv1d` encoder), on the test split (500 rows), data
seeds 0-2, 2 CPU cores: logistic regression on the image pixels 0.61-0.65; plait, held-out lucas
(the default): image alone 0.70-0.74, audio alone 0.62-0.88, both 0.94-0.97; held-out theo: image
0.70-0.74, audio 0.85-0.91, both 0.90-0.91, so theo's clips are too easy to show what the images
add. Today's figures, speakers as groups over folds and seeds, are in bench/RESULTS.md.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml
from numpy.typing import NDArray
from PIL import Image

from plait.data.split import split_counts
from plait.errors import ConfigError, DataError
from plait.registry import unknown_name_message
from plait.task import CLASSIFICATION

SPEAKERS: tuple[str, ...] = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
DIGITS = 10
TAKES = 50  # recordings per digit and speaker
LABEL = "digit"
SPLIT_COLUMN = "split"
TABLE_NAME = "avdigits.csv"
CONFIG_NAME = "plait.yaml"
TABLE_COLUMNS = ("id", "image", "audio", LABEL, "speaker", "take", "mnist_index", SPLIT_COLUMN)
DEFAULT_PCA_COMPONENTS = 5
DEFAULT_HELD_OUT_SPEAKER = "lucas"  # see the module doc for why not theo
SHARED_DATA_ENV = "PLAIT_SHARED_DATA"
# Model and training settings sized for ~12 trainings in a few minutes on 2 CPU cores.
AVDIGITS_MODEL: dict[str, int] = {"dim": 32, "hidden": 64}
AVDIGITS_TRAIN: dict[str, float | int] = {
    "epochs": 30,
    "batch_size": 64,
    "lr": 3e-3,
    "modality_dropout": 0.25,
    "patience": 8,
}


@dataclass(frozen=True)
class AVDigitsSources:
    """Where the raw data lies: MNIST's `mnist.npz` and FSDD's folder (holding `recordings/`)."""

    mnist: Path
    fsdd: Path


@dataclass(frozen=True)
class AVDigits:
    """What `build_avdigits` wrote and with which settings."""

    root: Path  # media root: `image` and `audio` paths are relative to it
    table_path: Path
    config_path: Path
    counts: Mapping[str, int]  # split -> rows
    held_out_speaker: str
    pca_components: int
    variance_kept: float  # share of the train images' variance (about their mean) the components keep
    seed: int
    val_fraction: float
    audio_linked: bool  # clips are hard links to the sources (else copies)


def default_avdigits_paths() -> AVDigitsSources | None:
    """The shared data next to the repository (or under $PLAIT_SHARED_DATA); None when absent."""
    override = os.environ.get(SHARED_DATA_ENV)
    shared = Path(override) if override else Path(__file__).resolve().parents[3].parent / "shared" / "data"
    sources = AVDigitsSources(mnist=shared / "mnist" / "mnist.npz", fsdd=shared / "fsdd")
    if sources.mnist.is_file() and (sources.fsdd / "recordings").is_dir():
        return sources
    return None


def avdigits_fields() -> dict[str, dict[str, Any]]:
    """The `fields:` section: 28x28 greyscale PNGs, and 8 kHz clips of at most 2.28 s."""
    return {
        "image": {"kind": "image", "size": 28, "channels": 1},
        "audio": {"kind": "audio", "sample_rate": 8000, "max_seconds": 2.3, "n_mels": 32, "n_fft": 256,
                  "hop_length": 128},
    }  # fmt: skip


def avdigits_config(*, seed: int = 0, fusion: str = "gated") -> dict[str, Any]:
    """A plait config (plain data) for the table, to sit next to it in the output folder."""
    return {
        "data": {"path": TABLE_NAME, "split": {"column": SPLIT_COLUMN}},
        "task": {"label": LABEL, "type": CLASSIFICATION},
        "fields": avdigits_fields(),
        "model": {"fusion": fusion, **AVDIGITS_MODEL},
        "train": {**AVDIGITS_TRAIN, "seed": seed},
        "output": "bundle",
    }


def write_avdigits_config(out: Path | str, *, seed: int = 0, fusion: str = "gated") -> Path:
    """Write `avdigits_config` to out/plait.yaml and return its path."""
    path = Path(out) / CONFIG_NAME
    path.write_text(yaml.safe_dump(avdigits_config(seed=seed, fusion=fusion), sort_keys=False))
    return path


def build_avdigits(
    mnist: Path | str,
    fsdd: Path | str,
    out: Path | str,
    *,
    held_out_speaker: str = DEFAULT_HELD_OUT_SPEAKER,
    pca_components: int = DEFAULT_PCA_COMPONENTS,
    seed: int = 0,
    val_fraction: float = 0.15,
    limit_per_digit_speaker: int | None = None,
) -> AVDigits:
    """Write the table, images, clips and config under `out` (overwriting); see the module doc.

    `limit_per_digit_speaker` keeps only takes 0..limit-1 of each digit and speaker (a quick subset).
    """
    if held_out_speaker not in SPEAKERS:
        unknown = unknown_name_message("speaker", held_out_speaker, list(SPEAKERS))
        raise DataError(f"build_avdigits: held_out_speaker: {unknown}; pass one of FSDD's six speakers")
    _check_int("pca_components", pca_components, 1, 28 * 28)
    if limit_per_digit_speaker is not None:
        _check_int("limit_per_digit_speaker", limit_per_digit_speaker, 1, TAKES)
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"build_avdigits: val_fraction must be a fraction in [0, 1), got {val_fraction!r}")
    clips = _clips(Path(fsdd), limit_per_digit_speaker)
    streams = np.random.default_rng(seed).spawn(2)
    split = _split(clips, held_out_speaker, val_fraction, streams[0])
    images, mnist_index = _pick_images(_load_mnist(Path(mnist)), clips[LABEL].to_numpy(), split, streams[1])
    degraded, variance_kept = pca_degrade(images, images[split == "train"], pca_components)

    root = Path(out)
    ids = clips["id"].to_list()
    linked = _write_media(root, ids, degraded, clips["path"].to_list())
    table = clips.select(
        "id",
        pl.Series("image", [f"images/{i}.png" for i in ids]),
        pl.Series("audio", [f"audio/{i}.wav" for i in ids]),
        LABEL,
        "speaker",
        "take",
        pl.Series("mnist_index", mnist_index, dtype=pl.Int64),
        pl.Series(SPLIT_COLUMN, split),
    )
    table_path = root / TABLE_NAME
    table.write_csv(table_path)
    return AVDigits(
        root=root,
        table_path=table_path,
        config_path=write_avdigits_config(root, seed=seed),
        counts={name: int((split == name).sum()) for name in ("train", "val", "test")},
        held_out_speaker=held_out_speaker,
        pca_components=pca_components,
        variance_kept=variance_kept,
        seed=seed,
        val_fraction=val_fraction,
        audio_linked=linked,
    )


def pca_degrade(
    images: NDArray[np.uint8], fit_on: NDArray[np.uint8], components: int
) -> tuple[NDArray[np.uint8], float]:
    """Every image rebuilt from the mean plus its first `components` principal components of
    `fit_on`, rounded and clipped to 0..255; and the share of fit_on's variance they keep."""
    train = fit_on.reshape(len(fit_on), -1).astype(np.float64)  # (N, H, W) -> (N, H*W)
    if components > min(train.shape):
        raise DataError(
            f"pca_components={components} needs at least {components} training images, got {len(train)}; "
            "lower pca_components or build more rows"
        )
    mean = train.mean(axis=0)
    _, singular, vt = np.linalg.svd(train - mean, full_matrices=False)  # vt: (min(N, H*W), H*W)
    basis = vt[:components]  # (k, H*W)
    flat = images.reshape(len(images), -1).astype(np.float64) - mean  # (M, H*W)
    rebuilt = (flat @ basis.T) @ basis + mean  # (M, H*W) -> (M, k) -> (M, H*W)
    pixels = np.clip(np.rint(rebuilt), 0, 255).astype(np.uint8).reshape(images.shape)
    power = np.square(singular)
    return pixels, float(power[:components].sum() / power.sum())


# ----------------------------------------------------------------------------- reading the sources


def _clips(fsdd: Path, limit: int | None) -> pl.DataFrame:
    """One row per FSDD recording `{digit}_{speaker}_{take}.wav`, ordered by speaker, digit, take."""
    folder = fsdd / "recordings" if (fsdd / "recordings").is_dir() else fsdd
    paths = sorted(folder.glob("*.wav")) if folder.is_dir() else []
    rows = []
    for path in paths:
        digit, speaker, take = path.stem.split("_") if path.stem.count("_") == 2 else ("", "", "")
        if not (digit.isdigit() and take.isdigit() and speaker in SPEAKERS):
            raise DataError(
                f"FSDD: {path.name} is not named {{digit}}_{{speaker}}_{{take}}.wav with a speaker among "
                f"{', '.join(SPEAKERS)}; point fsdd at an unmodified FSDD folder"
            )
        if limit is None or int(take) < limit:
            rows.append((f"{digit}_{speaker}_{take}", int(digit), speaker, int(take), str(path)))
    expected = DIGITS * len(SPEAKERS) * (TAKES if limit is None else limit)
    if len(rows) != expected:
        raise DataError(
            f"FSDD: expected {expected} recordings in {folder}, found {len(rows)}; point fsdd at the "
            "folder holding FSDD's recordings/ (10 digits x 6 speakers x 50 takes)"
        )
    schema = {"id": pl.String, LABEL: pl.Int64, "speaker": pl.String, "take": pl.Int64, "path": pl.String}
    return pl.DataFrame(rows, schema=schema, orient="row").sort("speaker", LABEL, "take")


@dataclass(frozen=True)
class _Mnist:
    x_train: NDArray[np.uint8]  # (60000, 28, 28)
    y_train: NDArray[np.uint8]
    idx_train: NDArray[np.int32]
    x_test: NDArray[np.uint8]  # (10000, 28, 28)
    y_test: NDArray[np.uint8]
    idx_test: NDArray[np.int32]


def _load_mnist(mnist: Path) -> _Mnist:
    path = mnist / "mnist.npz" if mnist.is_dir() else mnist
    if not path.is_file():
        raise DataError(f"MNIST: {path} does not exist; point mnist at mnist.npz or the folder holding it")
    with np.load(path) as data:
        try:
            return _Mnist(**{key: data[key] for key in _Mnist.__dataclass_fields__})
        except KeyError as exc:
            raise DataError(
                f"MNIST: {path} lacks array {exc}; expected x_train, y_train, idx_train, x_test, "
                "y_test, idx_test as in shared/data/mnist"
            ) from None


# ----------------------------------------------------------------------------- split and pairing


def _split(
    clips: pl.DataFrame, held_out: str, val_fraction: float, rng: np.random.Generator
) -> NDArray[np.str_]:
    """'test' for the held-out speaker; of the others, a per-digit seeded val_fraction is 'val'."""
    speakers = clips["speaker"].to_numpy()
    digits = clips[LABEL].to_numpy()
    split = np.where(speakers == held_out, "test", "train").astype("<U5")
    for digit in range(DIGITS):
        rows = np.flatnonzero((digits == digit) & (speakers != held_out))
        _, n_val, _ = split_counts(len(rows), val_fraction, 0.0)
        split[rng.permutation(rows)[:n_val]] = "val"
    return split


def _pick_images(
    mnist: _Mnist, digits: NDArray[np.int64], split: NDArray[np.str_], rng: np.random.Generator
) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """A distinct image of each row's digit: MNIST train images for train/val rows, test images for
    test rows. Returns the images (N, 28, 28) and their MNIST indices (rasbt numbering)."""
    images = np.zeros((len(digits), *mnist.x_train.shape[1:]), dtype=np.uint8)
    index = np.zeros(len(digits), dtype=np.int64)
    for is_test, x, y, idx in (
        (False, mnist.x_train, mnist.y_train, mnist.idx_train),
        (True, mnist.x_test, mnist.y_test, mnist.idx_test),
    ):
        for digit in range(DIGITS):
            rows = np.flatnonzero((digits == digit) & ((split == "test") == is_test))
            pool = np.flatnonzero(y == digit)
            if len(rows) > len(pool):
                raise DataError(
                    f"MNIST: {len(rows)} rows need digit {digit} but only {len(pool)} images have it"
                )
            chosen = rng.choice(pool, size=len(rows), replace=False)
            images[rows] = x[chosen]
            index[rows] = idx[chosen]
    return images, index


# ----------------------------------------------------------------------------- files


def _write_media(root: Path, ids: list[str], images: NDArray[np.uint8], sources: list[str]) -> bool:
    """PNGs to root/images, clips hard-linked (or copied) to root/audio; True when all were linked."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    for name, pixels in zip(ids, images, strict=True):
        path = root / "images" / f"{name}.png"
        path.unlink(missing_ok=True)  # never write through a hard link left by an earlier build
        Image.fromarray(pixels).save(path, format="PNG")  # (28, 28) uint8 -> greyscale
    linked = True
    for name, source in zip(ids, sources, strict=True):
        linked &= _link_or_copy(Path(source), root / "audio" / f"{name}.wav")
    return linked


def _link_or_copy(source: Path, target: Path) -> bool:
    """Hard-link source to target (replacing it), else copy; True when linked."""
    if target.exists() and os.path.samefile(source, target):
        return True
    target.unlink(missing_ok=True)  # a copy or link from an earlier build: never write through it
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed
        shutil.copyfile(source, target)
        return False
    return True


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or not low <= int(value) <= high:
        raise ConfigError(f"build_avdigits: {name} must be an integer in [{low}, {high}], got {value!r}")
