"""A pretrained field in the export: the graph takes the frozen backbone's vector (the backbone
runs in Python, while rows load, as with torch), and a fusion without weights exports too."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import torch

from plait.config import Config
from plait.data.dataset import load_table
from plait.export import export_onnx
from plait.export.check import graph_diffs
from plait.export.session import OnnxModel
from plait.pretrained.backbone import BackboneIdentity
from plait.pretrained.registry import BACKBONES, BackboneSpec
from plait.workflow.train import train

DIM = 12
WORDS = ["quiet", "rattle", "hum", "grind", "click", "whine"]


class HashText:
    """A stand-in frozen text backbone: a fixed DIM-vector per text."""

    def __init__(self) -> None:
        self.identity = BackboneIdentity("hash-text", "text", "1", "0" * 64, DIM, "whole text")

    def check(self) -> None:
        return None

    def encode(self, items: Sequence[Any]) -> np.ndarray:
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:DIM], dtype=np.uint8) for t in items]
        return (np.stack(rows).astype(np.float32) / 128.0) - 1.0


@pytest.fixture
def hash_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PLAIT_CACHE_DIR", str(tmp_path / "cache"))
    BACKBONES.register("hash-text", BackboneSpec("text", "test double", lambda s, t: HashText()))
    yield
    BACKBONES.unregister("hash-text")


def table(n: int = 120, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    notes = [f"{WORDS[2 * c]} {WORDS[2 * c + 1] if rng.random() < 0.5 else WORDS[2 * c]}" for c in y]
    notes[3] = ""  # an empty note: the field is absent in that row
    return pl.DataFrame({"note": notes, "x": y + rng.normal(size=n), "y": [f"c{v}" for v in y]})


def test_a_pretrained_field_enters_the_graph_as_its_backbones_vector(hash_text: None, tmp_path: Path) -> None:
    config = Config.from_dict(
        {
            "task": {"label": "y"},
            "data": {"allow_leaks": ["note"]},
            "fields": {
                "note": {"kind": "text", "encoder": "hash-text"},
                "x": {"kind": "tabular", "numeric": ["x"]},
            },
            "model": {"fusion": "concat", "dim": 8, "hidden": 8},
            "train": {"epochs": 2, "lr": 0.01, "progress": False},
        }
    )
    rows = table()
    trained = train(config, table=rows, out=tmp_path / "bundle").trained
    result = export_onnx(tmp_path / "bundle", tmp_path / "bundle.onnx")
    note = next(spec for spec in result.manifest.fields if spec.field == "note")
    assert (note.dtype, note.shape, note.has_mask) == ("float32", (1, DIM), False)  # the vector, no tokens
    assert result.manifest.outputs == ("output", "note.pooled", "x.pooled")  # concat fusion: no weights
    tensors, _ = load_table(rows, trained.modalities, Path("."))
    assert not bool(tensors.present["note"][3])
    batch = tensors.batch(torch.arange(len(rows)))
    diffs = graph_diffs(trained.model, OnnxModel.load(result.folder), batch)
    assert len(diffs) == 4 and max(diffs.values()) <= 1e-4
