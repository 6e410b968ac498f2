r"""Fine-tune multiple choice (C3): one score per (document, question, choice) sequence, softmax over the
choices of a question.

    python3 run_c3.py --pretrained_model_path models/google_zh_model.bin --vocab_path models/google_zh_vocab.txt \
        --train_path datasets/c3/train.json --dev_path datasets/c3/dev.json \
        --epochs_num 8 --batch_size 16 --seq_length 512 --max_choices_num 4 \
        --embedding word_pos_seg --encoder transformer --mask fully_visible

Each sequence is [CLS] choice [SEP] question [SEP] document [SEP]; the document is cut so that choice and
question always fit. Questions with fewer than --max_choices_num choices get filler choices that can never
win. --batch_size counts questions: a step sees batch_size x max_choices_num sequences, and the choices of a
question are never split across batches or processes. Metric: accuracy; the best model on dev is kept.
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
from uer.finetune.choice import choice_instances, choice_metric, multiple_choice_from_args, read_c3_questions
from uer.finetune.contract import EvalSet
from uer.finetune.loop import FineTuner
from uer.utils.distributed import DistContext
from uer.utils.io import check_outputs
from uer.utils.launch import launch
from uer.utils.ranges import positive_int

logger = logging.getLogger("run_c3")


def add_choice_options(parser: argparse.ArgumentParser, default_choices: int = 4) -> None:
    group = parser.add_argument_group("multiple choice")
    group.add_argument("--max_choices_num", type=positive_int, default=default_choices,
                       help="Choices per question; questions with fewer get filler choices that never win.")
    group.add_argument("--bidirectional", action="store_true", help="Recurrent encoders only (accepted for UER-py compatibility).")


def build_parser() -> argparse.ArgumentParser:
    return opts.build_finetune_parser(__doc__, add_choice_options)


def run(args: argparse.Namespace, ctx: DistContext) -> None:
    tokenizer = tokenizer_from_args(args)

    def read(path: str):
        questions = read_c3_questions(path, tokenizer, args.seq_length, args.max_choices_num)
        return choice_instances(questions, args.max_choices_num, tokenizer), questions

    train, train_questions = read(args.train_path)
    dev, dev_questions = read(args.dev_path)
    model = multiple_choice_from_args(args, len(tokenizer.vocab))
    if ctx.is_main:
        logger.info("%d training questions, %d choices each (fillers included)", len(train_questions), args.max_choices_num)
    tuner = FineTuner(model, finetune_config_from_args(args), ctx, tokenizer.vocab.pad_id)
    tuner.fit(train, [EvalSet("dev", dev, choice_metric(dev_questions))])
    if args.test_path:
        test, test_questions = read(args.test_path)
        tuner.evaluate([EvalSet("test", test, choice_metric(test_questions))], "test (best model on dev)")


@entry_point("run_c3.py")
def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args_with_config(build_parser(), argv)
    if args.max_choices_num < 2:
        raise UsageError(f"--max_choices_num must be at least 2, got {args.max_choices_num}")
    check_outputs(args, outputs=("output_model_path",), inputs=FINETUNE_INPUTS)
    launch(args, run, "run_c3.py")
