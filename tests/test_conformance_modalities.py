"""Every registered modality through the same contract: fit on training rows, JSON state round
trip, absent values as Absent (never invented), collate with zero fill, and the encoder contract."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import soundfile as sf
import torch
from PIL import Image

from plait.modalities import MODALITIES
from plait.modalities.base import NotFittedError
from plait.testing.conformance import check_encoder
from plait.types import Absent

Sample = tuple[dict[str, Any], pl.DataFrame, list[dict[str, Any]]]  # options, train table, rows to load


def _text(root: Path) -> Sample:
    texts = ["pump makes a grinding noise", "all fine", "seal is leaking water", "hot housing"]
    return {}, pl.DataFrame({"f": texts}), [{"f": "grinding noise again"}, {"f": "   "}, {"f": "leak"}]


def _image(root: Path) -> Sample:
    for i in range(3):
        Image.new("RGB", (20, 16), (60 * i, 100, 30)).save(root / f"{i}.png")
    (root / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    table = pl.DataFrame({"f": ["0.png", "1.png", "2.png"]})
    return {"size": 16}, table, [{"f": "0.png"}, {"f": "bad.png"}, {"f": "2.png"}]


def _audio(root: Path) -> Sample:
    t = np.arange(4000) / 8000
    for i in range(3):
        sf.write(root / f"{i}.wav", 0.3 * np.sin(2 * np.pi * (200 + 100 * i) * t[: 2000 + 1000 * i]), 8000)
    (root / "empty.wav").write_bytes(b"")
    options = {"sample_rate": 8000, "max_seconds": 0.5, "n_mels": 16, "n_fft": 256, "hop_length": 128}
    table = pl.DataFrame({"f": ["0.wav", "1.wav", "2.wav"]})
    return options, table, [{"f": "1.wav"}, {"f": "empty.wav"}, {"f": "0.wav"}]


def _timeseries(root: Path) -> Sample:
    rng = np.random.default_rng(0)
    series = [rng.normal(size=(n, 2)).tolist() for n in (30, 40, 25)]
    nan = [[float("nan"), float("nan")]] * 10
    return {}, pl.DataFrame({"f": series}), [{"f": series[0]}, {"f": nan}, {"f": series[2][:12]}]


def _tabular(root: Path) -> Sample:
    table = pl.DataFrame({"a": [1.0, 2.0, 3.5], "b": ["x", "y", "x"]})
    options = {"numeric": ["a"], "categorical": ["b"]}
    return options, table, [{"a": 2.0, "b": "y"}, {"a": None, "b": None}, {"a": float("nan"), "b": "x"}]


def _embedding(root: Path) -> Sample:
    table = pl.DataFrame({"f": [[0.1, 0.2, 0.3], [0.0, -1.0, 2.0], [1.0, 1.0, 1.0]]})
    return {}, table, [{"f": [0.5, 0.5, 0.5]}, {"f": None}, {"f": [1.0, 2.0, 3.0]}]


SAMPLES: dict[str, Callable[[Path], Sample]] = {
    "text": _text,
    "image": _image,
    "audio": _audio,
    "timeseries": _timeseries,
    "tabular": _tabular,
    "embedding": _embedding,
}


def test_every_registered_kind_has_a_sample():
    assert sorted(SAMPLES) == MODALITIES.names()


@pytest.mark.parametrize("kind", MODALITIES.names())
def test_modality_contract(kind: str, tmp_path: Path):
    torch.manual_seed(0)
    options, table, rows = SAMPLES[kind](tmp_path)
    cls = MODALITIES.get(kind)
    modality = cls("f", **options)
    assert modality.kind == kind and modality.columns()
    with pytest.raises(NotFittedError, match=f"field 'f': the {kind} modality is not fitted"):
        modality.get_state()
    modality.fit(table, tmp_path)

    state = json.loads(json.dumps(modality.get_state()))  # plain JSON, no pickle
    restored = cls("f", **options)
    restored.set_state(state)

    loaded = [modality.load(row, tmp_path) for row in rows]
    again = [restored.load(row, tmp_path) for row in rows]
    assert isinstance(loaded[1], Absent), (
        f"{kind}: an empty/broken value must load as Absent, got {loaded[1]!r}"
    )
    assert isinstance(loaded[0], torch.Tensor) and isinstance(loaded[2], torch.Tensor)
    for a, b in zip(loaded, again, strict=True):
        if isinstance(a, torch.Tensor):
            assert isinstance(b, torch.Tensor), kind
            assert torch.allclose(a, b, rtol=0, atol=0, equal_nan=True), (
                f"{kind}: state round trip changed load()"
            )
        else:
            assert a == b

    items = [x if isinstance(x, torch.Tensor) else None for x in loaded]
    values, mask = modality.collate(items)
    assert values.shape[0] == 3
    assert torch.count_nonzero(values[1]) == 0, f"{kind}: an absent item must be zero-filled"
    if mask is not None:
        assert mask.shape[0] == 3 and mask.dtype == torch.bool
    present = torch.tensor([True, False, True])
    check_encoder(modality.build_encoder(16), values, present, mask)
    check_encoder(restored.build_encoder(16), values, present, mask)
