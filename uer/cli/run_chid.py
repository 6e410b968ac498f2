r"""Fine-tune idiom cloze (ChID): choose the idiom that fills each #idiomNNNNNN# blank from its candidates.

    python3 run_chid.py --pretrained_model_path models/google_zh_model.bin --vocab_path models/google_zh_vocab.txt \
        --train_path datasets/chid/train.json --train_answer_path datasets/chid/train_answer.json \
        --dev_path datasets/chid/dev.json --dev_answer_path datasets/chid/dev_answer.json \
        --batch_size 24 --seq_length 64 --max_choices_num 10 \
        --embedding word_pos_seg --encoder transformer --mask fully_visible

Files: one JSON object a line, ``{"candidates": [idioms], "content": [passages with #idiomNNNNNN# blanks]}``,
and an answer file ``{"#idiomNNNNNN#": index of the right candidate}``. Each blank is a question whose
sequences are [CLS] candidate [SEP] left context [SEP] right context [SEP] (other blanks as [MASK]), scored as
run_c3.py does; --batch_size counts blanks. Metric: accuracy; the best model on dev is kept.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from uer import opts
from uer.cli.run_c3 import add_choice_options
from uer.config import parse_args_with_config
from uer.errors import UsageError, entry_point
from uer.finetune.builders import FINETUNE_INPUTS, finetune_config_from_args, tokenizer_from_args
from uer.finetune.choice import choice_instances, choice_metric, multiple_choice_from_args, read_chid_questions
from uer.finetune.contract import EvalSet
from uer.finetune.loop import FineTuner
from uer.utils.distributed import DistContext
from uer.utils.io import check_outputs
from uer.utils.launch import launch

logger = logging.getLogger("run_chid")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=opts.HelpFormatter)
    opts.add_finetune_options(parser)
    group = parser.add_argument_group("idiom cloze")
    group.add_argument("--train_answer_path", required=True, help="Answers of the training set (JSON).")
    group.add_argument("--dev_answer_path", required=True, help="Answers of the development set (JSON).")
    group.add_argument("--test_answer_path", default=None, help="Answers of --test_path (JSON).")
    opts.add_tokenizer_options(parser)
    parser.set_defaults(tokenizer="char")
    opts.add_model_options(parser)
    add_choice_options(parser, default_choices=10)
    opts.add_optimization_options(parser)
    opts.add_distributed_options(parser)
    opts.add_optimizer_choice_options(parser)
    opts.add_early_stopping_option(parser)
    opts.add_training_curve_options(parser)
    opts.add_runtime_options(parser)
    return parser


def run(args: argparse.Namespace, ctx: DistContext) -> None:
    tokenizer = tokenizer_from_args(args)

    def read(path: str, answers: str):
        questions = read_chid_questions(path, tokenizer, args.seq_length, args.max_choices_num, answers)
        return choice_instances(questions, args.max_choices_num, tokenizer), questions

    train, train_questions = read(args.train_path, args.train_answer_path)
    dev, dev_questions = read(args.dev_path, args.dev_answer_path)
    model = multiple_choice_from_args(args, len(tokenizer.vocab))
    if ctx.is_main:
        logger.info("%d training blanks, %d candidates each", len(train_questions), args.max_choices_num)
    tuner = FineTuner(model, finetune_config_from_args(args), ctx, tokenizer.vocab.pad_id)
    tuner.fit(train, [EvalSet("dev", dev, choice_metric(dev_questions))])
    if args.test_path:
        test, test_questions = read(args.test_path, args.test_answer_path)
        tuner.evaluate([EvalSet("test", test, choice_metric(test_questions))], "test (best model on dev)")


@entry_point("run_chid.py")
def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args_with_config(build_parser(), argv)
    if args.test_path and not args.test_answer_path:
        raise UsageError("--test_path needs --test_answer_path (the blanks' answers)")
    check_outputs(args, outputs=("output_model_path",),
                  inputs=FINETUNE_INPUTS + ("train_answer_path", "dev_answer_path", "test_answer_path"))
    launch(args, run, "run_chid.py")
