"""Classification data and metric shared by run_classifier.py, run_classifier_cv.py, run_classifier_mt.py,
run_dbqa.py and inference/run_classifier_infer.py.

File format (UER-py): a header row naming the columns, then one example per line, tab-separated.
``label`` is an integer in 0 .. n-1; ``text_a`` is the text, ``text_b`` the second text of a pair; with
``--soft_targets``, ``logits`` holds the teacher's logits separated by spaces. Other columns are ignored.
"""
from __future__ import annotations

import numpy as np

from uer.data.finetune_data import DataError, Instances, encode_pair, parse_label, read_tsv
from uer.finetune.loop import Evaluation
from uer.finetune.metrics import classification_report
from uer.text.tokenizers import Tokenizer


def count_labels(path: str, soft_targets: bool = False) -> int:
    """Number of labels of a training file: the largest label + 1 (labels are 0 .. n-1).

    With ``soft_targets``, also the width of the teacher's logits: a teacher that never predicts the last
    label still gives it a logit, and the student must have as many outputs.
    """
    columns, rows = read_tsv(path, required=("label",))
    labels = {parse_label(row[columns["label"]], path, i + 1) for i, row in enumerate(rows)}
    if not labels:
        raise DataError(f"{path}: no examples")
    if soft_targets and "logits" in columns:
        return max(max(labels) + 1, len(rows[0][columns["logits"]].split()))
    return max(labels) + 1


def read_classification(path: str, tokenizer: Tokenizer, seq_length: int, labels_num: int | None = None,
                        with_labels: bool = True, soft_targets: bool = False,
                        extra_int_columns: tuple[str, ...] = ()) -> Instances:
    """Encode a classification file; labels (when asked) must lie below ``labels_num``.

    Fields: ``label`` int64, ``soft_tgt`` float32 [N x labels_num] with ``soft_targets``, and one int64
    field per name in ``extra_int_columns`` (e.g. ``qid`` for DBQA).
    """
    required = ("text_a",) + (("label",) if with_labels else ()) + (("logits",) if soft_targets else ())
    required += tuple(extra_int_columns)
    try:
        columns, rows = read_tsv(path, required=required)
    except DataError as err:
        if soft_targets and "'logits'" in str(err):
            raise DataError(f"{err}. --soft_targets trains on the teacher's logits: make the training file with "
                            "inference/run_classifier_infer.py --output_logits (see README)") from None
        raise
    a, b = columns["text_a"], columns.get("text_b")
    sequences = [encode_pair(tokenizer, row[a], None if b is None else row[b], seq_length) for row in rows]
    fields: dict[str, np.ndarray] = {}
    if with_labels:
        labels = np.array([parse_label(row[columns["label"]], path, i + 1) for i, row in enumerate(rows)], dtype=np.int64)
        if labels_num is not None and len(labels) and labels.max() >= labels_num:
            row = int(np.argmax(labels >= labels_num)) + 1
            raise DataError(f"{path}: row {row}: label {labels[row - 1]} is not below the number of labels "
                            f"{labels_num} (taken from the training data)")
        fields["label"] = labels
    if soft_targets:
        fields["soft_tgt"] = _read_logits(path, rows, columns["logits"], labels_num)
    for name in extra_int_columns:
        try:
            fields[name] = np.array([int(row[columns[name]]) for row in rows], dtype=np.int64)
        except ValueError as err:
            raise DataError(f"{path}: column {name!r} must hold integers ({err})") from None
    return Instances.from_sequences(sequences, fields)


def _read_logits(path: str, rows: list[list[str]], column: int, labels_num: int | None) -> np.ndarray:
    out = []
    for i, row in enumerate(rows, start=1):
        try:
            values = [float(v) for v in row[column].split()]
        except ValueError:
            raise DataError(f"{path}: row {i}: logits {row[column]!r} are not space-separated numbers") from None
        if labels_num is not None and len(values) != labels_num:
            raise DataError(f"{path}: row {i}: {len(values)} logits for {labels_num} labels")
        out.append(values)
    return np.asarray(out, dtype=np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities of each row of ``logits`` [n x labels_num] (float64, overflow-safe)."""
    exp = np.exp(logits - logits.max(-1, keepdims=True), dtype=np.float64)
    return exp / exp.sum(-1, keepdims=True)


def classification_metric(labels_num: int):
    """Metric for :class:`uer.finetune.loop.EvalSet`: accuracy, per-label P/R/F1, macro F1, confusion."""

    def metric(logits: np.ndarray, data: Instances) -> Evaluation:
        report = classification_report(data.fields["label"], logits.argmax(-1), labels_num)
        return Evaluation(report.scores(), report.summary(), report.format())

    return metric
