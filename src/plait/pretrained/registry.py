"""The pretrained encoders plait ships, by name, and how a field's `encoder` option picks one.

fields:
  note:  {kind: text, encoder: minilm}
  photo: {kind: image, encoder: efficientnet-lite0}
  voice: {kind: audio, encoder: whisper-tiny.en, max_seconds: 2}
  scan:  {kind: image, encoder: {pretrained: /models/my-vit}}   # any local Hugging Face folder
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from plait.errors import ConfigError
from plait.pretrained.backbone import Backbone
from plait.registry import Registry, suggest


@dataclass(frozen=True)
class BackboneSpec:
    kind: str  # the field kind it encodes
    description: str
    build: Callable[[float, int], Backbone]  # (max_seconds, max_tokens) → backbone


def _minilm(max_seconds: float, max_tokens: int) -> Backbone:
    from plait.pretrained.huggingface import minilm

    return minilm(max_seconds, max_tokens)


def _efficientnet(max_seconds: float, max_tokens: int) -> Backbone:
    from plait.pretrained.efficientnet import efficientnet_lite0

    return efficientnet_lite0(max_seconds, max_tokens)


def _whisper(max_seconds: float, max_tokens: int) -> Backbone:
    from plait.pretrained.whisper import whisper_tiny_en

    return whisper_tiny_en(max_seconds, max_tokens)


BACKBONES: Registry[BackboneSpec] = Registry("pretrained encoder")
BACKBONES.register("minilm", BackboneSpec("text", "all-MiniLM-L6-v2 sentence vectors, 384-d", _minilm))
BACKBONES.register(
    "efficientnet-lite0", BackboneSpec("image", "EfficientNet-Lite0 (ImageNet), 1280-d", _efficientnet)
)
BACKBONES.register("whisper-tiny.en", BackboneSpec("audio", "Whisper tiny.en encoder, 384-d", _whisper))


def names_for(kind: str) -> list[str]:
    return [n for n in BACKBONES if BACKBONES.get(n).kind == kind]


def pretrained_hint(kind: str, encoder: object) -> str:
    """For a rejected `encoder` string that is not a pretrained name: the pretrained encoders for
    `kind` too, with a close match ('' when there are none or the option is not a string)."""
    names = names_for(kind)
    if not isinstance(encoder, str) or encoder in BACKBONES or not names:
        return ""
    close = suggest(encoder, names) or " none close"
    return f" (pretrained for {kind}: {', '.join(names)}, {{pretrained: PATH}};{close})"


def is_pretrained(encoder: object) -> bool:
    """Whether a field's `encoder` option asks for a pretrained encoder (a registered name or a mapping)."""
    return isinstance(encoder, Mapping) or (isinstance(encoder, str) and encoder in BACKBONES)


def resolve(
    field: str,
    kind: str,
    encoder: object,
    *,
    local: Callable[..., Backbone],
    max_seconds: float,
    max_tokens: int,
) -> Backbone:
    """The backbone `encoder` names for field `field` of `kind` (`local(folder, …)` reads a local
    Hugging Face folder for this kind); ConfigError naming the option otherwise."""
    choices = ", ".join([*names_for(kind), "{pretrained: PATH}"])
    if isinstance(encoder, Mapping):
        unknown = sorted(set(encoder) - {"pretrained"})
        path = encoder.get("pretrained")
        if unknown or not isinstance(path, str) or not path:
            raise ConfigError(
                f"fields.{field}.encoder: expected {{pretrained: PATH}} (a Hugging Face model folder), "
                f"got {dict(encoder)!r}"
            )
        return local(Path(path).expanduser(), max_tokens=max_tokens, max_seconds=max_seconds)
    if not isinstance(encoder, str) or encoder not in BACKBONES:
        hint = suggest(encoder, BACKBONES.names()) if isinstance(encoder, str) else ""
        raise ConfigError(
            f"fields.{field}.encoder: unknown pretrained encoder {encoder!r};{hint} for {kind}: {choices}"
        )
    spec = BACKBONES.get(encoder)
    if spec.kind != kind:
        raise ConfigError(
            f"fields.{field}.encoder: {encoder} encodes {spec.kind} fields, and '{field}' is a field of "
            f"kind {kind}; "
            f"pretrained encoders for {kind}: {choices}"
        )
    return spec.build(max_seconds, max_tokens)
