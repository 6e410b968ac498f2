r"""Fill the idiom blanks of a ChID file with a model fine-tuned by run_chid.py.

    python3 inference/run_chid_infer.py --load_model_path models/finetuned_model.bin \
        --vocab_path models/google_zh_vocab.txt --test_path datasets/chid/test.json \
        --prediction_path datasets/chid/prediction.json --seq_length 64 --max_choices_num 10 \
        --embedding word_pos_seg --encoder transformer --mask fully_visible

Writes ``{"#idiomNNNNNN#": index of the predicted candidate, ...}``, the format of ChID's answer files.
"""
from __future__ import annotations

import logging
from typing import Sequence

from uer.cli.run_c3_infer import build_parser as c3_parser, predict_choices
from uer.cli.run_cmrc_infer import write_json
from uer.cli.common import start_inference
from uer.errors import entry_point
from uer.finetune.builders import tokenizer_from_args
from uer.finetune.choice import read_chid_questions

logger = logging.getLogger("run_chid_infer")


def build_parser():
    parser = c3_parser(default_choices=10)
    parser.description = __doc__
    parser.set_defaults(seq_length=64, tokenizer="char")
    return parser


@entry_point("run_chid_infer.py")
def main(argv: Sequence[str] | None = None) -> None:
    args = start_inference(build_parser(), argv)
    args.tokenizer_obj = tokenizer_from_args(args)
    questions = read_chid_questions(args.test_path, args.tokenizer_obj, args.seq_length, args.max_choices_num)
    labels = predict_choices(args, questions)
    write_json(args.prediction_path, {q.qid: label for q, label in zip(questions, labels)})
    logger.info("filled %d blanks of %s into %s", len(questions), args.test_path, args.prediction_path)
