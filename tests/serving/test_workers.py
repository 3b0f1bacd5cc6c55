"""`plait serve --workers 2`, for real (uvicorn's worker processes on a loopback port): every scrape
of /metrics counts the requests of both workers, whichever worker answers it."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from live import live_server

START_S = 120.0  # two workers import torch and load the bundle
REQUESTS = re.compile(r'^plait_requests_total\{endpoint="/v1/predict",status="200"\} (\S+)$', re.MULTILINE)


def predicted(url: str) -> int:
    """One prediction on a connection of its own (so either worker may accept it)."""
    with httpx.Client(base_url=url, timeout=30) as client:
        return client.post("/v1/predict", json={"note": "hot casing, grinding noise"}).status_code


def test_metrics_add_up_every_worker(pumps_bundle: Any, tmp_path: Path) -> None:
    shared = tmp_path / "metrics"
    shared.mkdir()
    options = ("--workers", "2", "--inference", "thread")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(shared)}
    # /readyz answered by one worker: give the other its warm-up too
    with live_server(pumps_bundle.bundle_path, *options, env=env, start_s=START_S, settle_s=2.0) as (url, _):
        sent = 0
        with ThreadPoolExecutor(8) as pool:
            for _ in range(20):  # bursts of new connections until both workers have answered some
                codes = list(pool.map(lambda _: predicted(url), range(8)))
                assert codes == [200] * 8
                sent += 8
                if len(_pids_that_counted(shared)) >= 2:
                    break
        assert len(_pids_that_counted(shared)) >= 2, "one worker took every connection; cannot check the sum"
        for _ in range(6):  # each scrape may land on either worker
            text = httpx.get(f"{url}/metrics", timeout=30).text
            found = REQUESTS.search(text)
            assert found is not None, text[:2000]
            assert float(found.group(1)) == sent
    assert shared.is_dir()  # a directory the user chose is kept


def _pids_that_counted(shared: Path) -> set[str]:
    """The worker processes whose own files count at least one /v1/predict request."""
    from prometheus_client.mmap_dict import MmapedDict

    pids = set()
    for path in shared.glob("counter_*.db"):
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
            if "plait_requests" in key and "/v1/predict" in key and value > 0:
                pids.add(path.stem.split("_")[-1])
    return pids
