import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf
import torch

from plait.errors import BundleError, ConfigError, DataError
from plait.modalities.audio import AudioModality, resample
from plait.modalities.base import NotFittedError
from plait.testing.conformance import check_encoder
from plait.types import Absent


def tone(freq_hz: float, seconds: float, rate: int) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.5 * np.sin(2 * math.pi * freq_hz * t)).astype(np.float32)


@pytest.fixture
def media(tmp_path: Path) -> Path:
    sf.write(tmp_path / "a.wav", tone(440, 1.0, 16000), 16000)
    sf.write(tmp_path / "long.wav", tone(880, 3.0, 16000), 16000)
    stereo = np.stack([tone(440, 0.5, 16000), tone(1000, 0.5, 16000)], axis=1)
    sf.write(tmp_path / "stereo.wav", stereo, 16000)
    (tmp_path / "junk.wav").write_bytes(b"RIFF nonsense that is not a wave file")
    return tmp_path


def fitted(root: Path, **options: object) -> AudioModality:
    modality = AudioModality("sound", **options)  # type: ignore[arg-type]
    modality.fit(pl.DataFrame({"sound": ["a.wav", "long.wav", "junk.wav", None]}), root)
    return modality


def test_load_shape_frames_and_crop(media: Path) -> None:
    modality = fitted(media)
    one = modality.load({"sound": "a.wav"}, media)
    assert isinstance(one, torch.Tensor) and one.shape == (40, 1 + 16000 // 160)
    cropped = modality.load({"sound": "long.wav"}, media)  # 3 s cropped to max_seconds = 2
    assert isinstance(cropped, torch.Tensor) and cropped.shape == (40, 1 + 32000 // 160)
    stereo = modality.load({"sound": "stereo.wav"}, media)
    assert isinstance(stereo, torch.Tensor) and stereo.shape == (40, 1 + 8000 // 160)
    state = modality.get_state()
    assert state["std"] > 0 and math.isfinite(state["mean"])


def test_state_json_round_trip_gives_identical_load(media: Path) -> None:
    modality = fitted(media)
    restored = AudioModality("sound")
    restored.set_state(json.loads(json.dumps(modality.get_state())))
    a, b = modality.load({"sound": "a.wav"}, media), restored.load({"sound": "a.wav"}, media)
    assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    with pytest.raises(BundleError, match="n_mels"):
        AudioModality("sound", n_mels=20).set_state(modality.get_state())
    with pytest.raises(NotFittedError):
        AudioModality("sound").get_state()


def test_offset_and_duration_read_only_the_segment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    requested: list[int] = []
    original_read = sf.SoundFile.read

    def spy_read(self: sf.SoundFile, frames: int = -1, *args: object, **kwargs: object) -> object:
        requested.append(frames)
        return original_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy_read)
    rate = 16000
    silence, beep = np.zeros(rate, dtype=np.float32), tone(2000, 1.0, rate)
    sf.write(tmp_path / "two.wav", np.concatenate([silence, beep]), rate)
    sf.write(tmp_path / "part.wav", beep[rate // 4 : rate // 4 + rate // 2], rate)
    modality = AudioModality("sound", offset_column="start_s", duration_column="length_s")
    modality.fit(pl.DataFrame({"sound": ["two.wav"], "start_s": [0.0], "length_s": [None]}), tmp_path)
    assert modality.columns() == ("sound", "start_s", "length_s")
    requested.clear()
    segment = modality.load({"sound": "two.wav", "start_s": 1.25, "length_s": 0.5}, tmp_path)
    reference = modality.load({"sound": "part.wav"}, tmp_path)
    assert isinstance(segment, torch.Tensor) and isinstance(reference, torch.Tensor)
    assert segment.shape == (40, 1 + 8000 // 160)
    assert torch.allclose(segment, reference, atol=1e-4)
    assert requested[0] == rate // 2  # only the segment's frames were asked of the decoder
    # Without a duration: from the offset to the end of the file (1 s left here).
    rest = modality.load({"sound": "two.wav", "start_s": 1.0, "length_s": None}, tmp_path)
    assert isinstance(rest, torch.Tensor) and rest.shape == (40, 1 + 16000 // 160)
    past = modality.load({"sound": "two.wav", "start_s": 5.0, "length_s": 0.5}, tmp_path)
    assert isinstance(past, Absent) and past.reason == "empty" and "past the end" in past.detail
    bad = modality.load({"sound": "two.wav", "start_s": -1.0}, tmp_path)
    assert isinstance(bad, Absent) and bad.reason == "bad segment"


def test_resampling_keeps_length_and_pitch(tmp_path: Path) -> None:
    sf.write(tmp_path / "low.wav", tone(1000, 1.0, 8000), 8000)
    sf.write(tmp_path / "high.wav", tone(1000, 1.0, 44100), 44100)
    sf.write(tmp_path / "ref.wav", tone(1000, 1.0, 16000), 16000)
    modality = AudioModality("sound")
    modality.set_state({"column": "sound", "sample_rate": 16000, "n_mels": 40, "mean": 0.0, "std": 1.0})
    ref = modality.load({"sound": "ref.wav"}, tmp_path)
    assert isinstance(ref, torch.Tensor)
    for name in ("low.wav", "high.wav"):
        x = modality.load({"sound": name}, tmp_path)
        assert isinstance(x, torch.Tensor) and x.shape == ref.shape
        assert int(x.mean(dim=1).argmax()) == int(ref.mean(dim=1).argmax())
    # Content above the new Nyquist frequency is filtered out, not folded back.
    alias = resample(tone(7000, 0.5, 16000), 16000, 8000)
    assert alias.shape == (4000,) and float(np.abs(alias[200:-200]).max()) < 0.05


def test_bad_files_are_absent_with_the_right_reason(media: Path) -> None:
    modality = fitted(media)
    junk = modality.load({"sound": "junk.wav"}, media)
    assert isinstance(junk, Absent) and junk.reason == "undecodable"
    missing = modality.load({"sound": "gone.wav"}, media)
    assert isinstance(missing, Absent) and missing.reason == "unreadable" and "gone.wav" in missing.detail
    sf.write(media / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    empty = modality.load({"sound": "empty.wav"}, media)
    assert isinstance(empty, Absent) and empty.reason == "empty"
    wave = tone(440, 0.2, 16000)
    wave[100] = np.nan
    sf.write(media / "nan.wav", wave, 16000, subtype="FLOAT")
    nan = modality.load({"sound": "nan.wav"}, media)
    assert isinstance(nan, Absent) and nan.reason == "non-finite"
    for row in ({}, {"sound": None}, {"sound": ""}):
        absent = modality.load(row, media)
        assert isinstance(absent, Absent) and absent.reason == "empty"


def test_path_escaping_the_root_raises(media: Path) -> None:
    sf.write(media.parent / "outside.wav", tone(440, 0.1, 16000), 16000)
    with pytest.raises(DataError, match="outside the media root"):
        fitted(media).load({"sound": "../outside.wav"}, media)


def test_fit_missing_column_and_options() -> None:
    with pytest.raises(DataError, match="start_s"):
        AudioModality("sound", offset_column="start_s").fit(pl.DataFrame({"sound": ["a.wav"]}), Path("."))
    with pytest.raises(ConfigError, match="max_seconds"):
        AudioModality("sound", max_seconds=0)
    with pytest.raises(ConfigError, match="sample_rate"):
        AudioModality("sound", sample_rate=16000.0)  # type: ignore[arg-type]


def test_collate_pads_and_masks_frames(media: Path) -> None:
    modality = fitted(media)
    short, long = modality.load({"sound": "stereo.wav"}, media), modality.load({"sound": "a.wav"}, media)
    assert isinstance(short, torch.Tensor) and isinstance(long, torch.Tensor)
    values, mask = modality.collate([short, None, long])
    assert values.shape == (3, 40, 101) and mask is not None and mask.shape == (3, 101)
    assert mask.sum(dim=1).tolist() == [51, 0, 101]
    assert torch.equal(values[0, :, :51], short) and bool((values[0, :, 51:] == 0).all())
    all_absent, none_mask = modality.collate([None, None])
    assert all_absent.shape == (2, 40, 1) and none_mask is not None and not bool(none_mask.any())


@pytest.mark.parametrize(("name", "centre"), [("conv2d", False), ("conv2d", True), ("conv1d", False)])
def test_encoder_masks_padding_and_absent_samples(name: str, centre: bool) -> None:
    torch.manual_seed(0)
    modality = AudioModality("sound", n_mels=8, encoder=name, centre_bands=centre)
    encoder = modality.build_encoder(16).eval()  # SpecAugment is random while training
    x = torch.randn(3, 8, 50)
    mask = torch.ones(3, 50, dtype=torch.bool)
    mask[0, 21:] = False
    present = torch.tensor([True, True, False])
    out = encoder(x, present, mask)
    assert out.tokens.shape == (3, 13, 16) and out.pooled.shape == (3, 16)
    assert out.token_mask is not None and out.token_mask.sum(dim=1).tolist() == [6, 13, 0]
    assert bool((out.pooled[2] == 0).all())
    # Padding does not change a sample's features: alone at its own length gives the same pooled.
    alone = encoder(x[:1, :, :21], present[:1], None)
    assert torch.allclose(alone.pooled[0], out.pooled[0], atol=1e-5)
    empty = encoder(
        torch.zeros(2, 8, 1), torch.zeros(2, dtype=torch.bool), torch.zeros(2, 1, dtype=torch.bool)
    )
    assert torch.isfinite(empty.pooled).all() and bool((empty.pooled == 0).all())
    # a random projection: a plain sum has zero gradient through a final LayerNorm
    (
        out.pooled[0] * torch.randn(out.pooled.shape[1], generator=torch.Generator().manual_seed(1))
    ).sum().backward()
    first = list(encoder.convs[0].parameters())
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in first)
    check_encoder(encoder, x, present, mask)


def test_a_wav_cut_short_is_absent_not_complete(tmp_path: Path) -> None:
    """Regression: a WAV truncated to a third was read as a whole (shorter) recording."""
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "whole.wav", (0.1 * rng.normal(size=8000)).astype(np.float32), 8000, subtype="PCM_16")
    data = (tmp_path / "whole.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 3])
    modality = AudioModality("sound", sample_rate=8000, max_seconds=1.0)
    table = pl.DataFrame({"sound": ["whole.wav"]})
    modality.fit(table, tmp_path)
    cut = modality.load({"sound": "cut.wav"}, tmp_path)
    assert isinstance(cut, Absent) and cut.reason == "truncated"
    assert "declares 1.00 s of audio, the file holds 0.33 s" in cut.detail
    assert not isinstance(modality.load({"sound": "whole.wav"}, tmp_path), Absent)
    assert isinstance(modality.load({"sound": data[: len(data) // 2]}, tmp_path), Absent)  # bytes too
