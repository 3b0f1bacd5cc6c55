"""Columns that name rows or groups of rows, for `plait init`: never features, and the coarsest
grouping becomes the split.

A model fed an identifier learns which rows belong together instead of the task, and a random
split of grouped rows (windows of one recording, recordings of one subject) puts near-copies on
both sides, so the held-out figures flatter it. Among integer and short-string columns:

- a row number: integers rising by one constant step on every row (0..n-1, a frame counter);
- a unique key: ≥ 95 % distinct among the non-empty values. Integers only when named like an id,
  or from 20 rows on when they are dense codes (max − min + 1 ≤ 1.5 × distinct: a shuffled row
  number, a range of record numbers): a measurement such as an income is unique per row too, but
  spread over a range far wider than the rows;
- a group: ≥ 3 values with ≥ 2 rows each on average, no empty cell, and either named like an
  entity (subject, speaker, patient, recording, session, machine, file, …, id) but not like a
  category (type, kind, class, …), or behaving like one: each value on one run of consecutive
  rows, and the values are codes — strings with digits ('S01', 'rec_017'), or integers that lie
  within a group found so (unnamed integers alone may be a sorted measurement such as a year);
- another name for a group: constant within each group and (nearly) one value per group
  (`subject_name` beside `subject`).

The split group is the coarsest grouping with ≥ 5 groups that others nest in (subject over
recording when every recording belongs to one subject); between groupings that do not nest, the
one named like an entity with the most groups.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from plait.data.infer_columns import is_id_name, name_tokens

UNIQUE_SHARE = 0.95  # distinct / non-empty values of a key (and of another name for a group)
UNIQUE_MIN_VALUES = 5  # fewer values tell nothing
UNIQUE_MIN_INTEGERS = 20  # an integer column is a key only from this many values (or named like an id)
DENSE_SPAN = 1.5  # …and when its range (max − min + 1) is at most this many times its distinct values
ROW_NUMBER_MIN_ROWS = 3
MIN_GROUPS = 3
MIN_ROWS_PER_GROUP = 2.0  # on average
ENOUGH_GROUPS = 5  # a coarser grouping is preferred when it has at least this many
CODE_SHARE = 0.9  # share of distinct strings with a digit that makes them codes
GROUP_TOKENS = frozenset(
    {
        *("subject", "subj", "speaker", "patient", "participant", "person", "user", "customer", "client"),
        *("member", "account", "household", "individual", "animal", "driver", "player"),
        *("machine", "device", "equipment", "recording", "rec", "session", "trial", "episode", "visit"),
        *("file", "filename", "fname", "clip", "video", "track", "take"),
        *("id", "ids", "uid", "uuid", "guid", "key"),
    }
)
CATEGORY_TOKENS = frozenset(
    {"type", "kind", "class", "category", "mode", "status", "state", "level", "gender", "sex", "flag"}
)


@dataclass(frozen=True)
class _Facts:
    name: str
    n: int  # non-empty values
    distinct: int
    nulls: int
    integer: bool
    contiguous: bool  # each value on one run of consecutive rows
    codes: bool  # integers, or strings that mostly contain a digit
    step: int | None  # the constant step of a row number
    span: int | None  # max − min + 1 of integers
    sizes: tuple[int, int]  # fewest and most rows of one value

    @property
    def named_group(self) -> bool:
        tokens = set(name_tokens(self.name))
        return bool(tokens & GROUP_TOKENS) and not tokens & CATEGORY_TOKENS

    def rows(self) -> str:
        low, high = self.sizes
        span = f"{low}" if low == high else f"{low}–{high}"
        return (
            f"{self.distinct} distinct values, each on {span}{' consecutive' if self.contiguous else ''} rows"
        )


@dataclass(frozen=True)
class Identified:
    """notes: {column: why it is skipped} for every identifier found; group: the split group
    (None when no column groups the rows), with `group_why`, the words for the split note."""

    notes: Mapping[str, str]
    group: str | None = None
    group_why: str = ""


def identify(df: pl.DataFrame, columns: Sequence[str], split_column: str | None) -> Identified:
    """Row numbers, keys, groups and other names for groups among `columns` (integer and short-string
    columns, in table order). With a `split_column`, groups are skipped but not chosen."""
    facts = {c: _facts(df.get_column(c)) for c in columns}
    notes: dict[str, str] = {}
    for c, f in facts.items():
        if f.step is not None:
            column = df.get_column(c)
            first, last = column[0], column[-1]
            notes[c] = (
                f"an identifier: a row number ({first}, {first + f.step}, …, {last}: +{f.step} on every row)"
            )
        elif _unique(f):
            notes[c] = f"an identifier ({f.distinct} distinct values among {f.n} rows)"
    named = [c for c, f in facts.items() if c not in notes and _groupish(f)]
    groups = [
        c
        for c, f in facts.items()
        if c in named or (c not in notes and _sub_key(f) and any(_nested(df, c, g) for g in named))
    ]
    reps: list[str] = []
    for c in groups:  # the same partition under two names: keep the first
        twin = next((r for r in reps if _nested(df, c, r) and _nested(df, r, c)), None)
        if twin is None:
            reps.append(c)
        else:
            notes[c] = f"another name for {twin} (one value per {twin}, {facts[c].distinct} distinct)"
    for c, f in facts.items():
        if c in notes or c in reps:
            continue
        owner = next((g for g in reps if _alias_of(df, c, f, g, facts[g])), None)
        if owner is not None:
            notes[c] = f"another name for {owner} (one value per {owner}, {f.distinct} distinct)"
    if not reps:
        return Identified(notes)
    if split_column is not None:
        for g in reps:
            notes[g] = f"an identifier ({facts[g].rows()}){_leak(df, g, split_column)}"
        return Identified(notes)
    chosen = _choose(df, reps, facts)
    for g in reps:
        notes[g] = f"an identifier ({facts[g].rows()}); " + _role(df, g, chosen, facts)
    return Identified(notes, group=chosen, group_why=_why_chosen(df, chosen, reps, facts))


def _facts(series: pl.Series) -> _Facts:
    values = series.drop_nulls()
    n, distinct = len(values), values.n_unique()
    integer = series.dtype.is_integer()
    runs = int((values != values.shift(1)).sum()) + 1 if n > 1 else n  # first comparison is null
    if integer:
        codes = True
    else:
        text = values.cast(pl.String).unique()
        share = text.str.contains(r"\d").mean()
        codes = isinstance(share, int | float) and share >= CODE_SHARE
    counts = values.value_counts().get_column("count").to_numpy() if n else np.zeros(1, dtype=np.int64)
    return _Facts(
        name=series.name,
        n=n,
        distinct=distinct,
        nulls=series.null_count(),
        integer=integer,
        contiguous=runs == distinct,
        codes=codes,
        step=_row_step(series) if integer else None,
        span=_span(values) if integer else None,
        sizes=(int(counts.min()), int(counts.max())),
    )


def _span(values: pl.Series) -> int | None:
    low, high = values.min(), values.max()
    return high - low + 1 if isinstance(low, int) and isinstance(high, int) else None


def _row_step(series: pl.Series) -> int | None:
    if series.null_count() or series.len() < ROW_NUMBER_MIN_ROWS:
        return None
    steps = series.cast(pl.Int64).diff().drop_nulls()
    step = steps[0]
    return int(step) if step > 0 and bool((steps == step).all()) else None


def _unique(f: _Facts) -> bool:
    if f.n < UNIQUE_MIN_VALUES or f.distinct < UNIQUE_SHARE * f.n:
        return False
    if not f.integer or is_id_name(f.name):
        return True
    dense = f.span is not None and f.span <= DENSE_SPAN * f.distinct
    return f.n >= UNIQUE_MIN_INTEGERS and dense


def _grouping(f: _Facts) -> bool:
    """Enough values, each on several rows, and no empty cell."""
    return not f.nulls and f.distinct >= MIN_GROUPS and f.n >= MIN_ROWS_PER_GROUP * f.distinct


def _groupish(f: _Facts) -> bool:
    return _grouping(f) and (f.named_group or (f.contiguous and f.codes and not f.integer))


def _sub_key(f: _Facts) -> bool:
    """Integers on runs of consecutive rows: a group when they lie within another group."""
    return _grouping(f) and f.integer and f.contiguous and not f.named_group


def _nested(df: pl.DataFrame, inner: str, outer: str) -> bool:
    """Every value of `inner` lies within one value of `outer`."""
    return df.select(inner, outer).n_unique() == df.get_column(inner).n_unique()


def _alias_of(df: pl.DataFrame, column: str, f: _Facts, group: str, g: _Facts) -> bool:
    """`column` is constant within each value of `group` and (nearly) unique per group."""
    enough = max(MIN_GROUPS, math.ceil(UNIQUE_SHARE * g.distinct))
    return f.distinct >= enough and f.distinct <= g.distinct and _nested(df, group, column)


def _choose(df: pl.DataFrame, reps: list[str], facts: Mapping[str, _Facts]) -> str:
    """The coarsest grouping with enough groups; between groupings that do not nest, the one named
    like an entity with the most groups."""
    pool = [g for g in reps if facts[g].distinct >= ENOUGH_GROUPS] or reps
    tops = [g for g in pool if not any(o != g and _nested(df, g, o) for o in pool)]
    return min(tops or pool, key=lambda g: (not facts[g].named_group, -facts[g].distinct, reps.index(g)))


def _role(df: pl.DataFrame, g: str, chosen: str, facts: Mapping[str, _Facts]) -> str:
    if g == chosen:
        return "used as data.split.group"
    if _nested(df, g, chosen):
        return f"nested in {chosen} (every {g} belongs to one {chosen}), the split group"
    if _nested(df, chosen, g):
        return (
            f"coarser than {chosen} but only {facts[g].distinct} groups, too few for train/val/test; "
            f"the split is by {chosen}, so rows of one {g} sit on both sides"
        )
    return f"the split is by {chosen}; set data.split.group: {g} if the model must work for new values of {g}"


def _why_chosen(df: pl.DataFrame, chosen: str, reps: list[str], facts: Mapping[str, _Facts]) -> str:
    others = [g for g in reps if g != chosen]
    nested = [g for g in others if _nested(df, g, chosen)]
    f = facts[chosen]
    why = f"{chosen} groups the rows ({f.rows()}), so no {chosen} is in two of train/val/test"
    if nested:
        why += f"; {' and '.join(nested)} {'lies' if len(nested) == 1 else 'lie'} within it"
    rest = [g for g in others if g not in nested]
    if rest:
        why += f"; other groupings: {', '.join(rest)}"
    if f.distinct < ENOUGH_GROUPS:
        why += f"; only {f.distinct} groups: the held-out figures rest on one or two of them"
    return why


def _leak(df: pl.DataFrame, group: str, split_column: str) -> str:
    """Words on whether the user's split keeps each group in one part."""
    parts = df.select(group, pl.col(split_column).cast(pl.String).str.strip_chars().str.to_lowercase())
    spread = parts.unique().get_column(group).value_counts().filter(pl.col("count") > 1).height
    if spread == 0:
        return f"; {split_column} keeps each {group} in one part"
    total = parts.get_column(group).n_unique()
    return (
        f"; {spread} of {total} values sit in more than one part of {split_column}, so held-out rows "
        f"share a {group} with training rows and the held-out figures flatter the model"
    )
