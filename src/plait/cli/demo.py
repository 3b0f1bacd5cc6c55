"""`plait demo`: the whole path on built-in predictive-maintenance data."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from plait.cli.show import add_number_column, add_text_column, narrow_table


def demo_command(
    out: Path = typer.Option(
        Path("demo-out"), "--out", "-o", help="Folder for the data, bundle and demo.json."
    ),
    rows: int = typer.Option(1800, help="Number of pump inspections to generate."),
    fusion: str = typer.Option("gated", help="Fusion strategy."),
    source: str = typer.Option(
        "streams", help="streams: raw timestamped streams, aligned first; table: the ready sample table."
    ),
    seed: int = typer.Option(0, help="Seed for data, split and training."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Generate pump inspections (vibration, sound, thermal image, note, specs), align, train, evaluate."""
    from plait.demo import run_demo

    console = Console()
    result = run_demo(
        out,
        rows=rows,
        seed=seed,
        fusion=fusion,
        source=source,
        progress=progress,
        say=lambda m: console.print(m, highlight=False),
    )
    if result.alignment is not None:
        from plait.cli.align import show_report

        show_report(result.alignment, console)
    console.print(accuracy_table(result.single_field_accuracy, result.fused_accuracy))
    if result.report is not None:
        from plait.evaluation.summary import report_summary

        for line in report_summary(result.report):
            console.print(line, highlight=False)
        console.print(f"report: [bold]{result.report_path}[/] (open it in a browser)", highlight=False)
    console.print(
        f"wall time {result.seconds:.1f} s · bundle {result.bundle_path} · config {result.config_path} · "
        f"summary {Path(out) / 'demo.json'}",
        highlight=False,
    )
    console.print(
        f"next: try every fusion strategy on the same split with "
        f"`plait compare {result.config_path} --fusion all -o {Path(out) / 'compare'}`",
        highlight=False,
    )


def accuracy_table(single_field: Mapping[str, float], fused: float) -> Table:
    """Test accuracy of each field alone, then of all fields fused."""
    table = narrow_table("test accuracy: each field alone vs all fields")
    add_text_column(table, "inputs")
    add_number_column(table, "accuracy")
    for name, acc in single_field.items():
        table.add_row(f"{name} alone", f"{acc:.3f}")
    table.add_row("[bold]all fields (fused)[/]", f"[bold]{fused:.3f}[/]")
    return table
