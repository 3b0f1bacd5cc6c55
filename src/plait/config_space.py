"""The `space` section: projections of the fields into one shared embedding space, trained with a
contrastive objective (plait.objectives.contrastive) — for retrieval across fields, zero-shot
labels from a text field, and imputing a missing field's embedding.

```yaml
space:
  dim: 128              # width of the shared space
  pairs: all            # or [[thermal, sound], [note, thermal]]: which fields are pulled together
  weight: 0.5           # the contrastive loss beside the supervised one (default 0.5, or 0 with a
                        # contrastive stage: the space is then learned before the task)
  temperature: 0.07     # starting temperature of the InfoNCE logits; learned unless fixed
```
A `{kind: contrastive, epochs: N}` stage trains encoders and projections on the pairs alone
(before the supervised stages, or as the only stage for a table without labels)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from plait.config_records import coerce, no_unknown_keys
from plait.errors import ConfigError
from plait.registry import suggest

Pair = tuple[str, str]
ALL_PAIRS = "all"
_EXAMPLE = "e.g. `pairs: all` or `pairs: [[thermal, sound], [note, thermal]]`"


@dataclass(frozen=True)
class SpaceSpec:
    dim: int = 128
    pairs: tuple[Pair, ...] = ()  # empty: every pair of fields (`pairs: all`)
    weight: float | None = None  # the contrastive loss beside the supervised one; None: Config.space_weight
    temperature: float = 0.07
    learn_temperature: bool = True
    hidden: int = 0  # 0: each projection is one Linear; > 0: Linear → GELU → Linear of this width
    impute: bool = False  # fit, per field, a model of its embedding from the others (predict with
    # impute="embedding")
    prompt: str = "{label}"  # zero-shot: the text a label becomes, for a text field in the space

    def pairs_for(self, fields: Sequence[str]) -> tuple[Pair, ...]:
        """The pairs to align among `fields` (the model's, in order): the listed ones, or all."""
        return self.pairs or tuple(combinations(fields, 2))

    def fields_in(self, fields: Sequence[str]) -> tuple[str, ...]:
        """The fields with a projection: those in some pair, in the model's order."""
        used = {f for pair in self.pairs_for(fields) for f in pair}
        return tuple(f for f in fields if f in used)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dim": self.dim,
            "pairs": ALL_PAIRS if not self.pairs else [list(p) for p in self.pairs],
            "weight": self.weight,
            "temperature": self.temperature,
            "learn_temperature": self.learn_temperature,
            "hidden": self.hidden,
            "impute": self.impute,
            "prompt": self.prompt,
        }
        return out


def parse_space(raw: Any, path: str = "space") -> SpaceSpec:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: expected a mapping (dim, pairs, weight, temperature, …), got {raw!r}")
    defaults = SpaceSpec()
    keys = tuple(SpaceSpec.__dataclass_fields__)
    no_unknown_keys(raw, keys, path)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "pairs":
            values[key] = parse_pairs(value, f"{path}.pairs")
        elif key == "weight":
            values[key] = None if value is None else coerce(value, float, 0.0, f"{path}.weight")
        else:
            values[key] = coerce(value, type(getattr(defaults, key)), getattr(defaults, key), f"{path}.{key}")
    spec = SpaceSpec(**{**{k: getattr(defaults, k) for k in keys}, **values})
    checks = [
        ("dim", spec.dim >= 2, spec.dim, "an integer ≥ 2"),
        (
            "weight",
            spec.weight is None or spec.weight >= 0,
            spec.weight,
            "a weight ≥ 0 (0: only in contrastive stages)",
        ),
        ("temperature", 0 < spec.temperature <= 10, spec.temperature, "a temperature in (0, 10]"),
        ("hidden", spec.hidden >= 0, spec.hidden, "an integer ≥ 0 (0: linear projections)"),
    ]
    for key, ok, got, expected in checks:
        if not ok or (isinstance(got, float) and not math.isfinite(got)):
            raise ConfigError(f"{path}.{key}: expected {expected}, got {got!r}")
    check_prompt(spec.prompt, f"{path}.prompt")
    return spec


def check_prompt(prompt: str, path: str) -> None:
    """A zero-shot prompt: a text with {label} where the class name goes, and no other {…}."""
    try:
        filled = prompt.format(label="x")
    except (KeyError, IndexError, ValueError):
        filled = None
    if filled is None or "{label}" not in prompt:
        raise ConfigError(
            f"{path}: expected a text with {{label}} where the class name goes and no other braces "
            f"(write {{{{ and }}}} for literal ones), e.g. 'a recording of a {{label}} pump'; got {prompt!r}"
        )


def parse_pairs(raw: Any, path: str) -> tuple[Pair, ...]:
    """`all` (→ empty: every pair) or a list of two-field lists, each pair once."""
    if raw is None or raw == ALL_PAIRS:
        return ()
    if not isinstance(raw, list) or not raw:
        raise ConfigError(
            f"{path}: expected `all` or a non-empty list of field pairs, {_EXAMPLE}; got {raw!r}"
        )
    pairs: list[Pair] = []
    for i, item in enumerate(raw):
        ok = (
            isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(f, str) and f for f in item)
        )
        if not ok or item[0] == item[1]:
            raise ConfigError(f"{path}[{i}]: expected two different field names, {_EXAMPLE}; got {item!r}")
        pair = (str(item[0]), str(item[1]))
        if pair in pairs or pair[::-1] in pairs:
            raise ConfigError(f"{path}[{i}]: the pair {list(pair)} is listed twice; list each pair once")
        pairs.append(pair)
    return tuple(pairs)


def check_pairs(pairs: Sequence[Pair], fields: Sequence[str], path: str) -> None:
    """Every field a pair names is one of the config's fields; with fewer than two fields there is
    nothing to align."""
    if len(fields) < 2:
        raise ConfigError(
            f"{path}: a shared space aligns two or more fields, and this config has {list(fields)}; "
            "add a field or remove the space section"
        )
    for i, pair in enumerate(pairs):
        for name in pair:
            if name not in fields:
                hint = suggest(name, list(fields))
                raise ConfigError(f"{path}[{i}]: no field '{name}';{hint} Fields: {', '.join(fields)}")
