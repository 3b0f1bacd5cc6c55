"""The serving engine and its per-field guard: same predictions as Predictor for full records,
graceful degradation for missing / corrupt / refused values, breakers that open on a failing
encoder and skip the field, and the FieldGuard state machine on its own."""

from __future__ import annotations

import io
import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from plait.bundle import TrainedModel, load_bundle
from plait.data.table import read_table
from plait.predictor import Predictor
from plait.serving.engine import Engine, FieldStatus
from plait.serving.guard import FieldGuard, Skipped
from plait.types import Absent

MEDIA = ("sound", "thermal")


@pytest.fixture(scope="module")
def trained(pumps_bundle: Any) -> TrainedModel:
    return load_bundle(pumps_bundle.bundle_path)  # a private copy: tests patch its encoders


@pytest.fixture(scope="module")
def rows(pumps_small: Any) -> list[dict[str, Any]]:
    """Table rows (media as paths relative to the root): the first 4 clean ones, then one row
    each with a truncated thermal PNG and a garbage sound file."""
    table = read_table(pumps_small.table_path).to_dicts()
    corrupt = {i for ids in pumps_small.corrupted.values() for i in ids}
    clean = [r for r in table if r["inspection_id"] not in corrupt][:4]
    thermal = set(pumps_small.corrupted["thermal_truncated"])
    garbage = set(pumps_small.corrupted["sound_garbage"])
    return [
        *clean,
        next(r for r in table if r["inspection_id"] in thermal),
        next(r for r in table if r["inspection_id"] in garbage),
    ]


def as_record(row: dict[str, Any], root: Path) -> dict[str, Any]:
    """A row as the HTTP layer hands it over: media files read into bytes."""
    return {k: (root / v).read_bytes() if k in MEDIA and v is not None else v for k, v in row.items()}


def status(served: Any, field: str) -> FieldStatus:
    return next(s for s in served.fields if s.field == field)


# --- Engine ------------------------------------------------------------------------------------


def test_records_with_media_bytes_predict_exactly_what_predictor_predicts_from_paths(
    trained: TrainedModel, rows: list[dict[str, Any]], pumps_small: Any
) -> None:
    expected = Predictor.from_trained(trained).predict(rows, root=pumps_small.root)
    served = Engine(trained).predict([as_record(r, pumps_small.root) for r in rows])
    assert len(served) == len(rows)
    for got, want in zip(served, expected, strict=True):
        assert got.prediction.prediction == want.prediction
        assert got.prediction.probabilities == pytest.approx(want.probabilities, abs=1e-5)
        assert got.prediction.fields_used == want.fields_used
        assert got.prediction.temperature == want.temperature
    assert [s.state for s in served[0].fields] == ["used"] * len(trained.modalities)
    assert [s.field for s in served[0].fields] == list(trained.modalities)
    assert status(served[4], "thermal").state == "failed"  # truncated PNG
    assert status(served[4], "thermal").reason.startswith("undecodable")
    assert status(served[5], "sound").state == "failed"  # random bytes
    assert served[4].prediction.degraded and "thermal" in served[4].prediction.fields_missing


def test_a_record_without_the_image_is_degraded_with_thermal_missing(
    trained: TrainedModel, rows: list[dict[str, Any]], pumps_small: Any
) -> None:
    record = as_record(rows[0], pumps_small.root)
    del record["thermal"]
    [served] = Engine(trained).predict([record])
    assert status(served, "thermal") == FieldStatus("thermal", "missing", "not in the record")
    assert served.prediction.degraded
    assert "thermal" in served.prediction.fields_missing
    assert "thermal" not in served.prediction.fields_used
    [want] = Predictor.from_trained(trained).predict([{**rows[0], "thermal": None}], root=pumps_small.root)
    assert served.prediction.probabilities == pytest.approx(want.probabilities, abs=1e-5)
    out = served.to_json()
    assert out["fields"]["thermal"] == {"state": "missing", "reason": "not in the record"}
    assert out["fields"]["note"] == {"state": "used", "reason": ""}
    assert out["degraded"] is True
    json.dumps(out)  # plain JSON data


def test_corrupt_image_bytes_fail_the_field_but_not_the_prediction(
    trained: TrainedModel, rows: list[dict[str, Any]], pumps_small: Any
) -> None:
    record = {**as_record(rows[0], pumps_small.root), "thermal": b"\x89PNG\r\n\x1a\n this is not a picture"}
    [served] = Engine(trained).predict([record])
    thermal = status(served, "thermal")
    assert thermal.state == "failed" and thermal.reason.startswith("undecodable")
    assert served.prediction.prediction in trained.task.classes
    assert served.prediction.fields_missing == ("thermal",)


def test_a_string_for_a_media_field_is_never_opened_as_a_path(
    trained: TrainedModel, rows: list[dict[str, Any]], pumps_small: Any, tmp_path: Path
) -> None:
    picture = tmp_path / "real.png"
    shutil.copy(pumps_small.root / rows[0]["thermal"], picture)
    base = as_record(rows[0], pumps_small.root)
    # Even a root that holds the file does not make a string a path.
    engine = Engine(trained, root=tmp_path)
    records = [
        {**base, "thermal": str(picture)},
        {**base, "thermal": "real.png"},
        {**base, "thermal": picture},
        {**base, "sound": str(pumps_small.root / rows[0]["sound"])},
        {**base, "vibration": "vibration.npy"},
    ]
    served = engine.predict(records)
    for s, field in zip(served, ["thermal", "thermal", "thermal", "sound", "vibration"], strict=True):
        assert status(s, field).state == "failed", field
        assert "never reads a value as a file path" in status(s, field).reason
        assert field in s.prediction.fields_missing
    assert "expected image bytes, got str" in status(served[0], "thermal").reason


def test_a_value_marked_absent_by_the_caller_is_reported_with_its_reason(
    trained: TrainedModel, rows: list[dict[str, Any]], pumps_small: Any
) -> None:
    record = {**as_record(rows[0], pumps_small.root), "sound": Absent("undecodable", "not valid base64")}
    [served] = Engine(trained).predict([record])
    assert status(served, "sound") == FieldStatus("sound", "failed", "undecodable: not valid base64")


def test_a_failing_encoder_opens_its_breaker_and_the_field_is_then_skipped_without_calling(
    trained: TrainedModel, rows: list[dict[str, Any]], pumps_small: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    guard = FieldGuard(list(trained.modalities), fail_max=2, reset_timeout_s=60)
    engine = Engine(trained, guard=guard)
    calls: list[int] = []

    def broken(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        raise RuntimeError("GPU fell off")

    [want] = Predictor.from_trained(trained).predict([{**rows[0], "thermal": None}], root=pumps_small.root)
    monkeypatch.setattr(trained.model.encoders["thermal"], "forward", broken)
    record = as_record(rows[0], pumps_small.root)
    first, second = engine.predict([record]), engine.predict([record])
    for [served] in (first, second):
        assert status(served, "thermal") == FieldStatus(
            "thermal", "failed", "encoder failed: RuntimeError: GPU fell off"
        )
        assert served.prediction.fields_missing == ("thermal",)
        # the stand-in output for the failed field equals predicting without it
        assert served.prediction.probabilities == pytest.approx(want.probabilities, abs=1e-5)
    assert guard.states()["thermal"] == "open"
    assert guard.states()["note"] == "closed"
    [third] = engine.predict([record])
    assert status(third, "thermal") == FieldStatus("thermal", "skipped", "breaker open")
    assert len(calls) == 2  # open: neither loaded nor encoded
    assert status(third, "note").state == "used"
    assert third.prediction.probabilities == pytest.approx(want.probabilities, abs=1e-5)


def test_a_value_that_breaks_load_fails_its_own_record_only(
    trained: TrainedModel, rows: list[dict[str, Any]], pumps_small: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    note = trained.modalities["note"]
    original = note.load

    def fragile(row: Any, root: Path) -> Any:
        if row.get("note") == "crash":
            raise UnicodeError("plug-in bug")
        return original(row, root)

    monkeypatch.setattr(note, "load", fragile)
    guard = FieldGuard(list(trained.modalities), fail_max=5)
    engine = Engine(trained, guard=guard)
    base = as_record(rows[0], pumps_small.root)
    crashed, fine = engine.predict([{**base, "note": "crash"}, base])
    assert status(crashed, "note") == FieldStatus("note", "failed", "load failed: UnicodeError: plug-in bug")
    assert status(fine, "note").state == "used"
    assert guard.failures()["note"] == 0  # the batch's step worked
    for _ in range(6):  # more than fail_max: a client's bad values never open the field's breaker
        [alone] = engine.predict([{**base, "note": "crash"}])
        assert status(alone, "note") == FieldStatus(
            "note", "failed", "load failed: UnicodeError: plug-in bug"
        )
    assert guard.failures()["note"] == 0 and guard.states()["note"] == "closed"


def test_a_slow_load_is_the_clients_cost_and_the_batch_decode_budget_bounds_it(
    trained: TrainedModel, rows: list[dict[str, Any]], pumps_small: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression, twice over. Decoding used to run inside the field's timeout, so a few huge
    (valid) images from one client timed out and opened the image breaker for every client: loading
    still never counts against a breaker. And decoding had no budget (this test asserted that three
    slow loads all ran): 16 near-limit PNGs in one request held the model process 19.6 s. Now once a
    batch has spent `decode_budget_s` decoding, its remaining media are skipped, with the reason."""
    thermal = trained.modalities["thermal"]
    original = thermal.load

    def slow(row: Any, root: Path) -> Any:
        time.sleep(0.4)  # a decompression-heavy image, still within every per-value limit
        return original(row, root)

    monkeypatch.setattr(thermal, "load", slow)
    guard = FieldGuard(list(trained.modalities), fail_max=1, timeout_s=0.5)  # loading takes 0.4 s a record
    engine = Engine(trained, guard=guard, decode_budget_s=0.3)
    base = as_record(rows[0], pumps_small.root)
    first, *others = engine.predict([base, base, base])
    assert status(first, "thermal").state == "used"  # a batch's first record is always decoded
    for served in others:
        for field in MEDIA:
            state, reason = status(served, field).state, status(served, field).reason
            assert state == "skipped"
            assert reason.startswith("batch over its decode budget (max_batch_decode_s=0.3): the batch spent")
        assert status(served, "note").state == "used"  # the record is answered, without its media
        assert served.prediction.degraded
    assert guard.states()["thermal"] == "closed"
    engine.close()


def test_the_batch_decodes_its_cheapest_records_first(
    trained: TrainedModel, rows: list[dict[str, Any]], pumps_small: Any
) -> None:
    """A near-limit image sent first does not cost the small image sent after it its turn."""
    big = io.BytesIO()
    Image.new("RGB", (3000, 3000), (200, 40, 40)).save(big, "PNG")  # ~0.2-0.4 s to decode
    base = as_record(rows[0], pumps_small.root)
    engine = Engine(trained, decode_budget_s=0.001)  # spent by the first record decoded
    hostile, honest = engine.predict([{**base, "thermal": big.getvalue()}, base])
    assert status(honest, "thermal").state == "used"
    state, reason = status(hostile, "thermal").state, status(hostile, "thermal").reason
    assert state == "skipped" and reason.startswith("batch over its decode budget")
    assert status(hostile, "note").state == "used"
    engine.close()


def test_a_record_whose_images_would_overrun_the_budget_is_skipped_before_decoding(
    trained: TrainedModel, rows: list[dict[str, Any]], pumps_small: Any
) -> None:
    big = io.BytesIO()
    Image.new("RGB", (3000, 3000), (200, 40, 40)).save(big, "PNG")
    base = as_record(rows[0], pumps_small.root)
    engine = Engine(trained, decode_budget_s=5.0)
    engine._clock.seconds_per_pixel = 1e-6  # as if this machine took 9 s for 9 Mpx
    served = engine.predict([base, {**base, "thermal": big.getvalue()}])
    assert status(served[0], "thermal").state == "used"
    state, reason = status(served[1], "thermal").state, status(served[1], "thermal").reason
    assert state == "skipped" and "would take the batch past it" in reason
    engine.close()


def test_an_encoder_past_the_timeout_is_skipped(
    trained: TrainedModel, rows: list[dict[str, Any]], pumps_small: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    encoder = trained.model.encoders["sound"]
    original = encoder.forward

    def slow(*args: Any, **kwargs: Any) -> Any:
        release.wait(5)
        return original(*args, **kwargs)

    guard = FieldGuard(list(trained.modalities), timeout_s=0.05)
    engine = Engine(trained, guard=guard)
    monkeypatch.setattr(encoder, "forward", slow)
    try:
        [served] = engine.predict([as_record(rows[0], pumps_small.root)])
    finally:
        release.set()
    assert status(served, "sound") == FieldStatus("sound", "skipped", "encoder timed out after 0.05 s")
    assert "sound" in served.prediction.fields_missing
    assert guard.failures()["sound"] == 1
    engine.close()


def test_warm_up_sets_ready_and_an_empty_record_is_all_missing(trained: TrainedModel) -> None:
    engine = Engine(trained)
    assert engine.ready is False
    engine.warm_up()
    assert engine.ready is True
    assert engine.fields == tuple(trained.modalities)
    [served] = engine.predict([{}])
    assert {s.state for s in served.fields} == {"missing"}
    assert served.prediction.fields_used == ()
    assert engine.predict([]) == []
    engine.close()


# --- FieldGuard --------------------------------------------------------------------------------


def boom() -> int:
    raise ValueError("boom")


def test_guard_opens_after_fail_max_failures_and_then_skips_without_calling() -> None:
    guard = FieldGuard(["a"], fail_max=3, reset_timeout_s=60)
    for n in (1, 2, 3):
        assert guard.call("a", boom) == Skipped("a", "failed: ValueError: boom", "error")
        assert guard.failures()["a"] == n
    assert guard.states() == {"a": "open"}
    calls: list[int] = []
    assert guard.call("a", lambda: calls.append(1)) == Skipped("a", "breaker open", "open")
    assert calls == []


def test_guard_half_opens_after_reset_timeout_and_a_success_closes_it() -> None:
    guard = FieldGuard(["a"], fail_max=1, reset_timeout_s=0.2)
    assert isinstance(guard.call("a", boom), Skipped)
    assert guard.states()["a"] == "open"
    time.sleep(0.3)
    assert guard.call("a", boom).cause == "error"  # type: ignore[union-attr]  # the trial fails: open again
    assert guard.states()["a"] == "open"
    assert guard.call("a", lambda: 7) == Skipped("a", "breaker open", "open")
    time.sleep(0.3)
    assert guard.call("a", lambda: 7) == 7  # the trial succeeds: closed
    assert guard.states()["a"] == "closed"
    assert guard.failures()["a"] == 0


def test_guard_counts_a_timeout_as_a_failure() -> None:
    guard = FieldGuard(["slow"], fail_max=2, timeout_s=0.05)
    release = threading.Event()
    assert guard.call("slow", lambda: release.wait(5)) == Skipped("slow", "timed out after 0.05 s", "timeout")
    assert guard.failures()["slow"] == 1
    release.set()
    assert guard.call("slow", lambda: 1) == 1
    assert guard.failures()["slow"] == 0
    guard.close()


def test_guard_fields_are_independent() -> None:
    guard = FieldGuard(["a", "b"], fail_max=1, reset_timeout_s=60)
    guard.call("a", boom)
    assert guard.states() == {"a": "open", "b": "closed"}
    assert guard.call("b", lambda: "fine") == "fine"
    assert guard.failures() == {"a": 1, "b": 0}
    with pytest.raises(KeyError, match="unknown field 'c'"):
        guard.call("c", lambda: 1)


def test_guard_refuses_bad_settings() -> None:
    from plait.errors import ConfigError

    with pytest.raises(ConfigError, match="fail_max"):
        FieldGuard(["a"], fail_max=0)
    with pytest.raises(ConfigError, match="timeout_s"):
        FieldGuard(["a"], timeout_s=0)
    with pytest.raises(ConfigError, match="unique"):
        FieldGuard(["a", "a"])


def test_contributions_are_the_drop_when_a_field_is_left_out(
    trained: TrainedModel, rows: list[dict[str, Any]], pumps_small: Any
) -> None:
    engine = Engine(trained)
    record = as_record(rows[0], pumps_small.root)
    [plain] = engine.predict([record])
    assert plain.contributions is None  # only when asked
    [full] = engine.predict([record], explain=True)
    label = full.prediction.prediction
    assert full.prediction.probabilities is not None and full.contributions is not None
    assert set(full.contributions) == set(full.prediction.fields_used)
    for field, part in full.contributions.items():
        columns = trained.modalities[field].columns()
        [without] = engine.predict([{k: v for k, v in record.items() if k not in columns}], explain=True)
        assert without.prediction.probabilities is not None
        drop = full.prediction.probabilities[str(label)] - without.prediction.probabilities[str(label)]
        assert part == pytest.approx(drop, abs=1e-5)
    [partial] = engine.predict([{k: v for k, v in record.items() if k != "thermal"}], explain=[True])
    assert partial.contributions is not None and "thermal" not in partial.contributions
