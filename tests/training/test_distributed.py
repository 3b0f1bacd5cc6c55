"""GlobalBatchShare: each process's share of the batches one process would draw."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import BatchSampler, RandomSampler

from plait.training.distributed import GlobalBatchShare, is_main_process


@given(rows=st.integers(2, 200), batch=st.integers(1, 40), world=st.integers(1, 4), seed=st.integers(0, 5))
def test_the_shares_are_the_one_process_batches_split(rows: int, batch: int, world: int, seed: int) -> None:
    def batches() -> BatchSampler:
        return BatchSampler(
            RandomSampler(range(rows), generator=torch.Generator().manual_seed(seed)), batch, drop_last=False
        )

    if rows < world or batch < world:  # refused by the config (train.batch_size ≥ processes)
        return
    alone = list(batches())
    shares = [list(GlobalBatchShare(batches(), rank=r, world=world)) for r in range(world)]
    assert len({len(s) for s in shares}) == 1  # every process takes the same number of steps
    assert all(len(s) == len(GlobalBatchShare(batches(), rank=r, world=world)) for r, s in enumerate(shares))
    assert all(len(part) >= 1 for s in shares for part in s)  # never an empty batch
    steps = [sorted(i for s in shares for i in s[k]) for k in range(len(shares[0]))]
    if len(steps) == len(alone):
        assert steps == [sorted(b) for b in alone]
    else:  # a last batch smaller than the processes joined the one before
        assert len(steps) == len(alone) - 1 and len(alone[-1]) < world
        assert steps == [sorted(b) for b in alone[:-2]] + [sorted(alone[-2] + alone[-1])]


@pytest.mark.parametrize(
    ("env", "main"),
    [
        ({}, True),
        ({"LOCAL_RANK": "1"}, False),
        ({"RANK": "0", "LOCAL_RANK": "0"}, True),
        ({"NODE_RANK": "1"}, False),
    ],
)
def test_the_main_process_is_rank_zero_everywhere(
    monkeypatch: pytest.MonkeyPatch, env: dict, main: bool
) -> None:
    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "JSM_NAMESPACE_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert is_main_process() is main
