"""Every registered perturbation against its contract, on a batch collated by plait's real modalities."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import soundfile as sf
import torch
from PIL import Image
from torch import Tensor

from plait.data.dataset import load_table
from plait.errors import ConfigError, UnknownNameError
from plait.evaluation.perturb import (
    PERTURBATIONS,
    Perturbation,
    perturb_batch,
    perturbation_context,
    perturbations_for,
)
from plait.evaluation.perturb.base import observed_cells
from plait.modalities import MODALITIES
from plait.modalities.audio import AudioModality
from plait.modalities.base import Modality
from plait.modalities.embedding import EmbeddingModality
from plait.modalities.image import ImageModality
from plait.modalities.melspec import LOG_FLOOR
from plait.modalities.tabular import TabularModality
from plait.modalities.text import TextModality
from plait.modalities.timeseries import TimeseriesModality
from plait.types import Batch

ROWS = 24
FIELD_CLASS: dict[str, type] = {
    "series": TimeseriesModality,
    "specs": TabularModality,
    "vec": EmbeddingModality,
    "note": TextModality,
    "photo": ImageModality,
    "sound": AudioModality,
}
FIELD_KIND = {field: str(cls.kind) for field, cls in FIELD_CLASS.items()}
WORDS = ["pump", "motor", "bearing", "loud", "quiet", "noise", "grinding", "left", "right", "hot", "cold"]


def _table(root: Path) -> pl.DataFrame:
    rng = np.random.default_rng(7)
    series, photos, sounds, notes = [], [], [], []
    for i in range(ROWS):
        steps = int(rng.integers(12, 21))
        t = np.arange(steps) / 4.0
        channels = np.stack([np.sin(t + rng.uniform(0, 6)), np.cos(0.5 * t + rng.uniform(0, 6))], axis=1)
        channels[2, 1] = np.nan if i % 5 == 0 else channels[2, 1]  # a lost reading of one channel
        series.append(None if i == 3 else channels.tolist())
        pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"img{i}.png")
        photos.append(None if i == 5 else f"img{i}.png")
        wave = 0.3 * np.sin(2 * math.pi * rng.uniform(200, 2000) * np.arange(4800) / 16000)
        sf.write(root / f"clip{i}.wav", (wave + 0.01 * rng.standard_normal(4800)).astype(np.float32), 16000)
        sounds.append(None if i == 7 else f"clip{i}.wav")
        notes.append(None if i == 9 else " ".join(rng.choice(WORDS, size=int(rng.integers(3, 12)))))
    return pl.DataFrame(
        {
            "series": series,
            "power": [None if i % 6 == 0 else float(rng.normal(10, 3)) for i in range(ROWS)],
            "age": rng.normal(5, 2, ROWS).tolist(),
            "maker": [None if i == 4 else ["acme", "globex", "initech"][i % 3] for i in range(ROWS)],
            "size": [["s", "m", "l", "xl"][i % 4] for i in range(ROWS)],
            "vec": [None if i == 2 else rng.normal(0, 2, 6).tolist() for i in range(ROWS)],
            "note": notes,
            "photo": photos,
            "sound": sounds,
        }
    )


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Modality], pl.DataFrame, Path]:
    root = tmp_path_factory.mktemp("perturb")
    table = _table(root)
    modalities: dict[str, Modality] = {
        "series": TimeseriesModality("series"),
        "specs": TabularModality("specs", numeric=["power", "age"], categorical=["maker", "size"]),
        "vec": EmbeddingModality("vec"),
        "note": TextModality("note", vocab_size=40),
        "photo": ImageModality("photo", size=16),
        "sound": AudioModality("sound", max_seconds=0.3),
    }
    for modality in modalities.values():
        modality.fit(table, root)
    return modalities, table, root


@pytest.fixture(scope="module")
def loaded(fitted: Any) -> tuple[Batch, dict[str, dict[str, Any]], TextModality]:
    modalities, table, root = fitted
    tensors, _ = load_table(table, modalities, root, target=np.arange(ROWS) % 2)
    context = {f: perturbation_context(m) for f, m in modalities.items()}
    return tensors.batch(list(range(ROWS))), context, modalities["note"]


CASES = [(p.name, FIELD_KIND[field]) for field, cls in FIELD_CLASS.items() for p in perturbations_for(cls)]
FIELD_OF = {kind: field for field, kind in FIELD_KIND.items()}


def run(loaded: Any, name: str, kind: str, level: float, seed: int = 0) -> Batch:
    batch, context, _ = loaded
    field = FIELD_OF[kind]
    return perturb_batch(batch, field, FIELD_CLASS[field], name, level, seed, context=context[field])


def distance(before: Batch, after: Batch, field: str) -> float:
    """How far a field moved: value change (mismatch share for ids) + mask and presence changes."""
    a, b = before.values[field], after.values[field]
    moved = (a != b).double().mean() if not a.is_floating_point() else (a - b).abs().double().mean()
    flips = (before.present[field] != after.present[field]).double().mean()
    if field in before.masks:
        flips = flips + (before.masks[field] != after.masks[field]).double().mean()
    return float(moved + flips)


def parts(batch: Batch, field: str) -> list[Tensor]:
    return [
        batch.values[field],
        batch.present[field],
        *([batch.masks[field]] if field in batch.masks else []),
    ]


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_contract(loaded: Any, name: str, kind: str) -> None:
    batch, _, _ = loaded
    field = FIELD_OF[kind]
    perturbation = PERTURBATIONS.get(name)
    top = perturbation.levels[-1]
    before = [t.clone() for t in parts(batch, field)]

    for got, want in zip(parts(run(loaded, name, kind, 0.0), field), before, strict=True):
        assert torch.equal(got, want)  # level 0 is the input
    out = run(loaded, name, kind, top, seed=1)
    for got, want in zip(parts(batch, field), before, strict=True):
        assert torch.equal(got, want)  # the input was not written to
    for got, want in zip(parts(out, field), before, strict=True):
        assert got.shape == want.shape and got.dtype == want.dtype
    for got, want in zip(parts(out, field), parts(run(loaded, name, kind, top, seed=1), field), strict=True):
        assert torch.equal(got, want)  # same seed, same output
    middle = perturbation.levels[len(perturbation.levels) // 2]  # at 1, `missing` drops all whatever the seed
    differs = distance(
        run(loaded, name, kind, middle, seed=1), run(loaded, name, kind, middle, seed=2), field
    )
    assert (differs > 0) == perturbation.seeded
    assert distance(batch, out, field) > 0

    # Presence can only be lost, and an absent sample is zero-filled with no real step.
    present = out.present[field]
    assert not bool((present & ~batch.present[field]).any())
    assert bool((out.values[field][~present] == 0).all())
    if field in out.masks:
        assert not bool(out.masks[field][~present].any())
    for other in FIELD_KIND:
        if other != field:
            assert out.values[other] is batch.values[other] and out.present[other] is batch.present[other]
    assert out.target is batch.target


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_effect_grows_with_level(loaded: Any, name: str, kind: str) -> None:
    batch, _, _ = loaded
    field = FIELD_OF[kind]
    levels = PERTURBATIONS.get(name).levels
    seeds = range(3)
    effect = [sum(distance(batch, run(loaded, name, kind, lv, s), field) for s in seeds) for lv in levels]
    assert effect[0] == 0
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(effect)), effect
    assert effect[-1] > 2 * effect[1] > 0, effect


def test_levels_start_at_zero_evenly_spaced_and_every_kind_has_missing() -> None:
    for name in PERTURBATIONS:
        levels = PERTURBATIONS.get(name).levels
        steps = np.diff(levels)
        assert levels[0] == 0 and 10 <= len(levels) <= 11 and np.allclose(steps, steps[0]) and steps[0] > 0
    for kind in MODALITIES:
        names = [p.name for p in perturbations_for(MODALITIES.get(kind))]
        assert names[0] == "missing" and len(names) >= 2 and len(set(names)) == len(names), kind
    assert {p.name for p in perturbations_for(AudioModality)} == {
        "missing",
        "background_noise",
        "segment_dropout",
    }
    applied = {p.name for kind in MODALITIES for p in perturbations_for(MODALITIES.get(kind))}
    assert applied == set(PERTURBATIONS.names()), "every family applies to some kind"
    # the contract cases here cover the kinds with a field in this batch; plait.testing.check_modality
    # runs every family of every registered kind (tests/test_conformance_modalities.py)
    assert {name for name, _ in CASES} == {
        p.name for cls in FIELD_CLASS.values() for p in perturbations_for(cls)
    }


def test_missing_drops_the_chosen_fraction_of_present_samples(loaded: Any) -> None:
    batch, _, _ = loaded
    for field, kind in FIELD_KIND.items():
        observed = int(batch.present[field].sum())
        assert int(run(loaded, "missing", kind, 1.0).present[field].sum()) == 0
        half = run(loaded, "missing", kind, 0.5, seed=3)
        assert int(half.present[field].sum()) == observed - math.floor(0.5 * observed + 0.5)
        more = run(loaded, "missing", kind, 0.8, seed=3)  # levels share draws: drops are nested
        assert not bool((more.present[field] & ~half.present[field]).any())


def test_fields_perturbed_with_one_seed_draw_independently() -> None:
    batch = Batch(values={"a": torch.ones(40, 2), "b": torch.ones(40, 2)}, present={
        "a": torch.ones(40, dtype=torch.bool), "b": torch.ones(40, dtype=torch.bool)})  # fmt: skip
    once = perturb_batch(batch, "a", EmbeddingModality, "missing", 0.5, seed=0)
    both = perturb_batch(once, "b", EmbeddingModality, "missing", 0.5, seed=0)
    assert not torch.equal(both.present["a"], both.present["b"])


def test_time_shift_moves_readings_and_masks_vacated_steps() -> None:
    steps = 20
    values = torch.arange(1, steps + 1, dtype=torch.float32).repeat(30, 1)[:, :, None]  # (B, T, 1)
    mask = torch.ones(30, steps, dtype=torch.bool)
    mask[:, 16:] = False  # series of 16 steps padded to 20
    values = values * mask[:, :, None]
    batch = Batch(values={"s": values}, present={"s": torch.ones(30, dtype=torch.bool)}, masks={"s": mask})
    out = perturb_batch(batch, "s", TimeseriesModality, "time_shift", 0.5, seed=4)
    shifted, new_mask = out.values["s"][:, :, 0], out.masks["s"]
    shifts = set()
    for row, keep in zip(shifted, new_mask, strict=True):
        first = int(keep.nonzero()[0])
        shift = first - int(row[first]) + 1  # output step t holds input step t - s (value t - s + 1)
        shifts.add(shift)
        assert abs(shift) <= 8 and int(keep.sum()) == 16 - abs(shift)
        expected = torch.arange(steps) - shift + 1.0
        assert torch.equal(row[keep], expected[keep]) and bool((row[~keep] == 0).all())
        assert not bool(keep[16:].any())  # the window stays where it was
    assert len(shifts) > 3 and any(s < 0 for s in shifts) and any(s > 0 for s in shifts)


def test_sample_dropout_masks_steps_and_a_series_with_none_left_is_absent(loaded: Any) -> None:
    batch, _, _ = loaded
    out = run(loaded, "sample_dropout", "timeseries", 0.5, seed=1)
    before, after = batch.masks["series"], out.masks["series"]
    assert not bool((after & ~before).any())
    share = float(after.sum()) / float(before.sum())
    assert 0.35 < share < 0.65
    dropped = before & ~after
    assert bool((out.values["series"][dropped] == 0).all())
    single = Batch(values={"s": torch.ones(1, 3, 1)}, present={"s": torch.ones(1, dtype=torch.bool)},
                   masks={"s": torch.tensor([[True, False, False]])})  # fmt: skip
    gone = [perturb_batch(single, "s", TimeseriesModality, "sample_dropout", 0.9, seed=s) for s in range(20)]
    assert any(not bool(g.present["s"][0]) for g in gone)  # its only step dropped → absent, not empty


def test_word_drop_left_packs_tokens_and_keeps_mask_consistent(loaded: Any) -> None:
    batch, _, _ = loaded
    out = run(loaded, "word_drop", "text", 0.5, seed=5)
    ids, mask = out.values["note"], out.masks["note"]
    count = mask.sum(dim=1)
    gaps = 0
    assert torch.equal(mask, torch.arange(ids.shape[1])[None, :] < count[:, None])  # a prefix
    assert bool((ids[~mask] == 0).all()) and bool((ids[mask] != 0).all())
    for old_ids, old_mask, new_ids, new_mask in zip(
        batch.values["note"], batch.masks["note"], ids, mask, strict=True
    ):
        original, kept = old_ids[old_mask].tolist(), new_ids[new_mask].tolist()
        it = iter(original)
        assert all(token in it for token in kept)  # kept tokens are a subsequence, in order
        gaps += kept != original[: len(kept)]  # tokens went from the middle, not only the tail
    assert gaps > ROWS // 2
    assert 0.3 < float(count.sum()) / float(batch.masks["note"].sum()) < 0.7
    assert torch.equal(out.present["note"], batch.present["note"] & (count > 0))


def test_typo_draws_other_non_special_ids_of_the_vocabulary(loaded: Any) -> None:
    batch, context, text = loaded
    assert text.tokenizer_ is not None
    assert text.tokenizer_.token_to_id("[PAD]") == 0 and text.tokenizer_.token_to_id("[UNK]") == 1
    vocab = context["note"]["vocab_size"]
    out = run(loaded, "typo", "text", 1.0, seed=2)
    real = batch.masks["note"] & batch.present["note"][:, None]
    old, new = batch.values["note"], out.values["note"]
    assert bool((new[real] != old[real]).all())
    assert bool(((new[real] >= 2) & (new[real] < vocab)).all())
    assert torch.equal(new[~real], old[~real]) and torch.equal(out.masks["note"], batch.masks["note"])


def test_tabular_noise_spares_categories_and_category_swap_spares_numbers(loaded: Any, fitted: Any) -> None:
    batch, context, _ = loaded
    specs = batch.values["specs"]
    noisy = run(loaded, "gaussian_noise", "tabular", 1.0, seed=1).values["specs"]
    assert torch.equal(noisy[:, 2:], specs[:, 2:])
    cells = observed_cells(specs, batch.present["specs"], batch.masks["specs"])[:, :2]
    assert torch.equal(noisy[:, :2][~cells], specs[:, :2][~cells])
    swapped = run(loaded, "category_swap", "tabular", 1.0, seed=1).values["specs"]
    assert torch.equal(swapped[:, :2], specs[:, :2])
    codes, new = specs[:, 2:], swapped[:, 2:]
    known = codes > 0
    assert bool((new[known] != codes[known]).all()) and torch.equal(new[~known], codes[~known])
    limits = torch.tensor(context["specs"]["level_counts"], dtype=new.dtype).expand_as(new)
    assert bool(((new[known] >= 1) & (new[known] <= limits[known])).all())
    assert bool((new == new.round()).all())
    # Without a context, perturb_batch reads it from the fitted modality: categories still spared.
    default = perturb_batch(batch, "specs", fitted[0]["specs"], "gaussian_noise", 1.0, seed=1)
    assert torch.equal(default.values["specs"], noisy)
    with pytest.raises(ConfigError, match="numeric_columns=5 but the field has 4 columns"):
        perturb_batch(
            batch, "specs", TabularModality, "gaussian_noise", 0.5, 0, context={"numeric_columns": 5}
        )


def test_noise_scale_follows_the_level(loaded: Any) -> None:
    batch, _, _ = loaded
    series = batch.values["series"]
    cells = observed_cells(series, batch.present["series"], batch.masks["series"])
    for level in (0.2, 0.8):
        delta = run(loaded, "gaussian_noise", "timeseries", level, seed=1).values["series"] - series
        assert float(delta[cells].std()) == pytest.approx(level * float(series[cells].std()), rel=0.15)
        assert bool((delta[~cells] == 0).all())
    photo = batch.values["photo"]
    delta = run(loaded, "pixel_noise", "image", 0.5, seed=1).values["photo"] - photo
    assert float(delta[batch.present["photo"]].std()) == pytest.approx(0.5 * float(photo[0].std()), rel=0.1)


def test_audio_noise_adds_the_level_squared_in_power_and_dropout_silences(loaded: Any) -> None:
    batch, context, _ = loaded
    mean, std = context["sound"]["log_mel_mean"], context["sound"]["log_mel_std"]
    x = batch.values["sound"]
    real = observed_cells(x.transpose(1, 2), batch.present["sound"], batch.masks["sound"]).transpose(1, 2)

    def power(v: Tensor) -> float:
        return float((torch.exp(v.double() * std + mean) - LOG_FLOOR)[real].mean())

    for level in (0.5, 1.0):
        noisy = run(loaded, "background_noise", "audio", level, seed=1).values["sound"]
        assert power(noisy) / power(x) == pytest.approx(1 + level**2, rel=0.1)
    silent = run(loaded, "segment_dropout", "audio", 0.5, seed=1).values["sound"]
    floor = (math.log(LOG_FLOOR) - mean) / std
    changed = silent != x
    assert torch.allclose(silent[changed], torch.full_like(silent[changed], floor))
    frames = changed.any(dim=1)  # (B, F): whole frames go silent, in runs of 10
    assert 0.3 < float(frames.sum()) / float(batch.masks["sound"].sum()) < 0.7
    with pytest.raises(ConfigError, match="log_mel_mean"):
        perturb_batch(batch, "sound", AudioModality, "segment_dropout", 0.5, seed=0)  # no fitted state


def test_occlusion_covers_the_level_of_the_area_and_blur_smooths(loaded: Any) -> None:
    batch, _, _ = loaded
    photo, present = batch.values["photo"], batch.present["photo"]
    hidden = run(loaded, "occlusion", "image", 0.25, seed=1).values["photo"]
    covered = ((hidden == 0) & (photo != 0)).all(dim=1)  # (B, H, W)
    assert covered[present].sum(dim=(1, 2)).eq(8 * 8).all()  # sqrt(0.25) · 16 = 8 pixels a side
    blurred = run(loaded, "blur", "image", 1.5).values["photo"]
    assert float(blurred[present].std()) < 0.5 * float(photo[present].std())
    assert float(blurred[present].mean()) == pytest.approx(float(photo[present].mean()), abs=0.05)


def test_errors_name_the_fix(loaded: Any) -> None:
    batch, context, _ = loaded
    with pytest.raises(UnknownNameError, match="did you mean 'gaussian_noise'"):
        perturb_batch(batch, "series", TimeseriesModality, "gausian_noise", 0.5, seed=0)
    with pytest.raises(
        ConfigError,
        match="'blur' applies to image fields, not to text field 'note'; "
        "perturbations for text: missing, typo, word_drop",
    ):
        perturb_batch(batch, "note", TextModality, "blur", 0.5, seed=0)
    with pytest.raises(ConfigError, match="did you mean 'photo'"):
        perturb_batch(batch, "phot", ImageModality, "blur", 0.5, seed=0)
    with pytest.raises(ConfigError, match=r"level must be a number in \[0, 1\]"):
        perturb_batch(batch, "series", TimeseriesModality, "missing", 1.5, seed=0)
    with pytest.raises(ConfigError, match="level must be a finite number >= 0"):
        perturb_batch(batch, "photo", ImageModality, "blur", -1.0, seed=0)
    with pytest.raises(TypeError, match="not the kind name 'image'"):
        perturbations_for("image")
    with pytest.raises(ConfigError, match="expected timeseries values"):
        time_shift = PERTURBATIONS.get("time_shift").fn
        time_shift(batch.values["vec"], batch.present["vec"], None, 0.5, torch.Generator())
    assert isinstance(PERTURBATIONS.get("missing"), Perturbation) and context["series"] == {}


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_the_stated_level_range_is_the_one_enforced(loaded: Any, name: str, kind: str) -> None:
    family = PERTURBATIONS.get(name)
    if math.isinf(family.max_level):
        return
    run(loaded, name, kind, family.max_level)
    with pytest.raises(ConfigError, match=r"level must be a number in \[0, 1\]"):
        run(loaded, name, kind, family.max_level + 0.5)


def test_pixel_gaussian_adds_sigma_on_0_1_pixels_and_clips(loaded: Any) -> None:
    batch, context, _ = loaded
    mean = torch.tensor(context["photo"]["pixel_mean"])[None, :, None, None]
    std = torch.tensor(context["photo"]["pixel_std"])[None, :, None, None]
    present = batch.present["photo"]
    pixels = (batch.values["photo"] * std + mean)[present]  # the [0, 1] pixels the modality read
    assert float(pixels.min()) >= -1e-5 and float(pixels.max()) <= 1 + 1e-5
    noisy = (run(loaded, "pixel_gaussian", "image", 0.3).values["photo"] * std + mean)[present]
    assert float(noisy.min()) >= -1e-5 and float(noisy.max()) <= 1 + 1e-5  # clipped to [0, 1]
    inside = (noisy > 1e-4) & (noisy < 1 - 1e-4)  # not clipped: the noise shows its σ
    assert float((noisy - pixels)[inside].std()) == pytest.approx(0.3, rel=0.2)
    assert torch.equal(
        run(loaded, "pixel_gaussian", "image", 0.3).values["photo"][~present], batch.values["photo"][~present]
    )


class _Toy:
    """A modality of a kind plait does not ship, declaring a family nobody registered."""

    kind = "lidar"
    perturbations = ("point_jitter",)


def test_a_family_a_modality_names_but_nobody_registered_is_a_clear_error() -> None:
    with pytest.raises(UnknownNameError) as err:
        perturbations_for(_Toy())
    message = str(err.value)
    assert "the lidar modality (_Toy) declares the perturbation family 'point_jitter'" in message
    assert f"Registered families: {', '.join(PERTURBATIONS.names())}" in message
