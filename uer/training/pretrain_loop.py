"""The pre-training loop: accumulation, the global loss normalisation, reporting, checkpoints, exact resume.
Devices, DDP, AMP, seeding, the optimiser and its step are the engine's (uer/training/engine.py), shared with
fine-tuning.

One loop serves every objective: targets report ``(loss_sum, correct, count)`` and the loop divides
each loss by its *global* count (all ranks, all accumulation micro-batches), so N ranks x batch B
trains exactly like one process with batch N*B.
"""
from __future__ import annotations

import logging
import math
import os
import pickle
import re
import time
from dataclasses import asdict, dataclass
from typing import Any, Iterator, Mapping

import torch
from torch import nn

from uer.training.engine import Engine, OptimConfig, pretrain_report_line
from uer.errors import DataError, UsageError, UserError
from uer.model_saver import atomic_write, save_model, unwrap
from uer.training.checkpoints import KEEP_TRAINER_STATE, check_no_later_checkpoints, prune_checkpoints
from uer.utils.distributed import DistContext, all_reduce_sum
from uer.utils.progress import Progress
from uer.training.resume import check_resume

logger = logging.getLogger(__name__)

TRAINER_STATE_SUFFIX = ".trainer"
TOKEN_ID_KEYS = ("src", "mlm_labels", "lm_labels", "lm_backward_labels")  # batch tensors of vocabulary ids
# objectives that predict tokens: their validation also reports perplexity, exp(mean loss per token)
PERPLEXITY_TARGETS = ("mlm", "lm", "bilm")


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
    validation_steps: int | None = None  # evaluate the dev dataset every N steps (None: never)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("total_steps", "save_checkpoint_steps", "report_steps", "accumulation_steps", "batch_size"):
            if getattr(self, name) <= 0:
                raise UsageError(f"--{name} must be positive, got {getattr(self, name)}")
        if self.validation_steps is not None and self.validation_steps < 1:
            raise UsageError(f"--validation_steps must be positive, got {self.validation_steps}")
        if self.save_total_limit is not None and self.save_total_limit < 1:
            raise UsageError(f"--save_total_limit must be at least 1, got {self.save_total_limit}")
        if self.keep_trainer_state not in KEEP_TRAINER_STATE:
            raise UsageError(f"--keep_trainer_state must be one of {', '.join(KEEP_TRAINER_STATE)}")


class Trainer:
    """Runs ``total_steps`` optimiser steps over ``batches`` and writes checkpoints."""

    def __init__(self, model: nn.Module, batches, cfg: TrainConfig, ctx: DistContext,
                 find_unused_parameters: bool = False, run_identity: Mapping[str, Any] | None = None,
                 dev_batches=None) -> None:
        self.cfg = cfg
        # --dev_dataset_path: a PretrainBatches whose evaluation_batches() the validation reads
        self.dev_batches = dev_batches
        if (dev_batches is None) != (cfg.validation_steps is None):
            raise UsageError("--dev_dataset_path and --validation_steps go together")
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
        self.written_steps: list[int] = []  # checkpoints this run wrote: the only ones pruning may delete
        word = dict(unwrap(model).named_modules()).get("embedding.word.embedding")
        self.vocab_size = word.num_embeddings if isinstance(word, nn.Embedding) else None

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
        self.written_steps.append(self.step)
        if self.cfg.keep_trainer_state == "none":
            prune_checkpoints(self.cfg.output_model_path, self.step, self.cfg.save_total_limit, "none",
                              self.written_steps)
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
        prune_checkpoints(self.cfg.output_model_path, self.step, self.cfg.save_total_limit, self.cfg.keep_trainer_state,
                          self.written_steps)
        return path

    def load_trainer_state(self, checkpoint_path: str) -> None:
        """Restore optimiser, scheduler, scaler and step from ``checkpoint_path``'s sidecar."""
        sidecar = checkpoint_path + TRAINER_STATE_SUFFIX
        if not os.path.isfile(sidecar):
            raise FileNotFoundError(f"--resume_from {checkpoint_path}: no trainer state {sidecar} next to it "
                                    "(only checkpoints written by this pretrain.py can be resumed)")
        try:
            state = torch.load(sidecar, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            found = re.search(r"(Unsupported global: GLOBAL \S+|Unsupported class \S+|Unsupported operand \d+)", str(err))
            raise UserError(f"refused: the trainer state holds pickled data other than tensors and numbers "
                            f"({found.group(1) if found else 'not a state'}), which could run code when loaded; "
                            "only .trainer files written by pretrain.py can be resumed", sidecar) from None
        except (RuntimeError, EOFError, ValueError) as err:
            raise UserError(f"not a readable trainer state (truncated or damaged: {str(err).splitlines()[0][:200]})",
                            sidecar) from None
        notices = check_resume(state, asdict(self.cfg), self.run_identity, self.ctx.world_size, checkpoint_path)
        check_no_later_checkpoints(self.cfg.output_model_path, int(state["step"]), self.cfg.total_steps,
                                   self.cfg.save_checkpoint_steps)
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
            micro = [engine.to_device(self._checked(next(stream))) for _ in range(cfg.accumulation_steps)]
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
            if cfg.validation_steps is not None and self.step % cfg.validation_steps == 0:
                self.validate()
            if ctx.is_main and (self.step % cfg.save_checkpoint_steps == 0 or self.step == cfg.total_steps):
                engine.check_finite()  # never save a model trained through a NaN loss
                path = self.save_checkpoint()
                logger.info("saved checkpoint %s", path)

    def _checked(self, batch: dict) -> dict:
        """Token ids outside the vocabulary (a damaged dataset read with --no_verify_dataset) are one line, not
        an IndexError deep in the embedding; a max over the CPU batch costs next to nothing."""
        if self.vocab_size is None:
            return batch
        for key in TOKEN_ID_KEYS:
            ids = batch.get(key)
            if ids is not None and ids.numel() and int(ids.max()) >= self.vocab_size:
                raise DataError(f"the dataset holds token id {int(ids.max())} ({key}, step {self.step + 1}), outside "
                                f"the vocabulary of {self.vocab_size} tokens: the file is damaged (run without "
                                "--no_verify_dataset to find the damaged array) or was built with another vocabulary")
        return batch
    def validate(self) -> dict[str, float]:
        """One pass over the dev dataset (each rank its share, no dropout, no gradients): per objective the
        mean loss, the accuracy and, for token predictions, the perplexity; logged as one line and written to
        TensorBoard as ``dev/<name>`` at this step. Returns the scores."""
        engine, model = self.engine, self.engine.model
        names = list(model.target.names)
        sums = torch.zeros(len(names), 3, dtype=torch.float64, device=self.ctx.device)
        model.eval()
        try:
            with torch.no_grad():
                for batch in self.dev_batches.evaluation_batches():
                    with engine.autocast():
                        outputs = model(engine.to_device(batch))
                    for j, n in enumerate(names):
                        o = outputs[n]
                        sums[j, 0] += o.loss_sum.double()
                        sums[j, 1] += o.correct.double()
                        sums[j, 2] += o.count
        finally:
            model.train()
        sums = all_reduce_sum(sums, self.ctx).cpu()
        scores: dict[str, float] = {}
        for j, n in enumerate(names):
            loss_sum, correct, count = sums[j].tolist()
            if count == 0:  # multi-task: the dev dataset has no labels for this objective
                continue
            scores[f"loss_{n}"] = loss_sum / count
            if n in PERPLEXITY_TARGETS:
                scores[f"ppl_{n}"] = math.exp(min(loss_sum / count, 700.0))
            scores[f"acc_{n}"] = correct / count
        if self.ctx.is_main:
            logger.info("| validation at step %d on %s| %s", self.step, self.dev_batches.dataset.path,
                        "| ".join(f"{k} {v:.4f}" for k, v in scores.items()))
            engine.writer.add(scores, self.step, prefix="dev/")
        return scores

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
