"""A text field whose pretrained transformer trains its last `finetune` layers with the task.

`{kind: text, encoder: minilm, finetune: 2}` (or a local Hugging Face text folder): the field loads
token ids with the folder's tokenizer, and its encoder is the whole pretrained model with every
parameter frozen except the last `finetune` layers and what follows them (a final norm), pooled
as the frozen field pools (mean over real tokens, L2-normalised for sentence-transformers models)
and passed through the same small head. The pretrained layers learn at `lr_scale` (0.03) times the
run's learning rate, as fine-tuning needs (the head learns at the full rate); the frozen layers stay
frozen whatever the training stage. Nothing is cached: the tuned layers see every epoch's text. The
tuned weights are saved in the bundle's model.safetensors (the whole transformer: ~90 MB for MiniLM).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from plait.errors import ConfigError, DataError
from plait.modalities.base import JSONState, masked_mean, zero_absent
from plait.modalities.options import positive_int
from plait.modalities.summary import token_stats
from plait.pretrained.huggingface import LocalText
from plait.pretrained.kinds import PretrainedText
from plait.types import Absent, EncoderOutput

LR_SCALE = 0.03  # the pretrained layers' learning rate, as a share of train.lr (3e-3 → 9e-5)


def layer_list(model: nn.Module) -> nn.ModuleList:
    """The model's stack of transformer layers: its longest ModuleList."""
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList)]
    if not lists:
        raise ConfigError(f"{type(model).__name__} has no list of layers to fine-tune; set finetune: 0")
    return max(lists, key=len)


def freeze_all_but_last(model: nn.Module, n: int) -> None:
    """Freeze every parameter but those of the last `n` layers and the ones registered after them
    (dropout still acts in the frozen layers while training, as in the usual fine-tuning)."""
    layers = layer_list(model)
    if n > len(layers):
        raise ConfigError(f"finetune: {n} layers asked, the model has {len(layers)}; lower it")
    first_tuned = next(layers[len(layers) - n].parameters())
    start = next(i for i, p in enumerate(model.parameters()) if p is first_tuned)
    for i, p in enumerate(model.parameters()):
        p.requires_grad_(i >= start)
        if i >= start:
            p.plait_lr_scale = LR_SCALE  # type: ignore[attr-defined]  # read by the optimiser
        else:
            p.plait_frozen = True  # type: ignore[attr-defined]  # no training stage unfreezes it


class TunedTextEncoder(nn.Module):
    """Token ids [B, L] → the pretrained model (last layers trainable) → masked mean [B, D_model]
    → LayerNorm → Linear → GELU → Linear → pooled [B, dim]."""

    def __init__(self, model: nn.Module, finetune: int, normalise: bool, width: int, output_dim: int) -> None:
        super().__init__()
        self.output_dim = output_dim
        self.model = model.train()  # from_pretrained returns eval mode; plait's stages set the mode
        self.normalise = normalise
        freeze_all_but_last(model, finetune)
        self.head = nn.Sequential(
            nn.LayerNorm(width), nn.Linear(width, output_dim), nn.GELU(), nn.Linear(output_dim, output_dim)
        )

    def forward(self, x: Tensor, present: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        real = (x != 0) if mask is None else mask.bool()
        real = real & present[:, None]  # (B, L)
        has_token = real.any(dim=1)  # (B,)
        attend = real.clone()
        attend[:, 0] |= ~has_token  # a row without tokens attends to its first position, zeroed below
        hidden = self.model(input_ids=x, attention_mask=attend.long()).last_hidden_state  # (B, L, D_model)
        pooled = masked_mean(hidden, real)  # (B, D_model)
        if self.normalise:
            pooled = nn.functional.normalize(pooled, dim=-1)
        out = zero_absent(self.head(pooled), has_token)  # (B, dim)
        return EncoderOutput(tokens=out.unsqueeze(1), pooled=out, token_mask=None)


class TunedText(PretrainedText):
    """Text through a pretrained transformer whose last `finetune` layers train with the task."""

    perturbations: ClassVar[tuple[str, ...]] = ("typo", "word_drop")
    noise_family: ClassVar[str] = "typo"

    def __init__(
        self,
        name: str,
        *,
        encoder: object,
        column: str | None = None,
        max_tokens: int = 256,
        batch_size: int = 32,
        finetune: int = 1,
    ) -> None:
        super().__init__(name, encoder=encoder, column=column, max_tokens=max_tokens, batch_size=batch_size)
        self.finetune = positive_int(name, "finetune", finetune, maximum=256)
        if not isinstance(self.backbone, LocalText):
            raise ConfigError(
                f"fields.{name}.finetune: {self.identity.name} cannot be fine-tuned here; finetune works "
                "with Hugging Face text models (minilm or {pretrained: PATH})"
            )
        self.local: LocalText = self.backbone
        self.folder: Path = self.backbone.folder

    def _tokenizer(self) -> Any:
        """The folder's tokenizer alone (the frozen model is not loaded for it)."""
        from plait.pretrained.backbone import shared
        from plait.pretrained.huggingface import offline_transformers

        def load() -> Any:
            return offline_transformers().AutoTokenizer.from_pretrained(
                str(self.folder), local_files_only=True
            )

        return shared(("tokenizer", str(self.folder)), load)

    def options(self) -> JSONState:
        return {**super().options(), "finetune": self.finetune}

    def perturbation_context(self) -> dict[str, Any]:
        """The tokenizer's vocabulary size (typo draws replacement ids from it)."""
        return {"vocab_size": int(self._tokenizer().vocab_size)}

    def load_many(
        self, rows: Sequence[Mapping[str, Any]], root: Path, *, row_offset: int = 0, progress: bool = False
    ) -> list[Tensor | Absent]:
        """Token ids LongTensor[L] per row (the folder's tokenizer, no special-token surprises: what
        the model saw in pretraining), or Absent."""
        texts: list[Any] = []
        for i, row in enumerate(rows):
            try:
                texts.append(self.decode(row, root))
            except DataError as exc:
                raise DataError(f"row {i + row_offset}: {exc}") from None
        present = [t for t in texts if isinstance(t, str)]
        encoded = iter(
            self._tokenizer()(present, truncation=True, max_length=self.max_tokens)["input_ids"]
            if present
            else []
        )
        return [t if isinstance(t, Absent) else torch.tensor(next(encoded), dtype=torch.long) for t in texts]

    @property
    def max_tokens(self) -> int:
        return self.text.max_tokens

    def collate(self, items: Sequence[Tensor | None]) -> tuple[Tensor, Tensor | None]:
        return self.text.collate(items)  # ids padded with 0, and the token mask

    def summary_features(self, values: Tensor, mask: Tensor | None) -> Tensor:
        """For the boosting baseline: a hashed bag of tokens, the length and the share of distinct tokens."""
        return token_stats(values, mask)  # (B, L) -> (B, 66)

    def build_encoder(self, dim: int) -> TunedTextEncoder:
        from plait.pretrained.huggingface import offline_transformers

        self.backbone.check()
        model = offline_transformers().AutoModel.from_pretrained(str(self.folder), local_files_only=True)
        if getattr(model, "pooler", None) is not None:  # BERT's pooler: unused by the mean (and DDP would
            model.pooler = None  # stop on a trainable parameter that gets no gradient)
        return TunedTextEncoder(model, self.finetune, self.local.normalise, self.identity.dim, dim)
