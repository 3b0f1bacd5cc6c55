"""Which runtime runs the model, chosen in one place: `build_engine(trained, choice, ...)` gives the
torch `Engine` or the `OnnxEngine` on the bundle's ONNX export; both are `ServingEngine`s, so nothing
else in the server asks which one it has. `RuntimeChoice` travels to the model process as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plait.bundle import TrainedModel
from plait.errors import ConfigError
from plait.serving.engine import Engine
from plait.serving.guard import FieldGuard
from plait.serving.settings import ServeSettings

if TYPE_CHECKING:
    from plait.serving.onnx_engine import OnnxEngine


@dataclass(frozen=True)
class RuntimeChoice:
    name: str = "torch"  # "torch" | "onnx"
    onnx_folder: Path | None = None  # the export folder (runtime "onnx")
    int8: bool = False  # serve model.int8.onnx

    @property
    def graph_file(self) -> str | None:
        if self.name != "onnx":
            return None
        return "model.int8.onnx" if self.int8 else "model.onnx"

    def to_json(self) -> dict[str, Any]:
        folder = None if self.onnx_folder is None else str(self.onnx_folder)
        return {"name": self.name, "onnx_folder": folder, "int8": self.int8}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RuntimeChoice:
        folder = data.get("onnx_folder")
        return cls(str(data["name"]), None if folder is None else Path(folder), bool(data.get("int8", False)))

    def info(self) -> dict[str, Any]:
        """What /v1/info says about the runtime: its name, the graph it runs, what it serves."""
        onnx = self.name == "onnx"
        return {
            "name": self.name,
            "graph": self.graph_file,
            "explain": True,
            "embed": not onnx,
            "impute": not onnx,
        }


def runtime_choice(settings: ServeSettings, bundle_dir: Path | None) -> RuntimeChoice:
    """The runtime the settings ask for; for "onnx", the export folder checked to exist and to be
    an export of this bundle's model (`check_export`)."""
    if settings.runtime != "onnx":
        return RuntimeChoice()
    if settings.onnx_folder is not None:
        folder = Path(settings.onnx_folder)
    elif bundle_dir is not None:
        from plait.export.onnx_export import default_folder

        folder = default_folder(bundle_dir)
    else:
        raise ConfigError(
            "serve.runtime='onnx' with a model in memory: name its export with "
            "ServeSettings(onnx_folder=...) (`plait export BUNDLE --format onnx` writes one)"
        )
    return RuntimeChoice("onnx", folder.resolve(), settings.onnx_int8)


def check_export(trained: TrainedModel, choice: RuntimeChoice) -> None:
    """Fail now, not in the model process: the export exists, has the graph asked for, and was made
    from this bundle's model; onnxruntime is installed."""
    if choice.name != "onnx" or choice.onnx_folder is None:
        return
    from plait.export.deps import require_onnxruntime
    from plait.export.manifest import read_manifest

    require_onnxruntime()
    manifest = read_manifest(choice.onnx_folder)
    manifest.file(choice.int8)
    manifest.require_model(trained.model_id, choice.onnx_folder)


def build_engine(
    trained: TrainedModel,
    choice: RuntimeChoice,
    *,
    guard: FieldGuard,
    decode_budget_s: float | None,
    threads: int | None = None,
) -> Engine | OnnxEngine:
    """The engine for `choice` (a `ServingEngine`); `threads`: onnxruntime's intra-op threads."""
    if choice.name == "torch":
        return Engine(trained, guard=guard, decode_budget_s=decode_budget_s)
    if choice.onnx_folder is None:
        raise ConfigError("the onnx runtime needs the export folder (RuntimeChoice.onnx_folder)")
    from plait.export.session import OnnxModel
    from plait.serving.onnx_engine import OnnxEngine

    check_export(trained, choice)
    graph = OnnxModel.load(choice.onnx_folder, int8=choice.int8, threads=threads)
    return OnnxEngine(trained, graph, guard=guard, decode_budget_s=decode_budget_s)
