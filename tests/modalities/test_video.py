import io
import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

av = pytest.importorskip("av")

from plait.errors import BundleError, ConfigError, DataError  # noqa: E402
from plait.evaluation.perturb.video import frame_drop, frame_noise  # noqa: E402
from plait.modalities.base import NotFittedError  # noqa: E402
from plait.modalities.contract import InputLimits, Probe, input_spec, options_from_files  # noqa: E402
from plait.modalities.video import VideoModality  # noqa: E402
from plait.testing.conformance import check_encoder  # noqa: E402
from plait.testing.media import test_video_bytes, write_test_video  # noqa: E402
from plait.types import Absent  # noqa: E402


@pytest.fixture
def media(tmp_path: Path) -> Path:
    write_test_video(tmp_path / "a.mp4", frames=20, fps=10)  # 2 s
    write_test_video(tmp_path / "b.webm", frames=12, fps=6)  # 2 s
    write_test_video(tmp_path / "c.avi", frames=10, fps=10)  # 1 s
    (tmp_path / "junk.mp4").write_bytes(b"this is not a video at all" * 20)
    (tmp_path / "empty.mp4").write_bytes(b"")
    return tmp_path


def fitted(root: Path, **options: object) -> VideoModality:
    modality = VideoModality("clip", **options)  # type: ignore[arg-type]
    table = pl.DataFrame({"clip": ["a.mp4", "b.webm", "c.avi", "junk.mp4", None]})
    modality.fit(table, root)
    return modality


def load(modality: VideoModality, value: object, root: Path) -> torch.Tensor:
    loaded = modality.load({"clip": value}, root)
    assert isinstance(loaded, torch.Tensor), loaded
    return loaded


def test_fit_learns_channel_statistics_and_load_standardises(media: Path) -> None:
    modality = fitted(media)
    state = modality.get_state()
    assert len(state["mean"]) == 3 and all(s > 0 for s in state["std"])
    clips = [load(modality, name, media) for name in ("a.mp4", "b.webm", "c.avi")]
    assert [tuple(c.shape) for c in clips] == [(8, 3, 32, 32), (8, 3, 32, 32), (4, 3, 32, 32)]
    channel_means = torch.stack([c.transpose(0, 1).flatten(1).mean(dim=1) for c in clips]).mean(dim=0)
    assert torch.allclose(channel_means, torch.zeros(3), atol=1e-4)  # clip-weighted, as fit is


def test_not_fitted_and_greyscale(media: Path) -> None:
    modality = VideoModality("clip", channels=1, size=16)
    with pytest.raises(NotFittedError, match="field 'clip': the video modality is not fitted"):
        modality.load({"clip": "a.mp4"}, media)
    modality.fit(pl.DataFrame({"clip": ["a.mp4"]}), media)
    assert tuple(load(modality, "a.mp4", media).shape) == (8, 1, 16, 16)


def test_absent_values_name_their_reason(media: Path) -> None:
    modality = fitted(media)
    for value in (None, "", "  ", b""):
        assert modality.load({"clip": value}, media) == Absent("empty")
    assert modality.load({"clip": "empty.mp4"}, media).reason == "empty"  # type: ignore[union-attr]
    assert modality.load({"clip": "junk.mp4"}, media).reason == "undecodable"  # type: ignore[union-attr]
    assert modality.load({"clip": b"\x89PNG\r\n\x1a\n" + bytes(64)}, media).reason == "undecodable"  # type: ignore[union-attr]
    missing = modality.load({"clip": "nope.mp4"}, media)
    assert isinstance(missing, Absent) and missing.reason == "unreadable" and "nope.mp4" in missing.detail
    assert modality.load({"clip": 3}, media).reason == "undecodable"  # type: ignore[union-attr]
    with pytest.raises(DataError, match="outside the media root"):
        modality.load({"clip": "../outside.mp4"}, media)


def test_a_video_without_a_decodable_frame_is_absent(media: Path) -> None:
    broken = bytearray(test_video_bytes(frames=4, fps=4, size=(64, 48)))
    for position, size in packet_spans(bytes(broken)):
        broken[position : position + size] = np.random.default_rng(0).bytes(size)
    modality = fitted(media)
    absent = modality.load({"clip": bytes(broken)}, media)
    assert isinstance(absent, Absent) and absent.reason == "undecodable"
    assert "no frame decoded; 4 packet(s) failed" in absent.detail


def test_bytes_load_as_the_file_does(media: Path) -> None:
    modality = fitted(media)
    from_file = load(modality, "a.mp4", media)
    assert torch.equal(load(modality, (media / "a.mp4").read_bytes(), media), from_file)
    assert torch.equal(load(modality, bytearray((media / "a.mp4").read_bytes()), media), from_file)
    assert torch.equal(load(modality, media / "a.mp4", media), from_file)  # a Path, absolute inside the root


@pytest.mark.parametrize(
    ("options", "count"),
    [
        ({}, 8),  # 2 s at 4 frames/s
        ({"frames": 5}, 5),
        ({"max_seconds": 1.0}, 4),
        ({"fps": 1}, 2),
        ({"fps": 30, "frames": 100}, 20),  # faster than the clip: each frame once, none repeated
    ],
)
def test_frame_count_follows_fps_frames_and_max_seconds(media: Path, options: dict, count: int) -> None:
    assert load(fitted(media, **options), "a.mp4", media).shape[0] == count


def test_frames_are_sampled_by_timestamp(media: Path) -> None:
    modality = fitted(media, size=8)
    clip = load(modality, "a.mp4", media)  # frames at 0.0, 0.1, …, 1.9 s; samples due every 0.25 s
    mean, std = (torch.tensor(modality.get_state()[k]) for k in ("mean", "std"))
    red = (clip[:, 0, -1, :] * std[0] + mean[0]).mean(dim=1) * 255  # the background of the bottom row
    expected = torch.tensor([(37 * i) % 256 for i in (0, 3, 5, 8, 10, 13, 15, 18)], dtype=torch.float32)
    assert torch.allclose(red, expected, atol=12), red


def test_frames_that_fail_to_decode_are_skipped_and_counted(media: Path) -> None:
    data = bytearray(test_video_bytes(frames=20, fps=10, size=(64, 48)))
    for position, size in packet_spans(bytes(data))[5:7]:
        data[position : position + size] = np.random.default_rng(1).bytes(size)
    modality = fitted(media, fps=30, frames=100)
    clip = load(modality, bytes(data), media)
    assert clip.shape[0] == 18  # 20 frames, 2 lost, none made up
    assert (modality.failed_frames, modality.clips_with_failed_frames) == (2, 1)


def test_collate_pads_frames_and_masks_them(media: Path) -> None:
    modality = fitted(media)
    a, c = load(modality, "a.mp4", media), load(modality, "c.avi", media)
    values, mask = modality.collate([a, None, c])
    assert tuple(values.shape) == (3, 8, 3, 32, 32) and mask is not None
    assert mask.tolist() == [[True] * 8, [False] * 8, [True] * 4 + [False] * 4]
    assert torch.equal(values[0], a) and torch.equal(values[2, :4], c)
    assert torch.count_nonzero(values[1]) == 0 and torch.count_nonzero(values[2, 4:]) == 0
    empty_values, empty_mask = modality.collate([None, None])
    assert tuple(empty_values.shape) == (2, 1, 3, 32, 32) and empty_mask is not None
    assert not empty_mask.any()


def test_encoder_contract_under_every_presence_pattern(media: Path) -> None:
    torch.manual_seed(0)
    modality = fitted(media, size=16)
    values, mask = modality.collate([load(modality, n, media) for n in ("a.mp4", "c.avi", "b.webm")])
    encoder = modality.build_encoder(8)
    for pattern in itertools.product((False, True), repeat=3):
        if any(pattern) and not all(pattern):
            check_encoder(encoder, values, torch.tensor(pattern), mask)
    out = encoder(values, torch.tensor([True, True, False]), mask)
    assert tuple(out.tokens.shape) == (3, 8, 8) and out.token_mask is not None
    assert out.token_mask.tolist()[1] == [True] * 4 + [False] * 4 and not out.token_mask[2].any()
    assert torch.count_nonzero(out.tokens[1, 4:]) == 0  # padded frames give zero tokens


def test_state_round_trips_through_json_and_the_saved_sampling_wins(media: Path) -> None:
    modality = fitted(media, fps=2, frames=3, size=16)
    state = json.loads(json.dumps(modality.get_state(), allow_nan=False))
    restored = VideoModality("clip")  # the defaults: the state's sampling replaces them
    restored.set_state(state)
    assert restored.get_state() == state
    assert torch.equal(load(restored, "a.mp4", media), load(modality, "a.mp4", media))
    with pytest.raises(BundleError, match="configured with channels=1"):
        VideoModality("clip", channels=1).set_state(state)
    with pytest.raises(BundleError, match="malformed"):
        VideoModality("clip").set_state({k: v for k, v in state.items() if k != "fps"})
    with pytest.raises(BundleError, match="stds"):
        VideoModality("clip").set_state({**state, "std": [1.0, 0.0, 1.0]})


def test_bad_options_are_config_errors() -> None:
    for options, match in [
        ({"channels": 2}, "channels: expected 1"),
        ({"fps": 0}, "fps: expected a number"),
        ({"fps": True}, "fps: expected a number"),
        ({"max_seconds": float("nan")}, "max_seconds: expected a number"),
        ({"frames": 0}, "frames: expected an integer >= 1"),
        ({"size": 4}, "size: expected an integer >= 8"),
        ({"frames": 512, "size": 256}, "values per row"),
        ({"column": 3}, "column: expected a column name"),
    ]:
        with pytest.raises(ConfigError, match=match):
            VideoModality("clip", **options)  # type: ignore[arg-type]


def test_input_spec_and_declarations() -> None:
    modality = VideoModality("clip", column="video_path")
    spec = input_spec(modality, InputLimits(max_file_bytes=1000, max_video_seconds=30))
    assert spec.roles == {"video_path": "media"} and spec.probe is not None
    assert (
        spec.widget.control == "file" and spec.widget.accept == "video/*" and spec.widget.preview == "video"
    )
    assert dict(spec.limits) == {"max_seconds": 30, "max_bytes": 1000}
    assert "MP4" in spec.accepts and "WebM" in spec.accepts
    assert modality.file_columns() == ("video_path",)
    assert VideoModality.file_extensions == (".mp4", ".avi", ".mov", ".mkv", ".webm")
    assert modality.noise_family in modality.perturbations


def test_probe_reads_the_cost_from_the_header() -> None:
    modality = VideoModality("clip")  # fps 4, frames 16: at most 4 s read
    probe = input_spec(modality, InputLimits(max_video_seconds=5)).probe
    assert probe is not None
    two_s = test_video_bytes(frames=20, fps=10, size=(32, 24))
    assert probe(two_s) == Probe(pixels=20 * 32 * 24, seconds=2.0)  # every frame of 2 s is decoded
    six_s = test_video_bytes(frames=60, fps=10, size=(32, 24), suffix=".webm")
    too_long = probe(six_s)
    assert isinstance(too_long, Absent) and too_long.reason == "too long"
    four_s = test_video_bytes(frames=40, fps=10, size=(32, 24), suffix=".mkv")
    assert probe(four_s) == Probe(pixels=40 * 32 * 24, seconds=4.0)
    assert probe(b"") is None
    assert probe(b"\x89PNG\r\n\x1a\n" + bytes(64)).reason == "wrong content"  # type: ignore[union-attr]
    assert probe(b"garbage bytes" * 10).reason == "wrong content"  # type: ignore[union-attr]
    assert probe(two_s[:64]).reason == "undecodable"  # type: ignore[union-attr]  # an MP4 cut short
    small = input_spec(modality, InputLimits(max_file_bytes=100)).probe
    assert small is not None and small(two_s).reason == "too large"  # type: ignore[union-attr]


def test_options_from_files(media: Path) -> None:
    options, why = options_from_files(VideoModality, [media / "a.mp4", media / "b.webm", media / "junk.mp4"])
    assert options == {"fps": 4.0, "frames": 8} and "read 2 video headers" in why
    options, why = options_from_files(VideoModality, [media / "junk.mp4"])
    assert options == {} and "none of 1 files opened as video" in why


def test_importing_the_modalities_does_not_import_av() -> None:
    code = "import sys, plait.modalities, plait.modalities.video; print('av' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_missing_pyav_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # import av now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'plait\[video\]'"):
        VideoModality("clip")


# ---- perturbations ---------------------------------------------------------------------------


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(64, 16, 3, 4, 4, generator=g)
    mask = torch.ones(64, 16, dtype=torch.bool)
    mask[::2, 10:] = False
    values[~mask] = 0.0
    present = torch.ones(64, dtype=torch.bool)
    present[5] = False
    values[5], mask[5] = 0.0, False
    return values, present, mask


def test_frame_drop_masks_about_level_of_real_frames() -> None:
    values, present, mask = batch()
    same = frame_drop(values, present, mask, 0.0, torch.Generator())
    assert all(a is b for a, b in zip(same, (values, present, mask), strict=True))  # level 0: the inputs
    out, _, out_mask = frame_drop(values, present, mask, 0.3, torch.Generator().manual_seed(1))
    assert out.shape == values.shape and out_mask is not None and out_mask.shape == mask.shape
    dropped = mask & ~out_mask
    assert abs(dropped.sum().item() / mask.sum().item() - 0.3) < 0.05
    assert not (out_mask & ~mask).any()  # no frame appears
    assert torch.count_nonzero(out[dropped]) == 0 and torch.equal(out[out_mask], values[out_mask])
    _, _, more = frame_drop(values, present, mask, 0.6, torch.Generator().manual_seed(1))
    assert more is not None and not (more & ~out_mask).any()  # common random numbers: nested
    _, none_present, none_mask = frame_drop(values, present, mask, 1.0, torch.Generator())
    assert not none_present.any() and none_mask is not None and not none_mask.any()
    assert torch.equal(values, batch()[0])  # inputs untouched


def test_frame_noise_touches_only_real_frames_of_present_clips() -> None:
    values, present, mask = batch()
    same = frame_noise(values, present, mask, 0.0, torch.Generator())
    assert all(a is b for a, b in zip(same, (values, present, mask), strict=True))  # level 0: the inputs
    out, out_present, out_mask = frame_noise(values, present, mask, 0.5, torch.Generator().manual_seed(2))
    assert out.shape == values.shape and torch.equal(out_present, present) and out_mask is mask
    assert torch.count_nonzero(out[~mask]) == 0  # padded frames and the absent clip stay zero
    noise = (out - values)[mask]
    assert abs(noise.std().item() - 0.5) < 0.05  # σ of the standardised clips is about 1
    double, _, _ = frame_noise(values, present, mask, 1.0, torch.Generator().manual_seed(2))
    assert torch.allclose(double - values, 2 * (out - values), atol=1e-5)


def test_video_perturbations_refuse_other_shapes() -> None:
    with pytest.raises(ConfigError, match=r"expected float video values \[B, T, C, H, W\]"):
        frame_drop(torch.zeros(2, 3, 8, 8), torch.ones(2, dtype=torch.bool), None, 0.5, torch.Generator())


def packet_spans(data: bytes) -> list[tuple[int, int]]:
    """(byte position, size) of each video packet in MP4 bytes."""
    with av.open(io.BytesIO(data), format="mov") as container:
        stream = container.streams.video[0]
        return [(int(p.pos), p.size) for p in container.demux(stream) if p.size and p.pos is not None]
