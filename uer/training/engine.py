"""The training engine both loops use: the pre-training loop (uer/training/pretrain_loop.py) and the fine-tuning loop
(uer/finetune/loop.py) differ in what a step computes and when they evaluate or save, not in how a model is
placed, wrapped, seeded, scaled and stepped. Everything of the second kind lives here, once:

- :class:`OptimConfig`: the optimisation options both loops share (TrainConfig and FinetuneConfig extend it);
- :class:`Engine`: device placement, AMP (autocast dtype, GradScaler), the DDP wrap, per-step seeding, the
  optimiser and schedule (:func:`build_optimizer`, :func:`build_schedule`), backward and the optimiser step;
- the report: each loop builds a dict of scalars (step, losses, accuracies, lr, throughput), the engine turns it
  into the report line (:func:`pretrain_report_line`, :func:`finetune_report_line`, whose text users parse and
  which therefore does not change) and logs it.

Later options (another optimiser or schedule, gradient clipping, gradient-norm reporting, TensorBoard, early
stopping) belong in these few places: the two builders, :meth:`Engine.step` and :meth:`Engine.report`.
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Callable, ContextManager

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from uer.errors import TrainingDivergedError, UsageError
from uer.training import optimizers
from uer.utils.distributed import DistContext
from uer.training.schedulers import adam_bias_correction_undone, schedule_factor, str2scheduler
from uer.utils.tensorboard import ScalarWriter

logger = logging.getLogger(__name__)

Scalars = dict[str, float]


@dataclass(frozen=True, kw_only=True)
class OptimConfig:
    """Optimisation options shared by pre-training and fine-tuning (typed; from the merged command line).

    ``adam_bias_correction``: torch's AdamW corrects the moments' bias (pre-training); fine-tuning turns it
    off to take the steps of UER-py's and Google's BERT optimiser (see :func:`build_schedule`).
    """

    learning_rate: float = 2e-5
    warmup: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.999
    weight_decay: float = 0.01
    seed: int = 7
    fp16: bool = False              # --fp16 (UER-py's flag) and --bf16 (HF's): see autocast_dtype
    bf16: bool = False
    fp16_opt_level: str = "O1"
    adam_bias_correction: bool = True
    optimizer: str = "adamw"        # --optimizer: adamw | adafactor
    scheduler: str = "linear"       # --scheduler (uer.training.schedulers)
    lr_decay: float = 0.5           # tri_stage: fraction of the steps in the final decay
    num_cycles: int = 1             # cosine_with_restarts: cosine cycles
    max_grad_norm: float | None = None  # clip the gradients' total norm to this (None: no clipping)
    adam_epsilon: float = 1e-6      # AdamW's epsilon (UER-py's 1e-6; HF's run_glue: 1e-8)
    tensorboard_dir: str | None = None  # not optimisation, but read by the engine's report in both loops

    def __post_init__(self) -> None:
        if not 0.0 <= self.warmup <= 1.0:
            raise UsageError(f"--warmup is a fraction of the training steps in [0, 1], got {self.warmup}")
        if self.optimizer not in optimizers.OPTIMIZERS:
            raise UsageError(f"--optimizer must be one of {', '.join(optimizers.OPTIMIZERS)}, got {self.optimizer!r}")
        if self.scheduler not in str2scheduler:
            raise UsageError(f"--scheduler must be one of {', '.join(str2scheduler)}, got {self.scheduler!r}")
        if not self.adam_epsilon > 0:
            raise UsageError(f"--adam_epsilon must be positive, got {self.adam_epsilon}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise UsageError(f"--max_grad_norm must be positive, got {self.max_grad_norm}")


def cpu_has_bf16_matmul() -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (AVX-512 BF16 or AMX): there bf16 autocast is
    ~2.5x the float32 matrix throughput; without them torch emulates bf16 and autocast is slower than float32."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def autocast_dtype(cfg: OptimConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``--fp16`` / ``--bf16`` on this device, or None for full float32; the one place
    that decides it (pre-training, fine-tuning and their evaluation).

    - CUDA with bfloat16 (Ampere and later): bfloat16, no loss scaling (same speed as float16, float32's range);
      CUDA without: float16 with dynamic loss scaling for ``--fp16``, and ``--bf16`` is refused.
    - CPU: bfloat16 (CPUs have no float16 autocast worth having). Where the CPU lacks bf16 matrix instructions
      it still runs as asked but says it will be slower than float32 (:meth:`Engine.__init__` logs it).
    - ``--fp16_opt_level O0`` keeps float32 (Apex's meaning); other devices are refused.
    """
    if not (cfg.fp16 or cfg.bf16) or (cfg.fp16 and not cfg.bf16 and cfg.fp16_opt_level == "O0"):
        return None
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return torch.bfloat16
        if cfg.bf16:
            raise UsageError(f"--bf16: {torch.cuda.get_device_name(device)} has no bfloat16 support; "
                             "use --fp16 (float16 with loss scaling)")
        return torch.float16
    if device.type == "cpu":
        return torch.bfloat16
    raise UsageError(f"--fp16/--bf16: no mixed precision on device type {device.type!r} (cpu or cuda)")


def precision_note(cfg: OptimConfig, device: torch.device, dtype: torch.dtype | None) -> str | None:
    """The one log line saying what ``--fp16`` / ``--bf16`` does on this device (None without the flags)."""
    flag = "--bf16" if cfg.bf16 else "--fp16"
    if not (cfg.fp16 or cfg.bf16):
        return None
    if dtype is None:
        return f"{flag} with --fp16_opt_level O0: training stays in float32"
    if dtype == torch.float16:
        return (f"{flag}: autocast to float16 with dynamic loss scaling (this GPU has no bfloat16; opt level "
                f"{cfg.fp16_opt_level} maps to native AMP, float32 master weights)")
    where = "CPU" if device.type == "cpu" else "GPU"
    note = (f"{flag} on {where}: autocast to bfloat16, float32 master weights, layer norms, softmax and losses; "
            "no loss scaling")
    if device.type == "cpu" and not cpu_has_bf16_matmul():
        note += (" -- this CPU has no bfloat16 matrix instructions (AVX-512 BF16 / AMX): expect it to be slower "
                 "than float32; drop the flag here")
    return note


def autocast(device: torch.device, dtype: torch.dtype | None) -> ContextManager:
    """Autocast to ``dtype`` on ``device``'s kind, or nothing (float32) when ``dtype`` is None."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """The optimiser of a run (``--optimizer``: fused AdamW or Adafactor), weight decay on matrices only, tied
    weights once."""
    return optimizers.build_optimizer(model, cfg.learning_rate, (cfg.beta1, cfg.beta2), cfg.weight_decay,
                                      eps=cfg.adam_epsilon, name=cfg.optimizer)


def build_schedule(optimizer: torch.optim.Optimizer, total_steps: int,
                   cfg: OptimConfig) -> tuple[torch.optim.lr_scheduler.LambdaLR, Callable[[int], float]]:
    """The learning-rate schedule of a run, and its nominal factor: step ``t`` (0-based) trains with the
    nominal learning rate ``cfg.learning_rate * factor(t)`` (what the reports print).

    ``--scheduler`` after a warm-up over ``warmup * total_steps`` steps (default: linear decay to 0). Without
    ``cfg.adam_bias_correction`` the rate torch's AdamW gets is also multiplied by
    (1 - beta1^t) / sqrt(1 - beta2^t), which undoes its bias correction: UER-py fine-tunes with an AdamW without
    it (``correct_bias=False``, as Google's BERT optimiser), whose early steps are larger (by
    1 / sqrt(1 - beta2^t) for the second moment: 3.2x at step 1, still 1.4x after 626 steps, 2 epochs of
    book_review). Short fine-tuning runs are tuned for that (UER-py's learning rates), so this gives the same
    update up to where epsilon enters.

    The formulas are in uer.training.schedulers; the bias correction is undone for AdamW only (Adafactor has no
    first moment to correct).
    """
    nominal = schedule_factor(cfg.scheduler, total_steps, cfg.warmup, cfg.learning_rate, cfg.lr_decay,
                              cfg.num_cycles)
    if cfg.adam_bias_correction or cfg.optimizer != "adamw":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, nominal), nominal
    factor = adam_bias_correction_undone(nominal, cfg.beta1, cfg.beta2)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor), nominal


class Engine:
    """One model on one process of a (possibly distributed) run: placed on the device, wrapped in DDP,
    trained under autocast with loss scaling, stepped by the optimiser and schedule.

    A loop calls, per optimiser step: :meth:`seed_step`, then for each micro-batch :meth:`to_device`, the
    forward of :attr:`module` under :meth:`autocast` (inside :meth:`accumulating` for all micro-batches but
    the last), :meth:`backward`; then :meth:`step`; and :meth:`report` every ``report_steps``.
    """

    def __init__(self, model: nn.Module, cfg: OptimConfig, ctx: DistContext,
                 find_unused_parameters: bool = False) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.model = model.to(ctx.device)
        self.amp_dtype = autocast_dtype(cfg, ctx.device)
        self.scaler = torch.amp.GradScaler(ctx.device.type, enabled=self.amp_dtype == torch.float16)
        note = precision_note(cfg, ctx.device, self.amp_dtype)
        if note and ctx.is_main:
            (logger.warning if "slower" in note else logger.info)(note)
        self.ddp = None
        if ctx.distributed:
            self.ddp = DistributedDataParallel(self.model,
                                               device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
                                               find_unused_parameters=find_unused_parameters)
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LambdaLR | None = None
        self._factor: Callable[[int], float] | None = None
        self.writer = ScalarWriter(cfg.tensorboard_dir, enabled=ctx.is_main)
        # the gradient norm is measured when it is clipped or written to TensorBoard (one pass over the grads)
        self.measure_grad_norm = cfg.max_grad_norm is not None or cfg.tensorboard_dir is not None
        self._grad_norms: list[torch.Tensor] = []  # since the last report, kept on the device (no sync)
        self._step = 0  # 0-based optimiser step being computed (seed_step)
        # first step whose loss was not finite (-1: none); on a GPU kept on the device, read at reports and saves
        self._first_nonfinite: torch.Tensor | None = None

    def build_optimization(self, total_steps: int) -> None:
        """A fresh optimiser and schedule for a run of ``total_steps`` optimiser steps."""
        self.optimizer = build_optimizer(self.model, self.cfg)
        self.scheduler, self._factor = build_schedule(self.optimizer, total_steps, self.cfg)

    @property
    def module(self) -> nn.Module:
        """What to call for a training forward: the DDP wrapper under DDP, else the model."""
        return self.ddp if self.ddp is not None else self.model

    # ----------------------------------------------------------------------------------------------
    # one step
    def seed_step(self, step: int) -> None:
        # Dropout draws are a function of (seed, step, rank): a resumed run draws exactly what an
        # uninterrupted one would, on every rank, without carrying each rank's generator state around.
        torch.manual_seed(self.cfg.seed * 1_000_003 + step * 1009 + self.ctx.rank)
        self._step = step

    def to_device(self, batch: dict) -> dict:
        return {k: v.to(self.ctx.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}

    def autocast(self) -> ContextManager:
        return autocast(self.ctx.device, self.amp_dtype)

    def accumulating(self, last: bool) -> ContextManager:
        """Context of a micro-batch's forward and backward: DDP syncs gradients on the ``last`` one only."""
        return contextlib.nullcontext() if (self.ddp is None or last) else self.ddp.no_sync()

    def backward(self, loss: torch.Tensor) -> None:
        self._watch_loss(loss)
        self.scaler.scale(loss).backward()

    def _watch_loss(self, loss: torch.Tensor) -> None:
        """Remember the first step whose loss is NaN or infinite. On the CPU the check costs nothing and the
        run stops at once; on a GPU it stays on the device (no sync per step) until :meth:`check_finite`."""
        bad = ~torch.isfinite(loss.detach())
        if not defer_finite_check(loss.device):
            if bool(bad):
                raise diverged(self._step + 1, self.learning_rate(self._step) if self._factor else None)
            return
        step = torch.full((), self._step + 1, device=loss.device, dtype=torch.long)
        first = self._first_nonfinite if self._first_nonfinite is not None else torch.full_like(step, -1)
        self._first_nonfinite = torch.where((first < 0) & bad, step, first)

    def check_finite(self) -> None:
        """Stop with one line if a loss since the start was not finite (called at reports and before saves:
        a non-finite model is never saved)."""
        if self._first_nonfinite is not None:
            step = int(self._first_nonfinite.item())
            if step > 0:
                raise diverged(step, self.learning_rate(step - 1) if self._factor else None)

    def step(self) -> None:
        """The optimiser step on the accumulated gradients (clipped to ``--max_grad_norm`` after unscaling),
        the schedule's step, and zeroed gradients."""
        if self.measure_grad_norm:
            self._grad_norms.append(optimizers.clip_gradients(self.optimizer, self.cfg.max_grad_norm, self.scaler))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def learning_rate(self, step: int) -> float:
        """The nominal learning rate of optimiser step ``step`` (0-based)."""
        return self.cfg.learning_rate * self._factor(step)

    # ----------------------------------------------------------------------------------------------
    def report(self, scalars: Scalars, line: Callable[[Scalars], str]) -> None:
        """Log one report (rank 0): ``scalars`` formatted by ``line``, and the same values as TensorBoard
        scalars (``--tensorboard_dir``) with the mean gradient norm of the steps since the last report and,
        under float16, the loss scale. The line shows the gradient norm only with ``--max_grad_norm``, so
        default report lines stay as they are."""
        self.check_finite()
        scalars = dict(scalars)
        if self._grad_norms:
            norms = torch.stack(self._grad_norms).double()
            finite = norms[torch.isfinite(norms)]  # float16 steps that overflowed were skipped
            scalars["grad_norm"] = finite.mean().item() if finite.numel() else float("nan")
            self._grad_norms = []
        if not self.ctx.is_main:
            return
        shown = {k: v for k, v in scalars.items() if k != "grad_norm" or self.cfg.max_grad_norm is not None}
        logger.info(line(shown))
        if self.writer.active:
            if self.scaler.is_enabled():
                scalars["loss_scale"] = self.scaler.get_scale()
            self.writer.add({k: v for k, v in scalars.items() if k not in REPORT_STRUCTURE}, int(scalars["step"]))

    def report_dev(self, scores: dict[str, float], epoch: int) -> None:
        """Dev metrics of an epoch as TensorBoard scalars ``dev/<metric>`` (rank 0)."""
        self.writer.add(scores, epoch, prefix="dev/")

    def close(self) -> None:
        self.writer.close()


def defer_finite_check(device: torch.device) -> bool:
    """Whether reading a loss's finiteness would stall the device (a GPU: yes, the check waits for reports)."""
    return device.type != "cpu"


def diverged(step: int, learning_rate: float | None) -> TrainingDivergedError:
    rate = f" (learning rate {learning_rate:.2e})" if learning_rate is not None else ""
    return TrainingDivergedError(
        f"training stopped: the loss is NaN or infinite at optimiser step {step}{rate}; nothing from this step on "
        "was saved. Lower --learning_rate, set --max_grad_norm 1.0, or check the pre-trained model and the data")


# keys of a report that place it (x axis, ETA) rather than measure training: not written as scalars
REPORT_STRUCTURE = ("step", "total_steps", "epoch", "epochs", "epoch_step", "epoch_steps", "seconds_left")


def pretrain_report_line(s: Scalars) -> str:
    """``| step/total steps| tokens/s| loss_<target> ...| acc_<target> ...| lr ...`` from ``step``,
    ``total_steps``, ``tokens_per_s``, ``loss_<target>``/``acc_<target>`` (in target order) and ``lr``."""
    parts = [f"| {int(s['step']):8d}/{int(s['total_steps']):8d} steps", f"{s['tokens_per_s']:10.0f} tokens/s"]
    for name, value in s.items():
        if name.startswith("loss_"):
            parts.append(f"{name} {value:7.3f}")
        elif name.startswith("acc_"):
            parts.append(f"{name} {value:6.3f}")
    parts.append(f"lr {s['lr']:.2e}")
    if "grad_norm" in s:  # with --max_grad_norm only
        parts.append(f"grad_norm {s['grad_norm']:.3f}")
    return "| ".join(parts)


# the keys of a fine-tuning report that are not a head statistic
_FINETUNE_FIXED = ("epoch", "epochs", "epoch_step", "epoch_steps", "step", "loss", "examples_per_s", "lr",
                   "seconds_left", "grad_norm")


def finetune_report_line(s: Scalars) -> str:
    """``| epoch e/E | done/total steps (p%) | loss ... | <stat> ... | examples/s | lr ... | time left`` from
    ``epoch``, ``epochs``, ``epoch_step``, ``epoch_steps``, ``loss``, ``examples_per_s``, ``lr``,
    ``seconds_left`` and any other key as a head statistic (e.g. ``acc``), in order."""
    stats = "".join(f" | {name} {value:.4f}" for name, value in s.items() if name not in _FINETUNE_FIXED)
    done, total = int(s["epoch_step"]), int(s["epoch_steps"])
    return (f"| epoch {int(s['epoch'])}/{int(s['epochs'])} | {done:6d}/{total} steps ({100.0 * done / total:5.1f}%) "
            f"| loss {s['loss']:.4f}{stats} | {s['examples_per_s']:7.1f} examples/s | lr {s['lr']:.2e} "
            f"| {duration(s['seconds_left'])} left" + (f" | grad_norm {s['grad_norm']:.4f}" if "grad_norm" in s else ""))


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
