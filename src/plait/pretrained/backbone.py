"""What a frozen pretrained encoder is to plait: an identity and `encode(items) → (N, dim)`.

The identity (name, package version, weights sha256, output width, preprocessing) keys the
embedding cache and is written into a bundle, so a bundle names exactly the weights it needs and
a cached vector is never reused for another model or another preprocessing.

Items arrive decoded by the field: a text is a str, an image float32 [3, H, W] in [0, 1], a clip
float32 [N] mono at 16 kHz. A backbone turns them into float32 [N, dim] with no gradient. Each
item is encoded on its own terms (a clip padded to the same length whatever its batch, a text
masked to its own tokens), so an item's vector depends on its batch only through float rounding
(about 1e-6 here); the cache keeps the first encoding, so later runs read exactly the same vectors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from plait.errors import BundleError


@dataclass(frozen=True)
class BackboneIdentity:
    name: str  # a registered name (minilm) or "local:PATH"
    kind: str  # text, image or audio
    version: str  # the version of the package that ships the weights ("local" for a folder)
    sha256: str  # of the weight file(s)
    dim: int
    preprocessing: str  # what the field does before the backbone, in words (part of the cache key)
    code: str = (
        ""  # versions of the code that computes the vectors (cache key only: a bundle loads across them)
    )

    def cache_key(self) -> str:
        """The part of every cache key that names this encoder, its preprocessing and the code that
        runs it (an upgraded feature extractor gets fresh vectors)."""
        text = json.dumps([self.name, self.sha256, self.dim, self.preprocessing, self.code])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def label(self) -> str:
        return f"{self.name} {self.version} (sha256 {self.sha256[:12]}…)"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, field: str) -> BackboneIdentity:
        try:
            return cls(
                name=str(data["name"]),
                kind=str(data["kind"]),
                version=str(data["version"]),
                sha256=str(data["sha256"]),
                dim=int(data["dim"]),
                preprocessing=str(data["preprocessing"]),
                code=str(data.get("code", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(
                f"field '{field}': the saved pretrained encoder record is incomplete ({exc}); "
                "re-save the bundle"
            ) from None


class Backbone(Protocol):
    """A loaded frozen encoder."""

    @property
    def identity(self) -> BackboneIdentity: ...

    def check(self) -> None:
        """Raise WeightsMismatchError when the weight file is not the one the identity names."""
        ...

    def encode(self, items: Sequence[Any]) -> np.ndarray:
        """float32 [len(items), identity.dim]."""
        ...


def item_digest(item: Any) -> bytes:
    """The bytes that identify one decoded item (text, or an array's dtype, shape and values)."""
    if isinstance(item, str):
        return b"t" + item.encode("utf-8")
    array = np.ascontiguousarray(item)
    return f"a{array.dtype.str}{array.shape}".encode() + array.tobytes()


def content_key(identity_key: str, item: Any) -> str:
    digest = hashlib.sha256(identity_key.encode("ascii"))
    digest.update(item_digest(item))
    return digest.hexdigest()


_LOADED: dict[tuple[str, ...], Any] = {}


def shared(key: tuple[str, ...], load: Callable[[], Any]) -> Any:
    """One loaded model per process for `key`: fields, folds and fusions share it."""
    if key not in _LOADED:
        _LOADED[key] = load()
    return _LOADED[key]


POOLING_VERSION = "1"  # bump when plait's own pooling of a backbone's states changes


def code_versions(*distributions: str) -> str:
    """'name version' of each installed distribution, and plait's pooling version."""
    import importlib.metadata

    parts = []
    for name in distributions:
        try:
            parts.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{name} missing")
    return ", ".join([*parts, f"pooling {POOLING_VERSION}"])


def torch_threads() -> int:
    import torch

    return max(1, torch.get_num_threads())
