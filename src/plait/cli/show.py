"""Rich tables shared by the commands."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table


def metrics_table(
    metrics: Mapping[str, float],
    single_field: Mapping[str, Mapping[str, float]],
    title: str = "",
    interval: Mapping[str, Any] | None = None,
) -> Table:
    """All fields vs each field alone (the others marked absent); the caption gives the headline
    metric's bootstrap interval when there is one."""
    keys = [k for k in ("accuracy", "macro_f1", "auroc", "rmse", "mae", "r2") if k in metrics]
    caption = None
    if interval:
        caption = (
            f"{interval['metric']} 95 % bootstrap interval: {interval['low']:.3f} – {interval['high']:.3f}"
        )
    table = Table(title=title or None, caption=caption)
    table.add_column("inputs")
    for key in keys:
        table.add_column(key, justify="right")
    table.add_row("[bold]all fields[/]", *[f"{metrics[k]:.3f}" for k in keys])
    for name, m in single_field.items():
        table.add_row(f"{name} alone", *[f"{m[k]:.3f}" if k in m else "—" for k in keys])
    return table
