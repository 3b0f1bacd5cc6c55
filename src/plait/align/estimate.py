"""`plait align --estimate-offset A B`: the clock offset of stream B against stream A, from the
streams as configured (their current offsets already applied, so the estimate is what to ADD)."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl

from plait.align.frames import KEY
from plait.align.load import load_stream
from plait.align.offset import MIN_SHARED_S, OffsetEstimate, Say, estimate_stream_offset
from plait.align.rules import KINDS, STREAM_KINDS
from plait.align.spec import StreamSpec, StreamsSpec
from plait.errors import AlignmentError


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
    signal = STREAM_KINDS.get(stream.kind).signal
    if signal is None:
        signals = " or ".join(k.name for k in KINDS if k.signal is not None)
        raise AlignmentError(
            f"stream '{stream.name}' is {stream.kind}: offsets are estimated from signal energy, which "
            f"needs {signals} streams"
        )
    started = time.monotonic()
    frame, columns = signal(load_stream(stream, base_dir).frame, stream, base_dir)
    if say is not None:
        entities = frame[KEY].n_unique()
        say(
            f"loaded {stream.name}: {frame.height:,} readings of {entities:,} "
            f"{'entity' if entities == 1 else 'entities'} "
            f"({time.monotonic() - started:.1f} s)"
        )
    return frame, columns
