"""`plait align --estimate-offset A B`: the clock offset of stream B against stream A, from the
streams as configured (their current offsets already applied, so the estimate is what to ADD)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import polars as pl
import soundfile as sf

from plait.align.frames import FILE, KEY, T_US, US_PER_S
from plait.align.load import load_stream
from plait.align.offset import MIN_SHARED_S, OffsetEstimate, Say, estimate_stream_offset
from plait.align.spec import StreamSpec, StreamsSpec
from plait.errors import AlignmentError

ENERGY_RATE_HZ = 200  # audio is reduced to block energies at this rate before correlating
SIGNAL_KINDS = ("timeseries", "audio")


def estimate_between(
    spec: StreamsSpec,
    base_dir: Path,
    a: str,
    b: str,
    *,
    per_key: bool = False,
    max_offset_s: float = 10.0,
    rate_hz: float = 50.0,
    min_shared_s: float = MIN_SHARED_S,
    say: Say | None = None,
) -> dict[str, OffsetEstimate]:
    """Offsets to ADD to stream B's current offset (per entity when `per_key`, else one for all).
    Refused (AlignmentError) when A and B share under min_shared_s of recording; `say` hears what
    is loaded and the estimate's progress."""
    frames = [_signal_frame(spec.stream(name), base_dir, say) for name in (a, b)]
    (frame_a, cols_a), (frame_b, cols_b) = frames
    return estimate_stream_offset(
        frame_a,
        frame_b,
        cols_a,
        cols_b,
        per_key=per_key,
        max_offset_s=max_offset_s,
        rate_hz=rate_hz,
        min_shared_s=min_shared_s,
        names=(a, b),
        say=say,
    )


def _signal_frame(stream: StreamSpec, base_dir: Path, say: Say | None) -> tuple[pl.DataFrame, list[str]]:
    if stream.kind not in SIGNAL_KINDS:
        raise AlignmentError(
            f"stream '{stream.name}' is {stream.kind}: offsets are estimated from signal energy, which "
            f"needs {' or '.join(SIGNAL_KINDS)} streams"
        )
    started = time.monotonic()
    frame = load_stream(stream, base_dir).frame
    if stream.kind == "timeseries":
        columns = list(stream.columns)
    else:
        frame, columns = _audio_energy(frame, base_dir), ["energy"]
    if say is not None:
        entities = frame[KEY].n_unique()
        say(
            f"loaded {stream.name}: {frame.height:,} readings of {entities:,} "
            f"{'entity' if entities == 1 else 'entities'} "
            f"({time.monotonic() - started:.1f} s)"
        )
    return frame, columns


def _audio_energy(frame: pl.DataFrame, base_dir: Path) -> pl.DataFrame:
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
        energy = (samples[: n * block].mean(axis=1) ** 2).reshape(n, block).mean(axis=1)  # (n,)
        keys.extend([key] * n)
        times.append(start_us + (np.arange(n) * block * US_PER_S) // rate)
        energies.append(energy.astype(np.float64))
    if not energies:
        raise AlignmentError("no audio recording could be decoded for the offset estimate")
    return pl.DataFrame(
        {KEY: keys, T_US: np.concatenate(times).astype(np.int64), "energy": np.concatenate(energies)}
    ).sort(KEY, T_US)
