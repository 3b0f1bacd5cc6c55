"""Property tests of the config parser (issue 13): whatever a YAML file holds, `Config.from_dict`
and `load_config` give a config or a ConfigError — never another exception — and a parsed config
survives its own round trip."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait.config import Config, load_config
from plait.errors import ConfigError

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["gated", "concat", "image", "tabular", "text", "auto", "random", "group", "1e-3", ""]),
)
KEYS = st.sampled_from(
    [
        "data", "task", "fields", "model", "train", "output", "streams", "label", "type", "kind", "path",
        "root", "split", "group", "time", "column", "gap_s", "fusion", "dim", "epochs", "lr", "stages",
        "val_fraction", "test_fraction", "allow_leaks", "photo", "size", "numeric", "x", "required",
    ]
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.dictionaries(KEYS, VALUES, max_size=7))
def test_any_mapping_is_a_config_or_a_config_error(raw: dict) -> None:
    try:
        cfg = Config.from_dict(raw)
    except ConfigError:
        return
    again = Config.from_dict(cfg.to_dict())  # what to_dict writes parses back to the same config
    assert again.to_dict() == cfg.to_dict()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.dictionaries(KEYS, VALUES, max_size=7), junk=st.text(max_size=40))
def test_any_file_is_a_config_or_a_config_error(raw: dict, junk: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "plait.yaml"
        for text in (yaml.safe_dump(raw, allow_unicode=True), junk, yaml.safe_dump(raw) + junk):
            path.write_text(text, encoding="utf-8")
            with contextlib.suppress(ConfigError):
                load_config(path)


BASE = {
    "data": {"path": "t.csv", "split": {"group": "s"}},
    "task": {"label": "y"},
    "fields": {"photo": {"kind": "image", "size": 32}, "specs": {"kind": "tabular", "numeric": ["x"]}},
    "model": {"fusion": "gated", "dim": 16},
    "train": {"epochs": 3, "lr": 0.001},
}
PLACES = [
    ("data", "split"), ("data", "val_fraction"), ("data", "allow_leaks"), ("task", "type"),
    ("model", "fusion"), ("model", "dim"), ("model", "dropout"), ("train", "epochs"), ("train", "lr"),
    ("train", "stages"), ("train", "modality_dropout"), ("train", "precision"), ("fields", "photo"),
    ("fields", "specs"),
]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.sampled_from(PLACES), VALUES), max_size=3))
def test_a_valid_config_with_any_value_changed_parses_or_says_why(edits: list) -> None:
    raw = {k: dict(v) for k, v in BASE.items()}
    for (section, key), value in edits:
        raw[section][key] = value
    try:
        cfg = Config.from_dict(raw)
    except ConfigError as exc:
        assert str(exc), "a ConfigError says what is wrong"
        return
    assert Config.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()
