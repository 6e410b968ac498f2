r"""Predict every task's label with a multi-task classifier trained by run_classifier_mt.py.

    python3 inference/run_classifier_mt_infer.py --load_model_path models/multitask_classifier_model.bin \
        --vocab_path models/google_zh_vocab.txt --config_path models/bert/base_config.json \
        --test_path datasets/test_nolabel.tsv --prediction_path datasets/prediction.tsv \
        --labels_num_list 2 2 --output_logits --output_prob \
        --embedding word_pos_seg --encoder transformer --mask fully_visible

--labels_num_list gives each task's number of labels, in the order of run_classifier_mt.py's
--dataset_path_list. Every row of --test_path (``text_a``, and ``text_b`` for pairs) is encoded once and
every task's head predicts it. The prediction file (TSV with a header) has, as UER-py's, one column per kind
with the tasks separated by ``|``: ``label`` (e.g. ``1|0``), and on request ``logits`` and ``prob``
(space-separated values per task).
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

import numpy as np
import torch
from torch import nn

from uer import opts
from uer.api import resolve_device
from uer.cli.run_classifier_infer import format_values
from uer.config import parse_args_with_config
from uer.finetune.builders import encoder_from_args, tokenizer_from_args
from uer.finetune.classification import read_classification, softmax
from uer.finetune.contract import HeadOutput, stack_outputs
from uer.finetune.heads import MultitaskClassifier, encode_and_pool
from uer.finetune.loop import predict
from uer.model_loader import load_model_weights
from uer.tools.common import ToolError, check_outputs_are_not_inputs, run_tool, write_text
from uer.utils.logging import setup_logging_from_args
from uer.utils.runtime import set_threads
from uer.utils.ranges import positive_int

logger = logging.getLogger("run_classifier_mt_infer")


class AllTaskLogits(nn.Module):
    """A multi-task classifier read by every head at once (the encoder runs once per batch): outputs
    ``task_0``, ``task_1``, ... hold each task's logits [batch_size x labels_num]."""

    def __init__(self, model: MultitaskClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> HeadOutput:
        m = self.model
        pooled = encode_and_pool(m.embedding, m.encoder, batch["src"], batch["seg"], m.pooling)
        return HeadOutput(None, {f"task_{i}": layer_2(torch.tanh(layer_1(pooled)))
                                 for i, (layer_1, layer_2) in enumerate(zip(m.output_layers_1, m.output_layers_2))})


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=opts.HelpFormatter)
    opts.add_inference_options(parser)
    parser.add_argument("--labels_num_list", type=positive_int, nargs="+", required=True,
                        help="Number of labels of each task, in training order.")
    parser.add_argument("--output_logits", action="store_true", help="Add a 'logits' column.")
    parser.add_argument("--output_prob", action="store_true", help="Add a 'prob' column (softmax per task).")
    opts.add_tokenizer_options(parser)
    opts.add_model_options(parser)
    opts.add_classifier_options(parser)
    opts.add_runtime_options(parser)
    return parser


def format_predictions(per_task: Sequence[np.ndarray], output_logits: bool, output_prob: bool) -> str:
    probs = [softmax(task) for task in per_task]
    header = ["label"] + (["logits"] if output_logits else []) + (["prob"] if output_prob else [])
    lines = ["\t".join(header)]
    for i in range(len(per_task[0])):
        row = ["|".join(str(int(task[i].argmax())) for task in per_task)]
        if output_logits:
            row.append("|".join(format_values(task[i]) for task in per_task))
        if output_prob:
            row.append("|".join(format_values(task[i]) for task in probs))
        lines.append("\t".join(row))
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None, prog: str = "run_classifier_mt_infer.py") -> None:
    def body(argv: Sequence[str] | None) -> None:
        args = parse_args_with_config(build_parser(prog), list(sys.argv[1:] if argv is None else argv))
        setup_logging_from_args(args)
        set_threads(args.threads)
        if min(args.labels_num_list) < 1:
            raise ToolError(f"--labels_num_list: every task needs at least one label, got {args.labels_num_list}")
        check_outputs_are_not_inputs([("--prediction_path", args.prediction_path)],
                                     [("--test_path", args.test_path), ("--load_model_path", args.load_model_path),
                                      ("--vocab_path", args.vocab_path)])
        device = resolve_device(args.device)
        tokenizer = tokenizer_from_args(args)
        cfg, embedding, encoder = encoder_from_args(args, len(tokenizer.vocab))
        model = MultitaskClassifier(embedding, encoder, cfg.hidden_size, args.labels_num_list, args.pooling)
        load_model_weights(model, args.load_model_path, strict_prefixes=("",))  # every key, heads included
        data = read_classification(args.test_path, tokenizer, args.seq_length, with_labels=False)
        predictions = predict(AllTaskLogits(model).to(device), data, args.batch_size, tokenizer.vocab.pad_id, device)
        per_task = [stack_outputs(predictions, f"task_{i}") if predictions else np.zeros((0, n), np.float32)
                    for i, n in enumerate(args.labels_num_list)]
        write_text(args.prediction_path, format_predictions(per_task, args.output_logits, args.output_prob))
        logger.info("predicted %d rows of %s for %d tasks into %s", len(data), args.test_path,
                    len(args.labels_num_list), args.prediction_path)

    run_tool(prog, body, argv)
