"""The engines' contract without a cluster: results in task order, and the ray engine (on a stand-in
for the `ray` module) cancels the other tasks when one fails, shuts down only a Ray it started,
and joins RAY_ADDRESS's cluster without choosing its CPUs."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from plait.align.engines import ENGINES, LocalEngine, RayEngine


class FakeRay:
    """Tasks run when fetched; task `fails` raises; `wait` hands back one finished task at a time."""

    def __init__(self, initialized: bool = False, fails: int | None = None) -> None:
        self.initialized, self.fails = initialized, fails
        self.init_kwargs: dict[str, Any] | None = None
        self.cancelled: list[int] = []
        self.shutdowns = 0

    def is_initialized(self) -> bool:
        return self.initialized

    def init(self, **kwargs: Any) -> None:
        self.initialized, self.init_kwargs = True, kwargs

    def shutdown(self) -> None:
        self.initialized = False
        self.shutdowns += 1

    def remote(self, fn: Any) -> Any:
        class Remote:  # a task's ref: (its first argument, the function, the arguments)
            def remote(self, *args: Any) -> tuple[int, Any, tuple[Any, ...]]:
                return (args[0], fn, args)

        return Remote()

    def wait(self, refs: list[Any], num_returns: int) -> tuple[list[Any], list[Any]]:
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref: Any) -> Any:
        if isinstance(ref, list):
            return [self.get(r) for r in ref]
        i, fn, args = ref
        if i == self.fails:
            raise RuntimeError(f"task {i} failed")
        return fn(*args)

    def cancel(self, ref: Any) -> None:
        self.cancelled.append(ref[0])


def square(i: int) -> int:
    return i * i


@pytest.fixture()
def no_ray_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


@pytest.mark.usefixtures("no_ray_address")
def test_a_failing_task_cancels_the_others_and_a_ray_started_here_is_shut_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: the other tasks ran on after a failure, and the Ray started here stayed up."""
    fake = FakeRay(fails=1)
    monkeypatch.setitem(sys.modules, "ray", fake)
    engine = RayEngine(workers=3)
    assert fake.init_kwargs == {"num_cpus": 3, "include_dashboard": False, "log_to_driver": False}
    done: list[int] = []
    with pytest.raises(RuntimeError, match="task 1 failed"):
        engine.map(square, [(i,) for i in range(5)], done.append)
    assert done == [0] and fake.cancelled == [2, 3, 4]
    engine.close()
    engine.close()  # once is enough
    assert fake.shutdowns == 1 and not fake.initialized


@pytest.mark.usefixtures("no_ray_address")
def test_a_ray_found_running_is_left_running(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRay(initialized=True)
    monkeypatch.setitem(sys.modules, "ray", fake)
    engine = RayEngine(workers=2)
    done: list[int] = []
    assert engine.map(square, [(i,) for i in range(4)], done.append) == [0, 1, 4, 9]
    assert done == [0, 1, 2, 3] and fake.cancelled == []
    engine.close()
    assert fake.init_kwargs is None and fake.shutdowns == 0 and fake.initialized


def test_ray_address_joins_that_cluster_with_its_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    engine = RayEngine(workers=8)
    assert fake.init_kwargs == {"log_to_driver": False}  # no num_cpus: the cluster has its own
    engine.close()
    assert fake.shutdowns == 1  # this process connected: it disconnects


def test_every_engine_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", FakeRay(initialized=True))
    for name in ENGINES.names():
        engine = ENGINES.get(name)(1)
        assert engine.map(square, [(2,), (3,)], lambda _i: None) == [4, 9]
        engine.close()
    assert isinstance(ENGINES.get("local")(1), LocalEngine)
