"""A content-addressed cache of frozen encoders' outputs, on disk, shared by every plait run.

Key: sha256 of the encoder's identity (name, weights hash, preprocessing) and the decoded input's
bytes (the text, the pixels, the waveform), so the same item through the same encoder is encoded
once — across epochs, fusions in `plait compare`, folds, `plait evaluate` and later runs — and an
edited file or another encoder can never be served a stale vector.

One SQLite file (stdlib, no server): WAL mode and a busy timeout make concurrent runs safe (readers
never block, writers queue; `INSERT OR IGNORE` makes a race to store the same item harmless).
Bounded: once the stored vectors exceed `max_bytes`, the least recently used are dropped down to
90 % of it. Values are stored as float32 bytes exactly as encoded, so a cached run equals a fresh one.

    >>> cache = EmbeddingCache.default()
    >>> found = cache.get_many(["ab12…"])  # key → float32 vector
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plait.errors import ConfigError

FILE_NAME = "embeddings.sqlite"
DEFAULT_MAX_BYTES = 2 * 1024**3
KEEP_AFTER_EVICTION = 0.9  # evict down to this share of max_bytes, so every insert does not evict
SQL_CHUNK = 500  # keys per SELECT (SQLite's default limit on bound parameters is far above it)
ENV_DIR = "PLAIT_CACHE_DIR"
ENV_MAX_BYTES = "PLAIT_CACHE_MAX_BYTES"
ENV_OFF = "PLAIT_NO_CACHE"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    key TEXT PRIMARY KEY,
    encoder TEXT NOT NULL,
    dim INTEGER NOT NULL,
    value BLOB NOT NULL,
    size INTEGER NOT NULL,
    last_used REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS vectors_last_used ON vectors (last_used);
"""


def default_dir() -> Path:
    """$PLAIT_CACHE_DIR, else $XDG_CACHE_HOME/plait, else ~/.cache/plait."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "plait"


def default_max_bytes() -> int:
    raw = os.environ.get(ENV_MAX_BYTES)
    if raw is None:
        return DEFAULT_MAX_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value <= 0:
        raise ConfigError(f"{ENV_MAX_BYTES}: expected a positive number of bytes, got {raw!r}")
    return value


@dataclass(frozen=True)
class EncoderUsage:
    """What one encoder holds in the cache."""

    encoder: str
    entries: int
    bytes: int


@dataclass(frozen=True)
class CacheInfo:
    path: Path
    entries: int
    bytes: int
    max_bytes: int
    encoders: tuple[EncoderUsage, ...]

    def lines(self) -> list[str]:
        share = 100.0 * self.bytes / self.max_bytes if self.max_bytes else 0.0
        head = [
            f"cache: {self.path}",
            f"{self.entries} vectors, {_size(self.bytes)} of {_size(self.max_bytes)} ({share:.1f} %)",
        ]
        return head + [f"  {u.encoder}: {u.entries} vectors, {_size(u.bytes)}" for u in self.encoders]


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1024  # type: ignore[assignment]
    return f"{n} B"


class EmbeddingCache:
    """Vectors by content key in one SQLite file under `folder`, at most `max_bytes` of them."""

    def __init__(self, folder: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes <= 0:
            raise ConfigError(f"embedding cache: max_bytes must be positive, got {max_bytes}")
        self.folder = Path(folder)
        self.path = self.folder / FILE_NAME
        self.max_bytes = int(max_bytes)
        self._ready = False

    @classmethod
    def default(cls) -> EmbeddingCache | None:
        """The cache the environment asks for, or None when PLAIT_NO_CACHE is set."""
        if os.environ.get(ENV_OFF, "").strip() not in ("", "0"):
            return None
        return cls(default_dir(), default_max_bytes())

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if not self._ready:
            self.folder.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            if not self._ready:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.executescript(_SCHEMA)
                self._ready = True
            yield connection
        finally:
            connection.close()

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors among `keys` (float32 [dim]); marks them used."""
        found: dict[str, np.ndarray] = {}
        if not keys:
            return found
        unique = list(dict.fromkeys(keys))
        with self._connect() as db:
            for start in range(0, len(unique), SQL_CHUNK):
                chunk = unique[start : start + SQL_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(f"SELECT key, dim, value FROM vectors WHERE key IN ({marks})", chunk)
                for key, dim, value in rows:
                    vector = np.frombuffer(value, dtype=np.float32)
                    if vector.size == dim:  # a torn or foreign row is a miss, not an error
                        found[key] = vector.copy()
            if found:
                now = time.time()
                db.execute("BEGIN IMMEDIATE")
                db.executemany("UPDATE vectors SET last_used = ? WHERE key = ?", [(now, k) for k in found])
                db.execute("COMMIT")
        return found

    def put_many(self, encoder: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Store `vectors` (key → float32 [dim]) under `encoder`'s name, then evict down to the bound."""
        if not vectors:
            return
        now = time.time()
        rows = []
        for key, vector in vectors.items():
            data = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
            rows.append((key, encoder, int(data.size), data.tobytes(), int(data.nbytes), now))
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT OR IGNORE INTO vectors (key, encoder, dim, value, size, last_used) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._evict(db)
            db.execute("COMMIT")

    def _evict(self, db: sqlite3.Connection) -> None:
        total = int(db.execute("SELECT COALESCE(SUM(size), 0) FROM vectors").fetchone()[0])
        if total <= self.max_bytes:
            return
        target = int(self.max_bytes * KEEP_AFTER_EVICTION)
        doomed: list[tuple[str]] = []
        for key, size in db.execute("SELECT key, size FROM vectors ORDER BY last_used ASC, key ASC"):
            if total <= target:
                break
            doomed.append((key,))
            total -= int(size)
        db.executemany("DELETE FROM vectors WHERE key = ?", doomed)

    def info(self) -> CacheInfo:
        """What the cache holds, per encoder (reads nothing when the file does not exist yet)."""
        if not self.path.is_file():
            return CacheInfo(self.path, 0, 0, self.max_bytes, ())
        with self._connect() as db:
            rows = db.execute(
                "SELECT encoder, COUNT(*), COALESCE(SUM(size), 0) FROM vectors "
                "GROUP BY encoder ORDER BY encoder"
            ).fetchall()
        usage = tuple(EncoderUsage(str(e), int(n), int(b)) for e, n, b in rows)
        return CacheInfo(
            self.path, sum(u.entries for u in usage), sum(u.bytes for u in usage), self.max_bytes, usage
        )

    def clear(self, encoder: str | None = None) -> int:
        """Drop every vector (or those of one encoder); returns how many were dropped."""
        if not self.path.is_file():
            return 0
        with self._connect() as db:
            if encoder is None:
                dropped = db.execute("DELETE FROM vectors").rowcount
            else:
                dropped = db.execute("DELETE FROM vectors WHERE encoder = ?", (encoder,)).rowcount
            db.execute("VACUUM")
        return int(dropped)
