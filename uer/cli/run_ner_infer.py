r"""Tag a file with a model fine-tuned by run_ner.py.

    python3 inference/run_ner_infer.py --load_model_path models/finetuned_model.bin \
        --vocab_path models/google_zh_vocab.txt --test_path datasets/msra_ner/test_nolabel.tsv \
        --prediction_path datasets/msra_ner/prediction.tsv --label2id_path datasets/msra_ner/label2id.json \
        --embedding word_pos_seg --encoder transformer --mask fully_visible

Reads ``text_a`` (space-separated characters) by column name; writes a TSV with a ``label`` column: one
tag per input character, separated by spaces (long sentences are predicted in windows and joined). A model
trained with --crf_target is recognised from its file (its ``crf.*`` weights) and decoded by Viterbi.
"""
from __future__ import annotations

import argparse
import logging
from typing import Sequence

from uer import opts
from uer.api import resolve_device
from uer.cli.common import start_inference
from uer.errors import entry_point
from uer.utils.io import atomic_write_text
from uer.finetune.builders import tokenizer_from_args
from uer.finetune.loop import predict
from uer.finetune.tagging import read_label2id, read_tagging, sentence_tags, tagger_from_args
from uer.model_loader import load_model_weights, load_state_dict
from uer.utils.quantize import quantize_for_inference
from uer.cli.run_ner import add_tagging_options

logger = logging.getLogger("run_ner_infer")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=opts.HelpFormatter)
    opts.add_inference_options(parser)
    opts.add_tokenizer_options(parser)
    parser.set_defaults(tokenizer="space")
    opts.add_model_options(parser)
    add_tagging_options(parser)
    opts.add_runtime_options(parser)
    return parser


def write_tags(path: str, tags: list[list[str]]) -> None:
    atomic_write_text(path, "label\n" + "".join(" ".join(t) + "\n" for t in tags))


@entry_point("run_ner_infer.py")
def main(argv: Sequence[str] | None = None) -> None:
    args = start_inference(build_parser(), argv, extra_inputs=("label2id_path",))
    device = resolve_device(args.device)
    tokenizer = tokenizer_from_args(args)
    label2id = read_label2id(args.label2id_path)
    id2label = sorted(label2id, key=label2id.get)
    data, sentences = read_tagging(args.test_path, tokenizer, args.seq_length, label2id, with_labels=False,
                                   closing_sep=not args.no_closing_sep)  # bad input fails before the model loads
    state = load_state_dict(args.load_model_path)
    args.crf_target = args.crf_target or "crf.transitions" in state
    model = tagger_from_args(args, len(tokenizer.vocab), label2id, pretrained=False)
    load_model_weights(model, args.load_model_path, strict_prefixes=("",), state=state)
    model = quantize_for_inference(model, args.quantize, device)
    preds = predict(model.to(device), data, args.batch_size, tokenizer.vocab.pad_id, device)
    write_tags(args.prediction_path, sentence_tags(preds, data, sentences, id2label))
    logger.info("tagged %d sentences of %s into %s", len(sentences.words), args.test_path, args.prediction_path)
