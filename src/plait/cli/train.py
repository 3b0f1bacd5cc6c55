"""`plait train CONFIG`: train and write a bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from plait.cli.options import ALLOW_LEAK, with_allowed_leaks
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
    ensemble: int | None = typer.Option(
        None,
        help="Override train.ensemble: N > 1 trains N models (seeds SEED…SEED+N−1) into one bundle that "
        "predicts their average (calibrated like one model; N times the training and prediction time).",
    ),
    devices: int | None = typer.Option(
        None,
        help="Override train.devices: processes on this machine (CPU processes, or GPUs with "
        "--accelerator gpu). More than one trains with DDP; each global batch is split across them.",
    ),
    num_nodes: int | None = typer.Option(
        None,
        "--num-nodes",
        help="Override train.num_nodes: machines, each running DEVICES processes (start this same command "
        "on every node, e.g. with torchrun or srun; see the README's 'Training on several processes').",
    ),
    strategy: str | None = typer.Option(
        None,
        help="Override train.strategy: auto (DDP when more than one process) or ddp (no fsdp yet).",
    ),
    accelerator: str | None = typer.Option(None, help="Override train.accelerator: cpu, gpu or auto."),
    progress: bool = typer.Option(True, help="Show progress bars."),
    report: bool = typer.Option(
        True, help="Evaluate the held-out rows fully (robustness, calibration) into BUNDLE/report.html."
    ),
    folds: int = typer.Option(
        1,
        help="K > 1: cross-validate instead of writing a bundle — K folds (grouped by data.split.group, "
        "forward in time for data.split.time), figures into OUT (default: the output folder + '-cv').",
    ),
    seeds: int = typer.Option(1, help="With --folds: train each fold with S seeds (train.seed, +1, …)."),
    boosting: bool = typer.Option(
        False,
        help="Also fit gradient boosting (LightGBM) on every field's summary features on the same split, "
        "and retrained without each field: printed beside the model and shown in the report.",
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Go on from the last epoch of a run that was stopped (checkpoints in BUNDLE.checkpoints/, "
        "written every epoch and removed once the bundle is saved); ends as an uninterrupted run would.",
    ),
    embed_weights: bool = typer.Option(
        False,
        "--embed-weights",
        help="Copy the pretrained encoders' weight files into the bundle (BUNDLE/weights/, tens to hundreds "
        "of MB), so it loads where the weight packages are not installed. Without it the bundle names "
        "each encoder's version and sha256, and loading checks the installed weights against it.",
    ),
    allow_leak: list[str] | None = ALLOW_LEAK,
) -> None:
    """Train the model CONFIG describes and write the bundle (or, with --folds, cross-validate it)."""
    from plait.config import load_config
    from plait.workflow.train import train

    cfg = load_config(config)
    overrides: dict[str, Any] = {"progress": progress}
    for key, value in (
        ("epochs", epochs),
        ("precision", precision),
        ("seed", seed),
        ("ensemble", ensemble),
        ("devices", devices),
        ("num_nodes", num_nodes),
        ("strategy", strategy),
        ("accelerator", accelerator),
    ):
        if value is not None:
            overrides[key] = value
    cfg = cfg.with_overrides(train=overrides)
    from plait.training.distributed import is_main_process

    if cfg.train.progress and cfg.train.devices * cfg.train.num_nodes > 1 and not is_main_process():
        cfg = cfg.with_overrides(train={"progress": False})  # one set of bars: the main process's
    if fusion is not None:
        cfg = cfg.with_overrides(model={"fusion": fusion})
    cfg = with_allowed_leaks(cfg, allow_leak)
    processes = cfg.train.devices * cfg.train.num_nodes
    # a DDP worker runs this command too: one voice (a lone process speaks, whatever RANK says)
    console = Console(quiet=processes > 1 and not is_main_process())
    target = out if out is not None else cfg.resolve(cfg.output)
    if folds != 1 or seeds != 1:
        _cross_validate(
            cfg,
            folds,
            seeds,
            out if out is not None else target.with_name(target.name + "-cv"),
            console,
            boosting=boosting,
        )
        return
    checkpoints = target.with_name(target.name + ".checkpoints")
    if resume and not checkpoints.is_dir():
        raise typer.BadParameter(f"no checkpoints to resume from at {checkpoints}", param_hint="--resume")
    if not resume and (checkpoints / "run.json").is_file():
        console.print(
            f"note: {checkpoints} holds an interrupted run; starting afresh (use --resume to continue it)",
            highlight=False,
        )
    result = train(
        cfg,
        out=target,
        say=lambda msg: console.print(msg, highlight=False),
        report=report,
        checkpoints=checkpoints,
        resume=resume,
        boosting=boosting,
    )
    if embed_weights and result.bundle_path is not None:
        from plait.pretrained.embed import embed_weights as embed

        for line in embed(result.bundle_path, result.trained.modalities):
            console.print(line, highlight=False)
    from plait.evaluation.result import Headline

    metrics = result.trained.metrics
    interval = metrics.get("interval")  # training's metrics.json: the headline metric's interval
    if result.trained.task.predicts:
        console.print(
            metrics_table(
                metrics["metrics"],
                metrics["single_field"],
                title=f"{metrics['split']} split",
                interval=None
                if not interval
                else Headline.from_interval(interval, metrics["metrics"][interval["metric"]]),
            )
        )
    if "space" in metrics and result.report is None:  # the report's summary says it otherwise
        from plait.evaluation.space import SpaceEvaluation
        from plait.evaluation.summary import space_lines

        for line in space_lines(SpaceEvaluation.from_json(metrics["space"])):
            console.print(f"{metrics['split']} rows: {line}", highlight=False)
    if result.boosting is not None and result.report is None:
        console.print(
            f"boosting baseline on summary features: {result.trained.task.headline_metric} "
            f"{result.boosting.metric:.4f} (same split)",
            highlight=False,
        )
    if result.report is not None:
        from plait.evaluation.summary import report_summary

        for line in report_summary(result.report):
            console.print(line, highlight=False)
    console.print(
        f"bundle [bold]{result.bundle_path}[/] (model {result.trained.model_id}) in {result.seconds:.1f} s",
        highlight=False,
    )


def _cross_validate(
    cfg: Any, folds: int, seeds: int, out: Path, console: Console, *, boosting: bool = False
) -> None:
    """K folds × S seeds of the configured model: per-fold figures, mean ± std, out-of-fold predictions."""
    from plait.cli.compare import run_cross_validation

    cv = run_cross_validation(
        cfg,
        [cfg.model.fusion],
        folds=folds,
        seeds=seeds,
        unimodal=False,
        out=out,
        console=console,
        baseline=boosting,
    )
    summary = cv.summaries()[0]
    if summary.mean is not None and cv.folds > 1:
        per_fold = ", ".join("—" if v is None else f"{v:.3f}" for v in summary.per_fold)
        console.print(f"per fold: {per_fold}", highlight=False)
    console.print("no bundle is written with --folds; train without it for the bundle", highlight=False)
