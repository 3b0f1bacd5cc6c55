"""`plait evaluate BUNDLE DATA --out DIR`: the full evaluation of a bundle on a labelled table —
metrics, ablation, robustness, calibration, interpretation — as DIR/metrics.json and DIR/report.html."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from plait.cli.show import metrics_table
from plait.evaluation.summary import report_summary


def evaluate_command(
    bundle: Path = typer.Argument(..., help="A bundle directory written by `plait train`."),
    data: Path = typer.Argument(..., help="A labelled table (CSV, Parquet, JSONL)."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Folder for metrics.json and report.html (nothing written without it)."
    ),
    root: Path | None = typer.Option(None, help="Media root for file paths (default: the table's folder)."),
    rows: str = typer.Option(
        "auto",
        help="auto: the test rows when DATA is the table the bundle was trained on, else every labelled "
        "row; all; test; val.",
    ),
    baseline: Path | None = typer.Option(
        None, help="A late-fusion bundle on the same fields: adds effective robustness against it."
    ),
    retrain_ablation: bool = typer.Option(
        False,
        "--retrain-ablation",
        help="Also train one model without each field (slow; DATA must be the training table).",
    ),
    robustness: bool = typer.Option(True, help="Run the robustness sweeps."),
    seed: int = typer.Option(0, help="Seed of the perturbations."),
) -> None:
    """Evaluate BUNDLE on DATA and write a self-contained report."""
    from plait.bundle import load_bundle
    from plait.evaluation.run import evaluate_report

    if out is not None and out.suffix == ".json":
        raise typer.BadParameter(
            f"{out}: --out is a folder (it gets metrics.json and report.html); "
            f"e.g. --out {out.with_suffix('')}",
            param_hint="--out",
        )
    console = Console()
    say = lambda msg: console.print(msg, highlight=False)  # noqa: E731
    run = evaluate_report(
        load_bundle(bundle),
        data,
        root=root,
        rows=rows,
        baseline=None if baseline is None else load_bundle(baseline),
        retrain_ablation=retrain_ablation,
        robustness=robustness,
        seed=seed,
        out=out,
        say=say,
    )
    for line in run.load_report.lines():
        say(line)
    result = run.data
    console.print(
        metrics_table(
            result["metrics"],
            result["ablation"]["single_field"],
            title=f"{data} ({result['data']['rows']} rows)",
            interval=result["headline"],
        )
    )
    for line in report_summary(result):
        say(line)
    if run.html_path is not None:
        say(f"wrote {run.json_path} and {run.html_path}")
