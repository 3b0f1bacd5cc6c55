"""`export_onnx` and `plait export`: the files, the manifest, the check, atomic writes, CLI errors."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from plait.bundle import load_bundle
from plait.cli.main import app
from plait.errors import BundleError
from plait.export import (
    ExportError,
    MissingExtraError,
    default_folder,
    export_onnx,
    onnx_export,
    read_manifest,
)
from plait.export.check import NONE
from plait.export.session import OnnxModel

runner = CliRunner()
FIELDS = ["vibration", "sound", "thermal", "note", "specs"]


def flat(output: str) -> str:
    """CLI output as one line: rich's error box and line wrapping taken out."""
    return " ".join(output.replace("│", " ").split())


@pytest.fixture()
def fast_trace(pumps_onnx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tracing takes ~30 s on two cores: hand back the session's graph of the same bundle instead
    (everything after it — the check, int8, the manifest, the swap — runs for real)."""

    def copy(graph: Any, tracing: Any, inputs: Any, path: Path) -> None:
        shutil.copyfile(pumps_onnx.folder / "model.onnx", path)

    monkeypatch.setattr(onnx_export, "_trace", copy)


def test_the_manifest_names_the_bundle_the_inputs_and_the_files(pumps_onnx: Any, pumps_bundle: Any) -> None:
    folder = pumps_onnx.folder
    manifest = read_manifest(folder)
    assert manifest == pumps_onnx.manifest
    raw = json.loads((folder / "manifest.json").read_text())
    assert raw["format"] == "plait-onnx" and raw["format_version"] == 1
    assert raw["model_id"] == pumps_bundle.trained.model_id
    assert raw["provenance"]["table_sha256"] == pumps_bundle.trained.provenance["table_sha256"]
    assert set(raw["versions"]) >= {"torch", "onnx", "onnxruntime"}
    assert [one["field"] for one in raw["inputs"]] == FIELDS
    note = next(one for one in raw["inputs"] if one["field"] == "note")
    assert note["names"] == ["note.values", "note.mask", "note.present"]
    assert note["shape"] == ["batch", "note.len1"] and note["dtype"] == "int64"
    assert raw["outputs"][:2] == ["output", "weights"]
    assert raw["outputs"][2:] == [f"{f}.pooled" for f in FIELDS]
    for entry in raw["files"]:
        data = (folder / entry["name"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["size_bytes"] == len(data)
    # the export-time check: every subset, the empty one too, fp32 within the tolerance
    assert len(raw["check"]) == 2 ** len(FIELDS) and NONE in raw["check"]
    assert all(d["fp32"] <= onnx_export.TOLERANCE and "int8" in d for d in raw["check"].values())
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "model.int8.onnx", "model.onnx"]


def test_the_int8_graph_is_smaller(pumps_onnx: Any) -> None:
    sizes = {f.name: f.size_bytes for f in pumps_onnx.manifest.files}
    assert sizes["model.int8.onnx"] < sizes["model.onnx"]


def test_the_default_folder_is_beside_the_bundle(tmp_path: Path) -> None:
    assert default_folder(tmp_path / "runs" / "bundle") == (tmp_path / "runs" / "bundle.onnx").resolve()


def test_a_failing_export_leaves_nothing_and_keeps_an_older_export(
    pumps_bundle: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_trace: None
) -> None:
    def broken(source: Path, target: Path) -> None:
        target.write_bytes(b"half a graph")
        raise RuntimeError("disk full")

    monkeypatch.setattr(onnx_export, "quantize_int8", broken)
    target = tmp_path / "out.onnx"
    with pytest.raises(RuntimeError, match="disk full"):
        export_onnx(pumps_bundle.bundle_path, target, int8=True)
    assert list(tmp_path.iterdir()) == []  # no folder, no temporary sibling

    first = export_onnx(pumps_bundle.bundle_path, target)  # fp32 only: quantisation not called
    with pytest.raises(RuntimeError, match="disk full"):
        export_onnx(pumps_bundle.bundle_path, target, int8=True)
    assert read_manifest(target) == first.manifest  # the older export, as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.onnx"]


def test_a_graph_that_differs_from_torch_is_an_error_not_a_file(
    pumps_bundle: Any, tmp_path: Path, fast_trace: None
) -> None:
    with pytest.raises(ExportError, match=r"does not give the torch model's outputs.*nothing was written"):
        export_onnx(pumps_bundle.bundle_path, tmp_path / "out.onnx", tolerance=1e-12)
    assert list(tmp_path.iterdir()) == []


def test_a_tampered_graph_or_another_bundles_export_is_refused(pumps_onnx: Any, tmp_path: Path) -> None:
    copy = tmp_path / "copy.onnx"
    shutil.copytree(pumps_onnx.folder, copy)
    (copy / "model.int8.onnx").write_bytes(b"not the graph")
    with pytest.raises(BundleError, match="does not match its manifest"):
        OnnxModel.load(copy, int8=True)
    with pytest.raises(BundleError, match=r"was made from model .* export it again"):
        read_manifest(copy).require_model("0" * 16, copy)
    with pytest.raises(BundleError, match=re.escape("plait export BUNDLE --format onnx")):
        read_manifest(tmp_path)


def test_cli_exports_and_says_how_to_serve(pumps_bundle: Any, tmp_path: Path, fast_trace: None) -> None:
    out = tmp_path / "exported"
    result = runner.invoke(
        app, ["export", str(pumps_bundle.bundle_path), "--format", "onnx", "--int8", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "model.int8.onnx" in result.output and "32 subsets" in result.output
    assert f"--runtime onnx --int8 --onnx-folder {out}" in result.output
    assert read_manifest(out).model_id == load_bundle(pumps_bundle.bundle_path).model_id


def test_cli_errors_name_the_problem_and_the_fix(
    pumps_bundle: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unknown = runner.invoke(app, ["export", str(pumps_bundle.bundle_path), "--format", "onxx"])
    assert unknown.exit_code == 2
    assert "unknown format 'onxx'; did you mean 'onnx'?" in flat(unknown.output)

    missing = runner.invoke(app, ["export", str(tmp_path / "nope"), "--format", "onnx"])
    assert missing.exit_code == 2 and "does not exist; expected a bundle directory" in flat(missing.output)

    monkeypatch.setitem(sys.modules, "onnx", None)  # as if not installed: importing it fails
    no_onnx = runner.invoke(app, ["export", str(pumps_bundle.bundle_path), "--format", "onnx"])
    assert isinstance(no_onnx.exception, MissingExtraError)
    assert "pip install 'plait[onnx]'" in str(no_onnx.exception)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["export", "serve"])
def test_every_option_says_what_it_does(command: str) -> None:
    import typer.main

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    options = [p for p in commands[command].params if p.param_type_name == "option"]
    assert options and all(p.help for p in options), [p.name for p in options if not p.help]
    assert runner.invoke(app, [command, "--help"]).exit_code == 0
