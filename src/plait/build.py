"""The ONLY place where config turns into objects. Components take plain typed arguments;
this module maps YAML keys onto them and turns their complaints into key-path errors."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from torch import nn

from plait.config import Config, FieldSpec
from plait.errors import ConfigError, PlaitError
from plait.fusion import FUSIONS
from plait.modalities import MODALITIES
from plait.modalities.base import Modality
from plait.models.ensemble import ensemble_model
from plait.models.fusion_model import FusionModel
from plait.models.heads import MLPHead
from plait.models.imputer import EmbeddingImputer
from plait.models.space import SharedSpace
from plait.pretrained.registry import is_pretrained, pretrained_hint
from plait.registry import suggest

_FUSION_GIVEN = ("field_to_dim", "output_dim")  # build_model passes these, not the config


def check_config(cfg: Config, *, paths: bool = True) -> None:
    """Everything about `cfg` that can be checked without reading data, so a typo fails in
    milliseconds instead of after the table is loaded: the fusion's name and option names, each
    field's options (its modality is constructed: cheap, no data), and — with `paths` and no
    streams section — that data.path and data.root exist. `paths=False` when the table comes
    in memory. Raises ConfigError naming the key."""
    _check_keys(
        _fusion_class(cfg.model.fusion), cfg.model.fusion_options, "model.fusion_options", _FUSION_GIVEN
    )
    for spec in cfg.fields:
        build_modality(spec, base_dir=cfg.base_dir)
    if paths and cfg.streams is None:  # with streams, data.path is what `plait align` will write
        _check_data_paths(cfg)


def _check_data_paths(cfg: Config) -> None:
    table = cfg.table_path()  # ConfigError when data.path is not set
    if not table.is_file():
        what = "is a folder" if table.is_dir() else "does not exist"
        raise ConfigError(
            f"data.path: the table {table} {what}; point data.path at a CSV, Parquet or JSONL file "
            f"(relative paths start at the config's folder, {cfg.base_dir})"
        )
    if cfg.data.root is not None and not cfg.media_root().is_dir():
        raise ConfigError(
            f"data.root: the media folder {cfg.media_root()} does not exist; point data.root at the "
            "folder the table's file paths start from, or remove it to use the table's folder"
        )


def build_modality(spec: FieldSpec, base_dir: Path | None = None) -> Modality:
    """The field's plug-in; a text, image or audio field whose `encoder` names a pretrained
    encoder (plait.pretrained) is read through it instead of the kind's from-scratch encoder
    (a relative `{pretrained: PATH}` starts at `base_dir`, the config's folder)."""
    cls = MODALITIES.get(spec.kind)
    options = dict(spec.options)
    encoder = options.get("encoder")
    if is_pretrained(encoder):
        from plait.pretrained.kinds import pretrained_class

        cls = pretrained_class(spec.name, spec.kind, options)
        folder = encoder.get("pretrained") if isinstance(encoder, Mapping) else None
        if isinstance(folder, str) and base_dir is not None and not Path(folder).expanduser().is_absolute():
            options["encoder"] = {**encoder, "pretrained": str(base_dir / folder)}  # type: ignore[dict-item]
    try:
        obj: Modality = _construct(cls, {"name": spec.name}, options, f"fields.{spec.name}")
    except ConfigError as exc:
        raise ConfigError(f"{exc}{pretrained_hint(spec.kind, encoder)}") from None
    return obj


def build_modalities(cfg: Config) -> dict[str, Modality]:
    return {spec.name: build_modality(spec, base_dir=cfg.base_dir) for spec in cfg.fields}


def build_model(cfg: Config, modalities: Mapping[str, Modality], n_outputs: int) -> FusionModel:
    """Encoders (one per field) → fusion → head. Modalities must be fitted (encoders read their state).
    With `train.ensemble: N` > 1, N such models as one (plait.models.ensemble); a classification
    has one output per class (two or more), a regression one."""
    if cfg.train.ensemble > 1:
        members = [build_member(cfg, modalities, n_outputs) for _ in range(cfg.train.ensemble)]
        return ensemble_model(members, classification=n_outputs > 1)
    return build_member(cfg, modalities, n_outputs)


def build_member(cfg: Config, modalities: Mapping[str, Modality], n_outputs: int) -> FusionModel:
    """One model: encoders (one per field) → fusion → head, whatever `train.ensemble` says."""
    built = {name: m.build_encoder(cfg.model.dim) for name, m in modalities.items()}
    field_to_dim = {name: int(enc.output_dim) for name, enc in built.items()}
    encoders = {name: cast(nn.Module, enc) for name, enc in built.items()}
    fusion_cls = _fusion_class(cfg.model.fusion)
    decision_level = bool(getattr(fusion_cls, "decision_level", False))
    given = {"field_to_dim": field_to_dim, "output_dim": n_outputs if decision_level else cfg.model.dim}
    fusion = _construct(fusion_cls, given, cfg.model.fusion_options, "model.fusion_options")
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
    space = build_space(cfg, field_to_dim)
    imputer = None
    if space is not None and cfg.shared_space is not None and cfg.shared_space.impute:
        imputer = EmbeddingImputer(space.fields, field_to_dim, space.dim)
    return FusionModel(encoders=encoders, fusion=fusion, head=head, space=space, imputer=imputer)


def build_space(cfg: Config, field_to_dim: Mapping[str, int]) -> SharedSpace | None:
    """The shared space's projections when the config asks for one (`space:` or a contrastive stage)."""
    spec = cfg.shared_space
    if spec is None:
        return None
    return SharedSpace(
        field_to_dim=field_to_dim,
        dim=spec.dim,
        pairs=spec.pairs_for(tuple(field_to_dim)),
        temperature=spec.temperature,
        learn_temperature=spec.learn_temperature,
        hidden=spec.hidden,
    )


def _fusion_class(name: str) -> type:
    try:
        return FUSIONS.get(name)
    except PlaitError as exc:
        raise ConfigError(f"model.fusion: {exc}") from None


def _check_keys(cls: type, kwargs: Mapping[str, Any], path: str, skip: tuple[str, ...]) -> None:
    """Every key of `kwargs` names a parameter of `cls` (any key, when it takes **kwargs)."""
    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = [p for p in params if p not in skip and p != "self"]
    for key in kwargs:
        if key in skip:
            raise ConfigError(f"{path}.{key}: plait sets {key} of {cls.__name__} itself; remove it")
        if key not in allowed:
            hint = suggest(str(key), allowed)
            raise ConfigError(
                f"{path}.{key}: unknown option for {cls.__name__};{hint} "
                f"Options: {', '.join(allowed) or 'none'}"
            )


def _construct(cls: type, given: Mapping[str, Any], options: Mapping[str, Any], path: str) -> Any:
    """`cls(**given, **options)`: `given` from the builder, `options` from the config at `path`;
    unknown option keys and rejected values become ConfigErrors at `path`."""
    _check_keys(cls, options, path, skip=tuple(given))
    try:
        return cls(**given, **options)
    except (PlaitError, TypeError, ValueError) as exc:
        message = str(exc)  # a component's own message may already start with the key path
        named = message.startswith((f"{path}.", f"{path}:"))
        raise ConfigError(message if named else f"{path}: {message}") from None
