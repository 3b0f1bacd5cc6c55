"""`plait predict` over a table file (or a folder of Parquet parts), streamed: the table is read
chunk by chunk (plait.data.chunks), each chunk is loaded, predicted and appended to the output
(plait.data.write_stream), so memory is bounded by a chunk, not by the table. Row numbers in the
load report are the table's. `ENGINES` names where the chunks are predicted: here, one chunk after
another (`local`), or spread over a Ray cluster's workers (`ray`, plait.batch_predict_ray)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from plait.data.chunks import DEFAULT_CHUNK_ROWS, source_chunks, table_sources
from plait.data.dataset import LoadReport, load_table
from plait.data.write_stream import TableWriter
from plait.predictor import Predictor, predictions_table
from plait.retrieval.examples import check_impute

Say = Callable[[str], None]


@dataclass(frozen=True)
class PredictRun:
    path: Path
    rows: int
    degraded: int  # predictions with a field missing or imputed
    imputed: int  # predictions with an imputed field
    report: LoadReport  # every row's loading, merged over the chunks
    seconds: float


def predict_file(
    predictor: Predictor,
    data: Path,
    out: Path,
    *,
    root: Path | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    calibrated: bool = True,
    impute: str | None = None,
    examples_from: Path | None = None,
    examples: int = 3,
    say: Say | None = None,
) -> PredictRun:
    """Predict every row of the table `data` (a file, or a folder of Parquet parts; media under
    `root`, default its folder) into `out` (.parquet, .csv or .jsonl), in `data`'s row order."""
    trained = predictor.trained
    trained.task.require_prediction("predict")
    check_impute(trained, impute, examples_from)  # before any row is read
    tell: Say = say or (lambda _msg: None)
    start = time.perf_counter()
    media_root = root if root is not None else (data if data.is_dir() else data.parent)
    report = LoadReport(rows=0, fields=())
    degraded = imputed = 0
    with TableWriter(out) as writer:
        for chunk in source_chunks(table_sources(data), chunk_rows):
            tensors, part = load_table(chunk, trained.modalities, media_root, row_offset=report.rows)
            answers = predictor.answer_tensors(
                tensors, calibrated=calibrated, impute=impute, examples_from=examples_from, examples=examples
            )
            writer.write(predictions_table(answers, trained.task.classes, examples=examples_from is not None))
            report = report.merged(part)
            degraded += sum(a.degraded for a in answers)
            imputed += sum(bool(a.fields_imputed) for a in answers)
            tell(f"predicted {report.rows} rows")
    return PredictRun(out, report.rows, degraded, imputed, report, time.perf_counter() - start)


ENGINES = ("local", "ray")  # where `plait predict` runs the chunks (--engine)


def check_engine(name: str) -> str:
    """`name` if it is an engine, else a ConfigError with "did you mean"."""
    if name not in ENGINES:
        from plait.errors import ConfigError
        from plait.registry import unknown_name_message

        raise ConfigError(f"--engine: {unknown_name_message('engine', name, list(ENGINES))}")
    return name
