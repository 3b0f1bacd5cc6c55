"""SharedSpace: projections into one space, unit length, the temperature learned or fixed."""

from __future__ import annotations

import pytest
import torch

from plait.models.space import MAX_SCALE, SharedSpace


def test_projects_each_paired_field_to_unit_vectors() -> None:
    space = SharedSpace({"a": 5, "b": 7, "c": 3}, dim=4, pairs=[("a", "b")])
    assert space.fields == ("a", "b")  # c is in no pair: no projection
    z = space.project_all({"a": torch.randn(6, 5), "b": torch.randn(6, 7), "c": torch.randn(6, 3)})
    assert set(z) == {"a", "b"}
    assert z["a"].shape == (6, 4)
    assert torch.allclose(z["a"].norm(dim=1), torch.ones(6), atol=1e-5)


def test_temperature_is_learned_or_fixed_and_the_scale_clamped() -> None:
    learned = SharedSpace({"a": 2, "b": 2}, dim=2, pairs=[("a", "b")], temperature=0.5)
    assert any(p is learned.log_scale for p in learned.parameters())
    assert float(learned.scale().detach()) == pytest.approx(2.0)
    fixed = SharedSpace(
        {"a": 2, "b": 2}, dim=2, pairs=[("a", "b")], temperature=1e-4, learn_temperature=False
    )
    assert all(p is not fixed.log_scale for p in fixed.parameters())
    assert "log_scale" in fixed.state_dict()  # saved with the weights all the same
    assert float(fixed.scale()) == MAX_SCALE


def test_hidden_makes_an_mlp_projection() -> None:
    space = SharedSpace({"a": 3, "b": 3}, dim=4, pairs=[("a", "b")], hidden=8)
    assert isinstance(space.projections["a"], torch.nn.Sequential)


def test_rejects_pairs_without_widths() -> None:
    with pytest.raises(ValueError, match=r"fields \['z'\]"):
        SharedSpace({"a": 3}, dim=4, pairs=[("a", "z")])
