import math

import pytest
import torch

from plait.errors import ConfigError
from plait.modalities.melspec import MelSpectrogram, hz_to_mel, mel_filterbank, mel_to_hz


def sine(freq_hz: float, seconds: float = 0.5, rate: int = 16000) -> torch.Tensor:
    t = torch.arange(int(seconds * rate), dtype=torch.float64) / rate
    return torch.sin(2 * math.pi * freq_hz * t).float()


@pytest.mark.parametrize("freq_hz", [300.0, 1000.0, 3000.0, 6000.0])
def test_sine_energy_peaks_in_the_band_containing_its_frequency(freq_hz: float) -> None:
    mel = MelSpectrogram(sample_rate=16000, n_fft=400, hop_length=160, n_mels=40)
    logmel = mel(sine(freq_hz))  # (40, frames)
    peak = int(logmel.mean(dim=1).argmax())
    fb = mel_filterbank(16000, 400, 40, 0.0, 8000.0)
    bin_of_freq = round(freq_hz / (16000 / 400))
    # The band(s) whose triangle covers the sine's FFT bin; the peak must be one of them.
    covering = set(torch.nonzero(fb[:, bin_of_freq] > 0).flatten().tolist())
    assert peak in covering, (peak, covering)
    # And it is far above a band well away from the tone.
    far = 0 if peak > 20 else 39
    assert float(logmel[peak].mean() - logmel[far].mean()) > 5.0


def test_shapes_frames_and_batch_consistency() -> None:
    mel = MelSpectrogram(sample_rate=8000, n_fft=256, hop_length=80, n_mels=24)
    wave = torch.randn(2, 1000)
    batch = mel(wave)
    assert batch.shape == (2, 24, 1 + 1000 // 80)
    single = mel(wave[1])
    assert single.shape == (24, 1 + 1000 // 80)
    assert torch.allclose(single, batch[1], atol=1e-4)
    assert torch.isfinite(batch).all()


def test_short_clip_and_silence_are_finite() -> None:
    mel = MelSpectrogram(sample_rate=16000, n_fft=400, hop_length=160, n_mels=40)
    short = mel(torch.randn(10))  # shorter than n_fft // 2: reflection padding would fail
    assert short.shape == (40, 1)
    silent = mel(torch.zeros(1600))
    assert torch.allclose(silent, torch.full_like(silent, math.log(1e-6)))


def test_filterbank_triangles_are_unit_peaked_and_ordered() -> None:
    fb = mel_filterbank(16000, 512, 20, 0.0, 8000.0)
    assert fb.shape == (20, 257)
    assert float(fb.max()) <= 1.0 + 1e-6 and float(fb.min()) >= 0.0
    peaks = fb.argmax(dim=1)
    assert torch.all(peaks[1:] > peaks[:-1])  # centres rise with the band index
    assert mel_to_hz(hz_to_mel(torch.tensor(1234.0).numpy())) == pytest.approx(1234.0)


def test_invalid_arguments_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="f_max"):
        MelSpectrogram(sample_rate=16000, n_fft=400, hop_length=160, n_mels=40, f_max=9000.0)
    with pytest.raises(ConfigError, match="n_mels"):
        MelSpectrogram(sample_rate=16000, n_fft=400, hop_length=160, n_mels=0)
