"""`plait evaluate BUNDLE DATA`: metrics of a bundle on a labelled table."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from plait.cli.show import metrics_table


def evaluate_command(
    bundle: Path = typer.Argument(..., help="A bundle directory written by `plait train`."),
    data: Path = typer.Argument(..., help="A labelled table (CSV, Parquet, JSONL)."),
    root: Path | None = typer.Option(None, help="Media root for file paths (default: the table's folder)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write metrics.json here."),
) -> None:
    """Metrics on DATA with all fields and with each field alone."""
    from plait.bundle import load_bundle
    from plait.evaluation.evaluate import evaluate

    result = evaluate(load_bundle(bundle), data, root=root)
    console = Console()
    if result.load_report is not None:
        for line in result.load_report.lines():
            console.print(line, highlight=False)
    console.print(
        metrics_table(
            result.metrics,
            result.single_field,
            title=f"{data} ({result.rows} rows)",
            interval=result.interval,
        )
    )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result.to_json(), indent=2) + "\n")
        console.print(f"wrote {out}", highlight=False)
