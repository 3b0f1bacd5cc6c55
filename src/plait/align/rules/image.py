"""Image rule: per anchor, one frame of the same entity — the nearest one (`mode: nearest`) or the
last one at or before the anchor (`mode: before`) — when it lies within `tolerance_s` (inclusive:
a frame exactly `tolerance_s` away is used). With `impute: hold`, an anchor with no frame in
tolerance takes the last frame before it if that frame is at most `max_gap_s` old (inclusive);
the field is then "imputed". Otherwise the field is absent. A tie in `nearest` mode (one frame as
far before as another is after) goes to the earlier frame: it is the one the anchor could have seen.

A stream without a key (`key: null`) is one shared camera: it matches every anchor, whatever the
anchor's entity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import polars as pl

from plait.align.frames import (
    ABSENT,
    ANCHOR,
    FILE,
    IMPUTED,
    KEY,
    OBSERVED,
    T_US,
    RuleContext,
    RuleOutput,
    dt_col,
    imputed_frac_col,
    seconds_to_us,
    status_col,
    us_to_seconds,
)
from plait.align.rules.kind import MediaFiles, StreamKind

if TYPE_CHECKING:
    from plait.align.spec import StreamSpec


def align_image(
    stream: pl.DataFrame, anchors: pl.DataFrame, spec: StreamSpec, ctx: RuleContext
) -> RuleOutput:
    s = spec.name
    tolerance = seconds_to_us(spec.tolerance_s)
    max_gap = seconds_to_us(spec.max_gap_s) if spec.impute == "hold" else -1
    left = _match_frame(anchors, spec)
    frames = stream.select(pl.col(KEY), pl.col(T_US), pl.col(FILE))
    before = _asof(left, frames.rename({T_US: "_tb", FILE: "_fb"}), "_tb", "backward")
    both = _asof(before, frames.rename({T_US: "_ta", FILE: "_fa"}), "_ta", "forward")
    age = pl.col(T_US) - pl.col("_tb")  # >= 0: the frame is at or before the anchor
    lead = pl.col("_ta") - pl.col(T_US)  # >= 0: the frame is at or after the anchor
    if spec.mode == "before":
        pick_before = pl.lit(True)
    else:  # the earlier frame wins ties and whenever there is no later frame
        pick_before = lead.is_null() | (age.is_not_null() & (age <= lead))
    both = both.with_columns(
        pl.when(pick_before).then(pl.col("_fb")).otherwise(pl.col("_fa")).alias("_file"),
        pl.when(pick_before).then(age).otherwise(lead).alias("_dt"),
        age.alias("_age"),
    )
    observed = pl.col("_dt").is_not_null() & (pl.col("_dt") <= tolerance)
    held = ~observed & pl.col("_age").is_not_null() & (pl.col("_age") <= max_gap)
    status = (
        pl.when(observed).then(pl.lit(OBSERVED)).when(held).then(pl.lit(IMPUTED)).otherwise(pl.lit(ABSENT))
    )
    out = both.sort(ANCHOR).select(
        status.alias(status_col(s)),
        pl.when(observed)
        .then(0.0)
        .when(held)
        .then(1.0)
        .otherwise(None)
        .cast(pl.Float64)
        .alias(imputed_frac_col(s)),
        us_to_seconds(pl.when(observed).then(pl.col("_dt")).when(held).then(pl.col("_age"))).alias(dt_col(s)),
        pl.when(observed)
        .then(pl.col("_file"))
        .when(held)
        .then(pl.col("_fb"))
        .otherwise(None)
        .cast(pl.Utf8)
        .alias(s),
    )
    return RuleOutput(columns=out, details={"held": int((out[status_col(s)] == IMPUTED).sum())})


def _match_frame(anchors: pl.DataFrame, spec: StreamSpec) -> pl.DataFrame:
    """The anchors' id, entity and time; a keyless stream is matched on time alone (entity "")."""
    key = pl.lit("", dtype=pl.Utf8).alias(KEY) if spec.key is None else pl.col(KEY).cast(pl.Utf8)
    return anchors.select(pl.col(ANCHOR), key, pl.col(T_US))


def _asof(
    left: pl.DataFrame, frames: pl.DataFrame, frame_time: str, strategy: Literal["backward", "forward"]
) -> pl.DataFrame:
    # Both sides are sorted by time within each entity (frames.py contract); polars cannot check
    # sortedness when `by` is given, so it is not asked to.
    return left.join_asof(
        frames,
        left_on=T_US,
        right_on=frame_time,
        by=KEY,
        strategy=strategy,
        check_sortedness=False,
    )


IMAGE = StreamKind(name="image", align=align_image, media=MediaFiles(columns=(FILE,), unreadable=FILE))
