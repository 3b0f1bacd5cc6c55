"""The one-pass evaluation sweep and the robustness curves built on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plait.data.dataset import load_table
from plait.data.table import encode_labels, read_table
from plait.errors import ConfigError, UnknownNameError
from plait.evaluation import sweep as sweep_module
from plait.evaluation.perturb import perturb_batch, perturbation_context
from plait.evaluation.robustness import (
    Curve,
    CurvePlan,
    area,
    effective_robustness,
    plan_curves,
    relative_robustness,
    robustness_metric,
)
from plait.evaluation.sweep import SweepPoint, model_runs, sweep, tracked
from plait.modalities import MODALITIES
from plait.task import Task


@pytest.fixture(scope="module")
def pumps_eval(pumps_small, pumps_bundle):
    trained = pumps_bundle.trained
    df = read_table(pumps_small.table_path)
    target, _ = encode_labels(df, trained.task, "pumps")
    tensors, _ = load_table(df, trained.modalities, pumps_small.root, target=target)
    return trained, tensors, pumps_bundle.split.test


def test_missing_at_level_one_equals_the_field_removed(pumps_eval):
    trained, tensors, rows = pumps_eval
    field = "thermal"
    others = [f for f in trained.modalities if f != field]
    point = SweepPoint((field,), ("missing",), 1.0)
    result = sweep(
        trained.model,
        tensors,
        rows,
        subsets={"without": others},
        points=[point],
        modalities=trained.modalities,
        batch_size=16,
    )
    torch.testing.assert_close(result.points[point], result.subsets["without"])


def test_a_signal_perturbation_reencodes_exactly_that_field(pumps_eval):
    """Re-encoding only the perturbed field equals running the whole model on the perturbed batch."""
    trained, tensors, rows = pumps_eval
    modalities = trained.modalities
    contexts = {n: perturbation_context(m) for n, m in modalities.items()}
    field = next(f for f, m in modalities.items() if m.kind == "timeseries")
    point = SweepPoint((field,), ("gaussian_noise",), 0.5)
    result = sweep(
        trained.model,
        tensors,
        rows,
        subsets={"all": None},
        points=[point],
        modalities=modalities,
        contexts=contexts,
        seed=5,
        batch_size=len(rows),
    )
    batch = perturb_batch(
        tensors.batch(torch.as_tensor(rows)), field, modalities[field], "gaussian_noise", 0.5, 5 * 100_003
    )
    trained.model.eval()
    with torch.inference_mode():
        expected = trained.model(batch).output.float()
    torch.testing.assert_close(result.points[point], expected)
    assert not torch.allclose(result.points[point], result.subsets["all"])  # the noise did something


def test_sweep_is_seeded_and_counts_encoding_time(pumps_eval):
    trained, tensors, rows = pumps_eval
    modalities = trained.modalities
    points = [SweepPoint((f,), ("missing",), 0.5) for f in modalities] + [
        SweepPoint(tuple(modalities), ("missing",) * len(modalities), 0.3)
    ]
    runs = [
        sweep(trained.model, tensors, rows, subsets={}, points=points, modalities=modalities, seed=s)
        for s in (1, 1, 2)
    ]
    for p in points:
        torch.testing.assert_close(runs[0].points[p], runs[1].points[p])
    assert any(not torch.equal(runs[0].points[p], runs[2].points[p]) for p in points)
    assert 0 < runs[0].encoding_seconds <= runs[0].seconds


def test_sweep_rejects_unknown_fields_and_perturbations(pumps_eval):
    trained, tensors, rows = pumps_eval
    modalities = trained.modalities
    with pytest.raises(ConfigError, match="not the model's"):
        sweep(trained.model, tensors, rows, subsets={"x": ["nope"]}, modalities=modalities)
    with pytest.raises(UnknownNameError, match="did you mean"):
        sweep(
            trained.model,
            tensors,
            rows,
            subsets={},
            points=[SweepPoint(("thermal",), ("blurr",), 1.0)],
            modalities=modalities,
        )
    with pytest.raises(ConfigError, match="no modality given for field 'thermal'"):
        sweep(trained.model, tensors, rows, subsets={}, points=[SweepPoint(("thermal",), ("missing",), 1.0)])


def test_plan_covers_every_family_and_both_all_field_curves():
    image, text, tabular = (MODALITIES.get(k) for k in ("image", "text", "tabular"))
    plans = plan_curves({"img": image, "txt": text, "tab": tabular})
    names = {(p.field, p.perturbation) for p in plans}
    assert {("img", "blur"), ("img", "occlusion"), ("img", "pixel_noise"), ("img", "missing")} <= names
    assert {
        ("txt", "typo"),
        ("txt", "word_drop"),
        ("tab", "category_swap"),
        ("tab", "gaussian_noise"),
    } <= names
    assert {("all", "missing"), ("all", "noise")} <= names
    for plan in plans:
        assert plan.levels[0] == 0 and len(plan.points) == len(plan.levels) - 1
    noise = next(p for p in plans if p.perturbation == "noise")
    assert noise.points[0].perturbations == ("pixel_noise", "typo", "gaussian_noise")


def _curve(field: str, family: str, levels: tuple[float, ...], values: tuple[float, ...]) -> Curve:
    plan = CurvePlan(field, family, levels, "", "", ())
    return Curve.measured(plan, values)


def test_area_and_relative_robustness():
    assert area([0, 0.5, 1.0], [0.8, 0.8, 0.8]) == pytest.approx(0.8)
    assert area([0, 0.45, 0.9], [1.0, 0.5, 0.0]) == pytest.approx(0.5)  # levels scaled to [0, 1]
    curves = [
        _curve("a", "missing", (0.0, 1.0), (1.0, 0.5)),
        _curve("a", "noise", (0.0, 1.0), (1.0, 1.0)),
        _curve("b", "missing", (0.0, 1.0), (0.9, 0.3)),
    ]
    assert relative_robustness(curves) == {"a": pytest.approx(0.875), "b": pytest.approx(0.6)}


def test_effective_robustness_compares_drops_not_levels():
    mine = [_curve("a", "missing", (0.0, 0.5, 1.0), (0.9, 0.85, 0.8))]  # drops 0.05, 0.1
    late = [_curve("a", "missing", (0.0, 0.5, 1.0), (0.7, 0.6, 0.5))]  # drops 0.1, 0.2
    assert effective_robustness(mine, late) == {"a": pytest.approx(0.075)}
    assert effective_robustness(mine, mine) == {"a": pytest.approx(0.0)}


def test_robustness_metric_is_accuracy_or_r2():
    classes, values = Task("classification", "y", ("a", "b")), Task("regression", "y")
    assert (classes.robustness_metric, values.robustness_metric) == ("accuracy", "r2")
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    assert robustness_metric(logits, torch.tensor([0, 1, 1]), classes) == pytest.approx(2 / 3)
    y = torch.tensor([1.0, 2.0, 3.0])
    assert robustness_metric(y.unsqueeze(1), y, values) == pytest.approx(1.0)
    assert robustness_metric(torch.full((3, 1), 2.0), y, values) == pytest.approx(0.0)
    assert np.isnan(robustness_metric(torch.ones(2, 1), torch.ones(2), values))


def test_sweep_reports_every_model_run(pumps_eval):
    trained, tensors, rows = pumps_eval
    modalities = trained.modalities
    points = [SweepPoint((f,), ("missing",), 0.5) for f in modalities]
    done: list[int] = []
    subsets = {"all": None, "one": [next(iter(modalities))]}
    sweep(
        trained.model,
        tensors,
        rows,
        subsets=subsets,
        points=points,
        modalities=modalities,
        batch_size=8,
        advance=done.append,
    )
    assert sum(done) == model_runs(len(rows), len(subsets), len(points), batch_size=8) == len(done)


def test_tracked_says_a_line_per_quarter_of_a_long_sweep(monkeypatch):
    said: list[str] = []
    monkeypatch.setattr(sweep_module, "QUIET_S", 0.0)
    with tracked("evaluation", 8, say=said.append) as advance:
        for _ in range(8):
            advance(1)
    assert [line.split(", ")[0] for line in said] == [f"evaluation: {n}/8 model runs" for n in (2, 4, 6, 8)]
    assert said[-1].split(", ")[1] == "100 %"
    monkeypatch.setattr(sweep_module, "QUIET_S", 60.0)  # a short sweep says nothing
    with tracked("evaluation", 8, say=said.append) as advance:
        advance(8)
    assert len(said) == 4
    with tracked("evaluation", 8, progress=True, say=said.append) as advance:  # a bar instead of lines
        advance(8)
    assert len(said) == 4
