r"""Test-set features for stacking from the fold models of run_classifier_cv.py: class probabilities averaged
over the folds.

    python3 inference/run_classifier_cv_infer.py --load_model_path models/classifier_model.bin \
        --vocab_path models/google_zh_vocab.txt --config_path models/bert/base_config.json \
        --test_path datasets/smp2020-ewect/virus/test_nolabel.tsv \
        --test_features_path datasets/smp2020-ewect/virus/test_features.npy \
        --folds_num 5 --labels_num 6 --embedding word_pos_seg --encoder transformer --mask fully_visible

--load_model_path names the models as run_classifier_cv.py's --output_model_path did: fold i is read from
models/classifier_model-fold_i.bin. Each fold model predicts every row of --test_path (``text_a``, and
``text_b`` for pairs); --test_features_path gets the mean of their class probabilities, [rows x labels]
(.npy), the test-side counterpart of --train_features_path for scripts/run_lgb.py. --prediction_path
(optional) also writes the ensemble's predictions as inference/run_classifier_infer.py does: ``label`` (argmax
of the mean probabilities), ``logits`` (the folds' mean logits, --output_logits) and ``prob`` (the mean
probabilities, --output_prob). inference/run_classifier_infer_cv.py is the same script.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

import numpy as np

from uer import opts
from uer.api import resolve_device
from uer.cli.run_classifier_cv import fold_model_path
from uer.cli.run_classifier_infer import format_values
from uer.config import parse_args_with_config
from uer.finetune.builders import encoder_from_args, tokenizer_from_args
from uer.finetune.classification import read_classification, softmax, stacked_logits
from uer.finetune.heads import Classifier
from uer.finetune.loop import predict
from uer.model_loader import load_model_weights
from uer.tools.common import ToolError, check_outputs_are_not_inputs, require_file, run_tool, save_array, write_text
from uer.utils.logging import setup_logging_from_args
from uer.utils.runtime import set_threads
from uer.utils.ranges import int_range, positive_int, sequence_length

logger = logging.getLogger("run_classifier_cv_infer")


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=opts.HelpFormatter)
    parser.add_argument("--load_model_path", required=True,
                        help="run_classifier_cv.py's --output_model_path; fold i is read from NAME-fold_i.SUFFIX.")
    parser.add_argument("--test_path", required=True, help="File to predict (TSV with a header row).")
    parser.add_argument("--test_features_path", default=None,
                        help="Mean class probabilities of the fold models (.npy [rows x labels]) for stacking.")
    parser.add_argument("--prediction_path", default=None, help="Also write the ensemble's predictions (TSV).")
    parser.add_argument("--output_logits", action="store_true", help="Prediction file: a 'logits' column (fold mean).")
    parser.add_argument("--output_prob", action="store_true", help="Prediction file: a 'prob' column (fold mean).")
    parser.add_argument("--folds_num", type=int_range(2), default=5, help="Number of fold models.")
    parser.add_argument("--labels_num", type=positive_int, required=True, help="Number of labels of the models.")
    parser.add_argument("--batch_size", type=positive_int, default=64, help="Instances per forward pass.")
    parser.add_argument("--seq_length", type=sequence_length, default=128, help="Longest input in tokens (as in training).")
    opts.add_device_option(parser)
    opts.add_tokenizer_options(parser)
    opts.add_model_options(parser)
    opts.add_classifier_options(parser)
    opts.add_runtime_options(parser)
    return parser


def fold_predictions(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """(mean logits, mean probabilities) of the fold models on --test_path, [rows x labels] each."""
    device = resolve_device(args.device)
    tokenizer = tokenizer_from_args(args)
    data = read_classification(args.test_path, tokenizer, args.seq_length, with_labels=False)
    logits_sum = np.zeros((len(data), args.labels_num), dtype=np.float64)
    probs_sum = np.zeros_like(logits_sum)
    for fold in range(args.folds_num):
        path = fold_model_path(args.load_model_path, fold)
        require_file(path, f"model of fold {fold}")
        cfg, embedding, encoder = encoder_from_args(args, len(tokenizer.vocab))
        model = Classifier(embedding, encoder, cfg.hidden_size, args.labels_num, args.pooling)
        load_model_weights(model, path, strict_prefixes=("",))  # every key: a fine-tuned model
        logits = stacked_logits(predict(model.to(device), data, args.batch_size, tokenizer.vocab.pad_id, device),
                                args.labels_num)
        logits_sum += logits
        probs_sum += softmax(logits)
        logger.info("fold %d: %s predicted %d rows", fold, path, len(data))
    return (logits_sum / args.folds_num).astype(np.float32), (probs_sum / args.folds_num).astype(np.float32)


def main(argv: Sequence[str] | None = None, prog: str = "run_classifier_cv_infer.py") -> None:
    def body(argv: Sequence[str] | None) -> None:
        args = parse_args_with_config(build_parser(prog), list(sys.argv[1:] if argv is None else argv))
        setup_logging_from_args(args)
        set_threads(args.threads)
        if not args.test_features_path and not args.prediction_path:
            raise ToolError("give --test_features_path (features for stacking) and/or --prediction_path")
        if (args.output_logits or args.output_prob) and not args.prediction_path:
            raise ToolError("--output_logits/--output_prob add columns to the --prediction_path file: give it")
        if args.folds_num < 1:
            raise ToolError(f"--folds_num must be >= 1, got {args.folds_num}")
        folds = [fold_model_path(args.load_model_path, fold) for fold in range(args.folds_num)]
        check_outputs_are_not_inputs(
            [("--test_features_path", args.test_features_path), ("--prediction_path", args.prediction_path)],
            [("--test_path", args.test_path), ("--vocab_path", args.vocab_path)] + [("a fold model", p) for p in folds])
        logits, probs = fold_predictions(args)
        if args.test_features_path:
            save_array(args.test_features_path, probs)
            logger.info("mean probabilities of %d fold models [%d x %d] -> %s", args.folds_num, *probs.shape,
                        args.test_features_path)
        if args.prediction_path:
            header = ["label"] + (["logits"] if args.output_logits else []) + (["prob"] if args.output_prob else [])
            rows = []
            for i, label in enumerate(probs.argmax(-1)):
                row = [str(int(label))] + ([format_values(logits[i])] if args.output_logits else []) + \
                      ([format_values(probs[i])] if args.output_prob else [])
                rows.append("\t".join(row))
            write_text(args.prediction_path, "\n".join(["\t".join(header)] + rows) + "\n")
            logger.info("predictions of the %d-fold ensemble -> %s", args.folds_num, args.prediction_path)

    run_tool(prog, body, argv)
