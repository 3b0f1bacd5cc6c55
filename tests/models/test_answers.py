"""The inference core's last steps: `FusionModel.decide`, `calibrated` and `row_answers` /
`contributions` — one answer per row, however the run was made."""

from __future__ import annotations

import pytest
import torch

from plait.fusion.gated import GatedFusion
from plait.models.answers import Prediction, calibrated, contributions, row_answers
from plait.models.calibration import SubsetFit, SubsetTemperatures
from plait.models.fusion_model import FusionModel
from plait.models.heads import MLPHead
from plait.task import Task
from plait.testing.dummies import DummyEncoder, tiny_batch
from plait.types import ModelOutput

FIELDS = ("photo", "note")
CLASSIFY = Task(type="classification", label="y", classes=("a", "b", "c"))
REGRESS = Task(type="regression", label="y", target_mean=10.0, target_std=2.0)


def _temperatures() -> SubsetTemperatures:
    fit = SubsetFit(
        fields=("photo",), temperature=0.5, rows=9, errors=3, ece_before=0.2, ece_after=0.1, fitted=True
    )
    return SubsetTemperatures(fields=FIELDS, fallback=2.0, subsets=(fit,), rows=20)


def _present(*rows: tuple[bool, bool]) -> dict[str, torch.Tensor]:
    return {f: torch.tensor([r[j] for r in rows], dtype=torch.bool) for j, f in enumerate(FIELDS)}


def _answers(
    out: ModelOutput, present: dict[str, torch.Tensor], task: Task, temps: SubsetTemperatures | None
):
    return row_answers(out, present, fields=FIELDS, task=task, calibration=temps, model_id="m1")


def test_a_classifier_answers_with_the_temperature_of_each_rows_fields() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.5], [0.1, 0.2, 3.0]])
    weights = torch.tensor([[0.25, 0.75], [1.0, 0.0], [0.0, 0.0]])
    out = ModelOutput(output=logits, weights=weights, field_order=("note", "photo"))
    present = _present((True, True), (True, False), (False, False))
    answers = _answers(out, present, CLASSIFY, _temperatures())
    assert [a.prediction for a in answers] == ["a", "b", "c"]  # the raw argmax
    assert [a.temperature for a in answers] == [2.0, 0.5, 2.0]  # all: fallback; photo: fitted; none: fallback
    for a, row, t in zip(answers, logits, (2.0, 0.5, 2.0), strict=True):
        want = (row / t).softmax(dim=-1).tolist()
        assert a.probabilities == pytest.approx(dict(zip(CLASSIFY.classes, want, strict=True)), abs=1e-6)
        assert a.model_id == "m1"
    assert answers[0].weights == {"note": 0.25, "photo": 0.75}  # by the fusion's field order
    assert (answers[1].fields_used, answers[1].fields_missing, answers[1].degraded) == (
        ("photo",),
        ("note",),
        True,
    )
    assert (answers[2].fields_used, answers[2].fields_missing) == ((), FIELDS)
    assert not answers[0].degraded


def test_without_calibration_the_probabilities_are_the_raw_softmax() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    out = ModelOutput(output=logits, weights=None, field_order=FIELDS)
    present = _present((True, False))
    [a] = _answers(out, present, CLASSIFY, None)
    assert a.temperature is None and a.weights is None
    assert list(a.probabilities.values()) == pytest.approx(logits[0].softmax(dim=-1).tolist(), abs=1e-6)
    assert torch.equal(calibrated(logits, present, None), logits)
    assert torch.allclose(calibrated(logits, present, _temperatures()), logits / 0.5)


def test_a_regression_answers_in_target_units_and_ignores_calibration() -> None:
    out = ModelOutput(output=torch.tensor([[0.5], [-1.0]]), weights=None, field_order=FIELDS)
    answers = _answers(out, _present((True, True), (False, True)), REGRESS, _temperatures())
    assert [a.prediction for a in answers] == [11.0, 8.0]
    assert all(a.probabilities is None and a.temperature is None for a in answers)
    assert isinstance(answers[0], Prediction) and answers[0].to_json()["prediction"] == 11.0


def test_contributions_are_the_drop_of_the_answer_when_a_field_is_left_out() -> None:
    temps = _temperatures()
    present = _present((True, True), (True, False))
    full = ModelOutput(
        output=torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), weights=None, field_order=FIELDS
    )
    no_photo = ModelOutput(
        output=torch.tensor([[1.0, 0.5, 0.0], [0.0, 0.0, 0.0]]), weights=None, field_order=FIELDS
    )
    drops = contributions(full, present, {"photo": no_photo}, task=CLASSIFY, calibration=temps)
    answers = _answers(full, present, CLASSIFY, temps)
    without = {**present, "photo": torch.zeros(2, dtype=torch.bool)}
    after = _answers(no_photo, without, CLASSIFY, temps)
    for i in range(2):
        label = str(answers[i].prediction)
        assert float(drops["photo"][i]) == pytest.approx(
            answers[i].probabilities[label] - after[i].probabilities[label], abs=1e-6
        )
    regression = contributions(full, present, {"photo": no_photo}, task=REGRESS, calibration=temps)
    assert regression["photo"].tolist() == pytest.approx([2.0, 0.0])  # (2.0 - 1.0) * std, (0 - 0) * std


def test_decide_is_the_forward_step_after_encoding_under_any_presence_mask() -> None:
    torch.manual_seed(0)
    dims = {"photo": 5, "note": 3}
    model = FusionModel(
        {f: DummyEncoder(d, 8) for f, d in dims.items()},
        GatedFusion(dict.fromkeys(dims, 8), 8),
        MLPHead(8, 16, 3),
    ).eval()
    batch = tiny_batch(dims, batch_size=5, generator=torch.Generator().manual_seed(2))
    encoded = model.encode(batch)
    out = model.decide(encoded, batch.present)
    assert torch.equal(out.output, model(batch).output)
    assert out.field_order == model.field_order and out.weights is not None
    only_note = {**batch.present, "photo": torch.zeros(5, dtype=torch.bool)}
    ablated = model.decide(encoded, only_note)
    assert torch.allclose(ablated.output, model(batch.with_present(only_note)).output, atol=1e-6)
    assert out.float().output.dtype == torch.float32
