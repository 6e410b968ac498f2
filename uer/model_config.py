"""ModelConfig: the model's hyper-parameters, canonical names only, typed and frozen.

This module sits below every component it describes (embeddings, encoders, targets import it; it imports
none of them, only the name lists of :mod:`uer.names`), so there is no import cycle. Checks that need the
registries (known names, encoder-specific rules) live in :func:`uer.model_builder.validate_model_config`,
which the config merge (:mod:`uer.config`) and the builder call.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from typing import Any

from uer.errors import UserError
from uer.names import LAYERNORM_VARIANTS


class ConfigError(UserError, ValueError):
    """A configuration that cannot be honoured; the message names the file or flag."""


POSITIVE_SIZES = ("vocab_size", "emb_size", "hidden_size", "feedforward_size", "heads_num", "layers_num",
                  "max_seq_length", "kernel_size", "block_size", "labels_num", "sr_max_segments")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def physical_memory() -> int | None:
    """Bytes of memory of this machine (None when the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


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

    def __post_init__(self) -> None:
        problems = []
        if self.layernorm_positioning not in ("post", "pre"):
            problems.append(f"layernorm_positioning {self.layernorm_positioning!r} must be 'post' or 'pre'")
        for name in POSITIVE_SIZES:
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if not _is_number(self.dropout) or not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout {self.dropout!r} must be a number in [0, 1)")
        if self.layernorm_eps is not None and (not _is_number(self.layernorm_eps)
                                               or not 0.0 < self.layernorm_eps < 1.0):
            problems.append(f"layernorm_eps {self.layernorm_eps!r} must be a number in (0, 1), e.g. 1e-12 or 1e-6")
        if not problems:
            problems += self._memory_problems()
        if self.layernorm_variant not in LAYERNORM_VARIANTS:
            problems.append(f"layernorm_variant {self.layernorm_variant!r} must be one of {', '.join(LAYERNORM_VARIANTS)}")
        if problems:
            raise ConfigError("invalid model configuration: " + "; ".join(problems))

    def parameter_count(self) -> int:
        """An upper estimate of the parameters the model will allocate (embeddings, encoder layers, an
        untied output layer over the vocabulary): enough to refuse a size that cannot fit before building."""
        emb, hidden, ff = self.emb_size, self.hidden_size, self.feedforward_size
        embedding = (self.vocab_size + self.max_seq_length + 3) * emb + (emb * hidden if emb != hidden else 0)
        layer = 4 * hidden * hidden + 2 * hidden * ff + 9 * hidden + ff
        layers = 1 if self.parameter_sharing else self.layers_num
        heads = hidden * hidden + hidden * (self.vocab_size + 2) + hidden * max(self.labels_num, 2)
        return embedding + layers * layer + heads

    def _memory_problems(self) -> list[str]:
        needed = self.parameter_count() * 4  # float32 weights alone; training needs about 4x that
        total = physical_memory()
        if total is not None and needed > total:
            return [f"the model would have about {self.parameter_count() / 1e9:.3g}G parameters "
                    f"({needed / 2**30:.3g} GiB of float32 weights), more than this machine's "
                    f"{total / 2**30:.3g} GiB of memory: check the sizes (feedforward_size, hidden_size, "
                    "layers_num, the vocabulary)"]
        return []

    @property
    def layernorm(self) -> str:
        return self.layernorm_variant

    def to_json_dict(self) -> dict[str, Any]:
        """Current-UER-py-style JSON (lists for embedding and target)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["embedding"], out["target"] = list(self.embedding), list(self.target)
        return out
