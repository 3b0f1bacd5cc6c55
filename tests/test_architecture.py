"""The house rules that a reader cannot see: import boundaries and the public API."""

import subprocess
import sys

import plait

CORE = [
    "plait",
    "plait.types",
    "plait.errors",
    "plait.registry",
    "plait.config",
    "plait.build",
    "plait.modalities",
    "plait.fusion",
    "plait.models.fusion_model",
    "plait.models.inference",
    "plait.data.dataset",
    "plait.data.table",
    "plait.data.split",
    "plait.data.split_plan",
    "plait.data.folds",
    "plait.data.leaks",
    "plait.data.infer",
    "plait.config_yaml",
    "plait.config_records",
    "plait.config_split",
    "plait.evaluation.evaluate",
    "plait.evaluation.balance",
    "plait.evaluation.calibration",
    "plait.evaluation.full",
    "plait.evaluation.interpret",
    "plait.evaluation.robustness",
    "plait.evaluation.rows",
    "plait.evaluation.run",
    "plait.evaluation.summary",
    "plait.evaluation.sweep",
    "plait.json_safe",
    "plait.report",
    "plait.objectives.balance",
    "plait.models.fusion_hooks",
    "plait.compare",
    "plait.provenance.record",
    "plait.bundle",
    "plait.predictor",
    "plait.demo",
    "plait.datasets.pumps",
    "plait.datasets.avdigits",
]
FORBIDDEN = ("lightning", "pytorch_lightning", "fastapi", "typer")


def test_core_imports_no_lightning_fastapi_or_typer():
    code = (
        "import importlib, sys\n"
        f"for m in {CORE!r}: importlib.import_module(m)\n"
        "import plait; plait.Predictor\n"
        f"print(','.join(sorted(n for n in sys.modules if n.split('.')[0] in {FORBIDDEN!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"core imported: {out.stdout.strip()}"


def test_public_api_is_pinned():
    assert plait.__all__ == [
        "Absent",
        "Batch",
        "BundleError",
        "Config",
        "ConfigError",
        "DataError",
        "EncoderOutput",
        "FusionOutput",
        "ModelNotFoundError",
        "ModelOutput",
        "PlaitError",
        "Prediction",
        "Predictor",
        "TrainedModel",
        "UnknownNameError",
        "__version__",
        "load_bundle",
        "load_config",
        "save_bundle",
    ]
    for name in plait.__all__:
        assert getattr(plait, name) is not None


def test_cli_help_does_not_import_torch():
    code = "import sys; import plait.cli.main; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
