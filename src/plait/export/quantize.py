"""Dynamic int8 quantisation of an exported graph (onnxruntime.quantization.quantize_dynamic).

The weights of MatMul/Gemm (Linear layers, attention projections) and Gather (token and category
embeddings) are stored as int8; MatMul activations are quantised on the fly per batch. Convolutions
stay float32: onnxruntime's ConvInteger took twice as long as the float Conv on the demo's batches
of 64 (bench/onnx_export.py), for a file 0.3 MB smaller. Whether the accuracy holds is measured,
per subset of fields, by `plait.export.check` — not assumed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from plait.export.deps import require_onnxruntime

QUANTISED_OPS = ("MatMul", "Gemm", "Gather")


def quantize_int8(source: Path, target: Path) -> None:
    """Write the int8 version of the graph at `source` to `target` (weights per tensor, signed)."""
    require_onnxruntime()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    quiet = _DropPreprocessAdvice()
    root.addFilter(quiet)  # its advice (shape pre-processing) matters for static quantisation only
    try:
        quantize_dynamic(
            source,
            target,
            op_types_to_quantize=list(QUANTISED_OPS),
            weight_type=QuantType.QInt8,
        )
    finally:
        root.removeFilter(quiet)


class _DropPreprocessAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()
