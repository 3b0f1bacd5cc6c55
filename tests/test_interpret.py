"""Fusion-weight statistics and cross-field inconsistencies on tensors whose answers are known."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from plait.errors import ConfigError, DataError
from plait.evaluation.interpret import (
    Interpretation,
    inconsistencies,
    weight_distribution,
)
from plait.task import Task

CLS = Task(type="classification", label="fault", classes=("ok", "bearing", "cavitation"))
REG = Task(type="regression", label="flow", target_mean=10.0, target_std=2.0)
STAT_KEYS = {"mean", "q25", "median", "q75", "n"}


def _logits(probs: list[list[float]]) -> torch.Tensor:
    return torch.tensor(probs, dtype=torch.float64).log()  # softmax(log p) = p


def _mask(values: list[int]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.bool)


# ---- weight_distribution -------------------------------------------------------------------------


def test_weight_statistics_leave_out_rows_where_the_field_is_absent():
    gen = torch.Generator().manual_seed(0)
    n = 40
    weights = torch.rand(n, 2, generator=gen)
    a_present = torch.rand(n, generator=gen) > 0.3
    weights[~a_present, 0] = 0.0  # the contract: absent fields weigh 0
    present = {"a": a_present, "b": torch.ones(n, dtype=torch.bool)}
    target = torch.randint(0, 3, (n,), generator=gen)
    dist = weight_distribution(weights, ["a", "b"], present, target, CLS)

    kept = weights[a_present, 0].numpy().astype(np.float64)
    stats = dist.overall["a"]
    assert stats.n == int(a_present.sum()) < n
    assert stats.mean == pytest.approx(kept.mean(), abs=1e-4)
    assert stats.q25 == pytest.approx(np.quantile(kept, 0.25), abs=1e-4)
    assert stats.median == pytest.approx(np.quantile(kept, 0.5), abs=1e-4)
    assert stats.q75 == pytest.approx(np.quantile(kept, 0.75), abs=1e-4)
    # counting the zeros of absent rows would have dragged the mean down
    assert stats.mean > weights[:, 0].double().mean().item() + 1e-3
    assert dist.overall["b"].n == n


def test_weight_statistics_group_by_true_class():
    weights = torch.tensor([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.0, 1.0], [0.4, 0.6]])
    present = {"a": _mask([1, 1, 1, 0, 1]), "b": _mask([1, 1, 1, 1, 1])}
    target = torch.tensor([0, 0, 1, 1, 1])
    dist = weight_distribution(weights, ["a", "b"], present, target, CLS)

    assert list(dist.by_class) == ["ok", "bearing", "cavitation"]
    ok_a = dist.by_class["ok"]["a"]
    assert (ok_a.n, ok_a.mean, ok_a.median) == (2, pytest.approx(0.8), pytest.approx(0.8))
    bearing_a = dist.by_class["bearing"]["a"]  # row 3 is absent for a: only 0.2 and 0.4 count
    assert bearing_a.n == 2 and bearing_a.mean == pytest.approx(0.3)
    assert dist.by_class["bearing"]["b"].n == 3
    assert dist.by_class["bearing"]["b"].mean == pytest.approx(0.8)
    empty = dist.by_class["cavitation"]["a"]  # no row of that class
    assert empty.n == 0 and empty.mean is None and empty.q25 is None and empty.median is None
    assert empty.q75 is None


def test_field_never_present_has_null_statistics_and_json_keys_match_the_schema():
    weights = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    present = {"a": _mask([1, 1]), "b": _mask([0, 0])}
    out = weight_distribution(weights, ["a", "b"], present, torch.tensor([0, 1]), CLS).to_json()
    assert set(out) == {"field_order", "overall", "by_class"}
    assert out["field_order"] == ["a", "b"]
    assert out["overall"]["b"] == {"mean": None, "q25": None, "median": None, "q75": None, "n": 0}
    assert set(out["overall"]["a"]) == STAT_KEYS
    assert set(out["by_class"]) == set(CLS.classes)
    json.dumps(out)  # plain JSON, None as null


def test_weight_statistics_are_rounded_and_regression_has_no_classes():
    weights = torch.tensor([[1 / 3, 2 / 3], [1 / 3, 2 / 3]])
    present = {"a": _mask([1, 1]), "b": _mask([1, 1])}
    dist = weight_distribution(weights, ["a", "b"], present, torch.tensor([0.5, -1.0]), REG)
    assert dist.by_class == {}
    assert dist.overall["a"].mean == 0.3333 and dist.overall["b"].q75 == 0.6667


def test_weight_distribution_rejects_mismatched_inputs():
    present = {"a": _mask([1, 1]), "b": _mask([1, 1])}
    target = torch.tensor([0, 1])
    with pytest.raises(DataError, match=r"expected weights \(N, 2\).*got shape \(2, 3\)"):
        weight_distribution(torch.zeros(2, 3), ["a", "b"], present, target, CLS)
    with pytest.raises(DataError, match=r"missing \['b'\], unexpected \['c'\]"):
        weight_distribution(
            torch.zeros(2, 2), ["a", "b"], {"a": present["a"], "c": present["b"]}, target, CLS
        )
    with pytest.raises(DataError, match=r"present\['a'\] must be a BoolTensor of shape \(2,\)"):
        weight_distribution(torch.zeros(2, 2), ["a", "b"], {**present, "a": _mask([1, 1, 1])}, target, CLS)
    with pytest.raises(DataError, match=r"expected target of shape \(2,\), got \(3,\)"):
        weight_distribution(torch.zeros(2, 2), ["a", "b"], present, torch.tensor([0, 1, 2]), CLS)
    with pytest.raises(DataError, match=r"in \[0, 3\)"):
        weight_distribution(torch.zeros(2, 2), ["a", "b"], present, torch.tensor([0, 3]), CLS)


# ---- inconsistencies: classification -------------------------------------------------------------

SURE_OK = [0.95, 0.03, 0.02]
SURE_CAV = [0.02, 0.08, 0.90]
UNSURE_CAV = [0.3, 0.1, 0.6]


def _three_rows() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Row 0: a says ok (0.95), b says cavitation (0.90) -> inconsistent, score 0.90.
    Row 1: the same logits, but b is absent -> nothing to compare.
    Row 2: b disagrees only at 0.6 confidence -> below the threshold."""
    per_field = {
        "a": _logits([SURE_OK, SURE_OK, SURE_OK]),
        "b": _logits([SURE_CAV, SURE_CAV, UNSURE_CAV]),
        "c": _logits([SURE_OK, SURE_OK, SURE_OK]),
    }
    present = {"a": _mask([1, 1, 1]), "b": _mask([1, 0, 1]), "c": _mask([0, 0, 0])}
    return per_field, present


def test_confident_disagreement_is_found_with_both_fields():
    per_field, present = _three_rows()
    fused = _logits([SURE_OK, SURE_OK, SURE_OK])
    found = inconsistencies(per_field, present, fused, torch.tensor([1, 0, 2]), CLS, [10, 11, 12])

    assert [r.row for r in found.rows] == [10]
    row = found.rows[0]
    assert row.score == pytest.approx(0.90, abs=1e-4)
    assert (row.target, row.prediction) == ("bearing", "ok")
    assert set(row.fields) == {"a", "b"}  # c is absent on this row: not listed
    assert row.fields["a"].prediction == "ok" and row.fields["a"].confidence == pytest.approx(0.95)
    assert row.fields["b"].prediction == "cavitation" and row.fields["b"].confidence == pytest.approx(0.90)
    # rows 0 and 2 have two present fields, row 1 only one: 1 inconsistent of 2 comparable
    assert found.rate == 0.5
    assert found.threshold == 0.8


def test_lowering_the_threshold_lists_the_less_confident_disagreement():
    per_field, present = _three_rows()
    fused = _logits([SURE_OK] * 3)
    found = inconsistencies(per_field, present, fused, torch.tensor([0, 0, 0]), CLS, [0, 1, 2], threshold=0.5)
    assert [(r.row, r.score) for r in found.rows] == [(0, 0.9), (2, 0.6)]
    assert found.rate == 1.0


def test_score_is_the_most_confident_disagreeing_pair():
    # a: ok 0.95, b: cavitation 0.90, c: bearing 0.85 -> pairs 0.90 (a,b), 0.85 (a,c), 0.85 (b,c)
    per_field = {
        "a": _logits([SURE_OK]),
        "b": _logits([SURE_CAV]),
        "c": _logits([[0.05, 0.85, 0.10]]),
    }
    present = {f: _mask([1]) for f in per_field}
    found = inconsistencies(per_field, present, _logits([SURE_OK]), torch.tensor([0]), CLS, [0])
    assert found.rows[0].score == pytest.approx(0.90)
    assert found.rows[0].fields["c"].prediction == "bearing"


def test_top_and_ordering_by_score_then_row_number():
    confidences = [0.85, 0.97, 0.85, 0.92, 0.99]
    per_field = {
        "a": _logits([[c, (1 - c) / 2, (1 - c) / 2] for c in confidences]),
        "b": _logits([[(1 - c) / 2, (1 - c) / 2, c] for c in confidences]),
    }
    present = {f: torch.ones(5, dtype=torch.bool) for f in per_field}
    rows = [50, 40, 30, 20, 10]
    fused = torch.zeros(5, 3)
    found = inconsistencies(per_field, present, fused, torch.zeros(5, dtype=torch.long), CLS, rows, top=4)
    assert [(r.row, r.score) for r in found.rows] == [(10, 0.99), (40, 0.97), (20, 0.92), (30, 0.85)]
    assert found.rate == 1.0  # the rate counts every row, not only those listed
    none = inconsistencies(per_field, present, fused, torch.zeros(5, dtype=torch.long), CLS, rows, top=0)
    assert none.rows == () and none.rate == 1.0


def test_agreeing_fields_and_single_field_rows_give_rate_zero():
    per_field = {"a": _logits([SURE_OK, SURE_OK]), "b": _logits([SURE_OK, SURE_CAV])}
    present = {"a": _mask([1, 1]), "b": _mask([1, 0])}
    found = inconsistencies(per_field, present, _logits([SURE_OK] * 2), torch.tensor([0, 0]), CLS, [0, 1])
    assert found.rows == () and found.rate == 0.0
    alone = inconsistencies(
        per_field,
        {"a": _mask([1, 1]), "b": _mask([0, 0])},
        _logits([SURE_OK] * 2),
        torch.tensor([0, 0]),
        CLS,
        [0, 1],
    )
    assert alone.rows == () and alone.rate == 0.0  # no comparable row at all


# ---- inconsistencies: regression -----------------------------------------------------------------


def test_regression_spread_in_stds_and_predictions_in_target_units():
    # standardised predictions; target units = 2 * x + 10
    per_field = {
        "a": torch.tensor([[0.0], [0.0], [0.0]]),
        "b": torch.tensor([[1.5], [0.5], [3.0]]),
        "c": torch.tensor([[-0.5], [0.2], [9.0]]),
    }
    present = {"a": _mask([1, 1, 1]), "b": _mask([1, 1, 1]), "c": _mask([1, 1, 0])}
    fused = torch.tensor([[0.25], [0.1], [1.0]])
    target = torch.tensor([0.5, 0.0, 1.0])
    found = inconsistencies(per_field, present, fused, target, REG, [7, 8, 9], spread=1.0)

    assert found.threshold == 1.0
    # row 7: spread 1.5 - (-0.5) = 2.0; row 8: 0.5 < 1; row 9: c absent -> 3.0 - 0.0 = 3.0
    assert [(r.row, r.score) for r in found.rows] == [(9, 3.0), (7, 2.0)]
    assert found.rate == pytest.approx(2 / 3, abs=1e-4)
    row7 = found.rows[1]
    assert row7.target == 11.0 and row7.prediction == 10.5
    assert {f: p.prediction for f, p in row7.fields.items()} == {"a": 10.0, "b": 13.0, "c": 9.0}
    assert all(p.confidence is None for p in row7.fields.values())
    assert set(found.rows[0].fields) == {"a", "b"}
    assert set(row7.to_json()["fields"]["a"]) == {"prediction", "confidence"}


# ---- validation and JSON -------------------------------------------------------------------------


def test_bad_shapes_and_names_raise_data_error():
    per_field, present = _three_rows()
    fused = _logits([SURE_OK] * 3)
    target = torch.tensor([0, 0, 0])
    with pytest.raises(DataError, match=r"missing \['c'\], unexpected \['d'\]"):
        inconsistencies(
            per_field,
            {"a": present["a"], "b": present["b"], "d": present["c"]},
            fused,
            target,
            CLS,
            [0, 1, 2],
        )
    with pytest.raises(DataError, match=r"per_field\['b'\] must have the fused output's shape \(3, 3\)"):
        inconsistencies({**per_field, "b": torch.zeros(2, 3)}, present, fused, target, CLS, [0, 1, 2])
    with pytest.raises(DataError, match=r"expected fused output \(N, 3\).*got \(3, 2\)"):
        inconsistencies(per_field, present, torch.zeros(3, 2), target, CLS, [0, 1, 2])
    with pytest.raises(DataError, match="expected 3 row numbers"):
        inconsistencies(per_field, present, fused, target, CLS, [0, 1])
    with pytest.raises(DataError, match=r"expected target of shape \(3,\)"):
        inconsistencies(per_field, present, fused, torch.tensor([0, 0]), CLS, [0, 1, 2])
    with pytest.raises(DataError, match="class indices"):
        inconsistencies(per_field, present, fused, torch.tensor([0.0, 1.0, 0.0]), CLS, [0, 1, 2])
    with pytest.raises(ConfigError, match="threshold"):
        inconsistencies(per_field, present, fused, target, CLS, [0, 1, 2], threshold=1.5)


def test_interpretation_json_has_exactly_the_schema_keys():
    per_field, present = _three_rows()
    found = inconsistencies(
        per_field, present, _logits([SURE_OK] * 3), torch.tensor([1, 0, 2]), CLS, [0, 1, 2]
    )
    out = Interpretation(weights=None, inconsistencies=found).to_json()
    assert set(out) == {"weights", "inconsistencies"} and out["weights"] is None
    assert set(out["inconsistencies"]) == {"threshold", "rate", "rows", "rows_compared"}
    assert out["inconsistencies"]["rows_compared"] == 2  # row 1 has one field present
    (row,) = out["inconsistencies"]["rows"]
    assert set(row) == {"row", "target", "prediction", "score", "fields"}
    assert all(set(v) == {"prediction", "confidence"} for v in row["fields"].values())
    assert json.loads(json.dumps(out)) == out


# ---- on a trained model --------------------------------------------------------------------------


def test_on_a_trained_model_through_run_model_subsets(pumps_bundle, pumps_small):
    from plait.data.dataset import load_table
    from plait.data.table import encode_labels, read_table
    from plait.models.inference import run_model_subsets

    trained = pumps_bundle.trained
    task = trained.task
    df = read_table(pumps_small.table_path)
    target, valid = encode_labels(df, task, str(pumps_small.table_path))
    tensors, _ = load_table(df, trained.modalities, pumps_small.root, target=target)
    assert tensors.target is not None
    idx = torch.as_tensor([i for i in pumps_bundle.split.test if valid[i]], dtype=torch.long)
    names = list(trained.modalities)
    subsets: dict[str, list[str] | None] = {"all": None, **{f"only:{f}": [f] for f in names}}
    outputs = run_model_subsets(trained.model, tensors, idx, subsets)
    present = {f: tensors.present[f][idx] for f in names}
    y = tensors.target[idx]

    assert outputs["all"].weights is not None  # the fixture trains a gated fusion
    dist = weight_distribution(outputs["all"].weights, outputs["all"].field_order, present, y, task)
    found = inconsistencies(
        {f: outputs[f"only:{f}"].output for f in names},
        present,
        outputs["all"].output,
        y,
        task,
        idx,
        threshold=0.0,
    )
    out = json.loads(json.dumps(Interpretation(weights=dist, inconsistencies=found).to_json()))

    weights = out["weights"]
    assert weights["field_order"] == names
    assert set(weights["by_class"]) == set(task.classes)
    for f in names:
        stats = weights["overall"][f]
        assert set(stats) == STAT_KEYS and stats["n"] == int(present[f].sum())
        if stats["n"] > 0:
            assert 0.0 <= stats["q25"] <= stats["median"] <= stats["q75"] <= 1.0
    assert (
        sum(weights["by_class"][c][names[0]]["n"] for c in task.classes) == weights["overall"][names[0]]["n"]
    )
    inc = out["inconsistencies"]
    # threshold 0: any disagreement counts, so this briefly trained model lists some rows
    assert 0.0 < inc["rate"] <= 1.0 and 0 < len(inc["rows"]) <= 20
    scores = [row["score"] for row in inc["rows"]]
    assert scores == sorted(scores, reverse=True)
    for row in inc["rows"]:
        assert row["row"] in set(idx.tolist()) and row["target"] in task.classes
        assert len(row["fields"]) >= 2 and 0.0 < row["score"] <= 1.0
        assert len({v["prediction"] for v in row["fields"].values()}) >= 2  # they disagree
        assert all(math.isfinite(v["confidence"]) for v in row["fields"].values())
