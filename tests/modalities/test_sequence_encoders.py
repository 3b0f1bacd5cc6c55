"""The timeseries and audio encoders: the `encoder` option, what a saved bundle restores, the
multi-scale encoder's statistics token and per-row centring, and SpecAugment."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import torch

from plait.errors import BundleError, ConfigError
from plait.modalities.audio import AudioModality
from plait.modalities.conv import MaskedConv1dEncoder
from plait.modalities.multiscale import MultiScaleSeriesEncoder
from plait.modalities.spec_augment import spec_augment
from plait.modalities.spectrogram_cnn import SpectrogramEncoder
from plait.modalities.summary import masked_channel_stats
from plait.modalities.timeseries import TimeseriesModality

ROOT = Path(".")


def fitted_series(**options: object) -> TimeseriesModality:
    modality = TimeseriesModality("imu", **options)  # type: ignore[arg-type]
    table = pl.DataFrame({"imu": [[[1.0, 10.0], [3.0, 12.0]], [[5.0, 30.0], [7.0, 20.0]]]})
    modality.fit(table, ROOT)
    return modality


def test_defaults_and_the_other_encoder_on_request() -> None:
    assert isinstance(fitted_series().build_encoder(8), MaskedConv1dEncoder)
    assert isinstance(fitted_series(encoder="multiscale").build_encoder(8), MultiScaleSeriesEncoder)
    audio = AudioModality("sound", n_mels=8)
    assert isinstance(audio.build_encoder(8), SpectrogramEncoder) and audio.build_encoder(8).augment
    assert not AudioModality("sound", n_mels=8, augment=False).build_encoder(8).augment
    assert isinstance(
        AudioModality("sound", n_mels=8, encoder="conv1d").build_encoder(8), MaskedConv1dEncoder
    )


def test_an_unknown_encoder_is_a_config_error_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"fields\.imu\.encoder: .*'multiscal'.*did you mean 'multiscale'"):
        TimeseriesModality("imu", encoder="multiscal")
    with pytest.raises(ConfigError, match=r"fields\.sound\.encoder: expected one of conv2d, conv1d, got 2"):
        AudioModality("sound", encoder=2)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"fields\.sound\.augment: expected true or false, got 'yes'"):
        AudioModality("sound", augment="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"fields\.sound\.centre_bands: expected true or false, got 1"):
        AudioModality("sound", centre_bands=1)  # type: ignore[arg-type]


def test_the_state_records_the_encoder_and_an_older_bundle_keeps_conv1d() -> None:
    """A bundle saved before the option existed has no 'encoder' in its state: its weights are
    the plain conv encoder's, so that is what loading it must build."""
    state = json.loads(json.dumps(fitted_series(encoder="multiscale").get_state()))
    assert state["encoder"] == "multiscale"
    restored = TimeseriesModality("imu")
    restored.set_state(state)
    assert isinstance(restored.build_encoder(8), MultiScaleSeriesEncoder)
    older = {k: v for k, v in state.items() if k != "encoder"}
    restored.set_state(older)
    assert restored.encoder == "conv1d" and isinstance(restored.build_encoder(8), MaskedConv1dEncoder)
    with pytest.raises(BundleError, match=r"timeseries state is malformed.*encoder"):
        restored.set_state({**state, "encoder": "transformer"})

    audio_state = {"column": "sound", "sample_rate": 16000, "n_mels": 40, "mean": 0.0, "std": 1.0}
    audio = AudioModality("sound")
    audio.set_state(audio_state)
    assert audio.encoder == "conv1d"
    audio.set_state({**audio_state, "encoder": "conv2d"})
    assert isinstance(audio.build_encoder(8), SpectrogramEncoder)


def test_statistics_ignore_masked_steps() -> None:
    x = torch.tensor([[[1.0, 3.0, 99.0], [2.0, 2.0, -99.0]]])  # (B=1, C=2, L=3)
    steps = torch.tensor([[True, True, False]])
    stats = masked_channel_stats(x, steps)  # (1, 2, 4): mean, std, min, max
    assert stats[0, 0].tolist() == [2.0, 1.0, 1.0, 3.0] and stats[0, 1].tolist() == [2.0, 0.0, 2.0, 2.0]
    assert masked_channel_stats(x, torch.zeros(1, 3, dtype=torch.bool)).abs().sum() == 0


def test_an_offset_moves_only_the_statistics_token() -> None:
    """Per-row centring: a sensor offset (a constant added to a channel) leaves every conv token
    unchanged; the level still reaches the model through the statistics token."""
    torch.manual_seed(0)
    encoder = MultiScaleSeriesEncoder(2, 16, strides=(2, 1, 1)).eval()
    x = torch.randn(2, 30, 2)
    mask = torch.ones(2, 30, dtype=torch.bool)
    mask[1, 20:] = False
    present = torch.ones(2, dtype=torch.bool)
    shifted = x.clone()
    shifted[:, :, 0] += 5.0
    out, moved = encoder(x, present, mask), encoder(shifted, present, mask)
    assert torch.allclose(out.tokens[:, 1:], moved.tokens[:, 1:], atol=1e-4)  # conv tokens
    assert not torch.allclose(out.tokens[:, 0], moved.tokens[:, 0], atol=1e-3)  # statistics token
    uncentred = MultiScaleSeriesEncoder(2, 16, strides=(2, 1, 1), centre=False).eval()
    assert not torch.allclose(
        uncentred(x, present, mask).tokens[:, 1:], uncentred(shifted, present, mask).tokens[:, 1:]
    )


def test_spec_augment_masks_spans_inside_the_real_frames_and_is_seeded() -> None:
    values = torch.ones(4, 20, 50)
    frames = torch.zeros(4, 50, dtype=torch.bool)
    frames[:, :40] = True
    torch.manual_seed(3)
    first = spec_augment(values, frames)
    torch.manual_seed(3)
    assert torch.equal(first, spec_augment(values, frames))
    zeroed = first == 0
    band_rows = zeroed.all(dim=2)  # (B, M): whole bands masked
    frame_columns = zeroed.all(dim=1)  # (B, F): whole frames masked
    assert bool((zeroed == (band_rows[:, :, None] | frame_columns[:, None, :])).all())  # only whole spans
    assert int(band_rows.sum(dim=1).max()) <= 2 * int(20 * 0.15)
    assert int(frame_columns.sum(dim=1).max()) <= 2 * int(40 * 0.1)
    assert not bool(frame_columns[:, 40:].any())  # padding is never "masked": it stays as it was
    assert bool(zeroed.any())


def test_spec_augment_runs_only_while_training() -> None:
    torch.manual_seed(0)
    encoder = SpectrogramEncoder(16, 8)
    x = torch.randn(3, 16, 40)
    present = torch.ones(3, dtype=torch.bool)
    encoder.eval()
    assert torch.equal(encoder(x, present).pooled, encoder(x, present).pooled)
    encoder.train()
    torch.manual_seed(1)
    a = encoder(x, present).pooled
    torch.manual_seed(2)
    assert not torch.allclose(a, encoder(x, present).pooled)
    off = SpectrogramEncoder(16, 8, augment=False).train()
    assert torch.allclose(off(x, present).pooled, off(x, present).pooled)


def test_centred_bands_ignore_a_clip_colouring() -> None:
    """With centre_bands, a constant added to a band over the whole clip (a microphone's or a
    speaker's colouring) leaves the features unchanged; without it, it does not."""
    torch.manual_seed(0)
    x = torch.randn(2, 16, 40)
    mask = torch.ones(2, 40, dtype=torch.bool)
    mask[0, 30:] = False
    present = torch.ones(2, dtype=torch.bool)
    coloured = x + torch.linspace(-2.0, 2.0, 16)[None, :, None]
    centred = AudioModality("sound", n_mels=16, centre_bands=True).build_encoder(8).eval()
    assert torch.allclose(
        centred(x, present, mask).pooled, centred(coloured, present, mask).pooled, atol=1e-4
    )
    plain = AudioModality("sound", n_mels=16).build_encoder(8).eval()
    assert not torch.allclose(
        plain(x, present, mask).pooled, plain(coloured, present, mask).pooled, atol=1e-3
    )
