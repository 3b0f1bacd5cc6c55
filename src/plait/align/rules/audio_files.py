"""Audio recordings read outside the clip rule: each file's header when the stream is loaded (its
length and sample rate), and block energies when an offset is estimated from the sound."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import soundfile as sf

from plait.align.frames import DURATION_S, FILE, KEY, OUTSIDE, SAMPLE_RATE, T_US, US_PER_S
from plait.errors import AlignmentError

ENERGY_RATE_HZ = 200  # audio is reduced to block energies at this rate before correlating


def read_headers(frame: pl.DataFrame, root: Path) -> pl.DataFrame:
    """Each recording's duration and sample rate from its header (null when it cannot be read, or
    lies outside the root: such a file is never opened)."""
    info: dict[str, tuple[float | None, int | None]] = {}
    for file in frame.filter(~pl.col(OUTSIDE))[FILE].drop_nulls().unique().sort().to_list():
        try:
            header = sf.info(str(root / file))
            info[file] = (header.frames / header.samplerate, int(header.samplerate))
        except Exception:  # missing or undecodable: the rows are dropped and counted
            info[file] = (None, None)
    durations = {f: d for f, (d, _) in info.items()}
    rates = {f: r for f, (_, r) in info.items()}
    return frame.with_columns(
        pl.col(FILE).replace_strict(durations, default=None, return_dtype=pl.Float64).alias(DURATION_S),
        pl.col(FILE).replace_strict(rates, default=None, return_dtype=pl.Int64).alias(SAMPLE_RATE),
    )


def energy(frame: pl.DataFrame, base_dir: Path) -> pl.DataFrame:
    """Each recording decoded into block energies: (key, t_us, energy) at ENERGY_RATE_HZ."""
    keys: list[str] = []
    times: list[np.ndarray] = []
    energies: list[np.ndarray] = []
    for key, start_us, file in frame.select(KEY, T_US, FILE).iter_rows():
        samples, rate = sf.read(base_dir / file, dtype="float32", always_2d=True)
        block = max(1, rate // ENERGY_RATE_HZ)
        n = samples.shape[0] // block
        if n == 0:
            continue
        blocks = (samples[: n * block].mean(axis=1) ** 2).reshape(n, block).mean(axis=1)  # (n,)
        keys.extend([key] * n)
        times.append(start_us + (np.arange(n) * block * US_PER_S) // rate)
        energies.append(blocks.astype(np.float64))
    if not energies:
        raise AlignmentError("no audio recording could be decoded for the offset estimate")
    return pl.DataFrame(
        {KEY: keys, T_US: np.concatenate(times).astype(np.int64), "energy": np.concatenate(energies)}
    ).sort(KEY, T_US)
