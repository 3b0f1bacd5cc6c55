"""Rich tables shared by the commands."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table


def metrics_table(
    metrics: Mapping[str, float], single_field: Mapping[str, Mapping[str, float]], title: str = ""
) -> Table:
    """All fields vs each field alone (the others marked absent)."""
    keys = [k for k in ("accuracy", "macro_f1", "auroc", "rmse", "mae", "r2") if k in metrics]
    table = Table(title=title or None)
    table.add_column("inputs")
    for key in keys:
        table.add_column(key, justify="right")
    table.add_row("[bold]all fields[/]", *[f"{metrics[k]:.3f}" for k in keys])
    for name, m in single_field.items():
        table.add_row(f"{name} alone", *[f"{m[k]:.3f}" if k in m else "—" for k in keys])
    return table
