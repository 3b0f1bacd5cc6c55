"""Where the shards of a sharded alignment run: an explicit table of engines.

    local  worker processes on this machine (concurrent.futures, spawned: polars' threads and fork
           do not mix); one worker runs the shards in this process, one after another
    ray    Ray tasks: on the cluster RAY_ADDRESS names, or on a Ray started here with `workers` CPUs
           (and shut down by `close`)

An engine maps a module-level function over a list of argument tuples and returns the results in
task order, calling `done(i)` as each task finishes (progress lines); after a task fails, the
others are cancelled and its error raised. The caller `close`s the engine when the run ends.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Protocol

from plait.errors import ConfigError
from plait.registry import Registry

Task = Callable[..., Any]


class Engine(Protocol):
    def map(self, fn: Task, tasks: Sequence[tuple[Any, ...]], done: Callable[[int], None]) -> list[Any]: ...

    def close(self) -> None:
        """Release what the engine started (called once, when the run ends, also after an error)."""


class LocalEngine:
    def __init__(self, workers: int) -> None:
        self.workers = workers

    def map(self, fn: Task, tasks: Sequence[tuple[Any, ...]], done: Callable[[int], None]) -> list[Any]:
        results: list[Any] = [None] * len(tasks)
        if self.workers == 1 or len(tasks) <= 1:
            for i, args in enumerate(tasks):
                results[i] = fn(*args)
                done(i)
            return results
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(self.workers, len(tasks)), mp_context=context) as pool:
            pending = {pool.submit(fn, *args): i for i, args in enumerate(tasks)}
            try:
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        i = pending.pop(future)
                        results[i] = future.result()  # a shard's error stops the run, with its message
                        done(i)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # no new shard starts after an error
                raise
        return results

    def close(self) -> None:
        """Nothing to release: each map's pool ends with it."""


class RayEngine:
    """Ray tasks; a Ray this engine started (none was running, no RAY_ADDRESS to join) is shut down
    by `close`, one it found running is left as it was."""

    def __init__(self, workers: int) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "engine 'ray' needs Ray: pip install 'plait[ray]' (or use --engine local)"
            ) from None
        self.ray = ray
        self.started_here = False
        if ray.is_initialized():
            return
        if os.environ.get("RAY_ADDRESS"):  # join that cluster, with the CPUs it has: no num_cpus
            ray.init(log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        self.started_here = True

    def map(self, fn: Task, tasks: Sequence[tuple[Any, ...]], done: Callable[[int], None]) -> list[Any]:
        remote = self.ray.remote(fn)
        refs = [remote.remote(*args) for args in tasks]
        index = {ref: i for i, ref in enumerate(refs)}
        waiting = list(refs)
        try:
            while waiting:
                ready, waiting = self.ray.wait(waiting, num_returns=1)
                for ref in ready:
                    self.ray.get(ref)  # raises the task's error here, in order of finishing
                    done(index[ref])
        except BaseException:
            for ref in waiting:  # no shard keeps running, or starts, after an error (or Ctrl-C)
                self.ray.cancel(ref)
            raise
        return list(self.ray.get(refs))

    def close(self) -> None:
        if self.started_here:
            self.started_here = False
            self.ray.shutdown()


ENGINES: Registry[Callable[[int], Engine]] = Registry("engine")
ENGINES.register("local", LocalEngine)
ENGINES.register("ray", RayEngine)
