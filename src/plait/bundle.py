"""A trained model as a directory — the unit of deployment. Written and read without pickle.

plait.json          format version, model id, task (type, label, classes), fields, the split used,
                    checksums (each hashed file's sha256; one over task and fields)
config.yaml         the config it was trained with
model.safetensors   the weights
preprocessing.json  each field's fitted state (vocabulary, statistics, levels)
metrics.json        test metrics, single-field metrics, load report, training history
provenance.json     data and config fingerprints, versions, seed, time
calibration.json    optional: a temperature per subset of present fields (classification models
                    trained with validation rows); bundles without it predict raw probabilities

`model_id` is the content hash of model.safetensors, preprocessing.json, config.yaml (and
calibration.json). Saving is atomic (plait.bundle_io); loading verifies (plait.bundle_checks).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from safetensors.torch import save_model

from plait.build import build_modalities, build_model
from plait.bundle_checks import (
    CALIBRATION,
    check_columns_agree,
    check_fields_agree,
    check_files,
    check_integrity,
    check_meta,
    check_task_agrees,
    file_digests,
    load_weights,
    meta_checksum,
)
from plait.bundle_io import interrupted_saves, replace_folder
from plait.config import Config
from plait.errors import BundleError, ConfigError, DataError, ModelNotFoundError, PlaitError
from plait.modalities.base import Modality
from plait.models.calibration import SubsetTemperatures
from plait.models.fusion_model import FusionModel
from plait.task import Task

FORMAT_VERSION = 1
FILES = (
    "plait.json",
    "config.yaml",
    "model.safetensors",
    "preprocessing.json",
    "metrics.json",
    "provenance.json",
)  # required; calibration.json is optional
REPORT_FILES = ("report.html", "evaluation.json")  # optional: the evaluation report of the held-out rows


@dataclass(frozen=True)
class TrainedModel:
    config: Config
    task: Task
    modalities: dict[str, Modality]
    model: FusionModel
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    model_id: str = ""
    calibration: SubsetTemperatures | None = None  # classification: temperatures applied at prediction
    split: dict[str, Any] = field(default_factory=dict)  # the split it was trained with (Split.to_json)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(self.modalities)


def save_bundle(trained: TrainedModel, path: Path | str) -> Path:
    """Write the bundle directory atomically: into a temporary sibling, then swapped in by renames, so
    an interrupted save leaves the old bundle as it was. A folder at `path` is replaced whole (an old
    report.html or calibration.json does not survive), unless it is not a bundle: that is refused."""
    out = Path(path)
    if trained.calibration is not None:  # before anything is written
        _check_calibration(trained.calibration, trained.field_names, out / CALIBRATION)
    replace_folder(out, lambda tmp: _write_bundle(trained, tmp), marker="plait.json")
    return out


def _write_bundle(trained: TrainedModel, out: Path) -> None:
    save_model(trained.model, str(out / "model.safetensors"))
    _write_json(out / "preprocessing.json", {name: m.get_state() for name, m in trained.modalities.items()})
    (out / "config.yaml").write_text(trained.config.to_yaml())
    if trained.calibration is not None:
        _write_json(out / CALIBRATION, trained.calibration.to_json())
    model_id, files = file_digests(out)
    task = trained.task.to_json()
    fields = [
        {"name": name, "kind": m.kind, "columns": list(m.columns())} for name, m in trained.modalities.items()
    ]
    meta = {
        "format_version": FORMAT_VERSION,
        "model_id": model_id,
        "task": task,
        "fields": fields,
        "split": trained.split,
        # what each pretrained field needs (also in preprocessing.json, which loading checks)
        "pretrained": {
            name: m.identity.to_json() for name, m in trained.modalities.items() if hasattr(m, "identity")
        },
        # per-file sha256 (names the file that changed) and one over task+fields (not in model_id)
        "checksums": {"files": files, "meta": meta_checksum(model_id, _jsonable(task), _jsonable(fields))},
    }
    _write_json(out / "plait.json", meta)
    _write_json(out / "metrics.json", trained.metrics)
    _write_json(out / "provenance.json", trained.provenance)


def load_bundle(path: Path | str, *, trust_modified: bool = False) -> TrainedModel:
    """Read and verify a bundle: every file present and non-empty, plait.json complete and agreeing
    with the config and the weights, the content equal to its `model_id`. A bundle changed since it
    was written raises `BundleError` — or, with `trust_modified=True`, loads with a warning."""
    root = Path(path)
    if not root.is_dir():
        raise ModelNotFoundError(_not_found(root))
    check_files(root, FILES)
    meta = _read_json(root / "plait.json")
    if isinstance(meta, dict) and meta.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
        raise BundleError(
            f"bundle {root} has format_version {meta['format_version']!r}; this plait reads "
            f"{FORMAT_VERSION}. Use the plait version that wrote it, or retrain"
        )
    check_meta(root / "plait.json", meta)
    config = _read_config(root / "config.yaml")
    t = meta["task"]
    check_task_agrees(root, t, config)
    task = Task.from_json(t)
    modalities = _build_modalities(root, config)
    check_fields_agree(root, meta["fields"], modalities)
    _set_states(root, modalities)
    check_columns_agree(root, meta["fields"], modalities)
    model = _build_model(root, config, modalities, task.n_outputs)
    load_weights(root, model, task.n_outputs)
    model.eval()
    calibration = None
    if (root / CALIBRATION).is_file():
        calibration = _read_calibration(root / CALIBRATION, tuple(modalities))
    model_id = check_integrity(root, meta, trust_modified=trust_modified)
    return TrainedModel(
        config=config,
        task=task,
        modalities=modalities,
        model=model,
        metrics=_read_json(root / "metrics.json"),
        provenance=_read_json(root / "provenance.json"),
        model_id=model_id,
        calibration=calibration,
        split=dict(meta.get("split") or {}),
    )


def _not_found(root: Path) -> str:
    message = f"no bundle at {root.resolve()}: expected a directory written by `plait train`"
    left = interrupted_saves(root)
    if left:
        message += (
            f"; {left[-1]} holds the bundle an interrupted save moved aside — rename it to {root.name} "
            "to use it"
        )
    return message


def _read_config(path: Path) -> Config:
    try:
        raw = yaml.safe_load(path.read_text())
        return Config.from_dict(raw, base_dir=path.parent)
    except (yaml.YAMLError, ConfigError) as exc:
        raise BundleError(
            f"{path}: not a valid plait config ({exc}); the bundle is damaged — retrain"
        ) from None


def _build_modalities(root: Path, config: Config) -> dict[str, Modality]:
    """The fields' plug-ins; pretrained encoders find weights the bundle carries first."""
    from plait.pretrained.weights import bundled_weights

    try:
        with bundled_weights(root / "weights"):
            return build_modalities(config)
    except PlaitError as exc:
        raise BundleError(f"{root / 'config.yaml'}: {exc}") from None


def _set_states(root: Path, modalities: dict[str, Modality]) -> None:
    path = root / "preprocessing.json"
    states = _read_json(path)
    if not isinstance(states, dict):
        raise BundleError(
            f"{path}: expected an object of field → state, got {type(states).__name__}; retrain"
        )
    extra = sorted(set(states) - set(modalities))
    if extra:
        raise BundleError(f"{path}: holds state for fields the config does not have: {extra}; retrain")
    for name, modality in modalities.items():
        if name not in states:
            raise BundleError(f"bundle {root}: preprocessing.json has no state for field '{name}'")
        try:
            modality.set_state(states[name])
        except PlaitError as exc:
            raise BundleError(f"{path}: {exc}") from None
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise BundleError(
                f"{path}: the state of field '{name}' is malformed ({type(exc).__name__}: {exc}); retrain"
            ) from None


def _build_model(root: Path, config: Config, modalities: dict[str, Modality], n_outputs: int) -> FusionModel:
    try:
        return build_model(config, modalities, n_outputs)
    except PlaitError as exc:
        raise BundleError(f"bundle {root}: cannot build the model config.yaml describes: {exc}") from None


def _read_calibration(path: Path, fields: tuple[str, ...]) -> SubsetTemperatures:
    try:
        calibration = SubsetTemperatures.from_json(_read_json(path))
    except (BundleError, DataError) as exc:
        raise BundleError(
            f"{path}: {exc}; retrain, or delete the file and load with trust_modified=True / "
            "--trust-modified to predict uncalibrated"
        ) from None
    _check_calibration(calibration, fields, path)
    return calibration


def _check_calibration(calibration: SubsetTemperatures, fields: tuple[str, ...], path: Path) -> None:
    if calibration.fields != fields:
        raise BundleError(
            f"{path}: calibrated for fields {list(calibration.fields)} but the model has fields "
            f"{list(fields)}; refit the calibration for this model, or delete the file (then load with "
            "trust_modified=True / --trust-modified)"
        )


def bundle_content_id(root: Path) -> str:
    """Content hash of what decides predictions: weights, preprocessing, config and, when the
    bundle has one, calibration.json (a bundle without it keeps the id it always had)."""
    return file_digests(root)[0]


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def _jsonable(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples become lists, numpy scalars numbers)."""
    return json.loads(json.dumps(value, default=_json_default))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(
            f"{path}: not valid JSON ({exc}); the bundle is damaged — re-run `plait train`"
        ) from None


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
