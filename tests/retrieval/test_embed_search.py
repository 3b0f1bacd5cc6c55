"""Embeddings (`Predictor.embed`, `plait embed`, streamed) and search over a saved index
(`plait search`): the same vectors by every route, absent rows never given a vector, the index
built once and rebuilt when the table changes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from plait.cli.main import app
from plait.data.chunks import table_chunks
from plait.errors import ConfigError, DataError
from plait.predictor import Predictor
from plait.retrieval.embed_file import embed_file
from plait.retrieval.search import open_index, row_record, search

runner = CliRunner()


@pytest.fixture(scope="module")
def table(space_run, tmp_path_factory):
    folder = tmp_path_factory.mktemp("embed")
    df = pl.read_parquet(space_run.bundle_path.parent / "pairs.parquet")
    path = folder / "pairs.parquet"
    df.write_parquet(path)
    return path


def test_predictor_embed_gives_unit_vectors_and_nan_where_absent(space_run, table) -> None:
    predictor = Predictor.load(space_run.bundle_path)
    e = predictor.embed(table, field="va")
    df = pl.read_parquet(table)
    assert e.vectors.shape == (df.height, 16) and e.field == "va"
    absent = df.get_column("va").is_null().to_numpy()
    assert absent.any()
    assert (e.present == ~absent).all()
    assert np.isnan(e.vectors[absent]).all()
    assert np.allclose(np.linalg.norm(e.vectors[~absent], axis=1), 1.0, atol=1e-5)
    records = df.slice(0, 3).to_dicts()
    again = predictor.embed(records, field="va")
    assert np.allclose(again.vectors[again.present], e.vectors[:3][e.present[:3]], atol=1e-6)
    assert predictor.embed([], field="vb").vectors.shape == (0, 16)
    with pytest.raises(
        ConfigError, match=r"field 'vbb' is not in the model's shared space; did you mean 'vb'"
    ):
        predictor.embed(records, field="vbb")


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_streamed_embeddings_equal_one_pass(space_run, table, tmp_path, suffix) -> None:
    df = pl.read_parquet(table)
    source = tmp_path / f"in{suffix}"
    if suffix == ".csv":  # CSV holds no lists: a vector field reads a JSON text
        df.with_columns(
            pl.col("va", "vb").map_elements(lambda v: json.dumps(list(v)), return_dtype=pl.String)
        ).write_csv(source)
    elif suffix == ".jsonl":
        df.write_ndjson(source)
    else:
        df.write_parquet(source)
    chunks = [c.height for c in table_chunks(source, 64)]
    assert sum(chunks) == df.height and max(chunks) <= 64
    trained = Predictor.load(space_run.bundle_path).trained
    small = embed_file(trained, source, tmp_path / "small.parquet", keep=["id"], chunk_rows=37)
    whole = embed_file(trained, source, tmp_path / "whole.parquet", keep=["id"], chunk_rows=100_000)
    a, b = pl.read_parquet(small.path), pl.read_parquet(whole.path)
    assert a.get_column("row").to_list() == list(range(df.height))
    assert a.get_column("id").to_list() == df.get_column("id").to_list()
    assert a.get_column("va").null_count() == small.absent["va"] == df.get_column("va").null_count()
    va_a = np.array(a.get_column("va").drop_nulls().to_list())
    va_b = np.array(b.get_column("va").drop_nulls().to_list())
    assert np.allclose(va_a, va_b, atol=1e-5)


def test_embed_file_refuses_non_parquet_and_unknown_keep(space_run, table, tmp_path) -> None:
    trained = Predictor.load(space_run.bundle_path).trained
    with pytest.raises(DataError, match=r"end the file name in \.parquet"):
        embed_file(trained, table, tmp_path / "out.csv")
    with pytest.raises(DataError, match=r"--keep idd: no such column.*did you mean 'id'"):
        embed_file(trained, table, tmp_path / "out.parquet", keep=["idd"])
    assert not (tmp_path / "out.parquet").exists()


def test_search_finds_a_row_itself_first_and_reuses_the_index(space_run, table, tmp_path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(space_run.bundle_path, bundle)
    trained = Predictor.load(bundle).trained
    index = open_index(trained, bundle, table, "vb")
    assert index.built and index.folder is not None and index.folder.parent.name == "bundle.index"
    assert index.meta.items == pl.read_parquet(table).height and index.meta.exact
    result = search(trained, index, "vb", row_record(table, 5), root=table.parent, k=3)
    assert result.hits[0].row == 5 and result.hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert [h.rank for h in result.hits] == [1, 2, 3]
    assert result.hits[0].score >= result.hits[1].score >= result.hits[2].score
    # across fields: row 5's va finds its own vb near the top (the space was trained for it)
    across = search(trained, index, "va", row_record(table, 5), root=table.parent, k=10)
    assert 5 in [h.row for h in across.hits]
    assert not open_index(trained, bundle, table, "vb").built  # read from disk, not rebuilt
    changed = tmp_path / "changed.parquet"
    pl.read_parquet(table).slice(0, 50).write_parquet(changed)
    fresh = open_index(trained, bundle, changed, "vb")
    assert fresh.built and fresh.meta.items == 50
    in_memory = open_index(trained, None, changed, "vb")
    assert (
        in_memory.folder is None
        and in_memory.nearest(in_memory.vectors.index.get(5)[None, :], 1)[0][0].row == 5
    )


def test_cli_embed_and_search(space_run, table, tmp_path) -> None:
    out = tmp_path / "emb.parquet"
    result = runner.invoke(
        app,
        ["embed", str(space_run.bundle_path), str(table), "-o", str(out), "--field", "vb", "--keep", "id"],
    )
    assert result.exit_code == 0, result.output
    assert "wrote 400 rows × 1 fields (vb)" in result.output
    assert pl.read_parquet(out).columns == ["row", "id", "vb"]
    hits = tmp_path / "hits.json"
    result = runner.invoke(
        app,
        [
            "search",
            str(space_run.bundle_path),
            "--index",
            str(table),
            "--from",
            "va",
            "--to",
            "vb",
            "--query-row",
            "7",
            "--k",
            "4",
            "-o",
            str(hits),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "nearest to the va query" in result.output
    rows = json.loads(hits.read_text())
    assert [r["rank"] for r in rows] == [1, 2, 3, 4] and "vb" in rows[0]
    bad = runner.invoke(
        app,
        [
            "search",
            str(space_run.bundle_path),
            "--index",
            str(table),
            "--from",
            "va",
            "--to",
            "vbb",
            "--query-row",
            "1",
        ],
    )
    assert bad.exit_code != 0 and "did you mean 'vb'" in str(bad.exception) + bad.output
    neither = runner.invoke(
        app, ["search", str(space_run.bundle_path), "--index", str(table), "--from", "va", "--to", "vb"]
    )
    assert neither.exit_code != 0 and "--query VALUE or as --query-row N" in neither.output


def test_a_large_index_is_an_hnsw_graph_that_still_finds_the_row_itself(space_run, table, tmp_path) -> None:
    trained = Predictor.load(space_run.bundle_path).trained
    graph = open_index(trained, tmp_path / "bundle", table, "vb", exact_below=10)  # as if large
    assert not graph.meta.exact and graph.meta.items == pl.read_parquet(table).height
    reread = open_index(trained, tmp_path / "bundle", table, "vb", exact_below=10)
    assert not reread.built and not reread.meta.exact  # the saved index keeps its kind
    found = [
        search(trained, reread, "vb", row_record(table, r), root=table.parent, k=1).hits[0].row
        for r in range(20)
    ]
    assert sum(f == r for r, f in enumerate(found)) >= 19  # approximate, and near-exact at this size


def test_a_damaged_index_is_built_again_and_the_root_is_part_of_its_key(space_run, table, tmp_path) -> None:
    trained = Predictor.load(space_run.bundle_path).trained
    first = open_index(trained, tmp_path / "bundle", table, "vb")
    assert first.folder is not None
    (first.folder / "index.usearch").write_bytes(b"not an index")
    again = open_index(trained, tmp_path / "bundle", table, "vb")
    assert again.built and again.folder == first.folder and again.meta.items == first.meta.items
    elsewhere = open_index(trained, tmp_path / "bundle", table, "vb", root=tmp_path)
    assert elsewhere.folder != first.folder  # media under another root: another index
    leftovers = [p.name for p in first.folder.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # no temporary folder left behind


def test_an_interrupted_embed_leaves_no_file(space_run, table, tmp_path, monkeypatch) -> None:
    import plait.retrieval.embed_file as embed_module

    trained = Predictor.load(space_run.bundle_path).trained
    calls = {"n": 0}
    real = embed_module.embed_frame

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(embed_module, "embed_frame", failing)
    with pytest.raises(KeyboardInterrupt):
        embed_file(trained, table, tmp_path / "out.parquet", chunk_rows=100)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DataError, match=r"--keep va: the output has a column 'va' of its own"):
        embed_file(trained, table, tmp_path / "out.parquet", keep=["va"])


def test_cli_refuses_options_that_would_be_ignored(space_run, table, tmp_path) -> None:
    out = str(tmp_path / "p.csv")
    bundle = str(space_run.bundle_path)
    for extra, hint in (
        (["--labels", "a,b"], "--labels goes with --zero-shot"),
        (["--examples-from", str(table)], "--examples-from goes with --impute"),
        (["--zero-shot", "va", "--impute", "embedding"], "does not impute"),
    ):
        result = runner.invoke(app, ["predict", bundle, str(table), "-o", out, *extra])
        assert result.exit_code != 0 and hint in result.output, result.output
    bad = runner.invoke(
        app,
        [
            "search",
            bundle,
            "--index",
            str(table),
            "--from",
            "va",
            "--to",
            "vb",
            "--query-row",
            "1",
            "-o",
            "x.txt",
        ],
    )
    assert bad.exit_code != 0 and ".json, .csv or .parquet" in bad.output


def test_predictor_search_from_python(space_run, table) -> None:
    predictor = Predictor.load(space_run.bundle_path)
    record = row_record(table, 9)
    result = predictor.search({"vb": record["vb"]}, index=table, from_field="vb", to_field="vb", k=3)
    assert result.hits[0].row == 9 and len(result.hits) == 3
    unsaved = Predictor.from_trained(predictor.trained)  # not saved: the index is built in memory
    assert (
        unsaved.search({"va": record["va"]}, index=table, from_field="va", to_field="vb", k=2).folder is None
    )
