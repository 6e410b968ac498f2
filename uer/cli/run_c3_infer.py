r"""Predict the choice of every question of a C3-format file with a model fine-tuned by run_c3.py.

    python3 inference/run_c3_infer.py --load_model_path models/finetuned_model.bin \
        --vocab_path models/google_zh_vocab.txt --test_path datasets/c3/test.json \
        --prediction_path datasets/c3/prediction.json --max_choices_num 4 \
        --embedding word_pos_seg --encoder transformer --mask fully_visible

Writes one JSON object a line, ``{"id": question id, "label": index of the predicted choice}``, as UER-py's
script does. Answers in the input file, if any, are ignored.
"""
from __future__ import annotations

import argparse
import json
import logging
from typing import Sequence

import numpy as np

from uer import opts
from uer.api import resolve_device
from uer.cli.run_c3 import add_choice_options
from uer.cli.common import start_inference
from uer.errors import entry_point
from uer.utils.io import atomic_write_text
from uer.finetune.builders import tokenizer_from_args
from uer.finetune.choice import choice_instances, multiple_choice_from_args, question_scores, read_c3_questions
from uer.finetune.loop import predict
from uer.model_loader import load_model_weights
from uer.utils.quantize import quantize_for_inference

logger = logging.getLogger("run_c3_infer")


def build_parser(default_choices: int = 4) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=opts.HelpFormatter)
    opts.add_inference_options(parser)
    parser.set_defaults(seq_length=512, batch_size=8)
    opts.add_tokenizer_options(parser)
    opts.add_model_options(parser)
    add_choice_options(parser, default_choices)
    opts.add_runtime_options(parser)
    return parser


def predict_choices(args: argparse.Namespace, questions) -> list[int]:
    """Load --load_model_path and return the predicted choice index of every question."""
    from uer.finetune.choice import has_pooler

    device = resolve_device(args.device)
    tokenizer = args.tokenizer_obj
    model = multiple_choice_from_args(args, len(tokenizer.vocab), pooler=has_pooler(args.load_model_path),
                                      pretrained=False)
    load_model_weights(model, args.load_model_path, strict_prefixes=("",))
    model = quantize_for_inference(model, args.quantize, device)
    data = choice_instances(questions, args.max_choices_num, tokenizer, with_labels=False)
    preds = predict(model.to(device), data, args.batch_size, tokenizer.vocab.pad_id, device)
    return [int(np.argmax(s)) for s in question_scores(preds, data)]


def write_lines(path: str, records: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


@entry_point("run_c3_infer.py")
def main(argv: Sequence[str] | None = None) -> None:
    args = start_inference(build_parser(), argv)
    args.tokenizer_obj = tokenizer_from_args(args)
    questions = read_c3_questions(args.test_path, args.tokenizer_obj, args.seq_length, args.max_choices_num,
                                  with_answers=False)
    labels = predict_choices(args, questions)
    write_lines(args.prediction_path, [{"id": q.qid, "label": label} for q, label in zip(questions, labels)])
    logger.info("predicted %d questions of %s into %s", len(questions), args.test_path, args.prediction_path)
