"""The fine-tuning loop every run_*.py shares: batching, the rank split, the loss normalisation, reporting,
evaluation on dev after each epoch, keeping the best model, and prediction. Devices, DDP, AMP, seeding, the
optimiser and its step are the engine's (uer/training/engine.py), shared with pre-training.

A task gives it instances (uer.data.finetune_data), a head whose ``forward(batch)`` returns a
:class:`uer.finetune.contract.HeadOutput` (per-instance loss, outputs, statistics), and metrics as
:class:`EvalSet`s that turn the predictions of a data set into scores. Nothing here knows what a label or a
question is: the loop sums the head's statistics and reports them, as the pre-training loop does with targets.

Batch size: ``--batch_size`` is the global batch, as in UER-py (whose DataParallel splits it over GPUs);
with W processes each takes about 1/W of every batch. The loss of a step is the mean over the real
instances of the global batch, so 2 processes train exactly like 1 (same steps, same gradients).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from uer.data.finetune_data import (Instances, batches_per_epoch, collate, evaluation_batches, split_for_rank,
                                    training_batches, width_multiple)
from uer.training.engine import Engine, OptimConfig, autocast, finetune_report_line
from uer.errors import UsageError
from uer.finetune.adversarial import Adversary, AdversarialConfig
from uer.finetune.contract import EvalSet, Evaluation, HeadOutput, Prediction
from uer.model_loader import load_model_weights
from uer.model_saver import model_state_dict, save_model, unwrap
from uer.utils.io import is_stream, write_target
from uer.utils.distributed import DistContext, all_reduce_sum
from uer.utils.progress import Progress

logger = logging.getLogger("uer.finetune")


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig(OptimConfig):
    """Options of the fine-tuning loop (typed; built once from the merged command line); the optimisation
    options (learning rate, warm-up, betas, weight decay, seed, fp16) are :class:`OptimConfig`'s."""

    output_model_path: str = "models/finetuned_model.bin"
    epochs_num: int = 3
    batch_size: int = 64
    seq_length: int = 128
    report_steps: int = 100
    dynamic_padding: bool = True    # False pads every batch to seq_length, as UER-py does (benchmarks)
    length_bucketing: bool = True   # batches of similar lengths: less padding, faster epochs
    keep: str = "best"              # "best": the best model on dev; "last": the final one (cross-validation)
    adam_bias_correction: bool = False  # UER-py and Google's BERT fine-tune with Adam without bias correction
    early_stopping_patience: int | None = None  # stop after this many evaluations without a better dev score
    eval_steps: int | None = None   # also evaluate on dev every this many optimiser steps (not only per epoch)
    adversarial: AdversarialConfig | None = None  # --use_adv: FGM / PGD on the word embedding
    max_steps: int | None = None    # stop after this many optimiser steps (the schedule ends there; HF's max_steps)
    checkpoint_steps: int = 0       # call the FineTuner's checkpoint hook every N steps (0: never)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.early_stopping_patience is not None:
            if self.early_stopping_patience < 1:
                raise UsageError(f"--early_stopping_patience must be at least 1, got {self.early_stopping_patience}")
            if self.keep != "best":
                raise UsageError("--early_stopping_patience needs the best model on dev to be kept (not with keep='last')")
        if self.eval_steps is not None and self.eval_steps <= 0:
            raise UsageError(f"--eval_steps must be positive, got {self.eval_steps}")
        if self.max_steps is not None and self.max_steps < 1:
            raise UsageError(f"--max_steps must be positive, got {self.max_steps}")
        if self.checkpoint_steps < 0:
            raise UsageError(f"checkpoint steps must be 0 (none) or positive, got {self.checkpoint_steps}")
        for name in ("epochs_num", "batch_size", "seq_length", "report_steps"):
            if getattr(self, name) <= 0:
                raise UsageError(f"--{name} must be positive, got {getattr(self, name)}")
        if self.keep not in ("best", "last"):
            raise UsageError(f"keep must be 'best' or 'last', got {self.keep!r}")


def predict(model: nn.Module, data: Instances, batch_size: int, pad_id: int, device: torch.device,
            amp_dtype: torch.dtype | None = None, ctx: DistContext = DistContext(), pad_to: int | None = None,
            desc: str = "predicting") -> list[Prediction]:
    """The outputs of ``model`` on ``data``: one dict per instance, in file order, without padding (outputs
    the head names in ``token_outputs`` cut to the instance's length; floating outputs as float32 numpy).
    Under DDP every rank computes a share of the batches and all ranks receive all predictions."""
    was_training = model.training
    model.eval()
    batches = evaluation_batches(data, batch_size)
    parts: list[tuple[np.ndarray, dict[str, np.ndarray], tuple[str, ...]]] = []
    mine = range(ctx.rank, len(batches), ctx.world_size)
    with torch.no_grad(), Progress(len(mine), desc, unit="batch", enabled=ctx.is_main) as progress:
        for i in mine:
            batch = collate(data, batches[i], pad_id, pad_to, width_multiple(amp_dtype))
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            with autocast(device, amp_dtype):
                out: HeadOutput = model(batch)
            arrays = {name: (t.float() if t.is_floating_point() else t).cpu().numpy() for name, t in out.outputs.items()}
            parts.append((batches[i], arrays, tuple(out.token_outputs)))
            progress.update()
    model.train(was_training)
    if ctx.distributed:
        gathered: list = [None] * ctx.world_size
        dist.all_gather_object(gathered, parts)
        parts = [part for rank_parts in gathered for part in rank_parts]
    lengths = data.lengths
    predictions: list[Prediction] = [{} for _ in range(len(data))]
    for indices, arrays, token_names in parts:
        for j, i in enumerate(indices):
            predictions[i] = {name: values[j, :lengths[i]] if name in token_names else values[j]
                              for name, values in arrays.items()}
    return predictions


def weighted_sums(out: HeadOutput, weights: torch.Tensor) -> dict[str, torch.Tensor]:
    """A training batch's contribution to the reported statistics: the loss, the instances, the loss units
    and each of the head's statistics, summed with the instance weights (0 for a rank's filler)."""
    sums = {"loss": (out.loss.detach() * weights).sum(), "instances": weights.sum(),
            "loss_count": weights.sum() if out.loss_count is None else (out.loss_count * weights).sum()}
    sums.update({name: (value.float() * weights).sum() for name, value in out.stats.items()})
    return sums


def report_scalars(totals: dict[str, float]) -> dict[str, float]:
    """Summed statistics (all ranks, a report window) -> reported values: ``loss`` per instance (or per loss
    unit), then each head statistic divided by the summed ``count`` (``correct`` reported as ``acc``)."""
    count = totals.get("count", totals["instances"])
    scalars = {"loss": totals["loss"] / max(totals["loss_count"], 1)}
    for name, value in totals.items():
        if name not in ("loss", "instances", "loss_count", "count"):
            scalars["acc" if name == "correct" else name] = value / max(count, 1)
    return scalars


class FineTuner:
    """Trains ``model`` (a head over embedding + encoder) and keeps the best model on dev on disk."""

    def __init__(self, model: nn.Module, cfg: FinetuneConfig, ctx: DistContext, pad_id: int,
                 find_unused_parameters: bool = False,
                 checkpoint: Callable[[nn.Module, int], None] | None = None) -> None:
        """``checkpoint(model, step)``: called on rank 0 every ``cfg.checkpoint_steps`` optimiser steps."""
        if cfg.checkpoint_steps and checkpoint is None:
            raise ValueError("checkpoint_steps needs a checkpoint hook")
        self.checkpoint = checkpoint
        self.cfg = cfg
        self.ctx = ctx
        self.pad_id = pad_id
        self.engine = Engine(model, cfg, ctx, find_unused_parameters)
        self.model = self.engine.model
        self.step = 0
        self._best_state: dict | None = None  # the best weights, when the output cannot be read back
        self.pad_to = None if cfg.dynamic_padding else cfg.seq_length
        self.train_seconds = 0.0
        self.train_examples = 0
        self.eval_seconds = 0.0  # dev evaluations so far (the whole-run ETA counts the ones left)
        self.total_steps = 0
        self.evaluations = 0  # dev evaluations so far
        self.adversary = Adversary(self.model, cfg.adversarial) if cfg.adversarial is not None else None

    # ----------------------------------------------------------------------------------------------
    def _epoch_batches(self, datasets: Sequence[Instances], epoch: int) -> list[tuple[int, np.ndarray]]:
        """(dataset index, global batch) pairs of one epoch; the same on every rank (seeded by seed, epoch).

        Batches never mix data sets; with several (multi-task), their batches are interleaved at random.
        """
        rng = np.random.default_rng([self.cfg.seed, epoch])
        batches = [(d, b) for d, data in enumerate(datasets)
                   for b in training_batches(data, self.cfg.batch_size, rng, self.cfg.length_bucketing)]
        if len(datasets) > 1:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def _barrier(self) -> None:
        if self.ctx.distributed:
            dist.barrier()

    def fit(self, train: Instances | Sequence[Instances], dev: Sequence[EvalSet] = ()) -> float | None:
        """Train ``--epochs_num`` epochs, evaluating ``dev`` after each (and every ``eval_steps`` steps); returns
        the best dev score (by the sets' primary score and its direction).

        On return the model holds the kept weights (best on dev, or the last ones), which are also in
        ``output_model_path``.
        """
        cfg, ctx = self.cfg, self.ctx
        datasets = [train] if isinstance(train, Instances) else list(train)
        steps_per_epoch = sum(batches_per_epoch(d, cfg.batch_size) for d in datasets)
        total_steps = steps_per_epoch * cfg.epochs_num
        if cfg.max_steps is not None:
            total_steps = min(total_steps, cfg.max_steps)
        engine = self.engine
        engine.build_optimization(total_steps)
        self.total_steps = total_steps
        progress = Progress(total_steps, "fine-tuning", unit="step", enabled=ctx.is_main, interval=float("inf"))
        try:
            return self._fit(datasets, dev, steps_per_epoch, progress)
        finally:
            progress.close()
            engine.close()

    def _fit(self, datasets: list[Instances], dev: Sequence[EvalSet], steps_per_epoch: int,
             progress: Progress) -> float | None:
        cfg, ctx, engine = self.cfg, self.ctx, self.engine
        forward = engine.module
        if ctx.is_main:
            logger.info("fine-tuning: %d training instances, batch size %d, %d steps per epoch, %d epochs, "
                        "%d process(es) on %s%s", sum(len(d) for d in datasets), cfg.batch_size, steps_per_epoch,
                        cfg.epochs_num, ctx.world_size, ctx.device,
                        ", length bucketing" if cfg.length_bucketing else ", random batches (no length bucketing)")
        self._best: float | None = None
        self._stale = 0  # evaluations since the best dev score
        stop = False
        for epoch in range(1, cfg.epochs_num + 1):
            if self.step >= self.total_steps:
                break  # --max_steps reached
            self.model.train()
            # weighted sums since the last report (loss, instances, loss units, the head's statistics),
            # kept on the device: no sync per step
            names: list[str] = []
            sums: torch.Tensor | None = None
            window_start = time.perf_counter()
            epoch_start = window_start
            batches = self._epoch_batches(datasets, epoch)
            evaluated_at = -1  # the batch (index in this epoch) after which dev was last evaluated
            for i, (d, global_batch) in enumerate(batches):
                engine.seed_step(self.step)
                data = datasets[d]
                part, weights = split_for_rank(global_batch, ctx.rank, ctx.world_size,
                                               None if data.groups is None else data.groups[global_batch])
                batch = engine.to_device(collate(data, part, self.pad_id, self.pad_to,
                                                 width_multiple(engine.amp_dtype)))
                w = torch.from_numpy(weights).to(ctx.device)
                out, loss = self._forward_loss(forward, batch, w, len(global_batch))
                engine.backward(loss)
                if self.adversary is not None:
                    self.adversary.attack(lambda: self._forward_loss(forward, batch, w, len(global_batch))[1],
                                          engine.backward)
                engine.step()
                self.step += 1
                progress.update()
                if cfg.checkpoint_steps and self.step % cfg.checkpoint_steps == 0 and ctx.is_main:
                    self.checkpoint(self.model, self.step)
                with torch.no_grad():
                    step_sums = weighted_sums(out, w)
                    if sums is None:
                        names = list(step_sums)
                        sums = torch.zeros(len(names), dtype=torch.float64, device=ctx.device)
                    elif list(step_sums) != names:
                        raise ValueError(f"the head's statistics changed between batches: {names[3:]} then "
                                         f"{list(step_sums)[3:]}")
                    sums += torch.stack([step_sums[n] for n in names]).double()
                self.train_examples += int(weights.sum())
                if (i + 1) % cfg.report_steps == 0 or i + 1 == len(batches) or self.step == self.total_steps:
                    now = time.perf_counter()
                    self._report(epoch, i + 1, len(batches), names, sums, now - window_start, now - epoch_start)
                    sums.zero_()
                    window_start = time.perf_counter()
                if dev and cfg.eval_steps is not None and self.step % cfg.eval_steps == 0:
                    eval_start = time.perf_counter()
                    self.train_seconds += eval_start - epoch_start
                    stop = self._evaluate_dev(dev, f"step {self.step} (epoch {epoch}/{cfg.epochs_num}) dev", epoch)
                    evaluated_at = i
                    epoch_start = time.perf_counter()
                    window_start += epoch_start - eval_start  # the report's examples/s counts training time only
                    self.model.train()
                    if stop:
                        break
                if self.step == self.total_steps:
                    break  # --max_steps ends the run inside an epoch
            self.train_seconds += time.perf_counter() - epoch_start
            engine.check_finite()  # a model trained through a NaN loss is never evaluated or saved
            if dev and not stop and evaluated_at != len(batches) - 1:
                stop = self._evaluate_dev(dev, f"epoch {epoch}/{cfg.epochs_num} dev", epoch)
            if stop:
                if self.step < self.total_steps:
                    if ctx.is_main and cfg.eval_steps is None:
                        logger.info("early stopping after epoch %d/%d: no better dev score for %d epoch(s) (best %.4f)",
                                    epoch, cfg.epochs_num, self._stale, self._best)
                    elif ctx.is_main:
                        logger.info("early stopping at step %d (epoch %d/%d): no better dev score in %d evaluation(s) "
                                    "(best %.4f)", self.step, epoch, cfg.epochs_num, self._stale, self._best)
                break
        best = self._best
        if cfg.keep == "last" or best is None:
            if ctx.is_main:
                save_model(self.model, cfg.output_model_path)
                logger.info("saved %s", cfg.output_model_path)
        self._barrier()
        if cfg.keep == "best" and dev:
            if self._best_state is not None:
                unwrap(self.model).load_state_dict(self._best_state)
            else:
                self.load(cfg.output_model_path)
        return best

    def _forward_loss(self, forward: nn.Module, batch: dict, w: torch.Tensor,
                      global_instances: int) -> tuple[HeadOutput, torch.Tensor]:
        """The head's output on a training batch and the loss to back-propagate (this rank's share)."""
        with self.engine.autocast():
            out: HeadOutput = forward(batch)
        if out.loss is None:
            raise ValueError("the head returned no loss for a training batch (the training data has no labels?)")
        loss = (out.loss * w).sum() * (self.ctx.world_size / self._loss_denominator(out, w, global_instances))
        return out, loss

    def _evaluate_dev(self, dev: Sequence[EvalSet], title: str, epoch: int) -> bool:
        """Evaluate ``dev``, keep the model when it is the best so far (the first evaluation always is), and
        say whether early stopping ends the run."""
        cfg, ctx = self.cfg, self.ctx
        greater = dev[0].greater_is_better
        if any(s.greater_is_better != greater for s in dev):
            raise ValueError("the dev sets' primary scores disagree on whether higher is better")
        self.engine.check_finite()  # a model trained through a NaN loss is never evaluated or saved
        eval_start = time.perf_counter()
        results = self.evaluate(dev, title, full=False)
        self.eval_seconds += time.perf_counter() - eval_start
        self.evaluations += 1
        for s in dev:
            prefix = f"{s.name}/" if len(dev) > 1 else ""
            self.engine.report_dev({prefix + k: v for k, v in results[s.name].scores.items()},
                                   epoch if cfg.eval_steps is None else self.step)
        score = float(np.mean([results[s.name].scores[s.primary] for s in dev]))
        best = self._best
        # the first evaluation always keeps its model (even a score of 0); an undefined score (NaN: a correlation
        # of constant predictions) never beats a defined one
        better = best is None or (np.isnan(best) and not np.isnan(score)) or (score > best if greater else score < best)
        self._stale = 0 if better else self._stale + 1
        if cfg.keep == "best" and better:
            self._best = score
            if is_stream(write_target(cfg.output_model_path)):  # /dev/null, a pipe: not readable back
                self._best_state = model_state_dict(self.model)
            if ctx.is_main:
                save_model(self.model, cfg.output_model_path)
                logger.info("best so far (%s %.4f): saved %s", "/".join(sorted({s.primary for s in dev})),
                            score, cfg.output_model_path)
        elif cfg.keep == "last":
            self._best = score
        return cfg.early_stopping_patience is not None and self._stale >= cfg.early_stopping_patience

    def _loss_denominator(self, out: HeadOutput, w: torch.Tensor, global_instances: int) -> float:
        """What the loss of a step is a mean over: the instances of the global batch, or the global sum of
        the head's ``loss_count`` (one all-reduce)."""
        if out.loss_count is None:
            return float(global_instances)
        units = all_reduce_sum((out.loss_count.detach().double() * w).sum(), self.ctx)
        return max(float(units), 1.0)

    def _report(self, epoch: int, done: int, total: int, names: list[str], sums: torch.Tensor, window: float,
                elapsed: float) -> None:
        totals = dict(zip(names, all_reduce_sum(sums.clone(), self.ctx).cpu().tolist()))
        scalars = {"epoch": epoch, "epochs": self.cfg.epochs_num, "epoch_step": done, "epoch_steps": total,
                   "step": self.step, **report_scalars(totals),
                   "examples_per_s": totals["instances"] / max(window, 1e-9),
                   "lr": self.engine.learning_rate(self.step - 1),  # the rate of the step just taken
                   "seconds_left": self._seconds_left(epoch, elapsed)}
        self.engine.report(scalars, finetune_report_line)

    def _seconds_left(self, epoch: int, epoch_elapsed: float) -> float:
        """Time left in the whole run (not only this epoch): the training steps left at this run's rate so
        far, plus the dev evaluations left at their mean duration so far (none is known before the first)."""
        steps_left = self.total_steps - self.step
        train_rate = (self.train_seconds + epoch_elapsed) / max(self.step, 1)
        evals_left = self.cfg.epochs_num - epoch + 1  # the end of this epoch's and of the later ones
        if self.cfg.eval_steps is not None:
            evals_left += steps_left // self.cfg.eval_steps
        evals_done = self.evaluations if self.cfg.eval_steps is not None else epoch - 1
        return steps_left * train_rate + (self.eval_seconds / evals_done * evals_left if evals_done else 0.0)

    # ----------------------------------------------------------------------------------------------
    def predict(self, data: Instances, desc: str = "predicting") -> list[Prediction]:
        return predict(self.model, data, self.cfg.batch_size, self.pad_id, self.ctx.device, self.engine.amp_dtype,
                       self.ctx, self.pad_to, desc)

    def evaluate(self, sets: Sequence[EvalSet], title: str, full: bool = True) -> dict[str, Evaluation]:
        """Metrics of every set (computed on every rank from the gathered predictions; rank 0 logs the full
        report, or the one-line summary when ``full`` is False)."""
        results = {}
        for s in sets:
            start = time.perf_counter()
            results[s.name] = s.metric(self.predict(s.data, f"{title} [{s.name}]"), s.data)
            if self.ctx.is_main:
                name = f"{title} [{s.name}]" if len(sets) > 1 else title
                result = results[s.name]
                logger.info("%s (%d instances, %.1f s):%s", name, len(s.data), time.perf_counter() - start,
                            "\n" + result.text if full else " " + result.summary)
        return results

    def load(self, path: str) -> None:
        """Load a model file written by this loop into the model (all keys must match)."""
        load_model_weights(self.model, path, strict_prefixes=("",))
