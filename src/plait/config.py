"""The YAML schema: frozen records validated on load.

Errors name the key path, what was expected and what came:
`fields.photo.kind: unknown kind 'imag'; did you mean 'image'? Available: audio, embedding, …`.
Field options (size, max_tokens, …) are checked by the modality's own constructor in build.py,
so each value is checked where it is used; this module checks the shape of the file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from plait.align.spec import StreamsSpec, parse_streams, streams_to_dict
from plait.config_records import coerce, no_unknown_keys, record
from plait.config_space import SpaceSpec, check_pairs, parse_pairs, parse_space
from plait.config_split import SplitSpec, parse_split
from plait.config_yaml import load_yaml
from plait.errors import ConfigError
from plait.registry import unknown_name_message

TASK_TYPES = ("auto", "classification", "regression")
# train.strategy: DDP through Lightning (ddp_spawn would pickle the model and cannot; FSDP would
# leave each process a shard of the model, and the bundle needs it whole: not supported yet)
STRATEGIES = ("auto", "ddp")
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")  # train.accelerator, as Lightning names them
PRECISIONS = ("32-true", "32", "bf16-mixed", "bf16-true", "16-mixed", "64-true")
STAGE_KINDS = ("unimodal", "contrastive", "frozen", "end_to_end")


@dataclass(frozen=True)
class DataSpec:
    path: str | None = None  # the sample table (CSV, Parquet, JSONL), relative to the config file
    root: str | None = None  # media root for file paths; default: the table's folder
    split: SplitSpec = field(default_factory=SplitSpec)
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    allow_leaks: tuple[str, ...] = ()  # columns the leak check may flag and training keeps anyway
    drop_empty_fields: bool = False  # a field no training row has a value for: error (False) or dropped


@dataclass(frozen=True)
class TaskSpec:
    label: str = ""
    type: str = "auto"  # auto: classification for strings/bools/few integers, else regression


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str
    options: Mapping[str, Any] = field(default_factory=dict)  # the modality's constructor arguments
    required: bool = False  # `plait serve` answers 422 instead of predicting without this field


@dataclass(frozen=True)
class ModelSpec:
    fusion: str = "gated"
    dim: int = 64  # width of every encoder's features
    hidden: int = 128  # width of the head's hidden layer
    dropout: float = 0.1
    fusion_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StageSpec:
    """One step of staged training: `unimodal` trains each encoder on the task alone (through a
    light head per field), `contrastive` trains encoders and the shared space's projections to
    pull paired fields together (no labels used), `frozen` trains fusion and head with the encoders
    fixed, `end_to_end` trains everything."""

    kind: str
    epochs: int
    lr: float | None = None  # None: train.lr
    pairs: tuple[tuple[str, str], ...] | None = None  # contrastive: None = the space's pairs


@dataclass(frozen=True)
class TrainSpec:
    epochs: int = 40
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    modality_dropout: float = 0.2  # per sample and field; at least one field is always kept
    patience: int = 8  # early stopping on the validation loss
    precision: str = "32-true"
    seed: int = 0
    accelerator: str = "cpu"
    devices: int = 1  # processes per node (Lightning's devices); > 1 trains with DDP
    num_nodes: int = 1  # machines; devices × num_nodes processes in all (training/distributed.py)
    strategy: str = "auto"  # auto (DDP when more than one process), ddp or fsdp
    progress: bool = True
    stages: tuple[StageSpec, ...] = ()  # empty: one end_to_end stage of `epochs` at `lr`
    aux_loss: float = 0.0  # weight of each field's own (unimodal) loss added to the fused loss
    ogm_ge: float = 0.0  # OGM-GE modulation strength alpha; 0 = off, ~0.5-1 slows a dominant field
    # weight of the loss on a random proper subset of each row's fields (decided from the same
    # encodings): every "field missing" case trained on every step; 0 = off. On by default: it
    # closed the retrain gap on AV-digits and the demo at no cost in accuracy (bench/RESULTS.md)
    subset_loss: float = 1.0
    subset_distill: float = 0.0  # within the subset loss: weight of matching the full model's output
    ensemble: int = 1  # N > 1: N models trained with seeds seed…seed+N−1, one bundle predicting their mean

    def stage_plan(self) -> tuple[StageSpec, ...]:
        """The stages to run, with every lr filled in."""
        stages = self.stages or (StageSpec(kind="end_to_end", epochs=self.epochs),)
        return tuple(replace(s, lr=self.lr if s.lr is None else s.lr) for s in stages)


@dataclass(frozen=True)
class Config:
    task: TaskSpec
    fields: tuple[FieldSpec, ...]
    data: DataSpec = DataSpec()
    model: ModelSpec = ModelSpec()
    train: TrainSpec = TrainSpec()
    output: str = "bundle"
    streams: StreamsSpec | None = None  # raw timestamped streams that `plait align` turns into data.path
    space: SpaceSpec | None = None  # the shared embedding space (config_space.py); None: none asked for
    base_dir: Path = Path(".")  # folder relative paths are resolved against (not saved)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def labelled(self) -> bool:
        """False for a config without a `task` section: a shared space from contrastive stages only."""
        return bool(self.task.label)

    @property
    def shared_space(self) -> SpaceSpec | None:
        """The shared space to build: the `space` section, or its defaults when only a contrastive
        stage asks for one; None when neither does."""
        if self.space is not None:
            return self.space
        return SpaceSpec() if any(s.kind == "contrastive" for s in self.train.stages) else None

    @property
    def space_weight(self) -> float:
        """The contrastive loss's weight beside the supervised one: `space.weight`, else 0.5 — or 0
        when a contrastive stage learns the space first."""
        space = self.shared_space
        if space is None:
            return 0.0
        if space.weight is not None:
            return space.weight
        return 0.0 if any(s.kind == "contrastive" for s in self.train.stages) else 0.5

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def table_path(self) -> Path:
        if self.data.path is not None:
            return self.resolve(self.data.path)
        if self.streams is not None:  # the sample table `plait align` writes
            return self.resolve(self.streams.output)
        raise ConfigError("data.path: no table given; set data.path to a CSV, Parquet or JSONL file")

    def media_root(self) -> Path:
        if self.data.root is not None:
            return self.resolve(self.data.root)
        if self.streams is not None:  # aligned media paths are relative to the config's folder
            return self.base_dir
        return self.table_path().parent if self.data.path is not None else self.base_dir

    def to_dict(self) -> dict[str, Any]:
        """Plain data, the same shape as the YAML file."""
        data = asdict(self.data)
        data["split"] = {k: v for k, v in asdict(self.data.split).items() if v != getattr(SplitSpec(), k)}
        data["allow_leaks"] = list(self.data.allow_leaks)
        out: dict[str, Any] = {"data": data, "task": asdict(self.task)}
        if self.fields:  # a streams config may leave them to be derived after alignment
            out["fields"] = {
                f.name: {"kind": f.kind, **dict(f.options), **({"required": True} if f.required else {})}
                for f in self.fields
            }
        out["model"] = {**asdict(self.model), "fusion_options": dict(self.model.fusion_options)}
        out["train"] = {**asdict(self.train), "stages": [_stage_dict(s) for s in self.train.stages]}
        out["output"] = self.output
        if self.space is not None:
            out["space"] = self.space.to_dict()
        if self.streams is not None:
            out["streams"] = streams_to_dict(self.streams)
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def with_overrides(self, **sections: Mapping[str, Any]) -> Config:
        """A new config with some keys replaced, e.g. `with_overrides(train={"epochs": 5})`."""
        raw = self.to_dict()
        for section, values in sections.items():
            if section not in raw and section not in _SECTIONS:
                raise ConfigError(unknown_name_message("config section", section, list(_SECTIONS)))
            if section not in raw:
                raw[section] = dict(values)
                continue
            if isinstance(raw[section], dict):
                raw[section] = {**raw[section], **dict(values)}
            else:
                raw[section] = values
        return Config.from_dict(raw, base_dir=self.base_dir)

    def with_fields(self, names: Sequence[str]) -> Config:
        """The same config with only the fields `names`, in this config's order."""
        unknown = [n for n in names if n not in self.field_names]
        if unknown or not names:
            raise ConfigError(
                f"fields {list(names)}: expected a non-empty subset of this config's fields "
                f"({', '.join(self.field_names)}); not in it: {unknown}"
            )
        kept = replace(self, fields=tuple(f for f in self.fields if f.name in names))
        return _space_within(kept) if self.shared_space is not None else kept

    @staticmethod
    def from_dict(raw: Mapping[str, Any], base_dir: Path | str = ".") -> Config:
        return parse_config(raw, Path(base_dir))

    @staticmethod
    def from_yaml(path: Path | str) -> Config:
        return load_config(path)


def load_config(path: Path | str) -> Config:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"config file {path} does not exist; create one with `plait init TABLE --label COLUMN`"
        )
    try:
        raw = load_yaml(path.read_text(), str(path))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{path}: expected a mapping of sections (data, task, fields, …), got {type(raw).__name__}"
        )
    try:
        return parse_config(raw, path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


_SECTIONS = ("data", "task", "fields", "model", "train", "output", "streams", "space")


def parse_config(raw: Mapping[str, Any], base_dir: Path) -> Config:
    no_unknown_keys(raw, _SECTIONS, "")
    if "task" not in raw and not _contrastive_only(raw.get("train")):
        raise ConfigError(
            "task: missing; add `task: {label: COLUMN}` naming the column to predict (without labels, "
            "train a shared space with contrastive stages only: `train: {stages: [{kind: contrastive, "
            "epochs: 20}]}`)"
        )
    streams = parse_streams(raw["streams"]) if "streams" in raw else None
    if "fields" not in raw and streams is None:
        raise ConfigError("fields: missing; list the model's inputs, e.g. `fields: {photo: {kind: image}}`")
    output = raw.get("output", "bundle")
    if not isinstance(output, str):
        raise ConfigError(f"output: expected a folder path (string), got {output!r}")
    cfg = Config(
        data=_data(raw.get("data")),
        task=record(TaskSpec, raw["task"], "task") if "task" in raw else TaskSpec(),
        fields=_fields(raw["fields"]) if "fields" in raw else (),  # streams only: derived after `plait align`
        model=record(ModelSpec, raw.get("model"), "model"),
        train=_train(raw.get("train")),
        output=output,
        streams=streams,
        space=parse_space(raw["space"]) if "space" in raw else None,
        base_dir=base_dir,
    )
    _check_values(cfg)
    return cfg


def _data(raw: Any) -> DataSpec:
    if not isinstance(raw, Mapping):
        spec: DataSpec = record(DataSpec, raw, "data")
        return spec
    rest = {k: v for k, v in raw.items() if k not in ("split", "split_column", "allow_leaks")}
    allow = raw.get("allow_leaks") or []
    if isinstance(allow, str):
        allow = [allow]
    if not isinstance(allow, list) or not all(isinstance(c, str) and c for c in allow):
        raise ConfigError(f"data.allow_leaks: expected a list of column names, got {allow!r}")
    split = parse_split(raw.get("split"))
    if "split_column" in raw and raw["split_column"] is not None:  # the key's name before 0.2
        if split != SplitSpec():
            raise ConfigError(
                "data.split_column: give the split once; data.split_column is the old name of "
                "data.split.column, so move it there"
            )
        split = parse_split({"column": raw["split_column"]}, "data.split_column")
    return replace(record(DataSpec, rest, "data"), split=split, allow_leaks=tuple(allow))


def _train(raw: Any) -> TrainSpec:
    if not isinstance(raw, Mapping) or "stages" not in raw:
        spec: TrainSpec = record(TrainSpec, raw, "train")
        return spec
    rest = {k: v for k, v in raw.items() if k != "stages"}
    return replace(record(TrainSpec, rest, "train"), stages=_stages(raw["stages"]))


def _stages(raw: Any) -> tuple[StageSpec, ...]:
    example = "e.g. `stages: [{kind: unimodal, epochs: 5}, {kind: end_to_end, epochs: 20, lr: 1e-3}]`"
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"train.stages: expected a list of stages, {example}; got {raw!r}")
    stages = []
    for i, item in enumerate(raw):
        path = f"train.stages[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{path}: expected a mapping with kind and epochs, {example}; got {item!r}")
        no_unknown_keys(item, ("kind", "epochs", "lr", "pairs"), path)
        for key in ("kind", "epochs"):
            if key not in item:
                raise ConfigError(f"{path}.{key}: missing; {example}")
        kind = coerce(item["kind"], str, "", f"{path}.kind")
        if kind not in STAGE_KINDS:
            raise ConfigError(f"{path}.kind: {unknown_name_message('stage kind', kind, list(STAGE_KINDS))}")
        epochs = coerce(item["epochs"], int, 0, f"{path}.epochs")
        if epochs < 1:
            raise ConfigError(f"{path}.epochs: expected an integer ≥ 1, got {epochs!r}")
        lr = item.get("lr")
        if lr is not None:
            lr = coerce(lr, float, 0.0, f"{path}.lr")
            if not lr > 0:
                raise ConfigError(f"{path}.lr: expected a positive number, got {lr!r}")
        pairs = None
        if item.get("pairs") is not None:
            if kind != "contrastive":
                raise ConfigError(f"{path}.pairs: only a contrastive stage takes pairs; remove it")
            pairs = parse_pairs(item["pairs"], f"{path}.pairs")
        stages.append(StageSpec(kind=kind, epochs=epochs, lr=lr, pairs=pairs))
    return tuple(stages)


def _contrastive_only(train: Any) -> bool:
    """Whether a raw train section's stages are all contrastive (a label-free config)."""
    stages = train.get("stages") if isinstance(train, Mapping) else None
    return (
        isinstance(stages, list)
        and bool(stages)
        and all(isinstance(s, Mapping) and s.get("kind") == "contrastive" for s in stages)
    )


def _stage_dict(stage: StageSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": stage.kind, "epochs": stage.epochs, "lr": stage.lr}
    if stage.pairs is not None:
        out["pairs"] = [list(p) for p in stage.pairs]
    return out


def _fields(raw: Any) -> tuple[FieldSpec, ...]:
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(
            f"fields: expected a non-empty mapping of field name → {{kind: …}}, got {raw!r}; "
            "`plait init TABLE --label COLUMN` writes one for you"
        )
    specs = []
    for name, spec in raw.items():
        path = f"fields.{name}"
        if not isinstance(name, str) or not name or "." in name:
            raise ConfigError(
                f"{path}: field names must be non-empty strings without '.', got {name!r}; "
                "rename the field (its column can keep any name: set `column:`)"
            )
        if isinstance(spec, str):  # shorthand `photo: image`
            spec = {"kind": spec}
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{path}: expected a mapping with at least `kind`, got {spec!r}")
        kind = spec.get("kind")
        if kind is None:
            raise ConfigError(f"{path}.kind: missing; one of {', '.join(_kinds())}")
        if kind not in _kinds():
            raise ConfigError(f"{path}.kind: {unknown_name_message('kind', str(kind), _kinds())}")
        options = {k: v for k, v in spec.items() if k not in ("kind", "required")}
        required = spec.get("required", False)
        if not isinstance(required, bool):
            raise ConfigError(f"{path}.required: expected true or false, got {required!r}")
        specs.append(FieldSpec(name=str(name), kind=str(kind), options=options, required=required))
    return tuple(specs)


def _kinds() -> list[str]:
    """The field kinds: the modality registry's names. Imported here, when a config's fields are
    read, not with this module: the plug-ins import torch, and `plait --help` must not."""
    from plait.modalities import MODALITIES

    return MODALITIES.names()


def _check_values(cfg: Config) -> None:
    stages = cfg.train.stages
    contrastive_only = bool(stages) and all(s.kind == "contrastive" for s in stages)
    if not cfg.task.label and not contrastive_only:
        raise ConfigError("task.label: empty; name the column to predict")
    if cfg.task.label and stages and all(s.kind in ("unimodal", "contrastive") for s in stages):
        raise ConfigError(
            f"train.stages: only {' and '.join(sorted({s.kind for s in stages}))} stages; add a frozen or "
            "end_to_end stage so the fusion and the head are trained too (a config without `task` "
            "trains a shared space alone)"
        )
    if cfg.task.type not in TASK_TYPES:
        raise ConfigError(f"task.type: {unknown_name_message('task type', cfg.task.type, list(TASK_TYPES))}")
    if cfg.task.label in cfg.field_names:
        raise ConfigError(
            f"fields.{cfg.task.label}: the label column cannot also be an input field; remove it"
        )
    for key in ("val_fraction", "test_fraction"):
        value = getattr(cfg.data, key)
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"data.{key}: expected a fraction in [0, 1), got {value}")
    if cfg.data.val_fraction + cfg.data.test_fraction >= 1.0:
        raise ConfigError(
            f"data: val_fraction + test_fraction = {cfg.data.val_fraction + cfg.data.test_fraction} "
            "leaves no training rows; keep their sum below 1"
        )
    t = cfg.train
    checks = [
        ("train.epochs", t.epochs >= 1, t.epochs, "an integer ≥ 1"),
        ("train.batch_size", t.batch_size >= 1, t.batch_size, "an integer ≥ 1"),
        ("train.lr", t.lr > 0, t.lr, "a positive number"),
        ("train.weight_decay", t.weight_decay >= 0, t.weight_decay, "a number ≥ 0"),
        (
            "train.modality_dropout",
            0.0 <= t.modality_dropout < 1.0,
            t.modality_dropout,
            "a probability in [0, 1)",
        ),
        ("train.patience", t.patience >= 1, t.patience, "an integer ≥ 1"),
        ("train.devices", t.devices >= 1, t.devices, "an integer ≥ 1"),
        ("train.num_nodes", t.num_nodes >= 1, t.num_nodes, "an integer ≥ 1"),
        ("train.aux_loss", t.aux_loss >= 0, t.aux_loss, "a weight ≥ 0 (0 turns it off)"),
        ("train.ogm_ge", t.ogm_ge >= 0, t.ogm_ge, "a strength ≥ 0 (0 turns it off)"),
        ("train.subset_loss", t.subset_loss >= 0, t.subset_loss, "a weight ≥ 0 (0 turns it off)"),
        ("train.subset_distill", t.subset_distill >= 0, t.subset_distill, "a weight ≥ 0 (0 turns it off)"),
        ("train.ensemble", 1 <= t.ensemble <= 32, t.ensemble, "a member count from 1 (one model) to 32"),
        ("model.dim", cfg.model.dim >= 1, cfg.model.dim, "an integer ≥ 1"),
        ("model.hidden", cfg.model.hidden >= 1, cfg.model.hidden, "an integer ≥ 1"),
        ("model.dropout", 0.0 <= cfg.model.dropout < 1.0, cfg.model.dropout, "a probability in [0, 1)"),
    ]
    for path, ok, got, expected in checks:
        if not ok or (isinstance(got, float) and not math.isfinite(got)):
            raise ConfigError(f"{path}: expected {expected}, got {got!r}")
    for stage_number, stage in enumerate(t.stages):
        if stage.lr is not None and not math.isfinite(stage.lr):
            raise ConfigError(
                f"train.stages[{stage_number}].lr: expected a positive number, got {stage.lr!r}"
            )
    _check_space(cfg)
    if t.accelerator not in ACCELERATORS:
        raise ConfigError(
            f"train.accelerator: {unknown_name_message('accelerator', t.accelerator, list(ACCELERATORS))}"
        )
    if t.strategy == "fsdp":
        raise ConfigError(
            "train.strategy: fsdp is not supported yet (each process would hold a shard of the model, and "
            "the bundle and its evaluation need it whole); use ddp"
        )
    if t.strategy not in STRATEGIES:
        raise ConfigError(f"train.strategy: {unknown_name_message('strategy', t.strategy, list(STRATEGIES))}")
    if t.batch_size < t.devices * t.num_nodes:
        raise ConfigError(
            f"train.batch_size: each batch is split across the {t.devices * t.num_nodes} processes "
            f"(train.devices × train.num_nodes), so it needs at least that many rows; got {t.batch_size}"
        )
    if t.precision not in PRECISIONS:
        raise ConfigError(
            f"train.precision: {unknown_name_message('precision', t.precision, list(PRECISIONS))}"
        )


def _space_within(cfg: Config) -> Config:
    """`cfg` (a subset of a config's fields) with the shared space's pairs kept to its fields; with
    no pair left, no space and no contrastive stage."""
    names = set(cfg.field_names)
    space = cfg.shared_space
    assert space is not None  # called for configs with a space
    pairs = tuple(p for p in space.pairs_for(cfg.field_names) if set(p) <= names)
    stages: list[StageSpec] = []
    for stage in cfg.train.stages:
        if stage.kind == "contrastive":
            own = tuple(p for p in (stage.pairs or pairs) if set(p) <= names)
            if not own:
                continue
            stage = replace(stage, pairs=own if stage.pairs is not None else None)
        stages.append(stage)
    new_space = replace(space, pairs=pairs) if pairs else None
    if new_space is None and not cfg.labelled:
        raise ConfigError(
            f"fields {list(cfg.field_names)}: a config without labels trains a shared space, and these "
            "fields leave no pair of the space to align; keep two fields of a pair"
        )
    return replace(cfg, space=new_space, train=replace(cfg.train, stages=tuple(stages)))


def _check_space(cfg: Config) -> None:
    """The shared space's pairs name the config's fields (a streams config without fields is
    checked once alignment has derived them)."""
    space = cfg.shared_space
    if space is None or not cfg.fields:
        return
    check_pairs(space.pairs, cfg.field_names, "space.pairs")
    space_pairs = {frozenset(p) for p in space.pairs_for(cfg.field_names)}
    for number, stage in enumerate(cfg.train.stages):
        if stage.pairs is not None:
            path = f"train.stages[{number}].pairs"
            check_pairs(stage.pairs, cfg.field_names, path)
            for i, pair in enumerate(stage.pairs):
                if frozenset(pair) not in space_pairs:
                    raise ConfigError(
                        f"{path}[{i}]: {list(pair)} is not one of the space's pairs "
                        f"({', '.join(str(list(p)) for p in space.pairs_for(cfg.field_names))}); a stage "
                        "aligns a subset of them: add it to space.pairs"
                    )
    if cfg.space_weight == 0 and not any(s.kind == "contrastive" for s in cfg.train.stages):
        raise ConfigError(
            "space.weight: 0 and no contrastive stage, so the space's projections would never learn; "
            "set space.weight > 0 or add `{kind: contrastive, epochs: N}` to train.stages"
        )
    if cfg.train.ensemble > 1:
        raise ConfigError(
            f"space: a shared space is trained for one model, and train.ensemble is {cfg.train.ensemble}; "
            "set train.ensemble: 1 or remove the space section"
        )
