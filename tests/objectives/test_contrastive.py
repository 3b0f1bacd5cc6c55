"""The contrastive loss: CLIP's symmetric InfoNCE, absent rows left out, negatives gathered across
processes (a real 2-process gloo run) equal to one process on the whole batch."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from plait.objectives.contrastive import Gathered, normalise, pairs_loss, symmetric_info_nce


def _unit(n: int, d: int, seed: int) -> torch.Tensor:
    return normalise(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)))


def test_equals_clip_loss_written_out() -> None:
    a, b = _unit(6, 4, 0), _unit(6, 4, 1)
    scale = torch.tensor(10.0)
    logits = scale * a @ b.T
    target = torch.arange(6)
    expected = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    got = symmetric_info_nce(a, b, torch.ones(6, dtype=torch.bool), scale)
    assert torch.allclose(got, expected)


def test_absent_rows_are_left_out_not_paired_with_zeros() -> None:
    a, b = _unit(8, 4, 2), _unit(8, 4, 3)
    both = torch.tensor([1, 1, 0, 1, 0, 1, 1, 0], dtype=torch.bool)
    zeroed_a, zeroed_b = a.clone(), b.clone()
    zeroed_a[~both] = 0.0  # what an absent field's pooled output looks like
    zeroed_b[~both] = 0.0
    scale = torch.tensor(5.0)
    masked = symmetric_info_nce(zeroed_a, zeroed_b, both, scale)
    kept = symmetric_info_nce(a[both], b[both], torch.ones(int(both.sum()), dtype=torch.bool), scale)
    assert torch.allclose(masked, kept)
    # and it is not the loss that pairs the zero rows
    assert not torch.allclose(
        masked, symmetric_info_nce(zeroed_a, zeroed_b, torch.ones(8, dtype=torch.bool), scale)
    )


def test_fewer_than_two_pairs_gives_zero_that_still_backpropagates() -> None:
    a = _unit(4, 3, 4).requires_grad_(True)
    b = _unit(4, 3, 5)
    scale = torch.tensor(3.0, requires_grad=True)
    loss = symmetric_info_nce(a, b, torch.tensor([0, 1, 0, 0], dtype=torch.bool), scale)
    assert float(loss.detach()) == 0.0
    loss.backward()  # no error: the zero belongs to the graph
    assert a.grad is not None and float(a.grad.abs().sum()) == 0.0


def test_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"a and b \(B, d\)"):
        symmetric_info_nce(_unit(3, 2, 0), _unit(4, 2, 1), torch.ones(3, dtype=torch.bool), torch.tensor(1.0))


def test_perfectly_aligned_pairs_have_low_loss_and_learnable_temperature_gets_gradient() -> None:
    a = _unit(16, 8, 6)
    log_scale = torch.tensor(math.log(1 / 0.07), requires_grad=True)
    aligned = symmetric_info_nce(a, a, torch.ones(16, dtype=torch.bool), log_scale.exp())
    shuffled = symmetric_info_nce(a, a[torch.randperm(16)], torch.ones(16, dtype=torch.bool), log_scale.exp())
    assert float(aligned.detach()) < float(shuffled)
    aligned.backward()
    assert log_scale.grad is not None and float(log_scale.grad) != 0.0


def test_pairs_loss_is_the_mean_over_pairs() -> None:
    z = {"x": _unit(5, 4, 7), "y": _unit(5, 4, 8), "w": _unit(5, 4, 9)}
    present = {f: torch.ones(5, dtype=torch.bool) for f in z}
    scale = torch.tensor(4.0)
    one = symmetric_info_nce(z["x"], z["y"], present["x"], scale)
    two = symmetric_info_nce(z["y"], z["w"], present["y"], scale)
    assert torch.allclose(pairs_loss(z, present, (("x", "y"), ("y", "w")), scale), (one + two) / 2)


def test_gathered_halves_average_to_the_whole_batch() -> None:
    """Two processes' losses, each over its own rows against all rows, average to the loss of one
    process that holds every row (equal rows with a pair on each)."""
    a, b = _unit(8, 4, 10), _unit(8, 4, 11)
    both = torch.tensor([1, 0, 1, 1, 1, 1, 0, 1], dtype=torch.bool)  # 3 pairs in each half
    scale = torch.tensor(7.0)
    whole = symmetric_info_nce(a, b, both, scale)
    everyone = Gathered(a=a, b=b, both=both, offset=0)
    halves = [
        symmetric_info_nce(a[s], b[s], both[s], scale, Gathered(a, b, both, offset=s.start))
        for s in (slice(0, 4), slice(4, 8))
    ]
    assert everyone.offset == 0
    assert torch.allclose((halves[0] + halves[1]) / 2, whole)


_TWO_PROCESSES = """
import os, socket, sys
import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dnn
import torch.multiprocessing as mp
from plait.objectives.contrastive import Gathered, normalise, pairs_loss


def batch():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(8, 4, generator=g)
    y = x + 0.3 * torch.randn(8, 4, generator=g)
    both = torch.tensor([1, 1, 0, 1, 1, 0, 1, 1], dtype=torch.bool)
    return x, y, both


def rank_step(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        proj = torch.nn.Linear(4, 3)
        model = torch.nn.parallel.DistributedDataParallel(proj)
        x, y, both = batch()
        rows = slice(rank * 4, rank * 4 + 4)
        a, b = normalise(model(x[rows])), normalise(model(y[rows]))

        def gather(a, b, both):  # what Lightning's all_gather(..., sync_grads=True) does
            every = [torch.zeros_like(both) for _ in range(world)]
            dist.all_gather(every, both)
            a_all, b_all = torch.cat(dnn.all_gather(a)), torch.cat(dnn.all_gather(b))
            return Gathered(a_all, b_all, torch.cat(every), rank * 4)

        present = {"x": both[rows], "y": both[rows]}
        loss = pairs_loss({"x": a, "y": b}, present, (("x", "y"),), torch.tensor(5.0), gather)
        loss.backward()
        torch.save({"loss": loss.detach(), "grad": proj.weight.grad.clone()}, f"{out}/rank{rank}.pt")
        # a process whose batch has no pair at all must still take part in the gather's backward
        alone = both[rows] if rank == 0 else torch.zeros(4, dtype=torch.bool)
        a, b = normalise(model(x[rows])), normalise(model(y[rows]))
        present = {"x": alone, "y": alone}
        lonely = pairs_loss({"x": a, "y": b}, present, (("x", "y"),), torch.tensor(5.0), gather)
        lonely.backward()
        torch.save({"loss": lonely.detach()}, f"{out}/lonely{rank}.pt")
        dist.barrier()  # both are done with the group
    except BaseException:
        dist.destroy_process_group()
        raise
    os._exit(0)  # no gloo teardown: one rank tearing down while the other still talks can hang it


if __name__ == "__main__":
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(rank_step, args=(2, port, sys.argv[1]), nprocs=2, join=True)
    torch.manual_seed(0)
    proj = torch.nn.Linear(4, 3)
    x, y, both = batch()
    z = {"x": normalise(proj(x)), "y": normalise(proj(y))}
    loss = pairs_loss(z, {"x": both, "y": both}, (("x", "y"),), torch.tensor(5.0))
    loss.backward()
    torch.save({"loss": loss.detach(), "grad": proj.weight.grad.clone()}, f"{sys.argv[1]}/one.pt")
"""


@pytest.mark.slow
def test_two_processes_gather_negatives_and_match_one_process(tmp_path) -> None:
    """A real 2-process gloo group (in its own interpreter, away from the test process's state):
    each process's half of the batch meets the other's rows as negatives, and after DDP averages
    the gradients every process holds the loss and gradient of one process on the whole batch."""
    script = tmp_path / "two.py"
    script.write_text(_TWO_PROCESSES)
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True, timeout=180, cwd=tmp_path)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    one = torch.load(tmp_path / "one.pt")
    assert torch.allclose((ranks[0]["loss"] + ranks[1]["loss"]) / 2, one["loss"], atol=1e-6)
    for r in ranks:
        assert torch.allclose(r["grad"], one["grad"], atol=1e-6)
    lonely = [torch.load(tmp_path / f"lonely{r}.pt")["loss"] for r in range(2)]  # no hang: both finished
    assert float(lonely[1]) == 0.0 and float(lonely[0]) > 0.0
