"""Audio rule: per anchor, a clip of `duration_s` ENDING at the anchor, `[t − duration_s, t)`, cut
from the entity's recordings (a recording covers `[start, start + its length)`).

In order of preference:
1. one recording covers the whole clip → that file, `offset_s` into it, `duration_s`;
2. the clip runs from one recording into the next one of the same entity and clock segment, with
   at most `tolerance_s` between them (an overlap is fine) → both pieces are read (only the frames
   needed), concatenated and written as a WAV `media_dir/{stream}_{anchor}.wav`, referenced from
   offset 0 (path relative to the base dir). Different sample rates or channel counts → absent;
   so is a piece that leads outside the data root (load.py drops those already; the rule checks
   again before it reads, paths.py), and the media dir must lie under the root. The clip is
   written beside its target and renamed over it, so a symlink placed there is replaced, never
   followed;
3. one recording covers the clip but for at most `tolerance_s` at either end (it starts a little
   late, or ends a little early) → that file with the shorter clip that exists.
Otherwise the field is absent. All limits are inclusive. `{s}__dt_s` is the number of seconds of
the clip that no recording covers (0 when fully covered). Nothing is ever padded or resampled here.

A stream without a key (`key: null`) is one shared microphone: it matches every anchor.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import soundfile as sf

from plait.align.frames import (
    ABSENT,
    ANCHOR,
    DURATION_S,
    FILE,
    KEY,
    SAMPLE_RATE,
    SEGMENT,
    T_US,
    US_PER_S,
    RuleContext,
    RuleOutput,
    found_or_absent,
    seconds_to_us,
    status_col,
    us_to_seconds,
)
from plait.align.paths import inside_root, real_root, resolve_in_root, root_relative
from plait.align.rules.audio_files import energy, read_headers
from plait.align.rules.kind import MediaFiles, StreamKind
from plait.errors import ConfigError

if TYPE_CHECKING:
    from plait.align.spec import StreamSpec

FULL, SPAN, PARTIAL = "full", "span", "partial"
# Read and write PCM as integers so a spanning clip holds exactly the source samples.
_DTYPES = {"PCM_16": "int16", "PCM_24": "int32", "PCM_32": "int32", "FLOAT": "float32", "DOUBLE": "float64"}


@dataclass(frozen=True)
class _Piece:
    path: Path
    start: int  # first frame
    stop: int  # one past the last frame


def align_audio(
    stream: pl.DataFrame, anchors: pl.DataFrame, spec: StreamSpec, ctx: RuleContext
) -> RuleOutput:
    s = spec.name
    if spec.duration_s is None or spec.duration_s <= 0:
        raise ConfigError(f"streams.sources.{s}.duration_s: an audio stream needs the clip length in seconds")
    plan = _plan(
        stream, anchors, spec.key is None, seconds_to_us(spec.duration_s), seconds_to_us(spec.tolerance_s)
    )
    spans, counts = _write_spans(plan.filter(pl.col("_how") == SPAN), s, ctx)
    plan = plan.join(spans, on=ANCHOR, how="left").sort(ANCHOR)
    done = (pl.col("_how") == SPAN) & pl.col("_span_file").is_not_null()
    found = pl.col("_how").is_in([FULL, PARTIAL]) | done
    out = plan.select(
        *found_or_absent(s, found, pl.col("_dt")),
        pl.when(done).then(pl.col("_span_file")).when(found).then(pl.col("_file")).cast(pl.Utf8).alias(s),
        pl.when(done)
        .then(0.0)
        .when(found)
        .then(us_to_seconds(pl.col("_off")))
        .cast(pl.Float64)
        .alias(f"{s}__offset_s"),
        pl.when(done)
        .then(pl.col("_span_dur"))
        .when(found)
        .then(us_to_seconds(pl.col("_dur")))
        .cast(pl.Float64)
        .alias(f"{s}__duration_s"),
    )
    details = {
        "clips_spanning": counts["written"],
        "clips_partial": int((plan["_how"] == PARTIAL).sum()),
        "absent": int((out[status_col(s)] == ABSENT).sum()),
        "rate_mismatch": int((plan["_how"] == "rate_mismatch").sum()),
        "channel_mismatch": counts["channel_mismatch"],
        "unreadable": counts["unreadable"],
        "outside_root": counts["outside_root"],
    }
    return RuleOutput(columns=out, details=details)


def _plan(stream: pl.DataFrame, anchors: pl.DataFrame, keyless: bool, clip: int, tol: int) -> pl.DataFrame:
    """Per anchor: how the clip `[a, b)` is cut (`_how`), from which file, offset, duration and
    uncovered time in µs; for spanning clips also the second recording."""
    return _classify(_candidates(stream, anchors, keyless, clip), tol)


def _candidates(stream: pl.DataFrame, anchors: pl.DataFrame, keyless: bool, clip: int) -> pl.DataFrame:
    """Per anchor, the clip `[_a, _b)` and two recordings of its entity (start `_s`, end `_e`, file,
    rate, segment): 1 = the last one starting at or before the clip start, 2 = the first one after."""
    key = pl.lit("", dtype=pl.Utf8).alias(KEY) if keyless else pl.col(KEY).cast(pl.Utf8)
    left = anchors.select(pl.col(ANCHOR), key, pl.col(T_US).alias("_b"), (pl.col(T_US) - clip).alias("_a"))
    segment = pl.col(SEGMENT) if SEGMENT in stream.columns else pl.lit(0, dtype=pl.Int32)
    recs = stream.select(
        pl.col(KEY),
        pl.col(T_US).alias("_s"),
        (pl.col(T_US) + (pl.col(DURATION_S) * US_PER_S).round().cast(pl.Int64)).alias("_e"),
        pl.col(FILE).alias("_f"),
        pl.col(SAMPLE_RATE).cast(pl.Int64).alias("_r"),
        segment.alias("_g"),
    )

    def side(n: str) -> pl.DataFrame:
        return recs.rename({c: f"{c}{n}" for c in ("_s", "_e", "_f", "_r", "_g")})

    # Both sides are sorted by time within each entity (frames.py); polars cannot check it with `by`.
    return left.join_asof(side("1"), left_on="_a", right_on="_s1", by=KEY, check_sortedness=False).join_asof(
        side("2"),
        left_on="_a",
        right_on="_s2",
        by=KEY,
        strategy="forward",
        allow_exact_matches=False,
        check_sortedness=False,
    )


def _classify(both: pl.DataFrame, tol: int) -> pl.DataFrame:
    a, b = pl.col("_a"), pl.col("_b")
    s1, e1, s2, e2 = pl.col("_s1"), pl.col("_e1"), pl.col("_s2"), pl.col("_e2")
    covers_a = s1.is_not_null() & (e1 > a)
    full = covers_a & (e1 >= b)
    span = (
        covers_a
        & s2.is_not_null()
        & (pl.col("_g1") == pl.col("_g2"))
        & (s2 - e1 <= tol)
        & (s2 < b)
        & (e2 > e1)
        & (b - e2 <= tol)
    )
    late_end = covers_a & (b - e1 <= tol)
    early = ~covers_a & s2.is_not_null() & (s2 - a <= tol) & (s2 < b) & (b - e2 <= tol)
    rate_ok = pl.col("_r1") == pl.col("_r2")
    how = (
        pl.when(full)
        .then(pl.lit(FULL))
        .when(span & rate_ok)
        .then(pl.lit(SPAN))
        .when(span)
        .then(pl.lit("rate_mismatch"))
        .when(late_end | early)
        .then(pl.lit(PARTIAL))
        .otherwise(None)
    )
    use1 = full | late_end
    return both.with_columns(
        how.alias("_how"),
        pl.when(use1).then(pl.col("_f1")).otherwise(pl.col("_f2")).alias("_file"),
        pl.when(use1).then(a - s1).otherwise(pl.lit(0, dtype=pl.Int64)).alias("_off"),
        (
            pl.min_horizontal(b, pl.when(use1).then(e1).otherwise(e2)) - pl.when(use1).then(a).otherwise(s2)
        ).alias("_dur"),
        pl.when(full)
        .then(pl.lit(0, dtype=pl.Int64))
        .when(span)
        .then((s2 - e1).clip(lower_bound=0) + (b - e2).clip(lower_bound=0))
        .when(late_end)
        .then(b - e1)
        .otherwise((s2 - a) + (b - e2).clip(lower_bound=0))
        .alias("_dt"),
    )


def _write_spans(spans: pl.DataFrame, stream: str, ctx: RuleContext) -> tuple[pl.DataFrame, dict[str, int]]:
    """Write each clip that spans two recordings; anchor → (path relative to base dir, seconds)."""
    counts = {"written": 0, "channel_mismatch": 0, "unreadable": 0, "outside_root": 0}
    anchors: list[int] = []
    files: list[str] = []
    seconds: list[float] = []
    root = real_root(ctx.base_dir)
    media_dir = inside_root(ctx.media_dir, root, "streams.media_dir") if spans.height else root
    for row in spans.iter_rows(named=True):
        path_1, path_2 = resolve_in_root(row["_f1"], root), resolve_in_root(row["_f2"], root)
        if path_1 is None or path_2 is None:
            counts["outside_root"] += 1
            continue
        rate = int(row["_r1"])
        second_from = max(row["_s2"], row["_e1"])
        first = _Piece(path_1, _frame(row["_a"] - row["_s1"], rate), _frame(row["_e1"] - row["_s1"], rate))
        second = _Piece(
            path_2,
            _frame(second_from - row["_s2"], rate),
            _frame(min(row["_b"], row["_e2"]) - row["_s2"], rate),
        )
        target = media_dir / f"{stream}_{row[ANCHOR]}.wav"
        written = _concat(first, second, rate, target)
        if isinstance(written, str):
            counts[written] += 1
            continue
        counts["written"] += 1
        anchors.append(int(row[ANCHOR]))
        files.append(root_relative(target, root))
        seconds.append(written / rate)
    frame = pl.DataFrame(
        {ANCHOR: anchors, "_span_file": files, "_span_dur": seconds},
        schema={ANCHOR: spans.schema[ANCHOR], "_span_file": pl.Utf8, "_span_dur": pl.Float64},
    )
    return frame, counts


def _frame(us: int, rate: int) -> int:
    """The frame index at `us` microseconds into a recording, rounded half up, in exact integers."""
    return (int(us) * rate + US_PER_S // 2) // US_PER_S


def _concat(first: _Piece, second: _Piece, rate: int, target: Path) -> int | str:
    """Write first + second to `target`; the number of frames written, or why not."""
    try:
        subtypes = {sf.info(str(first.path)).subtype, sf.info(str(second.path)).subtype}
        subtype = subtypes.pop() if len(subtypes) == 1 else "FLOAT"
        dtype = _DTYPES.get(subtype, "float32")
        if subtype not in _DTYPES:
            subtype = "FLOAT"
        parts = [
            sf.read(str(p.path), start=p.start, stop=p.stop, dtype=dtype, always_2d=True)[0]
            for p in (first, second)
        ]
    except (OSError, RuntimeError, sf.LibsndfileError):
        return "unreadable"
    if parts[0].shape[1] != parts[1].shape[1]:
        return "channel_mismatch"
    clip = np.concatenate(parts, axis=0)  # (frames_1, C) + (frames_2, C) -> (frames, C)
    if clip.shape[0] == 0:
        return "unreadable"
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            sf.write(handle, clip, rate, subtype=subtype, format="WAV")
        os.chmod(temporary, 0o644)  # mkstemp makes it owner-only; a clip is as readable as a plain write
        os.replace(temporary, target)  # replaces a file or symlink at `target`; never writes through it
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return int(clip.shape[0])


def _check(spec: StreamSpec, path: str) -> None:
    if spec.duration_s is None or spec.duration_s <= 0:
        raise ConfigError(f"{path}.duration_s: an audio stream needs the clip length in seconds, e.g. 1.0")


def _field(spec: StreamSpec, table: pl.DataFrame) -> dict[str, Any]:
    return {
        "kind": spec.kind,
        "offset_column": f"{spec.name}__offset_s",
        "duration_column": f"{spec.name}__duration_s",
        "max_seconds": spec.duration_s,
    }


def _signal(frame: pl.DataFrame, spec: StreamSpec, base_dir: Path) -> tuple[pl.DataFrame, list[str]]:
    return energy(frame, base_dir), ["energy"]


AUDIO = StreamKind(
    name="audio",
    align=align_audio,
    check=_check,
    field_spec=_field,
    media=MediaFiles(columns=(FILE, DURATION_S, SAMPLE_RATE), unreadable=DURATION_S, headers=read_headers),
    signal=_signal,
    writes_media=True,
)
