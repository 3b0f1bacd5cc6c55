"""`plait embed BUNDLE DATA -o OUT.parquet`: every row's fields in the bundle's shared space, streamed
chunk by chunk into Parquet (one fixed-size float32 list column per field; null where absent)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from plait.cli.predict import TRUST_HELP, check_inputs, said_warnings


def embed_command(
    bundle: Path = typer.Argument(..., help="A bundle trained with a shared space (`space:` in its config)."),
    data: Path = typer.Argument(..., help="A table of rows to embed (CSV, Parquet, JSONL)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output Parquet file."),
    field: list[str] | None = typer.Option(
        None, "--field", "-f", help="A field to embed; repeatable (default: every field in the space)."
    ),
    keep: list[str] | None = typer.Option(
        None, "--keep", help="A column of DATA to copy into the output (an id); repeatable."
    ),
    root: Path | None = typer.Option(None, help="Media root for file paths (default: the table's folder)."),
    chunk_rows: int = typer.Option(4096, min=1, help="Rows loaded and embedded at a time (bounds memory)."),
    progress: bool = typer.Option(True, help="A line per chunk embedded."),
    trust_modified: bool = typer.Option(False, "--trust-modified", help=TRUST_HELP),
) -> None:
    """Embed every row of DATA into the shared space and write OUT (Parquet, in DATA's row order)."""
    if out.suffix.lower() not in (".parquet", ".pq"):
        raise typer.BadParameter(
            f"{out}: embeddings are written as Parquet; end the name in .parquet", param_hint="--out"
        )
    if out.is_dir():
        raise typer.BadParameter(f"{out} is a folder; name a file inside it", param_hint="--out")
    check_inputs(bundle, data, root)
    from plait.bundle import load_bundle
    from plait.retrieval.embed_file import embed_file
    from plait.retrieval.embeddings import fields_to_embed

    console = Console()
    with said_warnings(console):
        trained = load_bundle(bundle, trust_modified=trust_modified)
    fields = fields_to_embed(trained, tuple(field or ()))  # before any row is read
    say = (lambda msg: console.print(msg, highlight=False)) if progress else None
    run = embed_file(
        trained, data, out, fields=fields, keep=tuple(keep or ()), root=root, chunk_rows=chunk_rows, say=say
    )
    absent = ", ".join(f"{f} absent in {n}" for f, n in run.absent.items() if n)
    console.print(
        f"wrote {run.rows} rows × {len(run.fields)} fields ({', '.join(run.fields)}) to {run.path} "
        f"in {run.seconds:.1f} s" + (f"; {absent}" if absent else ""),
        highlight=False,
    )
