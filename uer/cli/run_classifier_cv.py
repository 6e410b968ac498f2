r"""K-fold cross-validation of the classifier; writes out-of-fold class probabilities for stacking.

    python3 run_classifier_cv.py --pretrained_model_path models/google_zh_model.bin --vocab_path models/google_zh_vocab.txt \
        --config_path models/bert/base_config.json --output_model_path models/classifier_model.bin \
        --train_features_path datasets/smp2020-ewect/virus/train_features.npy \
        --train_path datasets/smp2020-ewect/virus/train.tsv \
        --epochs_num 3 --batch_size 32 --folds_num 5 --embedding word_pos_seg --encoder transformer --mask fully_visible

The training rows are dealt into --folds_num folds (a permutation seeded by --seed). For each fold a
model is trained on the other folds for --epochs_num epochs and saved with the fold as suffix
(models/classifier_model-fold_0.bin, ...); no model selection on the held-out fold (that would leak it
into the estimate). Its class probabilities on the held-out rows go to --train_features_path, a .npy of
shape [training rows x labels], row i belonging to line i of the training file. Prints accuracy and
macro F1 per fold and their means.
"""
from __future__ import annotations

import argparse
import io
import logging
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from uer import opts
from uer.errors import DataError, UsageError, entry_point
from uer.finetune.builders import FINETUNE_INPUTS, classifier_from_args, finetune_config_from_args, tokenizer_from_args
from uer.finetune.classification import (classification_metric, count_labels, read_classification, softmax,
                                         stacked_logits)
from uer.utils.launch import launch
from uer.finetune.loop import EvalSet, FineTuner
from uer.utils.io import atomic_write_bytes, check_outputs
from uer.config import parse_args_with_config
from uer.utils.distributed import DistContext
from uer.finetune.metrics import classification_report
from uer.utils.ranges import int_range

logger = logging.getLogger("run_classifier_cv")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=opts.HelpFormatter)
    opts.add_finetune_options(parser, output_model_path="models/classifier_model.bin", data_paths=False)
    parser.add_argument("--train_path", required=True, help="Training set (TSV with a header row).")
    parser.add_argument("--train_features_path", required=True,
                        help="Out-of-fold class probabilities (.npy, one row per training row) for stacking.")
    parser.add_argument("--folds_num", type=int_range(2), default=5, help="Number of folds.")
    opts.add_tokenizer_options(parser)
    opts.add_model_options(parser)
    opts.add_classifier_options(parser)
    opts.add_optimization_options(parser)
    opts.add_distributed_options(parser)
    opts.add_optimizer_choice_options(parser)
    opts.add_training_curve_options(parser)
    opts.add_runtime_options(parser)
    return parser


def fold_model_path(path: str, fold: int) -> str:
    """models/classifier_model.bin -> models/classifier_model-fold_0.bin (UER-py's naming)."""
    p = Path(path)
    return str(p.with_name(f"{p.stem}-fold_{fold}{p.suffix}"))


def run(args: argparse.Namespace, ctx: DistContext) -> None:
    if args.folds_num < 2:
        raise UsageError(f"--folds_num must be at least 2, got {args.folds_num}")
    tokenizer = tokenizer_from_args(args)
    labels_num = count_labels(args.train_path, args.soft_targets)
    data = read_classification(args.train_path, tokenizer, args.seq_length, labels_num, soft_targets=args.soft_targets,
                               closing_sep=not args.no_closing_sep)
    if len(data) < args.folds_num:
        raise DataError(f"{len(data)} rows cannot make {args.folds_num} folds (--folds_num)", args.train_path)
    folds = np.array_split(np.random.default_rng(args.seed).permutation(len(data)), args.folds_num)
    metric = classification_metric(labels_num)
    features = np.zeros((len(data), labels_num), dtype=np.float32)
    accs, f1s = [], []
    for fold, held_out in enumerate(folds):
        held_out = np.sort(held_out)
        train_rows = np.setdiff1d(np.arange(len(data)), held_out)
        model = classifier_from_args(args, len(tokenizer.vocab), labels_num)
        path = fold_model_path(args.output_model_path, fold)
        curves = None if args.tensorboard_dir is None else str(Path(args.tensorboard_dir) / f"fold_{fold}")
        tuner = FineTuner(model, finetune_config_from_args(args, output_model_path=path, keep="last",
                                                           tensorboard_dir=curves), ctx,
                          tokenizer.vocab.pad_id)
        if ctx.is_main:
            logger.info("fold %d/%d: training on %d rows, held out %d", fold + 1, args.folds_num, len(train_rows),
                        len(held_out))
        held = data.subset(held_out)
        tuner.fit(data.subset(train_rows), [EvalSet(f"fold {fold}", held, metric)])
        logits = stacked_logits(tuner.predict(held), labels_num)
        features[held_out] = softmax(logits)
        report = classification_report(held.fields["label"], logits.argmax(-1), labels_num)
        accs.append(report.accuracy)
        f1s.append(report.macro_f1)
        if ctx.is_main:
            logger.info("fold %d: %s; model %s", fold, report.summary(), path)
    if ctx.is_main:
        buffer = io.BytesIO()
        np.save(buffer, features)
        atomic_write_bytes(args.train_features_path, buffer.getvalue())
        logger.info("out-of-fold probabilities [%d x %d] -> %s", *features.shape, args.train_features_path)
        logger.info("cross-validation over %d folds: Acc. %.4f  Macro F1 %.4f (means over folds)",
                    args.folds_num, float(np.mean(accs)), float(np.mean(f1s)))


@entry_point("run_classifier_cv.py")
def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args_with_config(build_parser(), argv)
    folds = {f"--output_model_path (fold {fold})": fold_model_path(args.output_model_path, fold)
             for fold in range(max(args.folds_num, 0))}
    check_outputs(args, outputs=("train_features_path",), inputs=FINETUNE_INPUTS, extra_outputs=folds)
    launch(args, run, "run_classifier_cv.py")
