"""Rich tables shared by the commands, laid out to read in an 80-column terminal: no vertical
rules, text columns that wrap (never cut to `…`) and number columns that keep their width."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from rich import box
from rich.table import Table

if TYPE_CHECKING:
    from plait.evaluation.result import Headline

METRIC_KEYS = ("accuracy", "macro_f1", "auroc", "rmse", "mae", "r2")


def narrow_table(title: str | None = None, caption: str | None = None) -> Table:
    """A table with a rule under its header only and two spaces between columns."""
    return Table(
        title=title,
        caption=caption,
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        collapse_padding=True,
        pad_edge=False,
    )


def add_text_column(table: Table, header: str) -> None:
    """A column that takes what room is left and wraps long names, character by character if need be."""
    table.add_column(header, overflow="fold", min_width=min(len(header), 8))


def add_number_column(table: Table, header: str) -> None:
    """A right-aligned column never narrowed below its widest cell (rich shrinks text columns first)."""
    table.add_column(header, justify="right", no_wrap=True)


def metric_text(value: float) -> str:
    """0.912, 1234.568, 1.235e+07: three decimals while that stays short."""
    return f"{value:.3f}" if abs(value) < 1e4 else f"{value:.4g}"


def metrics_table(
    metrics: Mapping[str, float],
    single_field: Mapping[str, Mapping[str, float]],
    title: str = "",
    interval: Headline | None = None,
) -> Table:
    """All fields vs each field alone (the others marked absent); the caption gives the headline
    metric's bootstrap interval when there is one."""
    keys = [k for k in METRIC_KEYS if k in metrics]
    caption = None
    if interval:
        caption = f"{interval.metric}: 95 % bootstrap CI {interval.low:.3f}–{interval.high:.3f}"
    table = narrow_table(title or None, caption)
    add_text_column(table, "inputs")
    for key in keys:
        add_number_column(table, key)
    table.add_row("[bold]all fields[/]", *[metric_text(metrics[k]) for k in keys])
    for name, m in single_field.items():
        table.add_row(f"{name} alone", *[metric_text(m[k]) if k in m else "—" for k in keys])
    return table
