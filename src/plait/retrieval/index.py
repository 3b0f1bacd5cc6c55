"""A saved vector index of one field's embeddings (usearch): exact search for small tables, an HNSW
graph when large. Keys are the rows of the table it was built from; scores are cosine similarity."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from plait.errors import DataError, PlaitError

EXACT_BELOW = 50_000  # rows: below this every query is compared with every item
INDEX_FILE, META_FILE = "index.usearch", "index.json"
FORMAT = "plait-index/1"


@dataclass(frozen=True)
class IndexMeta:
    field: str
    model_id: str
    source: str  # the table the items came from
    fingerprint: str  # sha256 of that file when the index was built
    items: int  # rows where the field is present (the rest are not in the index)
    rows: int  # rows of the table
    dim: int
    exact: bool
    format: str = FORMAT

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> IndexMeta:
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Matches:
    """For each query (Q rows): the k nearest items' table rows (Q, k) and cosine scores (Q, k)."""

    rows: np.ndarray
    scores: np.ndarray


class VectorIndex:
    def __init__(self, index: Any, meta: IndexMeta) -> None:
        self.index = index
        self.meta = meta

    @classmethod
    def build(cls, vectors: np.ndarray, rows: np.ndarray, meta: IndexMeta) -> VectorIndex:
        """An index of `vectors` (n, dim) keyed by their table `rows` (n,)."""
        index = _usearch()(ndim=meta.dim, metric="cos", dtype="f32")
        if len(rows):
            index.add(rows.astype(np.uint64), np.ascontiguousarray(vectors, dtype=np.float32))
        return cls(index, meta)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.index.save(str(folder / INDEX_FILE))
        (folder / META_FILE).write_text(json.dumps(self.meta.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> VectorIndex:
        restore = _usearch().restore
        try:
            meta = IndexMeta.from_json(json.loads((folder / META_FILE).read_text()))
            index = restore(str(folder / INDEX_FILE))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise DataError(
                f"vector index {folder} could not be read ({type(exc).__name__}: {exc}); delete the folder "
                "or pass --rebuild to build it again"
            ) from None
        if index is None or meta.format != FORMAT:
            raise DataError(
                f"vector index {folder} is not a {FORMAT} index; pass --rebuild to build it again"
            )
        return cls(index, meta)

    def search(self, queries: np.ndarray, k: int) -> Matches:
        """The k nearest items of each query (Q, dim), best first; fewer when the index is smaller."""
        k = min(k, len(self.index))
        if k == 0:
            empty = np.zeros((queries.shape[0], 0))
            return Matches(rows=empty.astype(np.int64), scores=empty)
        found = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k, exact=self.meta.exact)
        keys = np.asarray(found.keys).reshape(queries.shape[0], -1)
        distances = np.asarray(found.distances).reshape(queries.shape[0], -1)
        # an approximate search may find fewer than k (one query gives Matches: its keys are the found)
        counts = np.asarray(getattr(found, "counts", [np.asarray(found.keys).size])).reshape(-1)
        n = int(counts.min()) if counts.size else 0
        return Matches(rows=keys[:, :n].astype(np.int64), scores=1.0 - distances[:, :n].astype(np.float64))


def _usearch() -> Any:
    """usearch's Index class, or an error naming the install that brings it."""
    try:
        from usearch.index import Index
    except ImportError:
        raise PlaitError(
            "plait search needs the vector-search package usearch, not installed; pip install 'plait[search]'"
        ) from None
    return Index
