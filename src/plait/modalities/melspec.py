"""Log-mel spectrograms on torch, with no audio library beyond torch itself.

`MelSpectrogram(sample_rate=16000, n_fft=400, hop_length=160, n_mels=40)(wave)` turns a waveform
[T] or [B, T] into log(mel power + 1e-6) of shape [n_mels, frames] or [B, n_mels, frames], with
frames = 1 + T // hop_length (centred frames, as `torch.stft(center=True)` gives them).
The filterbank uses the HTK mel scale with unnormalised triangles (peak 1), like torchaudio's default.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from plait.errors import ConfigError

LOG_FLOOR = 1e-6


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """HTK mel scale."""
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> Tensor:
    """Triangular filters FloatTensor[n_mels, n_fft // 2 + 1], centres evenly spaced in mel.

    Each triangle rises from the previous centre to its own and falls to the next one,
    evaluated at the FFT bin frequencies (linear in Hz between the edges).
    """
    fft_hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)  # (F,)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(np.array(f_min)), hz_to_mel(np.array(f_max)), n_mels + 2))
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]  # (M, 1) each
    rising = (fft_hz[None, :] - lower) / (centre - lower)  # (M, F)
    falling = (upper - fft_hz[None, :]) / (upper - centre)  # (M, F)
    weights = np.clip(np.minimum(rising, falling), 0.0, None)
    return torch.from_numpy(weights.astype(np.float32))


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"MelSpectrogram: {name} must be a positive integer, got {value!r}")
    return value


class MelSpectrogram(nn.Module):
    """Waveform → log-mel. The window and filterbank are non-persistent buffers (rebuilt from
    the constructor arguments, never saved)."""

    window: Tensor
    filterbank: Tensor

    def __init__(
        self,
        sample_rate: int,
        n_fft: int,
        hop_length: int,
        n_mels: int,
        f_min: float = 0.0,
        f_max: float | None = None,
    ) -> None:
        super().__init__()
        self.sample_rate = _check_positive_int("sample_rate", sample_rate)
        self.n_fft = _check_positive_int("n_fft", n_fft)
        self.hop_length = _check_positive_int("hop_length", hop_length)
        self.n_mels = _check_positive_int("n_mels", n_mels)
        nyquist = sample_rate / 2.0
        top = nyquist if f_max is None else float(f_max)
        if not (math.isfinite(f_min) and 0.0 <= f_min < top <= nyquist):
            raise ConfigError(
                f"MelSpectrogram: need 0 <= f_min < f_max <= sample_rate / 2 = {nyquist:g} Hz, "
                f"got f_min={f_min!r}, f_max={f_max!r}; lower f_max or raise sample_rate"
            )
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)
        fb = mel_filterbank(sample_rate, n_fft, n_mels, float(f_min), top)
        self.register_buffer("filterbank", fb, persistent=False)

    def forward(self, wave: Tensor) -> Tensor:
        """wave [T] or [B, T] float → log-mel [n_mels, frames] or [B, n_mels, frames]."""
        if wave.dim() not in (1, 2):
            raise ValueError(
                f"MelSpectrogram expects a waveform [T] or [B, T], got shape {tuple(wave.shape)}"
            )
        # Zero ("constant") padding rather than reflection: reflection fails on clips shorter
        # than n_fft // 2 samples, and a short clip is a value, not an error.
        spec = torch.stft(
            wave.float(),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )  # (..., T) -> (..., F, frames)
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(self.filterbank, power)  # (M, F) @ (..., F, frames) -> (..., M, frames)
        return torch.log(mel + LOG_FLOOR)
