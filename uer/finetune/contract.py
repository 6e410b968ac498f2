"""The fine-tuning task contract: what a head returns, what prediction gives back, what a metric receives.

A task is a reader (TSV -> :class:`uer.data.finetune_data.Instances`), a head (an ``nn.Module`` whose
``forward(batch)`` returns :class:`HeadOutput`) and a metric (``metric(predictions, data) -> Evaluation``);
the loop (uer/finetune/loop.py) trains, evaluates and predicts any such task without knowing what a label,
a tag or an answer span is, as the pre-training loop runs any target from its ``(loss_sum, correct, count)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from uer.data.finetune_data import Instances

# One instance's outputs, padding removed: "logits" [C], "tag_logits" [length x T], ...
Prediction = dict[str, np.ndarray]


@dataclass
class HeadOutput:
    """What a head's ``forward(batch)`` returns for a batch of B instances.

    loss: per-instance loss [B], or None when the batch carries no labels (prediction files).
    outputs: tensors with first dimension B, e.g. "logits" [B x C], "tag_logits" [B x L x T].
    stats: per-instance statistics [B] (e.g. "correct", "count"). The loop multiplies them by the instance
        weights (0 for a rank's filler instance), sums them over steps and ranks, and reports each one
        divided by the sum of "count" (the number of instances when there is no "count"); "correct" is
        reported as "acc". The loop never computes accuracy itself.
    token_outputs: names in ``outputs`` that are per token ([B x L x ...]); prediction cuts them to each
        instance's length.
    loss_count: for losses summed over units (tokens, ...): the number of units each instance's loss sums
        over [B]. The training loss is then the sum over the global batch divided by the global sum of
        ``loss_count`` instead of by the number of instances.
    """

    loss: torch.Tensor | None
    outputs: dict[str, torch.Tensor]
    stats: dict[str, torch.Tensor] = field(default_factory=dict)
    token_outputs: tuple[str, ...] = ()
    loss_count: torch.Tensor | None = None


@dataclass(frozen=True)
class Evaluation:
    """Scores of one data set (``scores[primary]`` ranks models), a one-line summary (dev, each epoch)
    and a full report (test)."""

    scores: dict[str, float]
    summary: str
    text: str


Metric = Callable[[list[Prediction], Instances], Evaluation]


@dataclass
class EvalSet:
    """A data set to evaluate, and how: ``metric(predictions in file order, data) -> Evaluation``.

    ``scores[primary]`` ranks models: higher is better, or lower with ``greater_is_better`` False (a loss, an
    error rate)."""

    name: str
    data: Instances
    metric: Metric
    primary: str = "acc"
    greater_is_better: bool = True


def stack_outputs(predictions: list[Prediction], name: str) -> np.ndarray:
    """[N x ...]: one fixed-size output of every instance stacked (e.g. the logits of a classifier)."""
    if not predictions:
        raise ValueError(f"no predictions to stack {name!r} from (empty data set)")
    return np.stack([p[name] for p in predictions])
