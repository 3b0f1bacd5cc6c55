"""Before training: does a column hand the model the answer?

Every column a field reads as a value (tabular numbers and categories, text; see
`modalities.base.value_columns`) is measured on the TRAINING rows only:

- **label copy**: the column is a one-to-one relabelling of the label (each class has one value,
  each value one class; regression: the label itself up to a linear map) — it stops the run;
- **predicts the label alone**: a value → label lookup learned on one half of the training rows
  scores ≥ 0.98 accuracy (R² for regression) on the other half, and both ways, while no other
  checked column comes close (< 0.9) — it stops the run; when several columns do, the task may
  simply be easy, so it is a warning naming them. When the rows are grouped, the halves are made
  of whole groups, so a value that only names a group (a row number, an id) looks nothing up;
- **identifies the group**: with a group known (data.split.group, or an aligned table's key), a
  column constant within each group and distinct between groups (≥ 90 % as many values as
  groups): when each group has one label and the split is not by that group, the model looks the
  label up by group (stops the run); under a group split a category or text that names the group
  cannot help on new groups (a warning; a number may be a real attribute of the group, so it
  passes).

Categories are looked up by value (a value never seen is a miss, so identifiers unique per row
score near 0); numbers with many values by their nearest neighbour, so a label copy with a little
noise added is still found.
The user can accept a finding (`data.allow_leaks: [COLUMN]`, `--allow-leak COLUMN`); the
accepted ones are recorded in the bundle's metrics.json under `leak_check`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl

from plait.data.split import Split
from plait.data.table import LabelInfo
from plait.errors import DataError

NEAR_PERFECT = 0.98  # lookup accuracy (or R²) on held-apart training rows that counts as "gives it away"
OTHERS_BELOW = 0.9  # …when no other checked column reaches this
BINS = 20  # quantile bins for numbers with many values
MIN_COVERAGE = 0.3  # a column with a value on fewer training rows than this is not judged
GROUP_SHARE = 0.9  # a column with ≥ this many values per group identifies the group
MIN_GROUPS = 5


@dataclass(frozen=True)
class LeakFinding:
    field: str
    column: str
    kind: str  # label_copy | predicts_label | identifies_group | easy_task
    evidence: str
    stops: bool  # True: training stops unless the column is allowed

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "column": self.column, "kind": self.kind, "evidence": self.evidence}


@dataclass(frozen=True)
class LeakReport:
    findings: tuple[LeakFinding, ...]
    allowed: tuple[str, ...] = ()  # columns the user accepted
    scores: Mapping[str, float] = field(default_factory=dict)  # column → lookup skill on training rows

    @property
    def blocking(self) -> tuple[LeakFinding, ...]:
        return tuple(f for f in self.findings if f.stops and f.column not in self.allowed)

    @property
    def warnings(self) -> tuple[LeakFinding, ...]:
        return tuple(f for f in self.findings if not f.stops or f.column in self.allowed)

    def to_json(self) -> dict[str, Any]:
        return {
            "findings": [f.to_json() for f in self.findings],
            "allowed": list(self.allowed),
            "lookup_skill": {k: round(v, 4) for k, v in self.scores.items()},
        }

    def raise_if_blocking(self) -> None:
        blocking = self.blocking
        if not blocking:
            return
        lines = "; ".join(f"'{f.column}' (fields.{f.field}): {f.evidence}" for f in blocking)
        names = ", ".join(f.column for f in blocking)
        raise LeakError(
            f"leak check: {lines}. A model trained on this scores well in every test and fails on real "
            f"data. Remove the column from its field (or the field), or — if it truly is known at "
            f"prediction time — accept it with data.allow_leaks: [{names}] "
            f"(or --allow-leak {blocking[0].column}); the bundle records that you did. An honest feature "
            "this strong (a sensor that alone settles the answer) trips the check too: then accept it"
        )


class LeakError(DataError):
    """A column gives the label away; training stops (see plait.data.leaks)."""


def check_leaks(
    df: pl.DataFrame,
    labels: LabelInfo,
    split: Split,
    columns: Mapping[str, Sequence[str]],
    *,
    group: str | None = None,
    allowed: Sequence[str] = (),
    seed: int = 0,
) -> LeakReport:
    """Measure each field's value columns on the training rows (see the module doc).
    columns: field → the columns it reads as values; group: the column that groups rows, if known."""
    train = split.train
    if len(train) < 8:
        return LeakReport(findings=(), allowed=tuple(allowed))
    classification = labels.task.is_classification
    y = labels.target[train]
    grouped = group is not None and group in df.columns
    groups = df[str(group)][train.tolist()].cast(pl.String).fill_null("").to_numpy() if grouped else None
    half = _halves(len(train), groups, seed)
    scores: dict[str, float] = {}
    coverage: dict[str, float] = {}
    copies: dict[str, str] = {}
    owner: dict[str, str] = {}
    for name, cols in columns.items():
        for column in cols:
            if column not in df.columns or column in scores:
                continue
            values = df[column][train.tolist()]
            owner[column] = name
            coded = _codes(values)
            if coded is None:
                continue
            codes, numbers = coded
            has = codes >= 0  # a column with gaps is judged on the rows where it has a value
            if has.sum() < max(8, MIN_COVERAGE * len(codes)):
                continue
            keep = np.flatnonzero(has)
            scores[column] = _lookup_skill(
                codes[keep], None if numbers is None else numbers[keep], y[keep], classification, half[keep]
            )
            coverage[column] = float(has.mean())
            copy = _copy_evidence(codes[keep], values.gather(keep), y[keep], classification, labels.classes)
            if copy:
                copies[column] = copy
    findings = [
        LeakFinding(owner[c], c, "label_copy", _on(e, coverage[c]), stops=True) for c, e in copies.items()
    ]
    findings += [
        replace(f, evidence=_on(f.evidence, coverage[f.column]))
        for f in _near_perfect(scores, owner, copies, classification, y)
    ]
    if grouped:
        assert group is not None
        findings += _group_identifiers(df, labels, train, owner, group, grouped_split=split.kind == "group")
    return LeakReport(findings=tuple(findings), allowed=tuple(allowed), scores=scores)


def _on(evidence: str, coverage: float) -> str:
    """The evidence, saying on what share of the rows it holds when the column has gaps."""
    return (
        evidence
        if coverage > 0.999
        else f"{evidence} — on the {coverage:.0%} of training rows that have a value"
    )


def _codes(values: pl.Series) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Integer codes per row (-1 missing), and for numbers with many values the numbers
    themselves (NaN missing; looked up by nearest neighbour). None for lists and nested values."""
    dtype = values.dtype
    if isinstance(dtype, (pl.List, pl.Array, pl.Struct, pl.Object)):
        return None
    if dtype.is_numeric() and values.n_unique() > BINS:
        x = values.cast(pl.Float64).to_numpy()
        finite = np.isfinite(x)
        if finite.sum() < 2:
            return None
        edges = np.unique(np.quantile(x[finite], np.linspace(0, 1, BINS + 1)[1:-1]))
        codes = np.where(finite, np.searchsorted(edges, np.where(finite, x, 0.0)), -1).astype(np.int64)
        return codes, np.where(finite, x, np.nan)
    text = values.cast(pl.String).to_list()
    present = [v for v in text if v is not None and v.strip() != ""]
    if not present:
        return None
    index = {v: i for i, v in enumerate(sorted(set(present)))}
    return np.array([index.get(v, -1) if v is not None else -1 for v in text], dtype=np.int64), None


def _halves(n: int, groups: np.ndarray | None, seed: int) -> np.ndarray:
    """A boolean half of the rows; whole groups go to one half when the rows are grouped, so a
    value that only identifies a group cannot look anything up in the other half."""
    rng = np.random.default_rng(seed)
    if groups is None:
        return rng.permutation(n) < n // 2
    unique = rng.permutation(np.unique(groups))
    return np.isin(groups, unique[: len(unique) // 2])


def _lookup_skill(
    codes: np.ndarray, numbers: np.ndarray | None, y: np.ndarray, classification: bool, half: np.ndarray
) -> float:
    """Accuracy (R² for regression) of a value → label lookup fitted on one half of the rows and
    scored on the other, both ways: categories by their value (an unseen one is a miss), numbers
    by their nearest neighbour; a missing value is a miss."""
    total = 0.0
    for fit in (half, ~half):
        score = ~fit
        if not score.any() or not fit.any():
            continue
        guess = (
            _nearest(numbers, fit, score, y)
            if numbers is not None
            else _by_value(codes, fit, score, y, classification)
        )
        truth = y[score]
        if classification:
            total += float((guess == truth).mean())
        else:
            guess = np.where(np.isnan(guess), float(y[fit].mean()), guess)
            spread = float(((truth - truth.mean()) ** 2).sum())
            total += 1.0 - float(((truth - guess) ** 2).sum()) / spread if spread > 0 else 0.0
    return total / 2


def _by_value(
    codes: np.ndarray, fit: np.ndarray, score: np.ndarray, y: np.ndarray, classification: bool
) -> np.ndarray:
    """The majority class (classification) or mean (regression) of each value on the `fit` rows,
    looked up for the `score` rows; NaN for a value not seen. O(rows + values × classes)."""
    n_codes = int(codes.max()) + 1 if len(codes) else 0
    seen = fit & (codes >= 0)
    counts = np.bincount(codes[seen], minlength=n_codes).astype(np.float64)
    if classification:
        table = np.zeros((n_codes, int(y.max()) + 1))
        np.add.at(table, (codes[seen], y[seen].astype(np.int64)), 1.0)
        answer = table.argmax(axis=1).astype(np.float64)
    else:
        sums = np.bincount(codes[seen], weights=y[seen].astype(np.float64), minlength=n_codes)
        answer = sums / np.maximum(counts, 1.0)
    answer[counts == 0] = np.nan
    query = codes[score]
    return np.where(query >= 0, answer[np.maximum(query, 0)], np.nan)


def _nearest(numbers: np.ndarray, fit: np.ndarray, score: np.ndarray, y: np.ndarray) -> np.ndarray:
    known = fit & np.isfinite(numbers)
    if not known.any():
        return np.full(int(score.sum()), np.nan)
    order = np.argsort(numbers[known])
    x, target = numbers[known][order], y[known][order].astype(np.float64)
    q = numbers[score]
    right = np.clip(np.searchsorted(x, q), 0, len(x) - 1)
    left = np.clip(right - 1, 0, len(x) - 1)
    pick = np.where(np.abs(x[left] - q) <= np.abs(x[right] - q), left, right)
    return np.where(np.isfinite(q), target[pick], np.nan)


def _copy_evidence(
    codes: np.ndarray, values: pl.Series, y: np.ndarray, classification: bool, classes: Sequence[str]
) -> str:
    """What shows the column is the label under another name, or '' when it is not."""
    seen = codes >= 0
    if not classification:
        x = values.cast(pl.Float64, strict=False).to_numpy()
        ok = np.isfinite(x)
        if ok.sum() > 3 and np.std(x[ok]) > 0 and np.std(y[ok]) > 0:
            r = float(np.corrcoef(x[ok], y[ok])[0, 1])
            if abs(r) > 0.9999:
                return f"a linear function of the label on the training rows (correlation {r:+.5f})"
        return ""
    pairs = {(int(c), int(t)) for c, t in zip(codes[seen], y[seen], strict=True)}
    by_value = {c for c, _ in pairs}
    by_class = {t for _, t in pairs}
    if len(pairs) == len(by_value) == len(by_class) >= 2 and values.n_unique() <= len(by_class) + 1:
        mapping = ", ".join(
            f"{values.filter(pl.Series(codes == c))[0]!r} ↔ {classes[t]}" for c, t in sorted(pairs)[:4]
        )
        return f"one value per class and one class per value on {int(seen.sum())} training rows ({mapping})"
    return ""


def _near_perfect(
    scores: Mapping[str, float],
    owner: Mapping[str, str],
    copies: Mapping[str, str],
    classification: bool,
    y: np.ndarray,
) -> list[LeakFinding]:
    chance = float(np.bincount(y).max() / len(y)) if classification else 0.0
    metric = "accuracy" if classification else "R²"
    strong = {c: s for c, s in scores.items() if s >= NEAR_PERFECT and s - chance >= 0.2 and c not in copies}
    out = []
    for column, skill in strong.items():
        others = [s for c, s in scores.items() if c != column and c not in copies]
        best_other = max(others, default=0.0)
        against = f"chance {chance:.2f}, " if classification else ""
        if best_other < OTHERS_BELOW:
            evidence = (
                f"alone, a lookup of its values predicts the label with {metric} {skill:.3f} on "
                f"training rows it did not see ({against}the best other column {best_other:.2f})"
            )
            out.append(LeakFinding(owner[column], column, "predicts_label", evidence, stops=True))
        else:
            evidence = (
                f"alone predicts the label with {metric} {skill:.3f}, and so does another column "
                f"({best_other:.2f}): an easy task, or several copies of the label — check them"
            )
            out.append(LeakFinding(owner[column], column, "easy_task", evidence, stops=False))
    return out


def _group_identifiers(
    df: pl.DataFrame,
    labels: LabelInfo,
    train: np.ndarray,
    owner: Mapping[str, str],
    group: str,
    *,
    grouped_split: bool,
) -> list[LeakFinding]:
    rows = df[train.tolist()].with_columns(pl.Series("__y", labels.target[train]))
    n_groups = rows[group].n_unique()
    if n_groups < MIN_GROUPS:
        return []
    per_group = rows.group_by(group).agg(pl.col("__y").n_unique().alias("classes"))
    label_per_group = bool((per_group["classes"] == 1).mean() >= 0.95)
    out = []
    for column, name in owner.items():
        if column == group:
            continue
        stats = rows.group_by(group).agg(pl.col(column).n_unique().alias("n"))
        constant = bool((stats["n"] == 1).all())
        distinct = rows[column].n_unique()
        if not constant or distinct < GROUP_SHARE * n_groups:
            continue
        if grouped_split:
            if rows[column].dtype.is_numeric():
                continue  # a measured attribute of the group (age, power) can carry over to new groups
            evidence = (
                f"takes one value per '{group}' ({distinct} values for {n_groups} groups): another name for "
                f"the group, which the split keeps apart, so the model cannot use it on new {group}s"
            )
            out.append(LeakFinding(name, column, "identifies_group", evidence, stops=False))
        elif label_per_group:
            evidence = (
                f"takes one value per '{group}' ({distinct} values for {n_groups} groups) and each {group} "
                f"has one label, so under a split that is not by '{group}' the model looks the label up "
                f"by group; split with data.split.group: {group}"
            )
            out.append(LeakFinding(name, column, "identifies_group", evidence, stops=True))
    return out


def copies_across(df: pl.DataFrame, columns: Sequence[str], split: Split) -> str | None:
    """A warning when validation or test rows are exact copies of training rows (every column a
    field reads, and the label, equal), or None: the held-out figure would count them as new."""
    present = [c for c in dict.fromkeys(columns) if c in df.columns]
    if not present or not len(split.train):
        return None
    hashes = df.select(present).hash_rows(seed=0).to_numpy()
    seen = set(hashes[split.train].tolist())
    parts = []
    for name, rows in (("validation", split.val), ("test", split.test)):
        copies = int(sum(h in seen for h in hashes[rows].tolist())) if len(rows) else 0
        if copies:
            parts.append(f"{copies} of {len(rows)} {name} rows")
    if not parts:
        return None
    return (
        f"{' and '.join(parts)} are exact copies of training rows (every field's value and the label): the "
        "held-out figures count them as new. Deduplicate the table, or keep copies together with "
        "data.split.group"
    )
