"""Guessing a config's `fields:` from a table, for `plait init TABLE --label COLUMN`.

Each column gets one human-readable note saying what was inferred and why, or why it was skipped,
so the user can correct the guess in the YAML file it lands in.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from plait.config import TrainSpec, parse_config
from plait.data.split import SPLIT_NAMES
from plait.data.table import check_columns, infer_task_type, prepare_labels, read_table
from plait.errors import ConfigError, DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff")
SERIES_EXTENSIONS = (".npy", ".csv", ".parquet")
MEDIA_SHARE = 0.8  # share of non-null values with a media extension that makes a path column
TEXT_MIN_CHARS = 20  # median length of free text…
TEXT_MIN_WORDS = 4  # …or median word count
TEXT_MIN_DISTINCT_SHARE = 0.5  # text repeats rarely: distinct / non-null values
CATEGORY_MAX_LEVELS = 50
CATEGORY_MAX_SHARE = 0.2
EMBEDDING_MIN_DIM = 32
MAX_FILES_CHECKED = 200  # existence check of media paths, for the note only
_ID_TOKENS = {"id", "ids", "uuid", "guid", "idx", "key", "index"}
_EMBEDDING_NAME = re.compile(r"emb|vec", re.IGNORECASE)


@dataclass(frozen=True)
class InferredFields:
    """fields: the config's `fields:` mapping, {name: {"kind": ..., **options}}.
    notes: one line per column. split_column: a column of train/val/test values, if any."""

    fields: dict[str, dict[str, Any]]
    notes: tuple[str, ...]
    split_column: str | None = None


@dataclass(frozen=True)
class _Guess:
    kind: str  # a field kind, "numeric"/"categorical" (→ the tabular field), "split" or "skip"
    why: str


def infer_fields(df: pl.DataFrame, label: str, root: Path) -> InferredFields:
    """Guess one field per media/text/sequence column and one `tabular` field for the numbers and
    categories. `root` is where relative media paths are looked up (only to report how many exist)."""
    fields: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    numeric: list[str] = []
    categorical: list[str] = []
    split_column: str | None = None
    taken = {label}
    for column in df.columns:
        if column == label:
            notes.append(f"{column}: the label (task.label), not an input")
            continue
        guess = _guess(df.get_column(column), root)
        if guess.kind == "split" and split_column is None:
            split_column = column
            notes.append(f"{column}: data.split_column — {guess.why}")
        elif guess.kind in ("skip", "split"):
            notes.append(f"{column}: skipped — {guess.why}")
        elif guess.kind in ("numeric", "categorical"):
            (numeric if guess.kind == "numeric" else categorical).append(column)
            notes.append(f"{column}: {guess.kind} column of field 'tabular' — {guess.why}")
        else:
            name = _unique_name(sanitise(column), taken)
            taken.add(name)
            fields[name] = {"kind": guess.kind, **({"column": column} if name != column else {})}
            notes.append(f"{column}: field '{name}' of kind {guess.kind} — {guess.why}")
    if numeric or categorical:
        name = _unique_name("tabular", taken | set(fields))
        spec: dict[str, Any] = {"kind": "tabular"}
        if numeric:
            spec["numeric"] = numeric
        if categorical:
            spec["categorical"] = categorical
        fields[name] = spec
    return InferredFields(fields=fields, notes=tuple(notes), split_column=split_column)


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


def _guess(series: pl.Series, root: Path) -> _Guess:
    values = series.drop_nulls()
    if series.dtype.is_float():
        values = values.filter(values.is_not_nan())
    if len(values) == 0:
        return _Guess("skip", "every value is empty")
    dtype = series.dtype
    if isinstance(dtype, (pl.List, pl.Array)):
        return _guess_sequence(series.name, values)
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        return _guess_strings(series.name, values.cast(pl.String), series.len(), root)
    if dtype == pl.Boolean:
        return _Guess("categorical", "true/false values")
    if dtype.is_numeric():
        return _guess_numbers(series.name, values, series.len())
    if dtype.is_temporal():
        return _Guess("skip", f"{dtype} values; derive numeric columns (hour, weekday, age) to use them")
    return _Guess("skip", f"dtype {dtype} is not supported by any field kind")


def _is_id_name(name: str) -> bool:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)  # camelCase → camel Case
    tokens = re.split(r"[^a-z0-9]+", spaced.lower())
    return any(token in _ID_TOKENS for token in tokens)


def _guess_numbers(name: str, values: pl.Series, n_rows: int) -> _Guess:
    distinct = values.n_unique()
    if distinct == 1:
        return _Guess("skip", f"a single value ({values[0]}) carries no information")
    if values.dtype.is_integer() and _is_id_name(name):
        if distinct == len(values) == n_rows:
            return _Guess("skip", "integer identifier (named like an id, unique per row)")
        if _low_cardinality(distinct, n_rows):
            return _Guess("categorical", f"integer codes named like an id, {distinct} distinct values")
        return _Guess("skip", f"integer identifier (named like an id, {distinct} distinct values)")
    if values.dtype.is_float() and not values.is_finite().all():
        return _Guess("numeric", "numbers (infinite values will be marked absent)")
    return _Guess("numeric", f"numbers, {distinct} distinct values")


def _low_cardinality(distinct: int, n_rows: int) -> bool:
    return distinct <= CATEGORY_MAX_LEVELS or distinct <= CATEGORY_MAX_SHARE * n_rows


def _guess_strings(name: str, values: pl.Series, n_rows: int, root: Path) -> _Guess:
    values = values.filter(values.str.strip_chars().str.len_chars() > 0)
    if len(values) == 0:
        return _Guess("skip", "every value is empty")
    media = _guess_media(values, root)
    if media is not None:
        return media
    distinct = values.n_unique()
    numbers = values.str.strip_chars().cast(pl.Float64, strict=False)
    unparsed = numbers.null_count()
    if 0 < unparsed <= (1 - MEDIA_SHARE) * len(values) and not _low_cardinality(distinct, n_rows):
        # Numbers with a few placeholder cells ('n/a', '?'): the column was read as text.
        bad = values.filter(numbers.is_null()).unique().sort().head(3).to_list()
        return _Guess(
            "skip",
            f"mostly numbers, but {unparsed} cells are not (e.g. {', '.join(map(repr, bad))}); "
            "leave missing cells empty so the column reads as numbers, "
            "then add it to the tabular field's `numeric:`",
        )
    lowered = set(values.str.strip_chars().str.to_lowercase().unique().to_list())
    if lowered <= set(SPLIT_NAMES) and {"train"} <= {SPLIT_NAMES[v] for v in lowered} and len(lowered) >= 2:
        return _Guess("split", f"values {', '.join(sorted(lowered))} name the train/val/test split")
    chars = _number(values.str.len_chars().median())
    words = _number(values.str.split(" ").list.len().median())
    long = chars >= TEXT_MIN_CHARS or words >= TEXT_MIN_WORDS
    if long and distinct > TEXT_MIN_DISTINCT_SHARE * len(values):
        return _Guess(
            "text", f"free text (median {chars:.0f} characters, {words:.0f} words, {distinct} distinct)"
        )
    if distinct == len(values) == n_rows and not long:
        return _Guess("skip", f"identifier-like (short strings, unique per row: {distinct} distinct)")
    if _low_cardinality(distinct, n_rows):
        return _Guess("categorical", f"{distinct} distinct values")
    return _Guess(
        "text",
        f"{distinct} distinct short strings, too many for categories; change the kind if they are codes",
    )


def _number(value: object) -> float:
    """A polars aggregate (median, mean) as a float; 0.0 when it is empty."""
    return float(value) if isinstance(value, (int, float)) else 0.0


def _guess_media(values: pl.Series, root: Path) -> _Guess | None:
    lowered = values.str.strip_chars().str.to_lowercase()
    for kind, extensions in (
        ("image", IMAGE_EXTENSIONS),
        ("audio", AUDIO_EXTENSIONS),
        ("timeseries", SERIES_EXTENSIONS),
    ):
        hits = lowered.str.ends_with(extensions[0])
        for ext in extensions[1:]:
            hits = hits | lowered.str.ends_with(ext)
        share = _number(hits.mean())
        if share >= MEDIA_SHARE:
            paths = values.filter(hits)
            found, checked = _count_existing(paths, root)
            seen = sorted({Path(v.strip()).suffix.lower() for v in paths.head(MAX_FILES_CHECKED).to_list()})
            return _Guess(
                kind,
                f"{share:.0%} of {len(values)} values are {kind} file paths ({', '.join(seen)}; "
                f"{found} of {checked} checked exist under {root})",
            )
    return None


def _count_existing(paths: pl.Series, root: Path) -> tuple[int, int]:
    sample = paths.head(MAX_FILES_CHECKED).to_list()
    found = 0
    for value in sample:
        path = Path(value.strip())
        found += int((path if path.is_absolute() else root / path).is_file())
    return found, len(sample)


def _guess_sequence(name: str, values: pl.Series) -> _Guess:
    dtype = values.dtype
    inner = dtype.inner if isinstance(dtype, (pl.List, pl.Array)) else None
    if isinstance(inner, (pl.List, pl.Array)):
        return _Guess("timeseries", "a list of lists per row (steps × channels)")
    if inner is None or not inner.is_numeric():
        return _Guess("skip", f"lists of {inner}; only lists of numbers are supported")
    lengths = values.cast(pl.List(inner)).list.len().to_numpy()
    fixed = bool((lengths == lengths[0]).all())
    length = int(lengths[0])
    if fixed and length >= EMBEDDING_MIN_DIM and inner.is_float() and _EMBEDDING_NAME.search(name):
        return _Guess("embedding", f"fixed-length vectors of {length} floats named like an embedding")
    shape = f"length {length}" if fixed else f"lengths {int(lengths.min())}–{int(lengths.max())}"
    return _Guess("timeseries", f"a list of numbers per row ({shape})")


@dataclass(frozen=True)
class InitResult:
    """What `init_config` wrote: the config file, its fields, one note per column, the task type."""

    config_path: Path
    fields: dict[str, dict[str, Any]]
    notes: tuple[str, ...]
    task_type: str


_TRAIN_KEYS = ("epochs", "batch_size", "lr", "seed")
_HEADER = """\
# plait config generated by `plait init {table} --label {label}`.
# The fields below are guesses: check each one. Edit freely — change a field's `kind`
# (text, image, audio, timeseries, tabular, embedding), point it at another table column with
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
    notes = list(inferred.notes)
    why = "strings, booleans or few integers" if task_type == "classification" else "many distinct numbers"
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
    return InitResult(config_path=out_path, fields=inferred.fields, notes=tuple(notes), task_type=task_type)


def _config_dict(
    table_path: Path, out_path: Path, label: str, task_type: str, inferred: InferredFields, fusion: str
) -> dict[str, Any]:
    try:
        data_path = Path(os.path.relpath(table_path.resolve(), out_path.parent.resolve())).as_posix()
    except ValueError:  # another drive on Windows: no relative path exists
        data_path = table_path.resolve().as_posix()
    data: dict[str, Any] = {"path": data_path}
    if inferred.split_column is not None:
        data["split_column"] = inferred.split_column
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
    header = _HEADER.format(table=table_path.as_posix(), label=label, config=out_path.name)
    lines = [header + "".join("#   " + " ".join(note.splitlines()) + "\n" for note in notes)]
    for section, value in raw.items():
        body = yaml.safe_dump({section: value}, sort_keys=False, allow_unicode=True, default_flow_style=False)
        lines.append("\n" + body)
    return "".join(lines)
