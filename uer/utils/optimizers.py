"""AdamW with linear warm-up then linear decay (UER-py's default optimiser and schedule)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn


def build_optimizer(model: nn.Module, learning_rate: float, betas: tuple[float, float] = (0.9, 0.999),
                    weight_decay: float = 0.01, eps: float = 1e-6) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (dim >= 2), never on biases or layer-norm vectors.

    Deciding by dimension rather than by name substrings survives renamed layers (style practice 12).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    seen: set[int] = set()
    unique = [p for p in params if not (id(p) in seen or seen.add(id(p)))]  # tied weights once
    groups = [
        {"params": [p for p in unique if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in unique if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = all(p.device.type in ("cpu", "cuda") for p in unique)
    return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, eps=eps, fused=fused)


def linear_warmup_decay(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """Learning rate factor of step t (0-based): rises linearly over ``warmup_fraction * total_steps`` steps,
    then falls linearly to 0 at ``total_steps``."""
    warmup_steps = int(total_steps * warmup_fraction)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


def build_linear_schedule(optimizer: torch.optim.Optimizer, total_steps: int,
                          warmup_fraction: float) -> torch.optim.lr_scheduler.LambdaLR:
    """The :func:`linear_warmup_decay` schedule of ``optimizer``."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup_decay(total_steps, warmup_fraction))
