from pathlib import Path

import pytest

from plait.config import Config, load_config
from plait.errors import ConfigError


def minimal(**extra: object) -> dict:
    return {"task": {"label": "fault"}, "fields": {"photo": {"kind": "image"}}, **extra}


def test_unknown_kind_names_path_and_suggests():
    with pytest.raises(ConfigError) as err:
        Config.from_dict({"task": {"label": "y"}, "fields": {"photo": {"kind": "imag"}}})
    message = str(err.value)
    assert message.startswith("fields.photo.kind: unknown kind 'imag'")
    assert "did you mean 'image'?" in message
    assert "tabular" in message


def test_unknown_section_and_key_are_rejected_with_suggestion():
    with pytest.raises(ConfigError, match=r"trian: unknown key; did you mean 'train'\?"):
        Config.from_dict(minimal(trian={}))
    with pytest.raises(ConfigError, match=r"train\.epoch: unknown key; did you mean 'epochs'\?"):
        Config.from_dict(minimal(train={"epoch": 3}))


@pytest.mark.parametrize(
    ("section", "_unused", "fragment"),
    [
        ({"train": {"epochs": "many"}}, None, "train.epochs: expected an integer, got 'many'"),
        ({"train": {"epochs": 0}}, None, "train.epochs: expected an integer ≥ 1, got 0"),
        ({"train": {"modality_dropout": 1.5}}, None, "train.modality_dropout: expected a probability"),
        ({"train": {"precision": "bf16-mixd"}}, None, "did you mean 'bf16-mixed'"),
        ({"data": {"val_fraction": 0.6, "test_fraction": 0.5}}, None, "leaves no training rows"),
        ({"model": {"dim": True}}, None, "model.dim: expected an integer, got True"),
    ],
)
def test_bad_values_name_key_expected_and_got(section, _unused, fragment):
    with pytest.raises(ConfigError) as err:
        Config.from_dict(minimal(**section))
    assert fragment in str(err.value)


def test_label_cannot_be_a_field_and_fields_required():
    with pytest.raises(ConfigError, match="label column cannot also be an input field"):
        Config.from_dict({"task": {"label": "photo"}, "fields": {"photo": "image"}})
    with pytest.raises(ConfigError, match="fields: missing"):
        Config.from_dict({"task": {"label": "y"}})
    with pytest.raises(ConfigError, match="task: missing"):
        Config.from_dict({"fields": {"a": "text"}})


def test_yaml_round_trip_and_numbers_written_as_strings(tmp_path: Path):
    path = tmp_path / "plait.yaml"
    path.write_text(
        "task: {label: fault}\nfields:\n  note: text\n  photo: {kind: image, size: 32}\n"
        "train: {lr: 3e-3, epochs: 5}\n"
    )
    cfg = load_config(path)
    assert cfg.train.lr == pytest.approx(0.003)
    assert cfg.fields[1].options == {"size": 32}
    assert cfg.base_dir == tmp_path
    again = Config.from_dict(cfg.to_dict(), base_dir=tmp_path)
    assert again == cfg


def test_load_config_errors_name_the_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: {label: y}\nfields: {a: {kind: txt}}\n")
    with pytest.raises(
        ConfigError, match=r"bad\.yaml: fields\.a\.kind: unknown kind 'txt'; did you mean 'text'\?"
    ):
        load_config(bad)


def test_with_overrides_returns_new_validated_config():
    cfg = Config.from_dict(minimal())
    changed = cfg.with_overrides(train={"epochs": 3})
    assert changed.train.epochs == 3 and cfg.train.epochs == 40
    with pytest.raises(ConfigError):
        cfg.with_overrides(train={"epochs": -1})


def test_field_names_must_be_usable_as_module_names():
    with pytest.raises(
        ConfigError, match=r"fields\.a\.b: field names must be non-empty strings without '\.'"
    ):
        Config.from_dict({"task": {"label": "y"}, "fields": {"a.b": "text"}})
    with pytest.raises(ConfigError, match="field names must be non-empty"):
        Config.from_dict({"task": {"label": "y"}, "fields": {"": "text"}})


# ---- check_config: everything checkable before any data is read -----------------------------------


def checkable(tmp_path: Path, **sections: dict) -> Config:
    """A config whose table exists but would fail if read (so a passing check read nothing)."""
    (tmp_path / "items.parquet").write_text("not parquet: reading this raises")
    raw: dict = {
        "task": {"label": "fault"},
        "data": {"path": "items.parquet"},
        "fields": {"photo": {"kind": "image"}, "note": "text"},
    }
    for section, values in sections.items():
        raw[section] = {**raw.get(section, {}), **values}
    return Config.from_dict(raw, base_dir=tmp_path)


@pytest.fixture()
def no_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    import plait.data.table

    def read_table(path: object) -> None:
        raise AssertionError(f"check_config read the table {path}")

    monkeypatch.setattr(plait.data.table, "read_table", read_table)


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        (
            {"model": {"fusion": "gatd"}},
            "model.fusion: unknown fusion 'gatd'; did you mean 'gated'? Available: attention, concat",
        ),
        (
            {"model": {"fusion_options": {"gate_hiden": 16}}},
            "model.fusion_options.gate_hiden: unknown option for GatedFusion; did you mean 'gate_hidden'?",
        ),
        (
            {"model": {"fusion": "late", "fusion_options": {"gate_hidden": 16}}},
            "model.fusion_options.gate_hidden: unknown option for LateFusion",
        ),
        (
            {"model": {"fusion_options": {"output_dim": 8}}},
            "model.fusion_options.output_dim: plait sets output_dim of GatedFusion itself; remove it",
        ),
        (
            {"fields": {"photo": {"kind": "image", "sise": 32}}},
            "fields.photo.sise: unknown option for ImageModality; did you mean 'size'?",
        ),
        ({"fields": {"photo": {"kind": "image", "size": -3}}}, "fields.photo.size: expected an integer"),
        ({"data": {"path": "itmes.parquet"}}, "data.path: the table"),
        ({"data": {"root": "media"}}, "data.root: the media folder"),
    ],
    ids=[
        "fusion",
        "fusion-option",
        "option-of-another-fusion",
        "given-by-plait",
        "field-option",
        "field-value",
        "table",
        "root",
    ],
)
def test_check_config_fails_fast_naming_the_key(
    tmp_path: Path, no_reading: None, sections: dict, message: str
) -> None:
    from plait.build import check_config

    cfg = checkable(tmp_path, **sections)
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    assert str(err.value).startswith(message), str(err.value)


def test_check_config_passes_a_good_config_without_reading_it(tmp_path: Path, no_reading: None) -> None:
    from plait.build import check_config

    check_config(checkable(tmp_path, model={"fusion": "attention"}))
    (tmp_path / "media").mkdir()
    check_config(checkable(tmp_path, data={"root": "media"}))
    # a table given in memory: data.path is not needed, the rest is still checked
    in_memory = checkable(tmp_path, data={"path": "nowhere.csv"})
    check_config(in_memory, paths=False)
    with pytest.raises(ConfigError, match=r"^model\.fusion: unknown fusion"):
        check_config(in_memory.with_overrides(model={"fusion": "concatt"}), paths=False)


def test_check_config_leaves_the_table_of_a_streams_config_to_plait_align(tmp_path: Path) -> None:
    from plait.build import check_config

    mic = {"kind": "audio", "path": "audio", "duration_s": 1.0}
    streams = {"anchors": {"hop_s": 1.0}, "sources": {"mic": mic}}
    cfg = Config.from_dict({"task": {"label": "fault"}, "streams": streams}, base_dir=tmp_path)
    assert not cfg.table_path().exists()  # `plait align` writes it
    check_config(cfg)
    with pytest.raises(ConfigError, match=r"^model\.fusion: unknown fusion 'gatd'"):
        check_config(cfg.with_overrides(model={"fusion": "gatd"}))
