"""The engine in its own process: `EngineProcess(bundle_dir, GuardLimits())` loads the bundle in a
child process and answers `predict`, `warm_up` and `breaker_states` like an in-process `Engine`.

Why: Python runs one thread at a time. An engine in the server's process shares that one thread's
worth of CPU with HTTP parsing, base64 and JSON — measured on the demo under load, the server
process sat at 100 % of one core while the machine's second core idled. In its own process the
model gets a core of its own while the event loop answers and parses the next requests.

The child is a fresh interpreter (`python -m plait.serving.process`): it inherits none of the
server's threads or event loop and never re-imports the caller's script, so a script that builds
an app needs no `if __name__ == "__main__"` guard. Records go over a socket pair and answers come
back, pickled (a batch of 16 demo records is ~0.7 MB; series travel as arrays, never as lists of
floats, which took 3 ms to unpickle). One call is in the child at a time; the batcher gathers the
next batch meanwhile. When the child dies (killed, out of memory, a crash in native code) the batch
it held fails with `EngineStopped` and a new child starts at once (after a failed start, after a
wait that doubles up to 30 s); `ready` is False until it has loaded and warmed up. A first child
that dies while starting or warming up is replaced the same way (START_TRIES starts in all).
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from plait.errors import ConfigError, PlaitError
from plait.serving.engine import Served
from plait.serving.runtime import RuntimeChoice

log = logging.getLogger(__name__)
POLL_S = 0.25  # how often a waiting call checks that the child is still alive
MAX_BACKOFF_S = 30.0  # the longest wait between two failed restarts
START_TRIES = 3  # children started before the first one that loads is given up on


def backoff_s(failures: int) -> float:
    """The wait before the next start after `failures` failed ones in a row: 1, 2, 4 … 30 s."""
    return min(MAX_BACKOFF_S, 0.5 * 2**failures)


class EngineStopped(PlaitError, RuntimeError):
    """The engine's process stopped while it held a batch (or could not be started)."""


@dataclass(frozen=True)
class GuardLimits:
    """The per-field circuit breaker settings the child's `FieldGuard` is built with."""

    fail_max: int = 5
    reset_timeout_s: float = 30.0
    timeout_s: float = 2.0


class EngineProcess:
    def __init__(
        self,
        bundle: Path | str,
        limits: GuardLimits | None = None,
        *,
        threads: int | None = None,
        start_timeout_s: float = 300.0,
        call_timeout_s: float | None = 60.0,
        decode_budget_s: float | None = None,
        trust_modified: bool = False,
        runtime: RuntimeChoice | None = None,
    ) -> None:
        if os.name != "posix":
            raise ConfigError(
                "EngineProcess hands the child its socket by descriptor, which needs a POSIX system; "
                "serve with inference='thread' (--inference thread) here"
            )
        self.bundle = Path(bundle)
        self.trust_modified = trust_modified
        # what the child runs the model with: torch, or an ONNX export (plait.serving.runtime)
        self.runtime = runtime if runtime is not None else RuntimeChoice()
        self.limits = limits if limits is not None else GuardLimits()
        # torch's threads in the child: all cores but the one the server's own process needs. With
        # torch's default (every core) a batch of 16 took 37 ms instead of 30 on two cores, and
        # longer still while the server process was busy beside it.
        self.threads = threads if threads is not None else max(1, (os.cpu_count() or 1) - 1)
        self.start_timeout_s = start_timeout_s
        self.call_timeout_s = call_timeout_s  # None: wait as long as the child lives
        self.decode_budget_s = decode_budget_s  # the child's Engine(decode_budget_s=...)
        self.restarts = 0  # children started after one died
        self._failed_restarts = 0  # in a row: each waits longer before the next try
        self._lock = threading.Lock()  # one call in the child at a time; held while (re)starting
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._states: dict[str, str] = {}
        self._watched: subprocess.Popen[bytes] | None = None  # the child a watcher will replace
        self._ready = False
        self._closed = False
        self._restarting = False
        self._start()

    # -- what the app uses (`ServingEngine`) ---------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self._ready and self._alive()

    @property
    def pid(self) -> int | None:
        """The child's process id (None while there is none)."""
        return None if self._process is None else self._process.pid

    def predict(
        self,
        records: Sequence[Mapping[str, Any]],
        explain: Sequence[bool] | bool = False,
        impute: Sequence[bool] | bool = False,
        embed: Sequence[bool] | bool = False,
    ) -> list[Served]:
        """`Engine.predict` in the child."""
        served: list[Served] = self._call("predict", (list(records), explain, impute, embed))
        return served

    def warm_up(self) -> None:
        """One warm-up prediction in the child. A child that dies meanwhile is replaced (the
        replacement warms up itself): wait for it, up to start_timeout_s."""
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            try:
                self._call("warm_up", None)
            except EngineStopped:
                if self._closed or time.monotonic() > deadline:
                    raise
                log.warning("plait serve: the engine process stopped while warming up; waiting for a new one")
                while not self.ready and not self._closed and time.monotonic() < deadline:
                    time.sleep(POLL_S)
                if self.ready:
                    return
                continue
            self._ready = True
            return

    def breaker_states(self) -> dict[str, str]:
        """field -> breaker state, as of the child's last answer (breakers change only in a call)."""
        return dict(self._states)

    def close(self, timeout_s: float = 10.0) -> None:
        """Ask the child to stop; kill it if it has not within timeout_s."""
        self._closed = True
        self._ready = False
        with self._lock:
            self._stop(timeout_s)

    # -- the child's lifecycle ----------------------------------------------------------------------
    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _start(self) -> None:
        """The first child. One that dies while loading (killed, out of memory) is replaced after
        the same waits as later restarts, START_TRIES times in all; an error the child reports
        (a bundle it cannot load) is raised at once."""
        for attempt in range(1, START_TRIES + 1):
            try:
                with self._lock:
                    self._spawn()
                return
            except EngineStopped as exc:
                if attempt == START_TRIES or self._closed:
                    raise
                wait_s = backoff_s(attempt)
                log.warning(
                    "plait serve: the engine process stopped while starting (%s; bundle %s); "
                    "trying again in %.1f s",
                    exc,
                    self.bundle,
                    wait_s,
                )
                time.sleep(wait_s)

    def _spawn(self) -> None:
        """Start a child and wait until it has loaded the bundle (the caller holds the lock)."""
        parent, child = multiprocessing.Pipe()  # a socket pair: the child gets its end's descriptor
        fd = child.fileno()
        settings = json.dumps(
            {
                "threads": self.threads,
                "guard": asdict(self.limits),
                "decode_budget_s": self.decode_budget_s,
                "trust_modified": self.trust_modified,
                "runtime": self.runtime.to_json(),
            }
        )
        command = [sys.executable, "-m", __name__, str(fd), str(self.bundle), settings]
        try:
            process = subprocess.Popen(command, pass_fds=(fd,), stdin=subprocess.DEVNULL)
        finally:
            child.close()  # the parent keeps only its end: EOF when the child dies
        self._process, self._conn = process, parent
        deadline = time.monotonic() + self.start_timeout_s
        try:
            self._states = self._receive(deadline=deadline, what="loading the bundle")
        except BaseException:
            self._stop(1.0)  # reap it and close our end: a failed start leaves nothing behind
            raise
        self._watched = process
        threading.Thread(target=self._watch, args=(process,), name="plait-engine-watch", daemon=True).start()

    def _watch(self, process: subprocess.Popen[bytes]) -> None:
        """Replace the child when it dies, busy or idle (not when it was stopped on purpose)."""
        code = process.wait()
        if self._closed or process is not self._process:
            return
        self._ready = False
        log.error("plait serve: the engine process exited with code %s; starting a new one", code)
        self._restart_soon()

    def _stop(self, timeout_s: float) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            with contextlib.suppress(OSError):
                _send(conn, ("close", None))
        if process is not None:
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5.0)
        if conn is not None:
            conn.close()

    def _restart_soon(self) -> None:
        """A new child, in the background; calls wait on the lock until it is up and warm."""

        def restart() -> None:
            if self._failed_restarts:
                time.sleep(backoff_s(self._failed_restarts))
            with self._lock:
                if self._closed or self._alive():
                    return
                self._restarting = True  # calls are refused at once meanwhile, not queued on the lock
                try:
                    self._stop(1.0)
                    self._spawn()
                    self._send_call("warm_up", None)
                    limit = self.call_timeout_s
                    self._receive(
                        deadline=None if limit is None else time.monotonic() + limit, what="warming up"
                    )
                except Exception:
                    self._failed_restarts += 1
                    log.exception("plait serve: restarting the engine process failed; trying again")
                    self._stop(1.0)
                    self._restart_soon()
                    return
                finally:
                    self._restarting = False
                self._failed_restarts = 0
                self.restarts += 1
                self._ready = True
                log.warning("plait serve: the engine process was restarted (%d so far)", self.restarts)

        threading.Thread(target=restart, name="plait-engine-restart", daemon=True).start()

    # -- calls --------------------------------------------------------------------------------------
    def _call(self, op: str, payload: Any) -> Any:
        if self._closed:
            raise EngineStopped("the engine process is closed: the server is shutting down")
        if self._restarting:
            raise EngineStopped("the engine process is restarting; retry shortly")
        with self._lock:
            if not self._alive():
                raise EngineStopped("the engine process is restarting; retry shortly")
            try:
                self._send_call(op, payload)
            except (OSError, ValueError) as exc:
                self._died("could not send the call", detail=str(exc))
            limit = self.call_timeout_s
            return self._receive(deadline=None if limit is None else time.monotonic() + limit, what=op)

    def _send_call(self, op: str, payload: Any) -> None:
        assert self._conn is not None  # set by _spawn
        _send(self._conn, (op, payload))

    def _receive(self, *, deadline: float | None, what: str) -> Any:
        """The child's next reply: its value, or raise its error; EngineStopped if it dies first."""
        assert self._conn is not None and self._process is not None
        while not self._conn.poll(POLL_S):
            if self._process.poll() is not None:
                self._died(f"it exited with code {self._process.returncode} while {what}")
            if deadline is not None and time.monotonic() > deadline:
                self._process.kill()  # the watcher starts a new one (unless it was still starting)
                self._died(f"it did not finish {what} in time and was killed")
        try:
            status, value, states = _receive(self._conn)
        except (EOFError, OSError):
            self._died(f"its pipe closed while {what}")
        if states is not None:
            self._states = states
        if status == "error":
            raise value
        return value

    def _died(self, how: str, detail: str = "") -> Any:
        """Raise for a call whose child died; the watcher starts the next one. The message reaches
        clients (503): no path or errno in it — they go to the log."""
        self._ready = False
        replaced = not self._closed and self._process is not None and self._process is self._watched
        log.warning(
            "plait serve: the engine process (bundle %s) stopped: %s%s",
            self.bundle,
            how,
            f" ({detail})" * bool(detail),
        )
        raise EngineStopped(
            f"the engine process stopped: {how}"
            + ("; a new one is starting, retry shortly" if replaced else "")
        )


def _child_main(fd: int, bundle: str, settings: Mapping[str, Any]) -> None:
    """The child: load the bundle, then answer calls until "close" or the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server; the server stops us
    conn = Connection(fd)
    try:
        import torch

        from plait.bundle import load_bundle
        from plait.serving.guard import FieldGuard
        from plait.serving.runtime import build_engine

        torch.set_num_threads(int(settings["threads"]))
        trained = load_bundle(bundle, trust_modified=bool(settings.get("trust_modified", False)))
        engine = build_engine(
            trained,
            RuntimeChoice.from_json(settings.get("runtime", {"name": "torch"})),
            guard=FieldGuard(list(trained.modalities), **settings["guard"]),
            decode_budget_s=settings.get("decode_budget_s"),
            threads=int(settings["threads"]),
        )
    except Exception as exc:
        _send(conn, ("error", _sendable(exc), None))
        return
    _send(conn, ("ok", engine.guard.states(), None))
    try:
        while True:
            try:
                op, payload = _receive(conn)
            except (EOFError, OSError):
                return  # the server went away
            if op == "close":
                return
            try:
                value: Any = None
                if op == "predict":
                    records, explain, impute, embed = payload
                    value = engine.predict(records, explain, impute, embed)
                elif op == "warm_up":
                    engine.warm_up()
                else:
                    raise PlaitError(f"engine process: unknown call {op!r}")
            except Exception as exc:
                _send(conn, ("error", _sendable(exc), engine.guard.states()))
                continue
            _send(conn, ("ok", value, engine.guard.states()))
    finally:
        engine.close()


def _send(conn: Connection, message: Any) -> None:
    """Plain pickle: `Connection.send` pickles with the pickler torch extends to pass tensors
    through shared memory, which needs a child started by multiprocessing."""
    conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def _receive(conn: Connection) -> Any:
    return pickle.loads(conn.recv_bytes())  # our own child, over our own socket pair


def _sendable(exc: Exception) -> Exception:
    """`exc` when it survives pickling, else a PlaitError with its text."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return PlaitError(f"engine process: {text}")
    return exc


if __name__ == "__main__":  # the child: python -m plait.serving.process FD BUNDLE SETTINGS_JSON
    _child_main(int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]))
