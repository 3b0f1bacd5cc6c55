"""Guessing a config's `fields:` and `data:` from a table, for `plait init TABLE --label COLUMN`.

Each column gets one human-readable note saying what was inferred and why, or why it was skipped,
so the user can correct the guess in the YAML file it lands in. Identifiers (infer_ids.py) and
times (infer_columns.py) never become features; the coarsest column that groups the rows becomes
`data.split.group` unless the table has its own train/val/test column (infer_split.py); media
fields get the files' native size and sample rate, and `data.root` the folder that holds every
file (infer_media.py); the bookkeeping columns of a `plait align` table are skipped, its segment
columns (each clip's start and length in its file) used as such by a kind that reads segments.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from plait.config import TrainSpec, parse_config
from plait.data.infer_columns import Guess, guess_column
from plait.data.infer_ids import identify
from plait.data.infer_media import MediaRoot, media_root
from plait.data.infer_split import InferredSplit, choose_split, unseen_values
from plait.data.table import check_columns, infer_task_type, prepare_labels, read_table
from plait.errors import ConfigError, DataError
from plait.modalities import MODALITIES

# What `plait align` writes next to each stream `s` (align/frames.py): always bookkeeping…
ALIGN_STATUS_SUFFIXES = ("__status", "__dt_s", "__imputed_frac")
# …also these, in a table that has `s__status` beside them…
ALIGN_COUNT_SUFFIXES = ("__observed", "__expected", "__lines")
# …and a clip's segment of its file (start, length, in seconds): the options a kind that reads
# segments names in its `segment_options`, in this order.
SEGMENT_SUFFIXES = ("__offset_s", "__duration_s")
ALIGN_ANCHOR = "anchor"  # the anchor id column of an aligned table


@dataclass(frozen=True)
class InferredFields:
    """fields: the config's `fields:` mapping, {name: {"kind": ..., **options}}. notes: one line
    per column (and one per warning). split: the data.split to write and why. media_root: the
    folder holding the media files (data.root), None without media columns."""

    fields: dict[str, dict[str, Any]]
    notes: tuple[str, ...]
    split: InferredSplit
    media_root: MediaRoot | None = None

    @property
    def split_column(self) -> str | None:
        """The table's train/val/test column, if any."""
        return self.split.column if self.split.kind == "column" else None


def infer_fields(df: pl.DataFrame, label: str, root: Path) -> InferredFields:
    """Guess one field per media/text/sequence column and one `tabular` field for the numbers and
    categories; skip identifiers and bookkeeping; choose the split. `root` is where relative media
    paths are looked up (to read their headers and to find the folder that holds them all)."""
    skipped = {c: why for c in df.columns if c != label and (why := _bookkeeping(c, df.columns)) is not None}
    guesses = {c: guess_column(df.get_column(c), root) for c in df.columns if c != label and c not in skipped}
    split_column = next((c for c, g in guesses.items() if g.kind == "split"), None)
    identified = identify(df, [c for c, g in guesses.items() if g.keyish], split_column)
    segments, unused = _segments(df, guesses)
    skipped.update(identified.notes)
    skipped.update(unused)
    fields: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    numeric: list[str] = []
    categorical: list[str] = []
    taken = {label}
    for column in df.columns:
        guess = guesses.get(column)
        if column == label:
            notes.append(f"{column}: the label (task.label), not an input")
        elif column in segments:
            notes.append(f"{column}: {segments[column]}")
        elif column in skipped or guess is None:
            notes.append(f"{column}: skipped — {skipped[column]}")
        elif guess.kind == "split" and column == split_column:
            notes.append(f"{column}: data.split.column — {guess.why}")
        elif guess.kind in ("skip", "split"):
            notes.append(f"{column}: skipped — {guess.why}")
        elif guess.kind in ("numeric", "categorical"):
            (numeric if guess.kind == "numeric" else categorical).append(column)
            notes.append(f"{column}: {guess.kind} column of field 'tabular' — {guess.why}")
        else:
            name = _unique_name(sanitise(column), taken)
            taken.add(name)
            segment, words = _segment_field_options(df, column, guesses)
            options = {**guess.options, **segment}
            fields[name] = {"kind": guess.kind, **({"column": column} if name != column else {}), **options}
            notes.append(f"{column}: field '{name}' of kind {guess.kind} — {guess.why}{words}")
    if numeric or categorical:
        fields[_unique_name("tabular", taken | set(fields))] = _tabular(numeric, categorical)
    if split_column is not None:
        notes += unseen_values(df, split_column, categorical)
    split = choose_split(split_column, identified, [c for c, g in guesses.items() if g.time])
    media = [c for c, g in guesses.items() if g.media and c not in skipped]
    return InferredFields(
        fields=fields, notes=tuple(notes), split=split, media_root=_media_root(df, media, root)
    )


def _tabular(numeric: list[str], categorical: list[str]) -> dict[str, Any]:
    spec: dict[str, Any] = {"kind": "tabular"}
    if numeric:
        spec["numeric"] = numeric
    if categorical:
        spec["categorical"] = categorical
    return spec


def _bookkeeping(column: str, columns: list[str]) -> str | None:
    """Why `column` is a column `plait align` wrote for itself, or None."""
    for suffix in ALIGN_STATUS_SUFFIXES:
        if column.endswith(suffix) and len(column) > len(suffix):
            return _bookkeeping_note(column, suffix)
    aligned = any(c.endswith("__status") for c in columns)
    for suffix in ALIGN_COUNT_SUFFIXES:
        if aligned and column.endswith(suffix) and f"{column[: -len(suffix)]}__status" in columns:
            return _bookkeeping_note(column, suffix)
    if aligned and column == ALIGN_ANCHOR:
        return "plait align's anchor id (one per row), not a feature"
    return None


def _bookkeeping_note(column: str, suffix: str) -> str:
    return f"plait align's bookkeeping ({suffix[2:]} of stream '{column[: -len(suffix)]}'), not a feature"


def _segment_options(kind: str) -> tuple[str, ...]:
    """The options of a `kind` field naming its clips' start and length columns, when its modality
    reads segments of files (declared as `segment_options`), else ()."""
    return tuple(getattr(MODALITIES.get(kind), "segment_options", ())) if kind in MODALITIES else ()


def _segments(df: pl.DataFrame, guesses: dict[str, Guess]) -> tuple[dict[str, str], dict[str, str]]:
    """{column: note} for the offset/duration columns a field reads (its kind reads segments), and
    {column: why} for those of an aligned stream whose kind does not (bookkeeping)."""
    aligned = any(c.endswith("__status") for c in df.columns)
    used: dict[str, str] = {}
    unused: dict[str, str] = {}
    for index, suffix in enumerate(SEGMENT_SUFFIXES):
        for column in df.columns:
            stream = column[: -len(suffix)]
            if not column.endswith(suffix) or not stream:
                continue
            guess = guesses.get(stream)
            options = () if guess is None else _segment_options(guess.kind)
            if guess is not None and options and _seconds(df, column):
                what = "start" if index == 0 else "length"
                used[column] = (
                    f"{options[index]} of the {guess.kind} field of column '{stream}' "
                    f"(each clip's {what} in seconds)"
                )
            elif aligned and f"{stream}__status" in df.columns:
                unused[column] = _bookkeeping_note(column, suffix)
    return used, unused


def _seconds(df: pl.DataFrame, column: str) -> bool:
    return df.schema[column].is_numeric() and df.schema[column] != pl.Boolean


def _segment_field_options(
    df: pl.DataFrame, column: str, guesses: dict[str, Guess]
) -> tuple[dict[str, Any], str]:
    """A field's offset/duration columns when its kind reads segments (and the options its
    segments' lengths call for, e.g. an audio field's max_seconds), and the words for its note."""
    kind = guesses[column].kind
    names = _segment_options(kind)
    if not names:
        return {}, ""
    options: dict[str, Any] = {}
    for name, suffix in zip(names, SEGMENT_SUFFIXES, strict=True):
        if column + suffix in df.columns and _seconds(df, column + suffix):
            options[name] = column + suffix
    offset, duration = names
    if duration in options:  # the clips are the segments, not the files
        lengths = df.get_column(options[duration]).cast(pl.Float64).drop_nulls().to_list()
        extra, covered = _options_from_durations(kind, lengths)
        named = " and ".join(options[k] for k in names if k in options)
        return {**options, **extra}, f"; clips are segments given by {named}" + (
            f", {covered}" if covered else ""
        )
    if options:
        return options, f"; clips start at {options[offset]} in their files"
    return {}, ""


def _options_from_durations(kind: str, seconds: Sequence[float]) -> tuple[dict[str, Any], str]:
    """What a `kind` field's options should be for clips of these lengths (its modality's
    `options_from_durations`), and words on them; nothing when it declares none."""
    declared = getattr(MODALITIES.get(kind), "options_from_durations", None)
    if not callable(declared):
        return {}, ""
    options, words = declared(seconds)
    return dict(options), str(words)


def _media_root(df: pl.DataFrame, columns: list[str], root: Path) -> MediaRoot | None:
    if not columns:
        return None
    values = [
        v.strip()
        for c in columns
        for v in df.get_column(c).cast(pl.String).drop_nulls().to_list()
        if v.strip()
    ]
    return media_root(values, root) if values else None


def sanitise(column: str) -> str:
    """A field name from a column name: lower case, [a-z0-9_] only, not starting with a digit."""
    name = re.sub(r"[^a-z0-9_]+", "_", column.strip().lower()).strip("_")
    name = re.sub(r"_+", "_", name)
    if not name:
        return "field"
    return f"f_{name}" if name[0].isdigit() else name


def _unique_name(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    return candidate


@dataclass(frozen=True)
class InitResult:
    """What `init_config` wrote: the config file, its fields, one note per column (and per
    warning, then the split, data.root and task type), the task type, and the split it wrote."""

    config_path: Path
    fields: dict[str, dict[str, Any]]
    notes: tuple[str, ...]
    task_type: str
    split: InferredSplit


_TRAIN_KEYS = ("epochs", "batch_size", "lr", "seed")
_HEADER = """\
# plait config generated by `plait init {table} --label {label}`.
# The fields below are guesses: check each one. Edit freely — change a field's `kind`
# ({kinds}), point it at another table column with
# `column:`, move columns between the tabular field's `numeric:` and `categorical:` lists, or
# delete a field. Relative paths are relative to this file's folder. Then: plait train {config}
#
# What plait inferred, column by column:
"""


def init_config(
    table_path: Path, label: str, out_path: Path, *, fusion: str = "gated", force: bool = False
) -> InitResult:
    """Read the table, check the label, infer the fields and write a YAML config to `out_path`."""
    table_path, out_path = Path(table_path), Path(out_path)
    if out_path.exists() and not force:
        raise ConfigError(
            f"{out_path} already exists; pass --force to overwrite it or choose another file name"
        )
    df = read_table(table_path)
    check_columns(df, label, {}, str(table_path))
    task_type = infer_task_type(df.get_column(label), "auto")
    labels = prepare_labels(df, label, task_type, str(table_path))
    inferred = infer_fields(df, label, table_path.parent)
    notes = [*inferred.notes, inferred.split.note()]
    if inferred.media_root is not None:
        notes.append(_root_note(inferred.media_root, out_path))
    why = "strings, booleans or few integers" if labels.task.is_classification else "many distinct numbers"
    notes.append(
        f"task.type: {task_type} ({why})"
        + (f", classes {', '.join(labels.classes)}" if labels.classes else "")
    )
    if labels.missing_rows:
        notes.append(f"{label}: {len(labels.missing_rows)} rows have no label; they are left out of training")
    if not inferred.fields:
        raise DataError(
            f"table {table_path}: no column besides the label '{label}' can be an input; expected text, "
            "media paths, numbers or categories — " + "; ".join(inferred.notes)
        )
    raw = _config_dict(table_path, out_path, label, task_type, inferred, fusion)
    parse_config(raw, out_path.parent)  # refuse to write a file that would not load
    text = _render(raw, table_path, label, out_path, notes)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(text, encoding="utf-8")
    return InitResult(
        config_path=out_path,
        fields=inferred.fields,
        notes=tuple(notes),
        task_type=task_type,
        split=inferred.split,
    )


def _relative(path: Path, out_path: Path) -> str:
    """`path` relative to the config file's folder, where plait resolves it; absolute on another drive."""
    try:
        return Path(os.path.relpath(path.resolve(), out_path.parent.resolve())).as_posix()
    except ValueError:  # another drive on Windows: no relative path exists
        return path.resolve().as_posix()


def _root_note(root: MediaRoot, out_path: Path) -> str:
    note = f"data.root: {_relative(root.path, out_path)} — {root.why}"
    if root.outside:
        note += (
            f"; but {root.outside} of {root.checked} checked media paths (e.g. {root.example!r}) resolve "
            "outside it and training will refuse them: write every path relative to one folder that holds "
            "all the files, or every path absolute"
        )
    return note


def _config_dict(
    table_path: Path, out_path: Path, label: str, task_type: str, inferred: InferredFields, fusion: str
) -> dict[str, Any]:
    data: dict[str, Any] = {"path": _relative(table_path, out_path)}
    if inferred.media_root is not None:
        data["root"] = _relative(inferred.media_root.path, out_path)
    split = inferred.split.to_config()
    if split is not None:
        data["split"] = split
    defaults = asdict(TrainSpec())
    return {
        "data": data,
        "task": {"label": label, "type": task_type},
        "fields": inferred.fields,
        "model": {"fusion": fusion},
        "train": {key: defaults[key] for key in _TRAIN_KEYS},
        "output": "bundle",
    }


def _render(raw: dict[str, Any], table_path: Path, label: str, out_path: Path, notes: list[str]) -> str:
    kinds = ", ".join(MODALITIES)
    header = _HEADER.format(table=table_path.as_posix(), label=label, config=out_path.name, kinds=kinds)
    lines = [header + "".join("#   " + " ".join(note.splitlines()) + "\n" for note in notes)]
    for section, value in raw.items():
        body = yaml.safe_dump({section: value}, sort_keys=False, allow_unicode=True, default_flow_style=False)
        lines.append("\n" + body)
    return "".join(lines)
