"""What every contract check shares: how a violation is raised, and the tolerance of "the same"."""

from __future__ import annotations

ATOL = 1e-5


def require(condition: bool, message: str) -> None:
    """Raise AssertionError(message) unless condition. Not `assert`: the checks must also run
    under `python -O`."""
    if not condition:
        raise AssertionError(message)
