"""A content-addressed cache of frozen encoders' outputs, on disk, shared by every plait run.

Key: sha256 of the encoder's identity (name, weights hash, preprocessing) and the decoded input's
bytes (the text, the pixels, the waveform), so the same item through the same encoder is encoded
once — across epochs, fusions in `plait compare`, folds, `plait evaluate` and later runs — and an
edited file or another encoder can never be served a stale vector.

One SQLite file (stdlib, no server): WAL mode, a busy timeout and short write transactions let
concurrent runs on one machine share it (writers queue; `INSERT OR IGNORE` makes a race to store the
same item harmless; not for network file systems, where SQLite's locks are unreliable). Bounded:
the stored bytes are kept as a running total, and once they exceed `max_bytes` the least recently
used vectors are dropped down to 90 % of it (an item's use time is refreshed at most once an hour).
Values are float32 bytes exactly as first encoded, so every later run reads the same vectors.
A cache that cannot be used (a read-only or full disk, a damaged file) raises `CacheUnavailable`;
the fields then warn once and go on encoding without it.

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

from plait.errors import ConfigError, PlaitError

FILE_NAME = "embeddings.sqlite"
DEFAULT_MAX_BYTES = 2 * 1024**3
KEEP_AFTER_EVICTION = 0.9  # evict down to this share of max_bytes, so every insert does not evict
SQL_CHUNK = 500  # keys per SELECT (SQLite's default limit on bound parameters is far above it)
SETUP_WAIT_S = 30.0  # how long a new file waits for another process that is setting it up
ENV_DIR = "PLAIT_CACHE_DIR"
ENV_MAX_BYTES = "PLAIT_CACHE_MAX_BYTES"
ENV_OFF = "PLAIT_NO_CACHE"

SCHEMA_VERSION = 1  # PRAGMA user_version of the layout below
TOUCH_AFTER_S = 3600.0  # refresh an item's last use at most this often (a warm run writes little)

# The blob last, so reading the other columns (eviction, totals) never walks the vectors' pages.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    key TEXT PRIMARY KEY,
    encoder TEXT NOT NULL,
    dim INTEGER NOT NULL,
    size INTEGER NOT NULL,
    last_used REAL NOT NULL,
    value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS vectors_last_used ON vectors (last_used);
CREATE TABLE IF NOT EXISTS totals (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO totals VALUES ('bytes', 0);
"""


class CacheUnavailable(PlaitError, OSError):
    """The embedding cache cannot be read or written (the message names the file and the way out)."""


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
        raise ConfigError(
            f"{ENV_MAX_BYTES}: expected a positive number of bytes, got {raw!r}; set it to e.g. 2147483648 "
            "(2 GiB) or unset it"
        )
    return value


_OPENED: dict[tuple[Path, int], EmbeddingCache] = {}


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
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


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
        if os.environ.get(ENV_OFF, "").strip().lower() not in ("", "0", "false", "no"):
            return None
        settings = (default_dir(), default_max_bytes())
        if settings not in _OPENED:  # one per place and bound: the schema is set up once per process,
            _OPENED[settings] = cls(*settings)  # not on every served request
        return _OPENED[settings]

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self._ready = self._ready and self.path.is_file()  # a file cleared away is set up again
        try:
            if not self._ready:
                self.folder.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise self._unavailable(exc) from None
        try:
            if not self._ready:
                self._set_up(connection)
                self._ready = True
            yield connection
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from None
        finally:
            connection.close()

    def _set_up(self, db: sqlite3.Connection) -> None:
        """WAL mode and the tables. Switching the journal mode of a file another process is setting
        up at the same moment is refused at once (SQLite does not wait on its busy timeout there),
        so it is tried again for a while."""
        deadline = time.monotonic() + SETUP_WAIT_S
        while True:
            try:
                db.execute("PRAGMA journal_mode=WAL")
                self._check_schema(db)
                return
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _check_schema(self, db: sqlite3.Connection) -> None:
        """Create the tables in a new file; refuse a file another layout wrote (CacheUnavailable).
        Checked and created in one write transaction: a process that looked between another one's
        creating the tables and stamping the layout took a new file for a foreign one."""
        db.execute("BEGIN IMMEDIATE")  # waits (busy timeout) for a process setting the file up
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            tables = db.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            if tables and version != SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"written by another plait version (layout {version}, this plait reads {SCHEMA_VERSION})"
                )
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _unavailable(self, exc: Exception) -> CacheUnavailable:
        return CacheUnavailable(
            f"embedding cache {self.path}: {type(exc).__name__}: {exc}; `plait cache clear` starts it "
            f"afresh, {ENV_DIR}=FOLDER moves it, {ENV_OFF}=1 turns it off"
        )

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors among `keys` (float32 [dim]); refreshes the use time of those not used
        in the last hour."""
        found: dict[str, np.ndarray] = {}
        if not keys:
            return found
        unique = list(dict.fromkeys(keys))
        stale: list[str] = []
        now = time.time()
        with self._connect() as db:
            for start in range(0, len(unique), SQL_CHUNK):
                chunk = unique[start : start + SQL_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT key, dim, last_used, value FROM vectors WHERE key IN ({marks})", chunk
                )
                for key, dim, last_used, value in rows:
                    if not isinstance(value, bytes):
                        continue  # a foreign row is a miss, not an error
                    vector = np.frombuffer(value, dtype=np.float32)
                    if vector.size == dim:  # …and so is a torn one
                        found[key] = vector.copy()
                        if now - float(last_used) > TOUCH_AFTER_S:
                            stale.append(key)
            if stale:
                db.execute("BEGIN IMMEDIATE")
                db.executemany("UPDATE vectors SET last_used = ? WHERE key = ?", [(now, k) for k in stale])
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
            rows.append((key, encoder, int(data.size), int(data.nbytes), now, data.tobytes()))
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            added = 0
            for row in rows:  # one statement per row: `changes()` says whether it was new
                inserted = db.execute(
                    "INSERT OR IGNORE INTO vectors (key, encoder, dim, size, last_used, value) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    row,
                )
                if inserted.rowcount:
                    added += row[3]
            total = added + int(db.execute("SELECT value FROM totals WHERE name = 'bytes'").fetchone()[0])
            total = self._evict(db, total)
            db.execute("UPDATE totals SET value = ? WHERE name = 'bytes'", (total,))
            db.execute("COMMIT")

    def _evict(self, db: sqlite3.Connection, total: int) -> int:
        """Drop the least recently used vectors until `total` bytes fit; returns the new total."""
        if total <= self.max_bytes:
            return total
        target = int(self.max_bytes * KEEP_AFTER_EVICTION)
        doomed: list[tuple[str]] = []
        for key, size in db.execute("SELECT key, size FROM vectors ORDER BY last_used ASC, key ASC"):
            if total <= target:
                break
            doomed.append((key,))
            total -= int(size)
        db.executemany("DELETE FROM vectors WHERE key = ?", doomed)
        return total

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
        """Drop every vector (or those of one encoder); returns how many were dropped. A damaged
        file is removed whole (its count is then unknown: -1)."""
        if not self.path.is_file():
            return 0
        try:
            with self._connect() as db:
                if encoder is None:
                    dropped = db.execute("DELETE FROM vectors").rowcount
                else:
                    dropped = db.execute("DELETE FROM vectors WHERE encoder = ?", (encoder,)).rowcount
                total = db.execute("SELECT COALESCE(SUM(size), 0) FROM vectors").fetchone()[0]
                db.execute("UPDATE totals SET value = ? WHERE name = 'bytes'", (int(total),))
                db.execute("VACUUM")
        except CacheUnavailable:
            if encoder is not None:
                raise
            for leftover in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
                leftover.unlink(missing_ok=True)
            return -1
        return int(dropped)
