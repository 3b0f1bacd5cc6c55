"""Cross-attention (MulT-style) and set (PMA) fusion: the contract plus what is specific to each."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from plait.errors import ConfigError
from plait.fusion.cross_attention import CrossAttentionFusion
from plait.fusion.set_fusion import SetFusion
from plait.modalities.base import masked_mean
from plait.testing.conformance import check_fusion
from plait.types import EncoderOutput

DIMS = {"audio": 6, "note": 4, "specs": 3}
LENGTHS = {"audio": 5, "note": 3, "specs": 1}  # unaligned sequences of different lengths


def _present(*rows: tuple[bool, ...]) -> dict[str, Tensor]:
    cols = torch.tensor(rows)  # (B, M)
    return {f: cols[:, i] for i, f in enumerate(DIMS)}


def _inputs(present: dict[str, Tensor], seed: int = 0) -> dict[str, EncoderOutput]:
    """Tokens of a different length per field; 'audio' is padded: sample i keeps its first 5 - i steps."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for f, dim in DIMS.items():
        keep = present[f].float()
        b = keep.shape[0]
        tokens = torch.randn(b, LENGTHS[f], dim, generator=gen) * keep[:, None, None]
        mask = None
        if f == "audio":
            mask = torch.arange(LENGTHS[f]).unsqueeze(0) < (LENGTHS[f] - torch.arange(b)).unsqueeze(1)
            mask = mask & present[f].unsqueeze(1)
        out[f] = EncoderOutput(tokens=tokens, pooled=tokens.mean(dim=1), token_mask=mask)
    return out


def _cross(**options: int) -> CrossAttentionFusion:
    torch.manual_seed(0)
    return CrossAttentionFusion(DIMS, output_dim=8, heads=2, **options).eval()


def test_cross_attention_passes_the_fusion_contract() -> None:
    check_fusion(CrossAttentionFusion, heads=2)
    check_fusion(CrossAttentionFusion, heads=1, layers=2, dropout=0.0)


def test_set_passes_the_fusion_contract() -> None:
    check_fusion(SetFusion, heads=2)


def test_cross_attention_ignores_padding_content_of_unequal_sequences() -> None:
    fusion = _cross()
    present = _present((True, True, True), (True, False, True), (True, True, False))
    inputs = _inputs(present)
    audio = inputs["audio"]
    assert audio.token_mask is not None
    noisy = torch.where(audio.token_mask[..., None], audio.tokens, 100 * torch.randn(audio.tokens.shape))
    changed = dict(inputs, audio=EncoderOutput(noisy, audio.pooled, audio.token_mask))
    with torch.no_grad():
        before, after = fusion(inputs, present), fusion(changed, present)
    assert torch.isfinite(before.fused).all()
    assert torch.allclose(before.fused, after.fused, atol=1e-5)
    # ...while a real audio token does matter, for its own row only
    real = audio.tokens.clone()
    real[0, 0] += 1.0
    moved = dict(inputs, audio=EncoderOutput(real, audio.pooled, audio.token_mask))
    with torch.no_grad():
        after = fusion(moved, present)
    assert not torch.allclose(before.fused[0], after.fused[0], atol=1e-4)
    assert torch.allclose(before.fused[1:], after.fused[1:], atol=1e-5)


def test_cross_attention_absent_field_tokens_do_not_change_the_output() -> None:
    fusion = _cross()
    present = _present((True, False, True), (False, True, True), (False, False, True))
    inputs = _inputs(present)
    changed = {}
    for f, enc in inputs.items():
        absent = ~present[f]
        tokens = torch.where(absent[:, None, None], 10 * torch.randn(enc.tokens.shape), enc.tokens)
        pooled = torch.where(absent[:, None], 10 * torch.randn(enc.pooled.shape), enc.pooled)
        changed[f] = EncoderOutput(tokens, pooled, enc.token_mask)
    with torch.no_grad():
        before, after = fusion(inputs, present), fusion(changed, present)
    assert torch.allclose(before.fused, after.fused, atol=1e-5)
    assert before.weights is not None
    expected = torch.tensor([[0.5, 0.0, 0.5], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]])
    assert torch.allclose(before.weights, expected)


def test_cross_attention_lone_field_keeps_its_own_projection() -> None:
    fusion = _cross()
    present = _present((True, False, False), (True, False, False))
    inputs = _inputs(present)
    with torch.no_grad():
        out = fusion(inputs, present)
        seq, valid = fusion._sequence(0, inputs["audio"], inputs["audio"].pooled, present["audio"])
        own = masked_mean(seq, valid)  # (B, D): no source present, no cross-attention
    assert torch.allclose(out.fused, fusion.head(fusion.norm(own)), atol=1e-6)


def test_cross_attention_target_learns_from_a_present_source() -> None:
    fusion = _cross()
    present = _present((True, True, False))
    inputs = _inputs(present)
    note = inputs["note"]
    moved = dict(inputs, note=EncoderOutput(note.tokens + 1.0, note.pooled, note.token_mask))

    def audio_target(given: dict[str, EncoderOutput]) -> Tensor:
        seqs = [fusion._sequence(i, given[f], given[f].pooled, present[f]) for i, f in enumerate(DIMS)]
        mask = torch.stack(list(present.values()), dim=1)  # (B, M)
        learned = [
            (s, pair(seqs[0][0], seqs[s][0], seqs[s][1]))
            for (t, s), pair in zip(fusion._pairs(), fusion.pairs, strict=True)
            if t == 0
        ]
        return masked_mean(fusion._combine(seqs[0][0], learned, mask), seqs[0][1])  # (B, D)

    with torch.no_grad():
        assert not torch.allclose(audio_target(inputs), audio_target(moved), atol=1e-4)
        # 'specs' is absent: what its tokens hold must not reach the audio target
        specs = inputs["specs"]
        noise = dict(inputs, specs=EncoderOutput(specs.tokens + 5.0, specs.pooled + 5.0, None))
        assert torch.allclose(audio_target(inputs), audio_target(noise), atol=1e-6)


def test_cross_attention_present_field_with_every_token_masked_stays_finite() -> None:
    fusion = _cross()
    present = _present((True, True, True), (True, True, False))
    inputs = _inputs(present)
    audio = inputs["audio"]
    empty = torch.zeros_like(audio.tokens[..., 0], dtype=torch.bool)  # (B, L): no real token
    inputs["audio"] = EncoderOutput(audio.tokens, audio.pooled, empty)
    out = fusion(inputs, present)
    assert torch.isfinite(out.fused).all()
    out.fused.sum().backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in fusion.parameters())


def test_cross_attention_pair_cap_suggests_other_fusions() -> None:
    six = {f"f{i}": 4 for i in range(6)}  # 6 · 5 = 30 ordered pairs
    with pytest.raises(ConfigError, match=r"30 ordered cross-modal pairs.*'attention' or 'set'"):
        CrossAttentionFusion(six, output_dim=8)
    fusion = CrossAttentionFusion(six, output_dim=8, max_pairs=30)
    assert len(fusion.pairs) == 30
    assert len(CrossAttentionFusion({f"f{i}": 4 for i in range(5)}, output_dim=8).pairs) == 20


@pytest.mark.parametrize("cls", [CrossAttentionFusion, SetFusion])
def test_heads_must_divide_output_dim(cls: type) -> None:
    with pytest.raises(ConfigError, match=r"output_dim \(6\) must be divisible by heads \(4\)"):
        cls(DIMS, output_dim=6, heads=4)


def _permuted_copy(fusion: SetFusion, order: tuple[str, ...]) -> SetFusion:
    """A SetFusion over the same fields in another order, holding the same weights per field."""
    torch.manual_seed(1)
    other = SetFusion({f: DIMS[f] for f in order}, output_dim=8, heads=2).eval()
    state = fusion.state_dict()
    for new_i, f in enumerate(order):
        old_i = fusion.field_order.index(f)
        for name in ("weight", "bias"):
            state[f"proj.{new_i}.{name}"] = fusion.state_dict()[f"proj.{old_i}.{name}"]
    state["field_embedding"] = fusion.field_embedding.detach()[[fusion.field_order.index(f) for f in order]]
    other.load_state_dict(state)
    return other


def test_set_output_does_not_depend_on_field_order() -> None:
    torch.manual_seed(0)
    fusion = SetFusion(DIMS, output_dim=8, heads=2).eval()
    order = ("specs", "audio", "note")
    other = _permuted_copy(fusion, order)
    present = _present((True, True, True), (True, False, True), (False, True, False), (False, False, False))
    inputs = _inputs(present)
    with torch.no_grad():
        a = fusion(inputs, present)
        b = other(inputs, present)
    assert a.weights is not None and b.weights is not None
    assert torch.allclose(a.fused, b.fused, atol=1e-6)
    columns = [order.index(f) for f in fusion.field_order]
    assert torch.allclose(a.weights, b.weights[:, columns], atol=1e-6)
    assert not torch.allclose(a.fused[0], a.fused[1], atol=1e-4)  # the check is not vacuous


def test_set_weights_are_the_seed_attention_over_present_fields() -> None:
    torch.manual_seed(0)
    fusion = SetFusion(DIMS, output_dim=8, heads=2).eval()
    present = _present((True, False, True), (False, False, False))
    inputs = _inputs(present)
    with torch.no_grad():
        out = fusion(inputs, present)
        fields = torch.stack([p(inputs[f].pooled) for p, f in zip(fusion.proj, DIMS, strict=True)], 1)
        _, probs = fusion._pool(fields + fusion.field_embedding, torch.stack(list(present.values()), 1))
    assert out.weights is not None
    expected = probs[0].mean(dim=0)  # (H, M) -> (M,)
    assert torch.allclose(out.weights[0], expected / expected.sum(), atol=1e-6)
    assert out.weights[0, 1] == 0
    assert torch.equal(out.weights[1], torch.zeros(3))
    assert torch.isfinite(out.fused[1]).all()
