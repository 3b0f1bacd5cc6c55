"""`plait predict BUNDLE DATA -o OUT`: predictions for every row of a table."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def predict_command(
    bundle: Path = typer.Argument(..., help="A bundle directory written by `plait train`."),
    data: Path = typer.Argument(..., help="A table of rows to predict (any subset of fields per row)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file: .parquet, .csv or .jsonl."),
    root: Path | None = typer.Option(None, help="Media root for file paths (default: the table's folder)."),
) -> None:
    """Predict every row of DATA; the output keeps the row order."""
    from plait.data.write import write_table
    from plait.predictor import Predictor, predictions_table

    predictor = Predictor.load(bundle)
    predictions, report = predictor.predict_with_report(data, root=root)
    table = predictions_table(predictions, predictor.trained.task.classes)
    write_table(table, out)
    console = Console()
    for line in report.lines():
        console.print(line, highlight=False)
    degraded = sum(p.degraded for p in predictions)
    console.print(f"wrote {len(predictions)} predictions to {out} ({degraded} degraded)", highlight=False)
