"""The exported graph against the torch model: every subset of fields, any batch size and length."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from plait.bundle import TrainedModel, load_bundle
from plait.evaluation.evaluate import model_tensors, read_labelled
from plait.evaluation.rows import choose_rows
from plait.export.check import NONE, all_subsets, check_on_table, graph_diffs, subset_name
from plait.export.graph import field_inputs
from plait.export.session import OnnxModel

TOLERANCE = 1e-4
FIELDS = ("vibration", "sound", "thermal", "note", "specs")


@pytest.fixture(scope="module")
def trained(pumps_bundle: Any) -> TrainedModel:
    return load_bundle(pumps_bundle.bundle_path)


@pytest.fixture(scope="module")
def held_out(trained: TrainedModel, pumps_small: Any) -> tuple[Any, Any]:
    """The pumps table through the model's fields, and its held-out test rows."""
    table = read_labelled(trained, pumps_small.table_path, None)
    choice = choose_rows(trained, table.df, table.target, table.valid, table.source)
    assert choice.selection.startswith("test rows")
    return model_tensors(trained, table.df, table.target, table.root)[0], choice.rows


def test_each_field_declares_its_padded_axes_through_its_modality(trained: TrainedModel) -> None:
    found = {spec.field: spec for spec in field_inputs(trained.modalities)}
    assert tuple(found) == FIELDS
    assert (found["vibration"].values_axes, found["vibration"].mask_axes) == ((1,), (1,))  # (B, T, C)
    assert (found["sound"].values_axes, found["sound"].mask_axes) == ((2,), (1,))  # (B, mels, frames)
    assert (found["note"].dtype, found["note"].values_axes) == ("int64", (1,))  # token ids (B, L)
    assert (found["thermal"].has_mask, found["thermal"].values_axes) == (False, ())  # (B, C, S, S)
    assert (found["specs"].has_mask, found["specs"].values_axes, found["specs"].mask_axes) == (True, (), ())
    assert found["note"].names == ("note.values", "note.mask", "note.present")


def test_every_subset_of_fields_is_checked_the_empty_one_included() -> None:
    subsets = all_subsets(("a", "b", "c"))
    assert len(subsets) == 8 and len(set(subsets)) == 8
    assert subsets[0] == ("a", "b", "c") and subsets[-1] == ()
    assert subset_name(()) == NONE and subset_name(("a", "c")) == "a+c"


def test_the_graph_gives_torchs_outputs_for_every_subset_on_held_out_rows(
    trained: TrainedModel, pumps_onnx: Any, held_out: tuple[Any, Any]
) -> None:
    tensors, rows = held_out
    graphs = {"fp32": OnnxModel.load(pumps_onnx.folder), "int8": OnnxModel.load(pumps_onnx.folder, int8=True)}
    checks = check_on_table(trained.model, trained.task, graphs, tensors, rows)
    assert len(checks) == 2 ** len(FIELDS)
    assert {c.subset for c in checks} == {subset_name(s) for s in all_subsets(FIELDS)}
    for one in checks:
        assert one.rows == len(rows)
        assert one.max_abs_diff["fp32"] <= TOLERANCE, one.subset
        assert one.metric["fp32"] == pytest.approx(one.metric["torch"], abs=1e-9), one.subset
        # int8 is measured, not promised: its outputs move, yet stay the same kind of numbers
        assert 0.0 < one.max_abs_diff["int8"] < 10.0
        assert 0.0 <= one.metric["int8"] <= 1.0
    assert max(c.max_abs_diff["int8"] for c in checks) > max(c.max_abs_diff["fp32"] for c in checks)


def test_one_row_and_sequences_longer_than_traced_run_through_the_same_graph(
    trained: TrainedModel, pumps_onnx: Any, held_out: tuple[Any, Any]
) -> None:
    """The batch axis and every padded axis are dynamic: a batch of one, and the table's padded
    lengths (far longer than the 5 steps the graph was traced with), match torch."""
    tensors, rows = held_out
    graph = OnnxModel.load(pumps_onnx.folder)
    for batch in (tensors.batch(torch.as_tensor(rows[:1])), tensors.batch(torch.as_tensor(rows[:7]))):
        assert batch.values["vibration"].shape[1] > 5 and batch.values["note"].shape[1] > 5
        diffs = graph_diffs(trained.model, graph, batch)
        assert len(diffs) == 2 ** len(FIELDS)
        assert max(diffs.values()) <= TOLERANCE


def test_the_graph_returns_the_fusion_weights_and_each_fields_encoding(
    trained: TrainedModel, pumps_onnx: Any, held_out: tuple[Any, Any]
) -> None:
    tensors, rows = held_out
    batch = tensors.batch(torch.as_tensor(rows[:4]))
    got = OnnxModel.load(pumps_onnx.folder).run(batch.values, batch.masks, batch.present)
    with torch.inference_mode():
        encoded = trained.model.encode(batch)
        expected = trained.model.decide(encoded, batch.present)
    assert expected.weights is not None and got.out.weights is not None
    assert torch.allclose(got.out.weights, expected.weights, atol=TOLERANCE)
    assert got.out.field_order == FIELDS
    for field in FIELDS:
        assert torch.allclose(got.pooled[field], encoded[field].pooled, atol=TOLERANCE), field


def test_many_fields_check_a_fixed_sample_of_subsets_with_every_edge_case() -> None:
    from plait.export.check import MAX_SUBSETS, all_subsets

    fields = [f"f{i}" for i in range(14)]
    subsets = all_subsets(fields)
    assert len(subsets) == MAX_SUBSETS == len(set(subsets))
    assert subsets == all_subsets(fields)  # the same sample every time
    for edge in [
        tuple(fields),
        (),
        *[(f,) for f in fields],
        *[tuple(g for g in fields if g != f) for f in fields],
    ]:
        assert edge in subsets
    assert len(all_subsets(fields[:10])) == 2**10
