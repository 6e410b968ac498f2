"""The fine-tuning loop every run_*.py shares: batching, AdamW with warm-up, AMP, DDP, reporting,
evaluation on dev after each epoch, keeping the best model, and prediction.

A task gives it instances (uer.data.finetune_data), a head whose ``forward(batch)`` returns
``(per-instance loss, logits)`` (uer.finetune.heads), and metrics as :class:`EvalSet`s that turn the logits
of a data set into scores. Nothing here knows what a label or a question is.

Batch size: ``--batch_size`` is the global batch, as in UER-py (whose DataParallel splits it over GPUs);
with W processes each takes about 1/W of every batch. The loss of a step is the mean over the real
instances of the global batch, so 2 processes train exactly like 1 (same steps, same gradients).
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from uer.data.finetune_data import Instances, collate, length_sorted_batches, shuffled_batches, split_for_rank
from uer.model_loader import load_model_weights
from uer.model_saver import save_model
from uer.trainer import autocast_dtype
from uer.utils.distributed import DistContext, all_reduce_sum
from uer.utils.optimizers import build_linear_schedule, build_optimizer

logger = logging.getLogger("uer.finetune")


@dataclass(frozen=True)
class FinetuneConfig:
    """Options of the fine-tuning loop (typed; built once from the merged command line)."""

    output_model_path: str = "models/finetuned_model.bin"
    epochs_num: int = 3
    batch_size: int = 64
    seq_length: int = 128
    learning_rate: float = 2e-5
    warmup: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.999
    weight_decay: float = 0.01
    report_steps: int = 100
    seed: int = 7
    fp16: bool = False
    fp16_opt_level: str = "O1"
    dynamic_padding: bool = True    # False pads every batch to seq_length, as UER-py does (benchmarks)
    length_bucketing: bool = True   # batches of similar lengths: less padding, faster epochs
    keep: str = "best"              # "best": the best model on dev; "last": the final one (cross-validation)
    adam_bias_correction: bool = False  # UER-py and Google's BERT fine-tune with Adam without bias correction

    def __post_init__(self) -> None:
        for name in ("epochs_num", "batch_size", "seq_length", "report_steps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.warmup <= 1.0:
            raise ValueError(f"--warmup is a fraction of the training steps in [0, 1], got {self.warmup}")
        if self.keep not in ("best", "last"):
            raise ValueError(f"keep must be 'best' or 'last', got {self.keep!r}")


@dataclass(frozen=True)
class Evaluation:
    """Scores of one data set (``scores[primary]`` ranks models), a one-line summary (dev, each epoch)
    and a full report (test)."""

    scores: dict[str, float]
    summary: str
    text: str


@dataclass
class EvalSet:
    """A data set to evaluate, and how: ``metric(logits [N x C] in file order, data) -> Evaluation``."""

    name: str
    data: Instances
    metric: Callable[[np.ndarray, Instances], Evaluation]
    primary: str = "acc"


def predict(model: nn.Module, data: Instances, batch_size: int, pad_id: int, device: torch.device,
            amp_dtype: torch.dtype | None = None, ctx: DistContext = DistContext(), pad_to: int | None = None,
            ) -> np.ndarray:
    """Logits [N x C] (float32, file order) of ``model`` on ``data``; under DDP every rank computes a
    share of the batches and all ranks receive all logits."""
    was_training = model.training
    model.eval()
    batches = length_sorted_batches(data.lengths, batch_size)
    indices, outputs = [], []
    with torch.no_grad():
        for i in range(ctx.rank, len(batches), ctx.world_size):
            batch = {k: v.to(device, non_blocking=True) for k, v in collate(data, batches[i], pad_id, pad_to).items()}
            batch.pop("label", None)  # prediction never needs labels, and inference files have none
            batch.pop("soft_tgt", None)
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                _, logits = model(batch)
            indices.append(batches[i])
            outputs.append(logits.float().cpu().numpy())
    model.train(was_training)
    if ctx.distributed:
        gathered: list = [None] * ctx.world_size
        dist.all_gather_object(gathered, (indices, outputs))
        indices = [idx for part in gathered for idx in part[0]]
        outputs = [out for part in gathered for out in part[1]]
    if not outputs:
        return np.zeros((0, 0), dtype=np.float32)
    logits = np.zeros((len(data), outputs[0].shape[1]), dtype=np.float32)
    for idx, out in zip(indices, outputs):
        logits[idx] = out
    return logits


def build_schedule(optimizer: torch.optim.Optimizer, total_steps: int,
                   cfg: FinetuneConfig) -> tuple[torch.optim.lr_scheduler.LambdaLR, Callable[[int], float]]:
    """Linear warm-up and decay, times Adam's bias correction undone unless ``cfg.adam_bias_correction``.
    Returns the scheduler and the linear factor (the nominal learning rate is ``learning_rate * linear(step)``).

    UER-py fine-tunes with an AdamW without bias correction (``correct_bias=False``, as Google's BERT optimiser),
    whose steps early in training are larger than torch's: by 1 / sqrt(1 - beta2^t) for the second moment,
    3.2x at step 1, still 1.4x after 626 steps (2 epochs of book_review). Short fine-tuning runs are tuned for
    it (UER-py's learning rates), so torch's fused AdamW gets its learning rate scaled by
    (1 - beta1^t) / sqrt(1 - beta2^t): the same update up to where epsilon enters.
    """
    linear = build_linear_schedule(optimizer, total_steps, cfg.warmup).lr_lambdas[0]
    if cfg.adam_bias_correction:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, linear), linear

    def factor(step: int) -> float:
        t = step + 1  # the Adam step this learning rate is used for
        return linear(step) * (1.0 - cfg.beta1 ** t) / math.sqrt(1.0 - cfg.beta2 ** t)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor), linear


class FineTuner:
    """Trains ``model`` (a head over embedding + encoder) and keeps the best model on dev on disk."""

    def __init__(self, model: nn.Module, cfg: FinetuneConfig, ctx: DistContext, pad_id: int,
                 find_unused_parameters: bool = False) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.pad_id = pad_id
        self.model = model.to(ctx.device)
        self.amp_dtype = autocast_dtype(cfg, ctx.device)  # same rules as pre-training
        self.scaler = torch.amp.GradScaler(ctx.device.type, enabled=self.amp_dtype == torch.float16)
        if cfg.fp16 and ctx.is_main:
            if self.amp_dtype is None:
                logger.info("--fp16 with --fp16_opt_level O0: training stays in float32")
            elif ctx.device.type == "cpu":
                logger.info("--fp16 on CPU: autocast to bfloat16 (CPUs have no float16 autocast); no loss scaling")
            else:
                logger.info("--fp16: autocast to float16 with dynamic loss scaling (float32 master weights)")
        self.ddp = None
        if ctx.distributed:
            self.ddp = DistributedDataParallel(self.model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
                                               find_unused_parameters=find_unused_parameters)
        self.step = 0
        self.pad_to = None if cfg.dynamic_padding else cfg.seq_length
        self.train_seconds = 0.0
        self.train_examples = 0

    # ----------------------------------------------------------------------------------------------
    def _epoch_batches(self, datasets: Sequence[Instances], epoch: int) -> list[tuple[int, np.ndarray]]:
        """(dataset index, global batch) pairs of one epoch; the same on every rank (seeded by seed, epoch).

        Batches never mix data sets; with several (multi-task), their batches are interleaved at random.
        """
        rng = np.random.default_rng([self.cfg.seed, epoch])
        batches = [(d, b) for d, data in enumerate(datasets)
                   for b in shuffled_batches(data.lengths, self.cfg.batch_size, rng, self.cfg.length_bucketing)]
        if len(datasets) > 1:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def _seed_step(self) -> None:
        # Dropout draws are a function of (seed, step, rank): repeatable, and different on each rank.
        torch.manual_seed(self.cfg.seed * 1_000_003 + self.step * 1009 + self.ctx.rank)

    def _barrier(self) -> None:
        if self.ctx.distributed:
            dist.barrier()

    def fit(self, train: Instances | Sequence[Instances], dev: Sequence[EvalSet] = ()) -> float | None:
        """Train ``--epochs_num`` epochs, evaluating ``dev`` after each; returns the best dev score.

        On return the model holds the kept weights (best on dev, or the last ones), which are also in
        ``output_model_path``.
        """
        cfg, ctx = self.cfg, self.ctx
        datasets = [train] if isinstance(train, Instances) else list(train)
        steps_per_epoch = sum(math.ceil(len(d) / cfg.batch_size) for d in datasets)
        total_steps = steps_per_epoch * cfg.epochs_num
        optimizer = build_optimizer(self.model, cfg.learning_rate, (cfg.beta1, cfg.beta2), cfg.weight_decay)
        scheduler, linear = build_schedule(optimizer, total_steps, cfg)
        forward = self.ddp if self.ddp is not None else self.model
        if ctx.is_main:
            logger.info("fine-tuning: %d training instances, batch size %d, %d steps per epoch, %d epochs, "
                        "%d process(es) on %s%s", sum(len(d) for d in datasets), cfg.batch_size, steps_per_epoch,
                        cfg.epochs_num, ctx.world_size, ctx.device,
                        ", length bucketing" if cfg.length_bucketing else ", random batches (no length bucketing)")
        best: float | None = None
        for epoch in range(1, cfg.epochs_num + 1):
            self.model.train()
            # loss sum, correct, count since the last report; kept on the device (no sync per step)
            stats = torch.zeros(3, dtype=torch.float64, device=ctx.device)
            window_start = time.perf_counter()
            epoch_start = window_start
            batches = self._epoch_batches(datasets, epoch)
            for i, (d, global_batch) in enumerate(batches):
                self._seed_step()
                part, weights = split_for_rank(global_batch, ctx.rank, ctx.world_size)
                batch = {k: v.to(ctx.device, non_blocking=True)
                         for k, v in collate(datasets[d], part, self.pad_id, self.pad_to).items()}
                with torch.autocast(ctx.device.type, dtype=self.amp_dtype or torch.float32,
                                    enabled=self.amp_dtype is not None):
                    loss_vec, logits = forward(batch)
                w = torch.from_numpy(weights).to(ctx.device)
                # Mean over the real instances of the global batch; DDP's gradient averaging over W ranks
                # is undone by the factor W.
                loss = (loss_vec * w).sum() * (ctx.world_size / len(global_batch))
                self.scaler.scale(loss).backward()
                self.scaler.step(optimizer)
                self.scaler.update()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                self.step += 1
                with torch.no_grad():
                    correct = ((logits.argmax(-1) == batch["label"]).float() * w).sum()
                    stats += torch.stack([(loss_vec.detach() * w).sum(), correct, w.sum()]).double()
                self.train_examples += int(weights.sum())
                if (i + 1) % cfg.report_steps == 0 or i + 1 == len(batches):
                    now = time.perf_counter()
                    self._report(epoch, i + 1, len(batches), stats, now - window_start, now - epoch_start,
                                 cfg.learning_rate * linear(self.step - 1))
                    stats.zero_()
                    window_start = time.perf_counter()
            self.train_seconds += time.perf_counter() - epoch_start
            if dev:
                results = self.evaluate(dev, f"epoch {epoch}/{cfg.epochs_num} dev", full=False)
                score = float(np.mean([results[s.name].scores[s.primary] for s in dev]))
                if cfg.keep == "best" and (best is None or score > best):
                    best = score
                    if ctx.is_main:
                        save_model(self.model, cfg.output_model_path)
                        logger.info("best so far (%s %.4f): saved %s", "/".join(sorted({s.primary for s in dev})),
                                    score, cfg.output_model_path)
                elif cfg.keep == "last":
                    best = score
        if cfg.keep == "last" or best is None:
            if ctx.is_main:
                save_model(self.model, cfg.output_model_path)
                logger.info("saved %s", cfg.output_model_path)
        self._barrier()
        if cfg.keep == "best" and dev:
            self.load(cfg.output_model_path)
        return best

    def _report(self, epoch: int, done: int, total: int, stats: torch.Tensor, window: float, elapsed: float,
                lr: float) -> None:
        stats = all_reduce_sum(stats.clone(), self.ctx).cpu()
        if not self.ctx.is_main:
            return
        loss_sum, correct, count = stats.tolist()
        left = elapsed / done * (total - done)
        logger.info("| epoch %d/%d | %6d/%d steps (%5.1f%%) | loss %.4f | acc %.4f | %7.1f examples/s | lr %.2e | %s left",
                    epoch, self.cfg.epochs_num, done, total, 100.0 * done / total, loss_sum / max(count, 1),
                    correct / max(count, 1), count / max(window, 1e-9), lr, _duration(left))

    # ----------------------------------------------------------------------------------------------
    def predict(self, data: Instances) -> np.ndarray:
        return predict(self.model, data, self.cfg.batch_size, self.pad_id, self.ctx.device, self.amp_dtype,
                       self.ctx, self.pad_to)

    def evaluate(self, sets: Sequence[EvalSet], title: str, full: bool = True) -> dict[str, Evaluation]:
        """Metrics of every set (computed on every rank from the gathered logits; rank 0 logs the full
        report, or the one-line summary when ``full`` is False)."""
        results = {}
        for s in sets:
            start = time.perf_counter()
            logits = self.predict(s.data)
            results[s.name] = s.metric(logits, s.data)
            if self.ctx.is_main:
                name = f"{title} [{s.name}]" if len(sets) > 1 else title
                result = results[s.name]
                logger.info("%s (%d instances, %.1f s):%s", name, len(s.data), time.perf_counter() - start,
                            "\n" + result.text if full else " " + result.summary)
        return results

    def load(self, path: str) -> None:
        """Load a model file written by this loop into the model (all keys must match)."""
        load_model_weights(self.model, path, strict_prefixes=("",))


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
