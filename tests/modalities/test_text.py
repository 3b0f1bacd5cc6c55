import json
import math
from pathlib import Path

import polars as pl
import pytest
import torch

from plait.errors import ConfigError, DataError
from plait.modalities.base import Encoder, NotFittedError
from plait.modalities.text import TextModality
from plait.types import Absent

ROOT = Path(".")
TEXTS = [
    "The pump is loud and vibrates",
    "bearing noise from the left motor",
    "all quiet, pump running fine",
    "Loud grinding noise near the bearing",
    None,
    "   ",
]


def fitted(**options: object) -> TextModality:
    modality = TextModality("note", vocab_size=60, **options)  # type: ignore[arg-type]
    modality.fit(pl.DataFrame({"note": TEXTS}), ROOT)
    return modality


def test_state_json_round_trip_gives_identical_ids() -> None:
    modality = fitted(max_tokens=16)
    state = json.loads(json.dumps(modality.get_state()))
    restored = TextModality("note")
    restored.set_state(state)
    assert restored.max_tokens == 16
    for text in ["the pump is loud", "Unseen words: zebra!", "bearing"]:
        a, b = modality.load({"note": text}, ROOT), restored.load({"note": text}, ROOT)
        assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
        assert torch.equal(a, b)
        assert a.dtype == torch.long and a.dim() == 1


def test_pad_is_zero_and_lowercase_option() -> None:
    lower = fitted()
    tokenizer = lower.tokenizer_
    assert tokenizer is not None and tokenizer.token_to_id("[PAD]") == 0
    a, b = lower.load({"note": "PUMP"}, ROOT), lower.load({"note": "pump"}, ROOT)
    assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    cased = fitted(lowercase=False)
    c, d = cased.load({"note": "PUMP"}, ROOT), cased.load({"note": "pump"}, ROOT)
    assert isinstance(c, torch.Tensor) and isinstance(d, torch.Tensor) and not torch.equal(c, d)


@pytest.mark.parametrize("value", [None, math.nan, "", "   \n\t", "MISSING_KEY"])
def test_empty_values_are_absent(value: object) -> None:
    modality = fitted()
    row = {} if value == "MISSING_KEY" else {"note": value}
    result = modality.load(row, ROOT)
    assert isinstance(result, Absent) and result.reason == "empty"


def test_non_string_value_is_read_as_text() -> None:
    result = fitted().load({"note": 42}, ROOT)
    assert isinstance(result, torch.Tensor) and result.numel() > 0


def test_truncation_at_max_tokens() -> None:
    modality = fitted(max_tokens=5)
    result = modality.load({"note": " ".join(["pump loud bearing noise"] * 10)}, ROOT)
    assert isinstance(result, torch.Tensor) and result.shape == (5,)


def test_collate_pads_with_zero_and_masks() -> None:
    modality = fitted()
    a = torch.tensor([5, 6, 7])
    b = torch.tensor([8])
    values, mask = modality.collate([a, None, b])
    assert values.shape == (3, 3) and mask is not None
    assert mask.tolist() == [[True, True, True], [False, False, False], [True, False, False]]
    assert values[1].tolist() == [0, 0, 0] and values[2].tolist() == [8, 0, 0]


@pytest.mark.parametrize("encoder", ["transformer", "cnn"])
def test_encoder_shapes_absent_and_gradients(encoder: str) -> None:
    torch.manual_seed(0)
    modality = fitted(encoder=encoder, max_tokens=8)
    items = [modality.load({"note": t}, ROOT) for t in ["the pump is loud", None, "bearing"]]
    values, mask = modality.collate([i if isinstance(i, torch.Tensor) else None for i in items])
    present = torch.tensor([True, False, True])
    enc = modality.build_encoder(16)
    assert enc.output_dim == 16 and isinstance(enc, Encoder)
    out = enc(values, present, mask)
    length = values.shape[1]
    assert out.tokens.shape == (3, length, 16) and out.pooled.shape == (3, 16)
    assert out.token_mask is not None and not out.token_mask[1].any()
    assert torch.isfinite(out.tokens).all() and torch.isfinite(out.pooled).all()
    assert torch.equal(out.pooled[1], torch.zeros(16)) and out.pooled[0].abs().sum() > 0
    # a random projection: a plain sum has zero gradient through a final LayerNorm
    (
        out.pooled[0] * torch.randn(out.pooled.shape[1], generator=torch.Generator().manual_seed(1))
    ).sum().backward()
    assert enc.embed.weight.grad is not None and enc.embed.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("encoder", ["transformer", "cnn"])
def test_all_absent_batch_gives_finite_zero_pooled(encoder: str) -> None:
    modality = fitted(encoder=encoder)
    values, mask = modality.collate([None, None])
    enc = modality.build_encoder(8).eval()
    out = enc(values, torch.tensor([False, False]), mask)
    assert torch.isfinite(out.tokens).all()
    assert torch.equal(out.pooled, torch.zeros(2, 8))


def test_present_false_hides_tokens_of_a_dropped_sample() -> None:
    # Modality dropout flips `present` without zeroing values: the sample must still read as absent.
    modality = fitted()
    item = modality.load({"note": "pump loud"}, ROOT)
    assert isinstance(item, torch.Tensor)
    values, mask = modality.collate([item])
    out = modality.build_encoder(8)(values, torch.tensor([False]), mask)
    assert torch.equal(out.pooled, torch.zeros(1, 8))


def test_not_fitted_and_bad_options() -> None:
    with pytest.raises(NotFittedError, match="note"):
        TextModality("note").get_state()
    with pytest.raises(ConfigError, match=r"fields\.note\.max_tokens"):
        TextModality("note", max_tokens=0)
    with pytest.raises(ConfigError, match=r"fields\.note\.encoder"):
        TextModality("note", encoder="lstm")
    with pytest.raises(DataError, match="'missing'"):
        TextModality("note", column="missing").fit(pl.DataFrame({"note": ["a"]}), ROOT)
    with pytest.raises(DataError, match="no non-empty text"):
        TextModality("note").fit(pl.DataFrame({"note": [None, " "]}), ROOT)


def test_tokenizer_training_is_the_same_in_every_process() -> None:
    """Regression: the WordPiece trainer broke ties in hash order, so the vocabulary (and the
    metrics) changed from one process to the next for the same texts and seed."""
    import subprocess
    import sys

    code = (
        "from plait.modalities.text import train_tokenizer\n"
        "texts = [f'{a} pump {b} noise near the {c} housing' for a in ('loud', 'quiet', 'odd', 'faint')"
        " for b in ('grinding', 'humming', 'hissing', 'rattling') for c in ('bearing', 'seal', 'impeller')]\n"
        "print(train_tokenizer(texts, 120, True).to_str())\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**__import__("os").environ, "PYTHONHASHSEED": str(seed)},
        ).stdout
        for seed in (1, 2, 3)
    }
    assert len(outputs) == 1
