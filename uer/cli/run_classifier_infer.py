r"""Predict labels with a model fine-tuned by run_classifier.py (or run_dbqa.py).

    python3 inference/run_classifier_infer.py --load_model_path models/finetuned_model.bin \
        --vocab_path models/google_zh_vocab.txt --test_path datasets/douban_book_review/test_nolabel.tsv \
        --prediction_path datasets/douban_book_review/prediction.tsv --labels_num 2 \
        --seq_length 128 --output_logits --output_prob \
        --embedding word_pos_seg --encoder transformer --mask fully_visible

Reads ``text_a`` (and ``text_b`` for pairs) by column name; other columns, a ``label`` included, are
ignored. Writes a TSV with a header: ``label``, then ``logits`` (--output_logits) and ``prob``
(--output_prob), each a space-separated list with one value per label. Pasted next to the input file,
it makes the training file of a distilled student (run_classifier.py --soft_targets).
"""
from __future__ import annotations

import argparse
import logging
from typing import Sequence

import numpy as np

from uer import opts
from uer.finetune.builders import encoder_from_args, tokenizer_from_args
from uer.finetune.classification import read_classification, softmax, stacked_logits
from uer.finetune.heads import Classifier
from uer.finetune.loop import predict
from uer.model_loader import load_model_weights
from uer.api import resolve_device
from uer.errors import entry_point
from uer.utils.io import atomic_write_text
from uer.cli.common import start_inference
from uer.utils.ranges import positive_int

logger = logging.getLogger("run_classifier_infer")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=opts.HelpFormatter)
    opts.add_inference_options(parser)
    parser.add_argument("--labels_num", type=positive_int, required=True, help="Number of labels of the model.")
    parser.add_argument("--output_logits", action="store_true", help="Add a 'logits' column.")
    parser.add_argument("--output_prob", action="store_true", help="Add a 'prob' column (softmax of the logits).")
    opts.add_tokenizer_options(parser)
    opts.add_model_options(parser)
    opts.add_classifier_options(parser)
    opts.add_runtime_options(parser)
    return parser


def format_values(values: np.ndarray) -> str:
    return " ".join(f"{v:.7g}" for v in values)


def write_predictions(path: str, logits: np.ndarray, output_logits: bool, output_prob: bool) -> None:
    labels = logits.argmax(-1)
    probs = softmax(logits)
    header = ["label"] + (["logits"] if output_logits else []) + (["prob"] if output_prob else [])
    lines = ["\t".join(header)]
    for i, label in enumerate(labels):
        row = [str(int(label))]
        if output_logits:
            row.append(format_values(logits[i]))
        if output_prob:
            row.append(format_values(probs[i]))
        lines.append("\t".join(row))

    atomic_write_text(path, "\n".join(lines) + "\n")


@entry_point("run_classifier_infer.py")
def main(argv: Sequence[str] | None = None) -> None:
    args = start_inference(build_parser(), argv)
    device = resolve_device(args.device)
    tokenizer = tokenizer_from_args(args)
    data = read_classification(args.test_path, tokenizer, args.seq_length, with_labels=False,  # before the model
                               closing_sep=not args.no_closing_sep)
    cfg, embedding, encoder = encoder_from_args(args, len(tokenizer.vocab))
    model = Classifier(embedding, encoder, cfg.hidden_size, args.labels_num, args.pooling)
    load_model_weights(model, args.load_model_path, strict_prefixes=("",))  # every key: a fine-tuned model
    logits = stacked_logits(predict(model.to(device), data, args.batch_size, tokenizer.vocab.pad_id, device),
                            args.labels_num)
    write_predictions(args.prediction_path, logits, args.output_logits, args.output_prob)
    logger.info("predicted %d instances of %s into %s", len(data), args.test_path, args.prediction_path)
