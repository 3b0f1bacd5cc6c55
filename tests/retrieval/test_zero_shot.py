"""Zero-shot classification through a text field in the shared space: evaluated in metrics.json,
available from the Python API and `plait predict --zero-shot`."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from plait.cli.main import app
from plait.config import Config
from plait.errors import ConfigError
from plait.predictor import Predictor

runner = CliRunner()
WORDS = ["pump", "casing", "reading", "checked", "today", "noted", "site", "shift"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from plait.workflow.train import train

    rng = np.random.default_rng(0)
    n = 360
    y = rng.integers(0, 3, n)
    names = np.array(["alpha", "beta", "gamma"])
    centres = rng.normal(size=(3, 6)) * 2
    notes = [" ".join([names[c], *rng.choice(WORDS, 3)]) for c in y]
    folder = tmp_path_factory.mktemp("zeroshot")
    pl.DataFrame(
        {
            "note": notes,
            "vec": [list(v) for v in centres[y] + rng.normal(size=(n, 6))],
            "y": names[y].tolist(),
        }
    ).write_parquet(folder / "t.parquet")
    cfg = Config.from_dict(
        {
            "data": {"path": "t.parquet", "split": {"kind": "random"}},
            "task": {"label": "y"},
            "fields": {"note": "text", "vec": "embedding"},
            "model": {"dim": 32},
            "space": {"dim": 16, "prompt": "{label} pump"},
            "train": {
                "stages": [{"kind": "contrastive", "epochs": 20}, {"kind": "end_to_end", "epochs": 3}],
                "progress": False,
                "patience": 20,
            },
        },
        base_dir=folder,
    )
    return train(cfg, out=folder / "bundle")


def test_zero_shot_is_evaluated(run) -> None:
    shots = {z["field"]: z for z in run.trained.metrics["space"]["zero_shot"]}
    assert set(shots) == {"vec"}  # the text field classifies the other; never itself
    assert shots["vec"]["prompt"] == "{label} pump"
    assert shots["vec"]["accuracy"] > shots["vec"]["chance"] + 0.2


def test_zero_shot_from_the_api_and_cli(run, tmp_path) -> None:
    predictor = Predictor.load(run.bundle_path)
    table = run.bundle_path.parent / "t.parquet"
    df = pl.read_parquet(table)
    answers = predictor.zero_shot(df, field="vec")
    accuracy = np.mean([a.label == y for a, y in zip(answers, df["y"].to_list(), strict=True)])
    assert accuracy > 0.6
    assert set(answers[0].scores) == {"alpha", "beta", "gamma"}
    absent = predictor.zero_shot([{"note": "alpha"}], field="vec")
    assert absent[0].label is None and absent[0].scores == {}  # nothing guessed for an absent field
    two = predictor.zero_shot(df.head(4), field="vec", labels=["alpha", "beta"], prompt="{label}")
    assert all(a.label in ("alpha", "beta") for a in two)
    with pytest.raises(ConfigError, match=r"aligned with 0 text fields"):
        predictor.zero_shot(df.head(2), field="note")
    out = tmp_path / "zs.csv"
    result = runner.invoke(
        app,
        ["predict", str(run.bundle_path), str(table), "-o", str(out), "--zero-shot", "vec", "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    written = pl.read_csv(out)
    assert written.columns == ["prediction", "score_alpha", "score_beta", "score_gamma"]
    assert written["prediction"].to_list() == [a.label for a in answers]


def test_a_pretrained_text_field_aligns_through_its_head(tmp_path) -> None:
    """MiniLM's backbone stays frozen (its vectors come from the cache-backed loader); the field's
    small head and the projection learn the space, and zero-shot reads prompts through them."""
    from plait.workflow.train import train

    rng = np.random.default_rng(1)
    n = 240
    y = rng.integers(0, 3, n)
    names = np.array(["bearing", "seal", "impeller"])
    centres = rng.normal(size=(3, 6)) * 2
    notes = [f"{names[c]} {rng.choice(WORDS)} {rng.choice(WORDS)}" for c in y]
    pl.DataFrame(
        {
            "note": notes,
            "vec": [list(v) for v in centres[y] + rng.normal(size=(n, 6))],
            "y": names[y].tolist(),
        }
    ).write_parquet(tmp_path / "t.parquet")
    cfg = Config.from_dict(
        {
            "data": {"path": "t.parquet", "split": {"kind": "random"}, "allow_leaks": ["note"]},
            "task": {"label": "y"},
            "fields": {"note": {"kind": "text", "encoder": "minilm"}, "vec": "embedding"},
            "model": {"dim": 32},
            "space": {"dim": 16, "prompt": "{label} problem"},
            "train": {
                "stages": [{"kind": "contrastive", "epochs": 15}, {"kind": "end_to_end", "epochs": 2}],
                "progress": False,
                "patience": 15,
            },
        },
        base_dir=tmp_path,
    )
    result = train(cfg, out=tmp_path / "bundle")
    space = result.trained.metrics["space"]
    forward = next(d for d in space["retrieval"] if d["query"] == "vec")
    assert forward["label"]["recall"]["1"] > 0.6
    shot = space["zero_shot"][0]
    assert shot["field"] == "vec" and shot["accuracy"] > shot["chance"] + 0.2
    assert not any(
        name.startswith("encoders.note.backbone") for name, _ in result.trained.model.named_parameters()
    )
