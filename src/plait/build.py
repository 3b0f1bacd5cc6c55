"""The ONLY place where config turns into objects. Components take plain typed arguments;
this module maps YAML keys onto them and turns their complaints into key-path errors."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, cast

from torch import nn

from plait.config import Config, FieldSpec
from plait.errors import ConfigError, PlaitError
from plait.fusion import FUSIONS
from plait.modalities import MODALITIES
from plait.modalities.base import Modality
from plait.models.fusion_model import FusionModel
from plait.models.heads import MLPHead
from plait.registry import suggest


def build_modality(spec: FieldSpec) -> Modality:
    cls = MODALITIES.get(spec.kind)
    obj: Modality = _construct(
        cls, {"name": spec.name, **spec.options}, f"fields.{spec.name}", skip=("name",)
    )
    return obj


def build_modalities(cfg: Config) -> dict[str, Modality]:
    return {spec.name: build_modality(spec) for spec in cfg.fields}


def build_model(cfg: Config, modalities: Mapping[str, Modality], n_outputs: int) -> FusionModel:
    """Encoders (one per field) → fusion → head. Modalities must be fitted (encoders read their state)."""
    built = {name: m.build_encoder(cfg.model.dim) for name, m in modalities.items()}
    field_to_dim = {name: int(enc.output_dim) for name, enc in built.items()}
    encoders = {name: cast(nn.Module, enc) for name, enc in built.items()}
    try:
        fusion_cls = FUSIONS.get(cfg.model.fusion)
    except PlaitError as exc:
        raise ConfigError(f"model.fusion: {exc}") from None
    decision_level = bool(getattr(fusion_cls, "decision_level", False))
    fusion_args = {
        "field_to_dim": field_to_dim,
        "output_dim": n_outputs if decision_level else cfg.model.dim,
        **cfg.model.fusion_options,
    }
    fusion = _construct(fusion_cls, fusion_args, "model.fusion_options", skip=("field_to_dim", "output_dim"))
    head: nn.Module = (
        nn.Identity()
        if decision_level
        else MLPHead(
            input_dim=fusion.output_dim,
            hidden=cfg.model.hidden,
            output_dim=n_outputs,
            dropout=cfg.model.dropout,
        )
    )
    return FusionModel(encoders=encoders, fusion=fusion, head=head)


def _construct(cls: type, kwargs: Mapping[str, Any], path: str, skip: tuple[str, ...]) -> Any:
    """Call `cls(**kwargs)`, turning unknown keys and rejected values into ConfigErrors at `path`."""
    params = inspect.signature(cls).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    allowed = [p for p in params if p not in skip and p != "self"]
    if not takes_any:
        for key in kwargs:
            if key not in params:
                hint = suggest(str(key), allowed)
                raise ConfigError(
                    f"{path}.{key}: unknown option for {cls.__name__};{hint} "
                    f"Options: {', '.join(allowed) or 'none'}"
                )
    try:
        return cls(**kwargs)
    except PlaitError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
