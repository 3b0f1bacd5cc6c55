"""`plait predict --engine ray`: load → encode → predict as a Ray Data pipeline.

The table (a Parquet file or a folder of Parquet parts) is cut into chunks of `chunk_rows` rows,
each named by (part, first row, rows) and its row number in the whole table; Ray Data hands the
chunks to a pool of actors (`_PredictChunks`, each loading the bundle once), which read their rows
(polars skips the other row groups), load, encode and predict them. The driver writes the chunks
in table order as they come back (holding those that come early), so the output file is the
local engine's, row for row, with the driver holding a few chunks, not the table. Each chunk's
load report comes back with it and is merged in table order; row numbers in the report, and in
the error of a row that cannot load at all, are the table's.

Ray joins the cluster at `address` (or RAY_ADDRESS); otherwise it starts on this machine for the
run with `workers` actors. Every path is resolved before it goes to the workers: on a cluster
they must see the same files. Pretrained fields share the embedding cache (plait.pretrained.cache)
across the workers of a machine (SQLite: keep it on a local disk, not NFS).
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from plait.batch_predict import PredictRun, Say
from plait.data.chunks import DEFAULT_CHUNK_ROWS, table_sources
from plait.data.dataset import LoadReport
from plait.data.write_stream import TableWriter
from plait.errors import ConfigError, DataError, PlaitError

CHUNK = "__plait_chunk"  # which chunk a prediction row belongs to; dropped on writing
REPORT = "__plait_load_report"  # the chunk's load report, pickled, on its first row


@dataclass(frozen=True)
class Chunk:
    """Rows [start, start + rows) of Parquet file `path`: rows [offset, offset + rows) of the table."""

    index: int
    path: str
    start: int
    rows: int
    offset: int


def plan_chunks(sources: list[Path], chunk_rows: int) -> list[Chunk]:
    """The table's chunks, in table order, from the parts' Parquet metadata (nothing is read). A
    part whose columns differ from the first part's is refused; empty parts are skipped."""
    import pyarrow.parquet as pq

    chunks: list[Chunk] = []
    offset = 0
    first = None
    for source in sources:
        if source.suffix.lower() not in (".parquet", ".pq"):
            raise DataError(
                f"{source}: --engine ray reads Parquet (a file or a folder of parts); convert the table "
                "with polars (pl.read_csv(...).write_parquet(...)) or predict it with --engine local"
            )
        try:
            meta = pq.read_metadata(source)
        except (OSError, ValueError) as exc:
            raise DataError(f"table {source}: not a readable Parquet file ({exc})") from None
        names = meta.schema.to_arrow_schema().names
        if first is None:
            first = names
        elif names != first:
            raise DataError(
                f"table {source}: its columns {names} are not those of {sources[0]} ({first}); "
                "the parts of one table must have the same columns in the same order"
            )
        for start in range(0, meta.num_rows, chunk_rows):
            rows = min(chunk_rows, meta.num_rows - start)
            chunks.append(Chunk(len(chunks), str(source.resolve()), start, rows, offset))
            offset += rows
    if not chunks:
        raise DataError(f"table {sources[0]} has no rows; it needs at least one row per sample")
    return chunks


def predict_file_ray(
    bundle: Path,
    data: Path,
    out: Path,
    *,
    root: Path | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    calibrated: bool = True,
    workers: int = 2,
    address: str | None = None,
    trust_modified: bool = False,
    say: Say | None = None,
) -> PredictRun:
    """Predict every row of `data` (a Parquet file or a folder of Parquet parts) with the bundle at
    `bundle`, on `workers` Ray actors, into `out`, in `data`'s row order."""
    ray = _ray()
    if workers < 1:
        raise ConfigError(f"--workers: expected at least 1 Ray worker, got {workers}")
    chunks = plan_chunks(table_sources(data), chunk_rows)
    from plait.predictor import Predictor

    # here first: a bundle that cannot load (or cannot predict) fails with its own message, at once
    Predictor.load(bundle, trust_modified=trust_modified).trained.task.require_prediction("predict")
    tell: Say = say or (lambda _msg: None)
    start = time.perf_counter()
    media_root = (root if root is not None else (data if data.is_dir() else data.parent)).resolve()
    started_here = not ray.is_initialized()
    if started_here:
        joining = bool(address or os.environ.get("RAY_ADDRESS"))
        ray.init(
            address=address,
            num_cpus=None if joining else workers,  # a cluster has the CPUs it has
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    try:
        cpus = float(ray.cluster_resources().get("CPU", 0))
        if cpus < workers:
            raise ConfigError(
                f"--workers {workers}: the Ray cluster has {cpus:g} CPUs, and each worker takes one; "
                f"ask for at most {int(cpus)} workers, or add nodes"
            )
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        if hasattr(context, "raise_original_map_exception"):  # a worker's own error, not Ray's wrapper
            context.raise_original_map_exception = True
        dataset = ray.data.from_items(
            [c.__dict__ for c in chunks], override_num_blocks=len(chunks)
        ).map_batches(
            _PredictChunks,
            fn_constructor_kwargs={
                "bundle": str(Path(bundle).resolve()),
                "root": str(media_root),
                "calibrated": calibrated,
                "trust_modified": trust_modified,
            },
            batch_size=1,  # one chunk per call
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1,
        )
        report = LoadReport(rows=0, fields=())
        degraded = 0
        early: dict[int, list[pl.DataFrame]] = {}  # chunks (or their parts) back before their turn
        turn = 0
        with TableWriter(out) as writer:
            for block in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
                frame = pl.from_arrow(block)
                assert isinstance(frame, pl.DataFrame)  # a table gives a frame
                for part in frame.partition_by(CHUNK, maintain_order=True):
                    early.setdefault(int(part[CHUNK][0]), []).append(part)
                while turn < len(chunks) and sum(p.height for p in early.get(turn, [])) == chunks[turn].rows:
                    done = pl.concat(early.pop(turn))
                    for saved in done[REPORT].drop_nulls():  # pickled by our own workers
                        report = report.merged(pickle.loads(saved))
                    done = done.drop(CHUNK, REPORT)
                    writer.write(done)
                    degraded += int(done["degraded"].sum())
                    turn += 1
                    tell(f"predicted {report.rows} rows")
            if turn < len(chunks):  # Ray ended without every chunk: never write a partial table
                raise DataError(f"Ray returned {turn} of {len(chunks)} chunks of {data}; nothing was written")
    except Exception as exc:
        cause = _plait_cause(exc)
        if cause is not None and cause is not exc:
            raise type(cause)(str(cause)) from None
        raise
    finally:
        if started_here:
            ray.shutdown()
    return PredictRun(out, report.rows, degraded, 0, report, time.perf_counter() - start)


class _PredictChunks:
    """A Ray actor: the bundle loaded once, then chunk after chunk read, loaded, encoded and predicted."""

    def __init__(self, bundle: str, root: str, calibrated: bool, trust_modified: bool) -> None:
        from plait.predictor import Predictor

        self.predictor = Predictor.load(bundle, trust_modified=trust_modified)
        self.root = Path(root)
        self.calibrated = calibrated

    def __call__(self, batch: Any) -> Any:
        from plait.data.dataset import load_table
        from plait.predictor import predictions_table

        (item,) = batch.to_pylist()
        chunk = Chunk(**item)
        rows = pl.scan_parquet(chunk.path).slice(chunk.start, chunk.rows).collect()
        trained = self.predictor.trained
        tensors, report = load_table(rows, trained.modalities, self.root, row_offset=chunk.offset)
        answers = self.predictor.answer_tensors(tensors, calibrated=self.calibrated)
        table = predictions_table(answers, trained.task.classes)
        notes = [pickle.dumps(report)] + [None] * (table.height - 1)
        return table.with_columns(
            pl.lit(chunk.index, dtype=pl.Int64).alias(CHUNK), pl.Series(REPORT, notes, dtype=pl.Binary)
        ).to_arrow()


def _plait_cause(exc: BaseException) -> PlaitError | None:
    """The plait error (a row that cannot load, a bad bundle) inside Ray's wrappers, if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, PlaitError):
            return seen
        seen = getattr(seen, "cause", None) or seen.__cause__
    return None


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigError(
            "--engine ray needs Ray Data: pip install 'plait[ray]' (or use --engine local)"
        ) from None
    return ray
