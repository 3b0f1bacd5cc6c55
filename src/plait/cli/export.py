"""`plait export BUNDLE --format onnx [--int8] [-o OUT]`: the bundle's model as one ONNX graph that
any subset of fields runs through (see plait.export.onnx_export)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from plait.registry import unknown_name_message

if TYPE_CHECKING:
    from plait.bundle import TrainedModel

FORMATS = ["onnx"]


def export_command(
    bundle: Path = typer.Argument(..., help="A bundle directory written by `plait train`."),
    to: str = typer.Option(
        "onnx", "--format", "-f", help="What to export to: onnx (one graph, run by onnxruntime)."
    ),
    int8: bool = typer.Option(
        False, "--int8", help="Also write model.int8.onnx: Linear weights dynamically quantised to int8."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="The export folder (default: BUNDLE.onnx beside the bundle); replaced whole.",
    ),
    check_on: Path | None = typer.Option(
        None,
        "--check-on",
        help="A labelled table: measure torch against the graph(s) per subset of fields on its rows "
        "(its held-out rows when it is the training table).",
    ),
    tolerance: float = typer.Option(
        1e-4, help="Largest |torch - graph| of an output the fp32 graph may show on the export check."
    ),
    trust_modified: bool = typer.Option(
        False, "--trust-modified", help="Export a bundle edited since `plait train` wrote it (a warning)."
    ),
) -> None:
    """Export BUNDLE's model; `plait serve BUNDLE --runtime onnx` serves the result."""
    if to not in FORMATS:
        raise typer.BadParameter(unknown_name_message("format", to, FORMATS), param_hint="--format")
    if not bundle.is_dir():
        what = "is a file" if bundle.exists() else "does not exist"
        raise typer.BadParameter(
            f"{bundle} {what}; expected a bundle directory written by `plait train` (the folder "
            "holding plait.json)",
            param_hint="BUNDLE",
        )
    if check_on is not None and not check_on.is_file():
        raise typer.BadParameter(
            f"{check_on} is not a file; expected a labelled table", param_hint="--check-on"
        )
    from plait.bundle import load_bundle
    from plait.export import export_onnx
    from plait.export.deps import require_onnx, require_onnxruntime

    require_onnx()
    require_onnxruntime()
    console = Console()
    trained = load_bundle(bundle, trust_modified=trust_modified)
    out = out if out is not None else _default(bundle)
    result = export_onnx(trained, out, int8=int8, tolerance=tolerance)
    for f in result.manifest.files:
        console.print(
            f"wrote {result.folder / f.name} ({f.size_bytes / 1e6:.2f} MB)", highlight=False, soft_wrap=True
        )
    checked = len(result.manifest.check)
    line = f"checked against torch on {checked} subsets of fields: fp32 within {result.worst_fp32:.2g}"
    if int8:
        worst = max(d["int8"] for d in result.manifest.check.values())
        line += f", int8 within {worst:.2g} (output units)"
    console.print(line, highlight=False)
    if check_on is not None:
        _print_accuracy(console, trained, result.folder, check_on)
    serve = f"serve it: plait serve {bundle} --runtime onnx" + (" --int8" if int8 else "")
    if out != _default(bundle):
        serve += f" --onnx-folder {out}"
    console.print(serve, highlight=False, soft_wrap=True)


def _default(bundle: Path) -> Path:
    from plait.export import default_folder

    return default_folder(bundle)


def _print_accuracy(console: Console, trained: TrainedModel, folder: Path, data: Path) -> None:
    from plait.cli.show import add_number_column, add_text_column, narrow_table
    from plait.export.accuracy import accuracy_by_subset

    found = accuracy_by_subset(trained, folder, data)
    int8 = "int8" in found.subsets[0].metric
    console.print(f"{found.metric} per subset of fields on {found.subsets[0].rows} rows: {found.selection}")
    table = narrow_table()
    add_text_column(table, "fields")
    for header in ("torch", "fp32", "fp32 max|diff|", *(("int8", "Δ int8") if int8 else ())):
        add_number_column(table, header)
    for one in found.subsets:
        cells = [one.subset, f"{one.metric['torch']:.4f}", f"{one.metric['fp32']:.4f}"]
        cells.append(f"{one.max_abs_diff['fp32']:.1e}")
        if int8:
            cells += [f"{one.metric['int8']:.4f}", f"{one.delta('int8'):+.4f}"]
        table.add_row(*cells)
    console.print(table)
