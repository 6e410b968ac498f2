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

import os
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from uer.errors import UserError
from uer.names import (EMBEDDING_ALIASES, EMBEDDINGS, ENCODER_ALIASES, ENCODERS, LAYERNORM_VARIANTS, MASKS,
                       POOLINGS)

MODEL_FLAGS, PRETRAIN_FLAGS = "model", "pretrain"  # the option groups a field's flag belongs to


class ConfigError(UserError, ValueError):
    """A configuration that cannot be honoured; the message names the file or flag."""


def option(default: Any, help: str, flag: str | None = None, **argparse_kwargs: Any) -> Any:
    """Declare a field: default, help, and (``flag``) the option group that offers it as ``--NAME`` on the
    command line; ``argparse_kwargs`` (choices, nargs) complete the flag. Fields without ``flag`` come from the
    JSON config only."""
    return field(default=default, metadata={"help": help, "flag": flag, "argparse": argparse_kwargs})


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
    dropout: float = option(0.1, "Dropout probability.", MODEL_FLAGS)
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
    labels_num: int = option(2, "cls target: number of classes.", PRETRAIN_FLAGS)
    pooling: str = option("first", "cls target: how the encoder output becomes one vector.", choices=POOLINGS)
    sr_max_segments: int = option(
        3, "sr target: classify the orders of up to this many segments (as preprocess.py's).", PRETRAIN_FLAGS)

    def __post_init__(self) -> None:
        if self.emb_size is None:
            object.__setattr__(self, "emb_size", self.hidden_size)
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
