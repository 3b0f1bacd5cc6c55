"""Options more than one command takes, defined once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from plait.config import Config

ALLOW_LEAK = typer.Option(
    None,
    "--allow-leak",
    metavar="COLUMN",
    help="Keep a column the leak check flags (it must truly be known at prediction time); repeatable. "
    "Recorded in the bundle. Same as data.allow_leaks.",
)


def with_allowed_leaks(cfg: Config, columns: list[str] | None) -> Config:
    """The config with `--allow-leak` columns added to data.allow_leaks."""
    if not columns:
        return cfg
    return cfg.with_overrides(data={"allow_leaks": [*cfg.data.allow_leaks, *columns]})
