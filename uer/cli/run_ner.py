r"""Fine-tune a sequence labeller (named entity recognition): one feed-forward layer over every token's
encoder output, optionally followed by a linear-chain CRF (--crf_target).

    python3 run_ner.py --pretrained_model_path models/google_zh_model.bin --vocab_path models/google_zh_vocab.txt \
        --train_path datasets/msra_ner/train.tsv --dev_path datasets/msra_ner/dev.tsv \
        --test_path datasets/msra_ner/test.tsv --label2id_path datasets/msra_ner/label2id.json \
        --epochs_num 5 --batch_size 16 --embedding word_pos_seg --encoder transformer --mask fully_visible

Files: a header row, ``text_a`` (characters separated by spaces) and ``label`` (one tag per character,
separated by spaces); --label2id_path maps every tag to its id. Each character is one token (--tokenizer
space, the default here; --tokenizer bert gives a space-separated word its WordPiece pieces, the tag going
to the first). A sentence longer than --seq_length is predicted in consecutive windows, never cut.

Metric: entity-level precision/recall/F1, overall and per type, exactly as seqeval's default (CoNLL) mode:
an entity is a chunk of B-X I-X ... tags, and an I-X that does not continue an X entity starts a new one.
--crf_target: CRF log-likelihood training and Viterbi decoding. --bio_constraints: decoding never outputs
an I-X that does not follow B-X or I-X (with or without CRF). The best model on dev F1 is kept.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from uer import opts
from uer.config import parse_args_with_config
from uer.errors import entry_point
from uer.finetune.builders import FINETUNE_INPUTS, finetune_config_from_args, tokenizer_from_args
from uer.finetune.contract import EvalSet
from uer.finetune.loop import FineTuner
from uer.finetune.tagging import ner_metric, read_label2id, read_tagging, tagger_from_args
from uer.utils.distributed import DistContext
from uer.utils.io import check_outputs
from uer.utils.launch import launch

logger = logging.getLogger("run_ner")


def add_tagging_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sequence labelling")
    group.add_argument("--label2id_path", required=True, help="JSON object: tag -> id (ids 0 .. n-1).")
    group.add_argument("--crf_target", action="store_true",
                       help="Linear-chain CRF over the tag scores: log-likelihood training, Viterbi decoding.")
    group.add_argument("--bio_constraints", action="store_true",
                       help="Decode only valid BIO sequences (no I-X after O or after another type).")
    group.add_argument("--bidirectional", action="store_true", help="Recurrent encoders only (accepted for UER-py compatibility).")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=opts.HelpFormatter)
    opts.add_finetune_options(parser)
    opts.add_tokenizer_options(parser)
    parser.set_defaults(tokenizer="space")
    opts.add_model_options(parser)
    add_tagging_options(parser)
    opts.add_optimization_options(parser)
    opts.add_distributed_options(parser)
    opts.add_optimizer_choice_options(parser)
    opts.add_early_stopping_option(parser)
    opts.add_training_curve_options(parser)
    opts.add_runtime_options(parser)
    return parser


def run(args: argparse.Namespace, ctx: DistContext) -> None:
    tokenizer = tokenizer_from_args(args)
    label2id = read_label2id(args.label2id_path)
    id2label = sorted(label2id, key=label2id.get)
    closing_sep = not args.no_closing_sep

    def read(path: str):
        return read_tagging(path, tokenizer, args.seq_length, label2id, closing_sep=closing_sep)

    train, _ = read(args.train_path)
    dev, dev_sentences = read(args.dev_path)
    model = tagger_from_args(args, len(tokenizer.vocab), label2id)
    if ctx.is_main:
        logger.info("%d tags (from %s)%s%s; %d training windows", len(label2id), args.label2id_path,
                    "; CRF" if args.crf_target else "", "; BIO-constrained decoding" if args.bio_constraints else "",
                    len(train))
    tuner = FineTuner(model, finetune_config_from_args(args), ctx, tokenizer.vocab.pad_id)
    tuner.fit(train, [EvalSet("dev", dev, ner_metric(dev_sentences, id2label), "f1")])
    if args.test_path:
        test, test_sentences = read(args.test_path)
        tuner.evaluate([EvalSet("test", test, ner_metric(test_sentences, id2label), "f1")], "test (best model on dev)")


@entry_point("run_ner.py")
def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args_with_config(build_parser(), argv)
    check_outputs(args, outputs=("output_model_path",), inputs=FINETUNE_INPUTS + ("label2id_path",))
    launch(args, run, "run_ner.py")
