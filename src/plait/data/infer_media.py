"""Media path columns for `plait init`: which kind, whether the files exist, their native format
(read from file headers only) and the folder that holds them all (data.root).

An image field gets the images' own `size` (the median longest side, 28 for 28×28 digits; never
upscaled past it, larger images are scaled to the default 64 to keep training cheap) and
`channels` (1 when every sampled image is greyscale). An audio field gets the files' own
`sample_rate` (8 kHz speech stays 8000; rates above 16 kHz are resampled to 16000) and a
`max_seconds` that covers 95 % of the clips.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff")
SERIES_EXTENSIONS = (".npy", ".csv", ".parquet")
MEDIA_SHARE = 0.8  # share of non-null values with a media extension that makes a path column
MAX_FILES_CHECKED = 200  # files whose existence and header are read, evenly spaced over the rows
IMAGE_MIN_SIZE = 8  # ImageModality's smallest size
IMAGE_MAX_SIZE = 64  # ImageModality's default: larger images are scaled down to it
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
AUDIO_MAX_RATE = 16000  # AudioModality's default: higher rates are resampled down to it
AUDIO_MAX_SECONDS = 30.0  # longer clips are cut: the whole clip is held in memory per row
DURATION_QUANTILE = 0.95  # max_seconds covers this share of the clips


@dataclass(frozen=True)
class MediaGuess:
    kind: str  # image | audio | timeseries
    why: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MediaRoot:
    """The folder training resolves media paths under (data.root), and why it is that one;
    `outside`: paths that still resolve outside it (training refuses them), with an example."""

    path: Path
    why: str
    outside: int = 0  # of `checked`
    checked: int = 0
    example: str = ""


def guess_media(values: pl.Series, root: Path) -> MediaGuess | None:
    """A media kind when most non-empty strings end in one of its extensions, else None."""
    lowered = values.str.strip_chars().str.to_lowercase()
    for kind, extensions in (
        ("image", IMAGE_EXTENSIONS),
        ("audio", AUDIO_EXTENSIONS),
        ("timeseries", SERIES_EXTENSIONS),
    ):
        hits = lowered.str.ends_with(extensions[0])
        for ext in extensions[1:]:
            hits = hits | lowered.str.ends_with(ext)
        mean = hits.mean()
        share = float(mean) if isinstance(mean, int | float) else 0.0
        if share < MEDIA_SHARE:
            continue
        files = values.filter(hits).str.strip_chars().unique(maintain_order=True).to_list()
        sample = _spread(files)
        found = [p for p in (resolve(v, root) for v in sample) if p.is_file()]
        seen = sorted({Path(v).suffix.lower() for v in sample})
        distinct = f"{len(files)} distinct files, " if len(files) < len(values) else ""
        why = (
            f"{share:.0%} of {len(values)} values are {kind} file paths ({', '.join(seen)}; "
            f"{distinct}{len(found)} of {len(sample)} checked exist)"
        )
        options: dict[str, Any] = {}
        if kind == "image" and found:
            options, read = read_images(found)
            why += f"; {read}"
        elif kind == "audio" and found:
            options, read = read_audio(found)
            why += f"; {read}"
        return MediaGuess(kind, why, options)
    return None


def resolve(value: str, root: Path) -> Path:
    """Where training looks for `value` (modalities/base.py resolve_media_path, which does not
    expand '~'), before symlinks are resolved."""
    path = Path(value)
    return path if path.is_absolute() else root / path


def _spread(values: Sequence[str]) -> list[str]:
    """At most MAX_FILES_CHECKED values, evenly spaced, so a sorted table is sampled throughout."""
    if len(values) <= MAX_FILES_CHECKED:
        return list(values)
    picks = np.linspace(0, len(values) - 1, MAX_FILES_CHECKED).round().astype(int)
    return [values[i] for i in picks]


def read_images(paths: Sequence[Path]) -> tuple[dict[str, Any], str]:
    """size and channels from the headers of `paths` (Pillow decodes no pixel to tell the size)."""
    from PIL import Image

    sides: list[int] = []
    modes: Counter[str] = Counter()
    shapes: Counter[str] = Counter()
    for path in paths:
        try:
            with Image.open(path) as image:
                width, height = image.size
                modes[image.mode] += 1
        except Exception:  # Pillow raises many types on files it cannot identify
            continue
        sides.append(max(width, height))
        shapes[f"{width}×{height}"] += 1
    if not sides:
        return {}, f"none of {len(paths)} files opened as an image; size and channels left at their defaults"
    native = int(np.median(sides))
    size = min(max(native, IMAGE_MIN_SIZE), IMAGE_MAX_SIZE)
    grey = set(modes) <= GREY_MODES
    channels = 1 if grey else 3
    common = ", ".join(f"{shape} ({n})" for shape, n in shapes.most_common(2))
    if native > IMAGE_MAX_SIZE:
        sized = f"size {size} (scaled down from {native} to keep training cheap; raise it for fine detail)"
    elif native < IMAGE_MIN_SIZE:
        sized = f"size {size} (the smallest the image field takes)"
    else:
        sized = f"size {size} (their own)"
    mode_names = ", ".join(sorted(modes))
    tone = "greyscale → channels 1" if grey else "colour → channels 3"
    return (
        {"size": size, "channels": channels},
        f"read {len(sides)} headers: {common}, median longest side {native} → {sized}; "
        f"mode {mode_names}, {tone}",
    )


def read_audio(paths: Sequence[Path]) -> tuple[dict[str, Any], str]:
    """sample_rate and max_seconds from the headers of `paths` (soundfile reads no sample)."""
    import soundfile as sf

    rates: Counter[int] = Counter()
    seconds: list[float] = []
    for path in paths:
        try:
            info = sf.info(str(path))
        except Exception:  # libsndfile reports unknown or corrupt files with varied errors
            continue
        rates[int(info.samplerate)] += 1
        seconds.append(float(info.frames) / info.samplerate if info.samplerate > 0 else 0.0)
    if not rates:
        return {}, f"none of {len(paths)} files opened as audio; sample_rate and max_seconds left at defaults"
    native = rates.most_common(1)[0][0]
    rate = min(native, AUDIO_MAX_RATE)
    heard = ", ".join(f"{hz} Hz ({n})" for hz, n in rates.most_common(3))
    if rate < native:
        kept = f"sample_rate {rate} (resampled down from {native}; raise it for content above {rate // 2} Hz)"
    else:
        kept = f"sample_rate {rate} (their own, not resampled)"
    max_seconds, covered = seconds_covering(seconds)
    return (
        {"sample_rate": rate, "max_seconds": max_seconds},
        f"read {len(seconds)} headers: {heard} → {kept}; files of {covered} → max_seconds {max_seconds}",
    )


def seconds_covering(seconds: Sequence[float]) -> tuple[float, str]:
    """max_seconds covering DURATION_QUANTILE of `seconds` (rounded up to 0.1 s, at most
    AUDIO_MAX_SECONDS), and a few words on the durations."""
    positive = np.asarray([s for s in seconds if math.isfinite(s) and s > 0], dtype=np.float64)
    if positive.size == 0:
        return 2.0, "unknown length"
    high = float(np.quantile(positive, DURATION_QUANTILE))
    max_seconds = min(max(math.ceil(high * 10 - 1e-9) / 10, 0.1), AUDIO_MAX_SECONDS)
    low, top = float(positive.min()), float(positive.max())
    span = f"{low:.2f} s" if low == top else f"{low:.2f}–{top:.2f} s (95th percentile {high:.2f} s)"
    words = span
    if max_seconds < high:
        words += f"; longer clips are cut at {AUDIO_MAX_SECONDS:g} s"
    return max_seconds, words


def media_root(values: Sequence[str], base: Path) -> MediaRoot:
    """The folder to write as data.root for the media `values` (non-empty path strings).

    Training joins relative paths to data.root and refuses any path that resolves outside it. So
    with relative paths the root stays `base` (the table's folder, where init found them); with
    absolute paths only, it is `base` when they all lie under it, else their deepest common folder."""
    base = base.resolve()
    relative = [v for v in values if not Path(v).is_absolute()]
    absolute = [os.path.normpath(v) for v in values if Path(v).is_absolute()]
    if relative:
        root, why = base, "the table's folder, which relative media paths start from"
    else:
        folders = sorted({os.path.dirname(p) for p in absolute})
        try:
            common = Path(os.path.commonpath(folders)).resolve()
        except ValueError:  # paths on two drives (Windows): no folder holds them all
            common = base
        if common.is_relative_to(base):
            root, why = base, "the table's folder, which holds every media file"
        else:
            root, why = common, "the deepest folder holding every media file (the paths are absolute)"
    # Training resolves symlinks; check a sample the same way.
    sample = _spread(list(dict.fromkeys(values)))
    outside = [v for v in sample if not resolve(v, base).resolve().is_relative_to(root)]
    if outside and not relative:
        root = Path(os.path.commonpath([root, *(resolve(v, base).resolve().parent for v in outside)]))
        why += " (widened to hold the files symlinks point at)"
        outside = []
    return MediaRoot(
        path=root, why=why, outside=len(outside), checked=len(sample), example=outside[0] if outside else ""
    )
