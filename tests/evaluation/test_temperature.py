"""Temperature scaling: the 1-D fit on synthetic logits, the per-subset record (lookup, per-row
application, JSON), and a fit on a tiny trained plait model."""

from __future__ import annotations

import json
import math

import pytest
import torch

from plait.config import Config
from plait.data.dataset import TensorTable
from plait.errors import BundleError, DataError
from plait.evaluation.calibration import expected_calibration_error
from plait.evaluation.subset_temperatures import fit_subset_temperatures, plan_subsets
from plait.evaluation.temperature import fit_temperature, negative_log_likelihood, supported_temperature
from plait.models.calibration import SubsetFit, SubsetTemperatures, subset_key


def _calibrated(n: int, k: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits whose softmax is the true class distribution: targets are drawn from it."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g) * 2.0
    target = torch.multinomial(logits.softmax(dim=-1), 1, generator=g).squeeze(1)
    return logits, target


# --- fit_temperature ---------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [3.0, 1.0, 0.5])
def test_fit_undoes_a_scaling_of_calibrated_logits(scale: float) -> None:
    logits, target = _calibrated(20_000)
    assert fit_temperature(logits * scale, target) == pytest.approx(scale, rel=0.05)


def test_fit_finds_the_minimum_of_the_nll() -> None:
    logits, target = _calibrated(2_000, seed=1)
    logits = logits * 1.7 + torch.randn(2_000, 5, generator=torch.Generator().manual_seed(2))
    t = fit_temperature(logits, target)
    grid = torch.logspace(math.log10(0.05), math.log10(20.0), 2_001).tolist()
    best = min(grid, key=lambda g: negative_log_likelihood(logits, target, g))
    assert t == pytest.approx(best, rel=0.01)
    assert negative_log_likelihood(logits, target, t) <= negative_log_likelihood(logits, target, best) + 1e-9


def test_scaling_lowers_ece_and_nll_on_held_out_rows() -> None:
    logits, target = _calibrated(8_000, seed=3)
    logits = logits * 3.0  # overconfident
    t = fit_temperature(logits[:4_000], target[:4_000])
    held, y = logits[4_000:], target[4_000:]
    assert expected_calibration_error(held / t, y) < expected_calibration_error(held, y) / 3
    assert negative_log_likelihood(held, y, t) < negative_log_likelihood(held, y)


def test_a_temperature_needs_evidence_to_be_used() -> None:
    """Calibrated logits keep T = 1 in most seeds (a 5 % test); overconfident ones get their T."""
    kept = sum(supported_temperature(*_calibrated(300, seed=s)) == 1.0 for s in range(40))
    assert kept >= 34  # ~95 % expected
    logits, target = _calibrated(300, seed=7)
    assert supported_temperature(logits * 3.0, target) == pytest.approx(fit_temperature(logits * 3.0, target))
    assert supported_temperature(logits * 3.0, target) > 2.0


def test_no_rows_means_no_scaling() -> None:
    assert fit_temperature(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)) == 1.0


def test_degenerate_rows_clamp_to_the_bounds() -> None:
    logits = torch.tensor([[30.0, 0.0], [0.0, 30.0], [25.0, 0.0]])
    right, wrong = torch.tensor([0, 1, 0]), torch.tensor([1, 0, 1])
    assert fit_temperature(logits, right) == 0.05  # sharpening always helps: lower bound
    assert fit_temperature(logits, wrong) == 20.0  # flattening always helps: upper bound
    assert fit_temperature(logits, right, min_temperature=0.5) == 0.5
    assert fit_temperature(logits, wrong, max_temperature=4.0) == 4.0


def test_fit_is_deterministic() -> None:
    logits, target = _calibrated(500, seed=4)
    assert fit_temperature(logits * 2, target) == fit_temperature(logits.clone() * 2, target.clone())


@pytest.mark.parametrize(
    ("logits", "target", "message"),
    [
        (torch.zeros(3), torch.zeros(3, dtype=torch.long), r"expected logits \(N, K\)"),
        (torch.zeros(3, 1), torch.zeros(3, dtype=torch.long), "at least 2 classes"),
        (torch.zeros(3, 2), torch.zeros(3), "class indices"),
        (torch.zeros(3, 2), torch.tensor([0, 1, 2]), r"in \[0, 2\)"),
        (torch.tensor([[0.0, float("nan")]]), torch.tensor([0]), "NaN or infinity"),
    ],
)
def test_bad_inputs_are_named(logits: torch.Tensor, target: torch.Tensor, message: str) -> None:
    with pytest.raises(DataError, match=message):
        fit_temperature(logits, target)


# --- SubsetTemperatures ------------------------------------------------------------------------


def _fit(fields: tuple[str, ...], temperature: float, fitted: bool = True) -> SubsetFit:
    return SubsetFit(
        fields=fields,
        temperature=temperature,
        rows=50,
        errors=5,
        ece_before=0.2,
        ece_after=0.05,
        fitted=fitted,
    )


def _temperatures() -> SubsetTemperatures:
    return SubsetTemperatures(
        fields=("imu", "camera"),
        fallback=1.5,
        subsets=(_fit(("camera", "imu"), 2.0), _fit(("imu",), 4.0)),
        rows=50,
    )


def test_keys_are_sorted_names_or_all() -> None:
    assert subset_key(["imu", "camera"], ["imu", "camera"]) == "all"
    assert subset_key(["imu"], ["imu", "camera"]) == "imu"
    assert subset_key(["c", "a"], ["a", "b", "c"]) == "a+c"
    assert set(_temperatures().by_key) == {"all", "imu"}


def test_temperature_for_looks_up_the_exact_subset_else_the_fallback() -> None:
    temps = _temperatures()
    assert temps.temperature_for(["imu", "camera"]) == 2.0
    assert temps.temperature_for(("camera", "imu")) == 2.0  # order does not matter
    assert temps.temperature_for(["imu"]) == 4.0
    assert temps.temperature_for(["camera"]) == 1.5  # never fitted
    assert temps.temperature_for([]) == 1.5
    with pytest.raises(DataError, match=r"fields \['lidar'\] are not the model's"):
        temps.temperature_for(["imu", "lidar"])


def test_apply_divides_each_row_by_its_own_subsets_temperature() -> None:
    temps = _temperatures()
    logits = torch.arange(8, dtype=torch.float32).reshape(4, 2) + 1.0  # (4, 2)
    present = {
        "imu": torch.tensor([True, True, False, False]),
        "camera": torch.tensor([True, False, True, False]),
    }
    scaled = temps.apply_temperatures(logits, present)
    expected = torch.tensor([2.0, 4.0, 1.5, 1.5]).unsqueeze(1)  # all, imu alone, camera alone, none
    assert torch.allclose(scaled, logits / expected)
    assert torch.equal(scaled.argmax(dim=1), logits.argmax(dim=1))
    with pytest.raises(DataError, match=r"no presence mask for fields \['camera'\]"):
        temps.apply_temperatures(logits, {"imu": present["imu"]})
    with pytest.raises(DataError, match=r"masks \(N,\)"):
        temps.apply_temperatures(logits, {"imu": present["imu"][:3], "camera": present["camera"][:3]})


def test_json_round_trip_keeps_every_figure_and_lookup() -> None:
    temps = _temperatures()
    data = json.loads(json.dumps(temps.to_json()))
    back = SubsetTemperatures.from_json(data)
    assert back == temps
    assert back.temperature_for(["imu"]) == 4.0 and back.temperature_for(["camera"]) == 1.5
    assert [s["key"] for s in data["subsets"]] == ["all", "imu"]


def test_bad_state_is_refused() -> None:
    with pytest.raises(BundleError, match="version"):
        SubsetTemperatures.from_json({**_temperatures().to_json(), "version": 99})
    with pytest.raises(BundleError, match="malformed"):
        SubsetTemperatures.from_json({"version": 1, "fields": ["imu"]})
    with pytest.raises(DataError, match="positive number"):
        SubsetTemperatures(fields=("imu",), fallback=0.0, subsets=(), rows=0)
    with pytest.raises(DataError, match="non-empty subset"):
        SubsetTemperatures(fields=("imu",), fallback=1.0, subsets=(_fit(("gps",), 2.0),), rows=0)


def test_plan_covers_singles_and_leave_one_out_first_and_respects_the_cap() -> None:
    few = plan_subsets(["a", "b", "c"])
    assert len(few) == 7 and len(set(few)) == 7  # every non-empty subset of 3 fields
    assert few[:4] == [("a", "b", "c"), ("b", "c"), ("a", "c"), ("a", "b")]
    many = plan_subsets([f"f{i}" for i in range(6)])
    assert len(many) == 1 + 6 + 6  # all, leave-one-out, alone
    assert many[-6:] == [(f"f{i}",) for i in range(6)]
    assert plan_subsets([f"f{i}" for i in range(6)], max_subsets=7) == many[:7]


# --- on a tiny trained model -------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(three_class_table):
    from plait.training.fit import fit_model, prepare

    cfg = Config.from_dict(
        {
            "task": {"label": "y"},
            "fields": {"vec": "embedding", "specs": {"kind": "tabular", "numeric": ["x"]}},
            "model": {"fusion": "concat", "dim": 8, "hidden": 8},
            "train": {"epochs": 10, "lr": 0.01, "progress": False},  # learns the task: ~85 % right
        }
    )
    prepared = prepare(cfg, table=three_class_table(400))
    return prepared, fit_model(prepared).trained


def test_subset_temperatures_do_not_worsen_the_test_nll(trained) -> None:
    from plait.models.inference import run_model

    prepared, model = trained
    temps = fit_subset_temperatures(
        model.model, prepared.tensors, prepared.split.val, model.field_names, min_rows=20
    )
    assert temps.fields == model.field_names and temps.rows == len(prepared.split.val)
    assert set(temps.by_key) == {"all", "specs", "vec"}
    everything = temps.by_key["all"]
    assert everything.fitted and everything.temperature != 1.0
    assert everything.temperature == temps.fallback  # no field is missing: the same rows and outputs
    test = torch.as_tensor(prepared.split.test)
    logits = run_model(model.model, prepared.tensors, test).output
    target = prepared.tensors.target[test]
    present = {f: p[test] for f, p in prepared.tensors.present.items()}
    scaled = temps.apply_temperatures(logits, present)
    assert torch.allclose(scaled, logits / everything.temperature)
    assert negative_log_likelihood(scaled, target) <= negative_log_likelihood(logits, target)


def test_rows_missing_a_field_count_for_the_smaller_subset_once(trained) -> None:
    prepared, model = trained
    tensors = prepared.tensors
    val = torch.as_tensor(prepared.split.val)
    dead = val[: len(val) // 3]  # these rows lost their "specs" field in the data
    specs = tensors.present["specs"].clone()
    specs[dead] = False
    table = TensorTable(
        values=tensors.values,
        present={**tensors.present, "specs": specs},
        masks=tensors.masks,
        target=tensors.target,
    )
    temps = fit_subset_temperatures(model.model, table, val, model.field_names, min_rows=1_000)
    rows = {key: s.rows for key, s in temps.by_key.items()}
    assert rows == {"all": len(val) - len(dead), "vec": len(val), "specs": len(val) - len(dead)}
    assert all(not s.fitted and s.temperature == temps.fallback == 1.0 for s in temps.subsets)
    assert all(s.ece_after == s.ece_before for s in temps.subsets)  # T = 1 changes nothing
