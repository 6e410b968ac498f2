"""Adversarial training on the word embedding (``--use_adv --adv_type fgm|pgd``) for the classification-family
tasks: after the clean backward pass, the word-embedding table is pushed along its gradient, the loss of the
perturbed model adds its gradient to the clean one, and the table is put back exactly before the optimiser step.

- FGM (Miyato et al., 2017): one step of size ``--fgm_epsilon`` along ``g / ||g||``.
- PGD (Madry et al., 2018): ``--pgd_k`` steps of ``--pgd_alpha`` along the current gradient, each projected back
  into the L2 ball of radius ``--pgd_epsilon`` around the clean table; the gradient of the last one is added.

Only the word-embedding weight is perturbed: UER-py perturbs every parameter whose name contains "embedding"
(position and segment tables and the embedding layer norm too), which is not the published method. The norm is
that of the whole table's gradient, as UER-py and the common FGM recipe do; only the rows of the batch's tokens
have a gradient, so only they move.

Default epsilon 1.0 (FGM and PGD): the step is normalised, so it moves the batch's rows by an L2 distance of 1
in total, comparable to one row's norm in a BERT table (about 1-1.5); UER-py's FGM default 1e-6 changes
nothing measurable.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from uer.utils.ranges import finite_positive_float, positive_int
from uer.errors import UsageError

ADV_TYPES = ("fgm", "pgd")
WORD_EMBEDDING = "embedding.word.embedding.weight"


def add_adversarial_options(parser: argparse.ArgumentParser) -> None:
    """``--use_adv`` and its settings; the classification-family tasks call this in training mode."""
    group = parser.add_argument_group("adversarial training (word embedding)")
    group.add_argument("--use_adv", action="store_true",
                       help="Adversarial training: also train on the word embedding pushed along its gradient.")
    group.add_argument("--adv_type", choices=ADV_TYPES, default="fgm", help="FGM (one step) or PGD (--pgd_k steps).")
    group.add_argument("--fgm_epsilon", type=finite_positive_float, default=1.0,
                       help="FGM step: L2 size of the perturbation of the batch's word vectors (UER-py: 1e-6, no effect).")
    group.add_argument("--pgd_k", type=positive_int, default=3, help="PGD: number of steps.")
    group.add_argument("--pgd_epsilon", type=finite_positive_float, default=1.0, help="PGD: radius of the L2 ball of perturbations.")
    group.add_argument("--pgd_alpha", type=finite_positive_float, default=0.3, help="PGD: size of one step.")


@dataclass(frozen=True)
class AdversarialConfig:
    adv_type: str = "fgm"
    fgm_epsilon: float = 1.0
    pgd_k: int = 3
    pgd_epsilon: float = 1.0
    pgd_alpha: float = 0.3

    def __post_init__(self) -> None:
        if self.adv_type not in ADV_TYPES:
            raise UsageError(f"--adv_type must be one of {', '.join(ADV_TYPES)}, got {self.adv_type!r}")
        for name in ("fgm_epsilon", "pgd_epsilon", "pgd_alpha"):
            if not getattr(self, name) > 0:
                raise UsageError(f"--{name} must be positive, got {getattr(self, name)}")
        if self.pgd_k < 1:
            raise UsageError(f"--pgd_k must be at least 1, got {self.pgd_k}")


def adversarial_config_from_args(args: argparse.Namespace) -> AdversarialConfig | None:
    """The adversarial settings of a command line, or None without ``--use_adv``."""
    if not getattr(args, "use_adv", False):
        return None
    return AdversarialConfig(args.adv_type, args.fgm_epsilon, args.pgd_k, args.pgd_epsilon, args.pgd_alpha)


def word_embedding(model: nn.Module) -> nn.Parameter:
    """The word-embedding table of a task model (``embedding.word.embedding.weight``)."""
    params = dict(model.named_parameters())
    if WORD_EMBEDDING not in params:
        raise UsageError(f"--use_adv perturbs the word embedding ({WORD_EMBEDDING}); this model has none "
                         "(factorised or no word embedding)")
    return params[WORD_EMBEDDING]


def _step(grad: torch.Tensor | None, size: float) -> torch.Tensor | None:
    """``size * grad / ||grad||``, or None when there is no usable direction (no, zero or non-finite gradient)."""
    if grad is None:
        return None
    norm = torch.linalg.vector_norm(grad.float())
    if not torch.isfinite(norm) or norm == 0:
        return None
    return (size * grad.float() / norm).to(grad.dtype)


class Adversary:
    """Adds the adversarial gradient to the clean one; call :meth:`attack` after the clean backward pass and
    before the optimiser step. ``loss_fn()`` runs a forward pass on the current batch and returns the loss
    to back-propagate (scaled as the clean one was)."""

    def __init__(self, model: nn.Module, cfg: AdversarialConfig) -> None:
        self.cfg = cfg
        self.model = model
        self.weight = word_embedding(model)

    def attack(self, loss_fn: Callable[[], torch.Tensor], backward: Callable[[torch.Tensor], None]) -> None:
        if self.cfg.adv_type == "fgm":
            self._fgm(loss_fn, backward)
        else:
            self._pgd(loss_fn, backward)

    def _fgm(self, loss_fn, backward) -> None:
        delta = _step(self.weight.grad, self.cfg.fgm_epsilon)
        if delta is None:
            return
        clean = self.weight.data.clone()
        try:
            self.weight.data.add_(delta)
            backward(loss_fn())
        finally:
            self.weight.data.copy_(clean)

    def _pgd(self, loss_fn, backward) -> None:
        cfg = self.cfg
        params = [p for p in self.model.parameters() if p.requires_grad]
        clean_grads = [None if p.grad is None else p.grad.clone() for p in params]
        clean = self.weight.data.clone()
        added = False  # whether the last perturbation's gradient was added to the clean one
        try:
            for t in range(cfg.pgd_k):
                delta = _step(self.weight.grad, cfg.pgd_alpha)
                if delta is None:
                    break
                self.weight.data.add_(delta)
                change = self.weight.data - clean
                norm = torch.linalg.vector_norm(change.float())
                if norm > cfg.pgd_epsilon:  # back onto the ball's surface
                    self.weight.data.copy_(clean + change * (cfg.pgd_epsilon / norm).to(change.dtype))
                last = t == cfg.pgd_k - 1
                for p, g in zip(params, clean_grads):
                    # the next direction is this perturbation's gradient alone; the last one adds to the clean one
                    p.grad = g if last else None
                backward(loss_fn())
                added = last
        finally:
            self.weight.data.copy_(clean)
            if not added:  # stopped early (no direction, or an error): the update is the clean gradient's
                for p, g in zip(params, clean_grads):
                    p.grad = g
