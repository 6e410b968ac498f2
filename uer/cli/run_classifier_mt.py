r"""Multi-task classification: embedding and encoder shared, one two-layer classifier per task.

    python3 run_classifier_mt.py --pretrained_model_path models/google_zh_model.bin --vocab_path models/google_zh_vocab.txt \
        --dataset_path_list datasets/douban_book_review/ datasets/chnsenticorp/ \
        --epochs_num 1 --batch_size 64 --embedding word_pos_seg --encoder transformer --mask fully_visible

Each folder of --dataset_path_list holds train.tsv and dev.tsv (test.tsv, when present, is evaluated
with the kept model at the end). Batches hold one task each and the tasks' batches are interleaved in a
random order every epoch. Every task's dev set is evaluated after each epoch; the model with the best
mean dev accuracy is written to --output_model_path (heads under output_layers_1.{i}/output_layers_2.{i},
UER-py's keys). The old name run_mt_classifier.py runs this script.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

import numpy as np

from uer import opts
from uer.errors import DataError, UsageError, entry_point
from uer.finetune.builders import (FINETUNE_INPUTS, encoder_from_args, finetune_config_from_args, init_head,
                                   load_pretrained, tokenizer_from_args)
from uer.finetune.classification import classification_metric, count_labels, has_text_b, read_classification
from uer.utils.io import check_output_path, check_outputs
from uer.finetune.heads import MultitaskClassifier
from uer.utils.launch import launch
from uer.finetune.loop import EvalSet, FineTuner
from uer.config import parse_args_with_config
from uer.utils.distributed import DistContext

logger = logging.getLogger("run_classifier_mt")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=opts.HelpFormatter)
    parser.add_argument("--dataset_path_list", nargs="+", required=True,
                        help="Task folders, each with train.tsv and dev.tsv (test.tsv optional).")
    opts.add_finetune_options(parser, output_model_path="models/multitask_classifier_model.bin", data_paths=False)
    opts.add_tokenizer_options(parser)
    opts.add_model_options(parser)
    opts.add_classifier_options(parser)
    opts.add_optimization_options(parser)
    opts.add_distributed_options(parser)
    opts.add_optimizer_choice_options(parser)
    opts.add_early_stopping_option(parser)
    opts.add_training_curve_options(parser)
    opts.add_runtime_options(parser)
    return parser


def run(args: argparse.Namespace, ctx: DistContext) -> None:
    if args.soft_targets:
        raise UsageError("--soft_targets is not supported for multi-task training")
    tokenizer = tokenizer_from_args(args)
    folders = [os.path.normpath(path) for path in args.dataset_path_list]
    for folder in folders:
        if not os.path.isdir(folder):
            raise DataError("not a folder (--dataset_path_list takes task folders holding train.tsv and dev.tsv)",
                            folder)
    labels_nums = [count_labels(os.path.join(folder, "train.tsv")) for folder in folders]
    pairs = [has_text_b(os.path.join(folder, "train.tsv")) for folder in folders]

    def read(task: int, name: str):
        path = os.path.join(folders[task], name)
        train_path = os.path.join(folders[task], "train.tsv")
        data = read_classification(path, tokenizer, args.seq_length, labels_nums[task], pairs=pairs[task],
                                   pairs_from=train_path, closing_sep=not args.no_closing_sep)
        data.fields["task"] = np.full(len(data), task, dtype=np.int64)  # selects the head
        return data

    def eval_set(task: int, name: str) -> EvalSet:
        return EvalSet(f"{task}: {os.path.basename(folders[task])}", read(task, name),
                       classification_metric(labels_nums[task]))

    if ctx.is_main:
        for task, folder in enumerate(folders):
            logger.info("task %d: %s, %d labels", task, folder, labels_nums[task])
    # Every file is read before training (a bad test.tsv must not be found after the epochs).
    trains = [read(task, "train.tsv") for task in range(len(folders))]
    devs = [eval_set(task, "dev.tsv") for task in range(len(folders))]
    tests = [eval_set(task, "test.tsv") for task in range(len(folders))
             if os.path.isfile(os.path.join(folders[task], "test.tsv"))]
    cfg, embedding, encoder = encoder_from_args(args, len(tokenizer.vocab))
    model = MultitaskClassifier(embedding, encoder, cfg.hidden_size, labels_nums, args.pooling)
    init_head(model)
    load_pretrained(model, args.pretrained_model_path)
    # Every task's head is idle in the other tasks' steps, hence find_unused_parameters under DDP.
    tuner = FineTuner(model, finetune_config_from_args(args), ctx, tokenizer.vocab.pad_id, find_unused_parameters=True)
    tuner.fit(trains, devs)
    if tests:
        tuner.evaluate(tests, "test (best model on dev)")


@entry_point("run_classifier_mt.py", aliases=("run_mt_classifier.py",))
def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args_with_config(build_parser(), argv)
    task_files = {f"{folder}/{name}": os.path.join(folder, name) for folder in args.dataset_path_list
                  for name in ("train.tsv", "dev.tsv", "test.tsv")}
    check_outputs(args, outputs=("output_model_path",), inputs=FINETUNE_INPUTS)
    check_output_path(args.output_model_path, "--output_model_path", task_files)
    launch(args, run, "run_classifier_mt.py")
