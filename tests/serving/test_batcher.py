"""The dynamic batcher: batching under load, order, the idle fast path, batch-size 1, split
requests, a failing batch, cancelled callers and close(). Sync tests around asyncio.run (no
pytest-asyncio); a threading gate holds the worker busy so that batches form deterministically."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from plait.errors import ConfigError
from plait.serving.batcher import Batcher, BatcherClosed


class Recorder:
    """A batch function: x -> 10 x, recording each batch's items; blocks until `gate` is set;
    raises ValueError for a batch holding a negative item."""

    def __init__(self, *, open_gate: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        if open_gate:
            self.gate.set()

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        if not self.gate.wait(10):
            raise TimeoutError("test gate never opened")
        if any(x < 0 for x in items):
            raise ValueError(f"bad item in {items}")
        return [10 * x for x in items]

    @property
    def sizes(self) -> list[int]:
        return [len(b) for b in self.batches]


async def until(condition: Callable[[], bool], limit_s: float = 10.0) -> None:
    """Yield to the loop until `condition` holds (a wait, not a timing assertion)."""
    stop = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > stop:
            raise AssertionError("condition never held")
        await asyncio.sleep(0.001)


async def settle() -> None:
    """Let every task created so far run up to its first wait."""
    for _ in range(5):
        await asyncio.sleep(0)


def run(test: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(test())  # type: ignore[arg-type]


def test_requests_queued_while_busy_run_as_one_batch_and_results_go_to_their_callers() -> None:
    recorder = Recorder()

    async def scenario() -> list[Any]:
        batcher: Batcher[int, int] = Batcher(recorder, max_batch_size=8, max_wait_ms=5)
        await batcher.start()
        first = asyncio.create_task(batcher.submit([1]))
        await until(lambda: recorder.sizes == [1])  # the worker is busy with the first request
        others = [asyncio.create_task(batcher.submit(items)) for items in ([2, 3], [4], [5, 6, 7])]
        await settle()
        recorder.gate.set()
        results = await asyncio.gather(first, *others)
        await batcher.close()
        return results

    results = run(scenario)
    assert recorder.batches == [[1], [2, 3, 4, 5, 6, 7]]
    assert results == [[10], [20, 30], [40], [50, 60, 70]]


def test_a_lone_request_on_an_idle_server_does_not_wait_for_max_wait() -> None:
    recorder = Recorder(open_gate=True)

    async def scenario() -> list[float]:
        batcher: Batcher[int, int] = Batcher(recorder, max_batch_size=32, max_wait_ms=500)
        await batcher.start()
        seconds = []
        for x in (1, 2, 3):
            started = time.perf_counter()
            assert await batcher.submit([x]) == [10 * x]
            seconds.append(time.perf_counter() - started)
        await batcher.close()
        return seconds

    seconds = run(scenario)
    assert recorder.sizes == [1, 1, 1]
    assert max(seconds) < 0.25  # functional: 500 ms would mean the request waited for company


def test_max_batch_size_one_never_batches() -> None:
    recorder = Recorder()

    async def scenario() -> list[Any]:
        batcher: Batcher[int, int] = Batcher(recorder, max_batch_size=1, max_wait_ms=50)
        await batcher.start()
        first = asyncio.create_task(batcher.submit([1]))
        await until(lambda: recorder.sizes == [1])
        others = [asyncio.create_task(batcher.submit(items)) for items in ([2], [3, 4, 5], [6])]
        await settle()
        recorder.gate.set()
        results = await asyncio.gather(first, *others)
        await batcher.close()
        return results

    results = run(scenario)
    assert recorder.sizes == [1] * 6
    assert results == [[10], [20], [30, 40, 50], [60]]


def test_a_request_larger_than_max_batch_size_is_split_and_joined_in_order() -> None:
    recorder = Recorder(open_gate=True)

    async def scenario() -> list[int]:
        batcher: Batcher[int, int] = Batcher(recorder, max_batch_size=4, max_wait_ms=5)
        await batcher.start()
        result = await batcher.submit(list(range(10)))
        await batcher.close()
        return result

    assert run(scenario) == [10 * x for x in range(10)]
    assert sorted(recorder.sizes, reverse=True) == [4, 4, 2]
    assert [x for b in recorder.batches for x in b] == list(range(10))


def test_a_long_request_does_not_hold_the_queue_against_a_later_short_one() -> None:
    """Parts queue round-robin: a one-record request that arrives behind a request of 6 batches
    runs in the next batch, not after all of them."""
    recorder = Recorder()

    async def scenario() -> list[list[int]]:
        batcher: Batcher[int, int] = Batcher(recorder, max_batch_size=2, max_wait_ms=0)
        await batcher.start()
        first = asyncio.create_task(batcher.submit([0]))
        await until(lambda: recorder.sizes == [1])  # busy: what follows queues
        long = asyncio.create_task(batcher.submit(list(range(1, 13))))
        await settle()
        short = asyncio.create_task(batcher.submit([99]))
        await settle()
        recorder.gate.set()
        results = await asyncio.gather(first, long, short)
        await batcher.close()
        return results

    results = run(scenario)
    assert results == [[0], [10 * x for x in range(1, 13)], [990]]
    batches = [list(b) for b in recorder.batches]
    assert batches[1] == [1, 2] and 99 in batches[2], batches  # the short one runs second in line


def test_an_error_fails_exactly_the_requests_of_its_batch_and_the_batcher_keeps_serving() -> None:
    recorder = Recorder()
    seen: list[tuple[int, float]] = []

    async def scenario() -> list[Any]:
        batcher: Batcher[int, int] = Batcher(
            recorder, max_batch_size=2, max_wait_ms=50, on_batch=lambda n, s: seen.append((n, s))
        )
        await batcher.start()
        first = asyncio.create_task(batcher.submit([1]))
        await until(lambda: recorder.sizes == [1])
        others = [asyncio.create_task(batcher.submit(items)) for items in ([-1], [2], [3])]
        await settle()
        recorder.gate.set()
        results = await asyncio.gather(first, *others, return_exceptions=True)
        results.append(await batcher.submit([4]))  # still serving
        await batcher.close()
        return results

    results = run(scenario)
    assert recorder.batches == [[1], [-1, 2], [3], [4]]
    assert results[0] == [10]
    assert isinstance(results[1], ValueError) and isinstance(results[2], ValueError)
    assert results[3] == [30]
    assert results[4] == [40]
    assert [n for n, _ in seen] == [1, 2, 1, 1]  # on_batch sees every batch, the failed one too
    assert all(s >= 0 for _, s in seen)


def test_a_cancelled_caller_is_not_run() -> None:
    recorder = Recorder()

    async def scenario() -> list[int]:
        batcher: Batcher[int, int] = Batcher(recorder, max_batch_size=8, max_wait_ms=5)
        await batcher.start()
        first = asyncio.create_task(batcher.submit([1]))
        await until(lambda: recorder.sizes == [1])
        gone = asyncio.create_task(batcher.submit([2]))
        await settle()
        gone.cancel()
        await settle()
        recorder.gate.set()
        assert await first == [10]
        result = await batcher.submit([3])
        await batcher.close()
        return result

    assert run(scenario) == [30]
    assert recorder.batches == [[1], [3]]


def test_close_fails_pending_requests_lets_running_ones_finish_and_refuses_new_ones() -> None:
    recorder = Recorder()

    async def scenario() -> tuple[Any, Any, Any]:
        batcher: Batcher[int, int] = Batcher(recorder, max_batch_size=8, max_wait_ms=5)
        await batcher.start()
        running = asyncio.create_task(batcher.submit([1]))
        await until(lambda: recorder.sizes == [1])
        pending = [asyncio.create_task(batcher.submit([x])) for x in (2, 3)]
        await settle()
        closing = asyncio.create_task(batcher.close())
        done = await asyncio.gather(*pending, return_exceptions=True)  # failed before the worker frees
        recorder.gate.set()
        await closing
        with pytest.raises(BatcherClosed, match="closed"):
            await batcher.submit([4])
        return await running, done[0], done[1]

    first, second, third = run(scenario)
    assert first == [10]
    assert isinstance(second, BatcherClosed) and isinstance(third, BatcherClosed)
    assert recorder.batches == [[1]]


def test_submit_before_start_and_bad_settings_are_refused() -> None:
    batcher: Batcher[int, int] = Batcher(Recorder(open_gate=True))
    with pytest.raises(BatcherClosed, match="not started"):
        run(lambda: batcher.submit([1]))
    with pytest.raises(ConfigError, match="max_batch_size"):
        Batcher(Recorder(), max_batch_size=0)
    with pytest.raises(ConfigError, match="workers"):
        Batcher(Recorder(), workers=1.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_wait_ms"):
        Batcher(Recorder(), max_wait_ms=-1)
