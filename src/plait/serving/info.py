"""What `GET /v1/info` tells a client: the model, its fields and what each accepts, the server's
limits, batching and where the model runs, the bundle's test metrics and a provenance summary with
no paths (they describe the training machine, not this server)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plait.bundle import TrainedModel
from plait.serving.inputs import InputSchema
from plait.serving.runtime import RuntimeChoice
from plait.serving.settings import ServeSettings

PROVENANCE_KEYS = (
    "plait_version",
    "created_at",
    "config_sha256",
    "table_sha256",
    "table_rows",
    "seed",
    "split",
)


def server_info(
    trained: TrainedModel,
    s: ServeSettings,
    schema: InputSchema,
    *,
    breakers: Mapping[str, str],
    restarts: int,
    report: bool,
    runtime: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The /v1/info document. `breakers`: field → breaker state; `restarts`: model processes
    replaced so far; `report`: whether /report has the bundle's evaluation report; `runtime`: what
    runs the model (`RuntimeChoice.info`; None: torch)."""
    metrics = trained.metrics
    provenance = trained.provenance
    return {
        "model_id": trained.model_id,
        "task": {"type": trained.task.type, "label": trained.task.label},
        "classes": list(trained.task.classes),
        "calibrated": trained.calibration is not None,
        "space": _space(trained),
        "fields": [f.to_json() for f in schema.fields],
        "required_fields": list(s.required_fields),
        "limits": {
            "max_body_bytes": s.max_body_bytes,
            "max_records": s.max_records,
            "max_file_bytes": s.max_file_bytes,
            "max_request_pixels": s.max_request_pixels,
            "max_request_audio_s": s.max_request_audio_s,
            "max_batch_decode_s": s.max_batch_decode_s,
            "header_timeout_s": s.header_timeout_s,
            "body_timeout_s": s.body_timeout_s,
        },
        "batching": {"max_batch_size": s.max_batch_size, "max_wait_ms": s.max_wait_ms},
        "inference": {"where": s.inference, "restarts": restarts},
        "runtime": dict(runtime) if runtime is not None else RuntimeChoice().info(),
        "metrics": {k: metrics[k] for k in ("split", "metrics", "interval") if k in metrics},
        "provenance": {k: provenance[k] for k in PROVENANCE_KEYS if k in provenance},
        "breakers": dict(breakers),
        "auth": "api_key" if s.api_key else "none",
        "report": report,
    }


def _space(trained: TrainedModel) -> dict[str, Any] | None:
    """The shared space, when the model has one: its fields and whether ?impute=embedding works."""
    space = trained.model.space
    if space is None:
        return None
    return {"fields": list(space.fields), "dim": space.dim, "impute": trained.model.imputer is not None}
