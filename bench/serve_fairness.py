"""Fairness of `plait serve`: how long an honest one-record request waits while another client
sends one request of 16 near-limit PNGs — with the decode budgets (the defaults) and without them
(the limits plait had before: each field's own 40 Mpx, no request or batch budget), both measured
in this run, with the ratio.

    .venv/bin/python bench/serve_fairness.py [--side 6300] [--bundle DIR]

Without --bundle a small demo bundle is trained first (about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "serving"))
from live import live_server  # the tests' real-server helper

UNBUDGETED = [
    "--set", "max_image_pixels=null", "--set", "max_request_pixels=10000000000",
    "--set", "max_request_audio_s=86400", "--set", "max_batch_decode_s=86400",
]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--side", type=int, default=6300, help="each PNG is side x side pixels")
    parser.add_argument("--bundle", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = args.bundle or _bundle(Path(tmp))
        png = io.BytesIO()
        Image.new("RGB", (args.side, args.side), (200, 40, 40)).save(png, "PNG")
        encoded = base64.b64encode(png.getvalue()).decode()
        body = {"records": [{"note": "hot casing", "thermal": encoded} for _ in range(16)]}
        print(f"16 PNGs of {args.side}x{args.side} ({len(png.getvalue()) // 1000} KB each) in one request")
        honest = {}
        for name, options in (("budgets (defaults)", []), ("no budgets (before)", UNBUDGETED)):
            honest[name] = _measure(bundle, body, options, name)
    before, after = honest["no budgets (before)"], honest["budgets (defaults)"]
    print(
        f"\nhonest request while the attack runs: {before:.2f} s before, {after:.2f} s with budgets: "
        f"{before / after:.0f}x"
    )
    return 0


def _measure(bundle: Path, body: dict, options: list[str], name: str) -> float:
    with live_server(bundle, *options) as (url, _):
        client = httpx.Client(base_url=url, timeout=600)
        idle = []
        for _ in range(10):
            start = time.perf_counter()
            client.post("/v1/predict", json={"note": "hot casing"})
            idle.append(time.perf_counter() - start)
        hostile: dict[str, object] = {}

        def attack() -> None:
            start = time.perf_counter()
            hostile["answer"] = httpx.post(f"{url}/v1/predict", json=body, timeout=600)
            hostile["seconds"] = time.perf_counter() - start

        thread = threading.Thread(target=attack)
        thread.start()
        time.sleep(0.3)
        start = time.perf_counter()
        client.post("/v1/predict", json={"note": "hot casing"})
        waited = time.perf_counter() - start
        thread.join()
    answer = hostile["answer"]
    assert isinstance(answer, httpx.Response)
    states = [p["fields"]["thermal"]["state"] for p in answer.json()["predictions"]]
    counts = {s: states.count(s) for s in sorted(set(states))}
    print(
        f"{name}: idle p50 {statistics.median(idle) * 1000:.0f} ms; the 16-image request "
        f"{hostile['seconds']:.2f} s ({answer.status_code}, thermal {counts}); an honest request sent "
        f"0.3 s after it waited {waited:.2f} s"
    )
    return waited


def _bundle(tmp: Path) -> Path:
    from plait.datasets.pumps import generate_pumps
    from plait.demo import demo_config
    from plait.workflow.train import train

    data = generate_pumps(tmp / "data", n=300, seed=0)
    config = demo_config(data.table_path, data.fields, fusion="gated", seed=0, base_dir=data.root)
    config = config.with_overrides(train={"epochs": 3, "progress": False})
    return train(config, out=tmp / "bundle").bundle_path or tmp / "bundle"


if __name__ == "__main__":
    sys.exit(main())
