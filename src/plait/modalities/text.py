"""Free text: a BPE tokenizer fitted on the training texts and a small encoder.

`TextModality("note", max_tokens=64)` reads column `note`, learns a subword vocabulary with the
`tokenizers` library on the training rows, turns one text into token ids LongTensor[L] (L <= max_tokens)
and pads a batch with [PAD] = 0. The default encoder is a one-layer Transformer; `encoder="cnn"`
gives a cheaper convolutional one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from torch import Tensor, nn

from plait.errors import BundleError, DataError
from plait.modalities.base import (
    JSONState,
    NotFittedError,
    is_empty,
    masked_mean,
    require_columns,
    zero_absent,
)
from plait.modalities.contract import InputLimits, InputSpec, Widget
from plait.modalities.options import choice, flag, optional_column, positive_int
from plait.modalities.summary import token_stats
from plait.types import Absent, EncoderOutput

PAD_TOKEN = "[PAD]"  # id 0: collate pads with it and the embedding ignores it
UNK_TOKEN = "[UNK]"  # id 1
ENCODERS = ("transformer", "cnn")
STATE_KEYS = ("column", "vocab_size", "max_tokens", "lowercase", "tokenizer")


def _as_text(value: object) -> str | Absent:
    """The text of one cell, or Absent when there is none. Non-strings are shown as str(value)."""
    if is_empty(value):
        return Absent("empty")
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Absent("undecodable", f"bytes are not UTF-8: {exc}")
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else Absent("empty")


def train_tokenizer(texts: Sequence[str], vocab_size: int, lowercase: bool) -> Tokenizer:
    """A BPE tokenizer with [PAD] = 0 and [UNK] = 1, split on whitespace and punctuation.

    BPE, not WordPiece: the `tokenizers` WordPiece (and Unigram) trainers break ties in hash order,
    so two processes fitting the same texts learned different vocabularies and the same config,
    data and seed gave different metrics. The BPE trainer's result is the same in every process.
    """
    tokenizer = Tokenizer(models.BPE(unk_token=UNK_TOKEN))
    steps: list[normalizers.Normalizer] = [normalizers.NFKC()]
    if lowercase:
        steps.append(normalizers.Lowercase())
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[PAD_TOKEN, UNK_TOKEN], show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


class TextModality:
    """One text column → token ids LongTensor[L]; batches are padded with 0 and carry a step mask."""

    kind: ClassVar[str] = "text"
    perturbations: ClassVar[tuple[str, ...]] = ("typo", "word_drop")
    noise_family: ClassVar[str] = "typo"

    def __init__(
        self,
        name: str,
        *,
        column: str | None = None,
        vocab_size: int = 2000,
        max_tokens: int = 64,
        lowercase: bool = True,
        encoder: str = "transformer",
        layers: int = 1,
    ) -> None:
        optional_column(name, "column", column)
        choice(name, "encoder", encoder, ENCODERS)
        flag(name, "lowercase", lowercase)
        self.name = name
        self.column = column if column is not None else name
        self.vocab_size = positive_int(name, "vocab_size", vocab_size, minimum=10, maximum=1_000_000)
        self.max_tokens = positive_int(name, "max_tokens", max_tokens, maximum=8192)
        self.lowercase = lowercase
        self.encoder = encoder
        self.layers = positive_int(name, "layers", layers, maximum=48)
        self.tokenizer_: Tokenizer | None = None

    def perturbation_context(self) -> dict[str, Any]:
        """The vocabulary size (typo draws replacement tokens from it)."""
        if self.tokenizer_ is None:
            raise NotFittedError.for_field(self.name, self.kind)
        return {"vocab_size": self.tokenizer_.get_vocab_size()}

    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def input_spec(self, limits: InputLimits) -> InputSpec:
        """A string of at most the server's `max_text_chars`."""
        return InputSpec(
            roles={self.column: "text"},
            accepts="a string",
            widget=Widget("text", hint="text"),
            limits={"max_chars": limits.max_text_chars},
        )

    def value_columns(self) -> tuple[str, ...]:
        """The text column: a text that names the label would leak it (checked before training)."""
        return (self.column,)

    def fit(self, table: pl.DataFrame, root: Path) -> None:
        require_columns(table, self.name, self.columns())
        texts = [t for t in map(_as_text, table[self.column].to_list()) if isinstance(t, str)]
        if not texts:
            raise DataError(
                f"field '{self.name}': column '{self.column}' has no non-empty text in the "
                f"{table.height} training rows; a tokenizer cannot be learned from nothing — "
                "fill the column or remove the field"
            )
        self.tokenizer_ = train_tokenizer(texts, self.vocab_size, self.lowercase)

    def _fitted(self) -> Tokenizer:
        if self.tokenizer_ is None:
            raise NotFittedError.for_field(self.name, self.kind)
        return self.tokenizer_

    def get_state(self) -> JSONState:
        return {
            "column": self.column,
            "vocab_size": self.vocab_size,
            "max_tokens": self.max_tokens,
            "lowercase": self.lowercase,
            "tokenizer": self._fitted().to_str(),
        }

    def set_state(self, state: JSONState) -> None:
        missing = [key for key in STATE_KEYS if key not in state]
        if missing:
            raise BundleError(
                f"field '{self.name}': text state lacks {', '.join(missing)}; "
                "the preprocessing state is from another version or was edited — re-save the bundle"
            )
        try:
            tokenizer = Tokenizer.from_str(state["tokenizer"])
        except Exception as exc:  # the tokenizers library raises its own Exception types
            raise BundleError(f"field '{self.name}': the saved tokenizer cannot be read: {exc}") from None
        # The saved options describe how the tokenizer was fitted, so they win over the constructor's.
        self.column = str(state["column"])
        self.vocab_size = int(state["vocab_size"])
        self.max_tokens = int(state["max_tokens"])
        self.lowercase = bool(state["lowercase"])
        self.tokenizer_ = tokenizer

    def load(self, row: Mapping[str, Any], root: Path) -> Tensor | Absent:
        tokenizer = self._fitted()
        text = _as_text(row.get(self.column))
        if isinstance(text, Absent):
            return text
        ids = tokenizer.encode(text, add_special_tokens=False).ids[: self.max_tokens]
        if len(ids) == 0:
            return Absent("empty", "the text has no tokens after normalisation")
        return torch.tensor(ids, dtype=torch.long)  # (L,)

    def collate(self, items: Sequence[Tensor | None]) -> tuple[Tensor, Tensor | None]:
        # L >= 1 so an all-absent batch still has a well-formed (B, 1) tensor.
        length = max([1, *(int(item.shape[0]) for item in items if item is not None)])
        values = torch.zeros((len(items), length), dtype=torch.long)  # PAD = 0
        mask = torch.zeros((len(items), length), dtype=torch.bool)
        for i, item in enumerate(items):
            if item is not None:
                values[i, : item.shape[0]] = item
                mask[i, : item.shape[0]] = True
        return values, mask

    def summary_features(self, values: Tensor, mask: Tensor | None) -> Tensor:
        """For the boosting baseline: a hashed bag of tokens, the length and the share of distinct tokens."""
        return token_stats(values, mask)  # (B, L) -> (B, 66)

    def build_encoder(self, dim: int) -> TextTransformerEncoder | TextCNNEncoder:
        vocab = self._fitted().get_vocab_size()
        if self.encoder == "cnn":
            return TextCNNEncoder(vocab_size=vocab, output_dim=dim, layers=self.layers)
        return TextTransformerEncoder(
            vocab_size=vocab, max_tokens=self.max_tokens, output_dim=dim, layers=self.layers
        )


def _real_tokens(x: Tensor, present: Tensor, mask: Tensor | None) -> Tensor:
    """BoolTensor[B, L]: real tokens of present samples (an absent sample has none)."""
    real = (x != 0) if mask is None else mask.to(torch.bool)
    return real & present.to(torch.bool).unsqueeze(1)


def _heads_for(dim: int, wanted: int = 4) -> int:
    """The largest head count <= wanted that divides dim (attention needs dim % heads == 0)."""
    return next(h for h in range(wanted, 0, -1) if dim % h == 0)


class TextTransformerEncoder(nn.Module):
    """Token + position embeddings, a small pre-norm Transformer, masked-mean pooling."""

    def __init__(
        self, vocab_size: int, max_tokens: int, output_dim: int, layers: int = 1, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.output_dim = output_dim
        self.max_tokens = max_tokens
        self.embed = nn.Embedding(vocab_size, output_dim, padding_idx=0)
        self.position = nn.Parameter(torch.randn(max_tokens, output_dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d_model=output_dim,
            nhead=_heads_for(output_dim),
            dim_feedforward=2 * output_dim,
            dropout=dropout,
            batch_first=True,
            norm_first=True,
        )
        # No nested-tensor fast path: it may return fewer than L positions in eval mode.
        self.transformer = nn.TransformerEncoder(
            layer, num_layers=layers, norm=nn.LayerNorm(output_dim), enable_nested_tensor=False
        )

    def forward(self, x: Tensor, present: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        length = x.shape[1]
        if length > self.max_tokens:
            raise ValueError(
                f"text batch has {length} tokens per row, more than max_tokens={self.max_tokens}; "
                "collate items produced by TextModality.load"
            )
        real = _real_tokens(x, present, mask)  # (B, L)
        has_token = real.any(dim=1)  # (B,)
        # A row with every key masked gives NaN attention: let absent rows attend to position 0
        # and zero their outputs afterwards.
        attend = real.clone()
        attend[:, 0] |= ~has_token
        h = self.embed(x) + self.position[:length]  # (B, L) -> (B, L, D)
        h = self.transformer(h, src_key_padding_mask=~attend)  # (B, L, D)
        tokens = h * real.unsqueeze(-1).to(h.dtype)
        pooled = zero_absent(masked_mean(tokens, real), has_token)  # (B, D)
        return EncoderOutput(tokens=tokens, pooled=pooled, token_mask=real)


class TextCNNEncoder(nn.Module):
    """Token embeddings, 1-D convolutions (kernel 3, padding re-zeroed between layers), masked mean."""

    def __init__(self, vocab_size: int, output_dim: int, layers: int = 1, dropout: float = 0.1) -> None:
        super().__init__()
        self.output_dim = output_dim
        self.embed = nn.Embedding(vocab_size, output_dim, padding_idx=0)
        self.convs = nn.ModuleList(
            nn.Conv1d(output_dim, output_dim, kernel_size=3, padding=1) for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(output_dim) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, present: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        real = _real_tokens(x, present, mask)  # (B, L)
        h = self.embed(x)  # (B, L) -> (B, L, D)
        keep = real.unsqueeze(-1).to(h.dtype)  # (B, L, 1)
        h = h * keep
        for conv, norm in zip(self.convs, self.norms, strict=True):
            step = conv(h.transpose(1, 2)).transpose(1, 2)  # (B, L, D) -> (B, D, L) -> (B, L, D)
            h = (h + self.dropout(nn.functional.gelu(norm(step)))) * keep
        pooled = zero_absent(masked_mean(h, real), real.any(dim=1))  # (B, D)
        return EncoderOutput(tokens=h, pooled=pooled, token_mask=real)
