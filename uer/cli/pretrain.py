r"""Pre-train an embedding + encoder + target model on a dataset written by preprocess.py.

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
from uer.config import optim_options_from_args
from uer.training.pretrain_loop import TrainConfig, Trainer
from uer.config import ConfigError, data_processor_from_args, model_config_from_args, parse_args_with_config
from uer.data.pretrain_loader import MixedBatches, PretrainBatches
from uer.data.dataset import PretrainDataset
from uer.data.pretrain_instances import str2instances
from uer.utils.distributed import DistContext
from uer.utils.launch import launch
from uer.data.masking import MaskingConfig
from uer.text.vocab import Vocab
from uer.errors import DataError, UsageError, entry_point
from uer.distill import (DistillConfig, PretrainDistillation, add_distillation_options, check_distillation_args,
                         load_teacher)
from uer.utils.io import check_outputs

logger = logging.getLogger("pretrain")


# Files pretrain.py reads; --output_model_path (and its -STEP checkpoints) must be none of them.
INPUT_OPTIONS = ("dataset_path", "dataset_path_list", "dev_dataset_path", "teacher_model_path", "teacher_config_path",
                 "vocab_path", "spm_model_path", "config_path",
                 "pretrained_model_path", "resume_from")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=opts.HelpFormatter)
    opts.add_training_options(parser)
    opts.add_tokenizer_options(parser)
    opts.add_model_options(parser)
    opts.add_pretrain_target_option(parser)
    opts.add_pretrain_encoder_options(parser)
    opts.add_span_masking_options(parser)
    opts.add_optimization_options(parser)
    opts.add_distributed_options(parser)
    opts.add_checkpoint_keeping_options(parser)
    opts.add_training_curve_options(parser)
    add_distillation_options(parser)
    opts.add_runtime_options(parser)
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
        accumulation_steps=args.accumulation_steps, batch_size=args.batch_size,
        save_total_limit=args.save_total_limit, keep_trainer_state=args.keep_trainer_state,
        validation_steps=args.validation_steps,
        **optim_options_from_args(args))


def masking_config(args: argparse.Namespace, dataset: PretrainDataset, vocab: Vocab) -> MaskingConfig | None:
    """Masks drawn while loading (dynamic masking), or None when the dataset carries its own masks."""
    if not dataset.header.get("dynamic_masking"):
        if args.span_masking:
            raise UsageError("was masked at preprocessing (static masking), so --span_masking cannot apply here: "
                             "pass --span_masking to preprocess.py, or preprocess with --dynamic_masking",
                             dataset.path)
        return None
    if args.span_masking and dataset.header.get("knowledge_masking"):
        raise UsageError(f"stores whole-word/entity units for masking ({dataset.header['knowledge_masking']['units']}); "
                         "--span_masking would ignore them", dataset.path)
    return MaskingConfig.from_vocab(vocab, span_masking=args.span_masking, span_geo_prob=args.span_geo_prob,
                                    span_max_length=args.span_max_length)


def check_vocab_fingerprint(path: str, args: argparse.Namespace, header: dict, vocab: Vocab) -> None:
    """The dataset's token ids mean the tokens of the vocabulary it was built with, not just one of its size."""
    recorded = header.get("vocab_sha256")
    given = args.spm_model_path or args.vocab_path
    if recorded is None:
        logger.warning("%s was built before datasets recorded their vocabulary: make sure %s is the vocabulary "
                       "it was built with (%s)", path, given, header.get("tokenizer", {}).get("vocab_path"))
    elif recorded != vocab.fingerprint():
        built = header.get("tokenizer", {})
        raise ConfigError(f"{given}: not the vocabulary {path} was built with (same size, "
                          f"{len(vocab)} tokens, but other tokens or another order; it was built with "
                          f"{built.get('spm_model_path') or built.get('vocab_path')}): pass that vocabulary, "
                          "or re-run preprocess.py with this one")


def run_identity(args: argparse.Namespace, model_cfg, batches) -> dict:
    """What defines this run besides TrainConfig; a resumed run must match it (uer.training.resume)."""
    sources = batches.sources if isinstance(batches, MixedBatches) else [batches]
    described = []
    for source in sources:
        header = source.dataset.header
        checksums = [m.get("crc32") for m in header["arrays"].values()]
        described.append({"instances": len(source.dataset), "target": header["target"],
                          "seq_length": header["seq_length"],
                          "vocabulary": (header.get("vocab_sha256") or "")[:16] or None,
                          "checksums": "/".join(checksums) if all(checksums) else None})
    return {
        "model config": model_cfg.to_json_dict(),
        "dataset": described[0] if len(described) == 1 else {f"{i}": d for i, d in enumerate(described)},
        "dataset_weights": list(args.dataset_weights or []),
        **({"dataset_stages": list(args.dataset_stages)} if args.dataset_stages else {}),
        "instances_buffer_size": args.instances_buffer_size,
        "span_masking": [args.span_masking, args.span_geo_prob, args.span_max_length],
        # recorded only when on: runs from before bucketing existed resume with --no_length_bucketing
        **({"length_bucketing": opts.BUCKET_WINDOW} if args.length_bucketing else {}),
        **({"distillation": [args.teacher_model_path, " ".join(args.distill_losses),
                             " ".join(map(str, args.distill_weights or [])), args.distill_temperature,
                             " ".join(map(str, args.distill_layer_map or []))]} if args.teacher_model_path else {}),
    }


def open_dataset(path: str, args: argparse.Namespace, vocab: Vocab, model_cfg, data_kind: str | None) -> PretrainDataset:
    """Open one dataset and check that the model can train on it (``data_kind`` None: multi-task, checked
    by the objectives its batches feed)."""
    dataset = PretrainDataset.open(path, verify=not args.no_verify_dataset)
    header = dataset.header
    if header["vocab_size"] != len(vocab):
        raise DataError(f"built with a vocabulary of {header['vocab_size']} tokens, but the given vocabulary has "
                        f"{len(vocab)}: use the same --vocab_path/--spm_model_path", path)
    check_vocab_fingerprint(path, args, header, vocab)
    if data_kind is not None:
        # Which datasets the target can read is declared by its dataset kind (InstanceBuilder.trains_on).
        allowed = str2instances[data_kind].trains_on if data_kind in str2instances else (data_kind,)
        if header["target"] not in allowed:
            raise DataError(f"preprocessed for --target {header['target']}, which the '{data_kind}' target cannot "
                            f"train on (needs a dataset of: {', '.join(sorted(allowed))})", path)
    bounded = {"pos", "sinusoidalpos"} & set(model_cfg.embedding) or model_cfg.encoder == "synt"
    if header["seq_length"] > model_cfg.max_seq_length and bounded:
        raise DataError(f"dataset seq_length {header['seq_length']} exceeds the model's max_seq_length "
                        f"{model_cfg.max_seq_length} (--config_path)", path)
    if header["target"] == "sr" and header.get("sr_max_segments", 3) > model_cfg.sr_max_segments:
        raise DataError(f"shuffles up to {header['sr_max_segments']} segments, but the sr target classifies orders "
                        f"of up to --sr_max_segments {model_cfg.sr_max_segments}", path)
    if header["target"] == "cls" and len(dataset) and int(dataset.label.max()) >= model_cfg.labels_num:
        raise DataError(f"has labels up to {int(dataset.label.max())}, but --labels_num is {model_cfg.labels_num}",
                        path)
    return dataset


def build_batches(args: argparse.Namespace, ctx: DistContext, vocab: Vocab, model_cfg, model):
    """The training stream: one dataset (--dataset_path), or several mixed by weight (--dataset_path_list)."""
    paths = args.dataset_path_list or [args.dataset_path]
    multi = bool(args.dataset_path_list)
    if args.dataset_weights and not multi:
        raise UsageError("--dataset_weights goes with --dataset_path_list")
    if args.dataset_stages and not multi:
        raise UsageError("--dataset_stages goes with --dataset_path_list")
    stages = args.dataset_stages or [0] * len(paths)
    if len(stages) != len(paths) or min(stages) != 0:
        raise UsageError(f"--dataset_stages: one start step (>= 0) per dataset of --dataset_path_list, one of them 0; "
                         f"got {stages} for {len(paths)} datasets")
    weights = args.dataset_weights or [1.0] * len(paths)
    if len(weights) != len(paths):
        raise UsageError(f"{len(paths)} datasets in --dataset_path_list but {len(weights)} --dataset_weights")
    sources = []
    for path in paths:
        dataset = open_dataset(path, args, vocab, model_cfg, None if multi else data_processor_from_args(args))
        sources.append(PretrainBatches(dataset, batch_size=args.batch_size, rank=ctx.rank, world_size=ctx.world_size,
                                       seed=args.seed, instances_buffer_size=args.instances_buffer_size,
                                       dynamic_masking=masking_config(args, dataset, vocab),
                                       length_bucketing=opts.BUCKET_WINDOW if args.length_bucketing else 0,
                                       accumulation_steps=args.accumulation_steps,
                                       pad_to_multiple_of=opts.PAD_MULTIPLE))
    if not multi:
        return sources[0], sources[0].dataset
    fed_by: dict[str, list[str]] = {name: [] for name in model.target.names}
    for path, source in zip(paths, sources):
        fed = [name for name, count in model.target.counts(source.batch(0)).items() if count > 0]
        if not fed:
            raise DataError(f"{source.kind} instances feed none of the targets {', '.join(model.target.names)}", path)
        for name in fed:
            fed_by[name].append(path)
    unfed = [name for name, feeding in fed_by.items() if not feeding]
    if unfed:
        raise UsageError(f"no dataset of --dataset_path_list has labels for the target(s) {', '.join(unfed)}")
    if ctx.is_main:
        for path, source, weight in zip(paths, sources, weights):
            logger.info("multi-task: %s (%s, %d instances), weight %g", path, source.kind, len(source.dataset), weight)
    if ctx.is_main and args.dataset_stages:
        logger.info("multi-task stages: dataset i is drawn from step %s on", " ".join(map(str, stages)))
    return MixedBatches(sources, weights, seed=args.seed, stages=stages,
                        micro_batches_per_step=args.accumulation_steps, task_ids=args.task_embedding), sources[0].dataset


def build_dev_batches(args: argparse.Namespace, ctx: DistContext, vocab: Vocab, model_cfg) -> PretrainBatches | None:
    """The validation set (--dev_dataset_path), read in this rank's share by Trainer.validate; None without."""
    if (args.dev_dataset_path is None) != (args.validation_steps is None):
        raise UsageError("--dev_dataset_path and --validation_steps go together: give both")
    if args.dev_dataset_path is None:
        return None
    dataset = open_dataset(args.dev_dataset_path, args, vocab, model_cfg,
                           None if args.dataset_path_list else data_processor_from_args(args))
    return PretrainBatches(dataset, batch_size=args.batch_size, rank=ctx.rank, world_size=ctx.world_size,
                           seed=args.seed, dynamic_masking=masking_config(args, dataset, vocab),
                           pad_to_multiple_of=opts.PAD_MULTIPLE)


def train(args: argparse.Namespace, ctx: DistContext) -> Trainer:
    vocab = load_vocab(args)
    model_cfg = model_config_from_args(args, len(vocab))
    torch.manual_seed(args.seed)  # same seed, same initial weights (on every rank: DDP also broadcasts rank 0's)
    model = build_model(model_cfg)
    if check_distillation_args(args):  # general distillation: the teacher's layers and MLM predictions
        teacher, teacher_cfg = load_teacher(args, len(vocab))
        model.target.add("distill", PretrainDistillation(DistillConfig.from_args(args), model, teacher.to(ctx.device),
                                                         model_cfg.hidden_size, teacher_cfg.hidden_size))
        if ctx.is_main:
            logger.info("distillation from %s (%d layers, hidden %d): %s, layer map %s", args.teacher_model_path,
                        teacher_cfg.layers_num, teacher_cfg.hidden_size, " ".join(args.distill_losses),
                        getattr(model.target.distill.layers, "layer_map", "-"))
    if args.resume_from:
        load_model_weights(model, args.resume_from, strict_prefixes=("",))
    elif args.pretrained_model_path:
        load_model_weights(model, args.pretrained_model_path)
    batches, dataset = build_batches(args, ctx, vocab, model_cfg, model)
    if ctx.is_main:
        params = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
        logger.info("model: %s embedding, %s encoder (%d layers, hidden %d), targets %s; %.2fM parameters; dataset %s: "
                    "%d instances (%s)", "+".join(model_cfg.embedding), model_cfg.encoder, model_cfg.layers_num,
                    model_cfg.hidden_size, "+".join(model_cfg.target), params / 1e6, dataset.path,
                    len(dataset), dataset.target)
    trainer = Trainer(model, batches, train_config_from_args(args), ctx,
                      find_unused_parameters=isinstance(batches, MixedBatches),
                      run_identity=run_identity(args, model_cfg, batches),
                      dev_batches=build_dev_batches(args, ctx, vocab, model_cfg))
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
    check_outputs(args, outputs=("output_model_path",), inputs=INPUT_OPTIONS, checkpoints=("output_model_path",))
    launch(args, train, "pretrain.py", use_visible_gpus=False)
