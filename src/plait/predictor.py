"""`Predictor`: the Python face of plait — fit, evaluate, predict, save, load. Framework-free at
predict time: Lightning is imported only inside `fit`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, overload

import polars as pl
import torch

from plait.bundle import TrainedModel, bundle_content_id, load_bundle, save_bundle
from plait.config import Config, DataSpec, ModelSpec, TrainSpec
from plait.data.dataset import LoadReport, TensorTable, load_rows, load_table
from plait.data.frames import BATCH_FIX, as_polars, like_input, mapping_rows, table_or_path
from plait.data.table import read_table
from plait.errors import ConfigError, DataError, PlaitError
from plait.evaluation.evaluate import Evaluation, evaluate
from plait.evaluation.zero_shot import ZeroShotAnswer, text_partner, zero_shot_answers
from plait.modalities.contract import sequence_columns
from plait.models.answers import Prediction, row_answers
from plait.models.inference import run_imputed, run_model
from plait.registry import suggest
from plait.retrieval.embeddings import (
    Embeddings,
    check_space_field,
    embed_frame,
    embed_records,
    empty_embeddings,
)
from plait.retrieval.examples import ExampleIndexes, check_impute, with_examples
from plait.retrieval.search import SearchResult, open_index, query_record, search

if TYPE_CHECKING:
    from plait.data.frames import DataFrame
    from plait.evaluation.result import EvaluationReport

Data: TypeAlias = "Path | str | DataFrame"  # a table file, or a polars or pandas DataFrame
Rows: TypeAlias = "Data | Sequence[Mapping[str, Any]] | Mapping[str, Any]"

_SECTION_OF = {
    **{k: "train" for k in TrainSpec.__dataclass_fields__},
    **{k: "model" for k in ModelSpec.__dataclass_fields__ if k != "fusion"},
    **{k: "data" for k in DataSpec.__dataclass_fields__ if k not in ("path", "root")},
}


class Predictor:
    """Train, evaluate and serve a multimodal model.

    >>> predictor = Predictor(label="fault", fusion="gated").fit("train.parquet")
    >>> predictor.predict([{"note": "bearing noise", "thermal": "img/7.png"}])[0].prediction
    """

    def __init__(
        self,
        label: str | None = None,
        *,
        fields: Mapping[str, Mapping[str, Any] | str] | None = None,
        fusion: str = "gated",
        task_type: str = "auto",
        config: Config | None = None,
        **options: Any,
    ) -> None:
        if config is None and label is None:
            raise ConfigError("Predictor: give `label=` (the column to predict) or `config=`")
        self.label = label
        self.fields = None if fields is None else dict(fields)
        self.fusion = fusion
        self.task_type = task_type
        self.config = config
        self.options = options
        for key in options:
            if key not in _SECTION_OF:
                raise ConfigError(
                    f"Predictor: unknown option '{key}';{suggest(key, list(_SECTION_OF))} "
                    f"Options: {', '.join(sorted(_SECTION_OF))}"
                )
        self.trained_: TrainedModel | None = None
        self.bundle_path_: Path | None = None  # where it was loaded from or saved to
        self._examples: ExampleIndexes | None = None  # the last examples table's indexes

    # -- training ---------------------------------------------------------------------------------
    def fit(self, data: Data | None = None, *, root: Path | str | None = None) -> Predictor:
        """Train on `data`: a table file, or a polars or pandas DataFrame (its media paths relative
        to `root`, default the working directory); None trains on the config's data.path."""
        from plait.workflow.train import train  # Lightning is imported only when training

        config, table = self._config_for(data, root)
        self.config = config
        self.trained_ = train(config, table=table).trained
        return self

    def _config_for(self, data: Data | None, root: Path | str | None) -> tuple[Config, pl.DataFrame | None]:
        if data is None:
            if self.config is None:
                raise ConfigError("Predictor.fit: no data given and no config with data.path")
            return self.config, None
        given = table_or_path(data, "Predictor.fit")
        table = given if isinstance(given, pl.DataFrame) else read_table(given)
        base = Path.cwd()
        data_section: dict[str, Any] = {}
        if isinstance(given, Path):
            data_section["path"] = str(given.resolve())
        configured_root = self.config is not None and self.config.data.root is not None
        if root is not None:
            data_section["root"] = str(Path(root).resolve())
        elif isinstance(given, pl.DataFrame) and not configured_root:
            data_section["root"] = str(base)
        if self.config is not None:
            return self.config.with_overrides(data={**self.config.to_dict()["data"], **data_section}), table
        fields: Mapping[str, Any] | None = self.fields
        if fields is None:  # as `plait init` would: no ID columns, the group as the split, the media's root
            from plait.data.infer import infer_fields

            media_root = Path(data_section.get("root", Path(data_section.get("path", base)).parent))
            inferred = infer_fields(table, str(self.label), media_root)
            fields = inferred.fields
            split = inferred.split.to_config()
            if split is not None and "split" not in self.options:
                data_section["split"] = split
            if root is None and inferred.media_root is not None:
                data_section["root"] = str(inferred.media_root.path)
        raw: dict[str, Any] = {
            "data": data_section,
            "task": {"label": self.label, "type": self.task_type},
            "fields": fields,
            "model": {"fusion": self.fusion},
            "train": {},
        }
        for key, value in self.options.items():
            raw[_SECTION_OF[key]][key] = value
        return Config.from_dict(raw, base_dir=base), table

    # -- using a trained model --------------------------------------------------------------------
    @property
    def trained(self) -> TrainedModel:
        if self.trained_ is None:
            raise PlaitError("this Predictor is not trained yet; call .fit(data) or Predictor.load(bundle)")
        return self.trained_

    def evaluate(self, data: Data, *, root: Path | str | None = None, rows: str = "auto") -> dict[str, Any]:
        """Metrics on a labelled table, each field alone and each field left out. `rows` as in
        `plait evaluate --rows`: auto scores the held-out test rows when `data` is the table the
        model was trained on, else every labelled row; all; test; val. `selection` says which."""
        return self._evaluation(data, root, rows).to_json()

    def report(
        self,
        data: Data,
        *,
        root: Path | str | None = None,
        out: Path | str | None = None,
        rows: str = "auto",
        baseline: Predictor | None = None,
        robustness: bool = True,
        seed: int = 0,
    ) -> EvaluationReport:
        """The full evaluation (ablation, robustness, calibration, interpretation) as frozen records
        (`.to_json()` gives what metrics.json holds); with `out`, also writes OUT/metrics.json and
        OUT/report.html (see `plait evaluate`)."""
        from plait.workflow.evaluate import evaluate_report

        given = table_or_path(data, "Predictor.report")
        return evaluate_report(
            self.trained,
            given,
            root=None if root is None else Path(root),
            rows=rows,
            baseline=None if baseline is None else baseline.trained,
            robustness=robustness,
            seed=seed,
            out=None if out is None else Path(out),
        ).data

    def _evaluation(self, data: Data, root: Path | str | None, rows: str) -> Evaluation:
        self.trained.task.require_prediction("evaluate")
        return evaluate(self.trained, data, root=None if root is None else Path(root), rows=rows)

    @overload
    def predict(
        self,
        rows: Rows,
        *,
        root: Path | str | None = ...,
        calibrated: bool = ...,
        as_frame: Literal[False] = ...,
        impute: str | None = ...,
        examples_from: Path | str | None = ...,
        examples: int = ...,
    ) -> list[Prediction]: ...

    @overload
    def predict(
        self,
        rows: Rows,
        *,
        root: Path | str | None = ...,
        calibrated: bool = ...,
        as_frame: Literal[True],
        impute: str | None = ...,
        examples_from: Path | str | None = ...,
        examples: int = ...,
    ) -> DataFrame: ...

    def predict(
        self,
        rows: Rows,
        *,
        root: Path | str | None = None,
        calibrated: bool = True,
        as_frame: bool = False,
        impute: str | None = None,
        examples_from: Path | str | None = None,
        examples: int = 3,
    ) -> list[Prediction] | DataFrame:
        """Predict each row; a row may hold any subset of the fields (keys are table column names).
        `rows`: a table file, a DataFrame, a list of records, one record, or a dict of equal-length
        columns. A calibrated bundle's probabilities are temperature-scaled with the temperature of
        the fields each row has; `calibrated=False` gives the raw softmax (the class is the same).
        `impute="embedding"` (a bundle trained with `space.impute: true`): a field of the shared
        space that a row lacks is synthesised from the fields it has and listed in
        `fields_imputed`, not `fields_used`; with `examples_from` (a table) each imputed field
        also names its `examples` nearest real items there (`Prediction.examples`).
        `as_frame=True`: one row per prediction (prediction, prob_<class>…, fields_used,
        fields_imputed, fields_missing, degraded, model_id) as a DataFrame — pandas on the index of
        `rows` when `rows` was pandas, so `df["p"] = predict(df, as_frame=True)["prediction"]` aligns."""
        predictions = self.predict_with_report(
            rows,
            root=root,
            calibrated=calibrated,
            impute=impute,
            examples_from=examples_from,
            examples=examples,
        )[0]
        if not as_frame:
            return predictions
        return like_input(predictions_table(predictions, self.trained.task.classes), rows)

    def predict_proba(
        self, rows: Rows, *, root: Path | str | None = None, calibrated: bool = True
    ) -> DataFrame:
        """Each row's class probabilities, one column per class, as a DataFrame (pandas on the index
        of `rows` when `rows` was pandas, else polars)."""
        task = self.trained.task
        task.require_prediction("predict_proba")
        if not task.is_classification:
            raise PlaitError(
                f"predict_proba: this model is a regression of '{task.label}', so it has no class "
                "probabilities; use predict(rows) for its predicted values"
            )
        predictions = self.predict(rows, root=root, calibrated=calibrated)
        table = pl.DataFrame(
            {c: [_probabilities(p)[c] for p in predictions] for c in task.classes},
            schema=dict.fromkeys(task.classes, pl.Float64),
        )
        return like_input(table, rows)

    def predict_with_report(
        self,
        rows: Rows,
        *,
        root: Path | str | None = None,
        calibrated: bool = True,
        impute: str | None = None,
        examples_from: Path | str | None = None,
        examples: int = 3,
    ) -> tuple[list[Prediction], LoadReport]:
        trained = self.trained
        trained.task.require_prediction("predict")
        check_impute(trained, impute, examples_from)  # before any row is read
        batch, media_root = _batch(rows, root, _sequence_columns(trained))
        if not len(batch):
            return [], LoadReport(rows=0, fields=())
        if isinstance(batch, pl.DataFrame):  # a table: a field with no column says so in the report
            tensors, report = load_table(batch, trained.modalities, media_root)
        else:
            _check_keys(batch, trained)
            tensors, report = load_rows(batch, trained.modalities, media_root)
        predictions = self.answer_tensors(
            tensors, calibrated=calibrated, impute=impute, examples_from=examples_from, examples=examples
        )
        return predictions, report

    def answer_tensors(
        self,
        tensors: TensorTable,
        *,
        calibrated: bool = True,
        impute: str | None = None,
        examples_from: Path | str | None = None,
        examples: int = 3,
    ) -> list[Prediction]:
        """Each row of `tensors` (loaded through the model's fields) answered as `predict` does."""
        trained = self.trained
        trained.task.require_prediction("predict")
        temperatures = trained.calibration if calibrated else None
        if not check_impute(trained, impute, examples_from):
            out = run_model(trained.model, tensors)
            return row_answers(
                out,
                tensors.present,
                fields=tuple(trained.modalities),
                task=trained.task,
                calibration=temperatures,
                model_id=trained.model_id,
            )
        run = run_imputed(trained.model, tensors)["all"]
        predictions = row_answers(
            run.out,
            run.observed,
            fields=tuple(trained.modalities),
            task=trained.task,
            calibration=temperatures,
            model_id=trained.model_id,
            imputed=run.imputed,
        )
        if examples_from is None:
            return predictions
        return with_examples(self._example_indexes(Path(examples_from)), predictions, run, examples)

    def _example_indexes(self, table: Path) -> ExampleIndexes:
        """The indexes of `table` for this model, kept across calls (and a streamed predict's chunks)."""
        held = self._examples
        if held is None or held.table != table or held.trained is not self.trained:
            held = self._examples = ExampleIndexes(self.trained, self.bundle_path_, table)
        return held

    def embed(self, rows: Rows, *, field: str, root: Path | str | None = None) -> Embeddings:
        """Each row's `field` in the model's shared space: `Embeddings.vectors` (N, dim) unit rows,
        NaN where the field is absent (`present` False). `rows` as in `predict`. Only that field's
        encoder runs. A model trained without a `space:` section has no embeddings (ConfigError)."""
        trained = self.trained
        check_space_field(trained, field)
        batch, media_root = _batch(rows, root, _sequence_columns(trained))
        if not len(batch):
            return empty_embeddings(trained, field)
        if isinstance(batch, pl.DataFrame):
            embedded, _ = embed_frame(trained, batch, (field,), media_root)
        else:
            _check_keys(batch, trained)
            embedded, _ = embed_records(trained, batch, (field,), media_root)
        return embedded[0]

    def search(
        self,
        query: str | Mapping[str, Any],
        *,
        index: Path | str,
        from_field: str,
        to_field: str,
        k: int = 10,
        root: Path | str | None = None,
    ) -> SearchResult:
        """The `k` items of field `to_field` in the table `index` nearest, in the shared space, to
        `query` — a value of `from_field` as a table holds it (a text, a media path relative to the
        working directory) or a record. The index is saved beside the bundle (`plait search`'s),
        or built in memory for a model not saved; `root`: the table's media root."""
        trained = self.trained
        record = query_record(trained, from_field, query) if isinstance(query, str) else dict(query)
        table = Path(index)
        items = open_index(
            trained, self.bundle_path_, table, to_field, root=None if root is None else Path(root)
        )
        return search(trained, items, from_field, record, root=Path.cwd(), k=k)

    def zero_shot(
        self,
        rows: Rows,
        *,
        field: str,
        text_field: str | None = None,
        labels: Sequence[str] | None = None,
        prompt: str | None = None,
        root: Path | str | None = None,
    ) -> list[ZeroShotAnswer]:
        """Classify each row's `field` by the nearest label prompt in the shared space, read by the
        text field aligned with it (no head: labels may be any, `labels` default the model's
        classes; `prompt` default `space.prompt`, e.g. "a recording of a {label} pump")."""
        trained = self.trained
        check_space_field(trained, field)
        text = text_partner(trained.model, trained.modalities, field, text_field)
        spec = trained.config.shared_space
        chosen = list(labels) if labels is not None else list(trained.task.classes)
        if not chosen:
            raise ConfigError(
                "zero_shot: this model has no classes; give the labels to choose from (labels=[...])"
            )
        template = prompt if prompt is not None else (spec.prompt if spec is not None else "{label}")
        e = self.embed(rows, field=field, root=root)
        return zero_shot_answers(
            trained.model,
            trained.modalities,
            torch.from_numpy(e.vectors),
            torch.from_numpy(e.present),
            text_field=text,
            labels=chosen,
            prompt=template,
        )

    # -- persistence --------------------------------------------------------------------------------
    def save(self, path: Path | str, *, embed_weights: bool = False) -> Path:
        """Write the bundle; from then on predictions carry its content id as `model_id`.
        `embed_weights`: copy the pretrained encoders' weights into it (`plait train --embed-weights`)."""
        out = save_bundle(self.trained, path)
        if embed_weights:
            from plait.pretrained.embed import embed_weights as embed

            embed(out, self.trained.modalities)
        self.trained_ = replace(self.trained, model_id=bundle_content_id(out))
        self.bundle_path_ = out
        return out

    @classmethod
    def load(cls, path: Path | str, *, trust_modified: bool = False) -> Predictor:
        """A saved bundle, verified (see `load_bundle`); `trust_modified`: a bundle edited since it
        was written loads with a warning instead of a `BundleError`."""
        trained = load_bundle(path, trust_modified=trust_modified)
        predictor = cls(config=trained.config)
        predictor.trained_ = trained
        predictor.bundle_path_ = Path(path)
        return predictor

    @classmethod
    def from_trained(cls, trained: TrainedModel) -> Predictor:
        predictor = cls(config=trained.config)
        predictor.trained_ = trained
        return predictor


def _batch(
    rows: Rows, root: Path | str | None, sequence_columns: frozenset[str]
) -> tuple[pl.DataFrame | Sequence[Mapping[str, Any]], Path]:
    """The rows to predict, as a table or as records, and their media root."""
    if isinstance(rows, (str, Path)):
        path = Path(rows)
        return read_table(path), Path(root) if root is not None else path.parent
    media_root = Path(root) if root is not None else Path.cwd()
    frame = as_polars(rows)
    if frame is not None:
        return frame, media_root
    if isinstance(rows, Mapping):
        return mapping_rows(rows, sequence_columns, "predict"), media_root
    if not isinstance(rows, Iterable):
        raise DataError(f"predict: expected rows, got {type(rows).__name__}; {BATCH_FIX}")
    records = list(rows)
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise DataError(f"predict: row {i} is a {type(record).__name__}, not a dict; {BATCH_FIX}")
    return records, media_root


def _check_keys(records: Sequence[Mapping[str, Any]], trained: TrainedModel) -> None:
    """A record's key that the model does not read is ignored (records are often table rows that
    carry ids and the label) — unless it looks like a misspelling of a column the record lacks,
    which `plait serve` would refuse (422) and which would otherwise leave its field silently absent."""
    known = sorted({c for m in trained.modalities.values() for c in m.columns()} | {trained.task.label})
    for i, record in enumerate(records):
        lacking = [c for c in known if c not in record]
        for key in record:
            if key in known or not lacking:
                continue
            hint = suggest(str(key), lacking)
            if hint:
                raise DataError(
                    f"predict: row {i} has the key {key!r}, which the model does not read;{hint} "
                    f"Columns it reads: {', '.join(known)}. Rename the key, or its field is absent"
                )


def _sequence_columns(trained: TrainedModel) -> frozenset[str]:
    """The columns whose one value is itself a list (a series, a vector)."""
    return frozenset(c for m in trained.modalities.values() for c in sequence_columns(m))


def _probabilities(prediction: Prediction) -> dict[str, float]:
    if prediction.probabilities is None:  # a classifier's prediction always has them
        raise PlaitError(f"prediction {prediction.prediction!r} has no class probabilities")
    return prediction.probabilities


def predictions_table(
    predictions: Sequence[Prediction], classes: Sequence[str], *, examples: bool = False
) -> pl.DataFrame:
    """One row per prediction: prediction, prob_<class> columns, fields used/imputed/missing,
    degraded, model_id; with `examples`, each imputed field's nearest real items as one JSON text."""
    data: dict[str, list[Any]] = {"prediction": [p.prediction for p in predictions]}
    for c in classes:
        data[f"prob_{c}"] = [None if p.probabilities is None else p.probabilities[c] for p in predictions]
    data["fields_used"] = [",".join(p.fields_used) for p in predictions]
    data["fields_imputed"] = [",".join(p.fields_imputed) for p in predictions]
    data["fields_missing"] = [",".join(p.fields_missing) for p in predictions]
    data["degraded"] = [p.degraded for p in predictions]
    data["model_id"] = [p.model_id for p in predictions]
    if examples:
        data["examples"] = [
            ""
            if p.examples is None
            else json.dumps({f: [e.to_json() for e in found] for f, found in p.examples.items()}, default=str)
            for p in predictions
        ]
    return pl.DataFrame(data)
