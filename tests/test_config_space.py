"""The `space` section and contrastive stages: parsing, defaults, errors that name the key, the
YAML round trip, and a subset of fields keeping only the pairs it can."""

from __future__ import annotations

import pytest

from plait.config import Config
from plait.errors import ConfigError


def _raw(**extra):
    raw = {
        "data": {"path": "t.csv"},
        "task": {"label": "y"},
        "fields": {"photo": "image", "sound": "audio", "note": "text"},
    }
    raw.update(extra)
    return raw


def test_no_space_by_default() -> None:
    cfg = Config.from_dict(_raw())
    assert cfg.shared_space is None and cfg.space_weight == 0.0


def test_space_defaults_to_every_pair_and_an_auxiliary_weight() -> None:
    cfg = Config.from_dict(_raw(space={}))
    assert cfg.shared_space is not None
    assert cfg.shared_space.pairs_for(cfg.field_names) == (
        ("photo", "sound"),
        ("photo", "note"),
        ("sound", "note"),
    )
    assert cfg.space_weight == 0.5


def test_a_contrastive_stage_implies_a_space_learned_first() -> None:
    stages = [
        {"kind": "contrastive", "epochs": 3, "pairs": [["photo", "sound"]]},
        {"kind": "end_to_end", "epochs": 2},
    ]
    cfg = Config.from_dict(_raw(train={"stages": stages}))
    assert cfg.space is None and cfg.shared_space is not None
    assert cfg.space_weight == 0.0  # the space is learned before the task, not beside it
    assert cfg.train.stages[0].pairs == (("photo", "sound"),)


def test_round_trips_through_yaml(tmp_path) -> None:
    stages = [
        {"kind": "contrastive", "epochs": 3, "pairs": [["photo", "note"]]},
        {"kind": "end_to_end", "epochs": 2},
    ]
    raw = _raw(
        space={
            "dim": 32,
            "pairs": [["photo", "note"], ["sound", "note"]],
            "weight": 0.25,
            "prompt": "a {label} pump",
        },
        train={"stages": stages},
    )
    cfg = Config.from_dict(raw)
    path = tmp_path / "plait.yaml"
    path.write_text(cfg.to_yaml())
    again = Config.from_yaml(path)
    assert again.space == cfg.space
    assert again.train.stages == cfg.train.stages


@pytest.mark.parametrize(
    ("space", "stages", "match"),
    [
        ({"pairs": [["photo", "sond"]]}, None, r"space\.pairs\[0\]: no field 'sond'; did you mean 'sound'"),
        ({"pairs": [["photo", "photo"]]}, None, r"space\.pairs\[0\]: expected two different field names"),
        ({"pairs": [["photo", "note"], ["note", "photo"]]}, None, r"listed twice"),
        ({"pairs": "some"}, None, r"space\.pairs: expected `all` or a non-empty list"),
        ({"dim": 1}, None, r"space\.dim: expected an integer ≥ 2"),
        ({"temperature": 0}, None, r"space\.temperature"),
        ({"weight": 0}, None, r"space\.weight: 0 and no contrastive stage"),
        ({"prompt": "a pump"}, None, r"space\.prompt: expected a text with \{label\}"),
        ({"prompt": "a {label} {x}"}, None, r"space\.prompt: .*no other braces"),
        ({"prompt": "{0} {label}"}, None, r"space\.prompt: .*no other braces"),
        (
            {"pairs": [["photo", "note"]]},
            [
                {"kind": "contrastive", "epochs": 2, "pairs": [["photo", "sound"]]},
                {"kind": "end_to_end", "epochs": 1},
            ],
            r"stages\[0\]\.pairs\[0\]: \['photo', 'sound'\] is not one of the space's pairs",
        ),
        ({"dimm": 3}, None, r"space\.dimm: unknown key; did you mean 'dim'"),
        (
            None,
            [{"kind": "end_to_end", "epochs": 2, "pairs": [["photo", "note"]]}],
            r"only a contrastive stage takes pairs",
        ),
        (None, [{"kind": "contrastive", "epochs": 2}], r"only contrastive stages"),
        (None, [{"kind": "contrastiv", "epochs": 2}], r"did you mean 'contrastive'"),
    ],
)
def test_mistakes_name_the_key(space, stages, match) -> None:
    extra = {}
    if space is not None:
        extra["space"] = space
    if stages is not None:
        extra["train"] = {"stages": stages}
    with pytest.raises(ConfigError, match=match):
        Config.from_dict(_raw(**extra))


def test_a_space_needs_two_fields_and_one_model() -> None:
    with pytest.raises(ConfigError, match=r"aligns two or more fields"):
        Config.from_dict({"task": {"label": "y"}, "fields": {"note": "text"}, "space": {}})
    with pytest.raises(ConfigError, match=r"train\.ensemble: 1"):
        Config.from_dict(_raw(space={}, train={"ensemble": 2}))


def test_a_subset_of_fields_keeps_the_pairs_it_can() -> None:
    stages = [
        {"kind": "contrastive", "epochs": 2, "pairs": [["photo", "sound"]]},
        {"kind": "end_to_end", "epochs": 2},
    ]
    cfg = Config.from_dict(
        _raw(space={"pairs": [["photo", "sound"], ["sound", "note"]]}, train={"stages": stages})
    )
    two = cfg.with_fields(["sound", "note"])
    assert two.shared_space is not None and two.shared_space.pairs == (("sound", "note"),)
    assert [s.kind for s in two.train.stages] == ["end_to_end"]  # its stage's only pair is gone
    alone = cfg.with_fields(["note"])
    assert alone.shared_space is None
    assert [s.kind for s in alone.train.stages] == ["end_to_end"]


def test_literal_braces_are_fine_in_a_prompt() -> None:
    cfg = Config.from_dict(_raw(space={"prompt": "{{fault}}: {label}"}))
    assert cfg.shared_space is not None and cfg.shared_space.prompt.format(label="seal") == "{fault}: seal"


def test_a_label_free_config_keeps_a_pair_or_says_why() -> None:
    raw = {"fields": {"a": "text", "b": "image", "c": "audio"}, "space": {"pairs": [["a", "b"]]}}
    raw["train"] = {"stages": [{"kind": "contrastive", "epochs": 2}]}
    cfg = Config.from_dict(raw)
    assert not cfg.labelled and cfg.with_fields(["a", "b"]).shared_space is not None
    with pytest.raises(ConfigError, match=r"leave no pair of the space to align"):
        cfg.with_fields(["a", "c"])
