"""The error tree. Every error a user can cause is a `PlaitError` whose message says
where (file, row, field or key path), what was expected, what came, and how to fix it."""

from __future__ import annotations


class PlaitError(Exception):
    """Base class of every error plait raises on purpose."""


class ConfigError(PlaitError, ValueError):
    """The config (YAML or keyword arguments) is invalid; the message names the key path."""


class DataError(PlaitError, ValueError):
    """The data table or a referenced file is unusable as a whole (not one bad value:
    a bad value becomes an absent field and is counted)."""


class UnknownNameError(PlaitError, KeyError):
    """A name looked up in a registry does not exist; the message offers close matches."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


class ModelNotFoundError(PlaitError, FileNotFoundError):
    """A pretrained model or a bundle was not found; the message names the path tried."""


class BundleError(PlaitError, ValueError):
    """A bundle directory is incomplete, of an unknown format version, or inconsistent."""


class AlignmentError(PlaitError, ValueError):
    """Streams cannot be aligned as configured."""
