"""An exported graph run by onnxruntime, fed and read as torch tensors.

`OnnxModel.load(folder, int8=False).run(values, masks, present)` → `GraphOutput(out, pooled)`:
`out` is the `ModelOutput` the torch model's `decide` gives (output (B, K), weights (B, M) or None),
so everything after the head — calibration, answers, contributions — stays the same Python code.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from plait.errors import BundleError
from plait.export.deps import require_onnxruntime
from plait.export.graph import MASK, OUTPUT, POOLED, PRESENT, VALUES, WEIGHTS, FieldInput
from plait.export.manifest import read_manifest
from plait.types import ModelOutput


@dataclass(frozen=True)
class GraphOutput:
    out: ModelOutput  # float32: output (B, K), weights (B, M) or None
    pooled: dict[str, Tensor]  # field -> (B, D): each field's encoding, for the non-finite check


class OnnxModel:
    """One ONNX graph in an onnxruntime session (CPU). `threads`: intra-op threads (None: the
    machine's cores, at most 4)."""

    def __init__(
        self, fields: tuple[FieldInput, ...], outputs: tuple[str, ...], session: Any, path: Path
    ) -> None:
        self.fields = fields
        self.outputs = outputs
        self.session = session
        self.path = path
        self.field_order = tuple(spec.field for spec in fields)

    @classmethod
    def load(cls, folder: Path | str, *, int8: bool = False, threads: int | None = None) -> OnnxModel:
        """The graph of an export folder (`model.onnx`, or `model.int8.onnx` with `int8`), checked
        against its manifest's sha256."""
        folder = Path(folder)
        manifest = read_manifest(folder)
        entry = manifest.file(int8)
        path = folder / entry.name
        data = path.read_bytes() if path.is_file() else b""
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise BundleError(
                f"{path} is missing or does not match its manifest (sha256); export the bundle again"
            )
        return cls.open(path, manifest.fields, manifest.outputs, threads=threads)

    @classmethod
    def open(
        cls,
        path: Path,
        fields: tuple[FieldInput, ...],
        outputs: tuple[str, ...],
        *,
        threads: int | None = None,
    ) -> OnnxModel:
        """A graph file whose inputs and outputs are known (no manifest read)."""
        ort = require_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads if threads is not None else min(4, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: the optimiser's notes are not the user's business
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        return cls(tuple(fields), tuple(outputs), session, path)

    @property
    def file_name(self) -> str:
        return self.path.name

    def run(
        self,
        values: Mapping[str, Tensor],
        masks: Mapping[str, Tensor | None],
        present: Mapping[str, Tensor],
    ) -> GraphOutput:
        """Every field's collated values (B, ...), step mask (B, L) where its modality pads, and
        presence BoolTensor[B], as `Modality.collate` and the `Batch` give them."""
        feed: dict[str, np.ndarray] = {}
        for spec in self.fields:
            name = spec.field
            feed[f"{name}.{VALUES}"] = values[name].detach().cpu().numpy()
            if spec.has_mask:
                mask = masks.get(name)
                if mask is None:
                    raise ValueError(
                        f"OnnxModel.run: field '{name}' needs its step mask (its collate gives one)"
                    )
                feed[f"{name}.{MASK}"] = mask.detach().cpu().numpy().astype(bool)
            feed[f"{name}.{PRESENT}"] = present[name].detach().cpu().numpy().astype(bool)
        names = list(self.outputs)
        got = dict(zip(names, self.session.run(names, feed), strict=True))
        weights = torch.from_numpy(got[WEIGHTS]).float() if WEIGHTS in got else None
        output = torch.from_numpy(got[OUTPUT]).float()  # (B, K)
        pooled = {f: torch.from_numpy(got[f"{f}.{POOLED}"]) for f in self.field_order}  # (B, D) each
        return GraphOutput(ModelOutput(output=output, weights=weights, field_order=self.field_order), pooled)
