r"""Fine-tune a classifier (two feed-forward layers over the pooled encoder output) on single texts or pairs.

    python3 run_classifier.py --pretrained_model_path models/google_zh_model.bin --vocab_path models/google_zh_vocab.txt \
        --train_path datasets/douban_book_review/train.tsv --dev_path datasets/douban_book_review/dev.tsv \
        --test_path datasets/douban_book_review/test.tsv \
        --epochs_num 3 --batch_size 64 --embedding word_pos_seg --encoder transformer --mask fully_visible

Files: a header row naming the columns (``label``, ``text_a``, and ``text_b`` for pairs), tab-separated.
The number of labels is read from the training set. After each epoch the dev set is evaluated and the
best model so far written to --output_model_path; the test set is evaluated with that model at the end.
Distillation: --soft_targets --soft_alpha 0.5 with a training file that has the teacher's ``logits``.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from uer import opts
from uer.errors import entry_point
from uer.distill import add_distillation_options, attach_teacher_from_args, check_distillation_args
from uer.finetune.builders import FINETUNE_INPUTS, classifier_from_args, finetune_config_from_args, tokenizer_from_args
from uer.finetune.classification import classification_metric, count_labels, has_text_b, read_classification
from uer.utils.io import check_outputs
from uer.data.finetune_data import Instances
from uer.utils.launch import launch
from uer.finetune.loop import EvalSet, FineTuner
from uer.config import parse_args_with_config
from uer.utils.distributed import DistContext

logger = logging.getLogger("run_classifier")


def build_parser() -> argparse.ArgumentParser:
    def task_options(parser: argparse.ArgumentParser) -> None:
        opts.add_classifier_options(parser)
        add_distillation_options(parser)

    return opts.build_finetune_parser(__doc__, task_options)


def run(args: argparse.Namespace, ctx: DistContext) -> None:
    tokenizer = tokenizer_from_args(args)
    labels_num = count_labels(args.train_path, args.soft_targets)
    pairs = has_text_b(args.train_path)

    def read(path: str, **kw) -> Instances:
        return read_classification(path, tokenizer, args.seq_length, labels_num, closing_sep=not args.no_closing_sep, **kw)

    # Every file is read (encoding, columns, labels) before training: a bad test.tsv must not be found
    # after the epochs, when --output_model_path has already been replaced.
    train = read(args.train_path, soft_targets=args.soft_targets)
    dev = read(args.dev_path, pairs=pairs, pairs_from=args.train_path)
    test = read(args.test_path, pairs=pairs, pairs_from=args.train_path) if args.test_path else None
    model = classifier_from_args(args, len(tokenizer.vocab), labels_num)
    if check_distillation_args(args):  # layer / prediction distillation from a fine-tuned teacher (uer.distill)
        line = attach_teacher_from_args(model, args, lambda o: classifier_from_args(o, len(tokenizer.vocab), labels_num))
        if ctx.is_main:
            logger.info(line)
    metric = classification_metric(labels_num)
    if ctx.is_main:
        logger.info("%d labels (from %s); %s pooling%s", labels_num, args.train_path, args.pooling,
                    f"; soft targets, alpha {args.soft_alpha}" if args.soft_targets else "")
    tuner = FineTuner(model, finetune_config_from_args(args), ctx, tokenizer.vocab.pad_id)
    tuner.fit(train, [EvalSet("dev", dev, metric)])
    if test is not None:
        tuner.evaluate([EvalSet("test", test, metric)], "test (best model on dev)")


@entry_point("run_classifier.py")
def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args_with_config(build_parser(), argv)
    check_outputs(args, outputs=("output_model_path",), inputs=FINETUNE_INPUTS + ("teacher_model_path", "teacher_config_path"))
    launch(args, run, "run_classifier.py")
