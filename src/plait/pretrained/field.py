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

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
import torch
from torch import Tensor

from plait.errors import BundleError, DataError
from plait.modalities.base import JSONState, NotFittedError, require_columns, zeros_like_batch
from plait.modalities.embedding import EmbeddingEncoder
from plait.modalities.options import positive_int
from plait.pretrained.backbone import Backbone, BackboneIdentity, content_key
from plait.pretrained.cache import EmbeddingCache
from plait.pretrained.registry import resolve
from plait.types import Absent

# Items each backbone has encoded in this process, by encoder name: what the cache saves is visible.
ENCODED: Counter[str] = Counter()
PROGRESS_MIN = 64  # show a progress bar when at least this many items need encoding


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
        if (saved.name, saved.sha256, saved.dim) != (current.name, current.sha256, current.dim):
            raise BundleError(
                f"field '{self.name}': the bundle was trained with {saved.label()}, {saved.dim}-d, but this "
                f"machine has {current.label()}, {current.dim}-d; install the weights the bundle names "
                f"(version {saved.version}) or retrain"
            )
        if saved.preprocessing != current.preprocessing:
            raise BundleError(
                f"field '{self.name}': the bundle's encoder read '{saved.preprocessing}', this config gives "
                f"'{current.preprocessing}'; use the bundle's saved config"
            )
        self._fitted = True

    def load(self, row: Mapping[str, Any], root: Path) -> Tensor | Absent:
        return self.load_many([row], root)[0]

    def load_many(
        self, rows: Sequence[Mapping[str, Any]], root: Path, *, row_offset: int = 0, progress: bool = False
    ) -> list[Tensor | Absent]:
        """Every row's vector FloatTensor[dim] (or Absent): decoded, looked up in the embedding
        cache by content, and only the items not found there encoded, in batches."""
        items: list[Any] = []
        for i, row in enumerate(rows):
            try:
                items.append(self.decode(row, root))
            except DataError as exc:
                raise DataError(f"row {i + row_offset}: {exc}") from None
        identity = self.identity
        prefix = identity.cache_key()
        keys = [None if isinstance(item, Absent) else content_key(prefix, item) for item in items]
        wanted = [k for k in dict.fromkeys(keys) if k is not None]
        cache = EmbeddingCache.default()
        if wanted:
            self.backbone.check()
        vectors = cache.get_many(wanted) if cache is not None else {}
        todo = [k for k in wanted if k not in vectors]
        if todo:
            first = {k: keys.index(k) for k in todo}
            vectors.update(self._encode(todo, [items[first[k]] for k in todo], cache, progress))
        return [
            item if key is None else torch.from_numpy(np.array(vectors[key], dtype=np.float32))
            for item, key in zip(items, keys, strict=True)
        ]

    def _encode(
        self, keys: list[str], items: list[Any], cache: EmbeddingCache | None, progress: bool
    ) -> dict[str, np.ndarray]:
        """Encode `items` in batches, storing each batch in the cache as soon as it is done (an
        interrupted run keeps what it encoded)."""
        starts = range(0, len(items), self.batch_size)
        if progress and len(items) >= PROGRESS_MIN:
            from rich.progress import track

            label = f"Encoding {len(items)} {self.name} values with {self.identity.name}"
            starts = track(starts, description=label, transient=True)  # type: ignore[assignment]
        out: dict[str, np.ndarray] = {}
        for start in starts:
            chunk = items[start : start + self.batch_size]
            encoded = np.asarray(self.backbone.encode(chunk), dtype=np.float32)  # (B, dim)
            if encoded.shape != (len(chunk), self.identity.dim):
                raise RuntimeError(
                    f"field '{self.name}': {self.identity.name} returned {encoded.shape}, "
                    f"expected ({len(chunk)}, {self.identity.dim})"
                )
            ENCODED[self.identity.name] += len(chunk)
            batch = dict(zip(keys[start : start + self.batch_size], encoded, strict=True))
            if cache is not None:
                cache.put_many(self.identity.name, batch)
            out.update(batch)
        return out

    def collate(self, items: Sequence[Tensor | None]) -> tuple[Tensor, Tensor | None]:
        return zeros_like_batch(items, (self.identity.dim,), torch.float32), None  # (B, dim)

    def summary_features(self, values: Tensor, mask: Tensor | None) -> Tensor:
        """For the boosting baseline: the pretrained vector itself."""
        return values.float()  # (B, dim)

    def build_encoder(self, dim: int) -> EmbeddingEncoder:
        return EmbeddingEncoder(input_dim=self.identity.dim, output_dim=dim)
