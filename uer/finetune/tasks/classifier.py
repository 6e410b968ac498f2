"""Classification (run_classifier.py, inference/run_classifier_infer.py, the prediction server): single texts
or pairs, UER-py's two-layer head over the pooled encoder output, accuracy / per-label P/R/F1 / macro F1.

File format (UER-py): a header row naming the columns, then one example per line, tab-separated.
``label`` is an integer in 0 .. n-1; ``text_a`` is the text, ``text_b`` the second text of a pair; with
``--soft_targets``, ``logits`` holds the teacher's logits separated by spaces. Other columns are ignored.
The head's attribute names are checkpoint keys as UER-py names them (``output_layer_1``/``output_layer_2``),
so fine-tuned models move both ways between UER-py and this project.
"""
from __future__ import annotations

import argparse
import logging
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from uer.data.finetune_data import (DataError, Instances, encode_pair, parse_decimal, parse_integer, parse_label,
                                    read_tsv_lines)
from uer.finetune.adversarial import add_adversarial_options
from uer.finetune.contract import EvalSet, Evaluation, HeadOutput, Prediction, stack_outputs
from uer.finetune.tasks.base import InferenceData, Task, TrainingData, register_task
from uer.layers.pooling import encode_and_pool
from uer.names import POOLINGS
from uer.utils.io import atomic_write_text, read_lines
from uer.finetune.metrics import classification_report
from uer.text.tokenizers import Tokenizer
from uer.utils.ranges import positive_int, probability

logger = logging.getLogger("uer.finetune")


def count_labels(path: str, soft_targets: bool = False) -> int:
    """Number of labels of a training file: the largest label + 1 (labels are 0 .. n-1).

    With ``soft_targets``, also the width of the teacher's logits: a teacher that never predicts the last
    label still gives it a logit, and the student must have as many outputs.
    """
    columns, rows, lines = read_tsv_lines(path, required=("label",))
    labels = {parse_label(row[columns["label"]], path, line) for row, line in zip(rows, lines)}
    if not labels:
        raise DataError("no examples (only a header)", path)
    if soft_targets and "logits" in columns:
        return max(max(labels) + 1, len(rows[0][columns["logits"]].split()))
    return max(labels) + 1


def has_text_b(path: str) -> bool:
    """Whether a classification file holds pairs (its header names ``text_b``)."""
    for _, header in read_lines(path):
        return "text_b" in {name.strip() for name in header.split("\t")}
    return False


def check_pairs(columns: dict[str, int], path: str, pairs: bool | None, pairs_from: str | None) -> None:
    """A dev, test or inference file must hold pairs exactly when the training file did (``pairs``; None: no
    check): otherwise its texts would be read as something the model never saw."""
    if pairs is not None and pairs != ("text_b" in columns):
        trained = f"the training file {pairs_from}" if pairs_from else "the training file"
        if pairs:
            raise DataError(f"no 'text_b' column, but {trained} has one (pairs): every file of a task needs the "
                            "same columns; add text_b", path, 1)
        raise DataError(f"a 'text_b' column, but {trained} has none (single texts): every file of a task needs "
                        "the same columns", path, 1)


def read_classification(path: str, tokenizer: Tokenizer, seq_length: int, labels_num: int | None = None,
                        with_labels: bool = True, soft_targets: bool = False,
                        extra_int_columns: tuple[str, ...] = (), pairs: bool | None = None,
                        pairs_from: str | None = None,
                        closing_sep: bool = True) -> Instances:
    """Encode a classification file; labels (when asked) must lie below ``labels_num``.

    Fields: ``label`` int64, ``soft_tgt`` float32 [N x labels_num] with ``soft_targets``, and one int64
    field per name in ``extra_int_columns`` (e.g. ``qid`` for DBQA). ``pairs`` (when not None) says whether
    the model was trained on pairs (``pairs_from`` names that training file): a dev or test file must then
    have ``text_b`` too, or lack it too, else its texts would be read as something the model never saw.
    ``closing_sep``: single texts as ``[CLS] a [SEP]`` (default) or ``[CLS] a`` (see :func:`encode_pair`).
    """
    required = ("text_a",) + (("label",) if with_labels else ()) + (("logits",) if soft_targets else ())
    required += tuple(extra_int_columns)
    try:
        columns, rows, lines = read_tsv_lines(path, required=required)
    except DataError as err:
        if soft_targets and "'logits'" in str(err):
            raise DataError(f"{err}. --soft_targets trains on the teacher's logits: make the training file with "
                            "inference/run_classifier_infer.py --output_logits (see docs/finetuning.md)") from None
        raise
    check_pairs(columns, path, pairs, pairs_from)
    a, b = columns["text_a"], columns.get("text_b")
    sequences = [encode_pair(tokenizer, row[a], None if b is None else row[b], seq_length, closing_sep) for row in rows]
    fields: dict[str, np.ndarray] = {}
    if with_labels:
        labels = np.array([parse_label(row[columns["label"]], path, line) for row, line in zip(rows, lines)],
                          dtype=np.int64)
        if labels_num is not None and len(labels) and labels.max() >= labels_num:
            row = int(np.argmax(labels >= labels_num))
            raise DataError(f"label {labels[row]} is not below the number of labels {labels_num} (taken from the "
                            "training data: labels are 0 .. n-1)", path, lines[row])
        fields["label"] = labels
    if soft_targets:
        fields["soft_tgt"] = _read_logits(path, rows, lines, columns["logits"], labels_num)
    for name in extra_int_columns:
        values = []
        for row, line in zip(rows, lines):
            values.append(parse_integer(row[columns[name]], f"column {name!r}:", path, line))
        fields[name] = np.array(values, dtype=np.int64)
    return Instances.from_sequences(sequences, fields)


def _read_logits(path: str, rows: list[list[str]], lines: list[int], column: int, labels_num: int | None) -> np.ndarray:
    out = []
    for row, line in zip(rows, lines):
        values = [parse_decimal(v, "logit", path, line) for v in row[column].split()]
        if labels_num is not None and len(values) != labels_num:
            raise DataError(f"{len(values)} logits for {labels_num} labels", path, line)
        out.append(values)
    return np.asarray(out, dtype=np.float32)


def stacked_logits(predictions: list[Prediction], labels_num: int) -> np.ndarray:
    """[N x labels_num] float32: the classifier's logits of every instance, in file order."""
    if not predictions:
        return np.zeros((0, labels_num), dtype=np.float32)
    return stack_outputs(predictions, "logits")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities of each row of ``logits`` [n x labels_num] (float64, overflow-safe)."""
    exp = np.exp(logits - logits.max(-1, keepdims=True), dtype=np.float64)
    return exp / exp.sum(-1, keepdims=True)


def classification_metric(labels_num: int):
    """Metric for :class:`uer.finetune.loop.EvalSet`: accuracy, per-label P/R/F1, macro F1, confusion."""

    def metric(predictions: list[Prediction], data: Instances) -> Evaluation:
        report = classification_report(data.fields["label"], stacked_logits(predictions, labels_num).argmax(-1),
                                       labels_num)
        return Evaluation(report.scores(), report.summary(), report.format())

    return metric


# ------------------------------------------------------------------------------------------------------
# the head

def classification_loss(logits: torch.Tensor, label: torch.Tensor, soft_tgt: torch.Tensor | None,
                        soft_alpha: float) -> torch.Tensor:
    """Per-instance loss: cross-entropy to the hard label, or with soft targets (distillation)
    ``soft_alpha * MSE(logits, teacher logits) + (1 - soft_alpha) * cross-entropy``.

    The MSE is averaged over the labels of an instance, so its batch mean equals UER-py's ``nn.MSELoss()``.
    """
    logits = logits.float()
    loss = F.cross_entropy(logits, label, reduction="none")
    if soft_tgt is not None:
        mse = (logits - soft_tgt.float()).pow(2).mean(dim=-1)
        loss = soft_alpha * mse + (1.0 - soft_alpha) * loss
    return loss


def classification_output(logits: torch.Tensor, batch: dict[str, torch.Tensor], soft_alpha: float) -> HeadOutput:
    """The contract's output of a classifier: per-instance loss and accuracy statistics when the batch has
    labels, the logits always."""
    if "label" not in batch:
        return HeadOutput(None, {"logits": logits})
    label = batch["label"]
    loss = classification_loss(logits, label, batch.get("soft_tgt"), soft_alpha)
    correct = (logits.argmax(-1) == label).float()
    return HeadOutput(loss, {"logits": logits}, {"correct": correct, "count": torch.ones_like(correct)})


class Classifier(nn.Module):
    """Pooled encoder output -> tanh(output_layer_1) -> output_layer_2 -> logits (UER-py's classifier)."""

    def __init__(self, embedding: nn.Module, encoder: nn.Module, hidden_size: int, labels_num: int,
                 pooling: str = "first", soft_alpha: float = 0.5) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
        self.embedding = embedding
        self.encoder = encoder
        self.pooling = pooling
        self.labels_num = labels_num
        self.soft_alpha = soft_alpha
        self.output_layer_1 = nn.Linear(hidden_size, hidden_size)
        self.output_layer_2 = nn.Linear(hidden_size, labels_num)

    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """[batch_size x labels_num]"""
        pooled = encode_and_pool(self.embedding, self.encoder, batch["src"], batch["seg"], self.pooling)
        return self.output_layer_2(torch.tanh(self.output_layer_1(pooled)))

    def forward(self, batch: dict[str, torch.Tensor]) -> HeadOutput:
        return classification_output(self.logits(batch), batch, self.soft_alpha)


# ------------------------------------------------------------------------------------------------------
# options, prediction file, the task

def add_pooling_option(parser) -> None:
    parser.add_argument("--pooling", choices=POOLINGS, default="first",
                        help="How the encoder output becomes one vector: first token ([CLS]), mean, max or last token.")


def add_classifier_options(parser: argparse.ArgumentParser) -> None:
    """The classifier head's flags (classification, DBQA, cross-validation, multi-task; training and inference)."""
    group = parser.add_argument_group("classifier")
    add_pooling_option(group)
    group.add_argument("--soft_targets", action="store_true",
                       help="Distillation: also fit the teacher's logits (training file column 'logits').")
    group.add_argument("--soft_alpha", type=probability, default=0.5,
                       help="Weight of the soft-target MSE; the hard-label cross-entropy gets 1 - soft_alpha.")


def add_prediction_columns_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output_logits", action="store_true", help="Add a 'logits' column.")
    parser.add_argument("--output_prob", action="store_true", help="Add a 'prob' column (softmax of the logits).")


def format_values(values: np.ndarray) -> str:
    return " ".join(f"{v:.7g}" for v in values)


def prediction_rows(logits: np.ndarray, output_logits: bool, output_prob: bool,
                    probs: np.ndarray | None = None) -> str:
    """The prediction file: a header, then per row the label (argmax), optionally logits and probabilities."""
    probs = softmax(logits) if probs is None else probs
    header = ["label"] + (["logits"] if output_logits else []) + (["prob"] if output_prob else [])
    lines = ["\t".join(header)]
    for i, label in enumerate(probs.argmax(-1)):
        row = [str(int(label))]
        if output_logits:
            row.append(format_values(logits[i]))
        if output_prob:
            row.append(format_values(probs[i]))
        lines.append("\t".join(row))
    return "\n".join(lines) + "\n"


class ClassifierTask(Task):
    name = "classifier"
    summary = "single texts or pairs -> one of n labels (run_classifier.py)"
    train_script = "run_classifier.py"
    infer_script = "run_classifier_infer.py"
    train_doc = r"""Fine-tune a classifier (two feed-forward layers over the pooled encoder output) on single texts or pairs.

    python3 run_classifier.py --pretrained_model_path models/google_zh_model.bin --vocab_path models/google_zh_vocab.txt \
        --train_path datasets/douban_book_review/train.tsv --dev_path datasets/douban_book_review/dev.tsv \
        --test_path datasets/douban_book_review/test.tsv \
        --epochs_num 3 --batch_size 64 --embedding word_pos_seg --encoder transformer --mask fully_visible

Files: a header row naming the columns (``label``, ``text_a``, and ``text_b`` for pairs), tab-separated.
The number of labels is read from the training set. After each epoch the dev set is evaluated and the
best model so far written to --output_model_path; the test set is evaluated with that model at the end.
Distillation: --soft_targets --soft_alpha 0.5 with a training file that has the teacher's ``logits``; or
layer distillation from a fine-tuned teacher run alongside (ERNIE tiny, docs/ernie.md): --teacher_model_path
--teacher_config_path --distill_losses hidden attention logits.
"""
    infer_doc = r"""Predict labels with a model fine-tuned by run_classifier.py (or run_dbqa.py).

    python3 inference/run_classifier_infer.py --load_model_path models/finetuned_model.bin \
        --vocab_path models/google_zh_vocab.txt --test_path datasets/douban_book_review/test_nolabel.tsv \
        --prediction_path datasets/douban_book_review/prediction.tsv --labels_num 2 \
        --seq_length 128 --output_logits --output_prob \
        --embedding word_pos_seg --encoder transformer --mask fully_visible

Reads ``text_a`` (and ``text_b`` for pairs) by column name; other columns, a ``label`` included, are
ignored. Writes a TSV with a header: ``label``, then ``logits`` (--output_logits) and ``prob``
(--output_prob), each a space-separated list with one value per label. Pasted next to the input file,
it makes the training file of a distilled student (run_classifier.py --soft_targets).
"""
    primary = "acc"
    serve_backends = ("torch", "onnxruntime")
    input_options = ("teacher_model_path", "teacher_config_path")

    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser, mode: str) -> None:
        if mode != "train":
            parser.add_argument("--labels_num", type=positive_int, default=None,
                                help="Number of labels of the model (read from its record MODEL.json when omitted).")
        if mode == "infer":
            add_prediction_columns_options(parser)
        add_classifier_options(parser)
        if mode == "train":
            from uer.distill import add_distillation_options

            add_distillation_options(parser)
            add_adversarial_options(parser)

    @classmethod
    def check_options(cls, args: argparse.Namespace, mode: str) -> None:
        from uer.errors import UsageError

        if mode != "train" and args.labels_num is not None and args.labels_num < 1:
            raise UsageError(f"--labels_num must be at least 1, got {args.labels_num}")
        if mode == "infer" and args.labels_num is None:
            raise UsageError("give --labels_num (the model's number of labels; a model fine-tuned by this project "
                             "records it in MODEL.json next to the model file)")

    def __init__(self, args: argparse.Namespace, tokenizer: Tokenizer) -> None:
        super().__init__(args, tokenizer)
        self.labels_num: int | None = getattr(args, "labels_num", None)
        self.pairs: bool | None = None

    def read(self, path: str, **kw: Any) -> Instances:
        return read_classification(path, self.tokenizer, self.args.seq_length, self.labels_num,
                                   closing_sep=self.closing_sep, **kw)

    def metric(self):
        return classification_metric(self.labels_num)

    def eval_set(self, name: str, data: Instances) -> EvalSet:
        return EvalSet(name, data, self.metric(), self.primary)

    def read_training(self) -> TrainingData:
        args = self.args
        self.labels_num = count_labels(args.train_path, args.soft_targets)
        self.pairs = has_text_b(args.train_path)
        train = self.read(args.train_path, soft_targets=args.soft_targets)
        dev = self.read(args.dev_path, pairs=self.pairs, pairs_from=args.train_path)
        test = self.read(args.test_path, pairs=self.pairs, pairs_from=args.train_path) if args.test_path else None
        return TrainingData(train, [self.eval_set("dev", dev)], [self.eval_set("test", test)] if test else [])

    def model_outputs(self) -> dict[str, Any]:
        return {"labels_num": self.labels_num}

    def describe(self, data: TrainingData) -> str:
        args = self.args
        return "%d labels (from %s); %s pooling%s" % (
            self.labels_num, args.train_path, args.pooling,
            f"; soft targets, alpha {args.soft_alpha}" if args.soft_targets else "")

    def build_model(self, pretrained: bool) -> nn.Module:
        from uer.finetune.builders import encoder_from_args, init_head, load_pretrained

        cfg, embedding, encoder = encoder_from_args(self.args, len(self.tokenizer.vocab))
        model = Classifier(embedding, encoder, cfg.hidden_size, self.labels_num, self.args.pooling,
                           getattr(self.args, "soft_alpha", 0.5))
        if pretrained:
            init_head(model)
            load_pretrained(model, self.args.pretrained_model_path)
            self.attach_teacher(model)
        return model

    def attach_teacher(self, model: nn.Module) -> None:
        """--teacher_model_path: the student learns from a fine-tuned teacher classifier too (uer.distill)."""
        from uer.distill import attach_teacher_from_args, check_distillation_args
        from uer.finetune.builders import encoder_from_args

        if not hasattr(self.args, "teacher_model_path") or not check_distillation_args(self.args):
            return  # (the cross-validation task builds classifiers without these options)

        def build(options: argparse.Namespace) -> nn.Module:
            cfg, embedding, encoder = encoder_from_args(options, len(self.tokenizer.vocab))
            return Classifier(embedding, encoder, cfg.hidden_size, self.labels_num, options.pooling)

        logger.info("%s", attach_teacher_from_args(model, self.args, build))

    def read_inference(self, path: str) -> InferenceData:
        return InferenceData(read_classification(path, self.tokenizer, self.args.seq_length, with_labels=False,
                                                 closing_sep=self.closing_sep))

    def write_predictions(self, path: str, predictions: list[Prediction], data: InferenceData) -> str:
        logits = stacked_logits(predictions, self.labels_num)
        atomic_write_text(path, prediction_rows(logits, self.args.output_logits, self.args.output_prob))
        return f"predicted {len(data.instances)} instances of {self.args.test_path} into {path}"

    def service(self, device, max_batch_size: int):
        """Labels, probabilities and logits (torch, or the ONNX export of scripts/export_onnx.py --kind classifier)."""
        from uer.errors import UsageError
        from uer.serving.backends import ClassifierService, OnnxRunner, TorchRunner
        from uer.serving.modules import ClassifierLogits

        args = self.args
        if args.backend == "torch":
            if self.labels_num is None:
                raise UsageError("give --labels_num: the number of labels the classifier was trained with")
            classifier = self.load_model(args.load_model_path)
            runner, model = TorchRunner(ClassifierLogits(classifier).eval(), device), args.load_model_path
        else:
            runner = OnnxRunner(args.onnx_path, args.threads, device)
            meta = runner.check("classifier", len(self.tokenizer.vocab), args.seq_length)
            if self.labels_num is not None and self.labels_num != int(meta["labels_num"]):
                raise UsageError(f"{args.onnx_path} has {meta['labels_num']} labels; --labels_num {self.labels_num} differs")
            self.labels_num, model = int(meta["labels_num"]), args.onnx_path
        info = {"model": model, "task": self.name, "device": str(device), "threads": args.threads}
        return ClassifierService(self.tokenizer, args.seq_length, runner, max_batch_size, self.labels_num, info,
                                 closing_sep=self.closing_sep)


register_task(ClassifierTask)
