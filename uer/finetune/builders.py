"""From merged options to the pieces of a fine-tuning run: tokenizer, embedding + encoder, loop config,
and loading the pre-trained weights. Entry scripts call these; nothing else reads the argparse namespace.
"""
from __future__ import annotations

import argparse
import logging

import torch
from torch import nn

from uer.config import optim_options_from_args
from uer.errors import UsageError
from uer.finetune.adversarial import adversarial_config_from_args
from uer.finetune.loop import FinetuneConfig
from uer.model_builder import build_model, init_weights
from uer.model_loader import load_model_weights
from uer.config import ModelConfig, model_config_from_args

logger = logging.getLogger("uer.finetune")

# Files a fine-tuning script reads; its outputs (--output_model_path, ...) must be none of them.
FINETUNE_INPUTS = ("train_path", "dev_path", "test_path", "dataset_path_list", "vocab_path", "spm_model_path", "merges_path",
                   "config_path", "pretrained_model_path")


def encoder_from_args(args: argparse.Namespace, vocab_size: int) -> tuple[ModelConfig, nn.Module, nn.Module]:
    """Model config, embedding and encoder (initialised from ``--seed``) for the task head to sit on."""
    cfg = model_config_from_args(args, vocab_size, with_target=False)
    if "pos" in cfg.embedding and args.seq_length > cfg.max_seq_length:
        raise UsageError(f"--seq_length {args.seq_length} exceeds the model's max_seq_length {cfg.max_seq_length} "
                         f"(position embeddings of {args.config_path})")
    torch.manual_seed(getattr(args, "seed", 7))  # same seed, same initial weights (inference has no --seed)
    base = build_model(cfg, with_target=False)
    return cfg, base.embedding, base.encoder


def init_head(model: nn.Module) -> None:
    """Initialise the task layers (everything but embedding and encoder) the way the builder does."""
    for name, module in model.named_children():
        if name not in ("embedding", "encoder"):
            module.apply(init_weights)


def load_pretrained(model: nn.Module, path: str | None) -> None:
    """Pre-trained embedding + encoder weights (strict), task layers when the file has them; else random init."""
    if path:
        load_model_weights(model, path)
    else:
        logger.info("no --pretrained_model_path: training from random initialisation")


def finetune_config_from_args(args: argparse.Namespace, **overrides) -> FinetuneConfig:
    values = dict(
        output_model_path=args.output_model_path, epochs_num=args.epochs_num, batch_size=args.batch_size,
        seq_length=args.seq_length, report_steps=args.report_steps, length_bucketing=args.length_bucketing,
        early_stopping_patience=getattr(args, "early_stopping_patience", None),
        eval_steps=getattr(args, "eval_steps", None), adversarial=adversarial_config_from_args(args),
        **optim_options_from_args(args))
    values.update(overrides)
    return FinetuneConfig(**values)
