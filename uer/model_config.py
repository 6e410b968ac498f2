"""ModelConfig: the model's hyper-parameters, canonical names only, typed and frozen.

This module sits below every component it describes (embeddings, encoders, targets import it; it imports
none of them, only the name lists of :mod:`uer.names`), so there is no import cycle. Checks that need the
registries (known names, encoder-specific rules) live in :func:`uer.model_builder.validate_model_config`,
which the config merge (:mod:`uer.config`) and the builder call.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from uer.errors import UserError
from uer.names import LAYERNORM_VARIANTS


class ConfigError(UserError, ValueError):
    """A configuration that cannot be honoured; the message names the file or flag."""


@dataclass(frozen=True)
class ModelConfig:
    """Model hyper-parameters, canonical names only. Built once by :func:`model_config_from_args`."""

    vocab_size: int
    embedding: tuple[str, ...] = ("word", "pos", "seg")
    encoder: str = "transformer"
    mask: str = "fully_visible"
    target: tuple[str, ...] = ("mlm", "sp")
    emb_size: int = 768
    hidden_size: int = 768
    feedforward_size: int = 3072
    heads_num: int = 12
    layers_num: int = 12
    max_seq_length: int = 512
    dropout: float = 0.1
    hidden_act: str = "gelu"
    factorized_embedding_parameterization: bool = False
    parameter_sharing: bool = False
    tie_weights: bool = False
    layernorm_variant: str = "standard"
    layernorm_eps: float | None = None
    remove_embedding_layernorm: bool = False
    has_bias: bool = True
    layernorm_positioning: str = "post"  # "pre": GPT-2's layer norm before attention/feed-forward
    bidirectional: bool = False  # rnn/lstm/gru: torch's bidirectional RNN
    kernel_size: int = 3  # cnn, gatedcnn, rcnn, crnn: convolution width over positions
    block_size: int = 2  # gatedcnn: layers per residual block
    synt_type: str = "dense"  # synt: "dense" or "random" Synthesizer
    has_lmtarget_bias: bool = False  # lm/bilm: bias on the output layer (UER-py's flag)
    labels_num: int = 2  # cls target: number of classes
    pooling: str = "first"  # cls target: first, mean, max or last
    sr_max_segments: int = 3  # sr target: classes = every order of 1 .. sr_max_segments segments
    tasks_num: int = 0  # ERNIE 2.0 task embedding: one learned vector per pre-training task (0: none)

    def __post_init__(self) -> None:
        problems = []
        if self.layernorm_positioning not in ("post", "pre"):
            problems.append(f"layernorm_positioning {self.layernorm_positioning!r} must be 'post' or 'pre'")
        for name in ("kernel_size", "labels_num", "layers_num"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout {self.dropout} must be in [0, 1)")
        if self.layernorm_variant not in LAYERNORM_VARIANTS:
            problems.append(f"layernorm_variant {self.layernorm_variant!r} must be one of {', '.join(LAYERNORM_VARIANTS)}")
        if self.vocab_size <= 0:
            problems.append("vocab_size must be positive")
        if problems:
            raise ConfigError("invalid model configuration: " + "; ".join(problems))

    @property
    def layernorm(self) -> str:
        return self.layernorm_variant

    def to_json_dict(self) -> dict[str, Any]:
        """Current-UER-py-style JSON (lists for embedding and target)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["embedding"], out["target"] = list(self.embedding), list(self.target)
        if not self.tasks_num:  # written only when used: configs and resume identities stay as they were
            del out["tasks_num"]
        return out
