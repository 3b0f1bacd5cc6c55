"""Inference latency of a trained model, in milliseconds per sample, on whatever device it sits on.

Two figures, because they answer different questions: `batched` (throughput: every held-out row in
batches of LATENCY_BATCH, time / rows, median of BATCHED_REPEATS passes) and `single` (serving one
request: one row per call, median of SINGLE_CALLS calls). One untimed pass warms up first.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from plait.data.dataset import TensorTable
from plait.models.inference import run_model

LATENCY_BATCH = 256
BATCHED_REPEATS = 3
SINGLE_CALLS = 30


@dataclass(frozen=True)
class Latency:
    batched_ms: float  # per sample
    single_ms: float  # per one-row call


def measure_latency(model: nn.Module, tensors: TensorTable, rows: np.ndarray | torch.Tensor) -> Latency:
    """Time `model` over `rows` of `tensors` (which must hold exactly the model's fields)."""
    if len(rows) == 0:
        raise ValueError("measure_latency: no rows to time")
    idx = torch.as_tensor(rows, dtype=torch.long)
    run_model(model, tensors, idx, batch_size=LATENCY_BATCH)  # warm-up (allocator, lazy init)
    passes = []
    for _ in range(BATCHED_REPEATS):
        start = time.perf_counter()
        run_model(model, tensors, idx, batch_size=LATENCY_BATCH)
        passes.append((time.perf_counter() - start) * 1000.0 / len(idx))
    calls = []
    for i in range(SINGLE_CALLS):
        one = idx[i % len(idx)].reshape(1)
        start = time.perf_counter()
        run_model(model, tensors, one, batch_size=1)
        calls.append((time.perf_counter() - start) * 1000.0)
    return Latency(batched_ms=statistics.median(passes), single_ms=statistics.median(calls))


def latency_device(model: nn.Module) -> str:
    """Where the timings were taken, e.g. "cpu, 1 thread" or "cuda:0"."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    if device.type == "cpu":
        threads = torch.get_num_threads()
        return f"cpu, {threads} thread{'s' if threads != 1 else ''}"
    return str(device)
