r"""Fine-tune span-extraction reading comprehension (CMRC 2018, SQuAD format): start and end scores per token.

    python3 run_cmrc.py --pretrained_model_path models/google_zh_model.bin --vocab_path models/google_zh_vocab.txt \
        --train_path datasets/cmrc2018/train.json --dev_path datasets/cmrc2018/dev.json \
        --epochs_num 2 --batch_size 8 --seq_length 512 \
        --embedding word_pos_seg --encoder transformer --mask fully_visible

Each question is paired with windows of its context ([CLS] question [SEP] window [SEP]) that start every
--doc_stride tokens. The answer is the best span with start <= end and at most --max_answer_length tokens
(one token is a legal answer) over all windows, mapped back to the characters of the context. Metric: the
official CMRC 2018 evaluation (F1 from the longest common substring of the mixed segmentation, exact match
after punctuation removal, each the best over the reference answers; Avg is their mean); the best model on
dev Avg is kept.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from uer import opts
from uer.config import parse_args_with_config
from uer.errors import UsageError, entry_point
from uer.finetune.builders import FINETUNE_INPUTS, finetune_config_from_args, tokenizer_from_args
from uer.finetune.contract import EvalSet
from uer.finetune.loop import FineTuner
from uer.finetune.mrc import cmrc_metric, read_mrc, span_extractor_from_args
from uer.utils.distributed import DistContext
from uer.utils.io import check_outputs
from uer.utils.launch import launch
from uer.utils.ranges import positive_int

logger = logging.getLogger("run_cmrc")


def add_mrc_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reading comprehension")
    group.add_argument("--doc_stride", type=positive_int, default=128,
                       help="Tokens between the starts of consecutive windows of a long context.")
    group.add_argument("--max_answer_length", type=positive_int, default=64, help="Longest answer in tokens.")
    group.add_argument("--bidirectional", action="store_true", help="Recurrent encoders only (accepted for UER-py compatibility).")


def build_parser() -> argparse.ArgumentParser:
    return opts.build_finetune_parser(__doc__, add_mrc_options)


def run(args: argparse.Namespace, ctx: DistContext) -> None:
    tokenizer = tokenizer_from_args(args)

    def read(path: str):
        return read_mrc(path, tokenizer, args.seq_length, args.doc_stride)

    train, train_questions = read(args.train_path)
    dev, dev_questions = read(args.dev_path)
    model = span_extractor_from_args(args, len(tokenizer.vocab))
    if ctx.is_main:
        logger.info("%d training questions in %d windows (--seq_length %d, --doc_stride %d)", len(train_questions),
                    len(train), args.seq_length, args.doc_stride)
    tuner = FineTuner(model, finetune_config_from_args(args), ctx, tokenizer.vocab.pad_id)
    tuner.fit(train, [EvalSet("dev", dev, cmrc_metric(dev_questions, args.max_answer_length), "avg")])
    if args.test_path:
        test, test_questions = read(args.test_path)
        tuner.evaluate([EvalSet("test", test, cmrc_metric(test_questions, args.max_answer_length), "avg")],
                       "test (best model on dev)")


@entry_point("run_cmrc.py")
def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args_with_config(build_parser(), argv)
    if args.max_answer_length < 1 or args.doc_stride < 1:
        raise UsageError(f"--max_answer_length and --doc_stride must be positive, got {args.max_answer_length} "
                         f"and {args.doc_stride}")
    check_outputs(args, outputs=("output_model_path",), inputs=FINETUNE_INPUTS)
    launch(args, run, "run_cmrc.py")
