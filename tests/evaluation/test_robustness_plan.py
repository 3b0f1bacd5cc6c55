"""Choosing robustness curves (`plait evaluate --perturb`): the text form, the checks against a
model's fields and each family's level range, and the default plan left as it was."""

from __future__ import annotations

import pytest

from plait.errors import ConfigError, UnknownNameError
from plait.evaluation.perturb import PERTURBATIONS, perturbations_for
from plait.evaluation.perturb.choice import PerturbationChoice, RobustnessPlan
from plait.evaluation.robustness import ALL_NOISE_LEVELS, plan_curves
from plait.modalities import MODALITIES

# field → its modality's class: a plan needs only what the class declares
FIELDS = {
    "photo": MODALITIES.get("image"),
    "note": MODALITIES.get("text"),
    "specs": MODALITIES.get("tabular"),
}
MULTIBENCH = tuple(round(i / 10, 6) for i in range(10))  # σ 0, 0.1, …, 0.9


@pytest.mark.parametrize(
    ("text", "choice"),
    [
        ("photo:pixel_gaussian=0:0.9:10", PerturbationChoice("pixel_gaussian", "photo", MULTIBENCH)),
        ("missing", PerturbationChoice("missing")),
        ("blur=0,1.5,3", PerturbationChoice("blur", None, (0.0, 1.5, 3.0))),
        (" all:noise=0, 0.5 ", PerturbationChoice("noise", "all", (0.0, 0.5))),
    ],
)
def test_the_text_form_reads_field_family_and_levels(text: str, choice: PerturbationChoice) -> None:
    assert PerturbationChoice.parse(text) == choice
    assert PerturbationChoice.parse(choice.text()) == choice  # round trip


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("photo:pixel_gausian=0:0.9:10", UnknownNameError, "did you mean 'pixel_gaussian'"),
        ("blurr", UnknownNameError, r"did you mean 'blur'\? Available: .*noise"),
        ("blur=0,a", ConfigError, "cannot read the levels '0,a'"),
        ("blur=0:1", ConfigError, "START:STOP:COUNT"),
        ("blur=1:0:5", ConfigError, "STOP > START"),
        ("blur=", ConfigError, r"\[FIELD:\]FAMILY\[=LEVELS\]"),
        ("photo:", ConfigError, r"\[FIELD:\]FAMILY\[=LEVELS\]"),
    ],
)
def test_bad_text_says_what_was_expected(text: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        PerturbationChoice.parse(text)


def test_chosen_curves_are_exactly_the_ones_asked_for() -> None:
    plan = RobustnessPlan.parse(["photo:pixel_gaussian=0:0.9:10", "missing=0.5,1", "all:noise"])
    curves = plan_curves(FIELDS, plan)
    assert [(c.field, c.perturbation) for c in curves] == [
        ("photo", "pixel_gaussian"),
        ("photo", "missing"),
        ("note", "missing"),
        ("specs", "missing"),
        ("all", "noise"),
    ]
    assert curves[0].levels == MULTIBENCH and len(curves[0].points) == 9
    assert curves[0].unit == "σ on [0, 1] pixels"
    assert curves[1].levels == (0.0, 0.5, 1.0)  # the clean run is always the first level
    assert curves[-1].levels == ALL_NOISE_LEVELS
    assert plan.to_json() == [
        "photo:pixel_gaussian=0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9",
        "missing=0.5,1",
        "all:noise",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("missing=0,0.5,1.5", r"level 1.5 is outside missing's range \[0, 1\] \(fraction of samples\)"),
        ("occlusion=0,0.5,0.2", "levels must increase"),
        ("phot:blur", "no field 'phot'; did you mean 'photo'"),
        ("note:blur", "blur applies to image fields, not to text field 'note'; families for text: missing"),
        ("all:blur", "note is text, specs is tabular"),
        ("photo:noise", "write all:noise"),
        ("time_shift", "applies to timeseries fields and this model has none"),
        ("all:noise=0,1.5", r"outside noise's range \[0, 1\]"),  # typo (text) stops at 1
    ],
)
def test_choices_are_checked_against_the_model(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan_curves(FIELDS, RobustnessPlan.parse([text]))


def test_a_curve_chosen_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match="missing curve of photo is chosen twice"):
        plan_curves(FIELDS, RobustnessPlan.parse(["missing", "photo:missing=0,1"]))


def test_no_choice_is_the_default_plan_without_opt_in_families() -> None:
    default = plan_curves(FIELDS)
    assert plan_curves(FIELDS, RobustnessPlan()) == default
    assert RobustnessPlan().to_json() is None
    image = {c.perturbation for c in default if c.field == "photo"}
    assert image == {"missing", "blur", "occlusion", "pixel_noise"}  # pixel_gaussian only when chosen
    assert not PERTURBATIONS.get("pixel_gaussian").default
    assert "pixel_gaussian" in {p.name for p in perturbations_for(FIELDS["photo"])}


def test_every_family_states_its_definition_unit_and_range() -> None:
    for name in PERTURBATIONS:
        family = PERTURBATIONS.get(name)
        assert len(family.description) > 30 and family.unit, name
        assert 0 < family.levels[-1] <= family.max_level, name
        assert family.level_range.startswith("[0, "), name


class _Toy:
    """A modality of a kind plait does not ship: no perturbation family beyond `missing`, no noise."""

    kind = "lidar"


def test_a_field_without_a_noise_family_is_left_out_of_the_noise_curve() -> None:
    curves = plan_curves({**FIELDS, "scan": _Toy()})  # a kind missing from a noise table was a KeyError
    noise = next(c for c in curves if c.perturbation == "noise")
    assert noise.points[0].fields == ("photo", "note", "specs")
    assert noise.points[0].perturbations == ("pixel_noise", "typo", "gaussian_noise")
    assert "scan left out (no noise family)" in noise.description
    assert {c.perturbation for c in curves if c.field == "scan"} == {"missing"}
    missing = next(c for c in curves if c.field == "all" and c.perturbation == "missing")
    assert missing.points[0].fields == ("photo", "note", "specs", "scan")


def test_without_any_noise_family_there_is_no_noise_curve() -> None:
    curves = plan_curves({"scan": _Toy()})
    assert [(c.field, c.perturbation) for c in curves] == [("scan", "missing"), ("all", "missing")]
    with pytest.raises(ConfigError, match=r"no field of this model has a noise family \(scan: lidar\)"):
        plan_curves({"scan": _Toy()}, RobustnessPlan.parse(["all:noise"]))


def test_a_noise_family_nobody_registered_names_the_modality() -> None:
    class Noisy(_Toy):
        noise_family = "lidar_jitter"

    with pytest.raises(UnknownNameError, match=r"lidar modality \(Noisy\) declares .* 'lidar_jitter'"):
        plan_curves({"scan": Noisy()})
