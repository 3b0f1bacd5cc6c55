"""Stacking fusion: the uniform mix before fitting, the meta-learner fitted on held-out rows,
its round trip, and missing fields at test time."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from plait.errors import ConfigError, DataError
from plait.fusion.stacking import StackingFusion
from plait.testing.conformance import check_fusion
from plait.types import EncoderOutput

K = 3
DIMS = {"signal": K, "noise": 8}


def _rows(n: int, seed: int) -> tuple[dict[str, Tensor], Tensor]:
    """'signal' is the class one-hot plus noise (informative); 'noise' is loud noise."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, K, (n,), generator=gen)
    signal = 2 * F.one_hot(y, K).float() + 0.8 * torch.randn(n, K, generator=gen)
    return {"signal": signal, "noise": 3 * torch.randn(n, 8, generator=gen)}, y


def _encoded(pooled: dict[str, Tensor]) -> dict[str, EncoderOutput]:
    return {f: EncoderOutput(tokens=p.unsqueeze(1), pooled=p) for f, p in pooled.items()}


def _all(n: int, **absent: bool) -> dict[str, Tensor]:
    return {f: torch.full((n,), not absent.get(f, False)) for f in DIMS}


def _accuracy(logits: Tensor, y: Tensor) -> float:
    return float((logits.argmax(dim=1) == y).float().mean())


@pytest.fixture(scope="module")
def trained() -> StackingFusion:
    """Heads trained alone (as trains_fields_alone asks) on a small training set: the 'noise' head
    memorises its rows and is confidently wrong on new ones."""
    torch.manual_seed(0)
    fusion = StackingFusion(DIMS, output_dim=K, hidden=32, dropout=0.0)
    pooled, y = _rows(60, seed=1)
    optimizer = torch.optim.Adam(fusion.parameters(), lr=1e-2)
    for _ in range(300):
        outputs = fusion.per_field_outputs(_encoded(pooled))
        loss = sum(F.cross_entropy(o, y) for o in outputs.values())
        optimizer.zero_grad()
        loss.backward()  # type: ignore[union-attr]
        optimizer.step()
    return fusion.eval()


@pytest.fixture(scope="module")
def fitted(trained: StackingFusion) -> StackingFusion:
    fusion = StackingFusion(DIMS, output_dim=K, hidden=32, dropout=0.0)
    fusion.load_state_dict(trained.state_dict())
    pooled, y = _rows(200, seed=2)
    fusion.fit_held_out(pooled, _all(200), y, "classification")
    return fusion.eval()


def test_before_fitting_fused_is_the_mean_of_the_present_fields_decisions() -> None:
    torch.manual_seed(0)
    fusion = StackingFusion(DIMS, output_dim=K).eval()
    pooled, _ = _rows(4, seed=0)
    cols = torch.tensor([[True, True], [True, False], [False, True], [False, False]])
    present = {f: cols[:, i] for i, f in enumerate(DIMS)}
    with torch.no_grad():
        fusion.fallback.copy_(torch.tensor([1.0, 2.0, 3.0]))
        out = fusion(_encoded(pooled), present)
        per = fusion.per_field_outputs(_encoded(pooled))
    assert not bool(fusion.meta_fitted)
    assert torch.allclose(out.fused[0], (per["signal"][0] + per["noise"][0]) / 2, atol=1e-6)
    assert torch.allclose(out.fused[1], per["signal"][1], atol=1e-6)
    assert torch.allclose(out.fused[2], per["noise"][2], atol=1e-6)
    assert torch.equal(out.fused[3], torch.tensor([1.0, 2.0, 3.0]))
    assert out.weights is not None
    assert torch.equal(out.weights, torch.tensor([[0.5, 0.5], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))


def test_the_meta_learner_relies_on_the_informative_field(
    trained: StackingFusion, fitted: StackingFusion
) -> None:
    pooled, y = _rows(300, seed=3)
    with torch.no_grad():
        per = trained.per_field_outputs(_encoded(pooled))
        uniform = trained(_encoded(pooled), _all(300)).fused
        meta = fitted(_encoded(pooled), _all(300))
    signal_acc, noise_acc = _accuracy(per["signal"], y), _accuracy(per["noise"], y)
    assert signal_acc > noise_acc + 0.3  # the data are what the test claims
    assert _accuracy(meta.fused, y) >= signal_acc - 0.02
    assert _accuracy(meta.fused, y) > _accuracy(uniform, y) + 0.05
    w = fitted.meta_weight
    assert w[:, :K].norm() > 5 * w[:, K : 2 * K].norm()  # signal's block against noise's block
    assert meta.weights is not None
    assert float(meta.weights[:, 0].mean()) > 0.8


def test_a_field_missing_at_test_time_gives_sensible_output(
    trained: StackingFusion, fitted: StackingFusion
) -> None:
    pooled, y = _rows(300, seed=3)
    with torch.no_grad():
        signal_acc = _accuracy(trained.per_field_outputs(_encoded(pooled))["signal"], y)
        signal_only = fitted(_encoded(pooled), _all(300, noise=True))
        noise_only = fitted(_encoded(pooled), _all(300, signal=True))
    assert _accuracy(signal_only.fused, y) >= signal_acc - 0.02
    assert bool(torch.isfinite(noise_only.fused).all())
    assert noise_only.weights is not None
    assert torch.equal(noise_only.weights, torch.tensor([[0.0, 1.0]]).expand(300, -1))


def test_the_fitted_meta_learner_round_trips_through_state_dict(fitted: StackingFusion) -> None:
    fresh = StackingFusion(DIMS, output_dim=K, hidden=32, dropout=0.0).eval()
    fresh.load_state_dict(fitted.state_dict())
    assert bool(fresh.meta_fitted) and bool(fresh.meta_log_softmax)
    pooled, _ = _rows(10, seed=4)
    present = {"signal": torch.arange(10) % 2 == 0, "noise": torch.arange(10) % 3 == 0}
    with torch.no_grad():
        a, b = fitted(_encoded(pooled), present), fresh(_encoded(pooled), present)
    assert torch.equal(a.fused, b.fused)
    assert a.weights is not None and b.weights is not None
    assert torch.equal(a.weights, b.weights)


def test_fitting_twice_gives_the_same_meta_learner(trained: StackingFusion) -> None:
    fusion = StackingFusion(DIMS, output_dim=K, hidden=32).train()  # dropout on: the fit turns it off
    fusion.load_state_dict(trained.state_dict())
    pooled, y = _rows(50, seed=5)
    fusion.fit_held_out(pooled, _all(50), y, "classification")
    first = fusion.meta_weight.clone()
    fusion.fit_held_out(pooled, _all(50), y, "classification")
    assert torch.equal(first, fusion.meta_weight)
    assert fusion.training  # the mode it was called in comes back


def test_regression_meta_learner_fits_a_target_made_from_one_field() -> None:
    torch.manual_seed(0)
    fusion = StackingFusion(DIMS, output_dim=1, hidden=8, meta_l2=0.0).eval()
    pooled, _ = _rows(100, seed=6)
    with torch.no_grad():
        decision = fusion.per_field_outputs(_encoded(pooled))["signal"].squeeze(1)
        uniform = fusion(_encoded(pooled), _all(100)).fused.squeeze(1)
    target = 2 * decision - 0.5  # a function of the 'signal' decision alone
    fusion.fit_held_out(pooled, _all(100), target, "regression")
    assert not bool(fusion.meta_log_softmax)
    with torch.no_grad():
        both = fusion(_encoded(pooled), _all(100)).fused.squeeze(1)
        alone = fusion(_encoded(pooled), _all(100, noise=True)).fused.squeeze(1)
    # not exact: the leave-one-field-out copies ask 'noise' alone to predict the target too
    assert float(fusion.meta_weight[0, 0]) == pytest.approx(2.0, abs=0.1)
    mse_uniform = float(((uniform - target) ** 2).mean())
    assert float(((both - target) ** 2).mean()) < 0.02 * mse_uniform
    assert float(((alone - target) ** 2).mean()) < 0.02 * mse_uniform


@pytest.mark.parametrize("output_dim", [1, 4])
def test_passes_the_fusion_contract_after_fit_held_out(output_dim: int) -> None:
    check_fusion(StackingFusion, output_dim=output_dim, hidden=8)


def test_fit_held_out_rejects_bad_targets_and_empty_rows() -> None:
    fusion = StackingFusion(DIMS, output_dim=K, hidden=8)
    pooled, y = _rows(6, seed=7)
    with pytest.raises(ConfigError, match="task_type"):
        fusion.fit_held_out(pooled, _all(6), y, "ranking")
    with pytest.raises(DataError, match=r"class indices in \[0, 3\)"):
        fusion.fit_held_out(pooled, _all(6), y + 3, "classification")
    with pytest.raises(DataError, match="regression needs output_dim 1"):
        fusion.fit_held_out(pooled, _all(6), y.float(), "regression")
    with pytest.raises(DataError, match=r"expected \[6\]"):
        fusion.fit_held_out(pooled, _all(6), y[:4], "classification")
    with pytest.raises(DataError, match="none of the 6 held-out rows"):
        fusion.fit_held_out(pooled, _all(6, signal=True, noise=True), y, "classification")
    assert not bool(fusion.meta_fitted)
    with pytest.raises(ConfigError, match="meta_l2"):
        StackingFusion(DIMS, output_dim=K, meta_l2=-1.0)
