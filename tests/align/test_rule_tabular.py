from __future__ import annotations

from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from plait.align.frames import RuleContext
from plait.align.rules.tabular import align_tabular
from plait.align.spec import StreamSpec

CTX = RuleContext(base_dir=Path("."), media_dir=Path("media"))
US = 1_000_000


def records(rows: list[tuple[str, float, int, str]]) -> pl.DataFrame:
    """A tabular stream frame sorted by (key, t_us): attributes `size` (Int64) and `model` (Utf8)."""
    data = sorted((k, round(t * US), n, m) for k, t, n, m in rows)
    return pl.DataFrame(
        {
            "key": [r[0] for r in data],
            "t_us": [r[1] for r in data],
            "segment": [0] * len(data),
            "size": [r[2] for r in data],
            "model": [r[3] for r in data],
        },
        schema={"key": pl.Utf8, "t_us": pl.Int64, "segment": pl.Int32, "size": pl.Int64, "model": pl.Utf8},
    )


def anchors(rows: list[tuple[str, float]]) -> pl.DataFrame:
    data = sorted((round(t * US), k) for k, t in rows)
    return pl.DataFrame(
        {"anchor": range(len(data)), "key": [k for _, k in data], "t_us": [t for t, _ in data]},
        schema={"anchor": pl.UInt32, "key": pl.Utf8, "t_us": pl.Int64},
    )


def spec(**kw: object) -> StreamSpec:
    base = {
        "name": "asset",
        "kind": "tabular",
        "path": "t.csv",
        "key": "machine",
        "columns": ("size", "model"),
    }
    return StreamSpec(**{**base, "tolerance_s": 0.0, **kw})  # type: ignore[arg-type]


def test_change_exactly_at_the_anchor_applies() -> None:
    stream = records([("a", 0.0, 1, "old"), ("a", 10.0, 2, "new")])
    out = align_tabular(stream, anchors([("a", 9.999999), ("a", 10.0)]), spec(), CTX).columns
    assert out.to_dicts() == [
        {
            "asset__status": "observed",
            "asset__imputed_frac": 0.0,
            "asset__dt_s": 9.999999,
            "asset_size": 1,
            "asset_model": "old",
        },
        {
            "asset__status": "observed",
            "asset__imputed_frac": 0.0,
            "asset__dt_s": 0.0,
            "asset_size": 2,
            "asset_model": "new",
        },
    ]


def test_dtypes_are_kept_and_absent_is_null() -> None:
    stream = records([("a", 5.0, 7, "x")]).with_columns(pl.col("model").cast(pl.Categorical))
    out = align_tabular(stream, anchors([("a", 1.0), ("b", 6.0)]), spec(), CTX).columns
    assert out.schema["asset_size"] == pl.Int64
    assert out.schema["asset_model"] == pl.Categorical
    # before the first record, and an entity with no record: absent — never the later record.
    assert out["asset__status"].to_list() == ["absent", "absent"]
    assert out["asset_size"].to_list() == [None, None]
    assert out["asset__dt_s"].to_list() == [None, None]


def test_keys_never_mix() -> None:
    stream = records([("a", 0.0, 1, "a0"), ("b", 0.0, 2, "b0"), ("b", 3.0, 3, "b3")])
    out = align_tabular(stream, anchors([("a", 4.0), ("b", 5.0), ("c", 6.0)]), spec(), CTX).columns
    assert out["asset_model"].to_list() == ["a0", "b3", None]
    assert out["asset__dt_s"].to_list() == [4.0, 2.0, None]


def test_tolerance_limits_age_inclusively_and_zero_means_no_limit() -> None:
    stream = records([("a", 0.0, 1, "x")])
    a = anchors([("a", 100.0), ("a", 100.000001)])
    limited = align_tabular(stream, a, spec(tolerance_s=100.0), CTX)
    assert limited.columns["asset__status"].to_list() == ["observed", "absent"]
    assert limited.columns["asset_size"].to_list() == [1, None]
    assert limited.details == {"too_old": 1}
    unlimited = align_tabular(stream, a, spec(tolerance_s=0.0), CTX)
    assert unlimited.columns["asset__status"].to_list() == ["observed", "observed"]
    assert unlimited.details == {"too_old": 0}


def test_keyless_table_matches_every_entity() -> None:
    stream = records([("", 0.0, 9, "shared")])
    out = align_tabular(stream, anchors([("a", 1.0), ("b", 2.0)]), spec(key=None), CTX).columns
    assert out["asset_model"].to_list() == ["shared", "shared"]


keys = st.sampled_from(["a", "b", "c"])
times = st.integers(min_value=0, max_value=100).map(float)


@settings(max_examples=60, deadline=None)
@given(
    stream_rows=st.lists(st.tuples(keys, times), max_size=20, unique=True),
    anchor_rows=st.lists(st.tuples(keys, times), min_size=1, max_size=20, unique=True),
    tolerance=st.sampled_from([0.0, 5.0, 30.0]),
)
def test_property_latest_record_within_tolerance(
    stream_rows: list[tuple[str, float]], anchor_rows: list[tuple[str, float]], tolerance: float
) -> None:
    stream = records([(k, t, i, f"{k}@{t}") for i, (k, t) in enumerate(stream_rows)])
    a = anchors(anchor_rows)
    out = align_tabular(stream, a, spec(tolerance_s=tolerance), CTX).columns
    assert out.height == a.height  # no anchor lost
    assert out.equals(align_tabular(stream, a, spec(tolerance_s=tolerance), CTX).columns)  # deterministic
    for anchor, row in zip(a.iter_rows(named=True), out.iter_rows(named=True), strict=True):
        t = anchor["t_us"] / US
        earlier = [s for k, s in stream_rows if k == anchor["key"] and s <= t]
        latest = max(earlier, default=None)
        if latest is None or (tolerance > 0 and t - latest > tolerance):
            assert row["asset__status"] == "absent" and row["asset_model"] is None
        else:
            assert row["asset__status"] == "observed"
            assert row["asset_model"] == f"{anchor['key']}@{latest}"
            assert row["asset__dt_s"] == t - latest
