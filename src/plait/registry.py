"""Explicit registries: a name → object table with "did you mean" errors."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Generic, TypeVar

from plait.errors import UnknownNameError

T = TypeVar("T")


def suggest(name: str, choices: list[str]) -> str:
    """' did you mean 'x'?' when a close match exists, else ''."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" did you mean '{close[0]}'?" if close else ""


def unknown_name_message(what: str, name: str, choices: list[str]) -> str:
    hint = suggest(name, choices)
    sep = ";" if hint else ""
    return f"unknown {what} '{name}'{sep}{hint} Available: {', '.join(sorted(choices))}"


class Registry(Generic[T]):
    """A named table of one kind of component (fusions, modalities, …).

    >>> FUSIONS.get("concatt")
    UnknownNameError: unknown fusion 'concatt'; did you mean 'concat'? Available: attention, concat, …
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.what} '{name}' is already registered")
        self._items[name] = item
        return item

    def unregister(self, name: str) -> T:
        """Remove and return `name` (a test that registers a plug-in of its own cleans up with it)."""
        try:
            return self._items.pop(name)
        except KeyError:
            raise UnknownNameError(unknown_name_message(self.what, name, self.names())) from None

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(unknown_name_message(self.what, name, self.names())) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
