"""The pre-training loop: accumulation, the global loss normalisation, reporting, checkpoints, exact resume.
Devices, DDP, AMP, seeding, the optimiser and its step are the engine's (uer/training/engine.py), shared with
fine-tuning.

One loop serves every objective: targets report ``(loss_sum, correct, count)`` and the loop divides
each loss by its *global* count (all ranks, all accumulation micro-batches), so N ranks x batch B
trains exactly like one process with batch N*B.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from typing import Any, Iterator, Mapping

import torch
from torch import nn

from uer.training.engine import Engine, OptimConfig, pretrain_report_line
from uer.errors import UsageError
from uer.model_saver import atomic_write, save_model, unwrap
from uer.training.checkpoints import KEEP_TRAINER_STATE, prune_checkpoints
from uer.utils.distributed import DistContext, all_reduce_sum
from uer.utils.progress import Progress
from uer.training.resume import check_resume

logger = logging.getLogger(__name__)

TRAINER_STATE_SUFFIX = ".trainer"


@dataclass(frozen=True, kw_only=True)
class TrainConfig(OptimConfig):
    """Options of the pre-training loop (typed; built once from the merged command line); the optimisation
    options (learning rate, warm-up, betas, weight decay, seed, fp16) are :class:`OptimConfig`'s."""

    output_model_path: str
    total_steps: int = 100000
    save_checkpoint_steps: int = 10000
    report_steps: int = 100
    accumulation_steps: int = 1
    batch_size: int = 32
    save_total_limit: int | None = None  # keep the newest N checkpoints (None: all)
    keep_trainer_state: str = "last"     # .trainer files: "last" (newest only), "all", "none"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("total_steps", "save_checkpoint_steps", "report_steps", "accumulation_steps", "batch_size"):
            if getattr(self, name) <= 0:
                raise UsageError(f"--{name} must be positive, got {getattr(self, name)}")
        if self.save_total_limit is not None and self.save_total_limit < 1:
            raise UsageError(f"--save_total_limit must be at least 1, got {self.save_total_limit}")
        if self.keep_trainer_state not in KEEP_TRAINER_STATE:
            raise UsageError(f"--keep_trainer_state must be one of {', '.join(KEEP_TRAINER_STATE)}")


class Trainer:
    """Runs ``total_steps`` optimiser steps over ``batches`` and writes checkpoints."""

    def __init__(self, model: nn.Module, batches, cfg: TrainConfig, ctx: DistContext,
                 find_unused_parameters: bool = False, run_identity: Mapping[str, Any] | None = None) -> None:
        self.cfg = cfg
        # What else defines the run (model config, dataset, loader options): saved in checkpoints, compared
        # on resume (uer.training.resume).
        self.run_identity = dict(run_identity or {})
        self.ctx = ctx
        self.batches = batches
        # Multi-task pre-training leaves the heads of the other datasets' objectives idle in a step.
        self.engine = Engine(model, cfg, ctx, find_unused_parameters)
        self.engine.build_optimization(cfg.total_steps)
        self.model = self.engine.model
        self.step = 0

    # the engine's optimiser, schedule and loss scaler, under the names the checkpoint code uses
    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.engine.optimizer

    @property
    def scheduler(self) -> torch.optim.lr_scheduler.LambdaLR:
        return self.engine.scheduler

    @property
    def scaler(self) -> torch.amp.GradScaler:
        return self.engine.scaler

    # ----------------------------------------------------------------------------------------------
    # checkpoints
    def checkpoint_path(self, step: int) -> str:
        return f"{self.cfg.output_model_path}-{step}"

    def save_checkpoint(self) -> str:
        """Model file (UER-py format) plus a sidecar with everything needed to resume exactly (unless
        --keep_trainer_state none); then older checkpoints and sidecars the options do not keep are deleted."""
        path = self.checkpoint_path(self.step)
        save_model(self.model, path)
        if self.cfg.keep_trainer_state == "none":
            prune_checkpoints(self.cfg.output_model_path, self.step, self.cfg.save_total_limit, "none")
            return path
        state = {
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "torch_rng_state": torch.get_rng_state(),
            "micro_batch_index": self.step * self.cfg.accumulation_steps,
            "train_config": asdict(self.cfg),
            "world_size": self.ctx.world_size,
            "run": self.run_identity,
        }
        atomic_write(path + TRAINER_STATE_SUFFIX, lambda tmp: torch.save(state, tmp))
        prune_checkpoints(self.cfg.output_model_path, self.step, self.cfg.save_total_limit, self.cfg.keep_trainer_state)
        return path

    def load_trainer_state(self, checkpoint_path: str) -> None:
        """Restore optimiser, scheduler, scaler and step from ``checkpoint_path``'s sidecar."""
        sidecar = checkpoint_path + TRAINER_STATE_SUFFIX
        if not os.path.isfile(sidecar):
            raise FileNotFoundError(f"--resume_from {checkpoint_path}: no trainer state {sidecar} next to it "
                                    "(only checkpoints written by this pretrain.py can be resumed)")
        state = torch.load(sidecar, map_location="cpu", weights_only=True)
        notices = check_resume(state, asdict(self.cfg), self.run_identity, self.ctx.world_size, checkpoint_path)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.cfg.total_steps != state["train_config"]["total_steps"]:
            # The restored learning rate is the old schedule's: use the new schedule from this step on.
            old_lr = self.optimizer.param_groups[0]["lr"]
            for group, base, factor in zip(self.optimizer.param_groups, self.scheduler.base_lrs,
                                           self.scheduler.lr_lambdas):
                group["lr"] = base * factor(self.scheduler.last_epoch)
            self.scheduler._last_lr = [group["lr"] for group in self.optimizer.param_groups]
            notices.append(f"learning rate at step {state['step']}: {self.optimizer.param_groups[0]['lr']:.3e} "
                           f"(the old schedule's: {old_lr:.3e})")
        if self.ctx.is_main:
            for notice in notices:
                logger.info("resume: %s", notice)
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng_state"])
        self.step = int(state["step"])

    # ----------------------------------------------------------------------------------------------
    # the loop
    def _micro_batches(self) -> Iterator[dict]:
        return self.batches.iter_from(self.step * self.cfg.accumulation_steps)

    def fit(self) -> None:
        cfg, ctx, engine = self.cfg, self.ctx, self.engine
        target = unwrap(self.model).target
        forward = engine.module
        self.model.train()
        stream = self._micro_batches()
        sums: dict[str, torch.Tensor] = {}
        tokens = 0
        window_start = time.perf_counter()
        if ctx.is_main:
            logger.info("training from step %d to %d on %d process(es), device %s", self.step, cfg.total_steps,
                        ctx.world_size, ctx.device)
        # a bar on a terminal only: elsewhere the report lines are the progress lines
        progress = Progress(cfg.total_steps, "pre-training", unit="step", enabled=ctx.is_main,
                            interval=float("inf"), initial=self.step)
        try:
            self._steps(stream, target, forward, sums, tokens, window_start, progress)
        finally:
            progress.close()
            engine.close()

    def _steps(self, stream: Iterator[dict], target: nn.Module, forward: nn.Module, sums: dict[str, torch.Tensor],
               tokens: int, window_start: float, progress: Progress) -> None:
        """The steps of :meth:`fit` (which opens and closes the progress bar and the TensorBoard writer)."""
        cfg, ctx, engine = self.cfg, self.ctx, self.engine
        while self.step < cfg.total_steps:
            engine.seed_step(self.step)
            micro = [engine.to_device(next(stream)) for _ in range(cfg.accumulation_steps)]
            names = target.names
            local_counts = torch.tensor([[target.counts(b)[n] for n in names] for b in micro],
                                        dtype=torch.float64).sum(0)
            global_counts = all_reduce_sum(local_counts.to(ctx.device), ctx).cpu().clamp_min(1.0)
            for i, batch in enumerate(micro):
                with engine.accumulating(last=i == len(micro) - 1):
                    with engine.autocast():
                        outputs = forward(batch)
                    loss = sum(outputs[n].loss_sum * (ctx.world_size / float(global_counts[j]))
                               for j, n in enumerate(names))
                    engine.backward(loss)
                for n in names:
                    o = outputs[n]
                    stat = torch.stack([o.loss_sum.detach().float(), o.correct.float(),
                                        torch.tensor(float(o.count), device=o.correct.device)])
                    sums[n] = sums[n] + stat if n in sums else stat
                tokens += batch["src"].numel()
            engine.step()
            self.step += 1
            progress.update()
            if self.step % cfg.report_steps == 0 or self.step == cfg.total_steps:
                self._report(sums, tokens, time.perf_counter() - window_start)
                sums, tokens, window_start = {}, 0, time.perf_counter()
            if ctx.is_main and (self.step % cfg.save_checkpoint_steps == 0 or self.step == cfg.total_steps):
                path = self.save_checkpoint()
                logger.info("saved checkpoint %s", path)

    def _report(self, sums: dict[str, torch.Tensor], tokens: int, elapsed: float) -> None:
        names = list(sums)
        packed = torch.stack([sums[n] for n in names] + [torch.tensor([float(tokens), 0.0, 0.0],
                                                                       device=sums[names[0]].device)])
        packed = all_reduce_sum(packed.double(), self.ctx).cpu()
        scalars = {"step": self.step, "total_steps": self.cfg.total_steps,
                   "tokens_per_s": packed[-1, 0].item() / max(elapsed, 1e-9)}
        for j, n in enumerate(names):
            loss_sum, correct, count = packed[j].tolist()
            scalars[f"loss_{n}"] = loss_sum / max(count, 1)
            scalars[f"acc_{n}"] = correct / max(count, 1)
        scalars["lr"] = self.engine.learning_rate(self.step)  # the rate of the next step
        self.engine.report(scalars, pretrain_report_line)
