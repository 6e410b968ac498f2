"""Learning-rate schedules, by UER-py's names (``--scheduler``), as factors of the peak learning rate.

Every schedule is a pure function ``factor(step)`` (step 0 is the first optimiser step) wrapped in torch's
``LambdaLR``, so the scheduler state in a ``.trainer`` file is just the step count and resuming is exact.
``warmup_steps = int(total_steps * --warmup)``; ``decay_steps = int(total_steps * --lr_decay)`` (tri_stage).

The formulas are UER-py's (``uer/training/optimizers.py`` of its later versions, themselves HF's
``get_scheduler`` ones), with one deliberate difference kept from this project's first schedule: a linear
warm-up gives step ``s`` the factor ``(s + 1) / warmup_steps`` instead of ``s / warmup_steps``, so the first
step already learns (UER-py's first step has learning rate 0 and is wasted) and the last warm-up step reaches
the peak. After warm-up every formula is UER-py's:

==========================  =================================================================================
linear                      (T - s) / (T - W)
cosine                      0.5 * (1 + cos(pi * p)),  p = (s - W) / (T - W)
cosine_with_restarts        0.5 * (1 + cos(pi * ((cycles * p) mod 1))), 0 once p >= 1 (``--num_cycles`` hard
                            restarts; UER-py's 1 cycle is the cosine)
polynomial                  ((1 - lr_end/lr) * (1 - p) ** power + lr_end/lr), lr_end = 1e-7, power 1
constant                    1 (no warm-up)
constant_with_warmup        1
inverse_sqrt                sqrt(W / s)
tri_stage                   warm-up from 0.01 to 1 over W steps (UER-py: ``0.01 + 0.99 * s / W``), hold at 1,
                            then over the last D steps ``exp(-ln(1/0.05) * (s - (T - D)) / D)`` down to 0.05
==========================  =================================================================================
"""
from __future__ import annotations

import math
from typing import Callable

import torch

Factor = Callable[[int], float]

# tri_stage's start and end as fractions of the peak (UER-py's init_lr_scale and final_lr_scale)
TRI_STAGE_INIT_SCALE = 0.01
TRI_STAGE_FINAL_SCALE = 0.05
POLYNOMIAL_LR_END = 1e-7


def _warmup(step: int, warmup_steps: int) -> float:
    return (step + 1) / max(1, warmup_steps)


def linear(total_steps: int, warmup_steps: int, **_) -> Factor:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return _warmup(step, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
    return factor


def cosine(total_steps: int, warmup_steps: int, num_cycles: float = 0.5, **_) -> Factor:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return _warmup(step, warmup_steps)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * num_cycles * 2.0 * progress)))
    return factor


def cosine_with_restarts(total_steps: int, warmup_steps: int, cycles: int = 1, **_) -> Factor:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return _warmup(step, warmup_steps)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        if progress >= 1.0:
            return 0.0
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((cycles * progress) % 1.0))))
    return factor


def polynomial(total_steps: int, warmup_steps: int, learning_rate: float, power: float = 1.0,
               lr_end: float = POLYNOMIAL_LR_END, **_) -> Factor:
    if learning_rate <= lr_end:
        raise ValueError(f"--scheduler polynomial decays to {lr_end:g}: --learning_rate must be larger, "
                         f"got {learning_rate:g}")
    end = lr_end / learning_rate

    def factor(step: int) -> float:
        if step < warmup_steps:
            return _warmup(step, warmup_steps)
        if step > total_steps:
            return end
        remaining = 1.0 - (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return (1.0 - end) * remaining ** power + end
    return factor


def constant(**_) -> Factor:
    return lambda step: 1.0


def constant_with_warmup(warmup_steps: int, **_) -> Factor:
    return lambda step: _warmup(step, warmup_steps) if step < warmup_steps else 1.0


def inverse_sqrt(warmup_steps: int, **_) -> Factor:
    # UER-py divides by zero (and trains at learning rate 0) with no warm-up; one step of "warm-up" avoids it.
    w = max(1, warmup_steps)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return _warmup(step, warmup_steps)
        return math.sqrt(w / max(step, w))
    return factor


def tri_stage(total_steps: int, warmup_steps: int, decay_steps: int, **_) -> Factor:
    decay_start = total_steps - decay_steps
    if decay_start < warmup_steps:
        raise ValueError(f"--scheduler tri_stage: --warmup ({warmup_steps} steps) and --lr_decay ({decay_steps} steps) "
                         f"overlap in {total_steps} steps; their sum must be at most 1")
    rate = -math.log(TRI_STAGE_FINAL_SCALE) / max(decay_steps, 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return TRI_STAGE_INIT_SCALE + (1.0 - TRI_STAGE_INIT_SCALE) * step / warmup_steps
        if step < decay_start:
            return 1.0
        if step <= total_steps:
            return math.exp(-rate * (step - decay_start))
        return TRI_STAGE_FINAL_SCALE
    return factor


# The one registry of schedules: --scheduler's choices come from it.
str2scheduler: dict[str, Callable[..., Factor]] = {
    "linear": linear, "cosine": cosine, "cosine_with_restarts": cosine_with_restarts, "polynomial": polynomial,
    "constant": constant, "constant_with_warmup": constant_with_warmup, "inverse_sqrt": inverse_sqrt,
    "tri_stage": tri_stage,
}


def schedule_factor(name: str, total_steps: int, warmup: float, learning_rate: float = 2e-5, lr_decay: float = 0.5,
                    num_cycles: int = 1) -> Factor:
    """The factor function of schedule ``name`` (``warmup`` and ``lr_decay`` are fractions of ``total_steps``)."""
    if name not in str2scheduler:
        raise ValueError(f"unknown --scheduler {name!r} (choose from {', '.join(str2scheduler)})")
    if not 0.0 <= warmup <= 1.0:
        raise ValueError(f"--warmup is a fraction of the training steps in [0, 1], got {warmup}")
    if not 0.0 <= lr_decay <= 1.0:
        raise ValueError(f"--lr_decay is a fraction of the training steps in [0, 1], got {lr_decay}")
    if num_cycles < 1:
        raise ValueError(f"--num_cycles must be at least 1, got {num_cycles}")
    return str2scheduler[name](total_steps=total_steps, warmup_steps=int(total_steps * warmup),
                               decay_steps=int(total_steps * lr_decay), learning_rate=learning_rate,
                               cycles=num_cycles)


def adam_bias_correction_undone(factor: Factor, beta1: float, beta2: float) -> Factor:
    """``factor`` times (1 - beta1^t) / sqrt(1 - beta2^t), t = step + 1: torch's (bias-corrected) AdamW then
    takes the steps of an Adam without bias correction (UER-py's and Google BERT's fine-tuning optimiser) up
    to where epsilon enters."""
    def corrected(step: int) -> float:
        t = step + 1  # the Adam step this learning rate is used for
        return factor(step) * (1.0 - beta1 ** t) / math.sqrt(1.0 - beta2 ** t)
    return corrected


def build_scheduler(optimizer: torch.optim.Optimizer, factor: Factor) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
