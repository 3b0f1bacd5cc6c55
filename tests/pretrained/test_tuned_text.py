"""`finetune: N` on a text field with a pretrained transformer: only the last N layers (and the
head) learn, at a scaled learning rate; the tuned weights travel in the bundle and predict the same
after loading; a field whose encoder cannot be tuned says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

pytest.importorskip("transformers", reason="the pretrained encoders need plait[pretrained]")

from plait import Predictor
from plait.build import build_modality
from plait.config import FieldSpec
from plait.errors import ConfigError
from plait.pretrained.huggingface import MINILM, offline_transformers
from plait.pretrained.tuned_text import LR_SCALE


def _table(n: int = 60) -> pl.DataFrame:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, n)
    phrases = [["quiet and cool", "running smoothly"], ["grinding and hot", "it rattles loudly"]]
    notes = [f"{phrases[c][int(rng.integers(0, 2))]} on day {int(rng.integers(0, 9))}" for c in y]
    return pl.DataFrame({"note": notes, "x": rng.normal(size=n), "y": [f"c{c}" for c in y]})


def test_only_the_last_layer_learns_and_the_bundle_keeps_it(tmp_path: Path):
    table = _table()
    predictor = Predictor(
        "y",
        fields={
            "note": {"kind": "text", "encoder": "minilm", "finetune": 1, "max_tokens": 16},
            "x": {"kind": "tabular", "numeric": ["x"]},
        },
        fusion="concat",
        epochs=2,
        progress=False,
        allow_leaks=["note"],
    ).fit(table)
    tuned = predictor.trained.model.encoders["note"].model
    original = offline_transformers().AutoModel.from_pretrained(
        str(MINILM.path().parent), local_files_only=True
    )
    before = dict(original.named_parameters())
    changed = {n for n, p in tuned.named_parameters() if not torch.equal(p.detach(), before[n].detach())}
    assert changed and all(n.startswith("encoder.layer.5.") for n in changed)
    assert tuned.pooler is None  # unused by the mean: no trainable parameter without a gradient
    assert any(n.startswith("encoder.layer.5.") for n in changed)
    assert all(getattr(p, "plait_lr_scale", None) == LR_SCALE for p in tuned.encoder.layer[5].parameters())
    assert not any(p.requires_grad for p in tuned.embeddings.parameters())

    rows = [{"note": "grinding and hot on day 2", "x": 0.0}, {"note": "quiet", "x": 1.0}, {"x": 0.5}]
    first = predictor.predict(rows)
    predictor.save(tmp_path / "bundle")
    again = Predictor.load(tmp_path / "bundle").predict(rows)
    for a, b in zip(first, again, strict=True):
        assert a.prediction == b.prediction
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-6)


@pytest.mark.parametrize(
    ("kind", "options", "expected"),
    [
        ("text", {"encoder": "minilm", "finetune": 7}, r"finetune: 7 layers asked, the model has 6"),
        ("text", {"encoder": "minilm", "finetune": -1}, r"fields\.f\.finetune: expected an integer >= 1"),
        ("audio", {"encoder": "whisper-tiny.en", "finetune": 1}, r"fields\.f\.finetune: unknown option"),
        ("text", {"encoder": "minilm", "finetune": None}, r"fields\.f\.finetune: expected an integer >= 1"),
    ],
)
def test_a_finetune_that_cannot_be_done_is_refused(kind: str, options: dict[str, object], expected: str):
    with pytest.raises(ConfigError, match=expected):
        field = build_modality(FieldSpec(name="f", kind=kind, options=options))
        field.fit(pl.DataFrame({"f": ["a note"]}), Path("."))
        field.build_encoder(8)
