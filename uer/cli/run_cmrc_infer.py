r"""Answer the questions of a SQuAD-format file with a model fine-tuned by run_cmrc.py.

    python3 inference/run_cmrc_infer.py --load_model_path models/finetuned_model.bin \
        --vocab_path models/google_zh_vocab.txt --test_path datasets/cmrc2018/test.json \
        --prediction_path datasets/cmrc2018/prediction.json --seq_length 512 \
        --embedding word_pos_seg --encoder transformer --mask fully_visible

Writes ``{"question id": "answer text", ...}``, the file the official CMRC 2018 evaluation script reads.
Answers in the input file, if any, are ignored. Use the --seq_length, --doc_stride and --max_answer_length
of training.
"""
from __future__ import annotations

import argparse
import json
import logging
from typing import Sequence

from uer import opts
from uer.api import resolve_device
from uer.cli.run_cmrc import add_mrc_options
from uer.cli.common import start_inference
from uer.errors import entry_point
from uer.utils.io import atomic_write_text
from uer.finetune.builders import tokenizer_from_args
from uer.finetune.loop import predict
from uer.finetune.mrc import decode_answers, read_mrc, span_extractor_from_args
from uer.model_loader import load_model_weights
from uer.utils.quantize import quantize_for_inference

logger = logging.getLogger("run_cmrc_infer")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=opts.HelpFormatter)
    opts.add_inference_options(parser)
    parser.set_defaults(seq_length=512, batch_size=8)
    opts.add_tokenizer_options(parser)
    opts.add_model_options(parser)
    add_mrc_options(parser)
    opts.add_runtime_options(parser)
    return parser


def write_json(path: str, value) -> None:
    atomic_write_text(path, json.dumps(value, ensure_ascii=False, indent=1) + "\n")


@entry_point("run_cmrc_infer.py")
def main(argv: Sequence[str] | None = None) -> None:
    args = start_inference(build_parser(), argv)
    device = resolve_device(args.device)
    tokenizer = tokenizer_from_args(args)
    data, questions = read_mrc(args.test_path, tokenizer, args.seq_length, args.doc_stride, with_answers=False)
    model = span_extractor_from_args(args, len(tokenizer.vocab), pretrained=False)
    load_model_weights(model, args.load_model_path, strict_prefixes=("",))
    model = quantize_for_inference(model, args.quantize, device)
    preds = predict(model.to(device), data, args.batch_size, tokenizer.vocab.pad_id, device)
    answers = decode_answers(preds, data, questions, args.max_answer_length)
    write_json(args.prediction_path, {a["id"]: a["text"] for a in answers})
    logger.info("answered %d questions of %s into %s", len(questions), args.test_path, args.prediction_path)
