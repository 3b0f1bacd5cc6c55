from __future__ import annotations

import numpy as np
import polars as pl
import pytest


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


@pytest.fixture(scope="session")
def space_run(tmp_path_factory: pytest.TempPathFactory):
    """A bundle with a shared space of two vector fields: a contrastive stage, then the task."""
    from plait.config import Config
    from plait.workflow.train import train

    folder = tmp_path_factory.mktemp("space")
    latent_pairs(400).write_parquet(folder / "pairs.parquet")
    cfg = Config.from_dict(
        {
            "data": {"path": "pairs.parquet", "split": {"kind": "random"}},
            "task": {"label": "y"},
            "fields": {"va": "embedding", "vb": "embedding"},
            "model": {"dim": 32},
            "space": {"dim": 16, "weight": 0.5},
            "train": {
                "stages": [{"kind": "contrastive", "epochs": 15}, {"kind": "end_to_end", "epochs": 6}],
                "progress": False,
                "patience": 15,
                "seed": 0,
            },
        },
        base_dir=folder,
    )
    return train(cfg, out=folder / "bundle", report=True)
