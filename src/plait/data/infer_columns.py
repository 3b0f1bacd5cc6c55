"""One column's kind, guessed from its values alone, for `plait init` (see infer.py).

Whether a column identifies rows or groups needs the whole table: infer_ids.py decides that for the
columns marked `keyish` here (integers and short strings).

Times are never features: a model fed one learns when a row was recorded, and a random split puts
each row's neighbours in time on the other side. Besides datetimes and date strings, numbers are
a time when named like one (time, timestamp, ts, datetime, date, epoch, `*_at`, `t_s`) — unless
the name also says span or calendar part (duration, since, to, reaction, of, hour, …: a measurement
or a derived feature) — or when they rise evenly over the rows as epoch seconds or milliseconds do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from plait.data.infer_media import guess_media
from plait.data.split import SPLIT_NAMES

TEXT_MIN_CHARS = 20  # median length of free text…
TEXT_MIN_WORDS = 4  # …or median word count
TEXT_MIN_DISTINCT_SHARE = 0.5  # text repeats rarely: distinct / non-null values
CATEGORY_MAX_LEVELS = 50
CATEGORY_MAX_SHARE = 0.2
EMBEDDING_MIN_DIM = 32
NUMBER_SHARE = 0.8  # share of cells that parse as numbers in a text column of numbers with placeholders
DATE_SHARE = 0.9  # share of sampled strings that parse as dates or times in a time column
DATE_SAMPLE = 200
_ID_TOKENS = {"id", "ids", "uuid", "guid", "idx", "key", "index", "serial"}
_TIME_TOKENS = frozenset({"time", "timestamp", "ts", "datetime", "date", "epoch"})
# t_s, t_ms: a time; a bare t may be a temperature
_TIME_UNITS = frozenset({"s", "sec", "secs", "ms", "us", "ns"})
# Beside a time word, a span or a calendar part: a measurement (reaction_time, time_to_failure,
# time_since_service, cycle_time_s) or the derived feature a time becomes (time_of_day, date_month).
_NOT_TIME_TOKENS = frozenset(
    {
        *("duration", "elapsed", "since", "until", "to", "left", "remaining", "delta", "dt", "diff"),
        *("lag", "interval", "period", "span", "reaction", "response", "wait", "travel", "cycle", "lead"),
        *("run", "up", "down", "idle", "lap", "spent", "total", "mean", "avg", "median", "max", "min"),
        *("std", "per", "of", "hour", "minute", "day", "weekday", "week", "month", "year", "dow"),
    }
)
EPOCH_RANGE_S = (1e8, 4.2e9)  # 1973 … 2103: the epoch seconds of recorded data
EPOCH_UNITS = (("seconds", 1.0), ("milliseconds", 1e3), ("microseconds", 1e6), ("nanoseconds", 1e9))
TIME_MIN_VALUES = 5  # fewer values cannot show that they rise evenly
EVEN_STEP_RATIO = 10.0  # evenly spaced: the 90th-percentile step is at most this many median steps
_EMBEDDING_NAME = re.compile(r"emb|vec", re.IGNORECASE)


@dataclass(frozen=True)
class Guess:
    """kind: a field kind, "numeric"/"categorical" (→ the tabular field), "split" or "skip".
    keyish: integers or short strings, which may identify rows or groups (infer_ids decides).
    media: file paths the modality resolves under data.root. time: time stamps. options: field
    options read from the data (an image's size, an audio file's sample rate)."""

    kind: str
    why: str
    keyish: bool = False
    media: bool = False
    time: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)


def name_tokens(name: str) -> list[str]:
    """Lower-case words of a column name: 'machineId' → machine, id; 'Pump ID' → pump, id."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)  # camelCase → camel Case
    return [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]


def is_id_name(name: str) -> bool:
    return any(token in _ID_TOKENS for token in name_tokens(name))


def is_time_name(name: str) -> bool:
    """'time_s', 'recorded_at', 'timestamp', 't_ms', 'start_time' — not 'duration_s',
    'reaction_time' or 'time_of_day'."""
    tokens = name_tokens(name)
    if not tokens or set(tokens) & _NOT_TIME_TOKENS:
        return False
    at = len(tokens) >= 2 and tokens[-1] == "at"  # recorded_at, createdAt
    t_unit = len(tokens) == 2 and tokens[0] == "t" and tokens[1] in _TIME_UNITS  # t_s, t_ms
    return bool(set(tokens) & _TIME_TOKENS) or at or t_unit


def guess_column(series: pl.Series, root: Path) -> Guess:
    """The kind of one column; `root` is where relative media paths are looked up."""
    values = series.drop_nulls()
    if series.dtype.is_float():
        values = values.filter(values.is_not_nan())
    if len(values) == 0:
        return Guess("skip", "every value is empty")
    dtype = series.dtype
    if isinstance(dtype, (pl.List, pl.Array)):
        return _guess_sequence(series.name, values)
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        return _guess_strings(series.name, values.cast(pl.String), series.len(), root)
    if dtype == pl.Boolean:
        return Guess("categorical", "true/false values")
    if dtype.is_numeric():
        return _guess_numbers(series.name, values, series.len())
    if dtype.is_temporal():
        return Guess("skip", f"{dtype} values, a time stamp: {_time_advice(series.name)}", time=True)
    return Guess("skip", f"dtype {dtype} is not supported by any field kind")


def _time_advice(column: str) -> str:
    return (
        "never a feature (derive hour or weekday columns to use it); set "
        f"`data.split: {{time: {column}}}` to test on later rows"
    )


def _guess_numbers(name: str, values: pl.Series, n_rows: int) -> Guess:
    distinct = values.n_unique()
    if distinct == 1:
        return Guess("skip", f"a single value ({values[0]}) carries no information")
    time = _numeric_time(name, values)
    if time is not None:
        return time
    integer = values.dtype.is_integer()
    if integer and is_id_name(name) and not _low_cardinality(distinct, n_rows):
        return Guess(
            "skip", f"integer identifier (named like an id, {distinct} distinct values)", keyish=True
        )
    if integer and is_id_name(name):
        return Guess(
            "categorical", f"integer codes named like an id, {distinct} distinct values", keyish=True
        )
    if values.dtype.is_float() and not values.is_finite().all():
        return Guess("numeric", "numbers (infinite values will be marked absent)")
    return Guess("numeric", f"numbers, {distinct} distinct values", keyish=integer)


def _numeric_time(name: str, values: pl.Series) -> Guess | None:
    """Numbers that are a time stamp: named like a time, or epoch-like and rising evenly over the rows."""
    unit = _epoch_unit(values)
    named = is_time_name(name)
    if not named and (unit is None or not _rising_evenly(values)):
        return None
    what = "named like a time" if named else "rising evenly over the rows"
    aside = ""
    if unit is not None:
        per_s = dict(EPOCH_UNITS)[unit]
        first, last = (_date(number(v) / per_s) for v in (values.min(), values.max()))
        what += f", epoch {unit} ({first} … {last} UTC)"
        if unit != "seconds":
            aside = f" (the split reads numbers as seconds: give gap_s in {unit})"
    return Guess(
        "skip",
        f"numbers {what}, a time stamp: {_time_advice(name)}{aside}; if it is a measurement "
        "(a duration, an age), add it to the tabular field's `numeric:`",
        time=True,
    )


def _epoch_unit(values: pl.Series) -> str | None:
    """The unit in which every value is a date between 1973 and 2103, if any."""
    low, high = number(values.min()), number(values.max())
    for unit, per_s in EPOCH_UNITS:
        if EPOCH_RANGE_S[0] * per_s <= low and high <= EPOCH_RANGE_S[1] * per_s:
            return unit
    return None


def _rising_evenly(values: pl.Series) -> bool:
    """Non-decreasing over the rows, with steps of one size give or take (a sensor's clock)."""
    if len(values) < TIME_MIN_VALUES:
        return False
    steps = np.diff(values.cast(pl.Float64).to_numpy())
    if bool((steps < 0).any()):
        return False
    rising = steps[steps > 0]
    return len(rising) >= 2 and float(np.quantile(rising, 0.9)) <= EVEN_STEP_RATIO * float(np.median(rising))


def _date(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _low_cardinality(distinct: int, n_rows: int) -> bool:
    return distinct <= CATEGORY_MAX_LEVELS or distinct <= CATEGORY_MAX_SHARE * n_rows


def _guess_strings(name: str, values: pl.Series, n_rows: int, root: Path) -> Guess:
    values = values.filter(values.str.strip_chars().str.len_chars() > 0)
    if len(values) == 0:
        return Guess("skip", "every value is empty")
    media = guess_media(values, root)
    if media is not None:
        return Guess(media.kind, media.why, media=True, options=media.options)
    distinct = values.n_unique()
    numbers = values.str.strip_chars().cast(pl.Float64, strict=False)
    unparsed = numbers.null_count()
    if 0 < unparsed <= (1 - NUMBER_SHARE) * len(values) and not _low_cardinality(distinct, n_rows):
        # Numbers with a few placeholder cells ('n/a', '?'): the column was read as text.
        bad = values.filter(numbers.is_null()).unique().sort().head(3).to_list()
        return Guess(
            "skip",
            f"mostly numbers, but {unparsed} cells are not (e.g. {', '.join(map(repr, bad))}); "
            "leave missing cells empty so the column reads as numbers, "
            "then add it to the tabular field's `numeric:`",
        )
    lowered = set(values.str.strip_chars().str.to_lowercase().unique().to_list())
    if lowered <= set(SPLIT_NAMES) and {"train"} <= {SPLIT_NAMES[v] for v in lowered} and len(lowered) >= 2:
        return Guess("split", f"values {', '.join(sorted(lowered))} name the train/val/test split")
    if unparsed == len(values) and _dates(values):
        return Guess(
            "skip",
            f"dates or times as text (e.g. {values[0]!r}), a time stamp: {_time_advice(name)}",
            time=True,
        )
    chars = number(values.str.len_chars().median())
    words = number(values.str.split(" ").list.len().median())
    long = chars >= TEXT_MIN_CHARS or words >= TEXT_MIN_WORDS
    if long and distinct > TEXT_MIN_DISTINCT_SHARE * len(values):
        return Guess(
            "text", f"free text (median {chars:.0f} characters, {words:.0f} words, {distinct} distinct)"
        )
    if _low_cardinality(distinct, n_rows):
        return Guess("categorical", f"{distinct} distinct values", keyish=not long)
    return Guess(
        "text",
        f"{distinct} distinct short strings, too many for categories; change the kind if they are codes",
        keyish=not long,
    )


def _dates(values: pl.Series) -> bool:
    """Whether nearly every value (of an evenly spaced sample) parses as a date or a date-time."""
    step = max(1, len(values) // DATE_SAMPLE)
    sample = values.gather_every(step).head(DATE_SAMPLE).str.strip_chars()
    try:
        parsed = sample.str.to_datetime(strict=False, time_unit="us")
    except pl.exceptions.PolarsError:  # no date format fits the first value
        return False
    return parsed.null_count() <= (1 - DATE_SHARE) * len(sample)


def number(value: object) -> float:
    """A polars aggregate (median, mean) as a float; 0.0 when it is empty."""
    return float(value) if isinstance(value, (int, float)) else 0.0


def _guess_sequence(name: str, values: pl.Series) -> Guess:
    dtype = values.dtype
    inner = dtype.inner if isinstance(dtype, (pl.List, pl.Array)) else None
    if isinstance(inner, (pl.List, pl.Array)):
        return Guess("timeseries", "a list of lists per row (steps × channels)")
    if inner is None or not inner.is_numeric():
        return Guess("skip", f"lists of {inner}; only lists of numbers are supported")
    lengths = values.cast(pl.List(inner)).list.len().to_numpy()
    fixed = bool((lengths == lengths[0]).all())
    length = int(lengths[0])
    if fixed and length >= EMBEDDING_MIN_DIM and inner.is_float() and _EMBEDDING_NAME.search(name):
        return Guess("embedding", f"fixed-length vectors of {length} floats named like an embedding")
    shape = f"length {length}" if fixed else f"lengths {int(lengths.min())}–{int(lengths.max())}"
    return Guess("timeseries", f"a list of numbers per row ({shape})")
