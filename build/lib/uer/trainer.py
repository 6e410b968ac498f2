"""The pre-training loop: devices, DDP, AMP, accumulation, reporting, checkpoints, exact resume.

One loop serves every objective: targets report ``(loss_sum, correct, count)`` and the loop divides
each loss by its *global* count (all ranks, all accumulation micro-batches), so N ranks x batch B
trains exactly like one process with batch N*B.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import asdict, dataclass
from typing import Iterator

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from uer.model_saver import atomic_write, save_model, unwrap
from uer.utils.distributed import DistContext, all_reduce_sum
from uer.utils.optimizers import build_linear_schedule, build_optimizer

logger = logging.getLogger(__name__)

TRAINER_STATE_SUFFIX = ".trainer"


@dataclass(frozen=True)
class TrainConfig:
    """Options of the pre-training loop (typed; built once from the merged command line)."""

    output_model_path: str
    total_steps: int = 100000
    save_checkpoint_steps: int = 10000
    report_steps: int = 100
    accumulation_steps: int = 1
    batch_size: int = 32
    seed: int = 7
    learning_rate: float = 2e-5
    warmup: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.999
    weight_decay: float = 0.01
    fp16: bool = False
    fp16_opt_level: str = "O1"

    def __post_init__(self) -> None:
        for name in ("total_steps", "save_checkpoint_steps", "report_steps", "accumulation_steps", "batch_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.warmup <= 1.0:
            raise ValueError(f"--warmup is a fraction of total steps in [0, 1], got {self.warmup}")


def autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for --fp16 on this device, or None for full float32.

    On CUDA: float16 with loss scaling. On CPU there is no float16 autocast worth having: bfloat16
    (which needs no loss scaling) is used instead, and said so in the log.
    """
    if not cfg.fp16 or cfg.fp16_opt_level == "O0":
        return None
    if device.type == "cuda":
        return torch.float16
    return torch.bfloat16


class Trainer:
    """Runs ``total_steps`` optimiser steps over ``batches`` and writes checkpoints."""

    def __init__(self, model: nn.Module, batches, cfg: TrainConfig, ctx: DistContext,
                 find_unused_parameters: bool = False) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.batches = batches
        self.model = model.to(ctx.device)
        self.optimizer = build_optimizer(self.model, cfg.learning_rate, (cfg.beta1, cfg.beta2), cfg.weight_decay)
        self.scheduler = build_linear_schedule(self.optimizer, cfg.total_steps, cfg.warmup)
        self.amp_dtype = autocast_dtype(cfg, ctx.device)
        self.scaler = torch.amp.GradScaler(ctx.device.type, enabled=self.amp_dtype == torch.float16)
        if cfg.fp16 and ctx.is_main:
            if self.amp_dtype is None:
                logger.info("--fp16 with --fp16_opt_level O0: training stays in float32")
            elif ctx.device.type == "cpu":
                logger.info("--fp16 on CPU: autocast to bfloat16 (CPUs have no float16 autocast); no loss scaling")
            else:
                logger.info("--fp16: autocast to float16 with dynamic loss scaling (opt level %s maps to native AMP, "
                            "float32 master weights)", cfg.fp16_opt_level)
        # Multi-task pre-training leaves the heads of the other datasets' objectives idle in a step.
        self.ddp = (DistributedDataParallel(self.model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
                                            find_unused_parameters=find_unused_parameters)
                    if ctx.distributed else None)
        self.step = 0

    # ----------------------------------------------------------------------------------------------
    # checkpoints
    def checkpoint_path(self, step: int) -> str:
        return f"{self.cfg.output_model_path}-{step}"

    def save_checkpoint(self) -> str:
        """Model file (UER-py format) plus a sidecar with everything needed to resume exactly."""
        path = self.checkpoint_path(self.step)
        save_model(self.model, path)
        state = {
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "torch_rng_state": torch.get_rng_state(),
            "micro_batch_index": self.step * self.cfg.accumulation_steps,
            "train_config": asdict(self.cfg),
            "world_size": self.ctx.world_size,
        }
        atomic_write(path + TRAINER_STATE_SUFFIX, lambda tmp: torch.save(state, tmp))
        return path

    def load_trainer_state(self, checkpoint_path: str) -> None:
        """Restore optimiser, scheduler, scaler and step from ``checkpoint_path``'s sidecar."""
        sidecar = checkpoint_path + TRAINER_STATE_SUFFIX
        if not os.path.isfile(sidecar):
            raise FileNotFoundError(f"--resume_from {checkpoint_path}: no trainer state {sidecar} next to it "
                                    "(only checkpoints written by this pretrain.py can be resumed)")
        state = torch.load(sidecar, map_location="cpu", weights_only=True)
        saved = state["train_config"]
        for name in ("batch_size", "accumulation_steps", "seed"):
            if saved[name] != getattr(self.cfg, name):
                raise ValueError(f"--resume_from {checkpoint_path}: the run used --{name} {saved[name]}, "
                                 f"this one {getattr(self.cfg, name)}; they must match to continue the same run")
        if state["world_size"] != self.ctx.world_size:
            raise ValueError(f"--resume_from {checkpoint_path}: the run used --world_size {state['world_size']}, "
                             f"this one {self.ctx.world_size}")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng_state"])
        self.step = int(state["step"])

    # ----------------------------------------------------------------------------------------------
    # the loop
    def _micro_batches(self) -> Iterator[dict]:
        return self.batches.iter_from(self.step * self.cfg.accumulation_steps)

    def _to_device(self, batch: dict) -> dict:
        return {k: v.to(self.ctx.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}

    def _seed_step(self) -> None:
        # Dropout randomness is a function of (seed, step, rank), so a resumed run draws exactly what an
        # uninterrupted one would, on every rank, without carrying each rank's generator state around.
        torch.manual_seed(self.cfg.seed * 1_000_003 + self.step * 1009 + self.ctx.rank)

    def fit(self) -> None:
        cfg, ctx = self.cfg, self.ctx
        target = unwrap(self.model).target
        forward = self.ddp if self.ddp is not None else self.model
        self.model.train()
        stream = self._micro_batches()
        sums: dict[str, torch.Tensor] = {}
        tokens = 0
        window_start = time.perf_counter()
        if ctx.is_main:
            logger.info("training from step %d to %d on %d process(es), device %s", self.step, cfg.total_steps,
                        ctx.world_size, ctx.device)
        while self.step < cfg.total_steps:
            self._seed_step()
            micro = [self._to_device(next(stream)) for _ in range(cfg.accumulation_steps)]
            names = target.names
            local_counts = torch.tensor([[target.counts(b)[n] for n in names] for b in micro],
                                        dtype=torch.float64).sum(0)
            global_counts = all_reduce_sum(local_counts.to(ctx.device), ctx).cpu().clamp_min(1.0)
            for i, batch in enumerate(micro):
                last = i == len(micro) - 1
                sync = contextlib.nullcontext() if (self.ddp is None or last) else self.ddp.no_sync()
                with sync:
                    with torch.autocast(ctx.device.type, dtype=self.amp_dtype or torch.float32,
                                        enabled=self.amp_dtype is not None):
                        outputs = forward(batch)
                    loss = sum(outputs[n].loss_sum * (ctx.world_size / float(global_counts[j]))
                               for j, n in enumerate(names))
                    self.scaler.scale(loss).backward()
                for n in names:
                    o = outputs[n]
                    stat = torch.stack([o.loss_sum.detach().float(), o.correct.float(),
                                        torch.tensor(float(o.count), device=o.correct.device)])
                    sums[n] = sums[n] + stat if n in sums else stat
                tokens += batch["src"].numel()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
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
        if not self.ctx.is_main:
            return
        parts = [f"| {self.step:8d}/{self.cfg.total_steps:8d} steps", f"{packed[-1, 0].item() / max(elapsed, 1e-9):10.0f} tokens/s"]
        for j, n in enumerate(names):
            loss_sum, correct, count = packed[j].tolist()
            parts.append(f"loss_{n} {loss_sum / max(count, 1):7.3f}")
            parts.append(f"acc_{n} {correct / max(count, 1):6.3f}")
        parts.append(f"lr {self.scheduler.get_last_lr()[0]:.2e}")
        logger.info("| ".join(parts))
