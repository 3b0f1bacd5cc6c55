"""Cost of `plait align CONFIG --estimate-offset vibration sound` on the demo's own streams (issue 13,
item 9): wall time, peak memory and the estimate, with the cost per hour of shared recording.

    .venv/bin/python bench/offset.py [--n 1800] [--seed 0] [--max-offset 10] [--per-key] [--out DIR]

The streams (`generate_pumps_streams`: 60 machines, n inspections, sparse recordings over ~5 days)
are written first, outside the clock; the estimate then runs in a fresh child process, so its peak
RSS is the estimate's own (imports included, stream generation not; the generator runs in another
child, as Linux carries a parent's RSS high-water mark into a child). What the timings cover:
  load      — reading both streams as `estimate_between` does (vibration parquet; every WAV decoded
              into 200 Hz block energies), up to the "offset of …" progress line;
  correlate — the shared windows, envelopes, FFT lag sums and the peak, for every entity;
  total     — the whole `estimate_between` call, what the CLI waits for.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(config: Path, max_offset_s: float, per_key: bool) -> None:
    """Run the estimate as the CLI does and print its figures as one JSON line."""
    from plait.align.estimate import estimate_between
    from plait.config import load_config

    cfg = load_config(config)
    if cfg.streams is None:
        raise SystemExit(f"{config}: no streams section")
    marks: list[float] = []

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)  # the progress the CLI shows
        if line.startswith("offset of"):
            marks.append(time.perf_counter())

    rss_before_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    estimates = estimate_between(
        cfg.streams, cfg.base_dir, "vibration", "sound", per_key=per_key, max_offset_s=max_offset_s, say=say
    )
    total_s = time.perf_counter() - started
    load_s = marks[0] - started if marks else float("nan")
    first = next(iter(estimates.values()))
    shared_s = sum(e.shared_s for e in estimates.values())
    figures = {
        "entities": len(estimates) if per_key else None,
        "key": next(iter(estimates)),
        "offset_s": first.offset_s,
        "confidence": first.confidence,
        "peak_r": first.peak_correlation,
        "reliable": first.reliable,
        "shared_s": shared_s,
        "stretches": sum(e.segments for e in estimates.values()),
        "envelope_bins": sum(e.envelope_bins for e in estimates.values()),
        "load_s": load_s,
        "correlate_s": total_s - load_s,
        "total_s": total_s,
        "rss_after_imports_mib": rss_before_mib,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1800, help="inspections (the demo: 1800)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-offset", type=float, default=10.0, help="the CLI's default: 10 s")
    parser.add_argument("--per-key", action="store_true")
    parser.add_argument(
        "--out", type=Path, default=None, help="where to write the streams (default: a temp dir)"
    )
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--generate", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.max_offset, args.per_key)
        return
    if args.generate is not None:
        from plait.datasets.pumps_streams import generate_pumps_streams

        print(generate_pumps_streams(args.generate, n=args.n, seed=args.seed).config_path)
        return

    # this process imports nothing of plait: Linux carries the RSS high-water mark across exec, so
    # the estimate's child would otherwise inherit the generator's peak
    with tempfile.TemporaryDirectory(prefix="plait-bench-offset-") as tmp:
        root = args.out or Path(tmp)
        started = time.perf_counter()
        make = [
            sys.executable,
            __file__,
            "--generate",
            str(root),
            "--n",
            str(args.n),
            "--seed",
            str(args.seed),
        ]
        config = subprocess.run(make, check=True, capture_output=True, text=True).stdout.strip()
        print(f"streams: n={args.n}, seed={args.seed} in {root} ({time.perf_counter() - started:.1f} s)")
        command = [sys.executable, __file__, "--child", config, "--max-offset", str(args.max_offset)]
        command += ["--per-key"] if args.per_key else []
        done = subprocess.run(command, check=True, capture_output=True, text=True)
    print(done.stderr, end="")
    f = json.loads(done.stdout.strip().splitlines()[-1])
    hours = f["shared_s"] / 3600
    print(
        f"estimate ({f['key']}): offset {f['offset_s']:+.4f} s, confidence {f['confidence']:.2f}, "
        f"peak r {f['peak_r']:.2f}, reliable {'yes' if f['reliable'] else 'no'}"
    )
    print(
        f"shared: {f['shared_s']:.1f} s ({hours:.3f} h) in {f['stretches']:,} stretches; "
        f"{f['envelope_bins']:,} envelope bins per stream"
    )
    print(f"wall: total {f['total_s']:.2f} s = load {f['load_s']:.2f} s + correlate {f['correlate_s']:.2f} s")
    print(
        f"seconds per hour of shared data: {f['total_s'] / hours:.2f} total, "
        f"{f['correlate_s'] / hours:.2f} correlate"
    )
    print(f"peak RSS: {f['peak_rss_mib']:,.0f} MiB (after imports {f['rss_after_imports_mib']:,.0f} MiB)")


if __name__ == "__main__":
    main()
