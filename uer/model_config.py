"""ModelConfig: the model's hyper-parameters, canonical names only, typed and frozen, and the one declaration of
each model option.

Every field is declared once here: its type and default (the dataclass), its ``--help`` text, and whether it is
also a command-line flag and in which option group (``metadata``, see :func:`option`). The argparse flags
(``uer.opts.add_model_options`` / ``add_pretrain_encoder_options``), the JSON keys a config may hold
(``uer.config.known_config_keys``) and the merge of JSON and command line (``uer.config.config_from_dict``) all
derive from these fields, so a default exists once.

This module sits below every component it describes (embeddings, encoders, targets import it; it imports none of
them, only the name lists of :mod:`uer.names`), so there is no import cycle; it imports no torch (argparse
help is built from it). Checks that need the registries live in :func:`uer.model_builder.validate_model_config`.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from uer.errors import UserError
from uer.utils.ranges import dropout_probability, positive_int
from uer.names import (EMBEDDING_ALIASES, EMBEDDINGS, ENCODER_ALIASES, ENCODERS, LAYERNORM_VARIANTS, MASKS,
                       POOLINGS)

MODEL_FLAGS, PRETRAIN_FLAGS = "model", "pretrain"  # the option groups a field's flag belongs to


class ConfigError(UserError, ValueError):
    """A configuration that cannot be honoured; the message names the file or flag."""


def option(default: Any, help: str, flag: str | None = None, **argparse_kwargs: Any) -> Any:
    """Declare a field: default, help, and (``flag``) the option group that offers it as ``--NAME`` on the
    command line; ``argparse_kwargs`` (choices, nargs, a range-checked ``type`` from uer/utils/ranges.py)
    complete the flag. Fields without ``flag`` come from the
    JSON config only."""
    return field(default=default, metadata={"help": help, "flag": flag, "argparse": argparse_kwargs})


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
    """Model hyper-parameters, canonical names only. Built by :meth:`from_dict` / :meth:`from_json` (or the
    command line's :func:`uer.config.model_config_from_args`)."""

    vocab_size: int
    embedding: tuple[str, ...] = option(
        ("word", "pos", "seg"), f"Embedding parts ({', '.join(EMBEDDINGS)}), e.g. 'word pos seg', or a legacy name: "
        f"{', '.join(EMBEDDING_ALIASES)}.", MODEL_FLAGS, nargs="+")
    encoder: str = option(
        "transformer", "Encoder; " + ", ".join(f"'{alias}' = {enc} with {mask} mask"
                                               for alias, (enc, mask) in ENCODER_ALIASES.items()) + ".",
        MODEL_FLAGS, choices=sorted(ENCODERS) + list(ENCODER_ALIASES))
    mask: str = option("fully_visible", "Attention mask of the transformer.", MODEL_FLAGS, choices=MASKS)
    target: tuple[str, ...] = option(("mlm", "sp"), "Pre-training objectives (pretrain.py's --target).")
    emb_size: int | None = option(None, "Embedding width (default: hidden_size; ALBERT's factorisation differs).")
    hidden_size: int = option(768, "Hidden width of the encoder.")
    feedforward_size: int = option(3072, "Inner width of the feed-forward layers.")
    heads_num: int = option(12, "Attention heads.")
    layers_num: int = option(12, "Encoder layers.")
    max_seq_length: int = option(512, "Positions of the position embedding.")
    dropout: float = option(0.1, "Dropout probability.", MODEL_FLAGS, type=dropout_probability)
    hidden_act: str = option("gelu", "Activation of the feed-forward layers (gelu, gelu_fast, relu, silu, ...).")
    factorized_embedding_parameterization: bool = option(
        False, "Untie emb_size from hidden_size with a projection (ALBERT).", MODEL_FLAGS)
    parameter_sharing: bool = option(False, "Share one layer's parameters across all layers (ALBERT).", MODEL_FLAGS)
    tie_weights: bool = option(False, "Tie the word embedding and the MLM output weights.", MODEL_FLAGS)
    layernorm_variant: str = option(
        "standard", "Layer norm numerics: 'standard' (torch/Google/HF BERT) or 'uer' (UER-py-trained models).",
        MODEL_FLAGS, choices=LAYERNORM_VARIANTS)
    layernorm_eps: float | None = option(None, "Layer norm epsilon (default: the variant's, 1e-12 / 1e-6).")
    remove_embedding_layernorm: bool = option(False, "No layer norm after the embedding (GPT-2).")
    has_bias: bool = option(True, "Biases in the transformer's linear layers (JSON: remove_transformer_bias).")
    layernorm_positioning: str = option("post", "'post' (BERT) or 'pre' (GPT-2: layer norm before each block).")
    bidirectional: bool = option(
        False, "rnn/lstm/gru: bidirectional torch RNN (for a bidirectional LM use --encoder bilstm).", MODEL_FLAGS)
    kernel_size: int = option(3, "cnn, gatedcnn, rcnn, crnn: convolution width over positions.")
    block_size: int = option(2, "gatedcnn: layers per residual block.")
    synt_type: str = option("dense", "synt: 'dense' or 'random' Synthesizer.")
    has_lmtarget_bias: bool = option(False, "lm/bilm: bias on the output layer (UER-py's flag).")
    labels_num: int = option(2, "cls target: number of classes.", PRETRAIN_FLAGS, type=positive_int)
    pooling: str = option("first", "cls target: how the encoder output becomes one vector.", choices=POOLINGS)
    sr_max_segments: int = option(
        3, "sr target: classify the orders of up to this many segments (as preprocess.py's).", PRETRAIN_FLAGS,
        type=positive_int)
    tasks_num: int = option(0, "ERNIE 2.0 task embedding: one learned vector per pre-training task (0: none).")

    def __post_init__(self) -> None:
        if self.emb_size is None:
            object.__setattr__(self, "emb_size", self.hidden_size)
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
        if not self.tasks_num:  # written only when used: configs and resume identities stay as they were
            del out["tasks_num"]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], vocab_size: int | None = None, with_target: bool = True,
                  **overrides: Any) -> "ModelConfig":
        """A validated config from JSON-style values of either UER-py generation (legacy spellings included),
        ``overrides`` winning; unset fields keep their declared defaults. No argparse involved."""
        from uer.config import config_from_dict  # the legacy spellings and the registries' checks

        return config_from_dict({**data, **overrides}, vocab_size, with_target=with_target)

    @classmethod
    def from_json(cls, path: str | os.PathLike, vocab_size: int | None = None, with_target: bool = True,
                  **overrides: Any) -> "ModelConfig":
        """:meth:`from_dict` of a JSON config file (flat 2020 names resolve as on the command line); keys
        nobody reads are warned about, values of the wrong type are an error naming file and line."""
        from uer.config import check_config_keys, load_json_config

        data = load_json_config(str(path))
        check_config_keys(str(path), data, None)
        return cls.from_dict(data, vocab_size, with_target=with_target, **overrides)


def flag_fields(group: str) -> list:
    """The fields offered as command-line flags in option group ``group`` (MODEL_FLAGS or PRETRAIN_FLAGS)."""
    return [f for f in fields(ModelConfig) if f.metadata.get("flag") == group]
