"""`plait train CONFIG`: train and write a bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from plait.cli.show import metrics_table


def train_command(
    config: Path = typer.Argument(..., help="The YAML config (see `plait init`)."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Bundle directory (default: the config's `output`)."
    ),
    fusion: str | None = typer.Option(None, help="Override model.fusion."),
    epochs: int | None = typer.Option(None, help="Override train.epochs."),
    precision: str | None = typer.Option(None, help="Override train.precision, e.g. bf16-mixed."),
    seed: int | None = typer.Option(None, help="Override train.seed."),
    progress: bool = typer.Option(True, help="Show progress bars."),
    report: bool = typer.Option(
        True, help="Evaluate the held-out rows fully (robustness, calibration) into BUNDLE/report.html."
    ),
) -> None:
    """Train the model CONFIG describes and write the bundle."""
    from plait.config import load_config
    from plait.training.fit import train

    cfg = load_config(config)
    overrides: dict[str, Any] = {"progress": progress}
    for key, value in (("epochs", epochs), ("precision", precision), ("seed", seed)):
        if value is not None:
            overrides[key] = value
    cfg = cfg.with_overrides(train=overrides)
    if fusion is not None:
        cfg = cfg.with_overrides(model={"fusion": fusion})
    console = Console()
    target = out if out is not None else cfg.resolve(cfg.output)
    result = train(cfg, out=target, say=lambda msg: console.print(msg, highlight=False), report=report)
    metrics = result.trained.metrics
    console.print(
        metrics_table(
            metrics["metrics"],
            metrics["single_field"],
            title=f"{metrics['split']} split",
            interval=metrics.get("interval"),
        )
    )
    if result.report is not None:
        from plait.evaluation.summary import report_summary

        for line in report_summary(result.report):
            console.print(line, highlight=False)
    console.print(
        f"bundle [bold]{result.bundle_path}[/] (model {result.trained.model_id}) in {result.seconds:.1f} s",
        highlight=False,
    )
