"""Bundles are written atomically and verified on load (issue 13, items 2 and 3): an interrupted save
leaves the old bundle as it was; a bundle edited, truncated or half-written after `plait train` is a
`BundleError` naming the file, never a silent load or a raw traceback."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import safetensors.torch

import plait.bundle
from plait import Predictor, load_bundle, save_bundle
from plait.bundle import FILES, TrainedModel, bundle_content_id
from plait.bundle_checks import BundleModifiedWarning
from plait.errors import BundleError


@pytest.fixture()
def bundle(pumps_bundle, tmp_path: Path) -> Path:
    """A private copy of the session bundle, re-saved so it carries this version's checksums."""
    path = tmp_path / "bundle"
    save_bundle(load_bundle(pumps_bundle.bundle_path), path)
    return path


@pytest.fixture()
def trained(bundle: Path) -> TrainedModel:
    return load_bundle(bundle)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir())}


def _siblings(root: Path) -> list[str]:
    return sorted(p.name for p in root.parent.iterdir() if p.name.startswith(f".{root.name}."))


def _edit_json(path: Path, change: Callable[[Any], Any]) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text())), indent=2))


# --- atomic save ---------------------------------------------------------------------------------


def test_an_interrupted_save_leaves_the_old_bundle_intact(
    bundle: Path, trained: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    (bundle / "report.html").write_text("<p>the old model's report</p>")
    before = _snapshot(bundle)

    def full_disk(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    # the weights are written, then the disk fills while writing config.yaml
    monkeypatch.setattr(plait.bundle.Config, "to_yaml", full_disk)
    with pytest.raises(OSError, match="No space left"):
        save_bundle(trained, bundle)
    assert _snapshot(bundle) == before
    assert _siblings(bundle) == []
    assert load_bundle(bundle).model_id == trained.model_id


def test_a_save_that_fails_before_the_weights_leaves_nothing_behind(
    trained: TrainedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def killed(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(plait.bundle, "save_model", killed)
    with pytest.raises(KeyboardInterrupt):
        save_bundle(trained, tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # only the fixture's


def test_a_save_replaces_the_bundle_and_drops_its_old_extra_files(
    bundle: Path, trained: TrainedModel
) -> None:
    (bundle / "report.html").write_text("<p>the old model's report</p>")
    (bundle / "evaluation.json").write_text("{}")
    stale = json.loads((bundle / "plait.json").read_text())
    retrained = type(trained)(**{**trained.__dict__, "metrics": {"note": "a new model"}})
    assert save_bundle(retrained, bundle) == bundle
    assert sorted(p.name for p in bundle.iterdir()) == sorted(
        [*FILES, *(["calibration.json"] if trained.calibration is not None else [])]
    )
    assert json.loads((bundle / "metrics.json").read_text()) == {"note": "a new model"}
    assert json.loads((bundle / "plait.json").read_text())["model_id"] == stale["model_id"]
    assert _siblings(bundle) == []
    assert load_bundle(bundle).metrics == {"note": "a new model"}


def test_a_save_into_an_empty_folder_or_a_new_path(trained: TrainedModel, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    save_bundle(trained, empty)
    save_bundle(trained, tmp_path / "a" / "b" / "new")
    assert load_bundle(empty).model_id == load_bundle(tmp_path / "a" / "b" / "new").model_id


def test_a_save_through_a_link_replaces_the_folder_and_keeps_the_link(
    bundle: Path, trained: TrainedModel, tmp_path: Path
) -> None:
    link = tmp_path / "current"
    link.symlink_to(bundle, target_is_directory=True)
    (bundle / "report.html").write_text("old")
    save_bundle(trained, link)
    assert link.is_symlink() and link.resolve() == bundle.resolve()
    assert not (bundle / "report.html").exists() and load_bundle(link).model_id == trained.model_id


def test_a_folder_that_is_not_a_bundle_is_never_replaced(trained: TrainedModel, tmp_path: Path) -> None:
    mine = tmp_path / "my_project"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(BundleError, match=r"refusing to replace .*my_project.*no plait\.json"):
        save_bundle(trained, mine)
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]
    a_file = tmp_path / "model.bin"
    a_file.write_text("x")
    with pytest.raises(BundleError, match=r"model\.bin: it is a file"):
        save_bundle(trained, a_file)
    assert _siblings(mine) == [] and _siblings(a_file) == []


def test_the_working_folder_is_never_swapped_away(
    bundle: Path, trained: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(bundle)
    with pytest.raises(BundleError, match="holds the current working folder"):
        save_bundle(trained, ".")
    assert load_bundle(".").model_id == trained.model_id


def test_a_bundle_moved_aside_by_an_interrupted_swap_is_pointed_to(bundle: Path) -> None:
    aside = bundle.with_name(f".{bundle.name}.old-1234abcd")
    bundle.rename(aside)
    with pytest.raises(FileNotFoundError, match=r"\.bundle\.old-1234abcd holds the bundle"):
        load_bundle(bundle)


# --- verification on load ------------------------------------------------------------------------


def _edit_statistic(root: Path) -> None:
    """One field's fitted mean moved by one: a well-formed state, a different model."""

    def edit(states: dict[str, Any]) -> dict[str, Any]:
        name = next(n for n, state in states.items() if isinstance(state.get("mean"), list))
        mean = states[name]["mean"]
        return {**states, name: {**states[name], "mean": [mean[0] + 1.0, *mean[1:]]}}

    _edit_json(root / "preprocessing.json", edit)


def _reverse_classes(root: Path) -> None:
    _edit_json(
        root / "plait.json", lambda m: {**m, "task": {**m["task"], "classes": m["task"]["classes"][::-1]}}
    )


def _reorder_fields(root: Path) -> None:
    _edit_json(root / "plait.json", lambda m: {**m, "fields": m["fields"][::-1]})


def _forge_id(root: Path) -> None:
    _edit_json(root / "plait.json", lambda m: {**m, "model_id": "0123456789abcdef"})


def _truncate_weights(root: Path) -> None:
    data = (root / "model.safetensors").read_bytes()
    (root / "model.safetensors").write_bytes(data[: len(data) // 2])


def _empty_weights(root: Path) -> None:
    (root / "model.safetensors").write_bytes(b"")


def _garbage_weights(root: Path) -> None:
    (root / "model.safetensors").write_bytes(b"\x00not a safetensors file at all" * 10)


def _drop_task(root: Path) -> None:
    _edit_json(root / "plait.json", lambda m: {k: v for k, v in m.items() if k != "task"})


def _drop_classes(root: Path) -> None:
    _edit_json(
        root / "plait.json", lambda m: {**m, "task": {k: v for k, v in m["task"].items() if k != "classes"}}
    )


def _plait_json_not_json(root: Path) -> None:
    (root / "plait.json").write_text("{ half written")


TAMPERED = {
    # case: (tamper, what the message must say)
    "edited statistic": (
        _edit_statistic,
        r"preprocessing\.json changed.*retrain, or load with trust_modified",
    ),
    "reversed classes": (_reverse_classes, r"plait\.json's task or fields .* were edited"),
    "re-ordered fields": (_reorder_fields, r"plait\.json lists fields .* config\.yaml defines"),
    "forged id": (_forge_id, r"plait\.json names model 0123456789abcdef but its content hashes to"),
    "truncated weights": (_truncate_weights, r"model\.safetensors: not a readable safetensors file"),
    "zero-byte weights": (_empty_weights, r"model\.safetensors is empty \(0 bytes\)"),
    "garbage weights": (_garbage_weights, r"model\.safetensors: not a readable safetensors file"),
    "no task": (_drop_task, r"plait\.json: missing key 'task'"),
    "no task.classes": (_drop_classes, r"plait\.json: missing key 'task\.classes'"),
    "plait.json not JSON": (_plait_json_not_json, r"plait\.json: not valid JSON"),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_a_tampered_bundle_is_a_bundle_error_naming_the_file(bundle: Path, case: str) -> None:
    tamper, message = TAMPERED[case]
    tamper(bundle)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle)


@pytest.mark.parametrize("case", ["re-ordered fields", "truncated weights", "zero-byte weights", "no task"])
def test_trust_modified_does_not_excuse_a_broken_bundle(bundle: Path, case: str) -> None:
    tamper, message = TAMPERED[case]
    tamper(bundle)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle, trust_modified=True)


def test_trust_modified_loads_an_edited_bundle_with_a_warning(bundle: Path, pumps_small) -> None:
    _edit_statistic(bundle)
    with pytest.warns(BundleModifiedWarning, match=r"preprocessing\.json changed.*loaded anyway"):
        predictor = Predictor.load(bundle, trust_modified=True)
    rows = pl.read_parquet(pumps_small.table_path).head(3)
    assert len(predictor.predict(rows, root=pumps_small.root)) == 3
    stored = json.loads((bundle / "plait.json").read_text())["model_id"]
    assert predictor.trained.model_id == bundle_content_id(bundle) != stored  # what actually predicts


def test_weights_for_another_number_of_classes_are_named(bundle: Path) -> None:
    weights = safetensors.torch.load_file(str(bundle / "model.safetensors"))
    name, last = [(k, v) for k, v in weights.items() if k.startswith("head.")][-1]
    weights[name] = last[:-1]  # one output fewer
    safetensors.torch.save_file(weights, str(bundle / "model.safetensors"))
    with pytest.raises(BundleError, match=rf"model\.safetensors: the weights do not fit.*{name}"):
        load_bundle(bundle, trust_modified=True)


def test_an_untouched_bundle_loads_and_predicts_as_before(pumps_bundle, pumps_small, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(pumps_bundle.bundle_path, copy)
    rows = pl.read_parquet(pumps_small.table_path).head(8)
    here = Predictor.from_trained(pumps_bundle.trained).predict(rows, root=pumps_small.root)
    loaded = Predictor.load(copy)
    assert loaded.trained.model_id == bundle_content_id(copy) == pumps_bundle.trained.model_id
    for a, b in zip(here, loaded.predict(rows, root=pumps_small.root), strict=True):
        assert a.prediction == b.prediction and a.model_id == b.model_id
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-6)


def test_a_bundle_written_before_the_checksums_still_loads(bundle: Path) -> None:
    _edit_json(bundle / "plait.json", lambda m: {k: v for k, v in m.items() if k != "checksums"})
    assert load_bundle(bundle).model_id == bundle_content_id(bundle)
    _forge_id(bundle)  # its model_id is still verified
    with pytest.raises(BundleError, match="names model 0123456789abcdef"):
        load_bundle(bundle)


def test_plait_predict_refuses_an_edited_bundle_unless_trusted(
    bundle: Path, pumps_small, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from plait.cli.main import app

    _edit_statistic(bundle)
    out = tmp_path / "predictions.csv"
    args = ["predict", str(bundle), str(pumps_small.table_path), "-o", str(out), "--no-progress"]
    refused = CliRunner().invoke(app, args)
    assert isinstance(refused.exception, BundleError) and "--trust-modified" in str(refused.exception)
    assert not out.exists()
    trusted = CliRunner().invoke(app, [*args, "--trust-modified"])
    assert trusted.exit_code == 0, trusted.output
    said = " ".join(trusted.output.split())
    assert "warning: bundle" in said and "preprocessing.json changed" in said and out.is_file()
