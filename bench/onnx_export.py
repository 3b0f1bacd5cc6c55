"""ONNX export: onnxruntime (fp32 and int8) against torch on the demo bundle — latency, file sizes,
and accuracy per subset of fields on the demo's held-out rows, all in one run.

Trains the demo bundle (`plait demo`, ~40 s) unless `--bundle` names one, exports it with
`export_onnx(int8=True)`, then times the model alone — the tensors are loaded once, beforehand,
for all three: preprocessing is the same Python code whichever runtime serves — per record (batch
of 1) and per batch of 64 held-out rows, each batch's padding trimmed to its own longest sequence
as serving collates it. torch and onnxruntime get the same number of threads (`--threads`).

    .venv/bin/python bench/onnx_export.py --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from plait.bundle import load_bundle
from plait.demo import run_demo
from plait.evaluation.evaluate import model_tensors, read_labelled
from plait.evaluation.rows import choose_rows
from plait.export import export_onnx
from plait.export.check import check_on_table
from plait.export.graph import FieldInput
from plait.export.session import OnnxModel
from plait.types import Batch

RUNTIMES = ("torch", "fp32", "int8")


def trimmed(batch: Batch, inputs: Sequence[FieldInput]) -> Batch:
    """The batch with each padded field cut to its longest real sequence (as `collate` pads a batch)."""
    values, masks = dict(batch.values), dict(batch.masks)
    for spec in inputs:
        mask = masks.get(spec.field)
        if mask is None or not spec.mask_axes:
            continue
        steps = torch.nonzero(mask.any(dim=0)).flatten()
        length = int(steps.max()) + 1 if len(steps) else 1
        masks[spec.field] = mask[:, :length]
        for axis in spec.values_axes:
            values[spec.field] = values[spec.field].narrow(axis, 0, length)
    return Batch(values=values, present=batch.present, masks=masks, target=batch.target)


def timings_ms(run: Callable[[Batch], object], batches: Sequence[Batch], repeats: int) -> list[float]:
    """Milliseconds of each call, `repeats` passes over `batches` after one warm-up pass."""
    for batch in batches:
        run(batch)
    out = []
    for _ in range(repeats):
        for batch in batches:
            start = time.perf_counter()
            run(batch)
            out.append((time.perf_counter() - start) * 1000.0)
    return out


def graph_runner(graph: OnnxModel) -> Callable[[Batch], object]:
    def run(batch: Batch) -> object:
        return graph.run(batch.values, batch.masks, batch.present)

    return run


def p95(values: Sequence[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--bundle", type=Path, help="A demo bundle (default: train one in a temporary folder)."
    )
    parser.add_argument("--threads", type=int, default=1, help="Threads for torch and for onnxruntime.")
    parser.add_argument("--records", type=int, default=200, help="Held-out records timed one at a time.")
    parser.add_argument("--repeats", type=int, default=3, help="Passes over the timed records and batches.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="plait-onnx-bench-") as tmp:
        bundle = args.bundle
        if bundle is None:
            print("training the demo bundle (plait demo) ...", flush=True)
            bundle = run_demo(Path(tmp) / "demo", progress=False).bundle_path
        trained = load_bundle(bundle)
        start = time.perf_counter()
        result = export_onnx(trained, Path(tmp) / "bundle.onnx", int8=True)
        export_s = time.perf_counter() - start
        graphs = {
            "fp32": OnnxModel.load(result.folder, threads=args.threads),
            "int8": OnnxModel.load(result.folder, int8=True, threads=args.threads),
        }
        table = read_labelled(trained, trained.provenance["table_path"], None)
        choice = choose_rows(trained, table.df, table.target, table.valid, table.source)
        tensors, _ = model_tensors(trained, table.df, table.target, table.root)
        rows = torch.as_tensor(choice.rows)
        inputs = result.manifest.fields
        model = trained.model.eval()

        def torch_run(batch: Batch) -> object:
            with torch.inference_mode():
                return model(batch)

        runners: dict[str, Callable[[Batch], object]] = {"torch": torch_run}
        for name, graph in graphs.items():
            runners[name] = graph_runner(graph)
        singles = [
            trimmed(tensors.batch(rows[i : i + 1]), inputs) for i in range(min(args.records, len(rows)))
        ]
        sixty_fours = [trimmed(tensors.batch(rows[i : i + 64]), inputs) for i in range(0, len(rows) - 63, 64)]
        latency = {
            name: (timings_ms(run, singles, args.repeats), timings_ms(run, sixty_fours, args.repeats))
            for name, run in runners.items()
        }
        checks = check_on_table(model, trained.task, graphs, tensors, choice.rows)
        sizes = {
            "torch": (Path(bundle) / "model.safetensors").stat().st_size,
            **{f.name: f.size_bytes for f in result.manifest.files},
        }

    print(f"\nbundle {trained.model_id}: {len(choice.rows)} held-out rows ({choice.selection[:60]}...)")
    print(f"export (trace + check + int8 + check): {export_s:.1f} s; threads: {args.threads}")
    print("\nfiles: " + ", ".join(f"{name} {size / 1e6:.2f} MB" for name, size in sizes.items()))
    print(f"\nlatency, model only (ms)      {'per record':>22}   {'batch of 64':>22}")
    print(f"{'':30}{'median':>11}{'p95':>11}   {'median':>11}{'p95':>11}")
    for name, (per_record, per_batch) in latency.items():
        print(
            f"{name:30}{statistics.median(per_record):11.2f}{p95(per_record):11.2f}   "
            f"{statistics.median(per_batch):11.2f}{p95(per_batch):11.2f}"
        )
    base_one, base_batch = (statistics.median(x) for x in latency["torch"])
    for name in ("fp32", "int8"):
        record_ms, batch_ms = (statistics.median(x) for x in latency[name])
        print(
            f"torch / {name}: {base_one / record_ms:.2f}x per record, "
            f"{base_batch / batch_ms:.2f}x per batch of 64"
        )
    print(f"\n{trained.task.headline_metric} per subset of fields ({len(checks)} subsets)")
    print(
        f"{'fields':44}{'torch':>8}{'fp32':>8}{'int8':>8}{'Δ int8':>8}{'max|Δ| fp32':>13}{'max|Δ| int8':>13}"
    )
    for check in checks:
        print(
            f"{check.subset:44}{check.metric['torch']:8.4f}{check.metric['fp32']:8.4f}"
            f"{check.metric['int8']:8.4f}{check.delta('int8'):+8.4f}"
            f"{check.max_abs_diff['fp32']:13.1e}{check.max_abs_diff['int8']:13.1e}"
        )
    worst = min(checks, key=lambda c: c.delta("int8"))
    print(
        f"\nfp32: largest |torch - onnx| {max(c.max_abs_diff['fp32'] for c in checks):.1e} over all subsets; "
        f"int8: worst accuracy change {worst.delta('int8'):+.4f} ({worst.subset}), "
        f"mean {statistics.mean(c.delta('int8') for c in checks):+.4f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
