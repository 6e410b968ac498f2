"""Optimisers (``--optimizer adamw|adafactor``, UER-py's names) and the linear warm-up schedule.

Schedules by name are in :mod:`uer.training.schedulers`.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

import torch
from torch import nn

from uer.training.schedulers import schedule_factor

OPTIMIZERS = ("adamw", "adafactor")


class Adafactor(torch.optim.Optimizer):
    """Adafactor (Shazeer & Stern 2018) as UER-py uses it (HF's implementation, no first moment).

    Matrices (and higher-rank tensors, over their last two dimensions) keep factored second moments, a row
    and a column mean of ``grad**2``; vectors keep the full one. Each update is divided by
    ``max(1, RMS(update) / clip_threshold)``. The step size is ``lr``, or with ``relative_step``
    ``min(lr, 1 / sqrt(t))``, times ``max(eps2, RMS(param))`` with ``scale_parameter``. UER-py trains with
    both off (``lr`` is the learning rate, as for AdamW); with both on and ``lr=1e-2`` this is the algorithm
    of ``torch.optim.Adafactor`` (tested against it). Weight decay: ``p -= weight_decay * step_size * p``.
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, eps: tuple[float, float] = (1e-30, 1e-3),
                 clip_threshold: float = 1.0, decay_rate: float = -0.8, weight_decay: float = 0.0,
                 scale_parameter: bool = False, relative_step: bool = False) -> None:
        if lr <= 0.0:
            raise ValueError(f"Adafactor: the learning rate must be positive, got {lr}")
        defaults = dict(lr=lr, eps=eps, clip_threshold=clip_threshold, decay_rate=decay_rate,
                        weight_decay=weight_decay, scale_parameter=scale_parameter, relative_step=relative_step)
        super().__init__(params, defaults)

    @staticmethod
    def _rms(tensor: torch.Tensor) -> float:
        return tensor.norm(2).item() / math.sqrt(tensor.numel())

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            eps1, eps2 = group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                low = p.dtype in (torch.float16, torch.bfloat16)  # compute half-precision parameters in float32
                grad = p.grad.float() if p.grad.dtype in (torch.float16, torch.bfloat16) else p.grad
                if grad.is_sparse:
                    raise RuntimeError("Adafactor does not support sparse gradients")
                state = self.state[p]
                factored = grad.dim() >= 2
                if not state:
                    state["step"] = 0
                    if factored:
                        state["exp_avg_sq_row"] = grad.new_zeros(grad.shape[:-1])
                        state["exp_avg_sq_col"] = grad.new_zeros(grad.shape[:-2] + grad.shape[-1:])
                    else:
                        state["exp_avg_sq"] = torch.zeros_like(grad)
                param = p.float() if low else p
                state["step"] += 1
                t = state["step"]
                step_size = min(group["lr"], 1.0 / math.sqrt(t)) if group["relative_step"] else group["lr"]
                if group["scale_parameter"]:
                    step_size *= max(eps2, self._rms(param))
                beta2t = 1.0 - t ** group["decay_rate"]
                squared = grad * grad + eps1
                if factored:
                    row, col = state["exp_avg_sq_row"], state["exp_avg_sq_col"]
                    row.mul_(beta2t).add_(squared.mean(dim=-1), alpha=1.0 - beta2t)
                    col.mul_(beta2t).add_(squared.mean(dim=-2), alpha=1.0 - beta2t)
                    # v_ij ~ row_i * col_j / mean(row): the rank-1 estimate of the second moment
                    row_factor = (row / row.mean(dim=-1, keepdim=True)).rsqrt().unsqueeze(-1)
                    update = row_factor * col.unsqueeze(-2).rsqrt() * grad
                else:
                    state["exp_avg_sq"].mul_(beta2t).add_(squared, alpha=1.0 - beta2t)
                    update = state["exp_avg_sq"].rsqrt() * grad
                update.div_(max(1.0, self._rms(update) / group["clip_threshold"]))
                if group["weight_decay"] != 0.0:
                    param.add_(param, alpha=-group["weight_decay"] * step_size)
                param.add_(update, alpha=-step_size)
                if param is not p:
                    p.copy_(param)
        return loss


def build_optimizer(model: nn.Module, learning_rate: float, betas: tuple[float, float] = (0.9, 0.999),
                    weight_decay: float = 0.01, eps: float = 1e-6, name: str = "adamw") -> torch.optim.Optimizer:
    """AdamW (``betas``, ``eps``) or Adafactor (UER-py's settings: ``learning_rate`` as the step size, no
    parameter scaling); weight decay on matrices only (dim >= 2), never on biases or layer-norm vectors.

    Deciding by dimension rather than by name substrings survives renamed layers (style practice 12).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    seen: set[int] = set()
    unique = [p for p in params if not (id(p) in seen or seen.add(id(p)))]  # tied weights once
    groups = [
        {"params": [p for p in unique if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in unique if p.dim() < 2], "weight_decay": 0.0},
    ]
    if name == "adafactor":
        return Adafactor(groups, lr=learning_rate)
    if name != "adamw":
        raise ValueError(f"unknown --optimizer {name!r} (choose from {', '.join(OPTIMIZERS)})")
    fused = all(p.device.type in ("cpu", "cuda") for p in unique)
    return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, eps=eps, fused=fused)


def linear_warmup_decay(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """Learning rate factor of step t (0-based): rises linearly over ``warmup_fraction * total_steps`` steps,
    then falls linearly to 0 at ``total_steps`` (``--scheduler linear``)."""
    return schedule_factor("linear", total_steps, warmup_fraction)


def build_linear_schedule(optimizer: torch.optim.Optimizer, total_steps: int,
                          warmup_fraction: float) -> torch.optim.lr_scheduler.LambdaLR:
    """The :func:`linear_warmup_decay` schedule of ``optimizer``."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup_decay(total_steps, warmup_fraction))


def clip_gradients(optimizer: torch.optim.Optimizer, max_norm: float | None,
                   scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:
    """The total L2 norm of the gradients about to be applied, clipped to ``max_norm`` when given.

    Call once per optimiser step, after the last micro-batch's backward (with accumulation the gradients
    are complete only then; under DDP they are all-reduced by then, so every rank measures the same global
    norm). Under float16 loss scaling the gradients are unscaled first (``scaler.unscale_``; its ``step``
    then does not unscale again), so ``max_norm`` applies to the true gradients. Returns the norm before
    clipping as a 0-dim tensor (no device sync); inf/nan when a float16 step overflowed (the scaler then
    skips that step).
    """
    if scaler is not None and scaler.is_enabled():
        scaler.unscale_(optimizer)
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not grads:
        return torch.zeros(())
    if max_norm is None:
        return torch.nn.utils.get_total_norm(grads)
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    return torch.nn.utils.clip_grad_norm_(params, max_norm)
