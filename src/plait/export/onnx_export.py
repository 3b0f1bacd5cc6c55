"""`export_onnx(bundle)`: the bundle's model as one ONNX graph, written beside the bundle.

`export_onnx("bundle/", int8=True)` writes `bundle.onnx/` — `model.onnx`, `model.int8.onnx` and
`manifest.json` — atomically (a temporary sibling swapped in by renames, plait.bundle_io): an export
that fails at any step, the check included, leaves nothing behind and an older export as it was.

Before anything is swapped in, the graph is checked against the torch model on a seeded batch of
generated inputs under every subset of fields (`plait.export.check.graph_diffs`); an fp32 graph
further than `tolerance` from torch is an error, not a file. What the graph does not hold stays in
Python: each field's preprocessing (decoding, tokenising, a pretrained field's frozen backbone,
whose vector is the graph's input) and everything after the head (calibration, answers).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch
from torch import Tensor

from plait.bundle import TrainedModel, load_bundle
from plait.bundle_io import replace_folder
from plait.errors import ConfigError, PlaitError
from plait.export.check import graph_diffs
from plait.export.deps import require_onnx
from plait.export.graph import FieldInput, PresenceGraph, dynamic_shapes, example_tensors, field_inputs
from plait.export.manifest import FP32_FILE, INT8_FILE, MANIFEST, GraphFile, Manifest
from plait.export.quantize import quantize_int8
from plait.export.session import OnnxModel
from plait.modalities.base import Modality
from plait.types import Batch

OPSET = 18
TOLERANCE = 1e-4  # fp32 graph against torch: the largest |difference| of an output allowed
CHECK_ROWS = 6
PROVENANCE_KEYS = ("plait_version", "created_at", "config_sha256", "table_sha256", "seed")


class ExportError(PlaitError, RuntimeError):
    """The model could not be exported, or its graph does not give the model's outputs."""


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    manifest: Manifest

    @property
    def worst_fp32(self) -> float:
        return max(d["fp32"] for d in self.manifest.check.values())


def default_folder(bundle: Path) -> Path:
    """Where an export of `bundle` goes by default: `<bundle>.onnx` beside it."""
    bundle = bundle.resolve()
    return bundle.with_name(f"{bundle.name}.onnx")


def export_onnx(
    bundle: Path | str | TrainedModel,
    out: Path | str | None = None,
    *,
    int8: bool = False,
    tolerance: float = TOLERANCE,
    trust_modified: bool = False,
) -> ExportResult:
    """Export the bundle's model (see the module doc); `out` defaults to `<bundle>.onnx`."""
    require_onnx()
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not tolerance > 0:
        raise ConfigError(f"export_onnx: tolerance must be a number above 0 (e.g. 1e-4), got {tolerance!r}")
    if isinstance(bundle, TrainedModel):
        if out is None:
            raise ExportError("export_onnx: a model in memory has no folder to export beside; pass out=")
        trained, folder = bundle, Path(out)
    else:
        trained = load_bundle(bundle, trust_modified=trust_modified)
        folder = Path(out) if out is not None else default_folder(Path(bundle))
    inputs = field_inputs(trained.modalities)
    tracing = example_tensors(trained.modalities, inputs)
    model = trained.model.eval()
    with torch.inference_mode():
        probe = _as_batch(inputs, tracing)
        weights = model.decide(model.encode(probe), probe.present).weights
    plan = _Plan(
        trained=trained,
        graph=PresenceGraph(model, inputs, with_weights=weights is not None).eval(),
        tracing=tracing,
        check=_check_batch(trained.modalities, inputs),
        int8=int8,
        tolerance=tolerance,
    )
    written: list[Manifest] = []
    replace_folder(folder, lambda tmp: written.append(_write(plan, tmp)), marker=MANIFEST)
    return ExportResult(folder.resolve(), written[0])


@dataclass(frozen=True)
class _Plan:
    """What one export writes: the model as a graph, the tensors it is traced and checked with."""

    trained: TrainedModel
    graph: PresenceGraph
    tracing: tuple[Tensor, ...]
    check: Batch
    int8: bool
    tolerance: float


def _write(plan: _Plan, tmp: Path) -> Manifest:
    """Trace, check and (with int8) quantise into the temporary folder `tmp`; the manifest last."""
    inputs, outputs, model = plan.graph.inputs, plan.graph.output_names(), plan.trained.model
    _trace(plan.graph, plan.tracing, inputs, tmp / FP32_FILE)
    files = [_graph_file(tmp / FP32_FILE)]
    diffs = {"fp32": graph_diffs(model, OnnxModel.open(tmp / FP32_FILE, inputs, outputs), plan.check)}
    worst = max(diffs["fp32"].values())
    if not worst <= plan.tolerance:  # NaN fails too
        subset = max(diffs["fp32"], key=lambda k: diffs["fp32"][k])
        raise ExportError(
            f"the ONNX graph does not give the torch model's outputs: largest difference {worst:.3g} "
            f"(fields {subset}) over the tolerance {plan.tolerance:g}; nothing was written. The model "
            "may use an operation the exporter translates differently; report it with the bundle's config"
        )
    if plan.int8:
        quantize_int8(tmp / FP32_FILE, tmp / INT8_FILE)
        files.append(_graph_file(tmp / INT8_FILE))
        diffs["int8"] = graph_diffs(model, OnnxModel.open(tmp / INT8_FILE, inputs, outputs), plan.check)
    provenance = plan.trained.provenance
    manifest = Manifest(
        model_id=plan.trained.model_id,
        fields=inputs,
        outputs=outputs,
        opset=OPSET,
        files=tuple(files),
        provenance={k: provenance[k] for k in PROVENANCE_KEYS if k in provenance},
        versions=_versions(),
        check={subset: {r: diffs[r][subset] for r in diffs} for subset in diffs["fp32"]},
    )
    (tmp / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2) + "\n", encoding="utf-8")
    return manifest


def _trace(
    graph: PresenceGraph, tracing: tuple[Tensor, ...], inputs: tuple[FieldInput, ...], path: Path
) -> None:
    """torch.export → ONNX, one self-contained file (weights inside: the models are small)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch's own deprecations, not the user's
            program = torch.onnx.export(
                graph,
                tracing,
                input_names=list(graph.input_names()),
                output_names=list(graph.output_names()),
                dynamic_shapes=dynamic_shapes(inputs),
                dynamo=True,
                opset_version=OPSET,
                external_data=False,
                optimize=True,
                verbose=False,
            )
    except Exception as exc:
        raise ExportError(
            f"torch could not export the model to ONNX: {type(exc).__name__}: {str(exc).splitlines()[0]}; "
            "serve it with the torch runtime"
        ) from exc
    if program is None:  # only the legacy exporter returns nothing
        raise ExportError("torch.onnx.export returned no program; this torch is not supported")
    program.save(str(path), external_data=False)
    _strip_trace_metadata(path)


def _strip_trace_metadata(path: Path) -> None:
    """Drop what the exporter records per node for debugging — the torch stack trace, module path
    and FX node: it was half of the file (0.8 of 1.7 MB on the demo) and names source paths of the
    machine that exported it. The graph and its weights are untouched."""
    onnx = require_onnx()
    model = onnx.load(str(path))
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
            graphs.extend(a.g for a in node.attribute if a.HasField("g"))
        for value in [*graph.input, *graph.output, *graph.value_info]:
            del value.metadata_props[:]
    onnx.save(model, str(path))


def _check_batch(modalities: Mapping[str, Modality], inputs: tuple[FieldInput, ...]) -> Batch:
    """CHECK_ROWS generated rows, seeded: uniform [0, 1) floats (valid for every float input:
    pixels, log-mels, readings, a tabular field's category codes round down to "unknown"), token
    and code ids of 1; padded lengths differ from row to row; every field present in every row
    but the last, which has none (the subsets then mark fields absent)."""
    generator = torch.Generator().manual_seed(0)
    values: dict[str, Tensor] = {}
    masks: dict[str, Tensor] = {}
    present: dict[str, Tensor] = {}
    for spec in inputs:
        items: list[Tensor | None] = []
        for row in range(CHECK_ROWS - 1):
            length = 2 + (3 * row) % 7
            shape = [length if axis + 1 in spec.values_axes else n for axis, n in enumerate(spec.shape[1:])]
            if spec.dtype.startswith("float"):
                items.append(torch.rand(shape, generator=generator))
            else:
                items.append(torch.ones(shape, dtype=getattr(torch, spec.dtype)))
        values[spec.field], mask = modalities[spec.field].collate([*items, None])
        if mask is not None:
            masks[spec.field] = mask
        present[spec.field] = torch.tensor([True] * (CHECK_ROWS - 1) + [False])
    return Batch(values=values, present=present, masks=masks)


def _as_batch(inputs: tuple[FieldInput, ...], tensors: tuple[Tensor, ...]) -> Batch:
    values, masks, present = {}, {}, {}
    i = 0
    for spec in inputs:
        values[spec.field] = tensors[i]
        if spec.has_mask:
            masks[spec.field] = tensors[i + 1]
        i += len(spec.names)
        present[spec.field] = tensors[i - 1]
    return Batch(values=values, present=present, masks=masks)


def _graph_file(path: Path) -> GraphFile:
    data = path.read_bytes()
    return GraphFile(path.name, hashlib.sha256(data).hexdigest(), len(data))


def _versions() -> dict[str, str]:
    out = {}
    for package in ("plait", "torch", "onnx", "onnxruntime", "onnxscript"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            continue
    return out
