"""Evaluation metrics of the fine-tuning tasks: classification (accuracy, per-label P/R/F1, macro F1,
confusion matrix) and ranking (MRR and MAP grouped by question, for DBQA).

Pure numpy, no torch: the tests check them against worked examples.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Sequence

import numpy as np


def confusion_matrix(gold: Sequence[int] | np.ndarray, pred: Sequence[int] | np.ndarray, labels_num: int) -> np.ndarray:
    """[labels_num x labels_num] counts; row = gold label, column = predicted label.

    (UER-py prints the transpose, predictions as rows; we follow the sklearn convention and say so.)
    """
    gold, pred = np.asarray(gold, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    if gold.shape != pred.shape:
        raise ValueError(f"gold and pred differ in length: {gold.shape} vs {pred.shape}")
    for name, values in (("gold", gold), ("predicted", pred)):
        if values.size and (values.min() < 0 or values.max() >= labels_num):
            raise ValueError(f"{name} labels must lie in [0, {labels_num}), found {values.min()}..{values.max()}")
    return np.bincount(gold * labels_num + pred, minlength=labels_num * labels_num).reshape(labels_num, labels_num)


@dataclass(frozen=True)
class ClassificationReport:
    """Accuracy, per-label precision/recall/F1/support, macro F1 and the confusion matrix."""

    correct: int
    total: int
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    f1: tuple[float, ...]
    support: tuple[int, ...]
    macro_f1: float
    confusion: np.ndarray

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def scores(self) -> dict[str, float]:
        return {"acc": self.accuracy, "macro_f1": self.macro_f1}

    def summary(self) -> str:
        """One line; the accuracy part keeps UER-py's wording."""
        return f"Acc. (Correct/Total): {self.accuracy:.4f} ({self.correct}/{self.total})  Macro F1: {self.macro_f1:.4f}"

    def format(self) -> str:
        """Multi-line report: the summary, per-label precision/recall/F1/support, the confusion matrix."""
        lines = [self.summary()]
        lines.append("  label  precision  recall      f1  support")
        for i, (p, r, f, s) in enumerate(zip(self.precision, self.recall, self.f1, self.support)):
            lines.append(f"  {i:5d}  {p:9.4f}  {r:6.4f}  {f:6.4f}  {s:7d}")
        width = max(5, len(str(int(self.confusion.max()))) if self.confusion.size else 1)
        lines.append("  confusion matrix (rows: gold label, columns: predicted label):")
        lines.append("  " + " " * 6 + "".join(f"{j:>{width + 1}d}" for j in range(self.confusion.shape[1])))
        for i, row in enumerate(self.confusion):
            lines.append(f"  {i:5d} " + "".join(f"{int(v):>{width + 1}d}" for v in row))
        return "\n".join(lines)


def classification_report(gold: Sequence[int] | np.ndarray, pred: Sequence[int] | np.ndarray,
                          labels_num: int) -> ClassificationReport:
    """Metrics of predicted labels against gold labels.

    Precision of a label nobody predicted, or recall of a label absent from gold, is 0 (not NaN); F1 is 0
    when precision + recall is 0. Macro F1 averages over the labels that occur in gold or in the
    predictions (as scikit-learn does): a label that occurs in neither has no defined F1, and counting it as
    0 would make a fold without that label look worse than it is.
    """
    confusion = confusion_matrix(gold, pred, labels_num)
    true_pos = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0).astype(np.float64)
    actual = confusion.sum(axis=1).astype(np.float64)
    precision = np.divide(true_pos, predicted, out=np.zeros(labels_num), where=predicted > 0)
    recall = np.divide(true_pos, actual, out=np.zeros(labels_num), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(labels_num), where=denom > 0)
    present = (predicted > 0) | (actual > 0)
    macro_f1 = float(f1[present].mean()) if present.any() else 0.0
    return ClassificationReport(
        correct=int(true_pos.sum()), total=int(confusion.sum()), precision=tuple(map(float, precision)),
        recall=tuple(map(float, recall)), f1=tuple(map(float, f1)), support=tuple(int(a) for a in actual),
        macro_f1=macro_f1, confusion=confusion)


@dataclass(frozen=True)
class RankingReport:
    """MRR and MAP over the questions that have at least one correct candidate."""

    mrr: float
    map: float
    questions: int          # questions scored
    without_answer: int     # questions skipped: no candidate is labelled correct

    def scores(self) -> dict[str, float]:
        return {"mrr": self.mrr, "map": self.map}

    def summary(self) -> str:
        skipped = f" ({self.without_answer} without a correct candidate, not scored)" if self.without_answer else ""
        return f"Mean Reciprocal Rank: {self.mrr:.4f}  MAP: {self.map:.4f}  over {self.questions} questions{skipped}"


def ranking_report(qids: Sequence[Hashable], labels: Sequence[int] | np.ndarray,
                   scores: Sequence[float] | np.ndarray) -> RankingReport:
    """MRR and MAP of candidate answers grouped by question id.

    Candidates of a question are ranked by descending score. Ties are broken against the model: among
    equal scores, incorrect candidates rank first. (UER-py breaks ties in the model's favour, so a model
    that gives every candidate the same score gets MRR 1.0; here it gets the worst rank.) Questions with
    no correct candidate have no reciprocal rank or precision to average; they are left out of both
    means and counted in ``without_answer``. Rows of a question need not be consecutive.
    """
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    if not (len(qids) == len(labels) == len(scores)):
        raise ValueError(f"qids, labels and scores differ in length: {len(qids)}, {len(labels)}, {len(scores)}")
    groups: dict[Hashable, list[int]] = {}
    for row, qid in enumerate(qids):
        groups.setdefault(qid, []).append(row)
    reciprocal_ranks, average_precisions, without_answer = [], [], 0
    for rows in groups.values():
        rel = labels[rows] > 0
        if not rel.any():
            without_answer += 1
            continue
        # lexsort: last key is primary -> by score descending, then incorrect (rel=False) first
        order = np.lexsort((rel, -scores[rows]))
        ranked = rel[order]
        hits = np.flatnonzero(ranked) + 1  # 1-based ranks of the correct candidates
        reciprocal_ranks.append(1.0 / hits[0])
        average_precisions.append(float(np.mean(np.arange(1, len(hits) + 1) / hits)))
    scored = len(reciprocal_ranks)
    return RankingReport(mrr=float(np.mean(reciprocal_ranks)) if scored else 0.0,
                         map=float(np.mean(average_precisions)) if scored else 0.0,
                         questions=scored, without_answer=without_answer)
