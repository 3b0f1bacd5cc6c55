"""`check_modality`: a field kind through everything plait asks of it, like `check_fusion`.

    from plait.testing import ModalitySample, check_modality
    sample = ModalitySample(options={}, train=table, present={"f": "a.png"}, empty={"f": ""},
                            broken={"f": "broken.png"}, request={"f": base64_png}, root=tmp_path)
    check_modality(ImageModality, sample)

The steps, in order (each raises AssertionError naming the kind, the step and what was violated):
declarations (perturbation families registered, input roles for every column, a widget) → fit on the
training rows (and not-fitted before) → load a present, an empty and an undecodable value (a tensor,
`Absent`, `Absent`) → collate with zero fill → the encoder contract under every presence pattern →
JSON state round trip → the bundle's preprocessing.json round trip (written as a bundle writes it,
rebuilt from the field spec as a bundle rebuilds it) → the sample request through the HTTP parser and
the server's record loader → every perturbation family at level 0 (identity) and at a middle level →
the provenance fingerprint of the files the training rows reference.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import torch
from torch import Tensor

from plait.config import FieldSpec
from plait.errors import PlaitError
from plait.modalities.contract import ROLES, InputSpec, file_columns, input_spec, noise_family
from plait.testing.checks import require
from plait.testing.encoder_conformance import check_encoder
from plait.types import Absent, Batch

WIDGET_CONTROLS = ("file", "text", "json", "columns")


@dataclass(frozen=True)
class ModalitySample:
    """What `check_modality` runs a kind on.

    options: the field's options (as under `fields.NAME` in the config, without `kind`).
    train: a few training rows (the columns the field reads).
    present / empty / broken: one row each whose value loads, is empty, and cannot be decoded.
    request: one JSON record as a client sends it (media as base64 text) for the `present` value.
    root: the media root the rows' paths are relative to.
    """

    options: Mapping[str, Any]
    train: pl.DataFrame
    present: Mapping[str, Any]
    empty: Mapping[str, Any]
    broken: Mapping[str, Any]
    request: Mapping[str, Any]
    root: Path
    name: str = "f"
    extra: Mapping[str, Any] = field(default_factory=dict)  # reserved for kind-specific checks


def check_modality(cls: type, sample: ModalitySample) -> None:
    """Run the whole modality contract on `cls(sample.name, **sample.options)`."""
    kind = getattr(cls, "kind", None)
    require(isinstance(kind, str) and bool(kind), f"{cls.__name__} must declare kind: ClassVar[str]")
    where = f"{cls.__name__} (kind '{kind}')"
    modality = cls(sample.name, **sample.options)
    _check_declarations(modality, where)
    _check_not_fitted(modality, where)
    modality.fit(sample.train, sample.root)

    loaded = _check_load(modality, sample, where)
    values, mask = _check_collate(modality, loaded, where)
    real, real_mask = modality.collate([loaded[0]] * 3)  # every row a real value, for the patterns
    _check_encoder_patterns(modality, real, real_mask, where)
    restored = _restore_json(cls, modality, sample, where)
    _check_same_loads(modality, restored, sample, where, "JSON state round trip")
    rebuilt = _restore_bundle(cls, modality, sample, where)
    _check_same_loads(modality, rebuilt, sample, where, "preprocessing.json round trip")
    _check_request(modality, sample, loaded[0], where)
    _check_perturbations(modality, values, mask, where)
    _check_summary(modality, real, real_mask, where)
    _check_provenance(modality, sample, where)


# ---------------------------------------------------------------- steps


def _check_declarations(modality: Any, where: str) -> None:
    from plait.evaluation.perturb import PERTURBATIONS

    families = _families(modality)
    unknown = [f for f in families if f not in PERTURBATIONS]
    require(
        not unknown,
        f"{where}: perturbation families {unknown} are not registered; registered: "
        f"{', '.join(PERTURBATIONS.names())}",
    )
    noise = noise_family(modality)
    require(
        noise is None or noise in families,
        f"{where}: noise_family '{noise}' is not one of its perturbation families {list(families)}",
    )
    spec = input_spec(modality)
    columns = tuple(modality.columns())
    require(bool(columns), f"{where}: columns() is empty")
    _check_spec(spec, columns, where)
    for column in file_columns(modality):
        require(column in columns, f"{where}: file column '{column}' is not one of columns() {columns}")


def _check_spec(spec: InputSpec, columns: tuple[str, ...], where: str) -> None:
    require(
        tuple(spec.roles) == columns,
        f"{where}: input_spec roles are for {tuple(spec.roles)}; expected every column, in order: {columns}",
    )
    bad = {c: r for c, r in spec.roles.items() if r not in ROLES}
    require(not bad, f"{where}: input_spec roles {bad} are not roles; roles: {', '.join(ROLES)}")
    stray = [c for c in spec.main_columns if c not in columns]
    require(not stray, f"{where}: main_columns {stray} are not columns of the field")
    require(bool(spec.accepts), f"{where}: input_spec.accepts is empty; say what a client sends")
    require(
        spec.widget.control in WIDGET_CONTROLS,
        f"{where}: widget control '{spec.widget.control}' is not one of {WIDGET_CONTROLS}",
    )
    require(
        not spec.media_columns or spec.probe is not None,
        f"{where}: media columns {spec.media_columns} need input_spec.probe (the header check of the bytes)",
    )


def _check_not_fitted(modality: Any, where: str) -> None:
    try:
        modality.get_state()
    except PlaitError:
        return
    raise AssertionError(f"{where}: get_state() before fit must raise NotFittedError")


def _check_load(modality: Any, sample: ModalitySample, where: str) -> list[Tensor | Absent]:
    loaded = [modality.load(row, sample.root) for row in (sample.present, sample.empty, sample.broken)]
    present, empty, broken = loaded
    require(isinstance(present, Tensor), f"{where}: load(present) must return a tensor, got {present!r}")
    require(isinstance(empty, Absent), f"{where}: load(empty) must return Absent, got {_short(empty)}")
    require(
        isinstance(broken, Absent),
        f"{where}: load(undecodable) must return Absent (the field absent, counted), got {_short(broken)}",
    )
    again = modality.load(sample.present, sample.root)
    require(
        isinstance(again, Tensor) and _same(present, again), f"{where}: load(present) is not deterministic"
    )
    return loaded


def _check_collate(
    modality: Any, loaded: Sequence[Tensor | Absent], where: str
) -> tuple[Tensor, Tensor | None]:
    first = loaded[0]
    items = [first, None, first]
    values, mask = modality.collate(items)
    require(values.shape[0] == 3, f"{where}: collate of 3 items gave values of shape {tuple(values.shape)}")
    require(bool(torch.count_nonzero(values[1]) == 0), f"{where}: an absent item must be zero-filled")
    if mask is not None:
        require(
            mask.dtype == torch.bool and mask.shape[0] == 3,
            f"{where}: the step mask must be BoolTensor[B, L]; got {mask.dtype} {tuple(mask.shape)}",
        )
    return values, mask


def _check_encoder_patterns(modality: Any, values: Tensor, mask: Tensor | None, where: str) -> None:
    torch.manual_seed(0)
    encoder = modality.build_encoder(8)
    require(getattr(encoder, "output_dim", None) is not None, f"{where}: the encoder needs output_dim")
    for pattern in itertools.product((False, True), repeat=values.shape[0]):
        present = torch.tensor(pattern)
        try:
            if any(pattern) and not all(pattern):  # the full contract needs both kinds of rows
                check_encoder(encoder, values, present, mask)
            else:
                _check_uniform(encoder, values, present, mask)
        except AssertionError as exc:
            raise AssertionError(f"{where}: encoder with present={list(pattern)}: {exc}") from None


def _check_uniform(encoder: Any, values: Tensor, present: Tensor, mask: Tensor | None) -> None:
    """Every row present, or none: finite outputs of the declared width, pooled zero where absent."""
    with torch.no_grad():
        out = encoder(values, present, mask)
    width = int(encoder.output_dim)
    require(out.pooled.shape == (values.shape[0], width), f"pooled has shape {tuple(out.pooled.shape)}")
    require(out.tokens.shape[0] == values.shape[0] and out.tokens.shape[-1] == width, "tokens shape")
    require(bool(torch.isfinite(out.pooled).all()), "pooled is not finite")
    if not bool(present.any()):
        require(bool(torch.count_nonzero(out.pooled) == 0), "pooled must be zero where absent")


def _restore_json(cls: type, modality: Any, sample: ModalitySample, where: str) -> Any:
    try:
        text = json.dumps(modality.get_state(), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"{where}: get_state() must be plain finite JSON data: {exc}") from None
    restored = cls(sample.name, **sample.options)
    restored.set_state(json.loads(text))
    return restored


def _restore_bundle(cls: type, modality: Any, sample: ModalitySample, where: str) -> Any:
    """Written as a bundle writes preprocessing.json and rebuilt as a bundle rebuilds the field:
    from its spec through the registry (when the kind is registered), then set_state."""
    import tempfile

    from plait.build import build_modality
    from plait.bundle import _read_json, _write_json
    from plait.modalities import MODALITIES
    from plait.pretrained.registry import is_pretrained

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "preprocessing.json"
        _write_json(path, {sample.name: modality.get_state()})
        states = _read_json(path)
    kind = str(getattr(cls, "kind", ""))
    pretrained = is_pretrained(sample.options.get("encoder"))  # the registry builds it from the option
    if kind in MODALITIES and (MODALITIES.get(kind) is cls or pretrained):
        rebuilt = build_modality(FieldSpec(name=sample.name, kind=kind, options=dict(sample.options)))
    else:
        rebuilt = cls(sample.name, **sample.options)
    rebuilt.set_state(states[sample.name])
    require(type(rebuilt) is cls, f"{where}: the registry builds {type(rebuilt).__name__} for kind '{kind}'")
    return rebuilt


def _check_same_loads(modality: Any, other: Any, sample: ModalitySample, where: str, step: str) -> None:
    for row in (sample.present, sample.empty, sample.broken):
        a, b = modality.load(row, sample.root), other.load(row, sample.root)
        same = _same(a, b) if isinstance(a, Tensor) and isinstance(b, Tensor) else a == b
        require(same, f"{where}: {step} changed load({_short(row)}): {_short(a)} vs {_short(b)}")


def _check_request(modality: Any, sample: ModalitySample, expected: Tensor | Absent, where: str) -> None:
    """The sample request through the server's parser (default settings) and record loader: the
    field is used and loads to what the file loaded to."""
    from plait.serving.inputs import InputSchema, RequestError, parse_record
    from plait.serving.loader import RecordLoader
    from plait.serving.settings import ServeSettings

    schema = InputSchema.for_modalities({sample.name: modality}, ServeSettings())
    try:
        parsed = parse_record(dict(sample.request), schema)
    except RequestError as exc:
        raise AssertionError(f"{where}: the server refused the sample request: {exc.message}") from None
    loader = RecordLoader({sample.name: modality})
    try:
        loaded = loader.load(parsed.values)
    finally:
        loader.close()
    status = loaded.statuses[sample.name]
    require(
        status.state == "used", f"{where}: the served value was not used: {status.state} ({status.reason})"
    )
    value = loaded.values[sample.name]
    require(
        _same(value, expected),
        f"{where}: the served value loads to {_short(value)}, the table's to {_short(expected)}",
    )


def _check_summary(modality: Any, values: Tensor, mask: Tensor | None, where: str) -> None:
    """Summary features (the boosting baseline's): one finite row of the same width per row, and a
    row's features do not depend on the other rows of its batch."""
    from plait.modalities.contract import summary_features

    out = summary_features(modality, values, mask)
    require(
        out.ndim == 2 and out.shape[0] == values.shape[0] and out.shape[1] > 0,
        f"{where}: summary_features gave shape {tuple(out.shape)} for {values.shape[0]} rows; "
        "expected (rows, D) with D > 0",
    )
    require(bool(torch.isfinite(out).all()), f"{where}: summary_features of present rows are not all finite")
    one = summary_features(modality, values[:1], None if mask is None else mask[:1])
    require(
        one.shape[1] == out.shape[1] and bool(torch.allclose(one[0], out[0], atol=1e-5, equal_nan=True)),
        f"{where}: summary_features of a row change with the batch it is in",
    )


def _check_perturbations(modality: Any, values: Tensor, mask: Tensor | None, where: str) -> None:
    """Each family at level 0 leaves the batch as it was; at a middle level it keeps shapes and
    dtypes, never marks an absent row present, and leaves absent rows zero."""
    from plait.evaluation.perturb import PERTURBATIONS, perturb_batch

    present = torch.tensor([True, False, True])
    batch = _batch("f", values, mask, present)
    for name in _families(modality):
        family = PERTURBATIONS.get(name)
        middle = family.levels[len(family.levels) // 2]
        same = perturb_batch(batch, "f", modality, name, 0.0, seed=0)
        require(
            _same(same.values["f"], values) and bool(torch.equal(same.present["f"], present)),
            f"{where}: perturbation '{name}' at level 0 changed the batch",
        )
        out = perturb_batch(batch, "f", modality, name, float(middle), seed=0)
        got = out.values["f"]
        require(
            got.shape == values.shape and got.dtype == values.dtype,
            f"{where}: perturbation '{name}' changed values {tuple(values.shape)} {values.dtype} into "
            f"{tuple(got.shape)} {got.dtype}",
        )
        require(
            not bool((out.present["f"] & ~present).any()),
            f"{where}: perturbation '{name}' marked an absent row present",
        )
        require(
            bool(torch.count_nonzero(got[1]) == 0), f"{where}: perturbation '{name}' wrote into an absent row"
        )
        if mask is not None and "f" in out.masks:
            require(
                out.masks["f"].shape == mask.shape, f"{where}: perturbation '{name}' changed the mask's shape"
            )


def _check_provenance(modality: Any, sample: ModalitySample, where: str) -> None:
    from plait.provenance.fingerprint import fingerprint_files
    from plait.provenance.media import media_paths

    paths = media_paths(sample.train, {sample.name: modality}, sample.root)
    named = {  # the cells that are text name files (a series column may hold the values themselves)
        v.strip()
        for c in file_columns(modality)
        for v in sample.train[c].drop_nulls().to_list()
        if isinstance(v, str)
    } - {""}
    require(
        len(set(paths)) == len(named),
        f"{where}: the training rows name {len(named)} files through {file_columns(modality)} but "
        f"provenance found {len(set(paths))}",
    )
    if paths:
        print_ = fingerprint_files(paths, sample.root)
        require(print_.count + print_.missing == len(named), f"{where}: fingerprint counts {print_}")
        require(
            fingerprint_files(paths, sample.root).sha256 == print_.sha256,
            f"{where}: the file fingerprint is not stable",
        )


# ---------------------------------------------------------------- helpers


def _families(modality: Any) -> tuple[str, ...]:
    from plait.modalities.contract import perturbation_families

    return ("missing", *perturbation_families(modality))


def _same(a: Tensor | Absent, b: Tensor | Absent) -> bool:
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return a.shape == b.shape and bool(torch.equal(a.nan_to_num(), b.nan_to_num()))
    return a == b


def _short(value: object) -> str:
    if isinstance(value, Tensor):
        return f"tensor{tuple(value.shape)}"
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


def _batch(name: str, values: Tensor, mask: Tensor | None, present: Tensor) -> Batch:
    return Batch(values={name: values}, present={name: present}, masks={} if mask is None else {name: mask})
