"""`plait demo`: generate the pumps data — raw timestamped streams by default, or the ready sample
table — align, train the default fusion, evaluate every field alone vs all fields on the held-out
split, write DIR/bundle/ and DIR/demo.json."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plait.align.report import AlignmentReport
from plait.config import Config
from plait.datasets.pumps import DEMO_MODEL, DEMO_TRAIN, LABEL
from plait.errors import ConfigError
from plait.registry import unknown_name_message
from plait.task import CLASSIFICATION

if TYPE_CHECKING:
    from plait.evaluation.result import EvaluationReport

SOURCES = ("streams", "table")


@dataclass(frozen=True)
class DemoResult:
    fused_accuracy: float
    single_field_accuracy: dict[str, float]
    seconds: float
    bundle_path: Path
    config_path: Path
    load_lines: tuple[str, ...]
    metrics: dict[str, Any]
    alignment: AlignmentReport | None = None
    report: EvaluationReport | None = None  # the bundle's evaluation report (report.html's data)

    @property
    def report_path(self) -> Path:
        return self.bundle_path / "report.html"

    def to_json(self) -> dict[str, Any]:
        return {
            "fused_accuracy": self.fused_accuracy,
            "single_field_accuracy": self.single_field_accuracy,
            "seconds": round(self.seconds, 2),
            "bundle": str(self.bundle_path),
            "metrics": self.metrics,
            "report": str(self.report_path),
            **({} if self.alignment is None else {"alignment": self.alignment.to_json()}),
        }


def demo_config(
    table_path: Path, fields: dict[str, Any], *, fusion: str, seed: int, base_dir: Path
) -> Config:
    return Config.from_dict(
        {
            # one inspection per pump, drawn independently: rows share nothing, so a random split is honest
            "data": {"path": str(table_path.relative_to(base_dir)), "split": "random"},
            "task": {"label": LABEL, "type": CLASSIFICATION},
            "fields": fields,
            "model": {"fusion": fusion, **DEMO_MODEL},
            "train": {**DEMO_TRAIN, "seed": seed},
            "output": "bundle",
        },
        base_dir=base_dir,
    )


def run_demo(
    out: Path | str,
    *,
    rows: int = 1800,
    seed: int = 0,
    fusion: str = "gated",
    source: str = "streams",
    progress: bool = True,
    say: Callable[[str], None] | None = None,
) -> DemoResult:
    from plait.workflow.train import train

    if source not in SOURCES:
        raise ConfigError(f"demo source: {unknown_name_message('source', source, list(SOURCES))}")
    tell = say or (lambda _msg: None)
    start = time.perf_counter()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    alignment = None
    if source == "streams":
        config, alignment = _from_streams(
            out_dir, rows=rows, seed=seed, fusion=fusion, progress=progress, tell=tell
        )
        config_path = config.base_dir / "plait.yaml"
    else:
        config = _from_table(out_dir, rows=rows, seed=seed, fusion=fusion, progress=progress, tell=tell)
        config_path = out_dir / "plait.yaml"
    config_path.write_text(config.to_yaml())
    result = train(config, out=out_dir / "bundle", say=tell, report=True)
    metrics = result.trained.metrics
    demo = DemoResult(
        fused_accuracy=float(metrics["metrics"]["accuracy"]),
        single_field_accuracy={f: float(m["accuracy"]) for f, m in metrics["single_field"].items()},
        seconds=time.perf_counter() - start,
        bundle_path=out_dir / "bundle",
        config_path=config_path,
        load_lines=tuple(result.load_report.lines()),
        metrics=metrics["metrics"],
        alignment=alignment,
        report=result.report,
    )
    (out_dir / "demo.json").write_text(json.dumps(demo.to_json(), indent=2) + "\n")
    return demo


def _from_table(
    out_dir: Path, *, rows: int, seed: int, fusion: str, progress: bool, tell: Callable[[str], None]
) -> Config:
    from plait.datasets.pumps import generate_pumps

    start = time.perf_counter()
    dataset = generate_pumps(out_dir / "data", n=rows, seed=seed)
    tell(f"generated {rows} pump inspections in {time.perf_counter() - start:.1f} s → {dataset.table_path}")
    config = demo_config(dataset.table_path, dict(dataset.fields), fusion=fusion, seed=seed, base_dir=out_dir)
    return config.with_overrides(train={"progress": progress})


def _from_streams(
    out_dir: Path, *, rows: int, seed: int, fusion: str, progress: bool, tell: Callable[[str], None]
) -> tuple[Config, AlignmentReport]:
    from plait.align.align import align
    from plait.datasets.pumps_streams import generate_pumps_streams

    start = time.perf_counter()
    streams = generate_pumps_streams(out_dir / "data", n=rows, seed=seed)
    seconds = time.perf_counter() - start
    tell(f"generated raw streams for {rows} pump inspections in {seconds:.1f} s → {streams.root}")
    config = Config.from_dict(streams.config, base_dir=streams.root).with_overrides(
        model={"fusion": fusion}, train={"seed": seed, "progress": progress}
    )
    assert config.streams is not None  # the generator writes a streams section
    start = time.perf_counter()
    aligned = align(config.streams, config.base_dir)
    seconds = time.perf_counter() - start
    tell(f"aligned {aligned.report.anchors} anchors in {seconds:.1f} s → {aligned.table_path}")
    return config, aligned.report
