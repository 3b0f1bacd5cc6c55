from __future__ import annotations

from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from plait.align.frames import RuleContext
from plait.align.rules.image import align_image
from plait.align.spec import StreamSpec

CTX = RuleContext(base_dir=Path("."), media_dir=Path("media"))
US = 1_000_000


def frames(rows: list[tuple[str, float]]) -> pl.DataFrame:
    """An image stream frame as load.py hands it: sorted by (key, t_us); file names say key and time."""
    data = sorted((k, round(t * US)) for k, t in rows)
    return pl.DataFrame(
        {
            "key": [k for k, _ in data],
            "t_us": [t for _, t in data],
            "segment": pl.Series([0] * len(data), dtype=pl.Int32),
            "file": [f"{k}/{t}.png" for k, t in data],
        },
        schema={"key": pl.Utf8, "t_us": pl.Int64, "segment": pl.Int32, "file": pl.Utf8},
    )


def anchors(rows: list[tuple[str, float]]) -> pl.DataFrame:
    """An anchor frame: ids 0..N-1 in (t_us, key) order."""
    data = sorted(((round(t * US), k) for k, t in rows))
    return pl.DataFrame(
        {
            "anchor": pl.Series(range(len(data)), dtype=pl.UInt32),
            "key": [k for _, k in data],
            "t_us": [t for t, _ in data],
        },
        schema={"anchor": pl.UInt32, "key": pl.Utf8, "t_us": pl.Int64},
    )


def spec(**kw: object) -> StreamSpec:
    return StreamSpec(**{"name": "cam", "kind": "image", "path": "cams", "key": "machine", **kw})  # type: ignore[arg-type]


def test_nearest_and_before_pick_different_frames() -> None:
    stream = frames([("a", 10.0), ("a", 12.0)])
    a = anchors([("a", 11.6)])
    near = align_image(stream, a, spec(mode="nearest", tolerance_s=2.0), CTX).columns
    before = align_image(stream, a, spec(mode="before", tolerance_s=2.0), CTX).columns
    assert near.row(0, named=True) == {
        "cam__status": "observed",
        "cam__imputed_frac": 0.0,
        "cam__dt_s": 0.4,
        "cam": "a/12000000.png",
    }
    assert before["cam"].to_list() == ["a/10000000.png"]
    assert before["cam__dt_s"].to_list() == [1.6]


def test_output_columns_and_dtypes() -> None:
    out = align_image(frames([("a", 1.0)]), anchors([("a", 1.0)]), spec(), CTX).columns
    assert out.schema == pl.Schema(
        {"cam__status": pl.Utf8, "cam__imputed_frac": pl.Float64, "cam__dt_s": pl.Float64, "cam": pl.Utf8}
    )


def test_tolerance_is_inclusive() -> None:
    stream = frames([("a", 10.0)])
    a = anchors([("a", 9.5), ("a", 10.5), ("a", 10.500001)])
    near = align_image(stream, a, spec(tolerance_s=0.5), CTX).columns
    assert near["cam__status"].to_list() == ["observed", "observed", "absent"]
    assert near["cam__dt_s"].to_list() == [0.5, 0.5, None]
    assert near["cam"].to_list() == ["a/10000000.png", "a/10000000.png", None]
    # `before` never looks past the anchor: the frame 0.5 s later does not count.
    before = align_image(stream, a, spec(tolerance_s=0.5, mode="before"), CTX).columns
    assert before["cam__status"].to_list() == ["absent", "observed", "absent"]


def test_frame_at_the_anchor_counts_as_before() -> None:
    out = align_image(frames([("a", 5.0)]), anchors([("a", 5.0)]), spec(mode="before", tolerance_s=0.0), CTX)
    assert out.columns["cam"].to_list() == ["a/5000000.png"]
    assert out.columns["cam__dt_s"].to_list() == [0.0]


def test_tie_goes_to_the_earlier_frame() -> None:
    out = align_image(frames([("a", 10.0), ("a", 12.0)]), anchors([("a", 11.0)]), spec(tolerance_s=1.0), CTX)
    assert out.columns["cam"].to_list() == ["a/10000000.png"]


def test_keys_never_mix() -> None:
    stream = frames([("b", 10.0), ("a", 0.0)])
    a = anchors([("a", 10.0), ("b", 10.0), ("c", 10.0)])  # ids: a=0, b=1, c=2
    out = align_image(stream, a, spec(tolerance_s=1.0), CTX).columns
    assert out["cam"].to_list() == [None, "b/10000000.png", None]
    assert out["cam__status"].to_list() == ["absent", "observed", "absent"]
    assert out["cam__imputed_frac"].to_list() == [None, 0.0, None]


def test_keyless_stream_matches_every_entity() -> None:
    stream = frames([("", 10.0)])
    out = align_image(stream, anchors([("a", 10.0), ("b", 10.2)]), spec(key=None, tolerance_s=0.5), CTX)
    assert out.columns["cam"].to_list() == ["/10000000.png", "/10000000.png"]


def test_hold_fills_up_to_max_gap_and_is_counted() -> None:
    stream = frames([("a", 10.0), ("b", 20.0)])
    a = anchors([("a", 9.0), ("a", 12.0), ("a", 13.0), ("a", 13.1), ("b", 20.2)])  # sorted by time
    out = align_image(stream, a, spec(tolerance_s=0.5, impute="hold", max_gap_s=3.0), CTX)
    cols = out.columns
    # 9.0: only a later frame, 1 s away (> tolerance) — hold never looks forward.
    assert cols["cam__status"].to_list() == ["absent", "imputed", "imputed", "absent", "observed"]
    assert cols["cam__imputed_frac"].to_list() == [None, 1.0, 1.0, None, 0.0]
    assert cols["cam__dt_s"].to_list()[:4] == [None, 2.0, 3.0, None]
    assert cols["cam"].to_list()[:4] == [None, "a/10000000.png", "a/10000000.png", None]
    assert out.details == {"held": 2}
    # Without hold the same anchors are absent.
    plain = align_image(stream, a, spec(tolerance_s=0.5, max_gap_s=3.0), CTX).columns
    assert plain["cam__status"].to_list() == ["absent", "absent", "absent", "absent", "observed"]


def test_empty_stream_and_no_anchors() -> None:
    empty = align_image(frames([]), anchors([("a", 1.0)]), spec(), CTX).columns
    assert empty["cam__status"].to_list() == ["absent"]
    none = align_image(frames([("a", 1.0)]), anchors([]), spec(), CTX).columns
    assert none.height == 0 and none.width == 4


keys = st.sampled_from(["a", "b", "c"])
times = st.integers(min_value=0, max_value=2000).map(lambda ms: ms / 1000)


@settings(max_examples=60, deadline=None)
@given(
    stream_rows=st.lists(st.tuples(keys, times), max_size=25, unique=True),
    anchor_rows=st.lists(st.tuples(keys, times), min_size=1, max_size=25, unique=True),
    tolerance=st.sampled_from([0.0, 0.05, 0.3]),
    mode=st.sampled_from(["nearest", "before"]),
    hold=st.booleans(),
)
def test_property_within_tolerance_same_key_deterministic(
    stream_rows: list[tuple[str, float]],
    anchor_rows: list[tuple[str, float]],
    tolerance: float,
    mode: str,
    hold: bool,
) -> None:
    stream, a = frames(stream_rows), anchors(anchor_rows)
    sp = spec(tolerance_s=tolerance, mode=mode, impute="hold" if hold else "none", max_gap_s=0.5)
    out = align_image(stream, a, sp, CTX).columns
    assert out.height == a.height  # no anchor lost
    assert out.equals(align_image(stream, a, sp, CTX).columns)  # deterministic
    for anchor, row in zip(a.iter_rows(named=True), out.iter_rows(named=True), strict=True):
        # Signed gaps (anchor − frame) of the frames of this entity that the mode may use.
        gaps = [anchor["t_us"] - round(t * US) for k, t in stream_rows if k == anchor["key"]]
        gaps = [g for g in gaps if mode == "nearest" or g >= 0]
        best = min((abs(g) for g in gaps), default=None)
        if best is not None and best <= round(tolerance * US):
            assert row["cam__status"] == "observed" and round(row["cam__dt_s"] * US) == best
        if row["cam__status"] == "absent":
            assert row["cam"] is None and row["cam__dt_s"] is None
            continue
        key, t_us = row["cam"].removesuffix(".png").split("/")
        assert key == anchor["key"]
        gap_us = anchor["t_us"] - int(t_us)
        assert abs(gap_us) == round(row["cam__dt_s"] * US)
        limit = tolerance if row["cam__status"] == "observed" else 0.5
        assert abs(gap_us) <= round(limit * US)
        if mode == "before" or row["cam__status"] == "imputed":
            assert gap_us >= 0
