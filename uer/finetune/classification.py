"""Classification data and metric shared by run_classifier.py, run_classifier_cv.py, run_classifier_mt.py,
run_dbqa.py and inference/run_classifier_infer.py.

File format (UER-py): a header row naming the columns, then one example per line, tab-separated.
``label`` is an integer in 0 .. n-1; ``text_a`` is the text, ``text_b`` the second text of a pair; with
``--soft_targets``, ``logits`` holds the teacher's logits separated by spaces. Other columns are ignored.
"""
from __future__ import annotations

import numpy as np

from uer.data.finetune_data import (DataError, Instances, encode_pair, parse_decimal, parse_integer, parse_label,
                                    read_tsv_lines)
from uer.finetune.contract import Evaluation, Prediction, stack_outputs
from uer.utils.io import read_lines
from uer.finetune.metrics import classification_report
from uer.text.tokenizers import Tokenizer


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
                            "inference/run_classifier_infer.py --output_logits (see README)") from None
        raise
    if pairs is not None and pairs != ("text_b" in columns):
        trained = f"the training file {pairs_from}" if pairs_from else "the training file"
        if pairs:
            raise DataError(f"no 'text_b' column, but {trained} has one (pairs): every file of a task needs the "
                            "same columns; add text_b", path, 1)
        raise DataError(f"a 'text_b' column, but {trained} has none (single texts): every file of a task needs "
                        "the same columns", path, 1)
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
