"""Retrieval metrics: ranks against a brute-force count, label level, chunking, absent rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plait.evaluation import retrieval
from plait.evaluation.retrieval import DirectionRetrieval, pair_retrieval, rank_matches, scores_of
from plait.objectives.contrastive import normalise


def _brute(q: np.ndarray, c: np.ndarray, labels: np.ndarray | None):
    sims = q @ c.T
    n = len(q)
    inst = np.array([1 + int((sims[i] > sims[i, i]).sum()) for i in range(n)])
    if labels is None:
        return inst, None
    lab = []
    for i in range(n):
        best = sims[i][labels == labels[i]].max()
        lab.append(1 + int((sims[i] > best).sum()))
    return inst, np.array(lab)


@pytest.mark.parametrize("chunk", [1024, 7])
def test_ranks_match_a_brute_force_count(monkeypatch, chunk) -> None:
    monkeypatch.setattr(retrieval, "_CHUNK", chunk)
    g = torch.Generator().manual_seed(0)
    q, c = normalise(torch.randn(40, 6, generator=g)), normalise(torch.randn(40, 6, generator=g))
    labels = torch.randint(0, 4, (40,), generator=g)
    inst, lab = rank_matches(q, c, labels)
    want_inst, want_lab = _brute(q.numpy(), c.numpy(), labels.numpy())
    assert inst.tolist() == want_inst.tolist()
    assert lab is not None and lab.tolist() == want_lab.tolist()
    assert (lab <= inst).all()  # the own item shares the label: label level is never worse


def test_identical_items_rank_first_and_score_perfectly() -> None:
    z = normalise(torch.randn(12, 5, generator=torch.Generator().manual_seed(1)))
    inst, _ = rank_matches(z, z)
    s = scores_of(inst, 12)
    assert inst.tolist() == [1] * 12
    assert s.recall == {1: 1.0, 5: 1.0, 10: 1.0} and s.mrr == 1.0 and s.median_rank == 1.0


def test_scores_of_known_ranks() -> None:
    s = scores_of(torch.tensor([1, 2, 6, 20]), candidates=20)
    assert s.recall == {1: 0.25, 5: 0.5, 10: 0.75}
    assert s.mrr == pytest.approx((1 + 1 / 2 + 1 / 6 + 1 / 20) / 4, abs=1e-6)
    assert s.median_rank == 4.0 and s.queries == 4


def test_pairs_use_only_rows_with_both_fields_and_round_trip_json() -> None:
    g = torch.Generator().manual_seed(2)
    z = {f: normalise(torch.randn(10, 4, generator=g)) for f in ("a", "b")}
    present = {
        "a": torch.tensor([1, 1, 1, 1, 1, 1, 0, 0, 1, 1]).bool(),
        "b": torch.tensor([1] * 9 + [0]).bool(),
    }
    out = pair_retrieval(z, present, [("a", "b")], labels=torch.arange(10) % 3)
    assert [(d.query, d.target) for d in out] == [("a", "b"), ("b", "a")]
    assert out[0].instance.queries == 7 and out[0].instance.candidates == 7
    assert out[0].label is not None
    assert DirectionRetrieval.from_json(out[0].to_json()) == out[0]
    unlabelled = pair_retrieval(z, present, [("a", "b")], labels=torch.full((10,), -1))
    assert unlabelled[0].label is None
    none = pair_retrieval(z, {"a": torch.zeros(10).bool(), "b": present["b"]}, [("a", "b")])
    assert none == ()


def test_label_level_uses_the_labelled_rows_when_some_have_none() -> None:
    g = torch.Generator().manual_seed(3)
    z = {f: normalise(torch.randn(12, 4, generator=g)) for f in ("a", "b")}
    present = {f: torch.ones(12, dtype=torch.bool) for f in z}
    labels = torch.tensor([0, 1, 2, 0, 1, 2, -1, -1, 0, 1, 2, 0])
    [forward, _] = pair_retrieval(z, present, [("a", "b")], labels=labels)
    assert forward.instance.queries == 12
    assert forward.label is not None and forward.label.queries == 10 and forward.label.candidates == 10
