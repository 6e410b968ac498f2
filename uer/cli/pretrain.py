"""Pre-train an embedding + encoder + target model on a dataset written by preprocess.py.

    python3 pretrain.py --dataset_path dataset.pt --vocab_path models/google_zh_vocab.txt \
        --config_path models/bert/tiny_config.json --output_model_path models/output_model.bin \
        --total_steps 1000 --save_checkpoint_steps 500 --report_steps 100 --encoder transformer --target bert

Processes: none of --world_size/--gpu_ranks = this CPU; ``--gpu_ranks 3`` = GPU 3;
``--world_size 8 --gpu_ranks 0 .. 7`` = 8 processes on this node (each node of a multi-node run starts
its own ranks and names rank 0's address in --master_ip); torchrun works too.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

import torch

from uer import opts
from uer.model_builder import build_model
from uer.model_loader import load_model_weights
from uer.trainer import TrainConfig, Trainer
from uer.config import data_processor_from_args, model_config_from_args, parse_args_with_config
from uer.data.pretrain_loader import PretrainBatches
from uer.data.dataset import PretrainDataset
from uer.utils.distributed import DistContext
from uer.utils.launch import launch
from uer.data.masking import MaskingConfig
from uer.text.vocab import Vocab
from uer.errors import DataError, UsageError, entry_point
from uer.utils.io import check_outputs

logger = logging.getLogger("pretrain")

# Which dataset kinds each objective set can train on (a BERT dataset also serves plain MLM; lm and bilm
# datasets hold the same next-token windows).
COMPATIBLE_DATA = {"bert": {"bert"}, "albert": {"albert"}, "mlm": {"mlm", "bert", "albert"},
                   "lm": {"lm", "bilm"}, "bilm": {"bilm", "lm"}, "cls": {"cls"}}


# Files pretrain.py reads; --output_model_path (and its -STEP checkpoints) must be none of them.
INPUT_OPTIONS = ("dataset_path", "vocab_path", "spm_model_path", "config_path", "pretrained_model_path", "resume_from")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    opts.add_training_options(parser)
    opts.add_tokenizer_options(parser)
    opts.add_model_options(parser)
    opts.add_pretrain_target_option(parser)
    opts.add_pretrain_encoder_options(parser)
    opts.add_span_masking_options(parser)
    opts.add_optimization_options(parser)
    opts.add_distributed_options(parser)
    return parser


def load_vocab(args: argparse.Namespace) -> Vocab:
    if args.spm_model_path:
        return Vocab.from_spm(args.spm_model_path)
    if args.vocab_path:
        return Vocab.from_file(args.vocab_path)
    raise UsageError("give --vocab_path or --spm_model_path (the vocabulary the dataset was built with)")


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        output_model_path=args.output_model_path, total_steps=args.total_steps,
        save_checkpoint_steps=args.save_checkpoint_steps, report_steps=args.report_steps,
        accumulation_steps=args.accumulation_steps, batch_size=args.batch_size, seed=args.seed,
        learning_rate=args.learning_rate, warmup=args.warmup, beta1=args.beta1, beta2=args.beta2,
        weight_decay=args.weight_decay, fp16=args.fp16, fp16_opt_level=args.fp16_opt_level)


def masking_config(args: argparse.Namespace, dataset: PretrainDataset, vocab: Vocab) -> MaskingConfig | None:
    """Masks drawn while loading (dynamic masking), or None when the dataset carries its own masks."""
    if not dataset.header.get("dynamic_masking"):
        if args.span_masking:
            raise UsageError("was masked at preprocessing (static masking), so --span_masking cannot apply here: "
                             "pass --span_masking to preprocess.py, or preprocess with --dynamic_masking",
                             args.dataset_path)
        return None
    return MaskingConfig.from_vocab(vocab, span_masking=args.span_masking, span_geo_prob=args.span_geo_prob,
                                    span_max_length=args.span_max_length)


def train(args: argparse.Namespace, ctx: DistContext) -> Trainer:
    vocab = load_vocab(args)
    model_cfg = model_config_from_args(args, len(vocab))
    data_kind = data_processor_from_args(args)
    dataset = PretrainDataset.open(args.dataset_path)
    header = dataset.header
    if header["vocab_size"] != len(vocab):
        raise DataError(f"built with a vocabulary of {header['vocab_size']} tokens, but the given vocabulary has "
                        f"{len(vocab)}: use the same --vocab_path/--spm_model_path", args.dataset_path)
    allowed = COMPATIBLE_DATA.get(data_kind, {data_kind})
    if header["target"] not in allowed:
        raise DataError(f"preprocessed for --target {header['target']}, which the '{data_kind}' target cannot train "
                        f"on (needs a dataset of: {', '.join(sorted(allowed))})", args.dataset_path)
    bounded = {"pos", "sinusoidalpos"} & set(model_cfg.embedding) or model_cfg.encoder == "synt"
    if header["seq_length"] > model_cfg.max_seq_length and bounded:
        raise DataError(f"dataset seq_length {header['seq_length']} exceeds the model's max_seq_length "
                        f"{model_cfg.max_seq_length} (--config_path)", args.dataset_path)
    if header["target"] == "cls" and len(dataset) and int(dataset.label.max()) >= model_cfg.labels_num:
        raise DataError(f"has labels up to {int(dataset.label.max())}, but --labels_num is {model_cfg.labels_num}",
                        args.dataset_path)
    torch.manual_seed(args.seed)  # same seed, same initial weights (on every rank: DDP also broadcasts rank 0's)
    model = build_model(model_cfg)
    if args.resume_from:
        load_model_weights(model, args.resume_from, strict_prefixes=("",))
    elif args.pretrained_model_path:
        load_model_weights(model, args.pretrained_model_path)
    if ctx.is_main:
        params = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
        logger.info("model: %s embedding, %s encoder (%d layers, hidden %d), targets %s; %.2fM parameters; dataset %s: "
                    "%d instances (%s)", "+".join(model_cfg.embedding), model_cfg.encoder, model_cfg.layers_num,
                    model_cfg.hidden_size, "+".join(model_cfg.target), params / 1e6, args.dataset_path,
                    len(dataset), header["target"])
    batches = PretrainBatches(dataset, batch_size=args.batch_size, rank=ctx.rank, world_size=ctx.world_size,
                              seed=args.seed, instances_buffer_size=args.instances_buffer_size,
                              dynamic_masking=masking_config(args, dataset, vocab))
    trainer = Trainer(model, batches, train_config_from_args(args), ctx)
    if args.resume_from:
        trainer.load_trainer_state(args.resume_from)
        if ctx.is_main:
            logger.info("resumed from %s at step %d", args.resume_from, trainer.step)
    trainer.fit()
    return trainer


@entry_point("pretrain.py")
def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args_with_config(build_parser(), argv)
    check_outputs(args, outputs=("output_model_path",), inputs=INPUT_OPTIONS)
    launch(args, train, "pretrain.py", use_visible_gpus=False)
