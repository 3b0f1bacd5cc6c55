"""Imputing a missing field's embedding: fitted after training, opt-in at prediction, marked in the
answer, calibrated as subsets of its own, with the nearest real items as examples."""

from __future__ import annotations

import polars as pl
import pytest
import torch
from typer.testing import CliRunner

from plait.cli.main import app
from plait.errors import ConfigError
from plait.models.calibration import SubsetFit, SubsetTemperatures, subset_key
from plait.models.imputer import EmbeddingImputer, impute_encoded
from plait.predictor import Predictor
from plait.types import EncoderOutput

runner = CliRunner()


@pytest.fixture(scope="module")
def table(impute_run):
    return impute_run.bundle_path.parent / "pairs.parquet"


def test_imputer_is_fitted_and_evaluated(impute_run) -> None:
    metrics = impute_run.trained.metrics
    fit = metrics["training"]["imputer"]
    assert set(fit["cosine"]) == {"va", "vb"}
    assert min(fit["cosine"].values()) > 0.8  # each view is a function of the same latent
    rows = {r["field"]: r for r in metrics["space"]["imputation"]}
    assert set(rows) == {"va", "vb"}
    assert all(0.0 <= r["absent"] <= 1.0 and 0.0 <= r["imputed"] <= 1.0 for r in rows.values())


def test_answers_mark_imputed_fields_and_only_when_asked(impute_run, table) -> None:
    predictor = Predictor.load(impute_run.bundle_path)
    df = pl.read_parquet(table)
    row = next(i for i in range(df.height) if df["va"][i] is not None)
    records = [{"va": df["va"][row]}, {"vb": df["vb"][row]}, {"va": df["va"][row], "vb": df["vb"][row]}, {}]
    plain = predictor.predict(records)
    filled = predictor.predict(records, impute="embedding")
    assert (plain[0].fields_used, plain[0].fields_imputed, plain[0].fields_missing) == (("va",), (), ("vb",))
    assert (filled[0].fields_used, filled[0].fields_imputed, filled[0].fields_missing) == (
        ("va",),
        ("vb",),
        (),
    )
    assert filled[1].fields_imputed == ("va",) and filled[0].degraded
    assert filled[2].fields_imputed == () and not filled[2].degraded
    assert filled[2].probabilities == plain[2].probabilities  # nothing to impute: the same answer
    assert filled[3].fields_imputed == () and filled[3].fields_missing == (
        "va",
        "vb",
    )  # nothing to impute from
    assert filled[0].probabilities != plain[0].probabilities  # the fusion read the imputed field
    assert filled[0].to_json()["fields_imputed"] == ["vb"]
    frame = predictor.predict(records, impute="embedding", as_frame=True)
    assert frame["fields_imputed"].to_list() == ["vb", "va", "", ""]


def test_examples_are_the_real_items_nearest_the_imputed_embedding(impute_run, table) -> None:
    predictor = Predictor.load(impute_run.bundle_path)
    df = pl.read_parquet(table)
    rows = [i for i in range(60) if df["va"][i] is not None]
    answers = predictor.predict(
        [{"va": df["va"][i]} for i in rows], impute="embedding", examples_from=table, examples=10
    )
    assert all(a.examples is not None and len(a.examples["vb"]) == 10 for a in answers)
    found = [i in [e.row for e in a.examples["vb"]] for i, a in zip(rows, answers, strict=True)]
    assert sum(found) >= 0.6 * len(rows)  # the row's own vb among the 10 nearest of 400, mostly
    first = answers[0].examples["vb"][0]
    assert first.score >= answers[0].examples["vb"][-1].score and "vb" in first.values
    assert (
        "examples" in answers[0].to_json()
        and "examples" not in predictor.predict([{"va": df["va"][rows[0]]}])[0].to_json()
    )


def test_calibration_keeps_imputed_subsets_apart(impute_run) -> None:
    calibration = impute_run.trained.calibration
    assert calibration is not None
    keys = set(calibration.by_key)
    assert {"va|imputed:vb", "vb|imputed:va"} <= keys and {"va", "vb", "all"} <= keys
    again = SubsetTemperatures.from_json(calibration.to_json())
    assert again.by_key == calibration.by_key


def test_imputed_temperatures_are_looked_up_and_applied() -> None:
    def fit(fields, t, imputed=()):
        return SubsetFit(fields, t, 40, 5, 0.1, 0.05, True, imputed=imputed)

    temps = SubsetTemperatures(
        fields=("a", "b"), fallback=1.0, subsets=(fit(("a",), 2.0), fit(("a",), 4.0, ("b",))), rows=80
    )
    assert temps.temperature_for(["a"]) == 2.0
    assert temps.temperature_for(["a"], ["b"]) == 4.0
    assert temps.temperature_for(["b"], ["a"]) == 1.0  # not fitted: the fallback
    logits = torch.ones(3, 2)
    present = {"a": torch.tensor([True, True, False]), "b": torch.tensor([False, False, True])}
    imputed = {"b": torch.tensor([False, True, False])}
    scaled = temps.apply_temperatures(logits, present, imputed)
    assert scaled[:, 0].tolist() == [0.5, 0.25, 1.0]
    assert subset_key(["a"], ("a", "b"), ["b"]) == "a|imputed:b"
    with pytest.raises(Exception, match="apart from the imputed ones"):
        SubsetTemperatures(fields=("a", "b"), fallback=1.0, subsets=(fit(("a",), 2.0, ("a",)),), rows=1)


def test_impute_encoded_fills_only_rows_that_have_another_field() -> None:
    torch.manual_seed(0)
    imputer = EmbeddingImputer(("a", "b"), {"a": 5, "b": 6}, dim=4, hidden=8)
    present = {"a": torch.tensor([True, False, False]), "b": torch.tensor([False, True, False])}
    z = {"a": torch.randn(3, 4), "b": torch.randn(3, 4)}
    encoded = {
        "a": EncoderOutput(tokens=torch.randn(3, 2, 5), pooled=torch.randn(3, 5)),
        "b": EncoderOutput(tokens=torch.randn(3, 1, 6), pooled=torch.randn(3, 6)),
    }
    with torch.no_grad():
        out = impute_encoded(imputer, z, encoded, present)
    assert out.imputed["b"].tolist() == [True, False, False]
    assert out.imputed["a"].tolist() == [False, True, False]
    assert out.present["a"].tolist() == [True, True, False]  # row 2 has nothing to impute from
    assert out.encoded["a"].token_mask is not None and out.encoded["a"].token_mask[1].tolist() == [
        True,
        False,
    ]
    assert torch.equal(out.encoded["a"].pooled[0], encoded["a"].pooled[0])  # observed rows untouched
    assert float(out.embedded["b"][1].abs().sum()) == 0.0 and float(
        out.embedded["b"][0].norm()
    ) == pytest.approx(1.0, abs=1e-5)


def test_impute_asks_for_a_bundle_that_can(space_run, impute_run) -> None:
    without = Predictor.load(space_run.bundle_path)
    with pytest.raises(ConfigError, match=r"no embedding imputer; train it with `space: \{impute: true\}`"):
        without.predict([{"va": [0.0] * 8}], impute="embedding")
    able = Predictor.load(impute_run.bundle_path)
    with pytest.raises(ConfigError, match=r"did you mean 'embedding'"):
        able.predict([{"va": [0.0] * 8}], impute="embeding")
    with pytest.raises(ConfigError, match=r"examples are of imputed fields"):
        able.predict([{"va": [0.0] * 8}], examples_from="x.parquet")


def test_cli_predict_imputes_and_names_examples(impute_run, table, tmp_path) -> None:
    partial = tmp_path / "partial.parquet"
    pl.read_parquet(table).slice(0, 6).with_columns(pl.lit(None).alias("vb")).write_parquet(partial)
    out = tmp_path / "preds.parquet"
    result = runner.invoke(
        app,
        ["predict", str(impute_run.bundle_path), str(partial), "-o", str(out), "--impute", "embedding",
         "--examples-from", str(table), "--examples", "2", "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "with imputed fields" in result.output
    preds = pl.read_parquet(out)
    assert "vb" in preds["fields_imputed"].to_list()[1]
    assert preds["examples"].str.contains('"vb"').sum() >= 1
