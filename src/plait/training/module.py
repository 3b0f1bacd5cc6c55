"""A thin LightningModule around the plain FusionModel: losses, modality dropout, stages, balance.

Besides the model it holds one light head per field (`probes`, Linear on the field's pooled
embedding). They measure each field's own skill and, when asked, train the encoders too:
- stage `unimodal`: each encoder learns the task alone through its probe; fusion and head wait;
- stage `frozen`: the encoders are fixed; fusion, head and probes learn;
- stage `end_to_end`: everything learns. With `aux_loss` > 0 the probes' losses reach the encoders
  (unimodal auxiliary losses); otherwise the probes see detached embeddings and only measure.
`ogm_ge` > 0 turns on OGM-GE gradient modulation of the encoders (plait.objectives.balance).
`subset_loss` > 0 adds, on every training step, the task loss of the same encodings decided under a
random proper subset of each row's present fields (plait.models.modality_dropout.sample_subsets),
and with `subset_distill` > 0 how far that output is from the full one (a distillation from the
full model to its subsets): the model learns every "field missing" case, not only the full one.
The probes are training instruments: they are not part of the model and not saved in the bundle.
With a shared space (`model.space`), stage `contrastive` trains encoders and projections on the
symmetric InfoNCE of the space's pairs alone (no labels, no fusion, no head), and `space_weight` > 0
adds that loss beside the supervised one in the other stages. Under DDP every process's rows are
gathered (with their gradients) so each row meets the whole global batch's negatives.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from plait.metrics import classification_metrics, regression_metrics
from plait.models.fusion_model import FusionModel
from plait.models.modality_dropout import drop_modalities, sample_subsets
from plait.objectives.balance import (
    modulate_gradients,
    ogm_coefficients,
    score_sums,
    scores_from_sums,
    unimodal_losses,
)
from plait.objectives.contrastive import Gathered, pairs_loss
from plait.objectives.supervised import distillation_loss
from plait.task import Task
from plait.types import Batch, EncoderOutput

_ROWS = "\0rows"  # _global_share's key for the batch's own rows (no field is named so)


def build_probes(model: FusionModel, n_outputs: int) -> nn.ModuleDict:
    """One Linear(D_f → K) per field, on the field's pooled embedding."""
    return nn.ModuleDict({f: nn.Linear(_output_dim(enc), n_outputs) for f, enc in model.encoders.items()})


def _output_dim(encoder: nn.Module) -> int:
    dim = encoder.output_dim
    assert isinstance(dim, int)  # the encoder contract: output_dim is the pooled width
    return dim


class PlaitModule(L.LightningModule):
    def __init__(
        self,
        model: FusionModel,
        probes: nn.ModuleDict,
        *,
        task: Task,
        lr: float,
        weight_decay: float,
        modality_dropout: float,
        max_epochs: int,
        seed: int,
        stage: str = "end_to_end",
        aux_loss: float = 0.0,
        ogm_ge: float = 0.0,
        subset_loss: float = 0.0,
        subset_distill: float = 0.0,
        space_weight: float = 0.0,
        pairs: tuple[tuple[str, str], ...] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.probes = probes
        self.task = task
        self.lr = lr
        self.weight_decay = weight_decay
        self.modality_dropout = modality_dropout
        self.max_epochs = max_epochs
        self.seed = seed
        self.stage = stage
        self.aux_loss = aux_loss
        self.ogm_ge = ogm_ge
        self.subset_loss = subset_loss
        self.subset_distill = subset_distill
        self.space_weight = space_weight
        self.pairs = pairs if pairs is not None else (model.space.pairs if model.space is not None else ())
        if stage == "contrastive" and not self.pairs:
            raise ValueError("a contrastive stage needs a model with a shared space and at least one pair")
        self.share_history: list[dict[str, float]] = []  # per epoch: field → gradient share
        # per training step: (field, tokens|pooled) -> squared gradient norm, kept on the device
        # and reduced over DDP processes once per epoch (no sync per step)
        self._grad_steps: list[dict[tuple[str, int], Tensor]] = []
        self._ogm_rng: torch.Generator | None = None  # OGM-GE's noise: alike on every process
        self._ogm: dict[str, float] = {}
        self._dropout_rng: torch.Generator | None = None
        self._resumed: dict[str, Tensor] | None = None  # random streams of a resumed stage
        self._val_outputs: list[tuple[Tensor, Tensor]] = []
        self._val_probes: list[tuple[dict[str, Tensor], dict[str, Tensor], Tensor]] = []
        self._set_trainable()

    # ---------------------------------------------------------------- stage set-up

    def _set_trainable(self) -> None:
        train_encoders = self.stage != "frozen"
        train_fusion = self.stage not in ("unimodal", "contrastive")
        set_trainable(self.model.encoders, train_encoders)
        set_trainable(self.model.fusion, train_fusion)
        set_trainable(self.model.head, train_fusion)
        if self.model.space is not None:
            set_trainable(self.model.space, self.stage == "contrastive" or self.space_weight > 0)
        if self.model.imputer is not None:  # fitted after training (training/imputation.py)
            set_trainable(self.model.imputer, False)
        if self.stage == "contrastive":  # only what the stage's loss reaches (DDP needs every grad)
            paired = {f for pair in self.pairs for f in pair}
            for field, encoder in self.model.encoders.items():
                if field not in paired:
                    set_trainable(encoder, False)
            assert self.model.space is not None  # checked in __init__
            for field, projection in self.model.space.projections.items():
                if field not in paired:
                    set_trainable(projection, False)
        self.probes.requires_grad_(self.stage != "contrastive")

    def on_fit_start(self) -> None:
        # one stream per process so DDP ranks drop different fields, reproducibly
        self._dropout_rng = torch.Generator().manual_seed(self.seed * 1000 + self.global_rank)
        self._ogm_rng = torch.Generator().manual_seed(self.seed * 1000 + 999)
        if self._resumed is not None:  # a resumed stage goes on with the streams it stopped with
            self._dropout_rng.set_state(self._resumed["dropout_rng"])
            if "ogm_rng" in self._resumed:
                self._ogm_rng.set_state(self._resumed["ogm_rng"])
            torch.set_rng_state(self._resumed["torch_rng"])

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """What a resumed stage needs beyond weights and optimizer: the random streams (modality
        dropout, the global one behind nn.Dropout) and the per-epoch gradient shares."""
        assert self._dropout_rng is not None and self._ogm_rng is not None  # saved during fit only
        checkpoint["plait"] = {
            "dropout_rng": self._dropout_rng.get_state(),
            "ogm_rng": self._ogm_rng.get_state(),
            "torch_rng": torch.get_rng_state(),
            "share_history": [dict(row) for row in self.share_history],
            "ogm": dict(self._ogm),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("plait", {})
        self.share_history = [dict(row) for row in state.get("share_history", [])]
        self._ogm = dict(state.get("ogm", {}))
        if "dropout_rng" in state:
            self._resumed = {k: state[k] for k in ("dropout_rng", "torch_rng", "ogm_rng") if k in state}

    def on_train_epoch_start(self) -> None:
        if self.stage == "frozen":  # fixed encoders: no dropout noise inside them either
            self.model.encoders.eval()
        self._grad_steps = []

    def transfer_batch_to_device(self, batch: Batch, device: torch.device, dataloader_idx: int) -> Batch:
        return batch.to(device)

    # ---------------------------------------------------------------- losses

    def _probe_outputs(self, encoded: Mapping[str, EncoderOutput], detach: bool) -> dict[str, Tensor]:
        return {
            f: self.probes[f](out.pooled.detach() if detach else out.pooled) for f, out in encoded.items()
        }

    def _tap(self, encoded: Mapping[str, EncoderOutput]) -> dict[str, EncoderOutput]:
        """The fusion's inputs as fresh autograd nodes, hooked to add up each field's gradient norm
        (only what flows back through the fusion, not through the probes)."""
        tapped: dict[str, EncoderOutput] = {}
        for field, out in encoded.items():
            tokens, pooled = out.tokens.view_as(out.tokens), out.pooled.view_as(out.pooled)
            for part, t in enumerate((tokens, pooled)):
                if t.requires_grad:
                    t.register_hook(lambda g, key=(field, part): self._add_grad_norm(key, g))
            tapped[field] = EncoderOutput(tokens=tokens, pooled=pooled, token_mask=out.token_mask)
        return tapped

    def _add_grad_norm(self, key: tuple[str, int], grad: Tensor) -> None:
        squared = grad.detach().float().pow(2).sum()
        step = self._grad_steps[-1]
        step[key] = step[key] + squared if key in step else squared

    def _epoch_grad_norms(self) -> dict[str, float]:
        """Each field's gradient norm through the fusion, summed over the epoch's steps. A step's
        norm is of the whole global batch: under DDP the squared norms of every process's share
        are added before the root (one reduction per epoch), so the shares are one process's."""
        if not self._grad_steps:
            return {}
        keys = [(f, part) for f in self.model.encoders for part in (0, 1)]
        squared = torch.stack(
            [
                torch.stack([step.get(k, torch.zeros((), device=self.device)) for k in keys])
                for step in self._grad_steps
            ]
        )  # (steps, 2F)
        if self._world_size() > 1:
            squared = self.trainer.strategy.reduce(squared, reduce_op="sum")
        norms = squared.sqrt().sum(dim=0).reshape(-1, 2).sum(dim=1)  # (2F,) -> (F,)
        seen = {f for step in self._grad_steps for f, _ in step}
        return {f: float(n) for f, n in zip(self.model.encoders, norms, strict=True) if f in seen}

    def _contrastive(self, encoded: Mapping[str, EncoderOutput], present: Mapping[str, Tensor]) -> Tensor:
        """The mean InfoNCE of the stage's pairs, across every process's rows under DDP."""
        space = self.model.space
        assert space is not None  # a contrastive stage or space_weight needs one (checked in __init__)
        paired = {f for pair in self.pairs for f in pair}
        embedded = self.model.embed({f: out for f, out in encoded.items() if f in paired})  # f -> (B, dim)
        gather = self._gather if self._world_size() > 1 else None
        return pairs_loss(embedded, dict(present), self.pairs, space.scale(), gather)

    def _world_size(self) -> int:
        return int(self.trainer.world_size) if self._trainer is not None else 1

    def _gather(self, a: Tensor, b: Tensor, both: Tensor) -> Gathered:
        """One pair's rows of every process, gradients flowing back to the process that owns each
        row. Processes may hold batches of different sizes (the last batch of an epoch): each pads
        to the largest with rows marked absent, which no loss reads."""

        def every(x: Tensor, grads: bool) -> Tensor:
            out = self.all_gather(x, sync_grads=grads)
            assert isinstance(out, Tensor)  # one tensor in, one out
            return out

        size = int(every(torch.tensor(a.shape[0], device=a.device), False).max())
        if a.shape[0] < size:
            short = size - a.shape[0]
            a = torch.cat([a, a.new_zeros(short, a.shape[1])])
            b = torch.cat([b, b.new_zeros(short, b.shape[1])])
            both = torch.cat([both, both.new_zeros(short)])
        width = a.shape[1]
        return Gathered(
            a=every(a, True).reshape(-1, width),  # (W, size, d) -> (W·size, d)
            b=every(b, True).reshape(-1, width),
            both=every(both, False).reshape(-1),
            offset=self.global_rank * size,
        )

    def _step_losses(self, batch: Batch) -> tuple[Tensor, Tensor, dict[str, Tensor], Tensor | None]:
        """(total loss, task loss, probe outputs, model output or None) for one batch, in the
        current stage (a contrastive stage's task loss is its contrastive loss)."""
        encoded = self.model.encode(batch)
        if self.stage == "contrastive":  # gathered over the processes already: no weighting
            loss = self._contrastive(encoded, batch.present)
            return loss, loss, {}, None
        share = self._global_share(batch)
        assert batch.target is not None  # internal invariant: supervised batches carry targets
        if self.stage == "unimodal":
            probe_out = self._probe_outputs(encoded, detach=False)
            losses = unimodal_losses(probe_out, batch.present, batch.target, self.task)
            loss = torch.stack([share[f] * v for f, v in losses.items()]).mean()
            return loss, loss, probe_out, None
        fusion = self.model.fusion
        inputs = self._tap(encoded) if self.training else encoded
        output = self.model.decide(inputs, batch.present).output  # (B, K)
        task_loss = self.task.loss(output, batch.target)
        total = share[_ROWS] * task_loss
        if getattr(fusion, "trains_fields_alone", False):
            per_field = fusion.per_field_outputs  # comes with trains_fields_alone
            assert callable(per_field)
            own = unimodal_losses(per_field(inputs), batch.present, batch.target, self.task)
            total = total + torch.stack([share[f] * v for f, v in own.items()]).mean()
        if self.subset_loss > 0 and self.training:
            total = total + self.subset_loss * self._subset_loss(inputs, batch.present, output, batch.target)
        aux = self.aux_loss > 0 and self.stage == "end_to_end"
        probe_out = self._probe_outputs(encoded, detach=not aux)
        probe_losses = unimodal_losses(probe_out, batch.present, batch.target, self.task)
        probe_loss = torch.stack([share[f] * v for f, v in probe_losses.items()]).mean()
        total = total + (self.aux_loss if aux else 1.0) * probe_loss
        if self.space_weight > 0 and self.model.space is not None:
            total = total + self.space_weight * self._contrastive(encoded, batch.present)
        return total, task_loss, probe_out, output

    def _global_share(self, batch: Batch) -> dict[str, Tensor]:
        """Per loss that is a mean over rows (the batch's, `_ROWS`, or a field's present rows): the
        factor that turns this process's mean into its part of the whole global batch's mean once
        DDP averages the gradients (local rows × processes / global rows). All 1 on one process or
        when the rows split evenly. One small reduction per step, of counts known up front."""
        fields = list(batch.present)
        if not self.training or self._world_size() <= 1:
            one = torch.ones((), device=self.device)
            return {_ROWS: one, **{f: one for f in fields}}
        local = torch.stack(
            [torch.tensor(float(batch.size), device=self.device)]
            + [batch.present[f].float().sum().to(self.device) for f in fields]
        )  # (1 + F,)
        total = self.trainer.strategy.reduce(local.clone(), reduce_op="sum")
        factor = torch.where(
            total > 0, local * self._world_size() / total.clamp(min=1.0), torch.zeros_like(local)
        )
        return {_ROWS: factor[0], **{f: factor[i + 1] for i, f in enumerate(fields)}}

    def _subset_loss(
        self,
        encoded: Mapping[str, EncoderOutput],
        present: Mapping[str, Tensor],
        full: Tensor,
        target: Tensor,
    ) -> Tensor:
        """The task loss (and distillation from `full`) of the model decided under a random proper
        subset of each row's present fields, over the rows with two or more present fields."""
        subset = sample_subsets({f: m.cpu() for f, m in present.items()}, self._dropout_rng)
        subset = {f: m.to(full.device) for f, m in subset.items()}
        rows = torch.stack([present[f].bool() for f in present], dim=1).sum(dim=1) >= 2  # (B,)
        if not bool(rows.any()):
            return full.sum() * 0.0
        output = self.model.decide(encoded, subset).output  # (B, K)
        loss = self.task.loss(output[rows], target[rows])
        if self.subset_distill > 0:
            teacher = full[rows]
            loss = loss + self.subset_distill * distillation_loss(
                output[rows], teacher, classification=self.task.is_classification
            )
        return loss

    # ---------------------------------------------------------------- steps

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        self._grad_steps.append({})  # this step's gradient norms (the fusion inputs' hooks fill it)
        if self.modality_dropout > 0:
            present = drop_modalities(
                {k: v.cpu() for k, v in batch.present.items()}, self.modality_dropout, self._dropout_rng
            )
            batch = batch.with_present({k: v.to(self.device) for k, v in present.items()})
        total, task_loss, probe_out, _ = self._step_losses(batch)
        if self.ogm_ge > 0 and self.stage == "end_to_end":
            assert batch.target is not None
            sums = score_sums(probe_out, batch.present, batch.target, self.task)  # (F, 2)
            if self._world_size() > 1:  # the whole global batch's scores: alike on every process
                sums = self.trainer.strategy.reduce(sums.to(self.device), reduce_op="sum").cpu()
            self._ogm = ogm_coefficients(scores_from_sums(list(probe_out), sums, self.task), self.ogm_ge)
        # off the bar: val_loss and val_accuracy fill what an 80-column bar has room for
        self.log(
            "train_loss",
            task_loss,
            prog_bar=False,
            batch_size=batch.size,
            on_step=False,
            on_epoch=True,
            sync_dist=True,  # under DDP: the mean over the processes' shares, once per epoch
        )
        return total

    def on_after_backward(self) -> None:
        for field, coefficient in self._ogm.items():
            if coefficient < 1.0:
                modulate_gradients(
                    list(self.model.encoders[field].parameters()),
                    coefficient,
                    noise=True,
                    generator=self._ogm_rng,
                )
        self._ogm = {}

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        _, task_loss, probe_out, output = self._step_losses(batch)
        self.log(
            "val_loss",
            task_loss,
            prog_bar=True,
            batch_size=batch.size,
            on_step=False,
            on_epoch=True,
            sync_dist=True,
        )
        if not probe_out or batch.target is None:  # a contrastive stage: no task, no probes
            return
        detached = {f: o.detach().float().cpu() for f, o in probe_out.items()}
        present = {f: batch.present[f].cpu() for f in probe_out}
        self._val_probes.append((detached, present, batch.target.cpu()))
        if self.task.is_classification and output is not None:
            self._val_outputs.append((output.detach().float().cpu(), batch.target.cpu()))

    def on_validation_epoch_end(self) -> None:
        # Lightning validates before on_train_epoch_end: record this epoch's gradient shares here
        norms = self._epoch_grad_norms() if not self.trainer.sanity_checking else {}
        total = sum(norms.values())
        if total > 0 and not self.trainer.sanity_checking:
            shares = {f: v / total for f, v in norms.items()}
            self.share_history.append(shares)
            for field, share in shares.items():
                self.log(f"share_{field}", share)
        if self._val_outputs:
            logits = torch.cat([o for o, _ in self._val_outputs])
            target = torch.cat([t for _, t in self._val_outputs])
            self.log("val_accuracy", classification_metrics(logits, target)["accuracy"], prog_bar=True)
        for field, skill in probe_skill(self._val_probes, self.task).items():
            self.log(f"own_{field}", skill)
        self._val_outputs.clear()
        self._val_probes.clear()

    def configure_optimizers(self) -> Any:
        # A parameter may carry `plait_lr_scale` (a fine-tuned pretrained layer learns at a share of lr).
        groups: dict[float, list[nn.Parameter]] = {}
        for p in self.parameters():
            if p.requires_grad:
                groups.setdefault(float(getattr(p, "plait_lr_scale", 1.0)), []).append(p)
        if set(groups) <= {1.0}:
            params = groups.get(1.0, [])
            optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
            scheduler: Any = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=self.max_epochs, eta_min=self.lr * 0.05
            )
        else:  # the same cosine to 5 %, as a factor, so each group keeps its own scale
            optimizer = torch.optim.AdamW(
                [{"params": ps, "lr": self.lr * scale} for scale, ps in sorted(groups.items())],
                lr=self.lr,
                weight_decay=self.weight_decay,
            )
            epochs = max(self.max_epochs, 1)
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda e: 0.05 + 0.95 * (1 + math.cos(math.pi * min(e, epochs) / epochs)) / 2
            )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


def set_trainable(module: nn.Module, trainable: bool) -> None:
    """requires_grad on every parameter of `module`, except those marked `plait_frozen` (a
    pretrained encoder's frozen layers), which no stage trains."""
    for p in module.parameters():
        p.requires_grad_(trainable and not getattr(p, "plait_frozen", False))


def probe_skill(
    parts: list[tuple[dict[str, Tensor], dict[str, Tensor], Tensor]], task: Task
) -> dict[str, float]:
    """Each field's own skill (`task.robustness_metric`: accuracy, or R²) over the rows where it is
    present, from batches of (probe outputs, presence, target)."""
    if not parts:
        return {}
    skill: dict[str, float] = {}
    for field in parts[0][0]:
        out = torch.cat([p[0][field] for p in parts])
        rows = torch.cat([p[1][field] for p in parts]).bool()
        target = torch.cat([p[2] for p in parts])
        if int(rows.sum()) < 2:
            continue
        score = classification_metrics if task.is_classification else regression_metrics
        skill[field] = score(out[rows], target[rows]).get(task.robustness_metric, 0.0)
    return skill
