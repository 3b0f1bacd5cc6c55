"""Every registered modality through `plait.testing.check_modality`: declarations, fit on training
rows, load of a present, an empty and an undecodable value, collate with zero fill, the encoder under
every presence pattern, JSON and preprocessing.json round trips, a request through the server's
parser, every perturbation family, and the provenance fingerprint of the files it reads."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf
from PIL import Image

from plait.modalities import MODALITIES
from plait.testing import ModalitySample, check_modality


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def _text(root: Path) -> ModalitySample:
    texts = ["pump makes a grinding noise", "all fine", "seal is leaking water", "hot housing"]
    return ModalitySample(
        options={},
        train=pl.DataFrame({"f": texts}),
        present={"f": "grinding noise again"},
        empty={"f": "   "},
        broken={"f": None},
        request={"f": "grinding noise again"},
        root=root,
    )


def _image(root: Path) -> ModalitySample:
    for i in range(3):
        Image.new("RGB", (20, 16), (60 * i, 100, 30)).save(root / f"{i}.png")
    (root / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return ModalitySample(
        options={"size": 16},
        train=pl.DataFrame({"f": ["0.png", "1.png", "2.png"]}),
        present={"f": "0.png"},
        empty={"f": ""},
        broken={"f": "bad.png"},
        request={"f": _b64(root / "0.png")},
        root=root,
    )


def _audio(root: Path) -> ModalitySample:
    t = np.arange(4000) / 8000
    for i in range(3):
        sf.write(root / f"{i}.wav", 0.3 * np.sin(2 * np.pi * (200 + 100 * i) * t[: 2000 + 1000 * i]), 8000)
    (root / "bad.wav").write_bytes(b"RIFF....WAVEfmt broken")
    options = {"sample_rate": 8000, "max_seconds": 0.5, "n_mels": 16, "n_fft": 256, "hop_length": 128}
    return ModalitySample(
        options=options,
        train=pl.DataFrame({"f": ["0.wav", "1.wav", "2.wav"]}),
        present={"f": "1.wav"},
        empty={"f": None},
        broken={"f": "bad.wav"},
        request={"f": _b64(root / "1.wav")},
        root=root,
    )


def _timeseries(root: Path) -> ModalitySample:
    rng = np.random.default_rng(0)
    series = [rng.normal(size=(n, 2)).tolist() for n in (30, 40, 25)]
    return ModalitySample(
        options={},
        train=pl.DataFrame({"f": series}),
        present={"f": series[0]},
        empty={"f": []},
        broken={"f": [[float("nan"), float("nan")]] * 10},
        request={"f": series[0]},
        root=root,
    )


def _tabular(root: Path) -> ModalitySample:
    table = pl.DataFrame({"a": [1.0, 2.0, 3.5], "b": ["x", "y", "x"]})
    return ModalitySample(
        options={"numeric": ["a"], "categorical": ["b"]},
        train=table,
        present={"a": 2.0, "b": "y"},
        empty={"a": None, "b": None},
        broken={"a": float("nan"), "b": None},
        request={"a": 2.0, "b": "y"},
        root=root,
        name="t",
    )


def _embedding(root: Path) -> ModalitySample:
    table = pl.DataFrame({"f": [[0.1, 0.2, 0.3], [0.0, -1.0, 2.0], [1.0, 1.0, 1.0]]})
    return ModalitySample(
        options={},
        train=table,
        present={"f": [0.5, 0.5, 0.5]},
        empty={"f": None},
        broken={"f": [float("nan")] * 3},
        request={"f": [0.5, 0.5, 0.5]},
        root=root,
    )


def _video(root: Path) -> ModalitySample:
    pytest.importorskip("av")
    from plait.testing.media import write_test_video

    for i in range(3):
        write_test_video(root / f"{i}.mp4", frames=4 + 2 * i, fps=4, size=(32, 24))
    (root / "bad.mp4").write_bytes(b"not a video" * 10)
    return ModalitySample(
        options={"size": 16, "frames": 4},
        train=pl.DataFrame({"f": ["0.mp4", "1.mp4", "2.mp4"]}),
        present={"f": "0.mp4"},
        empty={"f": ""},
        broken={"f": "bad.mp4"},
        request={"f": _b64(root / "0.mp4")},
        root=root,
    )


SAMPLES: dict[str, Callable[[Path], ModalitySample]] = {
    "text": _text,
    "image": _image,
    "audio": _audio,
    "timeseries": _timeseries,
    "tabular": _tabular,
    "embedding": _embedding,
    "video": _video,
}


# The same samples read through a pretrained encoder (plait[pretrained]): the registry builds the
# pretrained field from the `encoder` option, and it must keep the whole contract too.
PRETRAINED = {
    "text": {"encoder": "minilm"},
    "text-tuned": {"encoder": "minilm", "finetune": 1},
    "image": {"encoder": "efficientnet-lite0"},
    "audio": {"encoder": "whisper-tiny.en", "max_seconds": 0.5},
}


def test_every_registered_kind_has_a_sample():
    assert sorted(SAMPLES) == MODALITIES.names()


@pytest.mark.parametrize("kind", MODALITIES.names())
def test_modality_contract(kind: str, tmp_path: Path):
    check_modality(MODALITIES.get(kind), SAMPLES[kind](tmp_path))


@pytest.mark.parametrize("case", sorted(PRETRAINED))
def test_pretrained_field_contract(case: str, tmp_path: Path):
    pytest.importorskip("transformers", reason="the pretrained encoders need plait[pretrained]")
    from plait.pretrained.kinds import pretrained_class

    kind = case.partition("-")[0]
    sample = replace(SAMPLES[kind](tmp_path), options=PRETRAINED[case])
    check_modality(pretrained_class("f", kind, PRETRAINED[case]), sample)
