"""Base class and registry of encoders."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from uer.names import ENCODERS
from uer.registry import make_register

if TYPE_CHECKING:
    from uer.model_config import ModelConfig

str2encoder: dict[str, type] = {}


class Encoder(nn.Module):
    """Maps embeddings to contextual hidden states.

    Subclasses implement ``from_config`` (the builder's single entry point) and ``forward``, and may
    override ``config_problems`` with the checks only they need (heads dividing hidden_size, ...).

    Contract (tested for every registered encoder): padding is appended at the end (seg == 0) and
    never changes the outputs at real positions; encoders that are causal by construction (or by
    ``mask: causal``) never let a position see a later one.
    """

    #: whether the output at position t depends only on positions <= t (language-model encoders).
    causal: bool = False

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "Encoder":  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def config_problems(cls, cfg: "ModelConfig") -> list[str]:
        """What in ``cfg`` this encoder cannot honour (ModelConfig reports them all at once)."""
        return []

    def forward(self, emb: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        """
        Args:
            emb: [batch_size x seq_length x emb_size]
            seg: [batch_size x seq_length] (0 marks padding)
        Returns:
            [batch_size x seq_length x hidden_size]
        """
        raise NotImplementedError


def attention_config_problems(cfg: "ModelConfig") -> list[str]:
    """Checks shared by the attention encoders, which feed the embedding straight into hidden_size layers."""
    problems = []
    if cfg.heads_num <= 0 or cfg.hidden_size % cfg.heads_num:
        problems.append(f"hidden_size {cfg.hidden_size} is not divisible by heads_num {cfg.heads_num}")
    if cfg.emb_size != cfg.hidden_size and not cfg.factorized_embedding_parameterization:
        problems.append(f"emb_size {cfg.emb_size} differs from hidden_size {cfg.hidden_size}: "
                        "use --factorized_embedding_parameterization (ALBERT) or make them equal")
    return problems


register = make_register(str2encoder, Encoder, ENCODERS)
