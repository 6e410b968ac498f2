"""Base class of targets, their container, and the registry.

A target owns its loss and its metrics (style practice 5): ``forward`` returns the *summed* loss over
its predictions, the number correct, and how many predictions there were. The trainer divides by the
global count (all ranks, all accumulation steps), so a run on 2 ranks equals a run on 1 rank with the
same global batch, whatever the number of masked tokens on each rank.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from uer.names import TARGETS
from uer.registry import make_register

if TYPE_CHECKING:
    from uer.model_config import ModelConfig

str2target: dict[str, type] = {}


@dataclass
class TargetOutput:
    """What one objective reports for one micro-batch."""
    loss_sum: torch.Tensor  # scalar, sum over predictions
    correct: torch.Tensor  # scalar, number of correct predictions
    count: int  # number of predictions (the loss denominator's share of this micro-batch)


class Target(nn.Module):
    """One pre-training objective. ``label_key`` names the batch key of its labels: a batch without it
    (another dataset's, in multi-task pre-training) is not this objective's, and the objective is skipped."""

    label_key: str = ""

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "Target":  # pragma: no cover - interface
        raise NotImplementedError

    def count(self, batch: dict) -> int:  # pragma: no cover - interface
        """Number of predictions this objective makes on ``batch`` (known before the forward pass)."""
        raise NotImplementedError

    def read_positions(self, batch: dict, seq_length: int) -> torch.Tensor | None:
        """Flat indices into [batch_size*seq_length] of the only hidden states :meth:`forward` reads, or None
        (it may read any). The encoder may then compute its last layer at these positions only."""
        return None

    def forward(self, hidden: torch.Tensor, batch: dict) -> TargetOutput:  # pragma: no cover - interface
        raise NotImplementedError


register = make_register(str2target, Target, TARGETS)


class Targets(nn.Module):
    """The objectives of a model, as sub-modules named by the config (``target.mlm``, ``target.sp``)."""

    def __init__(self, targets: dict[str, Target]) -> None:
        super().__init__()
        self.names = list(targets)
        for name, target in targets.items():
            self.add_module(name, target)

    def add(self, name: str, target: nn.Module) -> None:
        """Another objective after the config's (pre-training distillation adds ``distill``, uer.distill)."""
        if name in self.names:
            raise ValueError(f"target {name!r} exists already")
        self.names.append(name)
        self.add_module(name, target)

    def counts(self, batch: dict) -> dict[str, int]:
        return {name: getattr(self, name).count(batch) if self._fed(name, batch) else 0 for name in self.names}

    def _fed(self, name: str, batch: dict) -> bool:
        return getattr(self, name).label_key in batch

    def read_positions(self, batch: dict, seq_length: int) -> torch.Tensor | None:
        """The sorted union of the fed objectives' positions; None when one of them may read any."""
        parts = []
        for name in self.names:
            if self._fed(name, batch):
                objective = getattr(self, name)  # an added one (distillation) may not say: it may read any
                positions = objective.read_positions(batch, seq_length) if isinstance(objective, Target) else None
                if positions is None:
                    return None
                parts.append(positions)
        return torch.unique(torch.cat(parts)) if parts else None

    def forward(self, hidden: torch.Tensor, batch: dict) -> dict[str, TargetOutput]:
        zero = hidden.new_zeros((), dtype=torch.float32)
        return {name: getattr(self, name)(hidden, batch) if self._fed(name, batch) else TargetOutput(zero, zero, 0)
                for name in self.names}
