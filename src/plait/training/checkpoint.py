"""Checkpoints each epoch, so a killed `plait train` resumes where it stopped (`--resume`) and ends
with the same weights and metrics as a run that was never interrupted.

The folder (beside the bundle, `<bundle>.checkpoints/`) holds:
- `run.json`: what the run is (a fingerprint of the config, the table and the split — a checkpoint
  of another run is refused) and the stages finished so far, each with its record, history rows
  and gradient shares;
- `stage<N>.safetensors`: the module's weights at the end of finished stage N (best epoch restored);
- `stage<N>.ckpt` + `stage<N>.json`: Lightning's checkpoint of the stage in progress, written after
  every epoch (model, optimizer, scheduler, loop counters, early stopping, best weights, and the
  random streams of batching and modality dropout), and whether early stopping had just fired.

Every file is written to a temporary name and renamed, so a kill never leaves half a checkpoint.
Lightning checkpoints are read with `weights_only=True` (no arbitrary unpickling). The folder is
removed once the bundle is saved.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from safetensors.torch import load_file, save_file

from plait.errors import DataError
from plait.training.distributed import is_main_process

RUN_FILE = "run.json"


@dataclass
class RunState:
    """The stages finished so far (restored on resume)."""

    fingerprint: str
    stages: list[dict[str, Any]] = field(default_factory=list)  # each: record, history, shares


class Checkpoints:
    """One run's checkpoint folder."""

    def __init__(self, folder: Path, fingerprint: str, *, resume: bool) -> None:
        self.folder = Path(folder)
        self.fingerprint = fingerprint
        self.resume = resume
        self.writes = is_main_process()  # under DDP the main process alone writes (all read)
        run = self.folder / RUN_FILE
        if resume and run.is_file():
            saved = json.loads(run.read_text())
            if saved.get("fingerprint") != fingerprint:
                raise DataError(
                    f"{self.folder}: these checkpoints are of another run (the config, the table or the "
                    "split changed since); train without --resume to start afresh"
                )
            self.state = RunState(fingerprint, list(saved.get("stages", [])))
        else:
            if self.writes and self.folder.exists():
                shutil.rmtree(self.folder)
            self.state = RunState(fingerprint)
        if self.writes:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._write_run()

    @staticmethod
    def fingerprint_of(*parts: str) -> str:
        digest = hashlib.sha256()
        for part in parts:
            digest.update(part.encode())
            digest.update(b"\0")
        return digest.hexdigest()

    # ------------------------------------------------------------------ finished stages
    def finished(self, number: int) -> dict[str, Any] | None:
        if not self.resume:  # a fresh run (under DDP a worker may look before rank 0 cleared the folder)
            return None
        return next((s for s in self.state.stages if s["number"] == number), None)

    def finish_stage(self, number: int, module: L.LightningModule, done: dict[str, Any]) -> None:
        others = [s for s in self.state.stages if s["number"] != number]
        self.state.stages = [*others, {"number": number, **done}]
        if not self.writes:
            return
        tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
        _atomic(self.folder / f"stage{number}.safetensors", lambda tmp: save_file(tensors, str(tmp)))
        self._write_run()
        for name in (f"stage{number}.ckpt", f"stage{number}.json"):
            (self.folder / name).unlink(missing_ok=True)

    def load_finished(self, number: int, module: L.LightningModule) -> None:
        module.load_state_dict(load_file(str(self.folder / f"stage{number}.safetensors")))

    # ------------------------------------------------------------------ the stage in progress
    def in_progress(self, number: int) -> tuple[Path, bool] | None:
        """(Lightning checkpoint, early stopping had fired) of stage `number`, if one was saved."""
        if not self.resume:  # a fresh run: stale files of a killed one are not ours
            return None
        ckpt, meta = self.folder / f"stage{number}.ckpt", self.folder / f"stage{number}.json"
        if not ckpt.is_file() or not meta.is_file():
            return None
        return ckpt, bool(json.loads(meta.read_text()).get("stopping", False))

    def callback(self, number: int) -> EpochCheckpoint:
        return EpochCheckpoint(self.folder, number)

    def member(self, index: int) -> Checkpoints:
        """The checkpoints of ensemble member `index`: a folder of its own inside this one (removed
        with it), resumed when this run is."""
        fingerprint = self.fingerprint_of(self.fingerprint, f"member {index}")
        return Checkpoints(self.folder / f"member{index}", fingerprint, resume=self.resume)

    def remove(self) -> None:
        if self.writes:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _write_run(self) -> None:
        text = json.dumps({"fingerprint": self.fingerprint, "stages": self.state.stages}, indent=1)
        _atomic(self.folder / RUN_FILE, lambda tmp: tmp.write_text(text))


class EpochCheckpoint(L.Callback):
    """After every training epoch (validation, early stopping and best weights done), Lightning's
    checkpoint of the stage, written atomically, and whether early stopping fired."""

    def __init__(self, folder: Path, number: int) -> None:
        self.folder = folder
        self.number = number

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if not trainer.is_global_zero:  # every process must call it (it waits for the others)
            trainer.save_checkpoint(self.folder / f".stage{self.number}.ckpt.tmp")  # writes nothing here
            return
        _atomic(self.folder / f"stage{self.number}.ckpt", lambda tmp: trainer.save_checkpoint(tmp))
        meta = json.dumps({"epoch": trainer.current_epoch, "stopping": bool(trainer.should_stop)})
        _atomic(self.folder / f"stage{self.number}.json", lambda tmp: tmp.write_text(meta))


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A Lightning checkpoint written by EpochCheckpoint, without arbitrary unpickling."""
    data: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return data


def _atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
