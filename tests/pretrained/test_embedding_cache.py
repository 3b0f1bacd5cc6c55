"""The embedding cache: exact round trip, the size bound (least recently used go first), clearing
per encoder, and two processes writing at once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from plait.errors import ConfigError
from plait.pretrained.cache import CacheUnavailable, EmbeddingCache


def _vec(seed: int, dim: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=dim).astype(np.float32)


def test_vectors_come_back_bit_for_bit(tmp_path: Path):
    cache = EmbeddingCache(tmp_path)
    stored = {f"k{i}": _vec(i) for i in range(5)}
    cache.put_many("enc", stored)
    found = cache.get_many(["k0", "k3", "nope"])
    assert set(found) == {"k0", "k3"}
    assert np.array_equal(found["k3"], stored["k3"]) and found["k3"].dtype == np.float32


def test_the_bound_drops_the_least_recently_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    clock = iter(range(0, 10**9, 7200))  # two hours per reading: every use is recorded, in order
    monkeypatch.setattr("plait.pretrained.cache.time.time", lambda: float(next(clock)))
    one = _vec(0).nbytes  # 64 bytes
    cache = EmbeddingCache(tmp_path, max_bytes=4 * one)
    cache.put_many("enc", {"a": _vec(1), "b": _vec(2), "c": _vec(3)})
    cache.get_many(["a"])  # a is now the most recently used
    cache.put_many("enc", {"d": _vec(4), "e": _vec(5)})  # 5 vectors > 4: evict down to 90 %
    info = cache.info()
    assert info.bytes <= 4 * one
    left = set(cache.get_many(["a", "b", "c", "d", "e"]))
    assert "a" in left and {"d", "e"} <= left and "b" not in left
    assert info.bytes == one * len(left)  # the running total agrees with what is stored


def test_a_recent_use_is_not_rewritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    cache = EmbeddingCache(tmp_path)
    cache.put_many("enc", {"a": _vec(1)})
    writes: list[str] = []
    original = cache._connect

    def spying():  # every statement a reading run sends
        manager = original()
        db = manager.__enter__()
        db.set_trace_callback(writes.append)
        return _Wrapped(manager, db)

    monkeypatch.setattr(cache, "_connect", spying)
    assert set(cache.get_many(["a"])) == {"a"}
    assert not [w for w in writes if w.lstrip().upper().startswith("UPDATE")]


class _Wrapped:
    def __init__(self, manager, db) -> None:
        self.manager, self.db = manager, db

    def __enter__(self):
        return self.db

    def __exit__(self, *exc):
        return self.manager.__exit__(*exc)


def test_a_damaged_cache_file_is_reported_and_cleared(tmp_path: Path):
    (tmp_path / "embeddings.sqlite").write_bytes(b"this is not a database" * 100)
    cache = EmbeddingCache(tmp_path)
    with pytest.raises(CacheUnavailable, match=r"embeddings\.sqlite.*plait cache clear.*PLAIT_NO_CACHE=1"):
        cache.get_many(["a"])
    assert cache.clear() == -1 and not (tmp_path / "embeddings.sqlite").exists()
    cache = EmbeddingCache(tmp_path)
    cache.put_many("enc", {"a": _vec(1)})
    assert set(cache.get_many(["a"])) == {"a"}


def test_clear_one_encoder_or_all_and_info_per_encoder(tmp_path: Path):
    cache = EmbeddingCache(tmp_path)
    cache.put_many("text-enc", {"t1": _vec(1), "t2": _vec(2)})
    cache.put_many("audio-enc", {"a1": _vec(3, dim=8)})
    usage = {u.encoder: (u.entries, u.bytes) for u in cache.info().encoders}
    assert usage == {"audio-enc": (1, 32), "text-enc": (2, 128)}
    assert cache.clear("text-enc") == 2
    assert [u.encoder for u in cache.info().encoders] == ["audio-enc"]
    assert cache.clear() == 1 and cache.info().entries == 0


def test_info_and_clear_on_a_cache_never_written(tmp_path: Path):
    cache = EmbeddingCache(tmp_path / "nothing-yet")
    assert cache.info().entries == 0 and cache.clear() == 0
    assert not (tmp_path / "nothing-yet").exists()


def test_a_bad_bound_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(ConfigError, match="max_bytes"):
        EmbeddingCache(tmp_path, max_bytes=0)
    monkeypatch.setenv("PLAIT_CACHE_MAX_BYTES", "lots")
    with pytest.raises(ConfigError, match=r"PLAIT_CACHE_MAX_BYTES.*'lots'"):
        EmbeddingCache.default()
    monkeypatch.setenv("PLAIT_NO_CACHE", "1")
    assert EmbeddingCache.default() is None


def _writer(folder: str, start: int) -> None:
    cache = EmbeddingCache(Path(folder))
    for i in range(start, start + 40):
        cache.put_many("enc", {f"k{i % 60}": _vec(i % 60)})  # the two writers overlap on 20 keys
        cache.get_many([f"k{(i * 7) % 60}"])


def test_two_processes_write_at_once(tmp_path: Path):
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(str(tmp_path), s)) for s in (0, 20)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    found = EmbeddingCache(tmp_path).get_many([f"k{i}" for i in range(60)])
    assert len(found) == 60 and all(np.array_equal(found[f"k{i}"], _vec(i)) for i in range(60))


def test_a_cache_another_layout_wrote_is_refused_not_misread(tmp_path: Path):
    import sqlite3

    with sqlite3.connect(tmp_path / "embeddings.sqlite") as db:  # an older layout: the blob in the middle
        db.execute(
            "CREATE TABLE vectors (key TEXT, encoder TEXT, dim INT, value BLOB, size INT, last_used REAL)"
        )
    cache = EmbeddingCache(tmp_path)
    with pytest.raises(CacheUnavailable, match=r"written by another plait version.*plait cache clear"):
        cache.put_many("enc", {"a": _vec(1)})
    assert cache.clear() == -1
    fresh = EmbeddingCache(tmp_path)
    fresh.put_many("enc", {"a": _vec(1)})
    assert np.array_equal(fresh.get_many(["a"])["a"], _vec(1))


def test_a_file_being_set_up_by_another_process_is_waited_for_not_refused(tmp_path: Path) -> None:
    """Regression: one process had created the tables but not yet stamped the layout when another
    opened the file, which took it for a foreign one ("layout 0"). Set-up is one transaction now:
    the second waits for it. The interleaving is forced: the first pauses just before stamping."""
    import sqlite3
    import threading
    import time

    first = EmbeddingCache(tmp_path)
    errors: list[Exception] = []

    def second() -> None:
        try:
            EmbeddingCache(tmp_path).put_many("enc", {"k": np.ones(3, dtype=np.float32)})
        except Exception as exc:
            errors.append(exc)

    opener = threading.Thread(target=second)

    class Pausing:
        """The first process's connection: lets the second in just before the layout is stamped."""

        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
            if sql.startswith("PRAGMA user_version ="):
                opener.start()
                time.sleep(0.5)
            return self.db.execute(sql, *args)

        def executescript(self, sql: str) -> sqlite3.Cursor:
            return self.db.executescript(sql)

    tmp_path.mkdir(exist_ok=True)
    db = sqlite3.connect(first.path, isolation_level=None, timeout=60.0, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    first._check_schema(Pausing(db))  # type: ignore[arg-type]
    db.close()
    opener.join()
    assert errors == []
    assert list(first.get_many(["k"])) == ["k"]
