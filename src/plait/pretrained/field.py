"""A field read through a frozen pretrained encoder: each value becomes the encoder's vector once.

The backbone runs while the table is loaded (`load_many`, batched), not in the training loop, so
every epoch, fusion, fold and evaluation after the first reads vectors; across runs the embedding
cache (plait.pretrained.cache) keeps them. The model trains a small head on the vector
(LayerNorm → Linear → GELU → Linear, as for the `embedding` kind). The kinds (text, image, audio)
differ only in how a row's value is decoded and how it arrives over HTTP (plait.pretrained.kinds).

Robustness sweeps perturb what the model reads — the vector — so these fields declare Gaussian
noise in embedding space, not pixel or waveform noise.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
import torch
from torch import Tensor, nn

from plait.errors import BundleError, DataError
from plait.modalities.base import JSONState, NotFittedError, require_columns, zeros_like_batch
from plait.modalities.embedding import EmbeddingEncoder
from plait.modalities.options import positive_int
from plait.pretrained.backbone import Backbone, BackboneIdentity, content_key
from plait.pretrained.cache import CacheUnavailable, EmbeddingCache
from plait.pretrained.registry import resolve
from plait.pretrained.weights import WeightsMismatchError
from plait.types import Absent

# Items each backbone has encoded in this process, by encoder name: what the cache saves is visible.
ENCODED: Counter[str] = Counter()
PROGRESS_MIN = 64  # show a progress bar when at least this many rows load
CHUNK_ROWS = 2048  # rows decoded at once (an image decodes to 0.6 MB: a chunk holds about 1.2 GB)
_WARNED: set[str] = set()  # cache files already warned about in this process


def _usable(cache: EmbeddingCache | None) -> EmbeddingCache | None:
    return cache if cache is None or str(cache.path) not in _WARNED else None


def _guarded(
    cache: EmbeddingCache, method: Callable[..., Any], *args: Any, fallback: Any
) -> tuple[Any, EmbeddingCache | None]:
    """(`method(cache, *args)`, cache), or — when the cache cannot be used — one warning per file
    and (fallback, None): the run goes on encoding without it."""
    try:
        return method(cache, *args), cache
    except CacheUnavailable as exc:
        if str(cache.path) not in _WARNED:
            _WARNED.add(str(cache.path))
            warnings.warn(f"{exc}; going on without the cache", RuntimeWarning, stacklevel=3)
        return fallback, None


class _Progress:
    """A progress bar over the rows a field encodes (only when asked and the table is large)."""

    def __init__(self, field: PretrainedField, shown: bool, rows: int) -> None:
        self._bar: Any = None
        if shown and rows >= PROGRESS_MIN:
            from rich.progress import Progress

            self._bar = Progress(transient=True)
            self._task = self._bar.add_task(f"Encoding {field.name} with {field.identity.name}", total=rows)
            self._bar.start()

    def advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


class PretrainedField:
    """The shared part of the text, image and audio fields with a pretrained encoder."""

    kind: ClassVar[str] = ""
    local_folder: ClassVar[Callable[..., Backbone]]  # reads `encoder: {pretrained: PATH}` for this kind
    perturbations: ClassVar[tuple[str, ...]] = ("gaussian_noise",)
    noise_family: ClassVar[str] = "gaussian_noise"

    def __init__(
        self,
        name: str,
        encoder: object,
        *,
        batch_size: int,
        max_seconds: float = 10.0,
        max_tokens: int = 128,
    ) -> None:
        self.name = name
        self.encoder = encoder
        self.batch_size = positive_int(name, "batch_size", batch_size, maximum=4096)
        self.backbone: Backbone = resolve(
            name, self.kind, encoder, local=self.local_folder, max_seconds=max_seconds, max_tokens=max_tokens
        )
        self._fitted = False

    # ---- what a kind provides ---------------------------------------------------------------

    def columns(self) -> tuple[str, ...]:
        raise NotImplementedError

    def decode(self, row: Mapping[str, Any], root: Path) -> Any:
        """The row's value decoded for the backbone (str, pixels or wave), or Absent."""
        raise NotImplementedError

    def options(self) -> JSONState:
        """The kind's options, saved in the state."""
        raise NotImplementedError

    # ---- the modality contract --------------------------------------------------------------

    @property
    def identity(self) -> BackboneIdentity:
        return self.backbone.identity

    def fit(self, table: pl.DataFrame, root: Path) -> None:
        """Nothing to learn: the encoder is frozen and its head normalises what it reads."""
        require_columns(table, self.name, self.columns())
        self._fitted = True

    def get_state(self) -> JSONState:
        if not self._fitted:
            raise NotFittedError.for_field(self.name, self.kind)
        return {"encoder": self.encoder, "backbone": self.identity.to_json(), **self.options()}

    def set_state(self, state: JSONState) -> None:
        if "backbone" not in state:
            raise BundleError(
                f"field '{self.name}': the saved state names no pretrained encoder; re-save the bundle"
            )
        saved = BackboneIdentity.from_json(state["backbone"], self.name)
        current = self.identity
        local = saved.version == "local"  # a folder of the user's may move: its hash names it
        if (saved.sha256, saved.dim) != (current.sha256, current.dim) or (
            not local and saved.name != current.name
        ):
            raise BundleError(
                f"field '{self.name}': the bundle was trained with {saved.label()}, {saved.dim}-d, but this "
                f"machine has {current.label()}, {current.dim}-d; install the weights the bundle names "
                f"(version {saved.version}), load it where they are, or retrain"
            )
        if saved.preprocessing != current.preprocessing:
            raise BundleError(
                f"field '{self.name}': the bundle's encoder read '{saved.preprocessing}', this machine's "
                f"reads '{current.preprocessing}'; use the bundle's saved config and the same model files, "
                "or retrain"
            )
        try:
            self.backbone.check()  # the weights on disk, not only their name: fail at load, not per request
        except WeightsMismatchError as exc:
            raise BundleError(f"field '{self.name}': {exc}") from None
        self._fitted = True

    def load(self, row: Mapping[str, Any], root: Path) -> Tensor | Absent:
        return self.load_many([row], root)[0]

    def load_many(
        self, rows: Sequence[Mapping[str, Any]], root: Path, *, row_offset: int = 0, progress: bool = False
    ) -> list[Tensor | Absent]:
        """Every row's vector FloatTensor[dim] (or Absent): decoded, looked up in the embedding
        cache by content, and only the items not found there encoded, in batches. Rows go through
        in chunks, so only a chunk's decoded media is held at once; an item met twice is encoded once."""
        cache = _usable(EmbeddingCache.default())
        prefix = self.identity.cache_key()  # the encoder's part of every item's key
        known: dict[str, np.ndarray] = {}  # key → vector, for items repeated across chunks
        out: list[Tensor | Absent] = []
        checked = False
        bar = _Progress(self, progress, len(rows))
        for start in range(0, len(rows), CHUNK_ROWS):
            chunk = rows[start : start + CHUNK_ROWS]
            items = [self._decoded(row, root, start + i + row_offset) for i, row in enumerate(chunk)]
            keys = [None if isinstance(item, Absent) else content_key(prefix, item) for item in items]
            first: dict[str, int] = {}
            for i, key in enumerate(keys):
                if key is not None and key not in known:
                    first.setdefault(key, i)
            if first and not checked:
                self.backbone.check()  # the weights on disk are the ones named, before any vector is used
                checked = True
            if first and cache is not None:
                found, cache = _guarded(cache, EmbeddingCache.get_many, list(first), fallback={})
                known.update(found)
            todo = [k for k in first if k not in known]
            if todo:
                fresh = self._encode(todo, [items[first[k]] for k in todo], bar)
                known.update(fresh)
                if cache is not None:
                    _, cache = _guarded(
                        cache, EmbeddingCache.put_many, self.identity.name, fresh, fallback=None
                    )
            bar.advance(len(chunk) - len(todo))  # the rows read from the cache, absent or repeated
            out.extend(
                item if key is None else torch.from_numpy(np.array(known[key], dtype=np.float32))
                for item, key in zip(items, keys, strict=True)
            )
        bar.close()
        return out

    def _decoded(self, row: Mapping[str, Any], root: Path, number: int) -> Any:
        try:
            return self.decode(row, root)
        except DataError as exc:
            raise DataError(f"row {number}: {exc}") from None

    def _encode(self, keys: list[str], items: list[Any], bar: _Progress) -> dict[str, np.ndarray]:
        """Encode `items` in batches of `batch_size`."""
        out: dict[str, np.ndarray] = {}
        for start in range(0, len(items), self.batch_size):
            chunk = items[start : start + self.batch_size]
            encoded = np.asarray(self.backbone.encode(chunk), dtype=np.float32)  # (B, dim)
            if encoded.shape != (len(chunk), self.identity.dim):
                raise RuntimeError(
                    f"field '{self.name}': {self.identity.name} returned {encoded.shape}, "
                    f"expected ({len(chunk)}, {self.identity.dim})"
                )
            ENCODED[self.identity.name] += len(chunk)
            out.update(zip(keys[start : start + self.batch_size], encoded, strict=True))
            bar.advance(len(chunk))
        return out

    def collate(self, items: Sequence[Tensor | None]) -> tuple[Tensor, Tensor | None]:
        return zeros_like_batch(items, (self.identity.dim,), torch.float32), None  # (B, dim)

    def summary_features(self, values: Tensor, mask: Tensor | None) -> Tensor:
        """For the boosting baseline: the pretrained vector itself."""
        return values.float()  # (B, dim)

    def build_encoder(self, dim: int) -> nn.Module:
        return EmbeddingEncoder(input_dim=self.identity.dim, output_dim=dim)
