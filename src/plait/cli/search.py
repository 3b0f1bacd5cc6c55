"""`plait search BUNDLE --index DATA --from FIELD --to FIELD --query VALUE`: the items of one field
nearest, in the shared space, to a value of another ("which recordings sound like this thermal
frame"). The index of DATA's --to items is built on first use and saved beside the bundle
(BUNDLE.index/); it is rebuilt when the bundle or DATA's content changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from plait.cli.predict import TRUST_HELP, check_inputs, said_warnings

if TYPE_CHECKING:
    from plait.retrieval.search import SearchResult


def search_command(
    bundle: Path = typer.Argument(..., help="A bundle trained with a shared space (`space:` in its config)."),
    index: Path = typer.Option(..., "--index", help="The table whose --to items are searched."),
    source: str = typer.Option(..., "--from", help="The query's field."),
    target: str = typer.Option(..., "--to", help="The field of the items returned."),
    query: str | None = typer.Option(
        None, help="The query: a value of --from as a table holds it (a text, a media file path)."
    ),
    query_row: int | None = typer.Option(None, help="Use --from of this row (0-based) of the --index table."),
    k: int = typer.Option(10, "--k", min=1, help="How many items to return."),
    root: Path | None = typer.Option(None, help="Media root of the --index table (default: its folder)."),
    rebuild: bool = typer.Option(False, help="Build the saved index again even if it is up to date."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Also write the results: .json, .csv or .parquet."
    ),
    trust_modified: bool = typer.Option(False, "--trust-modified", help=TRUST_HELP),
) -> None:
    """Search DATA's --to items for those nearest to a --from query."""
    if (query is None) == (query_row is None):
        raise typer.BadParameter("give the query as --query VALUE or as --query-row N (one of the two)")
    check_inputs(bundle, index, root)
    if out is not None and out.suffix.lower() not in (".json", ".csv", ".parquet"):
        raise typer.BadParameter(f"{out}: write the results as .json, .csv or .parquet", param_hint="--out")
    from plait.bundle import load_bundle
    from plait.retrieval.embeddings import check_space_field
    from plait.retrieval.search import open_index, query_record, row_record, search

    console = Console()
    with said_warnings(console):
        trained = load_bundle(bundle, trust_modified=trust_modified)
    check_space_field(trained, source, "--from")
    check_space_field(trained, target, "--to")
    if query is not None:
        record, query_root = query_record(trained, source, query), Path.cwd()
    else:
        assert query_row is not None
        record, query_root = row_record(index, query_row), root or index.parent
    say = lambda msg: console.print(msg, highlight=False)  # noqa: E731
    items = open_index(trained, bundle, index, target, root=root, rebuild=rebuild, say=say)
    result = search(trained, items, source, record, root=query_root, k=k)
    what = "built" if result.built else "read"
    console.print(
        f"{result.index.items} {target} items of {index} ({what} {result.folder}, "
        f"{'exact' if result.index.exact else 'HNSW'} search); nearest to the {source} query:",
        highlight=False,
    )
    for hit in result.hits:
        shown = ", ".join(f"{c}={v}" for c, v in hit.values.items())
        console.print(
            f"{hit.rank:>3}. row {hit.row}  score {hit.score:.4f}  {shown}", highlight=False, markup=False
        )
    if out is not None:
        _write(out, result)


def _write(out: Path, result: SearchResult) -> None:
    import polars as pl

    from plait.data.write import write_table

    rows = [{"rank": h.rank, "row": h.row, "score": h.score, **h.values} for h in result.hits]
    if out.suffix.lower() == ".json":
        partial = out.with_name(f".{out.name}.partial")
        partial.write_text(json.dumps(rows, indent=2, default=str) + "\n")
        partial.replace(out)
    else:
        write_table(pl.DataFrame(rows), out)
