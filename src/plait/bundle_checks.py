"""What `load_bundle` checks before a bundle may predict: every file present and non-empty, plait.json
complete, plait.json agreeing with what decides predictions (config.yaml, preprocessing.json, the
weights' shapes), and the content hash equal to the stored `model_id`.

The hash covers model.safetensors, preprocessing.json, config.yaml and calibration.json (when present);
bundles written since these checks also store each of those files' sha256 (to name the one that
changed) and a checksum of plait.json's task and fields (class names are nowhere else). These catch
accidents and careless edits, not an attacker: anyone who edits a bundle can recompute them.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model

from plait.config import Config
from plait.errors import BundleError
from plait.modalities.base import Modality
from plait.task import CLASSIFICATION, EMBEDDING, REGRESSION, TASK_TYPES

CALIBRATION = "calibration.json"
HASHED = ("model.safetensors", "preprocessing.json", "config.yaml")  # + calibration.json when present
TASK_KEYS = ("type", "label", "classes", "target_mean", "target_std")
TRUST_HINT = (
    "the bundle was modified after it was written: retrain, or load with trust_modified=True / "
    "--trust-modified if you changed it on purpose"
)


class BundleModifiedWarning(UserWarning):
    """A bundle changed since it was written, loaded anyway because the caller trusts the change."""


def check_files(root: Path, required: Sequence[str]) -> None:
    missing = [name for name in required if not (root / name).is_file()]
    if missing:
        raise BundleError(f"bundle {root} is incomplete: missing {', '.join(missing)}; re-run `plait train`")
    empty = [name for name in required if (root / name).stat().st_size == 0]
    if empty:
        raise BundleError(
            f"bundle {root}: {', '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty (0 bytes); "
            "the bundle was damaged (an interrupted copy or a full disk?) — copy it again or retrain"
        )


# --- content hash --------------------------------------------------------------------------------


def file_digests(root: Path) -> tuple[str, dict[str, str]]:
    """(content id, {file: sha256}) of the files that decide predictions, each read once."""
    content = hashlib.sha256()
    files: dict[str, str] = {}
    names = [*HASHED, *([CALIBRATION] if (root / CALIBRATION).is_file() else [])]
    for name in names:
        data = (root / name).read_bytes()
        content.update(name.encode())
        content.update(data)
        files[name] = hashlib.sha256(data).hexdigest()
    return content.hexdigest()[:16], files


def meta_checksum(model_id: str, task: Mapping[str, Any], fields: Sequence[Any]) -> str:
    """sha256 of plait.json's prediction-deciding part in a canonical form (key order ignored)."""
    canonical = json.dumps({"model_id": model_id, "task": task, "fields": fields}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_integrity(root: Path, meta: Mapping[str, Any], *, trust_modified: bool) -> str:
    """The stored ids against the content; a mismatch raises, or warns when `trust_modified`.
    Returns the content's id: what predictions carry, so a trusted edit is not passed off as the
    model plait.json names."""
    computed, files = file_digests(root)
    problems = []
    stored = meta["model_id"]
    if computed != stored:
        stored_files = meta.get("checksums", {}).get("files", {})
        changed = [f"{n} changed" for n in files if n in stored_files and stored_files[n] != files[n]]
        changed += [f"{n} added" for n in files if n not in stored_files]
        changed += [f"{n} removed" for n in stored_files if n not in files]
        which = f" ({', '.join(changed)})" if stored_files and changed else ""
        problems.append(f"plait.json names model {stored} but its content hashes to {computed}{which}")
    stored_meta = meta.get("checksums", {}).get("meta")
    # written with the true id: a forged model_id alone is reported once, above
    expected_meta = {meta_checksum(i, meta["task"], meta["fields"]) for i in (stored, computed)}
    if stored_meta is not None and stored_meta not in expected_meta:
        problems.append("plait.json's task or fields (class names, field list) were edited")
    if not problems:
        return computed
    message = f"bundle {root}: {'; '.join(problems)}; {TRUST_HINT}"
    if not trust_modified:
        raise BundleError(message)
    warnings.warn(
        f"{message} (loaded anyway: trust_modified; its predictions carry model_id {computed})",
        BundleModifiedWarning,
        stacklevel=3,
    )
    return computed


# --- plait.json ----------------------------------------------------------------------------------


def check_meta(path: Path, meta: Any) -> None:
    """plait.json has every key load_bundle reads, each of the right type."""
    if not isinstance(meta, dict):
        raise BundleError(f"{path}: expected a JSON object, got {type(meta).__name__}; re-run `plait train`")
    for key in ("format_version", "model_id", "task", "fields"):
        if key not in meta:
            raise BundleError(f"{path}: missing key '{key}'; the bundle is damaged — re-run `plait train`")
    if not isinstance(meta["model_id"], str):
        raise BundleError(f"{path}: 'model_id' must be a string, got {meta['model_id']!r}")
    task = meta["task"]
    if not isinstance(task, dict):
        raise BundleError(f"{path}: 'task' must be an object, got {task!r}")
    for key in TASK_KEYS:
        if key not in task:
            raise BundleError(
                f"{path}: missing key 'task.{key}'; the bundle is damaged — re-run `plait train`"
            )
    _check_task(path, task)
    fields = meta["fields"]
    ok = isinstance(fields, list) and all(
        isinstance(f, dict) and isinstance(f.get("name"), str) and isinstance(f.get("kind"), str)
        for f in fields
    )
    if not ok:
        raise BundleError(
            f"{path}: 'fields' must be a list of {{name, kind, columns}} objects, got {fields!r}"
        )
    checksums = meta.get("checksums", {})
    if (
        not isinstance(checksums, dict)
        or not isinstance(checksums.get("files", {}), dict)
        or not isinstance(checksums.get("meta", ""), str)
    ):
        raise BundleError(f"{path}: 'checksums' must be an object with 'files' and 'meta', got {checksums!r}")


def _check_task(path: Path, task: Mapping[str, Any]) -> None:
    kind, classes = task["type"], task["classes"]
    if kind not in (*TASK_TYPES, EMBEDDING):
        raise BundleError(f"{path}: task.type must be {', '.join(TASK_TYPES)} or {EMBEDDING}, got {kind!r}")
    if not isinstance(task["label"], str):
        raise BundleError(f"{path}: task.label must be a string, got {task['label']!r}")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise BundleError(f"{path}: task.classes must be a list of strings, got {classes!r}")
    if kind == CLASSIFICATION and (len(classes) < 2 or len(set(classes)) != len(classes)):
        raise BundleError(f"{path}: task.classes must be ≥ 2 distinct names, got {classes!r}")
    if kind in (REGRESSION, EMBEDDING) and classes:
        raise BundleError(f"{path}: a {kind} task has no classes, got {classes!r}")
    for key in ("target_mean", "target_std"):
        value = task[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise BundleError(f"{path}: task.{key} must be a finite number, got {value!r}")
    if not task["target_std"] > 0:
        raise BundleError(f"{path}: task.target_std must be > 0, got {task['target_std']!r}")


def check_task_agrees(root: Path, task: Mapping[str, Any], config: Config) -> None:
    if task["label"] != config.task.label:
        raise BundleError(
            f"bundle {root}: plait.json's task.label {task['label']!r} disagrees with config.yaml's "
            f"task.label {config.task.label!r}; retrain"
        )
    if config.task.type != "auto" and task["type"] != config.task.type:
        raise BundleError(
            f"bundle {root}: plait.json's task.type {task['type']!r} disagrees with config.yaml's "
            f"task.type {config.task.type!r}; retrain"
        )


def check_fields_agree(
    root: Path, fields: Sequence[Mapping[str, Any]], modalities: Mapping[str, Modality]
) -> None:
    """plait.json's fields are config.yaml's fields: same names, same order, same kinds."""
    listed = [(f["name"], f["kind"]) for f in fields]
    built = [(name, m.kind) for name, m in modalities.items()]
    if listed != built:
        raise BundleError(
            f"bundle {root}: plait.json lists fields {_pairs(listed)} but config.yaml defines "
            f"{_pairs(built)} (names, order and kinds must match); retrain"
        )


def check_columns_agree(
    root: Path, fields: Sequence[Mapping[str, Any]], modalities: Mapping[str, Modality]
) -> None:
    for f in fields:
        listed, used = list(f.get("columns", [])), list(modalities[f["name"]].columns())
        if listed != used:
            raise BundleError(
                f"bundle {root}: plait.json gives field '{f['name']}' the columns {listed}, its "
                f"preprocessing reads {used}; retrain"
            )


def _pairs(pairs: Sequence[tuple[str, str]]) -> str:
    return "[" + ", ".join(f"{name} ({kind})" for name, kind in pairs) + "]"


# --- weights -------------------------------------------------------------------------------------


def load_weights(root: Path, model: torch.nn.Module, n_outputs: int) -> None:
    """model.safetensors into `model`: readable, every tensor's shape the one the config's model has."""
    path = root / "model.safetensors"
    try:
        with safe_open(str(path), framework="pt") as f:
            shapes = {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as exc:
        raise BundleError(
            f"{path}: not a readable safetensors file ({exc}); it is truncated or damaged — copy the "
            "bundle again or retrain"
        ) from None
    expected = {key: tuple(t.shape) for key, t in model.state_dict().items()}
    wrong = [key for key in shapes if key in expected and shapes[key] != expected[key]]
    if wrong:
        listed = ", ".join(f"{k} {list(shapes[k])} (expected {list(expected[k])})" for k in wrong[:3])
        raise BundleError(
            f"{path}: the weights do not fit the model config.yaml and plait.json describe "
            f"({n_outputs} output(s)): {listed}; retrain"
        )
    try:
        load_model(model, str(path), strict=True)
    except (RuntimeError, SafetensorError) as exc:
        raise BundleError(f"{path}: weights do not match the config's model: {exc}") from None
