import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image

from plait.errors import BundleError, ConfigError, DataError
from plait.modalities.base import NotFittedError
from plait.modalities.image import ImageModality
from plait.testing.conformance import check_encoder
from plait.types import Absent


def write_image(path: Path, seed: int, size: tuple[int, int] = (40, 30), fmt: str = "PNG") -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)
    return path


@pytest.fixture
def media(tmp_path: Path) -> Path:
    for i in range(3):
        write_image(tmp_path / f"img{i}.png", seed=i)
    (tmp_path / "junk.png").write_bytes(b"this is not an image at all")
    return tmp_path


def fitted(root: Path, **options: object) -> ImageModality:
    modality = ImageModality("photo", size=32, **options)  # type: ignore[arg-type]
    table = pl.DataFrame({"photo": ["img0.png", "img1.png", "img2.png", "junk.png", None]})
    modality.fit(table, root)
    return modality


def test_load_shape_and_statistics_from_decodable_images(media: Path) -> None:
    modality = fitted(media)
    state = modality.get_state()
    assert state["channels"] == 3 and len(state["mean"]) == 3
    # Uniform random bytes: mean ≈ 0.5, std ≈ 0.29 per channel (bilinear resize smooths a bit).
    assert state["mean"] == pytest.approx([0.5] * 3, abs=0.05)
    assert all(0.1 < s < 0.35 for s in state["std"])
    x = modality.load({"photo": "img1.png"}, media)
    assert isinstance(x, torch.Tensor) and x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert abs(float(x.mean())) < 0.3  # standardised


def test_state_json_round_trip_gives_identical_load(media: Path) -> None:
    modality = fitted(media)
    restored = ImageModality("photo", size=32)
    restored.set_state(json.loads(json.dumps(modality.get_state())))
    a, b = modality.load({"photo": "img2.png"}, media), restored.load({"photo": "img2.png"}, media)
    assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)


def test_state_errors(media: Path) -> None:
    with pytest.raises(NotFittedError):
        ImageModality("photo").get_state()
    with pytest.raises(NotFittedError):
        ImageModality("photo").load({"photo": "img0.png"}, media)
    with pytest.raises(BundleError, match="channels=1"):
        ImageModality("photo", channels=1).set_state(fitted(media).get_state())
    with pytest.raises(BundleError, match="malformed"):
        ImageModality("photo").set_state({"mean": [0.5]})


def test_truncated_corrupt_missing_and_empty_files_are_absent(media: Path) -> None:
    modality = fitted(media)
    data = (media / "img0.png").read_bytes()
    (media / "cut.png").write_bytes(data[: len(data) // 2])
    cut = modality.load({"photo": "cut.png"}, media)
    assert isinstance(cut, Absent) and cut.reason == "undecodable"
    junk = modality.load({"photo": "junk.png"}, media)
    assert isinstance(junk, Absent) and junk.reason == "undecodable"
    missing = modality.load({"photo": "nope.png"}, media)
    assert isinstance(missing, Absent) and missing.reason == "unreadable"
    assert missing.detail == str((media / "nope.png").resolve())
    for row in ({}, {"photo": None}, {"photo": "  "}, {"photo": b""}):
        empty = modality.load(row, media)
        assert isinstance(empty, Absent) and empty.reason == "empty"


def test_truncated_jpeg_is_absent(tmp_path: Path) -> None:
    data = write_image(tmp_path / "a.jpg", seed=3, size=(200, 160), fmt="JPEG").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    modality = ImageModality("photo", size=32)
    modality.set_state({"column": "photo", "channels": 3, "mean": [0.5] * 3, "std": [0.25] * 3})
    assert isinstance(modality.load({"photo": "a.jpg"}, tmp_path), torch.Tensor)
    cut = modality.load({"photo": "cut.jpg"}, tmp_path)
    assert isinstance(cut, Absent) and cut.reason == "undecodable"


def test_path_escaping_the_root_raises(media: Path) -> None:
    outside = write_image(media.parent / "outside.png", seed=9)
    modality = fitted(media)
    with pytest.raises(DataError, match="outside the media root"):
        modality.load({"photo": "../outside.png"}, media)
    with pytest.raises(DataError):
        modality.load({"photo": str(outside)}, media)


def test_too_many_pixels_is_absent_before_decoding(media: Path) -> None:
    modality = fitted(media, max_pixels=1000)  # 40 × 30 = 1200 pixels
    big = modality.load({"photo": "img0.png"}, media)
    assert isinstance(big, Absent) and big.reason == "too large" and "40x30" in big.detail
    assert modality.get_state()["mean"] == [0.5] * 3  # nothing decodable: the defaults


def test_jpeg_draft_greyscale_and_bytes(tmp_path: Path) -> None:
    write_image(tmp_path / "big.jpg", seed=4, size=(640, 480), fmt="JPEG")
    grey = ImageModality("photo", size=32, channels=1)
    grey.fit(pl.DataFrame({"photo": ["big.jpg"]}), tmp_path)
    x = grey.load({"photo": "big.jpg"}, tmp_path)
    assert isinstance(x, torch.Tensor) and x.shape == (1, 32, 32)
    from_bytes = grey.load({"photo": (tmp_path / "big.jpg").read_bytes()}, tmp_path)
    assert isinstance(from_bytes, torch.Tensor) and torch.equal(x, from_bytes)
    # Reduced-scale decoding stays close to a full decode (LIMITS.md: < 1 grey level on average).
    full = Image.open(tmp_path / "big.jpg").convert("L").resize((32, 32), Image.Resampling.BILINEAR)
    full_x = (torch.from_numpy(np.asarray(full, dtype=np.float32) / 255.0) - 0.0)[None]
    mean, std = grey.get_state()["mean"][0], grey.get_state()["std"][0]
    assert float(((x * std + mean) - full_x).abs().mean()) < 0.03


def test_constructor_validates_options() -> None:
    with pytest.raises(ConfigError, match="channels"):
        ImageModality("photo", channels=2)
    with pytest.raises(ConfigError, match="size"):
        ImageModality("photo", size=4)
    assert ImageModality("photo", column="path").columns() == ("path",)


def test_collate_zero_fills_absent(media: Path) -> None:
    modality = fitted(media)
    item = modality.load({"photo": "img0.png"}, media)
    assert isinstance(item, torch.Tensor)
    values, mask = modality.collate([item, None])
    assert mask is None and values.shape == (2, 3, 32, 32)
    assert torch.equal(values[0], item) and bool((values[1] == 0).all())


def test_encoder_shapes_absent_and_gradients() -> None:
    torch.manual_seed(0)
    modality = ImageModality("photo", size=64)
    encoder = modality.build_encoder(16)
    x = torch.randn(3, 3, 64, 64)
    present = torch.tensor([True, False, True])
    out = encoder(x, present)
    assert encoder.output_dim == 16
    assert out.tokens.shape == (3, 16, 16) and out.pooled.shape == (3, 16) and out.token_mask is None
    assert bool((out.pooled[1] == 0).all()) and bool((out.tokens[1] == 0).all())
    none = encoder(torch.zeros(2, 3, 64, 64), torch.zeros(2, dtype=torch.bool))
    assert torch.isfinite(none.pooled).all() and bool((none.pooled == 0).all())
    # a random projection: a plain sum has zero gradient through a final LayerNorm
    (
        out.pooled[0] * torch.randn(out.pooled.shape[1], generator=torch.Generator().manual_seed(1))
    ).sum().backward()
    first = list(encoder.features[0].parameters())
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in first)
    check_encoder(ImageModality("photo", size=32).build_encoder(8), torch.randn(2, 3, 32, 32), present[:2])
