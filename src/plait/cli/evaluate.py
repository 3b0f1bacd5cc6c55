"""`plait evaluate BUNDLE DATA --out DIR`: the full evaluation of a bundle on a labelled table —
metrics, ablation, robustness, calibration, interpretation — as DIR/metrics.json and DIR/report.html."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from plait.cli.predict import TRUST_HELP, check_bundle_dir, check_inputs, said_warnings
from plait.cli.show import metrics_table
from plait.evaluation.summary import report_summary
from plait.registry import unknown_name_message

# what --out gets; a name ending in one of these was meant as a file, not the folder
_WRITES = (".json", ".html", ".htm")


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
    perturb: list[str] | None = typer.Option(
        None,
        "--perturb",
        metavar="SPEC",
        help="Run only these robustness curves, [FIELD:]FAMILY[=LEVELS]; repeatable (see above).",
    ),
    seed: int = typer.Option(0, help="Seed of the perturbations."),
    progress: bool = typer.Option(True, help="Show progress bars (off: a line per quarter of a long run)."),
    trust_modified: bool = typer.Option(False, "--trust-modified", help=TRUST_HELP),
) -> None:
    """Evaluate BUNDLE on DATA and write a self-contained report."""
    check_inputs(bundle, data, root)
    if baseline is not None:
        check_bundle_dir(baseline, "--baseline")
    if out is not None:
        _check_out_folder(out)
    from plait.bundle import load_bundle
    from plait.evaluation.perturb.choice import RobustnessPlan
    from plait.evaluation.rows import CHOICES
    from plait.workflow.evaluate import Retrain, evaluate_report

    plan = RobustnessPlan.parse(perturb or [])  # names and level syntax, before anything is loaded
    retrain: Retrain | None = None
    if retrain_ablation:
        from plait.workflow.retrain import retrain_without  # Lightning only when retraining

        retrain = retrain_without

    if rows not in CHOICES:
        raise typer.BadParameter(unknown_name_message("row choice", rows, list(CHOICES)), param_hint="--rows")
    console = Console()
    say = lambda msg: console.print(msg, highlight=False)  # noqa: E731
    with said_warnings(console):
        trained = load_bundle(bundle, trust_modified=trust_modified)
        reference = None if baseline is None else load_bundle(baseline, trust_modified=trust_modified)
    run = evaluate_report(
        trained,
        data,
        root=root,
        rows=rows,
        baseline=reference,
        retrain=retrain,
        robustness=robustness,
        plan=plan,
        seed=seed,
        out=out,
        say=say,
        progress=progress,
    )
    for line in run.load_report.lines():
        say(line)
    result = run.data
    ablation = result.ablation
    console.print(
        metrics_table(
            result.metrics or {},
            {} if ablation is None else ablation.single_field,
            title=f"{data} ({'?' if result.data is None else result.data.rows} rows)",
            interval=result.headline,
        )
    )
    for line in report_summary(result):
        say(line)
    if run.html_path is not None:
        say(f"wrote {run.json_path} and {run.html_path}")


# one paragraph of `--help` (typer keeps a docstring's line breaks after its first paragraph)
PERTURB_HELP = (
    "Robustness: by default every perturbation family of each field's kind, and every field at once "
    "(all:missing, all:noise). --perturb [FIELD:]FAMILY[=LEVELS] runs only the curves it names; repeat "
    "it for more. FAMILY: missing; gaussian_noise, time_shift, sample_dropout (series, table, "
    "embedding); blur, occlusion, pixel_noise, pixel_gaussian (images); background_noise, "
    "segment_dropout (audio); typo, word_drop (text); category_swap (table); frame_drop, frame_noise "
    "(video); noise (every field at "
    "once, each by its kind's noise). FIELD: a field, all (every field at once), or left out (each "
    "field the family applies to). LEVELS: 0,0.1,0.5 or START:STOP:COUNT; 0, the clean run, is "
    "always included; default: the family's levels. MultiBench's image noise, σ 0-0.9 on [0, 1] "
    "pixels: --perturb photo:pixel_gaussian=0:0.9:10"
)
evaluate_command.__doc__ = f"{evaluate_command.__doc__}\n\n{PERTURB_HELP}"


def _check_out_folder(out: Path) -> None:
    """--out is a folder (it gets metrics.json and report.html): not an existing file, and not a name
    that ends like one of the files written into it."""
    if out.suffix.lower() in _WRITES or out.is_file():
        folder = out.with_suffix("") if out.suffix else out.parent / f"{out.name}-report"
        raise typer.BadParameter(
            f"{out}: --out is a folder (it gets metrics.json and report.html)"
            f"{', and this is an existing file' if out.is_file() else ''}; e.g. --out {folder}",
            param_hint="--out",
        )
