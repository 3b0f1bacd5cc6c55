"""Checks for field options (the YAML `fields.<name>.<key>` values) and a short error text.

Every modality validates its constructor options with these, so a bad option gives the same
message whichever field kind it belongs to.
"""

from __future__ import annotations

from plait.errors import ConfigError
from plait.registry import suggest


def short_error(exc: Exception) -> str:
    """`TypeName: message`, cut to 200 characters: short enough for an Absent reason or a log line."""
    return f"{type(exc).__name__}: {exc}"[:200]


def positive_int(field: str, key: str, value: object, minimum: int = 1, maximum: int | None = None) -> int:
    """`value` when it is an integer in [minimum, maximum] (bool excluded); else ConfigError naming
    the option. The maximum keeps a typo (size: 100000) from training for minutes and then failing
    to allocate terabytes."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"fields.{field}.{key}: expected an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(
            f"fields.{field}.{key}: expected an integer <= {maximum} (what plait can hold per row in memory "
            f"and train on a CPU), got {value}; lower it"
        )
    return value


def optional_column(field: str, key: str, value: object) -> str | None:
    """`value` when it is a column name or None; else ConfigError naming the option."""
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"fields.{field}.{key}: expected a column name, got {value!r}")
    return value


def flag(field: str, key: str, value: object) -> bool:
    """`value` when it is a bool; else ConfigError naming the option."""
    if not isinstance(value, bool):
        raise ConfigError(f"fields.{field}.{key}: expected true or false, got {value!r}")
    return value


def choice(field: str, key: str, value: object, choices: tuple[str, ...]) -> str:
    """`value` when it is one of `choices`; else ConfigError naming the option, with a close match."""
    if isinstance(value, str) and value in choices:
        return value
    hint = suggest(value, list(choices)) if isinstance(value, str) else ""
    raise ConfigError(
        f"fields.{field}.{key}: expected one of {', '.join(choices)}, got {value!r};{hint}".rstrip(";")
    )
