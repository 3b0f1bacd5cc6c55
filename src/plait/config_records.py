"""Reading one section of the config into its frozen record: unknown keys refused with a
did-you-mean, each value coerced to the type of the record's default, errors naming the key path."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

from plait.errors import ConfigError
from plait.registry import suggest


def no_unknown_keys(raw: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
    for key in raw:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            hint = suggest(str(key), list(allowed))
            raise ConfigError(f"{where}: unknown key;{hint} Allowed here: {', '.join(allowed)}")


def record(cls: Any, raw: Any, path: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: expected a mapping, got {type(raw).__name__} {raw!r}")
    allowed = tuple(f.name for f in fields(cls))
    no_unknown_keys(raw, allowed, path)
    defaults = cls()
    values: dict[str, Any] = {}
    for key, value in raw.items():
        expected = type(getattr(defaults, key))
        values[key] = coerce(value, expected, getattr(defaults, key), f"{path}.{key}")
    return replace(defaults, **values)


def coerce(value: Any, expected: type, default: Any, path: str) -> Any:
    if default is None:  # optional string keys
        if value is None or isinstance(value, str):
            return value
        raise ConfigError(f"{path}: expected a string or null, got {value!r}")
    if expected is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected true or false, got {value!r}")
    if expected is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected an integer, got {value!r}")
    if expected is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads 3e-3 as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{path}: expected a number, got {value!r}")
    if expected is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{path}: expected a string, got {value!r}")
    if isinstance(default, Mapping):
        if isinstance(value, Mapping):
            return dict(value)
        raise ConfigError(f"{path}: expected a mapping, got {value!r}")
    return value
