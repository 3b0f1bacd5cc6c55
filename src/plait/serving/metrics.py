"""Prometheus metrics of one app, in the app's own `CollectorRegistry` (two apps in one process,
as in tests, never share counters).

With several uvicorn workers (`plait serve --workers N`), every worker writes its values to files in
PROMETHEUS_MULTIPROC_DIR (`plait serve` makes a temporary one) and any worker's /metrics adds them
all up (prometheus_client's multiprocess mode): a scrape sees the whole server, whichever worker
answers. A breaker's gauge is then the worst state of that field over the live workers.

plait_requests_total{endpoint, status}        requests answered (status 499: the client went away first)
plait_request_seconds{endpoint}               latency histogram
plait_batch_size                              records per model batch (dynamic batching)
plait_batch_seconds                           model time per batch
plait_degraded_total{field, state, reason}    fields predicted without, by why
plait_breaker_state{field}                    0 closed, 1 half-open, 2 open (read at scrape time)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # set: every worker's values go to files there
BREAKER_VALUES = {"closed": 0.0, "half-open": 1.0, "open": 2.0}
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
MAX_REASON = 40  # label values must stay few: the reason's leading words, not its detail
CONTENT_TYPE = CONTENT_TYPE_LATEST


class FieldState(Protocol):
    """What the engine reports per field (plait.serving.engine.FieldStatus)."""

    @property
    def field(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def reason(self) -> str: ...


def reason_label(reason: str) -> str:
    """The short, low-cardinality part of a reason: "undecodable: bad header" → "undecodable"."""
    head = reason.split(":", 1)[0].strip().lower()
    return head[:MAX_REASON] or "unknown"


class ServeMetrics:
    def __init__(self, states: Callable[[], Mapping[str, str]] | None = None) -> None:
        # prometheus_client picks file-backed values when it is imported with the variable set
        self.multiprocess = os.path.isdir(os.environ.get(MULTIPROC_ENV) or "\0")
        self.registry = CollectorRegistry(auto_describe=True)
        self.states = states  # field -> breaker state, read at scrape time
        self.requests = Counter(
            "plait_requests", "HTTP requests answered.", ["endpoint", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "plait_request_seconds", "HTTP request latency.", ["endpoint"], registry=self.registry
        )
        self.batch_size = Histogram(
            "plait_batch_size", "Records per model batch.", buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.batch_seconds = Histogram("plait_batch_seconds", "Model time per batch.", registry=self.registry)
        self.degraded = Counter(
            "plait_degraded",
            "Fields predicted without, by field, state (missing, failed, skipped) and reason.",
            ["field", "state", "reason"],
            registry=self.registry,
        )
        self.breaker = Gauge(
            "plait_breaker_state",
            "Circuit breaker per field: 0 closed, 1 half-open, 2 open.",
            ["field"],
            registry=self.registry,
            multiprocess_mode="livemax",  # several workers: the worst state among the live ones
        )

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()
        self.latency.labels(endpoint=endpoint).observe(seconds)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)
        if self.multiprocess:  # another worker may answer the scrape: keep this one's breakers current
            self._set_breakers()

    def observe_fields(self, statuses: Iterable[FieldState]) -> None:
        for status in statuses:
            if status.state != "used":
                self.degraded.labels(
                    field=status.field, state=status.state, reason=reason_label(status.reason)
                ).inc()

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes, with this worker's breaker states read now (and, with
        several workers, every worker's values added up)."""
        self._set_breakers()
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)

    def close(self) -> None:
        """A worker that stops: its live gauges leave the sum (its counters stay counted)."""
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid())

    def _set_breakers(self) -> None:
        if self.states is not None:
            for field, state in self.states().items():
                self.breaker.labels(field=field).set(BREAKER_VALUES.get(state, 2.0))
