"""`plait init TABLE --label COL`: infer fields from a table and write a config."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def init_command(
    table: Path = typer.Argument(..., help="The sample table: CSV, Parquet or JSONL."),
    label: str = typer.Option(..., "--label", "-l", help="The column to predict."),
    out: Path = typer.Option(Path("plait.yaml"), "--out", "-o", help="Where to write the config."),
    fusion: str = typer.Option("gated", help="Fusion strategy to put in the config."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing config."),
) -> None:
    """Inspect TABLE, infer each column's kind, and write a config you can edit."""
    from plait.data.infer import init_config

    result = init_config(table, label, out, fusion=fusion, force=force)
    console = Console()
    for note in result.notes:
        console.print(f"  {note}", highlight=False)
    console.print(
        f"wrote [bold]{result.config_path}[/] ({result.task_type}, {len(result.fields)} fields, "
        f"{result.split.words()}); "
        f"next: plait train {result.config_path}",
        highlight=False,
    )
