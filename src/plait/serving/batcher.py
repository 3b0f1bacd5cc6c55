"""Dynamic batching on an asyncio loop in front of a synchronous batch function.

`Batcher(run, max_batch_size=32, max_wait_ms=5)`: each `submit(items)` is one request of 1..n
records; a collector joins waiting requests into batches of at most `max_batch_size` records and
hands each batch to `run` in a worker thread (never on the event loop). Policy:

- an idle server (nothing running) runs what is queued at once: a lone request never waits;
- while a batch runs, the next batch gathers arrivals until it is full or `max_wait_ms` after
  its first request arrived; while every worker is busy it keeps gathering (it cannot run yet);
- a request larger than `max_batch_size` is split into parts that each fit a batch; its results
  are joined in order. Parts queue round-robin: every waiting request's first part before any
  request's second, and so on, so a request that arrives behind a 1000-record one waits for one
  of its batches, not all 63 of them;
- an exception from `run` fails exactly the requests in that batch; the batcher keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from plait.errors import ConfigError, PlaitError

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


class BatcherClosed(PlaitError, RuntimeError):
    """The batcher was closed (or not started) before the request could run."""


@dataclass(eq=False)
class _Request(Generic[T, R]):
    """One submit: its records, the results filled in part by part, and the caller's future."""

    items: Sequence[T]
    future: asyncio.Future[list[R]]
    arrived: float  # loop.time() at submit
    parts_left: int
    results: list[Any] = field(default_factory=list)


@dataclass(frozen=True, eq=False)
class _Part(Generic[T, R]):
    """records [start, stop) of a request; never more than max_batch_size of them."""

    request: _Request[T, R]
    start: int
    stop: int
    turn: int = 0  # this part's place in its request: parts queue round-robin by turn

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class _Outcome(Generic[R]):
    results: list[R] | None
    error: BaseException | None
    seconds: float


class Batcher(Generic[T, R]):
    def __init__(
        self,
        run: Callable[[list[T]], list[R]],
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        workers: int = 1,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        _check("max_batch_size", max_batch_size, integer=True, minimum=1)
        _check("max_wait_ms", max_wait_ms, integer=False, minimum=0)
        _check("workers", workers, integer=True, minimum=1)
        self.max_batch_size = max_batch_size
        self.max_wait_s = float(max_wait_ms) / 1000.0
        self.workers = workers
        self._run = run
        self._on_batch = on_batch
        self._waiting: deque[_Part[T, R]] = deque()
        self._gathering: list[_Part[T, R]] = []  # parts the collector took for its next batch
        self._in_flight = 0
        self._running: set[asyncio.Future[_Outcome[R]]] = set()
        self._wake: asyncio.Event | None = None
        self._collector: asyncio.Task[None] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Create the queue, the worker threads and the collector task on the running loop."""
        if self._collector is not None:
            raise BatcherClosed("Batcher.start: already started; create a new Batcher to start again")
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="plait-batch")
        self._collector = asyncio.create_task(self._collect(), name="plait-batcher")
        self._collector.add_done_callback(self._collector_done)

    async def close(self, *, timeout_s: float | None = None) -> None:
        """Stop taking requests; fail every request not yet running with BatcherClosed and wait
        (up to timeout_s, None: no limit) for the running batches so their callers get results."""
        if self._closed:
            return
        self._closed = True
        if self._collector is not None:
            self._collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._collector
        self._fail_waiting(BatcherClosed("the server is shutting down; the request was not run"))
        if self._running:
            _, pending = await asyncio.wait(set(self._running), timeout=timeout_s)
            for future in pending:
                future.cancel()  # a thread cannot be stopped; its callers are failed now
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # -- requests -------------------------------------------------------------------------------------
    async def submit(self, items: Sequence[T]) -> list[R]:
        """Run one request's records (1..n) in some batch; their results, in order."""
        if self._closed or self._loop is None or self._wake is None:
            raise BatcherClosed(
                "Batcher.submit: the batcher is "
                + ("closed" if self._closed else "not started; await start()")
            )
        items = list(items)
        if not items:
            return []
        n = len(items)
        starts = range(0, n, self.max_batch_size)
        request: _Request[T, R] = _Request(
            items=items,
            future=self._loop.create_future(),
            arrived=self._loop.time(),
            parts_left=len(starts),
            results=[None] * n,
        )
        for turn, start in enumerate(starts):
            self._enqueue(_Part(request, start, min(start + self.max_batch_size, n), turn))
        self._wake.set()
        return await request.future

    def _enqueue(self, part: _Part[T, R]) -> None:
        """Queue `part` after every part of an earlier or the same turn (the queue stays sorted by
        turn, then by arrival): a long request cannot hold the queue against later ones."""
        index = len(self._waiting)
        while index > 0 and self._waiting[index - 1].turn > part.turn:
            index -= 1
        self._waiting.insert(index, part)

    @property
    def queued(self) -> int:
        """Records waiting for a batch (not yet running)."""
        return sum(p.size for p in self._waiting)

    @property
    def in_flight(self) -> int:
        """Batches running now."""
        return self._in_flight

    # -- the collector --------------------------------------------------------------------------------
    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._drop_done_heads():
                await self._sleep_until_woken(None)
            batch: list[_Part[T, R]] = []
            self._gathering = batch  # close() fails these too if it stops the collector here
            records = self._take(batch, 0)
            deadline = batch[0].request.arrived + self.max_wait_s
            # Something runs: gather arrivals until full or max_wait after the first arrived.
            while self._open_for_more(records) and self._in_flight > 0 and loop.time() < deadline:
                await self._sleep_until_woken(deadline)
                records = self._take(batch, records)
            # Every worker busy: the batch cannot run yet, so keep filling it meanwhile.
            while self._in_flight >= self.workers:
                await self._sleep_until_woken(None)
                records = self._take(batch, records)
            self._gathering = []
            batch = [p for p in batch if not p.request.future.done()]  # callers gone meanwhile
            if batch:
                self._dispatch(batch)

    def _open_for_more(self, records: int) -> bool:
        """The batch has room and no queued part was left out for lack of it."""
        return records < self.max_batch_size and not self._drop_done_heads()

    def _drop_done_heads(self) -> bool:
        """Drop queued parts whose caller is gone (cancelled or failed); is anything left?"""
        while self._waiting and self._waiting[0].request.future.done():
            self._waiting.popleft()
        return bool(self._waiting)

    def _take(self, batch: list[_Part[T, R]], records: int) -> int:
        """Move queued parts, oldest first, into `batch` while they fit; the new record count."""
        while self._drop_done_heads():
            head = self._waiting[0]
            if batch and records + head.size > self.max_batch_size:
                break
            batch.append(self._waiting.popleft())
            records += head.size
        return records

    async def _sleep_until_woken(self, deadline: float | None) -> None:
        """Until a request arrives, a batch finishes, or the deadline (loop time) passes."""
        assert self._wake is not None and self._loop is not None  # set by start()
        self._wake.clear()
        if deadline is None:
            await self._wake.wait()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(0.0, deadline - self._loop.time()))

    # -- running a batch ------------------------------------------------------------------------------
    def _dispatch(self, batch: list[_Part[T, R]]) -> None:
        assert self._loop is not None and self._pool is not None  # set by start()
        items = [item for part in batch for item in part.request.items[part.start : part.stop]]
        self._in_flight += 1
        future = self._loop.run_in_executor(self._pool, self._call_run, items)
        self._running.add(future)
        future.add_done_callback(lambda f: self._finish(batch, len(items), f))

    def _call_run(self, items: list[T]) -> _Outcome[R]:
        """In a worker thread: run the batch, catching its error so it fails only this batch."""
        started = time.perf_counter()
        try:
            results = self._run(items)
            if not isinstance(results, list) or len(results) != len(items):
                got = len(results) if isinstance(results, list) else type(results).__name__
                raise PlaitError(
                    f"Batcher: the batch function returned {got} results for {len(items)} records; "
                    "it must return a list with one result per record, in order"
                )
        except Exception as exc:
            return _Outcome(None, exc, time.perf_counter() - started)
        return _Outcome(results, None, time.perf_counter() - started)

    def _finish(self, batch: list[_Part[T, R]], size: int, future: asyncio.Future[_Outcome[R]]) -> None:
        """On the loop: hand each part its results (or the batch's error) and wake the collector."""
        self._running.discard(future)
        self._in_flight -= 1
        if self._wake is not None:
            self._wake.set()
        if future.cancelled():
            outcome: _Outcome[R] = _Outcome(None, BatcherClosed("the server shut down while it ran"), 0.0)
        elif future.exception() is not None:
            outcome = _Outcome(None, future.exception(), 0.0)
        else:
            outcome = future.result()
        if self._on_batch is not None:
            try:
                self._on_batch(size, outcome.seconds)
            except Exception:
                log.exception("Batcher: on_batch callback failed (ignored)")
        offset = 0
        for part in batch:
            request = part.request
            if outcome.results is None:
                assert outcome.error is not None
                _fail(request, outcome.error)
            elif not request.future.done():
                request.results[part.start : part.stop] = outcome.results[offset : offset + part.size]
                request.parts_left -= 1
                if request.parts_left == 0:
                    request.future.set_result(request.results)
            offset += part.size

    # -- failures -------------------------------------------------------------------------------------
    def _fail_waiting(self, error: BaseException) -> None:
        for part in self._gathering:
            _fail(part.request, error)
        self._gathering = []
        while self._waiting:
            _fail(self._waiting.popleft().request, error)

    def _collector_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:  # a bug in the collector: fail every waiting caller rather than hang them
            log.error("Batcher: the collector stopped", exc_info=error)
            self._closed = True
            self._fail_waiting(BatcherClosed(f"the batcher stopped: {error!r}"))


def _fail(request: _Request[Any, Any], error: BaseException) -> None:
    if not request.future.done():
        request.future.set_exception(error)


def _check(name: str, value: object, *, integer: bool, minimum: float) -> None:
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None or (integer and not isinstance(number, int)) or number < minimum:
        what = "an integer" if integer else "a number"
        raise ConfigError(f"Batcher: {name} must be {what} >= {minimum:g}, got {value!r}")
