"""What a user chooses to measure robustness with, instead of the default curves: a
`RobustnessPlan` of `PerturbationChoice`s, and their text form, the `--perturb` option of
`plait evaluate`: `[FIELD:]FAMILY[=LEVELS]`, e.g. `photo:pixel_gaussian=0:0.9:10`.

Only names and the level syntax are checked here; `robustness.plan_curves` checks the choices
against a model's fields and each family's level range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from plait.errors import ConfigError, UnknownNameError
from plait.evaluation.perturb.base import PERTURBATIONS
from plait.registry import unknown_name_message

NOISE = "noise"  # the all-fields curve that perturbs each field by its kind's noise family

PERTURB_SYNTAX = (
    "write [FIELD:]FAMILY[=LEVELS], LEVELS a list (0,0.1,0.5) or START:STOP:COUNT (0:0.9:10); "
    "FIELD a field, 'all' (every field at once) or left out (each field the family applies to)"
)


@dataclass(frozen=True)
class PerturbationChoice:
    """One chosen robustness family: `family` (a registered perturbation, or "noise", the
    all-fields curve with each field's noise family) on `field` (a field; "all": every field at
    once, one curve; None: one curve per field the family applies to) at `levels` (None: the
    family's default levels; 0, the clean run every curve starts from, is added when left out)."""

    family: str
    field: str | None = None
    levels: tuple[float, ...] | None = None

    @classmethod
    def parse(cls, text: str) -> PerturbationChoice:
        """`[FIELD:]FAMILY[=LEVELS]`: `photo:pixel_gaussian=0:0.9:10`, `missing`, `blur=0,1,2`."""
        target, sep, levels_text = text.strip().partition("=")
        field, _, family = target.rpartition(":")
        if not family or (sep and not levels_text.strip()):
            raise ConfigError(f"--perturb {text!r}: {PERTURB_SYNTAX}")
        names = [*PERTURBATIONS.names(), NOISE]
        if family not in names:
            raise UnknownNameError(
                f"--perturb {text!r}: {unknown_name_message('perturbation family', family, names)}"
            )
        levels = _parse_levels(text, levels_text) if sep else None
        return cls(family=family, field=field or None, levels=levels)

    def text(self) -> str:
        """The `--perturb` form of this choice."""
        head = self.family if self.field is None else f"{self.field}:{self.family}"
        return head if self.levels is None else f"{head}={','.join(f'{v:g}' for v in self.levels)}"


@dataclass(frozen=True)
class RobustnessPlan:
    """Which robustness curves an evaluation runs: no choices → the default plan (every default
    family on every field it applies to at its levels, and the all-fields `missing` and `noise`
    curves); otherwise exactly the chosen curves."""

    choices: tuple[PerturbationChoice, ...] = ()

    @classmethod
    def parse(cls, texts: Sequence[str]) -> RobustnessPlan:
        return cls(tuple(PerturbationChoice.parse(t) for t in texts))

    def to_json(self) -> list[str] | None:
        """None for the default plan, else each choice in its `--perturb` form."""
        return [c.text() for c in self.choices] if self.choices else None


def _parse_levels(text: str, levels: str) -> tuple[float, ...]:
    parts = levels.split(":")
    try:
        if len(parts) == 3:
            start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
            if count < 2 or not stop > start:
                raise ValueError
            return tuple(round(start + (stop - start) * i / (count - 1), 6) for i in range(count))
        if len(parts) == 1:
            return tuple(float(v) for v in levels.split(","))
    except ValueError:
        pass
    raise ConfigError(
        f"--perturb {text!r}: cannot read the levels {levels!r}; give numbers as 0,0.1,0.5 or "
        "START:STOP:COUNT with STOP > START and COUNT >= 2, e.g. 0:0.9:10"
    )
