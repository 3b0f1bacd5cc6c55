"""The whole evaluation of the demo bundle (every robustness sweep), timed, against the plain way.

plait encodes each test sample once and fuses it under every field subset and every `missing`
level without re-encoding (exact: fusions ignore absent fields), and re-encodes only the one field
a signal perturbation changes. The baseline, measured in the same run, runs the whole model on the
whole perturbed batch for every subset and every sweep point — what a loop over
`model(perturb(batch))` does. Both must give the same outputs (checked, max |difference| printed).

    .venv/bin/python bench/evaluate.py [--out bench-evaluate-out] [--threads 2]

It trains the demo bundle into OUT first unless OUT/bundle exists (`plait demo --out OUT`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from plait.bundle import load_bundle
from plait.data.dataset import load_table
from plait.data.table import encode_labels, read_table
from plait.evaluation.perturb import perturb_batch, perturbation_context
from plait.evaluation.robustness import all_points, plan_curves
from plait.evaluation.rows import choose_rows
from plait.evaluation.sweep import sweep
from plait.workflow.evaluate import evaluate_report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("bench-evaluate-out"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not (args.out / "bundle" / "model.safetensors").is_file():
        from plait.demo import run_demo

        print(f"training the demo bundle into {args.out} …", flush=True)
        run_demo(args.out, progress=False)
    trained = load_bundle(args.out / "bundle")
    config_path = args.out / "data" / "plait.yaml"
    from plait.config import load_config

    table_path = load_config(config_path).table_path()

    start = time.perf_counter()
    run = evaluate_report(trained, table_path, out=args.out / "evaluation")
    total = time.perf_counter() - start
    timing, rows = run.data.timing, run.data.data
    assert timing is not None and rows is not None
    print(
        f"plait evaluate: {total:.1f} s end to end (target < 60 s), of which {timing.seconds:.1f} s "
        f"evaluation and {timing.encoding_seconds:.1f} s encoding "
        f"({timing.encoding_seconds / timing.seconds:.0%}); {rows.rows} rows"
    )
    print(f"report: {run.html_path}")

    # Baseline: the whole model on the whole (perturbed) batch, every time.
    df = read_table(table_path)
    task = trained.task
    target, valid = encode_labels(df, task, str(table_path))
    rows = choose_rows(trained, df, target, valid, str(table_path)).rows
    tensors, _ = load_table(df, trained.modalities, table_path.parent, target=target)
    modalities = trained.modalities
    contexts = {n: perturbation_context(m) for n, m in modalities.items()}
    points = all_points(plan_curves(modalities))
    names = list(modalities)
    subsets = {
        "all": None,
        **{f"only:{n}": [n] for n in names},
        **{f"without:{n}": [m for m in names if m != n] for n in names},
    }

    start = time.perf_counter()
    shared = sweep(
        trained.model, tensors, rows, subsets=subsets, points=points, modalities=modalities, contexts=contexts
    )
    plait_seconds = time.perf_counter() - start

    model = trained.model.eval()
    start = time.perf_counter()
    worst = 0.0
    with torch.inference_mode():
        idx = torch.as_tensor(rows)
        for number, begin in enumerate(range(0, len(idx), 256)):
            batch = tensors.batch(idx[begin : begin + 256])
            for name, keep in subsets.items():
                kept = set(names if keep is None else keep)
                present = {f: p if f in kept else torch.zeros_like(p) for f, p in batch.present.items()}
                out = model(batch.with_present(present)).output
                worst = max(worst, float((out - shared.subsets[name][begin : begin + 256]).abs().max()))
            for point in points:
                changed = batch
                for field, family in zip(point.fields, point.perturbations, strict=True):
                    changed = perturb_batch(
                        changed, field, modalities[field], family, point.level, number, contexts[field]
                    )
                out = model(changed).output
                worst = max(worst, float((out - shared.points[point][begin : begin + 256]).abs().max()))
    naive_seconds = time.perf_counter() - start
    print(
        f"model runs: {len(subsets)} subsets + {len(points)} sweep points over {len(rows)} rows\n"
        f"  plait (encode once, re-encode the perturbed field): {plait_seconds:.1f} s\n"
        f"  baseline (whole model on every perturbed batch):    {naive_seconds:.1f} s\n"
        f"  ratio baseline / plait: {naive_seconds / plait_seconds:.2f}×; max |output difference| {worst:.2e}"
    )


if __name__ == "__main__":
    main()
