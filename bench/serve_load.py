"""Load on `plait serve`, loopback only: 32 concurrent clients for 30 s against the demo bundle, with
dynamic batching on and off (max_batch_size 1), plus single-record latency on an idle server.

Each client posts one full record at a time (vibration series, sound clip and thermal image as
base64, note text, machine specs) taken from the demo's test rows, and waits for the answer before
sending the next. Bodies are JSON-encoded once before the clock starts, so the client spends little
of the two cores it shares with the server. Prints throughput, p50/p95/p99 latency and the error
count for each run, and the batched ÷ unbatched throughput ratio.

    .venv/bin/python bench/serve_load.py [--out bench-serve-out] [--clients 32] [--seconds 30]
        [--max-batch-size 16] [--inference process|thread] [--modes batched,unbatched]

Trains the demo bundle into OUT first unless OUT/bundle exists. Targets (issue 6): 0 errors;
single-record p50 under 20 ms on an idle server; batched throughput ≥ 3× unbatched.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import polars as pl

from plait import load_bundle
from plait.modalities.contract import input_spec

JSON = {"Content-Type": "application/json"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("bench-serve-out"))
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--idle-requests", type=int, default=200)
    parser.add_argument(
        "--max-batch-size", type=int, default=16, help="the batched run's (the server's default)"
    )
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument(
        "--modes", default="batched,unbatched", help="which runs, comma-separated (the ratio needs both)"
    )
    parser.add_argument(
        "--inference",
        default="process",
        choices=("process", "thread"),
        help="where the server runs the model",
    )
    parser.add_argument(
        "--bundle",
        type=Path,
        default=None,
        help="serve this bundle (trained on the demo's fields, e.g. with `note: {encoder: minilm}`) "
        "instead of OUT/bundle; the records still come from OUT/data",
    )
    args = parser.parse_args()
    bundle = args.bundle or args.out / "bundle"
    if not (bundle / "model.safetensors").is_file():
        from plait.demo import run_demo

        print(f"training the demo bundle into {args.out} …", flush=True)
        run_demo(args.out, progress=False)
    records = [json.dumps(r).encode() for r in _records(args.out, bundle, count=64)]  # encoded once
    results = {}
    sizes = {"batched": args.max_batch_size, "unbatched": 1}
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in sizes for m in modes):
        parser.error(f"--modes: choose from {', '.join(sizes)}, got {args.modes!r}")
    for name in modes:
        batch_size = sizes[name]
        with _server(bundle, batch_size, args.max_wait_ms, args.inference) as url:
            idle = asyncio.run(_sequential(url, records, args.idle_requests))
            load = asyncio.run(_load(url, records, args.clients, args.seconds))
            memory = _tree_rss_mib(_server.pid)
        results[name] = (idle, load)
        _print(f"{name}, inference {args.inference}", batch_size, args.max_wait_ms, idle, load, args.clients)
        print(f"  resident memory of the server and its model process after the load: {memory:.0f} MiB")
    if len(results) == len(sizes):
        ratio = results["batched"][1]["throughput"] / results["unbatched"][1]["throughput"]
        print(f"\nbatched ÷ unbatched throughput: {ratio:.2f}× (target ≥ 3)")


def _records(out: Path, bundle: Path, count: int) -> list[dict[str, Any]]:
    """Full records from the demo table, media as base64, keyed by column name."""
    meta = json.loads((bundle / "plait.json").read_text())
    modalities = load_bundle(bundle).modalities
    media = {c for m in modalities.values() for c in input_spec(m).media_columns}  # sent as bytes
    table_path = out / "data" / "samples.parquet"
    df = pl.read_parquet(table_path)
    root = table_path.parent
    records = []
    for row in df.tail(count).to_dicts():
        record: dict[str, Any] = {}
        for field in meta["fields"]:
            for column in field["columns"]:
                value = row.get(column)
                if column in media and isinstance(value, str):  # a file's path in the table
                    value = base64.b64encode((root / value).read_bytes()).decode("ascii")
                record[column] = value
        records.append(record)
    return records


class _server:
    """`plait serve` in a subprocess on a free loopback port; stopped on exit."""

    def __init__(self, bundle: Path, max_batch_size: int, max_wait_ms: float, inference: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.command = [
            sys.executable, "-m", "plait.cli.main", "serve", str(bundle), "--host", "127.0.0.1",
            "--port", str(self.port), "--max-batch-size", str(max_batch_size),
            "--max-wait-ms", str(max_wait_ms), "--inference", inference,
        ]  # fmt: skip

    pid = 0  # the running server's, for the memory reading

    def __enter__(self) -> str:
        env = {**os.environ, "PLAIT_API_KEY": ""}
        self.process = subprocess.Popen(
            self.command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        _server.pid = self.process.pid
        url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited: {self.process.stderr.read().decode() if self.process.stderr else ''}"
                )
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server not ready after 120 s")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


async def _sequential(url: str, records: list[bytes], n: int) -> list[float]:
    latencies = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for i in range(n):
            start = time.perf_counter()
            response = await client.post("/v1/predict", content=records[i % len(records)], headers=JSON)
            latencies.append(time.perf_counter() - start)
            response.raise_for_status()
    return latencies


async def _load(url: str, records: list[bytes], clients: int, seconds: float) -> dict[str, Any]:
    """`clients` keep-alive connections, each sending its next request when the answer is in.
    A minimal HTTP/1.1 client with the requests built beforehand: httpx spent ~2 ms of CPU per
    request, taken from the two cores the server needs."""
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    host, port = url.removeprefix("http://").split(":")
    requests = [
        b"POST /v1/predict HTTP/1.1\r\nHost: %b\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%b" % (host.encode(), len(body), body)
        for body in records
    ]

    async def worker(k: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        i = k
        try:
            while time.perf_counter() < stop:
                start = time.perf_counter()
                writer.write(requests[i % len(requests)])
                status, length = await _response_head(reader)
                await reader.readexactly(length)
                if status != 200:
                    errors += 1
                latencies.append(time.perf_counter() - start)
                i += clients
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(clients)))
    elapsed = time.perf_counter() - start
    return {"latencies": latencies, "errors": errors, "throughput": len(latencies) / elapsed}


async def _response_head(reader: asyncio.StreamReader) -> tuple[int, int]:
    """(status, Content-Length) of the next response; the server always sends a length."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = next(
        int(v) for k, _, v in (line.partition(":") for line in lines[1:]) if k.lower() == "content-length"
    )
    return status, length


def _tree_rss_mib(pid: int) -> float:
    """Resident memory of `pid` and all its descendants (Linux /proc), in MiB."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, StopIteration):
            continue
    return total / 1024


def _quantiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49] * 1000, q[94] * 1000, q[98] * 1000


def _print(name: str, size: int, wait: float, idle: list[float], load: dict[str, Any], clients: int) -> None:
    i50, i95, i99 = _quantiles(idle)
    l50, l95, l99 = _quantiles(load["latencies"])
    print(
        f"\n{name} (max_batch_size {size}, max_wait_ms {wait:g})\n"
        f"  idle, one client: p50 {i50:.1f} ms · p95 {i95:.1f} ms · p99 {i99:.1f} ms "
        f"({len(idle)} requests)\n"
        f"  {clients} clients: {load['throughput']:.1f} records/s · p50 {l50:.1f} ms · "
        f"p95 {l95:.1f} ms · p99 {l99:.1f} ms · {len(load['latencies'])} requests · {load['errors']} errors"
    )


if __name__ == "__main__":
    main()
