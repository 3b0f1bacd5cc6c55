"""Group splits: every value of a group column (subject, speaker, machine, recording) lands in
exactly one split, so the held-out figures are about groups the model never saw.

Groups are placed one at a time, in a seeded random order, into the part whose shortfall they
fill best: the part where adding the group's label counts lowers the squared distance between
each part's counts and its share of every class the most (sizes alone for regression). That
keeps every split close to its fraction and, where the groups allow, stratified by label. Each
part with a non-zero fraction gets at least one group when there are enough groups.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from plait.data.split import Split
from plait.errors import DataError


def group_codes(values: Sequence[object], valid: np.ndarray, column: str, where: str) -> np.ndarray:
    """One integer code per table row for its group (-1 for rows without a label); a labelled row
    without a group value is an error naming the rows."""
    missing = [
        i for i, v in enumerate(values) if valid[i] and (v is None or (isinstance(v, float) and v != v))
    ]
    if missing:
        shown = ", ".join(str(r) for r in missing[:5]) + (", …" if len(missing) > 5 else "")
        raise DataError(
            f"data.split.group{where}: {len(missing)} labelled rows have no value in column '{column}' "
            f"(rows {shown}, 0-based); fill them in so every row belongs to a group"
        )
    text = np.array(["" if v is None else str(v) for v in values], dtype=object)
    _, codes = np.unique(text, return_inverse=True)
    return np.where(valid, codes, -1).astype(np.int64)


def assign_groups(
    codes: np.ndarray, strata: np.ndarray | None, fractions: Sequence[float], seed: int, size: int = 0
) -> np.ndarray:
    """The part (index into `fractions`) of each group code present in `codes` (≥ 0 entries).

    codes: (N,) group code per row; strata: (N,) class code per row, or None (sizes only).
    Returns an array indexed by group code (at least `size` long), -1 for codes not present."""
    present = np.unique(codes[codes >= 0])
    f = np.asarray(fractions, dtype=np.float64)
    f = f / f.sum()
    rows = codes >= 0
    cls = np.zeros(int(rows.sum()), dtype=np.int64) if strata is None else strata[rows]
    _, cls = np.unique(cls, return_inverse=True)
    n_classes = int(cls.max()) + 1 if len(cls) else 1
    counts = np.zeros((max(size, int(codes.max()) + 1 if len(present) else 0), n_classes))  # (G, C)
    np.add.at(counts, (codes[rows], cls), 1.0)
    totals = counts.sum(axis=0)  # (C,)
    target = f[:, None] * totals[None, :]  # (P, C): each part's share of every class
    weight = 1.0 / np.maximum(totals, 1.0)
    alloc = np.zeros_like(target)
    part = np.full(counts.shape[0], -1, dtype=np.int64)
    for g in np.random.default_rng(seed).permutation(present):
        v = counts[g]  # (C,)
        gain = ((2.0 * (alloc - target) * v + v * v) * weight).sum(axis=1)  # (P,) rise in squared shortfall
        gain[f == 0] = np.inf
        shortfall = (target - alloc).sum(axis=1)
        best = min(range(len(f)), key=lambda p: (gain[p], -shortfall[p]))
        part[g] = best
        alloc[best] += v
    _every_part_gets_a_group(part, present, f, counts.sum(axis=1))
    return part


def _every_part_gets_a_group(part: np.ndarray, present: np.ndarray, f: np.ndarray, sizes: np.ndarray) -> None:
    """Move the smallest group of the part with most groups into each empty part (in place)."""
    wanted = [p for p in range(len(f)) if f[p] > 0]
    if len(present) < len(wanted):
        return
    for p in wanted:
        if (part[present] == p).any():
            continue
        donors = [q for q in wanted if (part[present] == q).sum() > 1]
        donor = max(donors, key=lambda q: (part[present] == q).sum())
        members = present[part[present] == donor]
        part[members[np.argmin(sizes[members])]] = p


def group_split(
    codes: np.ndarray,
    target: np.ndarray,
    valid: np.ndarray,
    *,
    column: str,
    classification: bool,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    where: str = "",
) -> Split:
    """Train/validation/test with no group in two of them."""
    n_groups = len(np.unique(codes[valid]))
    needed = 1 + int(val_fraction > 0) + int(test_fraction > 0)
    if n_groups < needed:
        raise DataError(
            f"data.split.group{where}: column '{column}' has {n_groups} group(s) among the labelled rows; "
            f"a split into {needed} parts needs at least {needed}. Add groups, set data.val_fraction: 0 "
            "(and test_fraction: 0), or split another way"
        )
    strata = np.where(valid, target, -1).astype(np.int64) if classification else None
    part = assign_groups(
        np.where(valid, codes, -1),
        strata,
        [1 - val_fraction - test_fraction, val_fraction, test_fraction],
        seed,
    )
    return split_from_parts(codes, valid, part, column=column, seed=seed)


def split_from_parts(
    codes: np.ndarray,
    valid: np.ndarray,
    part: np.ndarray,
    *,
    column: str,
    seed: int,
    fold: int | None = None,
    folds: int | None = None,
) -> Split:
    """The Split whose train/val/test are the rows of groups in part 0/1/2."""
    row_part = np.where(valid, part[np.maximum(codes, 0)], -1)
    rows = [np.flatnonzero(row_part == p).astype(np.int64) for p in range(3)]
    groups = {k: len(np.unique(codes[r])) for k, r in zip(("train", "val", "test"), rows, strict=True)}
    return Split(
        train=rows[0],
        val=rows[1],
        test=rows[2],
        kind="group",
        column=column,
        seed=seed,
        groups=groups,
        fold=fold,
        folds=folds,
    )
