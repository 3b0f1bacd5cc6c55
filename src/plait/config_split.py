"""The `data.split` section: which rows train, validate and test (the choice of a run's split is in
plait.data.split_plan)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from plait.config_records import record
from plait.errors import ConfigError
from plait.registry import unknown_name_message

SPLIT_KINDS = ("auto", "group", "time", "column", "random")


@dataclass(frozen=True)
class SplitSpec:
    """How the labelled rows are split into train, validation and test (and into folds).

    group: no value of this column in two splits (subjects, speakers, machines, recordings);
    time: train before validation before test, by this column, with `gap_s` seconds left out
    before each later split starts; column: the user's own train/val/test column; random: rows
    shuffled one by one, which is honest only when rows are independent. `kind: auto` takes the
    one column named; with none, an aligned table's anchor key is the group, else random (and
    the summary says so)."""

    kind: str = "auto"
    group: str | None = None
    time: str | None = None
    gap_s: float = 0.0
    column: str | None = None

    @property
    def named(self) -> dict[str, str]:
        """The split kinds this spec names a column for: {kind: column}."""
        named = {"group": self.group, "time": self.time, "column": self.column}
        return {k: v for k, v in named.items() if v is not None}


def parse_split(raw: Any, path: str = "data.split") -> SplitSpec:
    example = (
        "e.g. `split: {group: subject}`, `split: {time: recorded_at, gap_s: 60}`, `split: {column: part}`"
    )
    if raw is None:
        return SplitSpec()
    if isinstance(raw, str):  # `split: random`
        raw = {"kind": raw}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: expected a mapping, {example}; got {raw!r}")
    spec: SplitSpec = record(SplitSpec, raw, path)
    if spec.kind not in SPLIT_KINDS:
        raise ConfigError(f"{path}.kind: {unknown_name_message('split kind', spec.kind, list(SPLIT_KINDS))}")
    named = spec.named
    if len(named) > 1:
        raise ConfigError(
            f"{path}: names {', '.join(f'{k}: {v}' for k, v in named.items())}; a split is by one of "
            "group, time or column — keep one (a time split of grouped rows: choose what the model "
            "must generalise to)"
        )
    if spec.kind == "random" and named:
        raise ConfigError(f"{path}: kind random takes no column, got {named}; remove it or the kind")
    if spec.kind in ("group", "time", "column") and spec.kind not in named:
        raise ConfigError(f"{path}: kind {spec.kind} needs `{spec.kind}: COLUMN`, {example}")
    if spec.kind == "auto" and named:
        spec = replace(spec, kind=next(iter(named)))
    if spec.gap_s != 0.0 and spec.kind != "time":
        raise ConfigError(f"{path}.gap_s: only a time split leaves a gap; set `time: COLUMN` or remove gap_s")
    if not spec.gap_s >= 0.0:
        raise ConfigError(f"{path}.gap_s: expected seconds ≥ 0, got {spec.gap_s!r}")
    return spec
