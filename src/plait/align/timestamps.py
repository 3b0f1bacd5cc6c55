"""A time column → Int64 microseconds since the Unix epoch, UTC (`t_us`).

Accepted: polars Datetime/Date columns, ISO-8601 strings (with `Z`, an offset, or naive), epoch
seconds/milliseconds/microseconds as numbers (or digit strings), and strftime patterns. Nothing is
guessed silently: a detected epoch unit is named in `format_used` and a note; naive times need a
configured zone; a column mixing zones is an error unless a zone is configured; a value that cannot be
read becomes null and its row is listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import polars as pl

from plait.errors import ConfigError

EPOCH_FACTORS = {"epoch_s": 1_000_000, "epoch_ms": 1_000, "epoch_us": 1}
# Magnitudes that fit one unit only for dates between about 1973 and 2286.
_EPOCH_BANDS = (("epoch_s", 1e8, 1e10), ("epoch_ms", 1e11, 1e13), ("epoch_us", 1e14, 1e16))
_UNIT_WORDS = {"epoch_s": "seconds", "epoch_ms": "milliseconds", "epoch_us": "microseconds"}
_ISO = (
    r"^\s*(\d{4})-?(\d{2})-?(\d{2})"  # date, extended or basic
    r"(?:[T ](\d{2}):?(\d{2})(?::?(\d{2})(?:[.,](\d+))?)?)?"  # time, optional seconds and fraction
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?\s*$"  # Z or a UTC offset, or nothing (naive)
)
_OFFSET = r"^([+-])(\d{2}):?(\d{2})?$"
_NUMBER = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"
_INTEGER = r"^\s*[+-]?\d+\s*$"
_US = {"h": 3_600_000_000, "m": 60_000_000, "s": 1_000_000, "day": 86_400_000_000}


@dataclass(frozen=True)
class ParsedTimes:
    t_us: pl.Series  # Int64 µs UTC, null where the value could not be read
    format_used: str  # "iso", "epoch_ms", "datetime", a strftime pattern, or "detected:<fmt>"
    unreadable_rows: tuple[int, ...]  # rows (0-based) whose time is null
    notes: tuple[str, ...] = ()


def parse_times(series: pl.Series, *, time_format: str, timezone: str | None, where: str) -> ParsedTimes:
    """Read `series` as times.

    `where` names the source in messages, e.g. "stream 'imu' (imu.csv, column 'time')".
    """
    _check_zone(timezone, where)
    dtype = series.dtype
    if isinstance(dtype, pl.Datetime) or dtype == pl.Date:
        t, fmt, notes = _from_datetimes(series, timezone, where)
    elif dtype == pl.Null:
        t, fmt, notes = pl.Series(series.name, [None] * len(series), dtype=pl.Int64), time_format, ()
    elif dtype.is_numeric():
        t, fmt, notes = _from_numbers(series, time_format, timezone, where)
    elif dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum)):
        t, fmt, notes = _from_strings(series.cast(pl.String), time_format, timezone, where)
    else:
        raise ConfigError(
            f"{where}: cannot read times from a column of type {dtype}; expected datetimes, ISO-8601 "
            "strings or epoch numbers"
        )
    t = t.cast(pl.Int64).rename(series.name)
    unreadable = tuple(int(i) for i in t.is_null().arg_true())
    return ParsedTimes(t_us=t, format_used=fmt, unreadable_rows=unreadable, notes=notes)


def _check_zone(timezone: str | None, where: str) -> None:
    if timezone is None:
        return
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{where}: unknown time zone '{timezone}'; use an IANA name such as UTC or Europe/Berlin"
        ) from None


def _from_datetimes(
    series: pl.Series, timezone: str | None, where: str
) -> tuple[pl.Series, str, tuple[str, ...]]:
    fmt = "date" if series.dtype == pl.Date else "datetime"
    values = series.cast(pl.Datetime("us")) if series.dtype == pl.Date else series
    zone = getattr(values.dtype, "time_zone", None)
    if zone is not None:
        return values.dt.convert_time_zone("UTC").dt.epoch("us"), fmt, ()
    wall = values.dt.epoch("us")
    zone = _require_zone(series, wall.is_not_null(), timezone, where)
    if zone is None:  # nothing readable: no zone needed
        return wall, fmt, ()
    t, notes = _localize(wall, zone)
    return t, fmt, notes


def _from_numbers(
    series: pl.Series, time_format: str, timezone: str | None, where: str
) -> tuple[pl.Series, str, tuple[str, ...]]:
    if time_format in EPOCH_FACTORS:
        return _epoch(series, EPOCH_FACTORS[time_format]), time_format, ()
    if "%" in time_format:
        if series.dtype.is_float():
            raise ConfigError(
                f"{where}: time_format '{time_format}' parses text, but the column holds decimal numbers; "
                "use epoch_s, epoch_ms or epoch_us"
            )
        return _from_strings(series.cast(pl.String), time_format, timezone, where)
    if time_format == "iso":
        raise ConfigError(
            f"{where}: time_format is iso but the column holds numbers "
            f"(e.g. {series.drop_nulls().head(1).to_list()}); "
            "set time_format to epoch_s, epoch_ms or epoch_us"
        )
    return _detect_epoch(series, where)


def _detect_epoch(series: pl.Series, where: str) -> tuple[pl.Series, str, tuple[str, ...]]:
    magnitude = series.cast(pl.Float64).abs()
    magnitude = magnitude.filter(magnitude.is_finite())
    if magnitude.len() == 0:
        return _epoch(series, 1), "auto", ()
    values = magnitude.to_numpy()
    lo, hi, median = float(values.min()), float(values.max()), float(np.median(values))
    for unit, low, high in _EPOCH_BANDS:
        if low <= lo and hi < high:
            mantissa, exponent = f"{median:.1e}".split("e")
            magnitude_text = f"{mantissa}e{int(exponent)}"  # 1.7e12, not 1.7e+12
            note = (
                f"times read as epoch {_UNIT_WORDS[unit]} (detected from magnitude: {magnitude_text}); "
                "set time_format to be explicit"
            )
            return _epoch(series, EPOCH_FACTORS[unit]), f"detected:{unit}", (note,)
    raise ConfigError(
        f"{where}: cannot tell whether these numbers are epoch seconds, milliseconds or microseconds "
        f"(they run from {lo:.3g} to {hi:.3g}); set time_format: epoch_s, epoch_ms or epoch_us"
    )


def _epoch(series: pl.Series, factor: int) -> pl.Series:
    if series.dtype.is_integer():
        return series.cast(pl.Int64) * factor
    values = series.cast(pl.Float64)
    scaled = pl.select(pl.when(pl.lit(values).is_finite()).then(pl.lit(values) * factor).round(0)).to_series()
    return scaled.cast(pl.Int64, strict=False)  # beyond Int64: null, i.e. unreadable


def _from_strings(
    series: pl.Series, time_format: str, timezone: str | None, where: str
) -> tuple[pl.Series, str, tuple[str, ...]]:
    if "%" in time_format:
        return _from_pattern(series, time_format, timezone, where)
    if time_format in EPOCH_FACTORS:
        return _epoch(_numbers(series), EPOCH_FACTORS[time_format]), time_format, ()
    present = series.drop_nulls()
    if time_format == "auto" and present.len() > 0 and bool(present.str.contains(_NUMBER).all()):
        return _detect_epoch(_numbers(series), where)  # digit strings (JSON, CSV read as text)
    return _from_iso(series, timezone, where)


def _numbers(series: pl.Series) -> pl.Series:
    """Digit strings → Int64 when every one is an integer (exact beyond 2**53), else Float64."""
    text = series.str.strip_chars()
    integers = bool(text.drop_nulls().str.contains(_INTEGER).all())
    return text.cast(pl.Int64 if integers else pl.Float64, strict=False)


def _from_pattern(
    series: pl.Series, pattern: str, timezone: str | None, where: str
) -> tuple[pl.Series, str, tuple[str, ...]]:
    try:
        parsed = series.str.to_datetime(pattern, strict=False, time_unit="us")
    except Exception as exc:  # polars rejects a malformed pattern as a whole
        raise ConfigError(
            f"{where}: time_format '{pattern}' is not a valid strftime pattern ({exc})"
        ) from None
    t, _, notes = _from_datetimes(parsed, timezone, where)
    return t, pattern, notes


def _from_iso(series: pl.Series, timezone: str | None, where: str) -> tuple[pl.Series, str, tuple[str, ...]]:
    parts = _iso_parts(series)
    aware, naive = parts["aware"], parts["naive"]
    utc = parts.select(pl.when("aware").then(pl.col("wall") - pl.col("offset"))).to_series()
    if timezone is None:
        _check_unzoned(series, aware, naive, parts["offset"], where)
        return utc, "iso", ()
    local, notes = _localize(parts.select(pl.when("naive").then("wall")).to_series(), timezone)
    t = pl.DataFrame({"aware": aware, "utc": utc, "local": local}).select(
        pl.when("aware").then("utc").otherwise("local")
    )
    n_aware, n_naive = int(aware.sum()), int(naive.sum())
    if n_aware > 0 and n_naive > 0:
        notes = (
            f"{n_naive} naive times read in zone {timezone}; {n_aware} times with a UTC offset converted",
            *notes,
        )
    return t.to_series(), "iso", notes


def _iso_parts(series: pl.Series) -> pl.DataFrame:
    """ISO strings → wall-clock µs (`wall`), UTC offset µs (`offset`, 0 for Z), and whether each
    readable value carries an offset (`aware`) or not (`naive`)."""
    parts = series.str.extract_groups(_ISO).struct.unnest()
    parts.columns = ["y", "mo", "d", "h", "mi", "s", "frac", "off"]
    number = {c: pl.col(c).cast(pl.Int64).fill_null(0) for c in ("h", "mi", "s")}
    parts = parts.with_columns(
        day=(pl.col("y") + pl.col("mo") + pl.col("d")).str.to_date("%Y%m%d", strict=False),
        frac=pl.col("frac").str.slice(0, 6).str.pad_end(6, "0").cast(pl.Int64).fill_null(0),  # µs
        sign=pl.col("off").str.extract(_OFFSET, 1),
        oh=pl.col("off").str.extract(_OFFSET, 2).cast(pl.Int64).fill_null(0),
        om=pl.col("off").str.extract(_OFFSET, 3).cast(pl.Int64).fill_null(0),
        **number,
    )
    valid = pl.col("day").is_not_null() & (pl.col("h") < 24) & (pl.col("mi") < 60) & (pl.col("s") < 60)
    wall = (
        pl.col("day").cast(pl.Int64) * _US["day"]
        + pl.col("h") * _US["h"]
        + pl.col("mi") * _US["m"]
        + pl.col("s") * _US["s"]
        + pl.col("frac")
    )
    sign = pl.when(pl.col("sign") == "-").then(-1).otherwise(1)
    return parts.select(
        wall=pl.when(valid).then(wall),
        offset=sign * (pl.col("oh") * _US["h"] + pl.col("om") * _US["m"]),
        aware=valid & pl.col("off").is_not_null(),
        naive=valid & pl.col("off").is_null(),
    )


def _check_unzoned(
    series: pl.Series, aware: pl.Series, naive: pl.Series, offset: pl.Series, where: str
) -> None:
    fix = "set `timezone:` on this stream (naive times are read in it, the others converted)"
    if bool(aware.any()) and bool(naive.any()):
        a, n = series.filter(aware)[0], series.filter(naive)[0]
        raise ConfigError(
            f"{where}: mixed time zones: some times carry a UTC offset (e.g. '{a}'), "
            f"some do not (e.g. '{n}'); " + fix
        )
    _require_zone(series, naive, None, where)
    offsets = offset.filter(aware)
    if offsets.n_unique() > 1:
        first = series.filter(aware)[0]
        other = series.filter(aware & (offset != offsets[0]))[0]
        raise ConfigError(
            f"{where}: mixed UTC offsets in one column (e.g. '{first}' and '{other}'), as when a logger "
            "follows daylight saving; " + fix
        )


def _require_zone(series: pl.Series, naive: pl.Series, timezone: str | None, where: str) -> str | None:
    """The zone to read naive times in; an error when some are naive and none is configured."""
    if timezone is not None or not bool(naive.any()):
        return timezone
    example = series.filter(naive)[0]
    raise ConfigError(
        f"{where}: times have no time zone (e.g. '{example}'); set `timezone: UTC` on the stream "
        "(or the zone of the logger, e.g. Europe/Berlin), or `timezone:` for all streams"
    )


def _localize(wall_us: pl.Series, timezone: str) -> tuple[pl.Series, tuple[str, ...]]:
    """Wall-clock µs in `timezone` → UTC µs. Local times that do not exist or occur twice (daylight
    saving changes) become null: placing them would be a guess."""
    local = pl.from_epoch(wall_us, time_unit="us").dt.replace_time_zone(
        timezone, ambiguous="null", non_existent="null"
    )
    t = local.dt.convert_time_zone("UTC").dt.epoch("us")
    lost = int((wall_us.is_not_null() & t.is_null()).sum())
    notes: tuple[str, ...] = ()
    if lost > 0:
        notes = (
            f"{lost} local times fall in a daylight-saving change of {timezone} (skipped or repeated hour) "
            "and were left unread; log in UTC or with offsets to keep them",
        )
    return t, notes
