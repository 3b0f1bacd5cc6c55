"""Rows without a label that a label-free stage (contrastive) may train on without leaking the
held-out rows: every such row for a random split; for a group split, those whose group has no
validation or test row; for a time split, those before the first validation or test time (less
the gap); for a column split, those the column puts in train. A row that cannot be placed (its
group or time is missing) is left out. The supervised stages never see them."""

from __future__ import annotations

import numpy as np
import polars as pl

from plait.data.split import SPLIT_NAMES, Split
from plait.data.split_time import time_seconds


def unlabelled_rows(split: Split, df: pl.DataFrame, valid: np.ndarray, source: str = "") -> np.ndarray:
    """Sorted rows of `df` without a label (`valid` False) that are safe to train a label-free stage."""
    candidates = np.flatnonzero(~np.asarray(valid, dtype=bool)).astype(np.int64)
    if not len(candidates):
        return candidates
    held = np.concatenate([split.val, split.test]).astype(np.int64)
    if split.kind == "random":
        return candidates
    column = split.column
    if column is None or column not in df.columns:
        return candidates[:0]
    values = df.get_column(column)
    if split.kind == "group":
        taken = {v for v in values.gather(held).to_list() if v is not None}
        groups = values.gather(candidates).to_list()
        kept = [r for r, v in zip(candidates, groups, strict=True) if v is not None and v not in taken]
        return np.array(kept, dtype=np.int64)
    if split.kind == "time":
        seconds = time_seconds(values, np.asarray(valid, dtype=bool), f" in {source}" if source else "")
        if not len(held):
            return candidates[np.isfinite(seconds[candidates])]
        start = float(np.nanmin(seconds[held])) - split.gap_s
        times = seconds[candidates]
        return candidates[np.isfinite(times) & (times < start)]
    texts = values.cast(pl.Utf8).gather(candidates).to_list()
    names = [SPLIT_NAMES.get(v.strip().lower()) if isinstance(v, str) else None for v in texts]
    return np.array([r for r, n in zip(candidates, names, strict=True) if n == "train"], dtype=np.int64)
