"""Per-field circuit breakers with a timeout: a field whose preprocessing or encoder keeps failing
(or hangs) is skipped — predicted without, as if absent — until its breaker half-opens and a
trial call succeeds.

`FieldGuard(["photo", "note"]).call("photo", lambda: decode(value))` returns the value, or
`Skipped("photo", reason)` when the breaker is open (fn not called), fn raised, or fn ran past
`timeout_s`. The state machine is pybreaker's: `fail_max` consecutive failures open a breaker;
after `reset_timeout_s` the next call is a trial that closes it on success and re-opens it on
failure. Each field runs fn in its own small thread pool, so a hung call blocks only its field.
pybreaker holds a breaker's lock for the whole call: calls on ONE field run one at a time (each
waits at most timeout_s for fn), calls on different fields run concurrently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Literal, TypeVar

import pybreaker

from plait.errors import ConfigError
from plait.modalities.options import short_error

V = TypeVar("V")
SkipCause = Literal["open", "timeout", "error"]


@dataclass(frozen=True)
class Skipped:
    """fn gave no value for `field`: why, in words, and the cause ("open": breaker open, fn not
    called; "timeout": fn ran past the timeout; "error": fn raised)."""

    field: str
    reason: str
    cause: SkipCause = "error"


class _TimedOut(Exception):
    """fn ran past the guard's timeout (its own TimeoutError stays an ordinary failure)."""


class FieldGuard:
    def __init__(
        self,
        fields: Sequence[str],
        *,
        fail_max: int = 5,
        reset_timeout_s: float = 30.0,
        timeout_s: float = 2.0,
        threads_per_field: int = 2,
    ) -> None:
        _check_number("fail_max", fail_max, integer=True, minimum=1)
        _check_number("reset_timeout_s", reset_timeout_s, integer=False, minimum=0.0)
        _check_number("timeout_s", timeout_s, integer=False, minimum=0.0, strict=True)
        _check_number("threads_per_field", threads_per_field, integer=True, minimum=1)
        if len(set(fields)) != len(fields):
            raise ConfigError(f"FieldGuard: field names must be unique, got {list(fields)}")
        self.fields = tuple(fields)
        self.timeout_s = float(timeout_s)
        self._breakers = {
            f: pybreaker.CircuitBreaker(fail_max=fail_max, reset_timeout=reset_timeout_s, name=f)
            for f in self.fields
        }
        # One pool per field: a call that hangs past its timeout keeps its thread, and only that
        # field's later calls can queue behind it (they time out too and open its breaker).
        self._pools = {
            f: ThreadPoolExecutor(max_workers=threads_per_field, thread_name_prefix=f"plait-guard-{f}")
            for f in self.fields
        }

    def call(self, field: str, fn: Callable[[], V]) -> V | Skipped:
        """fn() under `field`'s breaker and timeout; Skipped instead of raising."""
        breaker = self._breaker(field)
        raised: list[Exception] = []

        def attempt() -> V:
            try:
                return self._timed(field, fn)
            except Exception as exc:
                raised.append(exc)
                raise

        try:
            return breaker.call(attempt)
        except Exception as exc:
            if not raised:  # the breaker refused before calling fn
                if isinstance(exc, pybreaker.CircuitBreakerError):
                    return Skipped(field, "breaker open", "open")
                raise
            # The failure that trips the breaker comes back as CircuitBreakerError; report fn's own.
            return _skipped(field, raised[0], self.timeout_s)

    def states(self) -> dict[str, str]:
        """field -> "closed" | "open" | "half-open" (an open breaker whose reset timeout has
        passed still reads "open" until the next call, its trial)."""
        return {f: str(b.current_state) for f, b in self._breakers.items()}

    def failures(self) -> dict[str, int]:
        """field -> consecutive failures counted by its breaker."""
        return {f: int(b.fail_counter) for f, b in self._breakers.items()}

    def close(self) -> None:
        """Stop the thread pools (calls still running are abandoned, queued ones cancelled)."""
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)

    def _breaker(self, field: str) -> pybreaker.CircuitBreaker:
        breaker = self._breakers.get(field)
        if breaker is None:
            raise KeyError(f"FieldGuard: unknown field '{field}'; guarded fields: {', '.join(self.fields)}")
        return breaker

    def _timed(self, field: str, fn: Callable[[], V]) -> V:
        future = self._pools[field].submit(fn)
        try:
            return future.result(timeout=self.timeout_s)
        except FutureTimeout:
            if future.done() and future.exception() is not None:  # fn itself raised TimeoutError
                raise
            future.cancel()  # still queued: never run; running: its result is discarded
            raise _TimedOut from None


def _skipped(field: str, exc: Exception, timeout_s: float) -> Skipped:
    if isinstance(exc, _TimedOut):
        return Skipped(field, f"timed out after {timeout_s:g} s", "timeout")
    return Skipped(field, f"failed: {short_error(exc)}", "error")


def _check_number(name: str, value: object, *, integer: bool, minimum: float, strict: bool = False) -> None:
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    ok = isinstance(value, kinds) and not isinstance(value, bool)
    if ok and isinstance(value, int | float):
        ok = value > minimum if strict else value >= minimum
    if not ok:
        what = "an integer" if integer else "a number"
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ConfigError(f"FieldGuard: {name} must be {what} {bound}, got {value!r}")
