"""Which `data.split` `plait init` writes, and the categories a given split leaves unlearnable.

The user's train/val/test column wins; else the grouping infer_ids.py chose; else nothing is
written and training splits at random by row, saying what that risks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from plait.data.infer_ids import Identified
from plait.data.split import SPLIT_NAMES

EXAMPLES = 3
_PART_WORDS = {("test",): "the test rows", ("val",): "the val rows", ("test", "val"): "the val and test rows"}


@dataclass(frozen=True)
class InferredSplit:
    """What init writes as data.split: kind group | column | random (random: nothing is written,
    so training splits at random by row and says so), the column it names, and why."""

    kind: str
    column: str | None
    why: str

    def to_config(self) -> dict[str, str] | None:
        """The data.split mapping to write, or None."""
        if self.kind == "random" or self.column is None:
            return None
        return {self.kind: self.column}

    def words(self) -> str:
        """A few words for a summary line: "split by group 'subject'"."""
        if self.kind == "random":
            return "random split by row"
        return f"split by {self.kind} '{self.column}'"

    def note(self) -> str:
        if self.kind == "random":
            return f"data.split: not set — {self.why}"
        return f"data.split.{self.kind}: {self.column} — {self.why}"


def choose_split(
    split_column: str | None, identified: Identified, time_columns: Sequence[str]
) -> InferredSplit:
    if split_column is not None:
        return InferredSplit("column", split_column, "the table's own train/val/test column")
    if identified.group is not None:
        return InferredSplit("group", identified.group, identified.group_why)
    why = (
        "no train/val/test column and no column that groups the rows (subject, recording, machine, …); "
        "training splits at random by row, which is honest only when rows are independent"
    )
    if time_columns:
        why += f"; to test on later rows, set `data.split: {{time: {time_columns[0]}}}`"
    return InferredSplit("random", None, why)


def unseen_values(df: pl.DataFrame, split_column: str, columns: Sequence[str]) -> list[str]:
    """One note per categorical column in `columns` with values that no training row has: the model
    cannot learn them, and they usually mean the column names the held-out group."""
    part = (
        pl.col(split_column)
        .cast(pl.String)
        .str.strip_chars()
        .str.to_lowercase()
        .replace_strict(SPLIT_NAMES, default=None)
        .alias("__part")
    )
    notes = []
    for column in columns:
        rows = df.select(pl.col(column).cast(pl.String), part).drop_nulls()
        by_value = rows.group_by(column).agg(pl.col("__part").unique().sort())
        unseen = by_value.filter(~pl.col("__part").list.contains("train")).sort(column)
        if unseen.height == 0:
            continue
        phrases = []
        for key, values in unseen.group_by(pl.col("__part").list.join(","), maintain_order=True):
            names = values.get_column(column).to_list()
            shown = ", ".join(repr(v) for v in names[:EXAMPLES]) + (", …" if len(names) > EXAMPLES else "")
            where = _PART_WORDS.get(tuple(str(key[0]).split(",")), "rows outside train")
            verb = "appears" if len(names) == 1 else "appear"
            phrases.append(f"{len(names)} value{'s' * (len(names) != 1)} ({shown}) {verb} only in {where}")
        notes.append(
            f"{column}: {'; '.join(phrases)} — the model cannot learn "
            f"{'it' if unseen.height == 1 else 'them'}; this usually means the column identifies the "
            "held-out group: remove it from the features or use it as data.split.group"
        )
    return notes
