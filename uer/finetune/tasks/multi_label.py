"""Multi-label classification (run_classifier_multi_label.py, its inference script, the prediction server): any
subset of n labels per text or cross-encoded pair, one sigmoid per label over UER-py's two-layer head, binary
cross-entropy. Dev and test print micro- and macro-F1 and UER-py's exact-match (subset) accuracy; the kept model
is the one of the best dev micro-F1 (exact match gives no credit to a half-right label set).

File format (UER-py): a header row naming the columns; ``label`` holds label ids 0 .. n-1 separated by commas
(``0,2``; an empty cell is the empty set), ``text_a`` the text, ``text_b`` the second text of a pair. The number
of labels is the largest id of the training file + 1. A label is predicted when its sigmoid exceeds
``--threshold`` (0.5); a row with none gets an empty label cell.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from uer.utils.ranges import positive_int, probability
from uer.data.finetune_data import DataError, Instances, encode_pair, read_tsv_lines
from uer.errors import UsageError
from uer.finetune.adversarial import add_adversarial_options
from uer.finetune.contract import EvalSet, Evaluation, HeadOutput, Prediction
from uer.finetune.metrics import multi_label_report
from uer.finetune.tasks.base import InferenceData, Task, TrainingData, register_task
from uer.finetune.tasks.classifier import (Classifier, add_pooling_option, add_prediction_columns_options,
                                           check_pairs, format_values, has_text_b, stacked_logits)
from uer.text.tokenizers import Tokenizer
from uer.utils.io import atomic_write_text


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Per-label probabilities (float64, overflow-safe)."""
    x = np.asarray(logits, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -x))


def parse_label_set(value: str, path: str, line: int) -> list[int]:
    """The ids of a ``label`` cell: comma-separated non-negative integers, or empty for none."""
    value = value.strip()
    if not value:
        return []
    ids = []
    for part in value.split(","):
        if not part.strip().isdigit():
            raise DataError(f"label {value!r} is not a comma-separated list of label ids (e.g. 0,2)", path, line)
        ids.append(int(part))
    if len(set(ids)) != len(ids):
        raise DataError(f"label {value!r} names a label twice", path, line)
    return ids


def read_label_sets(path: str) -> tuple[dict[str, int], list[list[str]], list[list[int]], list[int]]:
    columns, rows, lines = read_tsv_lines(path, required=("text_a", "label"))
    return columns, rows, [parse_label_set(row[columns["label"]], path, line) for row, line in zip(rows, lines)], lines


def count_label_ids(path: str) -> int:
    """Number of labels of a training file: the largest id + 1."""
    _, _, label_sets, _ = read_label_sets(path)
    ids = [i for ids in label_sets for i in ids]
    if not ids:
        raise DataError("no labels (only a header, or every label cell empty)", path)
    return max(ids) + 1


def read_multi_label(path: str, tokenizer: Tokenizer, seq_length: int, labels_num: int | None,
                     with_labels: bool = True, pairs: bool | None = None, pairs_from: str | None = None,
                     closing_sep: bool = True) -> Instances:
    """Encode a multi-label file; field ``label``: float32 [N x labels_num] 0/1 (ids must be below labels_num)."""
    if with_labels:
        columns, rows, label_sets, lines = read_label_sets(path)
    else:
        columns, rows, lines = read_tsv_lines(path, required=("text_a",))
    check_pairs(columns, path, pairs, pairs_from)
    a, b = columns["text_a"], columns.get("text_b")
    sequences = [encode_pair(tokenizer, row[a], None if b is None else row[b], seq_length, closing_sep) for row in rows]
    fields = {}
    if with_labels:
        target = np.zeros((len(rows), labels_num), dtype=np.float32)
        for r, (ids, line) in enumerate(zip(label_sets, lines)):
            for i in ids:
                if i >= labels_num:
                    raise DataError(f"label {i} is not below the number of labels {labels_num} (taken from the "
                                    "training data: ids are 0 .. n-1)", path, line)
                target[r, i] = 1.0
        fields["label"] = target
    return Instances.from_sequences(sequences, fields)


def multi_label_metric(labels_num: int, threshold: float):
    """Metric for :class:`uer.finetune.loop.EvalSet`: micro-F1 (primary), macro-F1, exact-match accuracy."""

    def metric(predictions: list[Prediction], data: Instances) -> Evaluation:
        predicted = sigmoid(stacked_logits(predictions, labels_num)) > threshold
        report = multi_label_report(data.fields["label"] > 0.5, predicted)
        return Evaluation(report.scores(), report.summary(), report.format())

    return metric


class MultiLabelClassifier(Classifier):
    """The classifier's layers (same checkpoint keys), a sigmoid per label and binary cross-entropy averaged over
    the labels of an instance (its batch mean equals UER-py's BCE over the batch)."""

    def __init__(self, embedding: nn.Module, encoder: nn.Module, hidden_size: int, labels_num: int,
                 pooling: str = "first", threshold: float = 0.5) -> None:
        super().__init__(embedding, encoder, hidden_size, labels_num, pooling)
        self.threshold = threshold

    def forward(self, batch: dict[str, torch.Tensor]) -> HeadOutput:
        logits = self.logits(batch)
        if "label" not in batch:
            return HeadOutput(None, {"logits": logits})
        target = batch["label"].float()
        loss = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none").mean(-1)
        exact = ((torch.sigmoid(logits.float()) > self.threshold) == (target > 0.5)).all(-1).float()
        return HeadOutput(loss, {"logits": logits}, {"correct": exact, "count": torch.ones_like(exact)})


class MultiLabelTask(Task):
    name = "multi_label"
    summary = "single texts or pairs -> any subset of n labels, sigmoid + BCE (run_classifier_multi_label.py)"
    train_script = "run_classifier_multi_label.py"
    infer_script = "run_classifier_multi_label_infer.py"
    train_doc = r"""Fine-tune a multi-label classifier (a sigmoid per label over the pooled encoder output, binary
cross-entropy) on single texts or pairs.

    python3 run_classifier_multi_label.py --pretrained_model_path models/google_zh_model.bin \
        --vocab_path models/google_zh_vocab.txt --config_path models/bert/base_config.json \
        --train_path datasets/legal_multi_label/train.tsv --dev_path datasets/legal_multi_label/dev.tsv \
        --test_path datasets/legal_multi_label/test.tsv --epochs_num 5 --batch_size 32 --seq_length 256

Files: a header row naming the columns; ``label`` holds comma-separated label ids (``0,2``; empty: no label),
``text_a`` the text, ``text_b`` the second text of a pair. The number of labels is the training file's largest
id + 1. Dev and test print micro-F1, macro-F1 and the exact-match accuracy (UER-py's ``Acc.``); the model of
the best dev micro-F1 is kept. A label counts as predicted when its sigmoid exceeds --threshold.
"""
    infer_doc = r"""Predict label sets with a model fine-tuned by run_classifier_multi_label.py.

    python3 inference/run_classifier_multi_label_infer.py --load_model_path models/finetuned_model.bin \
        --vocab_path models/google_zh_vocab.txt --config_path models/bert/base_config.json \
        --test_path datasets/legal_multi_label/test_nolabel.tsv \
        --prediction_path datasets/legal_multi_label/prediction.tsv --labels_num 4 --seq_length 256 --output_prob

Reads ``text_a`` (and ``text_b`` for pairs). Writes a TSV with a header: ``label`` (the ids whose sigmoid
exceeds --threshold, ascending, comma-separated; empty when none does), then ``logits`` (--output_logits) and
``prob`` (--output_prob: the sigmoid of each label, which need not sum to 1), space-separated.
"""

    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser, mode: str) -> None:
        group = parser.add_argument_group("multi-label")
        if mode != "train":
            group.add_argument("--labels_num", type=positive_int, required=True, help="Number of labels of the model.")
        if mode == "infer":
            add_prediction_columns_options(group)
        add_pooling_option(group)
        group.add_argument("--threshold", type=probability, default=0.5,
                           help="A label is predicted when its sigmoid exceeds this (dev/test scores too).")
        if mode == "train":
            add_adversarial_options(parser)

    @classmethod
    def check_options(cls, args: argparse.Namespace, mode: str) -> None:
        if not 0.0 < args.threshold < 1.0:
            raise UsageError(f"--threshold must lie strictly between 0 and 1, got {args.threshold}")
        if mode != "train" and args.labels_num < 1:
            raise UsageError(f"--labels_num must be at least 1, got {args.labels_num}")

    def __init__(self, args: argparse.Namespace, tokenizer: Tokenizer) -> None:
        super().__init__(args, tokenizer)
        self.labels_num: int | None = getattr(args, "labels_num", None)
        self.pairs: bool | None = None

    def read(self, path: str, **kw) -> Instances:
        return read_multi_label(path, self.tokenizer, self.args.seq_length, self.labels_num,
                                closing_sep=self.closing_sep, **kw)

    def eval_set(self, name: str, data: Instances) -> EvalSet:
        return EvalSet(name, data, multi_label_metric(self.labels_num, self.args.threshold), primary="micro_f1")

    def read_training(self) -> TrainingData:
        args = self.args
        self.labels_num = count_label_ids(args.train_path)
        self.pairs = has_text_b(args.train_path)
        train = self.read(args.train_path)
        dev = self.read(args.dev_path, pairs=self.pairs, pairs_from=args.train_path)
        test = self.read(args.test_path, pairs=self.pairs, pairs_from=args.train_path) if args.test_path else None
        return TrainingData(train, [self.eval_set("dev", dev)], [self.eval_set("test", test)] if test else [])

    def describe(self, data: TrainingData) -> str:
        counts = data.train.fields["label"].sum(0).astype(int).tolist()
        return "%d labels (from %s; training examples per label %s); threshold %g; %s pooling" % (
            self.labels_num, self.args.train_path, counts, self.args.threshold, self.args.pooling)

    def build_model(self, pretrained: bool) -> nn.Module:
        from uer.finetune.builders import encoder_from_args, init_head, load_pretrained

        cfg, embedding, encoder = encoder_from_args(self.args, len(self.tokenizer.vocab))
        model = MultiLabelClassifier(embedding, encoder, cfg.hidden_size, self.labels_num, self.args.pooling,
                                     self.args.threshold)
        if pretrained:
            init_head(model)
            load_pretrained(model, self.args.pretrained_model_path)
        return model

    def read_inference(self, path: str) -> InferenceData:
        return InferenceData(read_multi_label(path, self.tokenizer, self.args.seq_length, None, with_labels=False,
                                              closing_sep=self.closing_sep))

    def write_predictions(self, path: str, predictions: list[Prediction], data: InferenceData) -> str:
        args = self.args
        logits = stacked_logits(predictions, self.labels_num)
        probs = sigmoid(logits)
        header = ["label"] + (["logits"] if args.output_logits else []) + (["prob"] if args.output_prob else [])
        lines = ["\t".join(header)]
        for logit, prob in zip(logits, probs):
            row = [",".join(str(i) for i in np.flatnonzero(prob > args.threshold))]
            if args.output_logits:
                row.append(format_values(logit))
            if args.output_prob:
                row.append(format_values(prob))
            lines.append("\t".join(row))
        atomic_write_text(path, "\n".join(lines) + "\n")
        return f"predicted the label sets of {len(data.instances)} rows of {args.test_path} into {path}"

    def service(self, device, max_batch_size: int):
        """``{"labels", "probabilities", "logits"}`` per text (pair)."""
        from uer.serving.backends import TorchRunner
        from uer.serving.modules import ClassifierLogits
        from uer.serving.tasks import LabelSetService

        args = self.args
        runner = TorchRunner(ClassifierLogits(self.load_model(args.load_model_path)).eval(), device)
        info = {"model": args.load_model_path, "task": self.name, "device": str(device), "threads": args.threads}
        return LabelSetService(self.tokenizer, args.seq_length, runner, max_batch_size, self.labels_num,
                               args.threshold, info, closing_sep=self.closing_sep)


register_task(MultiLabelTask)
