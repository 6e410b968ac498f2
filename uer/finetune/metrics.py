"""Evaluation metrics of the fine-tuning tasks: classification (accuracy, per-label P/R/F1, macro F1,
confusion matrix), ranking (MRR and MAP grouped by question, for DBQA), entity-level P/R/F1 of tag
sequences (NER) and the official CMRC 2018 F1/EM of answer spans.

Pure numpy, no torch: the tests check them against worked examples.
"""
from __future__ import annotations

import re
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


# ------------------------------------------------------------------------------------------------------
# entity-level scores of tag sequences (run_ner.py)

def _chunk_ends(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _chunk_starts(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != type_


def extract_entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """(type, first, last) of the entities in one sentence's tags, last inclusive: the CoNLL chunking of
    conlleval and of seqeval's default (non-strict) mode, for BIO, IOBES or IOB1 tags.

    An entity starts at ``B-X``/``S-X``, at ``I-X``/``E-X`` after ``O`` or after an entity that ended,
    and wherever the type changes; so an ``I-X`` without a preceding ``B-X`` starts an entity of type X,
    ``B-X I-Y`` is two entities, and ``B-X B-X`` too. A tag without a type (``B``) has type ``_``.
    """
    entities = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, chunk in enumerate(list(tags) + ["O"]):
        tag = chunk[0] if chunk else "O"
        type_ = chunk[1:].split("-", maxsplit=1)[-1] or "_"
        if _chunk_ends(prev_tag, tag, prev_type, type_):
            entities.append((prev_type, begin, i - 1))
        if _chunk_starts(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return entities


@dataclass(frozen=True)
class EntityReport:
    """Entity-level precision, recall and F1 (micro over all types, and per type), as seqeval reports them."""

    correct: int
    predicted: int
    gold: int
    per_type: dict[str, tuple[int, int, int]]  # type -> (correct, predicted, gold)

    @staticmethod
    def _prf(correct: int, predicted: int, gold: int) -> tuple[float, float, float]:
        p = correct / predicted if predicted else 0.0
        r = correct / gold if gold else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    @property
    def precision(self) -> float:
        return self._prf(self.correct, self.predicted, self.gold)[0]

    @property
    def recall(self) -> float:
        return self._prf(self.correct, self.predicted, self.gold)[1]

    @property
    def f1(self) -> float:
        return self._prf(self.correct, self.predicted, self.gold)[2]

    def scores(self) -> dict[str, float]:
        out = {"f1": self.f1, "precision": self.precision, "recall": self.recall}
        for kind, counts in self.per_type.items():
            out[f"f1_{kind}"] = self._prf(*counts)[2]
        return out

    def summary(self) -> str:
        return (f"entity P/R/F1: {self.precision:.4f}/{self.recall:.4f}/{self.f1:.4f} "
                f"({self.correct} correct of {self.predicted} predicted, {self.gold} gold)")

    def format(self) -> str:
        lines = [self.summary(), "  type        precision  recall      f1  support"]
        for kind in sorted(self.per_type):
            c, p, g = self.per_type[kind]
            prec, rec, f1 = self._prf(c, p, g)
            lines.append(f"  {kind:10s}  {prec:9.4f}  {rec:6.4f}  {f1:6.4f}  {g:7d}")
        return "\n".join(lines)


def entity_report(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> EntityReport:
    """Entity scores over sentences of gold and predicted tags (same lengths, sentence by sentence).

    An entity counts as correct when type, first and last position all match. Equal to seqeval's
    ``precision_score``/``recall_score``/``f1_score`` and ``classification_report`` in their default mode.
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    per_type: dict[str, list[int]] = {}
    for i, (g_tags, p_tags) in enumerate(zip(gold, pred)):
        if len(g_tags) != len(p_tags):
            raise ValueError(f"sentence {i}: {len(g_tags)} gold tags but {len(p_tags)} predicted")
        g_ents, p_ents = set(extract_entities(g_tags)), set(extract_entities(p_tags))
        for kind, *_ in g_ents | p_ents:
            per_type.setdefault(kind, [0, 0, 0])
        for e in g_ents & p_ents:
            per_type[e[0]][0] += 1
        for e in p_ents:
            per_type[e[0]][1] += 1
        for e in g_ents:
            per_type[e[0]][2] += 1
    totals = [sum(v[k] for v in per_type.values()) for k in range(3)]
    return EntityReport(totals[0], totals[1], totals[2], {k: tuple(v) for k, v in per_type.items()})


# ------------------------------------------------------------------------------------------------------
# CMRC 2018 (run_cmrc.py): the official evaluation's F1 and exact match

# The official script's punctuation list. Its '……' entry is two characters and never equals the single
# character it is compared with, so '…' is not removed there, nor here.
CMRC_PUNCTUATION = frozenset("-:_*^/\\~`+=，。：？！“”；’《》·、「」（）－～『』")
_CJK = re.compile(r"[\u4e00-\u9fa5]")

# The official script splits the runs of non-Chinese characters with nltk.word_tokenize (the Treebank
# conventions of NLTK's word tokenizer; NLTK 3.9's rules). The same rules, in the same order, without the
# dependency (tests compare them with NLTK when it is installed):
_STARTING_QUOTES = [(re.compile(r"([«“‘„]|[`]+)"), r" \1 "), (re.compile(r'^\"'), r"``"),
                    (re.compile(r"(``)"), r" \1 "), (re.compile(r"([ \(\[{<])(\"|\'{2})"), r"\1 `` "),
                    (re.compile(r"(?i)(?<!\w)(\')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)"), r"\1 ")]
_PUNCTUATION = [(re.compile(r'([^\.])(\.)([\]\)}>"\'»”’ ]*+)\s*$'), r"\1 \2 \3 "),
                (re.compile(r"([:,])([^\d])"), r" \1 \2"), (re.compile(r"([:,])$"), r" \1 "),
                (re.compile(r"\.{2,}"), r" \g<0> "), (re.compile(r"[;@#$%&]"), r" \g<0> "),
                (re.compile(r"[\u2012-\u2015]"), r" \g<0> "),
                (re.compile(r'([^\.])(\.)([\]\)}>"\']*)\s*$'), r"\1 \2\3 "), (re.compile(r"[?!]"), r" \g<0> "),
                (re.compile(r"([^'])' "), r"\1 ' "), (re.compile(r"[*]"), r" \g<0> ")]
_BRACKETS = [(re.compile(r"[\]\[\(\)\{\}\<\>]"), r" \g<0> "), (re.compile(r"--"), r" -- ")]
_ENDING_QUOTES = [(re.compile(r"([»”’])"), r" \1 "), (re.compile(r"''"), " '' "), (re.compile(r'"'), " '' "),
                  (re.compile(r"\s+"), " "), (re.compile(r"([^' ])('[sS]|'[mM]|'[dD]|') "), r"\1 \2 "),
                  (re.compile(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), r"\1 \2 ")]
_CONTRACTIONS = [re.compile(p) for p in (
    r"(?i)\b(can)(?#X)(not)\b", r"(?i)\b(d)(?#X)('ye)\b", r"(?i)\b(gim)(?#X)(me)\b", r"(?i)\b(gon)(?#X)(na)\b",
    r"(?i)\b(got)(?#X)(ta)\b", r"(?i)\b(lem)(?#X)(me)\b", r"(?i)\b(more)(?#X)('n)\b", r"(?i)\b(wan)(?#X)(na)(?=\s)",
    r"(?i) ('t)(?#X)(is)\b", r"(?i) ('t)(?#X)(was)\b")]


def treebank_words(text: str) -> list[str]:
    """Words of a non-Chinese run, as NLTK's ``word_tokenize(text, preserve_line=True)`` splits it."""
    for pattern, repl in _STARTING_QUOTES + _PUNCTUATION + _BRACKETS:
        text = pattern.sub(repl, text)
    text = f" {text} "
    for pattern, repl in _ENDING_QUOTES:
        text = pattern.sub(repl, text)
    for pattern in _CONTRACTIONS:
        text = pattern.sub(r" \1 \2 ", text)
    return text.split()


def cmrc_segments(text: str, drop_punctuation: bool = True) -> list[str]:
    """The official mixed segmentation: lower-cased and stripped; each Chinese character (U+4E00..U+9FA5)
    and each listed punctuation mark is a segment, the runs of other characters are split into words."""
    out: list[str] = []
    run = ""
    for char in text.lower().strip():
        if drop_punctuation and char in CMRC_PUNCTUATION:
            continue
        if _CJK.match(char) or char in CMRC_PUNCTUATION:
            if run:
                out.extend(treebank_words(run))
                run = ""
            out.append(char)
        else:
            run += char
    if run:
        out.extend(treebank_words(run))
    return out


def _longest_common_run(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common contiguous sub-sequence (the official script's LCS is a substring)."""
    best = 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, start=1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def cmrc_f1(answers: Sequence[str], prediction: str) -> float:
    """Best F1 over the reference answers; precision and recall from the longest common run of segments."""
    best = 0.0
    pred = cmrc_segments(prediction)
    for answer in answers:
        gold = cmrc_segments(answer)
        common = _longest_common_run(gold, pred)
        if common:
            p, r = common / len(pred), common / len(gold)
            best = max(best, 2 * p * r / (p + r))
    return best


def cmrc_em(answers: Sequence[str], prediction: str) -> float:
    """1.0 when the prediction equals a reference answer after lower-casing, stripping and punctuation removal."""
    def clean(s: str) -> str:
        return "".join(c for c in s.lower().strip() if c not in CMRC_PUNCTUATION)

    pred = clean(prediction)
    return 1.0 if any(clean(a) == pred for a in answers) else 0.0


@dataclass(frozen=True)
class SpanReport:
    """CMRC 2018 scores in percent: F1, EM and their mean, over ``total`` questions (``skipped`` had no
    prediction and score 0, as in the official script)."""

    f1: float
    em: float
    total: int
    skipped: int

    @property
    def average(self) -> float:
        return (self.f1 + self.em) / 2

    def scores(self) -> dict[str, float]:
        return {"avg": self.average, "f1": self.f1, "em": self.em}

    def summary(self) -> str:
        """UER-py's run_cmrc.py line (its log parsers read it), said to be in percent."""
        return (f"scores in percent: Avg: {self.average:.4f},F1:{self.f1:.4f},EM:{self.em:.4f},"
                f"Total:{self.total},Skip:{self.skipped}")


def cmrc_report(references: dict[str, Sequence[str]], predictions: dict[str, str]) -> SpanReport:
    """Scores of ``predictions`` (question id -> answer text) against the reference answers of every question."""
    f1 = em = 0.0
    skipped = 0
    for qid, answers in references.items():
        if qid not in predictions:
            skipped += 1
            continue
        f1 += cmrc_f1(answers, str(predictions[qid]))
        em += cmrc_em(answers, str(predictions[qid]))
    total = len(references)
    return SpanReport(100.0 * f1 / max(total, 1), 100.0 * em / max(total, 1), total, skipped)


# ------------------------------------------------------------------------------------------------------
# regression: Pearson and Spearman correlation (STS-B's metrics)

def average_ranks(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """1-based ranks, ties getting the mean of the ranks they span (scipy.stats.rankdata's "average")."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # start of each run of equal values, and each run's mean rank
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    run_ranks = (starts + ends + 1) / 2.0
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(run_ranks, ends - starts)
    return ranks


def pearson(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Pearson's r; NaN when either side is constant (no correlation is defined), as scipy says."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"pearson needs two vectors of one length, got {x.shape} and {y.shape}")
    dx, dy = x - x.mean(), y - y.mean()
    denominator = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    if len(x) < 2 or denominator == 0:
        return float("nan")
    return float(np.clip((dx * dy).sum() / denominator, -1.0, 1.0))


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman's rank correlation: Pearson's r of the average ranks."""
    return pearson(average_ranks(x), average_ranks(y))


@dataclass(frozen=True)
class RegressionReport:
    """Spearman and Pearson correlation of predictions with gold scores, and the mean squared error."""

    spearman: float
    pearson: float
    mse: float
    total: int

    def scores(self) -> dict[str, float]:
        return {"spearman": self.spearman, "pearson": self.pearson, "mse": self.mse}

    def summary(self) -> str:
        return f"spearman {self.spearman:.4f}, pearson {self.pearson:.4f}, mse {self.mse:.4f} ({self.total} instances)"

    def format(self) -> str:
        return (f"Spearman corr: {self.spearman:.4f}\nPearson corr: {self.pearson:.4f}\n"
                f"MSE: {self.mse:.4f} ({self.total} instances)")


def regression_report(gold: Sequence[float] | np.ndarray, pred: Sequence[float] | np.ndarray) -> RegressionReport:
    gold, pred = np.asarray(gold, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    if gold.shape != pred.shape:
        raise ValueError(f"gold and pred differ in length: {gold.shape} vs {pred.shape}")
    mse = float(((gold - pred) ** 2).mean()) if len(gold) else float("nan")
    return RegressionReport(spearman(gold, pred), pearson(gold, pred), mse, len(gold))


# ------------------------------------------------------------------------------------------------------
# multi-label: exact-match accuracy (UER-py's), micro- and macro-F1 over the labels

@dataclass(frozen=True)
class MultiLabelReport:
    """Exact-match (subset) accuracy, micro-F1 (all label decisions pooled), macro-F1 (mean of the per-label
    F1, a label never gold nor predicted scoring 0 as scikit-learn does) and per-label P/R/F1/support."""

    correct: int
    total: int
    micro_f1: float
    macro_f1: float
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    f1: tuple[float, ...]
    support: tuple[int, ...]

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def scores(self) -> dict[str, float]:
        return {"acc": self.accuracy, "micro_f1": self.micro_f1, "macro_f1": self.macro_f1}

    def summary(self) -> str:
        return (f"micro-F1 {self.micro_f1:.4f}, macro-F1 {self.macro_f1:.4f}, exact match {self.accuracy:.4f} "
                f"({self.correct}/{self.total})")

    def format(self) -> str:
        lines = ["Report precision, recall, and f1:"]
        lines += [f"Label {i}: {p:.3f}, {r:.3f}, {f:.3f} (support {s})"
                  for i, (p, r, f, s) in enumerate(zip(self.precision, self.recall, self.f1, self.support))]
        lines.append(f"Micro F1: {self.micro_f1:.4f}")
        lines.append(f"Macro F1: {self.macro_f1:.4f}")
        lines.append(f"Acc. (Correct/Total): {self.accuracy:.4f} ({self.correct}/{self.total})")
        return "\n".join(lines)


def _ratio(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.divide(a, b, out=np.zeros_like(a), where=b > 0)


def multi_label_report(gold: np.ndarray, pred: np.ndarray) -> MultiLabelReport:
    """``gold`` and ``pred``: 0/1 indicator matrices [instances x labels]."""
    gold, pred = np.asarray(gold).astype(bool), np.asarray(pred).astype(bool)
    if gold.shape != pred.shape or gold.ndim != 2:
        raise ValueError(f"gold and pred must be indicator matrices of one shape, got {gold.shape} and {pred.shape}")
    tp = (gold & pred).sum(0)
    fp = (~gold & pred).sum(0)
    fn = (gold & ~pred).sum(0)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    micro = float(_ratio(2 * tp.sum(), 2 * tp.sum() + fp.sum() + fn.sum()))
    return MultiLabelReport(int((gold == pred).all(1).sum()), len(gold), micro,
                            float(f1.mean()) if f1.size else 0.0, tuple(_ratio(tp, tp + fp).tolist()),
                            tuple(_ratio(tp, tp + fn).tolist()), tuple(f1.tolist()), tuple((tp + fn).tolist()))
# SQuAD v1.1 / v2.0 (the official evaluation scripts' normalisation, EM and F1)

_SQUAD_PUNCTUATION = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")  # string.punctuation, as the official script
_SQUAD_ARTICLES = re.compile(r"\b(a|an|the)\b")


def squad_normalize(text: str) -> str:
    """Lower case, punctuation removed, articles a/an/the removed, whitespace collapsed (SQuAD's normalize_answer)."""
    text = "".join(ch for ch in text.lower() if ch not in _SQUAD_PUNCTUATION)
    return " ".join(_SQUAD_ARTICLES.sub(" ", text).split())


def _squad_token_f1(gold: str, prediction: str) -> float:
    gold_tokens, pred_tokens = squad_normalize(gold).split(), squad_normalize(prediction).split()
    if not gold_tokens or not pred_tokens:  # a no-answer question (v2.0): 1 only when both are empty
        return float(gold_tokens == pred_tokens)
    common: dict[str, int] = {}
    for token in gold_tokens:
        common[token] = common.get(token, 0) + 1
    same = 0
    for token in pred_tokens:
        if common.get(token, 0) > 0:
            common[token] -= 1
            same += 1
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _squad_golds(answers: Sequence[str]) -> list[str]:
    """The references of a question; a question without one (v2.0) has the empty answer as its reference."""
    golds = [a for a in answers if squad_normalize(a)]
    return golds or [""]


def squad_f1(answers: Sequence[str], prediction: str) -> float:
    return max(_squad_token_f1(gold, prediction) for gold in _squad_golds(answers))


def squad_em(answers: Sequence[str], prediction: str) -> float:
    return max(float(squad_normalize(gold) == squad_normalize(prediction)) for gold in _squad_golds(answers))


@dataclass(frozen=True)
class SquadReport:
    """SQuAD scores in percent over ``total`` questions (``no_answer`` of them without a reference answer)."""

    f1: float
    em: float
    total: int
    no_answer: int
    skipped: int

    def scores(self) -> dict[str, float]:
        return {"f1": self.f1, "em": self.em}

    def summary(self) -> str:
        extra = f" ({self.no_answer} without an answer)" if self.no_answer else ""
        skipped = f", {self.skipped} without a prediction" if self.skipped else ""
        return f"SQuAD F1/EM: {self.f1:.3f}/{self.em:.3f} over {self.total} questions{extra}{skipped}"


def squad_report(references: dict[str, Sequence[str]], predictions: dict[str, str]) -> SquadReport:
    """Official SQuAD v1.1/v2.0 EM and F1 of ``predictions`` (question id -> answer text, "" for no answer);
    a question without a prediction scores 0."""
    f1 = em = 0.0
    skipped = 0
    for qid, answers in references.items():
        if qid not in predictions:
            skipped += 1
            continue
        f1 += squad_f1(answers, str(predictions[qid]))
        em += squad_em(answers, str(predictions[qid]))
    total = len(references)
    no_answer = sum(1 for answers in references.values() if _squad_golds(answers) == [""])
    return SquadReport(100.0 * f1 / max(total, 1), 100.0 * em / max(total, 1), total, no_answer, skipped)
