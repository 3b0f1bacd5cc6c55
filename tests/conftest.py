from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

# The suite shares two cores with whatever else runs; one thread per test process avoids
# oversubscription (OpenMP spin-waits make an overloaded 2-thread run 10× slower).
torch.set_num_threads(1)
os.environ.setdefault("PYTHONHASHSEED", "0")
# Pretrained encoders' embedding cache: one per test session, never the user's ~/.cache/plait.
if "PLAIT_CACHE_DIR" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["PLAIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="plait-test-cache-")
    atexit.register(shutil.rmtree, os.environ["PLAIT_CACHE_DIR"], ignore_errors=True)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def pumps_small(tmp_path_factory: pytest.TempPathFactory):
    """A tiny generated pumps data set (every modality, a few corrupt files), made once per session."""
    from plait.datasets.pumps import generate_pumps

    return generate_pumps(tmp_path_factory.mktemp("pumps"), n=150, seed=3, corrupt_fraction=0.04)


@pytest.fixture(scope="session")
def pumps_bundle(pumps_small, tmp_path_factory: pytest.TempPathFactory):
    """A bundle trained for a few epochs on `pumps_small` (shared: training is the slow part)."""
    from plait.demo import demo_config
    from plait.workflow.train import train

    out = tmp_path_factory.mktemp("bundle")
    cfg = demo_config(
        pumps_small.table_path, pumps_small.fields, fusion="gated", seed=0, base_dir=pumps_small.root
    )
    cfg = cfg.with_overrides(train={"epochs": 4, "progress": False, "patience": 4})
    return train(cfg, out=out / "bundle")


@pytest.fixture(scope="session")
def three_class_table():
    """`make(n, seed)`: a 3-class table with an informative 6-d vector `vec`, a noisy numeric `x`
    and the label `y` — small enough to train on in seconds."""
    import numpy as np
    import polars as pl

    def make(n: int, seed: int = 0) -> pl.DataFrame:
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 3, n)
        centres = rng.normal(size=(3, 6))
        return pl.DataFrame(
            {
                "vec": [list(v) for v in centres[y] + rng.normal(size=(n, 6))],
                "x": y + rng.normal(size=n),
                "y": [f"c{v}" for v in y],
            }
        )

    return make


# --- a shared space: two noisy views of one latent (tests/retrieval, tests/serving) -----------
def latent_pairs(n: int, seed: int = 0) -> pl.DataFrame:
    """Two fields that are noisy linear views of one latent (so a shared space exists to find), a
    few rows with one view missing, and a 3-class label from the latent."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4))
    a = z @ rng.normal(size=(4, 8)) + 0.1 * rng.normal(size=(n, 8))
    b = np.tanh(z @ rng.normal(size=(4, 6))) + 0.1 * rng.normal(size=(n, 6))
    y = np.digitize(z[:, 0], [-0.5, 0.5])
    va = [list(v) for v in a]
    vb = [list(v) for v in b]
    for i in range(0, n, 17):
        va[i] = None  # the view is absent in these rows
    return pl.DataFrame({"id": [f"r{i}" for i in range(n)], "va": va, "vb": vb, "y": [f"c{v}" for v in y]})


def _pairs_config(folder: Path, space: dict):
    """Two vector fields with a shared space: a contrastive stage, then the task."""
    from plait.config import Config

    return Config.from_dict(
        {
            "data": {"path": "pairs.parquet", "split": {"kind": "random"}},
            "task": {"label": "y"},
            "fields": {"va": "embedding", "vb": "embedding"},
            "model": {"dim": 32},
            "space": space,
            "train": {
                "stages": [{"kind": "contrastive", "epochs": 15}, {"kind": "end_to_end", "epochs": 6}],
                "progress": False,
                "patience": 15,
                "seed": 0,
            },
        },
        base_dir=folder,
    )


@pytest.fixture(scope="session")
def space_run(tmp_path_factory: pytest.TempPathFactory):
    """A bundle with a shared space of two vector fields: a contrastive stage, then the task."""
    from plait.workflow.train import train

    folder = tmp_path_factory.mktemp("space")
    latent_pairs(400).write_parquet(folder / "pairs.parquet")
    return train(_pairs_config(folder, {"dim": 16, "weight": 0.5}), out=folder / "bundle", report=True)


@pytest.fixture(scope="session")
def impute_run(tmp_path_factory: pytest.TempPathFactory):
    """The same two views with an embedding imputer (`space.impute: true`)."""
    from plait.workflow.train import train

    folder = tmp_path_factory.mktemp("impute")
    latent_pairs(400, seed=1).write_parquet(folder / "pairs.parquet")
    return train(_pairs_config(folder, {"dim": 16, "impute": True}), out=folder / "bundle")


@pytest.fixture(scope="session")
def pumps_onnx(pumps_bundle, tmp_path_factory: pytest.TempPathFactory):
    """`pumps_bundle` exported to ONNX with its int8 graph (tests/export, tests/serving)."""
    from plait.export import export_onnx

    return export_onnx(pumps_bundle.bundle_path, tmp_path_factory.mktemp("onnx") / "bundle.onnx", int8=True)
