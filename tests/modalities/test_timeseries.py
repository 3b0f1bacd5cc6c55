import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from plait.errors import BundleError, ConfigError, DataError
from plait.modalities.base import NotFittedError
from plait.modalities.timeseries import TimeseriesModality
from plait.testing.conformance import check_encoder
from plait.types import Absent

ROOT = Path(".")
NAN = math.nan


def fitted(**options: object) -> TimeseriesModality:
    modality = TimeseriesModality("imu", **options)  # type: ignore[arg-type]
    table = pl.DataFrame(
        {"imu": [[[1.0, 10.0], [3.0, NAN]], None, [[5.0, 30.0], [7.0, 20.0], [9.0, 20.0]]]},
        schema={"imu": pl.List(pl.List(pl.Float64))},
    )
    modality.fit(table, ROOT)
    return modality


def test_fit_statistics_use_only_finite_readings() -> None:
    state = fitted().get_state()
    assert state["channels"] == 2
    assert state["mean"] == pytest.approx([5.0, 20.0])
    assert state["std"] == pytest.approx([math.sqrt(8.0), math.sqrt(50.0)])


def test_state_json_round_trip_gives_identical_load() -> None:
    modality = fitted()
    restored = TimeseriesModality("imu")
    restored.set_state(json.loads(json.dumps(modality.get_state())))
    row = {"imu": [[1.0, 2.0], [NAN, 4.0], [5.0, 6.0]]}
    a, b = modality.load(row, ROOT), restored.load(row, ROOT)
    assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
    assert torch.allclose(a, b, equal_nan=True) and a.shape == (3, 2)
    with pytest.raises(NotFittedError):
        TimeseriesModality("imu").get_state()
    with pytest.raises(BundleError, match="channels=3"):
        TimeseriesModality("imu", channels=3).set_state(modality.get_state())


def test_nan_steps_are_masked_and_never_filled() -> None:
    modality = fitted()
    item = modality.load({"imu": [[5.0, 20.0], [NAN, NAN], [7.0, NAN], [math.inf, 30.0]]}, ROOT)
    assert isinstance(item, torch.Tensor)
    # Missing readings stay NaN in the loaded item (infinite ones too).
    assert torch.isnan(item).tolist() == [[False, False], [True, True], [False, True], [True, False]]
    values, mask = modality.collate([item, None])
    assert mask is not None and mask.tolist() == [[True, False, True, True], [False] * 4]
    assert torch.isfinite(values).all()
    assert values[0, 1].tolist() == [0.0, 0.0] and values[0, 2, 1] == 0.0 and values[0, 3, 0] == 0.0
    assert values[0, 2, 0] == pytest.approx((7.0 - 5.0) / math.sqrt(8.0))
    assert bool((values[1] == 0).all())


def test_value_forms_flat_numpy_json_and_truncation() -> None:
    modality = TimeseriesModality("level", max_length=4)
    modality.fit(pl.DataFrame({"level": [[1.0, 2.0, 3.0]]}), ROOT)
    assert modality.get_state()["channels"] == 1
    flat = modality.load({"level": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}, ROOT)
    assert isinstance(flat, torch.Tensor) and flat.shape == (4, 1)  # first max_length steps kept
    assert flat[:, 0].tolist() == pytest.approx([(v - 2.0) / math.sqrt(2 / 3) for v in (1, 2, 3, 4)])
    array = modality.load({"level": np.array([[1.0], [2.0]], dtype=np.float32)}, ROOT)
    text = modality.load({"level": "[[1.0], [2.0]]"}, ROOT)
    assert isinstance(array, torch.Tensor) and isinstance(text, torch.Tensor) and torch.equal(array, text)


def test_bad_values_are_absent_with_the_right_reason() -> None:
    modality = fitted(channels=2)
    assert modality.load({"imu": [[1.0, 2.0, 3.0]]}, ROOT) == Absent(
        "wrong shape", "expected 2 channels, got 3"
    )
    non_finite = modality.load({"imu": [[NAN, NAN], [math.inf, -math.inf]]}, ROOT)
    assert isinstance(non_finite, Absent) and non_finite.reason == "non-finite"
    ragged = modality.load({"imu": [[1.0, 2.0], [3.0]]}, ROOT)
    assert isinstance(ragged, Absent) and ragged.reason == "undecodable"
    rows: list[dict[str, object]] = [{}, {"imu": None}, {"imu": []}, {"imu": np.zeros(0)}]
    for row in rows:
        empty = modality.load(row, ROOT)
        assert isinstance(empty, Absent) and empty.reason == "empty"
    cube = modality.load({"imu": np.zeros((2, 2, 2))}, ROOT)
    assert isinstance(cube, Absent) and cube.reason == "wrong shape"


def test_per_row_files(tmp_path: Path) -> None:
    data = np.array([[1.0, 10.0, 0.0], [2.0, NAN, 1.0], [3.0, 30.0, 2.0]])
    np.save(tmp_path / "s.npy", data)
    (tmp_path / "head.csv").write_text("x,y,z\n1,10,0\n2,,1\n3,30,2\n")
    (tmp_path / "bare.csv").write_text("1,10,0\n2,nan,1\n3,30,2\n")
    pl.DataFrame({"x": [1.0, 2.0, 3.0], "y": [10.0, None, 30.0], "z": [0, 1, 2]}).write_parquet(
        tmp_path / "s.parquet"
    )
    modality = TimeseriesModality("imu")
    modality.fit(pl.DataFrame({"imu": ["s.npy", "head.csv"]}), tmp_path)
    reference = modality.load({"imu": "s.npy"}, tmp_path)
    assert isinstance(reference, torch.Tensor) and reference.shape == (3, 3)
    for name in ("head.csv", "bare.csv", "s.parquet"):
        item = modality.load({"imu": name}, tmp_path)
        assert isinstance(item, torch.Tensor), (name, item)
        assert torch.allclose(item, reference, equal_nan=True), name
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    junk = modality.load({"imu": "junk.npy"}, tmp_path)
    assert isinstance(junk, Absent) and junk.reason == "undecodable"
    missing = modality.load({"imu": "gone.csv"}, tmp_path)
    assert isinstance(missing, Absent) and missing.reason == "unreadable"
    (tmp_path / "s.txt").write_text("1 2 3")
    other = modality.load({"imu": "s.txt"}, tmp_path)
    assert isinstance(other, Absent) and other.reason == "undecodable" and ".npy" in other.detail
    with pytest.raises(DataError, match="outside the media root"):
        modality.load({"imu": "../elsewhere.npy"}, tmp_path)


def test_fit_errors_and_options() -> None:
    with pytest.raises(DataError, match="channel count"):
        TimeseriesModality("imu").fit(pl.DataFrame({"imu": [None, "  "]}), ROOT)
    given = TimeseriesModality("imu", channels=2)
    given.fit(pl.DataFrame({"imu": [None]}), ROOT)
    assert given.get_state()["mean"] == [0.0, 0.0] and given.get_state()["std"] == [1.0, 1.0]
    with pytest.raises(DataError, match="column 'imu'"):
        TimeseriesModality("imu").fit(pl.DataFrame({"other": [1]}), ROOT)
    with pytest.raises(ConfigError, match="max_length"):
        TimeseriesModality("imu", max_length=0)


@pytest.mark.parametrize("name", ["multiscale", "conv1d"])
def test_encoder_shapes_padding_invariance_and_gradients(name: str) -> None:
    torch.manual_seed(0)
    modality = fitted(max_length=512, encoder=name)  # long series: two stride-2 layers
    encoder = modality.build_encoder(16)
    extra = 1 if name == "multiscale" else 0  # the multi-scale encoder's statistics token
    values = torch.randn(3, 40, 2)
    mask = torch.ones(3, 40, dtype=torch.bool)
    mask[0, 17:] = False  # padding
    mask[1, 5:9] = False  # a gap of missing readings
    present = torch.tensor([True, True, False])
    out = encoder(values, present, mask)
    assert out.tokens.shape == (3, 10 + extra, 16) and out.pooled.shape == (3, 16)
    assert (
        out.token_mask is not None and out.token_mask[2].sum() == 0 and out.token_mask[0].sum() == 5 + extra
    )
    assert bool((out.pooled[2] == 0).all()) and bool((out.tokens[~out.token_mask] == 0).all())
    alone = encoder(values[:1, :17], present[:1], None)
    assert torch.allclose(alone.pooled[0], out.pooled[0], atol=1e-5)
    # A masked step's value does not matter: changing it leaves the output unchanged.
    changed = values.clone()
    changed[1, 5:9] = 99.0
    assert torch.allclose(encoder(changed, present, mask).pooled, out.pooled, atol=1e-5)
    empty = encoder(
        torch.zeros(2, 1, 2), torch.zeros(2, dtype=torch.bool), torch.zeros(2, 1, dtype=torch.bool)
    )
    assert torch.isfinite(empty.pooled).all() and bool((empty.pooled == 0).all())
    # a random projection: a plain sum has zero gradient through a final LayerNorm
    (
        out.pooled[1] * torch.randn(out.pooled.shape[1], generator=torch.Generator().manual_seed(1))
    ).sum().backward()
    first = list((encoder.convs[0] if name == "conv1d" else encoder.stem).parameters())
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in first)
    check_encoder(encoder, values, present, mask)


def test_readings_beyond_float32_are_missing_without_a_warning() -> None:
    import warnings

    modality = fitted()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a server logs every RuntimeWarning: overflow is handled, not noise
        item = modality.load({"imu": [[5.0, 20.0], [1e308, -1e308], [7.0, 25.0]]}, ROOT)
    assert isinstance(item, torch.Tensor)
    assert torch.isnan(item).tolist() == [[False, False], [True, True], [False, False]]
