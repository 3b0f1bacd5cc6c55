"""The OpenAPI description of one server: pydantic models built from the bundle's columns.

The routes parse bodies themselves (plait.serving.inputs gives the did-you-mean errors and the
degrade-don't-reject rules), so these models document the accepted shapes — a `Record` with one
optional property per column, `{"records": [Record]}`, a bare `[Record]`, the multipart form —
and the responses; they never validate a request.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from plait.serving.inputs import Column, InputSchema

REF = "#/components/schemas/{model}"


class FieldState(BaseModel):
    state: str = Field(description="used, missing, failed or skipped")
    reason: str = Field(description="why the field was not used ('' when used)")


class PredictionOut(BaseModel):
    """One record's prediction."""

    model_config = ConfigDict(extra="allow")
    prediction: str | float = Field(description="the class (classification) or the value (regression)")
    probabilities: dict[str, float] | None = Field(
        description="class probabilities, calibrated for the fields present"
    )
    fields_used: list[str] = Field(description="fields whose own value was used")
    fields_imputed: list[str] = Field(
        description="fields synthesised from the others in the shared space (?impute=embedding)"
    )
    fields_missing: list[str] = Field(description="fields neither used nor imputed")
    degraded: bool = Field(description="true when any field was missing, failed, skipped or imputed")
    weights: dict[str, float] | None = Field(description="the fusion's per-field weights, when it has them")
    model_id: str
    temperature: float | None = Field(description="the calibration temperature applied (None: raw)")
    fields: dict[str, FieldState] = Field(description="what became of each field of the model")
    latency_ms: float = Field(description="time in the server from request to prediction")


class PredictionsOut(BaseModel):
    """Predictions for a list of records, in the order sent."""

    model_id: str
    predictions: list[PredictionOut]


class EmbeddingOut(BaseModel):
    """One record in the shared space."""

    embeddings: dict[str, list[float] | None] = Field(
        description="each field asked for: its unit vector, or null where it was neither used nor imputed"
    )
    fields_used: list[str]
    fields_imputed: list[str]
    fields_missing: list[str]
    fields: dict[str, FieldState]
    model_id: str
    latency_ms: float


class EmbeddingsOut(BaseModel):
    """Embeddings for a list of records, in the order sent."""

    model_id: str
    embeddings: list[EmbeddingOut]


class ErrorDetail(BaseModel):
    code: str = Field(description="stable code: bad_request, unauthorized, too_large, unknown_field, …")
    message: str = Field(description="what was wrong, naming the field, and how to fix it")
    field: str | None = Field(description="the field or column concerned, when there is one")


class ErrorOut(BaseModel):
    error: ErrorDetail


def record_model(schema: InputSchema) -> type[BaseModel]:
    """`Record`: one optional, nullable property per column (keys are column names)."""
    properties: dict[str, Any] = {}
    for i, column in enumerate(schema.columns.values()):
        annotation = _annotation(column, schema)
        description = f"{column.kind} field '{column.field}': {_describe(column)}"
        properties[f"c{i}"] = (
            annotation | None,
            Field(default=None, alias=column.name, title=column.name, description=description),
        )
    return create_model(
        "Record",
        __config__=ConfigDict(extra="forbid"),
        __doc__="One record: any subset of the model's columns; null or left out means absent.",
        **properties,
    )


def _annotation(column: Column, schema: InputSchema) -> Any:
    match column.role:
        case "media":  # base64 text or a data URL
            return str
        case "text":
            return Annotated[str, Field(max_length=schema.max_text_chars)]
        case "number":
            return float
        case "category":
            return str | float
        case "array":
            return list[float | None] | list[list[float | None]]
        case "vector":
            return list[float]
        case _:  # value: any JSON scalar or array
            return float | bool | str | list[Any]


def _describe(column: Column) -> str:
    match column.role:
        case "media":
            return "base64 bytes, or a data URL (data:image/png;base64,…); never a URL or a path"
        case "text":
            return "a string"
        case "number":
            return "a number (a string holding a number is accepted too)"
        case "category":
            return "a category level"
        case "array":
            return "[T] or [T][C] numbers (or the same as JSON text)"
        case "vector":
            return "a list of numbers"
        case _:
            return "a JSON value (a number, string, boolean or array), read by the field as it came"


def openapi_patch(openapi: dict[str, Any], schema: InputSchema) -> None:
    """Put the request bodies and responses of the predict routes into a generated OpenAPI dict."""
    record = record_model(schema)

    class RecordList(BaseModel):
        model_config = ConfigDict(extra="forbid")
        records: list[record] = Field(max_length=schema.max_records)  # type: ignore[valid-type]

    shapes: Any = record | RecordList | Annotated[list[record], Field(max_length=schema.max_records)]  # type: ignore[valid-type]
    body = TypeAdapter(shapes).json_schema(ref_template=REF)
    models = TypeAdapter(
        PredictionOut | PredictionsOut | EmbeddingOut | EmbeddingsOut | ErrorOut
    ).json_schema(ref_template=REF)
    components = openapi.setdefault("components", {}).setdefault("schemas", {})
    components.update(body.pop("$defs", {}))
    components.update(models.pop("$defs", {}))
    paths = openapi.get("paths", {})
    one = {"$ref": REF.format(model="PredictionOut")}
    error = {"application/json": {"schema": {"$ref": REF.format(model="ErrorOut")}}}
    predict = paths.get("/v1/predict", {}).get("post")
    if predict is not None:
        predict["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        predict["responses"]["200"] = {
            "description": "One prediction for a record object; {model_id, predictions} for a list",
            "content": {
                "application/json": {"schema": {"anyOf": [one, {"$ref": REF.format(model="PredictionsOut")}]}}
            },
        }
    embed = paths.get("/v1/embed", {}).get("post")
    if embed is not None:
        embed["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        embed["responses"]["200"] = {
            "description": "One record's embeddings for a record object; {model_id, embeddings} for a list",
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [
                            {"$ref": REF.format(model="EmbeddingOut")},
                            {"$ref": REF.format(model="EmbeddingsOut")},
                        ]
                    }
                }
            },
        }
    upload = paths.get("/v1/predict/upload", {}).get("post")
    if upload is not None:
        upload["requestBody"] = {
            "required": True,
            "content": {"multipart/form-data": {"schema": _form(schema)}},
        }
        upload["responses"]["200"] = {
            "description": "One prediction",
            "content": {"application/json": {"schema": one}},
        }
    for path in paths.values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                if status[0] in "45":
                    response["content"] = error


def _form(schema: InputSchema) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for column in schema.columns.values():
        if column.role == "media":
            properties[column.name] = {"type": "string", "format": "binary", "description": _describe(column)}
        else:
            properties[column.name] = {"type": "string", "description": f"{column.kind}: {_describe(column)}"}
    return {"type": "object", "properties": properties, "additionalProperties": False}
