"""What is checked once the rows are split and before a model trains: the leak check and copies of
training rows among the held-out ones (data/leaks.py), and fields no training row has a value for."""

from __future__ import annotations

import polars as pl
import torch

from plait.config import Config
from plait.data.dataset import LoadReport, TensorTable
from plait.data.leaks import LeakReport, check_leaks, copies_across
from plait.data.split import Split
from plait.data.table import LabelInfo
from plait.errors import ConfigError, DataError
from plait.modalities.base import Modality
from plait.modalities.contract import value_columns
from plait.registry import suggest
from plait.training.stages import Say


def without_empty_fields(
    config: Config,
    modalities: dict[str, Modality],
    tensors: TensorTable,
    report: LoadReport,
    split: Split,
    tell: Say,
) -> tuple[Config, dict[str, Modality], TensorTable]:
    """A field that no training row has a value for would keep an untrained encoder that still
    changes answers when the field is sent at prediction: an error naming why every value was
    absent, or — with data.drop_empty_fields — the field leaves the model, with a warning."""
    train_idx = torch.as_tensor(split.train, dtype=torch.long)
    empty = [f for f in modalities if not bool(tensors.present[f][train_idx].any())]
    if not empty:
        return config, modalities, tensors
    why = {r.field: r.line() for r in report.fields}
    evidence = "; ".join(why.get(f, f) for f in empty)
    if len(empty) == len(modalities) or not config.data.drop_empty_fields:
        raise DataError(
            f"no training row has a value for {', '.join(f'fields.{f}' for f in empty)}: {evidence}. "
            "An encoder that never saw a value cannot learn, yet would change answers when the field is "
            "sent. Fix the paths or data.root"
            + (
                ""
                if len(empty) == len(modalities)
                else ", remove the field, or set data.drop_empty_fields: true"
            )
        )
    keep = [f for f in modalities if f not in empty]
    tell(f"warning: dropped {', '.join(empty)} from the model (data.drop_empty_fields): {evidence}")
    return config.with_fields(keep), {f: modalities[f] for f in keep}, tensors.select(keep)


def check_leaks_and_copies(
    config: Config,
    df: pl.DataFrame,
    labels: LabelInfo,
    split: Split,
    modalities: dict[str, Modality],
    tell: Say,
) -> LeakReport:
    """The leak check of data/leaks.py on the training rows — with the group the split knows of
    (or an aligned table's key) and the columns the user accepted — said and raised; then a
    warning when held-out rows copy training rows."""
    leaks = _leak_check(config, df, labels, split, modalities)
    for finding in leaks.warnings:
        accepted = " (accepted: data.allow_leaks)" if finding.column in leaks.allowed else ""
        tell(f"warning: leak check{accepted}: '{finding.column}' (fields.{finding.field}) {finding.evidence}")
    leaks.raise_if_blocking()
    read_columns = [c for m in modalities.values() for c in m.columns()]
    copies = copies_across(df, [*read_columns, config.task.label], split)
    if copies is not None:
        tell(f"warning: {copies}")
    return leaks


def _leak_check(
    config: Config, df: pl.DataFrame, labels: LabelInfo, split: Split, modalities: dict[str, Modality]
) -> LeakReport:
    columns = {name: value_columns(m) for name, m in modalities.items()}
    checked = {c for cols in columns.values() for c in cols}
    for column in config.data.allow_leaks:
        if column not in checked:
            raise ConfigError(
                f"data.allow_leaks: '{column}' is not a column any field reads as a value;"
                f"{suggest(column, sorted(checked))} Checked columns: {', '.join(sorted(checked)) or 'none'}"
            )
    group = split.column if split.kind == "group" else None
    if group is None and config.streams is not None:
        group = config.streams.anchors.key
    return check_leaks(
        df, labels, split, columns, group=group, allowed=config.data.allow_leaks, seed=config.train.seed
    )
