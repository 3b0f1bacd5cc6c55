"""`plait predict BUNDLE DATA -o OUT`: predictions for every row of a table.

Its paths are checked before the bundle is loaded or a row is read, so a typo in `-o` fails in
milliseconds, not after predicting; `plait evaluate` reuses those checks."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from rich.status import Status

TRUST_HELP = (
    "Load the bundle even though its content no longer matches its model id (it was edited after "
    "`plait train` wrote it); a warning says so. Damaged or inconsistent bundles still fail."
)


def predict_command(
    bundle: Path = typer.Argument(..., help="A bundle directory written by `plait train`."),
    data: Path = typer.Argument(
        ...,
        help="A table of rows to predict (any subset of fields per row): a file, or a folder of Parquet "
        "parts read in name order as one table.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output file: .parquet, .csv or .jsonl."),
    root: Path | None = typer.Option(None, help="Media root for file paths (default: the table's folder)."),
    progress: bool = typer.Option(True, help="Show a spinner while the rows load and the model runs."),
    impute: str | None = typer.Option(
        None,
        help="embedding: synthesise a row's missing fields of the shared space from the ones it has "
        "(a bundle trained with `space: {impute: true}`); listed in fields_imputed.",
    ),
    examples_from: Path | None = typer.Option(
        None, help="With --impute: a table of real items; name each imputed field's nearest ones."
    ),
    examples: int = typer.Option(3, min=1, help="How many examples per imputed field."),
    zero_shot: str | None = typer.Option(
        None,
        help="Classify this field by the nearest label prompt in the shared space instead of the head "
        "(a text field aligned with it reads the prompts).",
    ),
    labels: str | None = typer.Option(
        None, help="With --zero-shot: comma-separated labels (default: the classes)."
    ),
    prompt: str | None = typer.Option(
        None, help="With --zero-shot: the prompt, with {label} (default: space.prompt)."
    ),
    chunk_rows: int = typer.Option(
        4096, min=1, help="Rows loaded and predicted at a time: memory is bounded by a chunk, not the table."
    ),
    engine: str = typer.Option(
        "local",
        help="local: chunk after chunk in this process. ray: a Ray Data pipeline (Parquet in; decode, "
        "encode and predict on --workers actors; the output is the same, in the same order). Needs "
        "plait[ray].",
    ),
    workers: int = typer.Option(2, min=1, help="With --engine ray: actors predicting at once."),
    ray_address: str | None = typer.Option(
        None,
        help="With --engine ray: the cluster to join (e.g. ray://host:10001); default RAY_ADDRESS, or a "
        "Ray started on this machine for the run.",
    ),
    trust_modified: bool = typer.Option(False, "--trust-modified", help=TRUST_HELP),
) -> None:
    """Predict every row of DATA, streamed chunk by chunk into OUT; the output keeps the row order."""
    from plait.batch_predict import check_engine
    from plait.errors import ConfigError

    check_output_file(out)
    check_inputs(bundle, data, root, parts=zero_shot is None)
    _check_modes(zero_shot, labels, prompt, impute, examples_from)
    try:
        check_engine(engine)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc).removeprefix("--engine: "), param_hint="--engine") from None
    if engine == "local" and (workers != 2 or ray_address is not None):
        raise typer.BadParameter("--workers and --ray-address go with --engine ray", param_hint="--engine")
    if engine == "ray" and (zero_shot is not None or impute is not None):
        raise typer.BadParameter(
            "--engine ray predicts with the model's head; --zero-shot and --impute run with --engine local",
            param_hint="--engine",
        )
    if engine == "ray":
        _predict_ray(bundle, data, out, root, chunk_rows, workers, ray_address, trust_modified, progress)
        return
    if examples_from is not None and not examples_from.is_file():
        raise typer.BadParameter(f"{examples_from} is not a table file", param_hint="--examples-from")
    import polars as pl

    from plait.batch_predict import predict_file
    from plait.data.write import write_table
    from plait.predictor import Predictor  # torch: after the checks

    console = Console()
    start = time.perf_counter()
    with _busy(console, f"loading {bundle}", progress), said_warnings(console):
        predictor = Predictor.load(bundle, trust_modified=trust_modified)
    if zero_shot is not None:
        chosen = None if labels is None else [x.strip() for x in labels.split(",") if x.strip()]
        with _busy(console, f"zero-shot over the rows of {data}", progress):
            answers = predictor.zero_shot(data, field=zero_shot, labels=chosen, prompt=prompt, root=root)
        names = chosen if chosen is not None else list(predictor.trained.task.classes)
        columns: dict[str, list[object]] = {"prediction": [a.label for a in answers]}
        for name in names:
            columns[f"score_{name}"] = [a.scores.get(name) for a in answers]
        write_table(pl.DataFrame(columns), out)
        absent = sum(a.label is None for a in answers)
        console.print(
            f"wrote {len(answers)} zero-shot labels of '{zero_shot}' to {out} ({absent} rows without the "
            f"field, left unlabelled) in {time.perf_counter() - start:.1f} s",
            highlight=False,
        )
        return
    with _busy(console, f"predicting the rows of {data}", progress) as status:
        run = predict_file(
            predictor,
            data,
            out,
            root=root,
            chunk_rows=chunk_rows,
            impute=impute,
            examples_from=examples_from,
            examples=examples,
            say=None if status is None else lambda msg: status.update(f"{msg} of {data}"),
        )
    for line in run.report.lines():
        console.print(line, highlight=False)
    seconds = time.perf_counter() - start
    console.print(
        f"wrote {run.rows} predictions to {out} ({run.degraded} degraded"
        + (f", {run.imputed} with imputed fields" if impute else "")
        + f") in {seconds:.1f} s",
        highlight=False,
    )


def _predict_ray(
    bundle: Path,
    data: Path,
    out: Path,
    root: Path | None,
    chunk_rows: int,
    workers: int,
    address: str | None,
    trust_modified: bool,
    progress: bool,
) -> None:
    from plait.batch_predict_ray import predict_file_ray

    console = Console()
    with _busy(console, f"predicting the rows of {data} on Ray", progress) as status, said_warnings(console):
        run = predict_file_ray(
            bundle,
            data,
            out,
            root=root,
            chunk_rows=chunk_rows,
            workers=workers,
            address=address,
            trust_modified=trust_modified,
            say=None if status is None else lambda msg: status.update(f"{msg} of {data} on Ray"),
        )
    for line in run.report.lines():
        console.print(line, highlight=False)
    console.print(
        f"wrote {run.rows} predictions to {out} ({run.degraded} degraded) in {run.seconds:.1f} s "
        f"on {workers} Ray workers",
        highlight=False,
    )


def _check_modes(
    zero_shot: str | None,
    labels: str | None,
    prompt: str | None,
    impute: str | None,
    examples_from: Path | None,
) -> None:
    """Options that only mean something together, or never together, are refused, not ignored."""
    if zero_shot is None:
        for value, name in ((labels, "--labels"), (prompt, "--prompt")):
            if value is not None:
                raise typer.BadParameter(f"{name} goes with --zero-shot FIELD", param_hint=name)
    elif impute is not None or examples_from is not None:
        raise typer.BadParameter(
            "--zero-shot classifies by prompts, without the model's head: it does not impute; "
            "drop --impute/--examples-from or --zero-shot",
            param_hint="--zero-shot",
        )
    if examples_from is not None and impute is None:
        raise typer.BadParameter("--examples-from goes with --impute embedding", param_hint="--examples-from")


@contextmanager
def said_warnings(console: Console) -> Iterator[None]:
    """A modified bundle loaded with --trust-modified: its warning as one plain line, not a traceback-
    style warning; other warnings pass through as they came."""
    from plait.bundle_checks import BundleModifiedWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        if issubclass(w.category, BundleModifiedWarning):
            console.print(f"warning: {w.message}", highlight=False, markup=False)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


@contextmanager
def _busy(console: Console, what: str, progress: bool) -> Iterator[Status | None]:
    """A spinner showing `what` (the status, to update), or nothing without `progress`."""
    if not progress:
        yield None
        return
    with console.status(what) as status:
        yield status


def check_output_file(out: Path) -> None:
    """`-o` names a file in a format `write_table` writes, and not an existing folder."""
    from plait.data.write import WRITERS

    if out.suffix.lower() not in WRITERS:
        raise typer.BadParameter(
            f"{out}: cannot write predictions as '{out.suffix or '(no extension)'}'; end the file name "
            f"in one of {', '.join(WRITERS)}, e.g. -o {out.with_suffix('.parquet')}",
            param_hint="--out",
        )
    if out.is_dir():
        raise typer.BadParameter(f"{out} is a folder; name a file inside it", param_hint="--out")


def check_inputs(
    bundle: Path, data: Path, root: Path | None, *, bundle_hint: str = "BUNDLE", parts: bool = False
) -> None:
    """The bundle is a folder, DATA a table file with a readable extension (or, with `parts`, a
    folder of Parquet parts), --root a folder."""
    from plait.data.table import SUPPORTED_EXTENSIONS

    check_bundle_dir(bundle, bundle_hint)
    if parts and data.is_dir():
        from plait.data.chunks import table_sources
        from plait.errors import DataError

        try:
            table_sources(data)
        except DataError as exc:
            raise typer.BadParameter(str(exc), param_hint="DATA") from None
    elif data.suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise typer.BadParameter(
            f"{data}: cannot read a table from '{data.suffix or '(no extension)'}'; expected one of "
            f"{', '.join(SUPPORTED_EXTENSIONS)}",
            param_hint="DATA",
        )
    elif not data.is_file():
        what = "is a folder" if data.is_dir() else "does not exist"
        raise typer.BadParameter(f"the table {data} {what}; name a table file", param_hint="DATA")
    if root is not None and not root.is_dir():
        raise typer.BadParameter(
            f"{root} is not a folder; --root names the folder the table's media paths start from",
            param_hint="--root",
        )


def check_bundle_dir(bundle: Path, hint: str = "BUNDLE") -> None:
    if not bundle.is_dir():
        what = "is a file" if bundle.exists() else "does not exist"
        raise typer.BadParameter(
            f"{bundle} {what}; expected a bundle directory written by `plait train` "
            "(the folder holding plait.json)",
            param_hint=hint,
        )
