"""`evaluate_report(trained, DATA)`: what `plait evaluate BUNDLE DATA --out DIR` does — read and
check the table, choose the rows, load them once, run the full evaluation, and write
DIR/metrics.json and DIR/report.html (plait.report renders the page from the evaluation's records).
The retrain ablation is a hook (`Retrain`) the caller passes in — plait.workflow.retrain.
retrain_without — so `plait evaluate` imports Lightning only when it is asked to retrain."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import polars as pl

from plait.bundle import TrainedModel
from plait.data.dataset import LoadReport
from plait.errors import ConfigError, DataError
from plait.evaluation.evaluate import model_tensors, read_labelled
from plait.evaluation.full import Baseline, full_evaluation
from plait.evaluation.perturb.choice import RobustnessPlan
from plait.evaluation.result import EvaluationReport
from plait.evaluation.robustness import plan_curves
from plait.evaluation.rows import choose_rows
from plait.json_safe import finite

Say = Callable[[str], None]
EVALUATION_JSON = "evaluation.json"  # the report's data inside a bundle (metrics.json is training's)


class Retrain(Protocol):
    """field → the headline metric on `rows` of a model like `trained` retrained without that field,
    on `table` (the bundle's training table, media under `root`)."""

    def __call__(
        self, trained: TrainedModel, table: pl.DataFrame, root: Path, rows: np.ndarray, say: Say | None = None
    ) -> dict[str, float]: ...


@dataclass(frozen=True)
class EvaluationRun:
    data: EvaluationReport  # what metrics.json holds
    load_report: LoadReport
    json_path: Path | None
    html_path: Path | None


def evaluate_report(
    trained: TrainedModel,
    data: Path | str | pl.DataFrame,
    *,
    root: Path | None = None,
    rows: str = "auto",
    baseline: TrainedModel | None = None,
    retrain: Retrain | None = None,
    robustness: bool = True,
    plan: RobustnessPlan | None = None,
    seed: int = 0,
    out: Path | None = None,
    say: Say | None = None,
    progress: bool = False,
) -> EvaluationRun:
    """`plan` chooses the robustness curves (None: the default ones); it is checked against the
    model before any data is read. `retrain` runs the retrain ablation (`--retrain-ablation`,
    plait.workflow.retrain.retrain_without); None leaves it out. `progress` shows a spinner while
    rows load and a bar while the model runs; without it, `say` hears a line at each quarter of a
    long evaluation."""
    tell: Say = say or (lambda _msg: None)
    trained.task.require_prediction(
        "evaluate (the bundle's report.html holds its retrieval on held-out rows)"
    )
    if plan is not None and plan.choices:
        if not robustness:
            raise ConfigError(
                "robustness curves were chosen (--perturb) but the robustness analysis is off "
                "(--no-robustness); drop one of the two"
            )
        plan_curves(trained.modalities, plan)  # fails before loading
    table = read_labelled(trained, data, root)
    df, source, media_root = table.df, table.source, table.root
    choice = choose_rows(trained, df, table.target, table.valid, source, rows)
    tell(f"{len(choice.rows)} rows: {choice.selection}")
    loading = f"loading {df.height} rows through {len(trained.modalities)} fields"
    tell(loading)
    with _loading(loading, progress):
        tensors, report = model_tensors(trained, df, table.target, media_root)
    other = None
    if baseline is not None:
        _check_baseline(trained, baseline)
        with _loading(f"loading {df.height} rows for the baseline", progress):
            other = Baseline(baseline, model_tensors(baseline, df, table.target, media_root)[0])
    retrained = None
    if retrain is not None:
        if not choice.selection.startswith(("test rows", "validation rows")):
            same = choice.selection == "every labelled row"  # --rows all on the training table
            raise DataError(
                "--retrain-ablation retrains on the bundle's training rows and measures held-out ones: "
                + (
                    "--rows all would include the training rows; use --rows test or --rows val"
                    if same
                    else f"DATA must be the table the bundle was trained on, and {source} is not"
                )
            )
        retrained = retrain(trained, df, media_root, choice.rows, say=tell)
    result = full_evaluation(
        trained,
        tensors,
        choice.rows,
        source=source,
        selection=choice.selection,
        seed=seed,
        robustness=robustness,
        plan=plan,
        baseline=other,
        retrained_without=retrained,
        say=say,
        progress=progress,
    )
    json_path = html_path = None
    if out is not None:
        json_path, html_path = write_report(result, out)
    return EvaluationRun(result, report, json_path, html_path)


def write_report(data: EvaluationReport, out: Path, json_name: str = "metrics.json") -> tuple[Path, Path]:
    """DIR/metrics.json (or `json_name`) and DIR/report.html, one self-contained page."""
    from plait.report import render_report

    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / json_name, out / "report.html"
    json_path.write_text(json.dumps(finite(data.to_json()), indent=2, allow_nan=False) + "\n")  # strict JSON
    html_path.write_text(render_report(data), encoding="utf-8")
    return json_path, html_path


@contextmanager
def _loading(what: str, progress: bool) -> Iterator[None]:
    """A spinner while rows load, when `progress` (loading reports no count of its own here)."""
    if not progress:
        yield
        return
    from rich.console import Console

    with Console().status(what):
        yield


def _check_baseline(trained: TrainedModel, baseline: TrainedModel) -> None:
    mine, theirs = trained.task, baseline.task
    if (mine.type, mine.label, mine.classes) != (theirs.type, theirs.label, theirs.classes):
        raise DataError(
            f"--baseline: the baseline predicts {theirs.label} ({theirs.type}, "
            f"classes {list(theirs.classes)}) but this model predicts {mine.label} ({mine.type}, "
            f"classes {list(mine.classes)}); "
            "give a baseline trained on the same task"
        )
    if set(baseline.modalities) != set(trained.modalities):
        raise DataError(
            f"--baseline: the baseline's fields {list(baseline.modalities)} differ from this model's "
            f"{list(trained.modalities)}; effective robustness compares the same fields"
        )
