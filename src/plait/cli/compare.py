"""`plait compare CONFIG`: every fusion strategy and every field alone on the same data and split."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from plait.cli.options import ALLOW_LEAK, with_allowed_leaks

if TYPE_CHECKING:
    from plait.compare import Comparison, CrossValidation


def compare_command(
    config: Path = typer.Argument(..., help="The YAML config (see `plait init`)."),
    fusion: str = typer.Option(
        "all", help="Fusions to compare: 'all', or names separated by commas (concat,late,gated)."
    ),
    out: Path = typer.Option(
        Path("compare-out"), "--out", "-o", help="Folder for compare.json, compare.md and compare.html."
    ),
    unimodal: bool = typer.Option(True, help="Also train each field alone (the unimodal baselines)."),
    boosting: bool = typer.Option(
        True,
        help="Also fit gradient boosting (LightGBM) on every field's summary features, and retrained "
        "without each field: the simple model to beat.",
    ),
    retrain_ablation: bool = typer.Option(
        False,
        "--retrain-ablation",
        help="Also train the first fusion without each field (one model per field; with two fields "
        "and --unimodal the field-alone models already are these): the retrain gap per field, what a "
        "missing field costs each fusion beyond retraining without it.",
    ),
    epochs: int | None = typer.Option(None, help="Override train.epochs for every model."),
    seed: int | None = typer.Option(None, help="Override train.seed (split and training)."),
    bundles: bool = typer.Option(False, help="Keep every model's bundle under OUT/bundles/NAME."),
    folds: int = typer.Option(
        1,
        help="Cross-validate over K folds (grouped when data.split.group is set, forward in time for "
        "data.split.time); 1: the config's split.",
    ),
    seeds: int = typer.Option(
        1, help="Train every model with S seeds (train.seed, +1, …): mean ± std and paired differences."
    ),
    progress: bool = typer.Option(True, help="Show progress bars."),
    allow_leak: list[str] | None = ALLOW_LEAK,
) -> None:
    """Train each fusion strategy (each field alone, and a boosting baseline on summary features) on
    the same split and seed; rank them.
    With --folds or --seeds: every model on every fold × seed, ranked by mean ± std with the
    paired difference to the best and its 95 % interval (cv.md, cv.json, oof.parquet)."""
    from plait.compare import compare, write_reports
    from plait.compare.table import gap_rows
    from plait.config import load_config

    cfg = load_config(config)
    overrides: dict[str, Any] = {"progress": progress}
    for key, value in (("epochs", epochs), ("seed", seed)):
        if value is not None:
            overrides[key] = value
    cfg = cfg.with_overrides(train=overrides)
    cfg = with_allowed_leaks(cfg, allow_leak)
    console = Console()
    names = [name.strip() for name in fusion.split(",") if name.strip()]
    if folds != 1 or seeds != 1:
        if bundles:
            raise typer.BadParameter("--bundles keeps one split's models; drop it with --folds/--seeds")
        run_cross_validation(
            cfg,
            names,
            folds=folds,
            seeds=seeds,
            unimodal=unimodal,
            baseline=boosting,
            retrain=retrain_ablation,
            out=out,
            console=console,
        )
        return
    comparison = compare(
        cfg,
        names,
        unimodal=unimodal,
        baseline=boosting,
        retrain=retrain_ablation,
        out=out if bundles else None,
        say=lambda msg: console.print(msg, highlight=False, markup=False),
    )
    paths = write_reports(comparison, out)
    console.print(_rich_table(comparison))
    console.print(comparison.verdict(), highlight=False, markup=False)
    gap_names, gaps = gap_rows(comparison)
    if gaps:
        told = [
            f"{row[0]}: " + ", ".join(f"{f} {v}" for f, v in zip(gap_names[1:], row[1:], strict=True))
            for row in gaps
        ]
        console.print(
            "Retrain gap (positive: a missing field costs more than retraining): " + "; ".join(told),
            highlight=False,
            markup=False,
        )
    for path in (paths.markdown, paths.html, paths.json):
        console.print(f"wrote [bold]{escape(str(path))}[/]", highlight=False)


def _rich_table(comparison: Comparison) -> Table:
    """The ranked table without the per-field columns (those are in compare.md / compare.html)."""
    from plait.compare.table import headers, table_rows

    direction = "higher" if comparison.higher_is_better else "lower"
    table = Table(
        title=f"{comparison.metric_name} on {comparison.held_out_rows} {comparison.held_out} rows "
        f"({direction} is better)"
    )
    names = headers(comparison)
    keep = [i for i, h in enumerate(names) if h != "fields" and not h.startswith("without ")]
    for i in keep:
        numeric = names[i] not in ("model", "kind", "notes")
        table.add_column(names[i], justify="right" if numeric else "left", no_wrap=names[i] == "model")
    for entry in table_rows(comparison):
        style = "bold" if entry.best_unimodal else ("dim" if not entry.row.ok else None)
        cells = [
            "failed (error above)" if names[i] == "notes" and not entry.row.ok else entry.cells[i]
            for i in keep
        ]
        table.add_row(*(escape(c) for c in cells), style=style)
    return table


def run_cross_validation(
    cfg: Any,
    names: list[str],
    *,
    folds: int,
    seeds: int,
    unimodal: bool,
    out: Path,
    console: Console,
    baseline: bool = True,
    retrain: bool = False,
) -> CrossValidation:
    """Cross-validate, write cv.md / cv.json / oof.parquet into `out`, print the leaderboard."""
    from plait.compare import cross_validate, write_cv_reports

    cv = cross_validate(
        cfg,
        names,
        folds=folds,
        seeds=seeds,
        unimodal=unimodal,
        baseline=baseline,
        retrain=retrain,
        say=lambda msg: console.print(msg, highlight=False, markup=False),
    )
    paths = write_cv_reports(cv, out)
    show_cv(cv, console)
    for path in (paths.markdown, paths.json, paths.out_of_fold):
        console.print(f"wrote [bold]{escape(str(path))}[/]", highlight=False)
    return cv


def show_cv(cv: CrossValidation, console: Console) -> None:
    """The cross-validated leaderboard (fits 80 columns) and the verdict."""
    from plait.compare.cv_report import LEADERBOARD_HEADERS, TIE, leaderboard_rows

    direction = "higher" if cv.higher_is_better else "lower"
    table = Table(
        title=f"{cv.metric_name}, {direction} is better", caption=f"{TIE}: within noise of the best"
    )
    for header in LEADERBOARD_HEADERS:
        table.add_column(header, justify="left" if header in ("model", "kind") else "right")
    for row in leaderboard_rows(cv):
        table.add_row(*(escape(c) for c in row))
    console.print(table)
    console.print(cv.split_text(), highlight=False, markup=False)
    console.print(cv.verdict(), highlight=False, markup=False)
    gaps = cv.retrain_gaps()
    if gaps:
        told = ", ".join(f"{g.model}/{g.field} {g.mean:+.3f}{TIE if g.closed else ''}" for g in gaps)
        console.print(
            f"Retrain gap (positive: a missing field costs more than retraining; {TIE}: ≤ 0 within "
            f"noise): {told}",
            highlight=False,
            markup=False,
        )
