"""A trained model as a directory — the unit of deployment. Written and read without pickle.

plait.json          format version, model id, task (type, label, classes), fields, the split used
config.yaml         the config it was trained with
model.safetensors   the weights
preprocessing.json  each field's fitted state (vocabulary, statistics, levels)
metrics.json        test metrics, single-field metrics, load report, training history
provenance.json     data and config fingerprints, versions, seed, time
calibration.json    optional: a temperature per subset of present fields (classification models
                    trained with validation rows); bundles without it predict raw probabilities
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from safetensors.torch import load_model, save_model

from plait.build import build_modalities, build_model
from plait.config import Config
from plait.errors import BundleError, DataError, ModelNotFoundError
from plait.evaluation.subset_temperatures import SubsetTemperatures
from plait.modalities.base import Modality
from plait.models.fusion_model import FusionModel

FORMAT_VERSION = 1
FILES = (
    "plait.json",
    "config.yaml",
    "model.safetensors",
    "preprocessing.json",
    "metrics.json",
    "provenance.json",
)  # required; calibration.json is optional
CALIBRATION = "calibration.json"
REPORT_FILES = ("report.html", "evaluation.json")  # optional: the evaluation report of the held-out rows


@dataclass(frozen=True)
class TaskInfo:
    type: str  # "classification" | "regression"
    label: str
    classes: tuple[str, ...] = ()
    target_mean: float = 0.0  # regression targets are trained standardised
    target_std: float = 1.0

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.type == "classification" else 1


@dataclass(frozen=True)
class TrainedModel:
    config: Config
    task: TaskInfo
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
    """Write the bundle directory (created if needed; existing bundle files are replaced)."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    for stale in REPORT_FILES:  # written after saving, by the evaluation of THIS model, or not at all
        (out / stale).unlink(missing_ok=True)
    save_model(trained.model, str(out / "model.safetensors"))
    _write_json(out / "preprocessing.json", {name: m.get_state() for name, m in trained.modalities.items()})
    (out / "config.yaml").write_text(trained.config.to_yaml())
    if trained.calibration is None:
        (out / CALIBRATION).unlink(missing_ok=True)  # a re-save must not keep an old bundle's temperatures
    else:
        _check_calibration(trained.calibration, trained.field_names, out / CALIBRATION)
        _write_json(out / CALIBRATION, trained.calibration.to_json())
    model_id = bundle_content_id(out)
    meta = {
        "format_version": FORMAT_VERSION,
        "model_id": model_id,
        "task": {**asdict(trained.task), "classes": list(trained.task.classes)},
        "fields": [
            {"name": name, "kind": m.kind, "columns": list(m.columns())}
            for name, m in trained.modalities.items()
        ],
        "split": trained.split,
    }
    _write_json(out / "plait.json", meta)
    _write_json(out / "metrics.json", trained.metrics)
    _write_json(out / "provenance.json", trained.provenance)
    return out


def load_bundle(path: Path | str) -> TrainedModel:
    root = Path(path)
    if not root.is_dir():
        raise ModelNotFoundError(
            f"no bundle at {root.resolve()}: expected a directory written by `plait train`"
        )
    missing = [name for name in FILES if not (root / name).is_file()]
    if missing:
        raise BundleError(f"bundle {root} is incomplete: missing {', '.join(missing)}; re-run `plait train`")
    meta = _read_json(root / "plait.json")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"bundle {root} has format_version {version!r}; this plait reads {FORMAT_VERSION}. "
            "Use the plait version that wrote it, or retrain"
        )
    raw_config = yaml.safe_load((root / "config.yaml").read_text())
    config = Config.from_dict(raw_config, base_dir=root)
    t = meta["task"]
    task = TaskInfo(
        type=t["type"],
        label=t["label"],
        classes=tuple(t["classes"]),
        target_mean=float(t["target_mean"]),
        target_std=float(t["target_std"]),
    )
    modalities = build_modalities(config)
    states = _read_json(root / "preprocessing.json")
    for name, modality in modalities.items():
        if name not in states:
            raise BundleError(f"bundle {root}: preprocessing.json has no state for field '{name}'")
        modality.set_state(states[name])
    model = build_model(config, modalities, task.n_outputs)
    try:
        load_model(model, str(root / "model.safetensors"), strict=True)
    except RuntimeError as exc:
        raise BundleError(f"bundle {root}: weights do not match the config's model: {exc}") from None
    model.eval()
    calibration = None
    if (root / CALIBRATION).is_file():
        calibration = _read_calibration(root / CALIBRATION, tuple(modalities))
    return TrainedModel(
        config=config,
        task=task,
        modalities=modalities,
        model=model,
        metrics=_read_json(root / "metrics.json"),
        provenance=_read_json(root / "provenance.json"),
        model_id=str(meta.get("model_id", "")),
        calibration=calibration,
        split=dict(meta.get("split") or {}),
    )


def _read_calibration(path: Path, fields: tuple[str, ...]) -> SubsetTemperatures:
    try:
        calibration = SubsetTemperatures.from_json(_read_json(path))
    except (BundleError, DataError) as exc:
        raise BundleError(f"{path}: {exc}; delete the file to predict uncalibrated, or retrain") from None
    _check_calibration(calibration, fields, path)
    return calibration


def _check_calibration(calibration: SubsetTemperatures, fields: tuple[str, ...], path: Path) -> None:
    if calibration.fields != fields:
        raise BundleError(
            f"{path}: calibrated for fields {list(calibration.fields)} but the model has fields "
            f"{list(fields)}; refit the calibration for this model, or delete the file"
        )


def bundle_content_id(root: Path) -> str:
    """Content hash of what decides predictions: weights, preprocessing, config and, when the
    bundle has one, calibration.json (a bundle without it keeps the id it always had)."""
    digest = hashlib.sha256()
    names = ["model.safetensors", "preprocessing.json", "config.yaml"]
    if (root / CALIBRATION).is_file():
        names.append(CALIBRATION)
    for name in names:
        digest.update(name.encode())
        digest.update((root / name).read_bytes())
    return digest.hexdigest()[:16]


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


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
