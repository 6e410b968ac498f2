"""Metric functions against worked examples (numbers computed by hand in the comments)."""
from __future__ import annotations

import numpy as np
import pytest

from uer.finetune.metrics import classification_report, confusion_matrix, ranking_report


def test_confusion_matrix_rows_are_gold():
    assert confusion_matrix([0, 0, 1], [1, 1, 1], 2).tolist() == [[0, 2], [0, 1]]
    with pytest.raises(ValueError, match="lie in"):
        confusion_matrix([0, 3], [0, 0], 2)


def test_classification_report_worked_example():
    # gold 0 0 1 1 2 2 / pred 0 1 1 1 2 0
    # confusion (rows gold): [1 1 0] [0 2 0] [1 0 1]; correct 4 of 6
    # precision: 1/2, 2/3, 1/1   recall: 1/2, 2/2, 1/2
    # f1: 0.5, 2*(2/3)*1/(5/3) = 0.8, 2*1*0.5/1.5 = 2/3   macro = (0.5 + 0.8 + 2/3) / 3
    report = classification_report([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0], 3)
    assert report.confusion.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert (report.correct, report.total) == (4, 6)
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.precision == pytest.approx((0.5, 2 / 3, 1.0))
    assert report.recall == pytest.approx((0.5, 1.0, 0.5))
    assert report.f1 == pytest.approx((0.5, 0.8, 2 / 3))
    assert report.support == (2, 2, 2)
    assert report.macro_f1 == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    text = report.format()
    assert "Acc. (Correct/Total): 0.6667 (4/6)" in text and "confusion matrix" in text


def test_macro_f1_skips_labels_absent_everywhere_but_counts_wrong_predictions():
    # label 2 occurs neither in gold nor in predictions: no defined F1, left out.
    # label 0: p 1/1, r 1/2 -> 2/3; label 1: p 1/2, r 1/1 -> 2/3; macro 2/3 (not 4/9)
    assert classification_report([0, 0, 1], [0, 1, 1], 3).macro_f1 == pytest.approx(2 / 3)
    # label 1 predicted once but never gold: precision 0, recall 0 (no gold), F1 0 -> counted
    # label 0: p 1/1, r 1/2 -> 2/3; macro (2/3 + 0) / 2
    report = classification_report([0, 0], [0, 1], 2)
    assert report.f1 == pytest.approx((2 / 3, 0.0))
    assert report.macro_f1 == pytest.approx(1 / 3)


def test_ranking_worked_example_with_ties_and_unanswered_questions():
    qids = ["q1", "q1", "q1", "q2", "q2", "q2", "q2", "q3", "q3", "q4", "q4", "q4"]
    labels = [0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0]
    scores = [0.9, 0.5, 0.7, 0.2, 0.8, 0.8, 0.1, 0.4, 0.6, 0.5, 0.5, 0.5]
    # q1: order 0.9(x) 0.7(x) 0.5(ok): first correct at rank 3 -> RR 1/3, AP 1/3
    # q2: 0.8 tie: incorrect first -> 0.8(x) 0.8(ok) 0.2(x) 0.1(ok): ranks 2, 4 -> RR 1/2, AP (1/2 + 2/4)/2 = 1/2
    # q3: no correct candidate -> not scored
    # q4: all tied -> the correct one ranks last: RR 1/3, AP 1/3
    report = ranking_report(qids, labels, scores)
    assert (report.questions, report.without_answer) == (3, 1)
    assert report.mrr == pytest.approx((1 / 3 + 1 / 2 + 1 / 3) / 3)
    assert report.map == pytest.approx((1 / 3 + 1 / 2 + 1 / 3) / 3)
    assert "1 without a correct candidate" in report.summary()


def test_ranking_perfect_and_non_consecutive_rows():
    # q rows interleaved; both correct answers on top -> RR 1, AP (1/1 + 2/2)/2 = 1
    report = ranking_report([7, 8, 7, 8, 7], [1, 0, 1, 1, 0], [0.3, 0.1, 0.9, 0.2, 0.1])
    # q7: 0.9(ok) 0.3(ok) 0.1(x) -> RR 1, AP 1 ; q8: 0.2(ok) 0.1(x) -> RR 1, AP 1
    assert report.mrr == pytest.approx(1.0) and report.map == pytest.approx(1.0)
    # a correct answer ranked 2nd and 3rd of 3: AP = (1/2 + 2/3) / 2
    report = ranking_report([1, 1, 1], [0, 1, 1], [0.9, 0.5, 0.4])
    assert report.mrr == pytest.approx(0.5) and report.map == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_ranking_without_any_answer_is_zero_not_nan():
    report = ranking_report([1, 1], [0, 0], np.array([0.1, 0.2]))
    assert (report.mrr, report.map, report.questions, report.without_answer) == (0.0, 0.0, 0, 1)
