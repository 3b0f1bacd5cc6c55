from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo

import polars as pl
import pytest

from plait.align.timestamps import ParsedTimes, parse_times
from plait.errors import ConfigError


def us(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, tz: tzinfo = UTC
) -> int:
    """µs since the epoch of a wall-clock time in `tz`."""
    moment = datetime(year, month, day, hour, minute, second, tzinfo=tz)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def parse(
    values: Sequence[object],
    time_format: str = "auto",
    tz: str | None = None,
    dtype: pl.DataType | None = None,
) -> ParsedTimes:
    series = pl.Series("time", values, dtype=dtype)
    return parse_times(
        series, time_format=time_format, timezone=tz, where="stream 'imu' (imu.csv, column 'time')"
    )


def test_iso_with_z_offsets_fractions_and_unreadable_values() -> None:
    out = parse(
        [
            "2024-03-01T10:00:00Z",
            "2024-03-01 10:00:00.25z",
            "2024-03-01T10:00:00.123456789+00:00",
            "yesterday",
            None,
            "2024-02-30T10:00:00Z",  # no such day
            "2024-03-01T25:00:00Z",  # no such hour
        ]
    )
    assert out.format_used == "iso"
    base = us(2024, 3, 1, 10)
    assert out.t_us.to_list() == [base, base + 250_000, base + 123_456, None, None, None, None]
    assert out.t_us.dtype == pl.Int64
    assert out.unreadable_rows == (3, 4, 5, 6)


def test_iso_with_one_offset_everywhere_is_converted_without_a_zone() -> None:
    out = parse(["2024-03-01T11:00:00+01:00", "2024-03-01T12:30:00+0100", "2024-03-01T13:00:00+01"])
    plus_one = timezone(timedelta(hours=1))
    assert out.t_us.to_list() == [
        us(2024, 3, 1, 11, tz=plus_one),
        us(2024, 3, 1, 12, 30, tz=plus_one),
        us(2024, 3, 1, 13, tz=plus_one),
    ]
    assert out.t_us[0] == us(2024, 3, 1, 10)


def test_naive_iso_is_read_in_the_configured_zone() -> None:
    assert parse(["2024-03-01T10:00:00"], tz="UTC").t_us.to_list() == [us(2024, 3, 1, 10)]
    berlin = parse(["2024-03-01T11:00:00", "2024-07-01T12:00:00"], tz="Europe/Berlin")
    assert berlin.t_us.to_list() == [us(2024, 3, 1, 10), us(2024, 7, 1, 10)]  # CET, then CEST


def test_naive_times_without_a_zone_are_an_error_naming_stream_example_and_fix() -> None:
    with pytest.raises(ConfigError) as err:
        parse(["2024-03-01T10:00:00", "2024-03-01T10:00:01"])
    message = str(err.value)
    assert "stream 'imu'" in message and "2024-03-01T10:00:00" in message and "timezone: UTC" in message


def test_mixed_naive_and_offset_times_are_an_error_unless_a_zone_is_configured() -> None:
    values = ["2024-03-01T10:00:00", "2024-03-01T12:00:00+01:00"]
    with pytest.raises(ConfigError, match="mixed time zones"):
        parse(values)
    out = parse(values, tz="Europe/Berlin")
    assert out.t_us.to_list() == [us(2024, 3, 1, 9), us(2024, 3, 1, 11)]
    assert out.notes == ("1 naive times read in zone Europe/Berlin; 1 times with a UTC offset converted",)


def test_different_offsets_without_a_zone_are_an_error() -> None:
    values = ["2024-03-01T10:00:00Z", "2024-03-01T12:00:00+01:00"]
    with pytest.raises(ConfigError, match="mixed UTC offsets"):
        parse(values)
    assert parse(values, tz="UTC").t_us.to_list() == [us(2024, 3, 1, 10), us(2024, 3, 1, 11)]


def test_epoch_seconds_and_milliseconds_are_detected_and_said_so() -> None:
    seconds = parse([1_709_287_200, 1_709_287_201])
    assert seconds.format_used == "detected:epoch_s"
    assert seconds.t_us.to_list() == [us(2024, 3, 1, 10), us(2024, 3, 1, 10, 0, 1)]
    assert seconds.notes == (
        "times read as epoch seconds (detected from magnitude: 1.7e9); set time_format to be explicit",
    )
    millis = parse([1_709_287_200_000, 1_709_287_200_500])
    assert millis.format_used == "detected:epoch_ms"
    assert millis.t_us.to_list() == [us(2024, 3, 1, 10), us(2024, 3, 1, 10) + 500_000]
    assert millis.notes == (
        "times read as epoch milliseconds (detected from magnitude: 1.7e12); set time_format to be explicit",
    )
    micros = parse([1_709_287_200_000_001])
    assert micros.format_used == "detected:epoch_us" and micros.t_us[0] == us(2024, 3, 1, 10) + 1


def test_float_epochs_and_digit_strings() -> None:
    floats = parse([1_709_287_200.25, float("nan"), None, float("inf")])
    assert floats.format_used == "detected:epoch_s"
    assert floats.t_us.to_list() == [us(2024, 3, 1, 10) + 250_000, None, None, None]
    assert floats.unreadable_rows == (1, 2, 3)
    strings = parse(["1709287200000", " 1709287200001 "])
    assert strings.format_used == "detected:epoch_ms"
    assert strings.t_us.to_list() == [us(2024, 3, 1, 10), us(2024, 3, 1, 10) + 1000]


def test_explicit_epoch_formats_are_used_as_given() -> None:
    assert parse([1_709_287_200], "epoch_s").t_us[0] == us(2024, 3, 1, 10)
    out = parse([1_709_287_200_000], "epoch_ms")
    assert out.format_used == "epoch_ms" and out.notes == () and out.t_us[0] == us(2024, 3, 1, 10)
    assert parse(["1709287200000", "bad"], "epoch_ms").unreadable_rows == (1,)
    assert parse([5], "epoch_s").t_us[0] == 5_000_000  # explicit: no magnitude check


def test_ambiguous_magnitudes_ask_for_a_time_format() -> None:
    with pytest.raises(ConfigError, match="set time_format"):
        parse([5, 1_709_287_200_000])
    with pytest.raises(ConfigError, match="epoch_s, epoch_ms or epoch_us"):
        parse([12.5, 40.0])


def test_iso_format_on_numbers_is_an_error() -> None:
    with pytest.raises(ConfigError, match="holds numbers"):
        parse([1_709_287_200], "iso")


def test_datetime_and_date_columns() -> None:
    aware = parse([datetime(2024, 3, 1, 11, tzinfo=timezone(timedelta(hours=1)))])
    assert aware.format_used == "datetime" and aware.t_us[0] == us(2024, 3, 1, 10)
    naive = pl.Series("time", [datetime(2024, 3, 1, 10)])
    with pytest.raises(ConfigError, match="timezone: UTC"):
        parse_times(naive, time_format="auto", timezone=None, where="w")
    assert parse_times(naive, time_format="auto", timezone="UTC", where="w").t_us[0] == us(2024, 3, 1, 10)
    days = parse([date(2024, 3, 1)], tz="UTC")
    assert days.format_used == "date" and days.t_us[0] == us(2024, 3, 1)


def test_strftime_patterns() -> None:
    out = parse(["20240301T100000", "garbage"], "%Y%m%dT%H%M%S", tz="UTC")
    assert out.format_used == "%Y%m%dT%H%M%S"
    assert out.t_us.to_list() == [us(2024, 3, 1, 10), None] and out.unreadable_rows == (1,)
    with pytest.raises(ConfigError, match="no time zone"):
        parse(["20240301T100000"], "%Y%m%dT%H%M%S")
    assert parse(["20240301T110000+0100"], "%Y%m%dT%H%M%S%z").t_us[0] == us(2024, 3, 1, 10)
    assert parse([20240301100000], "%Y%m%d%H%M%S", tz="UTC").t_us[0] == us(2024, 3, 1, 10)


def test_local_times_that_do_not_exist_are_unread_not_guessed() -> None:
    out = parse(["2024-03-31T01:30:00", "2024-03-31T02:30:00", "2024-10-27T02:30:00"], tz="Europe/Berlin")
    assert out.t_us[0] == us(2024, 3, 31, 0, 30)
    assert out.unreadable_rows == (1, 2)  # skipped hour in spring, repeated hour in autumn
    assert len(out.notes) == 1 and "daylight-saving" in out.notes[0]


def test_unknown_zone_and_unreadable_dtype() -> None:
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        parse(["2024-03-01T10:00:00"], tz="Mars/Olympus")
    with pytest.raises(ConfigError, match="cannot read times"):
        parse([True, False])


def test_all_null_column_is_all_unreadable() -> None:
    out = parse([None, None], dtype=pl.String())
    assert out.t_us.to_list() == [None, None] and out.unreadable_rows == (0, 1)
