"""Span-extraction reading comprehension (run_cmrc.py, inference/run_cmrc_infer.py, the server's ``--task mrc``):
SQuAD-format reader with document windows, the start/end head, answer decoding, the CMRC 2018 and SQuAD
metrics, the task.

Metric (``--metric``): the official SQuAD v1.1/v2.0 EM and F1 (answers lower-cased, punctuation and the articles
a/an/the removed, whitespace collapsed; primary F1) for English data, CMRC 2018's for Chinese; ``auto`` (the
default) takes CMRC's when at least 10% of the contexts' characters are CJK. ``--version_2_with_negative``
(SQuAD v2.0): unanswerable questions train on [CLS] and are predicted as "" when the [CLS] score exceeds the best
span's by more than ``--null_score_diff_threshold`` (HF's and Google's rule and flag).

File format: SQuAD JSON, ``{"data": [{"paragraphs": [{"context": ..., "qas": [{"id", "question",
"answers": [{"text", "answer_start"}, ...]}]}]}]}`` (CMRC 2018, DRCD, SQuAD 1.1).

Instances: ``[CLS] question [SEP] window [SEP]``, question in segment 1, the window of the context in segment
2. A context longer than one window is cut into windows of ``--seq_length - len(question) - 3`` tokens that
start every ``--doc_stride`` tokens, so every token is in at least one window. Each context token remembers
the characters it came from (token fields ``char_start``/``char_end``; -1 on the question and special tokens),
so an answer is always a substring of the original context, spaces and characters the vocabulary lacks
included. Training targets are the token positions of the first reference answer, or [CLS] (0) in a window
that does not contain it (BERT's convention).

Decoding: the best (start, end) with start <= end, at most ``--max_answer_length`` tokens (a single token
is a legal answer), score start_logit + end_logit, over every window of the question; the answer is the
context from the first character of the start token to the last character of the end token.
"""
from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from uer.data.finetune_data import Instances
from uer.data.json_files import read_json
from uer.errors import DataError, UsageError
from uer.finetune.contract import EvalSet, Evaluation, HeadOutput, Prediction
from uer.finetune.tasks.base import InferenceData, Task, TrainingData, register_task
from uer.utils.io import atomic_write_text
from uer.text.tokenizers import Tokenizer, is_chinese_char, is_punctuation, is_whitespace
from uer.finetune.metrics import cmrc_report, squad_report
from uer.utils.ranges import finite_float, positive_int

logger = logging.getLogger(__name__)

MAX_QUESTION_TOKENS = 64  # longer questions are cut (BERT's max_query_length)


@dataclass
class Question:
    qid: str
    question: str
    context: str
    answers: list[str]              # reference texts (empty for prediction files)
    answer_start: int | None        # character offset of the first reference answer, when it can be found


def read_squad(path: str, with_answers: bool = True, allow_no_answer: bool = False) -> list[Question]:
    """The questions of a SQuAD-format file, in file order. ``allow_no_answer`` (SQuAD v2.0): a labelled question
    may have no answer (``"is_impossible": true``, ``"answers": []``); its reference is the empty answer.

    Refused with the question's place and id: a non-object entry, a question id given twice (a prediction
    would be lost), an answer without a ``text`` string or with an ``answer_start`` that is not a
    non-negative integer, and, in a labelled file, an empty context or an answer that is empty or not in its
    context (it would train as "no answer"). An answer found elsewhere than at its ``answer_start`` is taken
    at the occurrence nearest to it (a warning counts them).
    """
    doc = read_json(path, "SQuAD-format file")
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataError("expected SQuAD format: a JSON object with a 'data' list of articles", path)
    out = []
    seen: dict[str, str] = {}
    moved = 0
    for a, article in enumerate(doc["data"]):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs", []), list):
            raise DataError(f"data[{a}]: expected an object with a 'paragraphs' list", path)
        for p, para in enumerate(article.get("paragraphs", [])):
            where = f"data[{a}].paragraphs[{p}]"
            if not isinstance(para, dict) or not isinstance(para.get("context"), str):
                raise DataError(f"{where}: no 'context' string", path)
            context = para["context"]
            if not isinstance(para.get("qas", []), list):
                raise DataError(f"{where}: 'qas' must be a list of questions", path)
            for q, qa in enumerate(para.get("qas", [])):
                if not isinstance(qa, dict) or "id" not in qa or not isinstance(qa.get("question"), str):
                    raise DataError(f"{where}.qas[{q}]: needs 'id' and a 'question' string", path)
                place, qid = f"{where}.qas[{q}] (id {qa['id']})", str(qa["id"])
                if qid in seen:
                    raise DataError(f"{place}: the question id is also used at {seen[qid]}; ids must be unique "
                                    "(predictions are keyed by id)", path)
                seen[qid] = f"{where}.qas[{q}]"
                answers = _answers(qa, place, path) if with_answers else []
                if with_answers and not answers and not allow_no_answer:
                    hint = " (SQuAD v2.0 unanswerable questions: add --version_2_with_negative)" \
                        if qa.get("is_impossible") else ""
                    raise DataError(f"{place}: no answers in a labelled file{hint}", path)
                start = None
                if answers:
                    text, given = answers[0]
                    if not context.strip():
                        raise DataError(f"{place}: empty context, but the question has an answer", path)
                    start = _locate(context, text, given)
                    if start is None:
                        raise DataError(f"{place}: the answer {text[:40]!r} is not in the context (it would be "
                                        "trained as 'no answer')", path)
                    moved += start != given
                out.append(Question(qid, qa["question"], context, [text for text, _ in answers], start))
    if moved:
        logger.warning("%s: %d answers are not at their answer_start; the occurrence nearest to it is used", path, moved)
    return out


def _answers(qa: dict, place: str, path: str) -> list[tuple[str, int]]:
    """(text, answer_start) of each answer of a question (-1: no answer_start given)."""
    answers = qa.get("answers", [])
    if not isinstance(answers, list):
        raise DataError(f"{place}: 'answers' must be a list", path)
    out = []
    for i, ans in enumerate(answers):
        if not isinstance(ans, dict) or not isinstance(ans.get("text"), str):
            raise DataError(f"{place}: answers[{i}] needs a 'text' string", path)
        if not ans["text"].strip():
            raise DataError(f"{place}: answers[{i}] has an empty text", path)
        start = ans.get("answer_start", -1)
        if isinstance(start, str) and start.isascii() and start.isdigit():
            start = int(start)
        if not isinstance(start, int) or isinstance(start, bool) or start < -1:
            raise DataError(f"{place}: answers[{i}].answer_start {start!r} is not a character offset "
                            "(a non-negative integer)", path)
        out.append((ans["text"], start))
    return out


def _locate(context: str, text: str, start: int) -> int | None:
    """The answer's character offset: the given one when the text is there, else the occurrence nearest to it."""
    if 0 <= start and context[start:start + len(text)] == text:
        return start
    hits = []
    i = context.find(text)
    while i >= 0 and text:
        hits.append(i)
        i = context.find(text, i + 1)
    return min(hits, key=lambda h: abs(h - start)) if hits else None


def tokenize_with_offsets(tokenizer: Tokenizer, text: str) -> tuple[list[int], list[int], list[int]]:
    """Token ids of ``text`` and each token's character span [start, end).

    The text is cut like BERT's basic tokenizer (whitespace, every CJK character and punctuation mark on its
    own) into units whose pieces come from the tokenizer; pieces of a unit get consecutive sub-spans when
    their lengths add up to the unit's (WordPiece without [UNK]), else the whole unit's span each.
    """
    ids, starts, ends = [], [], []
    units: list[tuple[int, int]] = []
    begin = None
    for i, char in enumerate(text):
        if is_whitespace(char) or is_chinese_char(ord(char)) or is_punctuation(char):
            if begin is not None:
                units.append((begin, i))
                begin = None
            if not is_whitespace(char):
                units.append((i, i + 1))
        elif begin is None:
            begin = i
    if begin is not None:
        units.append((begin, len(text)))
    vocab = tokenizer.vocab
    for s, e in units:
        pieces = tokenizer.encode(text[s:e])
        if not pieces:
            continue  # control characters: no token; they stay inside an answer that spans them
        lengths = [len(vocab.to_tokens([p])[0].removeprefix("##")) for p in pieces]
        if len(pieces) > 1 and sum(lengths) == e - s and vocab.unk_id not in pieces:
            pos = s
            for p, n in zip(pieces, lengths):
                ids.append(p)
                starts.append(pos)
                ends.append(pos + n)
                pos += n
        else:
            ids.extend(pieces)
            starts.extend([s] * len(pieces))
            ends.extend([e] * len(pieces))
    return ids, starts, ends


def encode_questions(tokenizer: Tokenizer, questions: Sequence[Question], seq_length: int, doc_stride: int,
                     with_targets: bool = True) -> Instances:
    """Instances of every (question, window); fields ``example`` (index into ``questions``) and, with targets,
    ``start``/``end``; token fields ``char_start``/``char_end``."""
    if doc_stride <= 0:
        raise UsageError(f"--doc_stride must be positive, got {doc_stride}")
    vocab = tokenizer.vocab
    cache: dict[str, tuple[list[int], list[int], list[int]]] = {}
    sequences, char_starts, char_ends, example, starts, ends = [], [], [], [], [], []
    for qi, q in enumerate(questions):
        q_ids = tokenizer.encode(q.question)[:MAX_QUESTION_TOKENS]
        width = seq_length - len(q_ids) - 3
        if width < 1:
            q_ids = q_ids[:max(0, seq_length - 4)]
            width = seq_length - len(q_ids) - 3
            if width < 1:
                raise UsageError(f"--seq_length {seq_length} is too short for a question and a context token")
        if q.context not in cache:
            cache[q.context] = tokenize_with_offsets(tokenizer, q.context)
        c_ids, c_start, c_end = cache[q.context]
        a_first = a_last = None
        if with_targets and q.answer_start is not None:
            a_end = q.answer_start + len(q.answers[0])
            inside = [t for t in range(len(c_ids)) if c_end[t] > q.answer_start and c_start[t] < a_end]
            if inside:
                a_first, a_last = inside[0], inside[-1]
        offset = 0
        while True:
            window = range(offset, min(offset + width, len(c_ids)))
            ids = [vocab.cls_id] + q_ids + [vocab.sep_id] + [c_ids[t] for t in window] + [vocab.sep_id]
            head = len(q_ids) + 2
            sequences.append((ids, head))
            pad = [-1] * head
            char_starts.append(np.asarray(pad + [c_start[t] for t in window] + [-1], dtype=np.int64))
            char_ends.append(np.asarray(pad + [c_end[t] for t in window] + [-1], dtype=np.int64))
            example.append(qi)
            if with_targets:
                if a_first is not None and window.start <= a_first and a_last < window.stop:
                    starts.append(head + a_first - offset)
                    ends.append(head + a_last - offset)
                else:
                    starts.append(0)
                    ends.append(0)
            if window.stop >= len(c_ids):
                break
            offset += doc_stride
    fields = {"example": np.asarray(example, dtype=np.int64)}
    if with_targets:
        fields["start"] = np.asarray(starts, dtype=np.int64)
        fields["end"] = np.asarray(ends, dtype=np.int64)
    return Instances.from_sequences(sequences, fields, {"char_start": char_starts, "char_end": char_ends})


def read_mrc(path: str, tokenizer: Tokenizer, seq_length: int, doc_stride: int,
             with_answers: bool = True) -> tuple[Instances, list[Question]]:
    questions = read_squad(path, with_answers)
    return encode_questions(tokenizer, questions, seq_length, doc_stride, with_answers), questions


# ------------------------------------------------------------------------------------------------------
# head

class SpanExtractor(nn.Module):
    """Encoder output -> ``output_layer`` (hidden -> 2) -> start and end logits per token (UER-py's MRC model
    and HF's ``BertForQuestionAnswering.qa_outputs``). Loss: the mean of the start and end cross-entropies,
    padding excluded."""

    def __init__(self, embedding: nn.Module, encoder: nn.Module, hidden_size: int) -> None:
        super().__init__()
        self.embedding = embedding
        self.encoder = encoder
        self.output_layer = nn.Linear(hidden_size, 2)

    def forward(self, batch: dict[str, torch.Tensor]) -> HeadOutput:
        src, seg = batch["src"], batch["seg"]
        logits = self.output_layer(self.encoder(self.embedding(src, seg), seg)).float()
        start_logits, end_logits = logits[..., 0], logits[..., 1]
        outputs = {"start_logits": start_logits, "end_logits": end_logits}
        names = ("start_logits", "end_logits")
        if "start" not in batch:
            return HeadOutput(None, outputs, token_outputs=names)
        pad = seg == 0
        s = start_logits.masked_fill(pad, -1e4)
        e = end_logits.masked_fill(pad, -1e4)
        loss = (F.cross_entropy(s, batch["start"], reduction="none") + F.cross_entropy(e, batch["end"], reduction="none")) / 2
        correct = (s.argmax(-1) == batch["start"]) & (e.argmax(-1) == batch["end"])
        return HeadOutput(loss, outputs, {"correct": correct.float()}, names)


def span_extractor_from_args(args, vocab_size: int, pretrained: bool = True) -> SpanExtractor:
    from uer.finetune.builders import encoder_from_args, init_head, load_pretrained

    cfg, embedding, encoder = encoder_from_args(args, vocab_size)
    model = SpanExtractor(embedding, encoder, cfg.hidden_size)
    init_head(model)
    if pretrained:
        load_pretrained(model, getattr(args, "pretrained_model_path", None))
    return model


# ------------------------------------------------------------------------------------------------------
# decoding and metric

def best_span(start_logits: np.ndarray, end_logits: np.ndarray, valid: np.ndarray,
              max_answer_length: int) -> tuple[int, int, float] | None:
    """(start, end, score) of the best span over the ``valid`` positions: start <= end, end - start <
    ``max_answer_length``; None when no position is valid."""
    positions = np.flatnonzero(valid)
    if len(positions) == 0:
        return None
    s, e = start_logits[positions].astype(np.float64), end_logits[positions].astype(np.float64)
    n = len(positions)
    # scores[i, k] = s[i] + e[i + k] for k < max_answer_length (band of the upper triangle)
    band = min(max_answer_length, n)
    idx = np.arange(n)[:, None] + np.arange(band)[None, :]
    ok = idx < n
    # valid positions are contiguous in a window, so offsets count tokens
    scores = np.where(ok, s[:, None] + e[np.minimum(idx, n - 1)], -np.inf)
    i, k = np.unravel_index(int(np.argmax(scores)), scores.shape)
    return int(positions[i]), int(positions[i + k]), float(scores[i, k])


def decode_answers(predictions: list[Prediction], data: Instances, questions: Sequence[Question],
                   max_answer_length: int, null_threshold: float | None = None) -> list[dict]:
    """Per question: ``{"id", "text", "start", "end", "score"}`` (character offsets into its context, end
    exclusive), the best span over all its windows; text "" when no window has a context token.

    ``null_threshold`` (SQuAD v2.0, HF's and Google's ``null_score_diff_threshold``): the answer is "" (no answer)
    when the [CLS] score (start + end logit at position 0, the lowest over the question's windows) exceeds the
    best span's score by more than the threshold."""
    best: list[tuple[float, int, int] | None] = [None] * len(questions)
    null = np.full(len(questions), np.inf)
    cs, ce, offsets = data.token_fields["char_start"], data.token_fields["char_end"], data.offsets
    for i, pred in enumerate(predictions):
        q = int(data.fields["example"][i])
        starts, ends = cs[offsets[i]:offsets[i + 1]], ce[offsets[i]:offsets[i + 1]]
        null[q] = min(null[q], float(pred["start_logits"][0]) + float(pred["end_logits"][0]))
        span = best_span(pred["start_logits"], pred["end_logits"], starts >= 0, max_answer_length)
        if span is not None and (best[q] is None or span[2] > best[q][0]):
            best[q] = (span[2], int(starts[span[0]]), int(ends[span[1]]))
    out = []
    for i, (q, found) in enumerate(zip(questions, best)):
        if null_threshold is not None and (found is None or null[i] - found[0] > null_threshold):
            out.append({"id": q.qid, "text": "", "start": 0, "end": 0, "score": float(null[i])})
        elif found is None:
            out.append({"id": q.qid, "text": "", "start": 0, "end": 0, "score": float("-inf")})
        else:
            score, s, e = found
            out.append({"id": q.qid, "text": q.context[s:e], "start": s, "end": e, "score": score})
    return out


def cmrc_metric(questions: Sequence[Question], max_answer_length: int, kind: str = "cmrc",
                null_threshold: float | None = None):
    """Metric for an EvalSet of a labelled SQuAD-format file: CMRC 2018 Avg/F1/EM (``kind`` "cmrc", primary score
    ``avg``) or the official SQuAD v1.1/v2.0 F1/EM (``kind`` "squad", primary ``f1``)."""
    references = {q.qid: q.answers for q in questions}
    report_of = squad_report if kind == "squad" else cmrc_report

    def metric(predictions: list[Prediction], data: Instances) -> Evaluation:
        answers = {a["id"]: a["text"] for a in decode_answers(predictions, data, questions, max_answer_length,
                                                              null_threshold)}
        report = report_of(references, answers)
        return Evaluation(report.scores(), report.summary(), report.summary())

    return metric


def cjk_share(questions: Sequence[Question]) -> float:
    """The share of CJK characters among the non-space characters of the contexts."""
    text = "".join({q.context for q in questions})
    letters = [ch for ch in text if not ch.isspace()]
    return sum(is_chinese_char(ord(ch)) for ch in letters) / max(len(letters), 1)


def metric_kind(choice: str, questions: Sequence[Question]) -> str:
    """--metric: "squad" or "cmrc" as given; "auto": CMRC 2018's when at least 10% of the contexts' characters are
    CJK (Chinese data), else SQuAD's (English and other space-separated languages)."""
    if choice != "auto":
        return choice
    return "cmrc" if cjk_share(questions) >= 0.1 else "squad"


@torch.no_grad()
def predict_answers(model: SpanExtractor, tokenizer: Tokenizer, questions: Sequence[str], contexts: Sequence[str],
                    seq_length: int = 512, doc_stride: int = 128, max_answer_length: int = 64, batch_size: int = 8,
                    device: torch.device | str = "cpu") -> list[dict]:
    """Answer each (question, context) pair with a trained :class:`SpanExtractor`: per pair ``{"text",
    "start", "end", "score"}`` with character offsets into the context (end exclusive). For servers."""
    from uer.finetune.loop import predict

    items = [Question(str(i), q, c, [], None) for i, (q, c) in enumerate(zip(questions, contexts))]
    data = encode_questions(tokenizer, items, seq_length, doc_stride, with_targets=False)
    preds = predict(model.to(device), data, batch_size, tokenizer.vocab.pad_id, torch.device(device))
    return [{k: a[k] for k in ("text", "start", "end", "score")}
            for a in decode_answers(preds, data, items, max_answer_length)]


# ------------------------------------------------------------------------------------------------------
# the task

def add_mrc_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reading comprehension")
    group.add_argument("--doc_stride", type=positive_int, default=128,
                       help="Tokens between the starts of consecutive windows of a long context.")
    group.add_argument("--max_answer_length", type=positive_int, default=64, help="Longest answer in tokens.")
    group.add_argument("--version_2_with_negative", action="store_true",
                       help="SQuAD v2.0: questions may have no answer (trained to point at [CLS]; predicted as \"\" "
                            "when the [CLS] score beats the best span by more than --null_score_diff_threshold).")
    group.add_argument("--null_score_diff_threshold", type=finite_float, default=0.0,
                       help="--version_2_with_negative: predict no answer when [CLS] score - best span score > this.")


class MrcTask(Task):
    name = "mrc"
    summary = "span extraction from a context, SQuAD-format JSON, CMRC 2018 metric (run_cmrc.py)"
    train_script = "run_cmrc.py"
    infer_script = "run_cmrc_infer.py"
    infer_defaults = {"seq_length": 512, "batch_size": 8}
    train_doc = r"""Fine-tune span-extraction reading comprehension (CMRC 2018, SQuAD format): start and end scores per token.

    python3 run_cmrc.py --pretrained_model_path models/google_zh_model.bin --vocab_path models/google_zh_vocab.txt \
        --train_path datasets/cmrc2018/train.json --dev_path datasets/cmrc2018/dev.json \
        --epochs_num 2 --batch_size 8 --seq_length 512 \
        --embedding word_pos_seg --encoder transformer --mask fully_visible

Each question is paired with windows of its context ([CLS] question [SEP] window [SEP]) that start every
--doc_stride tokens. The answer is the best span with start <= end and at most --max_answer_length tokens
(one token is a legal answer) over all windows, mapped back to the characters of the context. Metric: the
official CMRC 2018 evaluation (F1 from the longest common substring of the mixed segmentation, exact match
after punctuation removal, each the best over the reference answers; Avg is their mean); the best model on
dev Avg is kept.
"""
    infer_doc = r"""Answer the questions of a SQuAD-format file with a model fine-tuned by run_cmrc.py.

    python3 inference/run_cmrc_infer.py --load_model_path models/finetuned_model.bin \
        --vocab_path models/google_zh_vocab.txt --test_path datasets/cmrc2018/test.json \
        --prediction_path datasets/cmrc2018/prediction.json --seq_length 512 \
        --embedding word_pos_seg --encoder transformer --mask fully_visible

Writes ``{"question id": "answer text", ...}``, the file the official CMRC 2018 evaluation script reads.
Answers in the input file, if any, are ignored. Use the --seq_length, --doc_stride and --max_answer_length
of training.
"""

    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser, mode: str) -> None:
        add_mrc_options(parser)
        if mode == "train":
            parser.add_argument("--metric", choices=["auto", "squad", "cmrc"], default="auto",
                                help="Dev/test scores: the official SQuAD v1.1/v2.0 EM and F1 (English: lower case, "
                                     "punctuation and articles removed; primary F1), CMRC 2018's (Chinese; primary "
                                     "Avg), or auto: CMRC when >= 10%% of the contexts' characters are CJK.")

    @classmethod
    def check_options(cls, args: argparse.Namespace, mode: str) -> None:
        if "null_score_diff_threshold" in getattr(args, "explicit", set()) and not args.version_2_with_negative:
            raise UsageError("--null_score_diff_threshold applies with --version_2_with_negative only")
        if args.max_answer_length < 1 or args.doc_stride < 1:
            raise UsageError(f"--max_answer_length and --doc_stride must be positive, got {args.max_answer_length} "
                             f"and {args.doc_stride}")

    @property
    def null_threshold(self) -> float | None:
        return self.args.null_score_diff_threshold if self.args.version_2_with_negative else None

    def read(self, path: str, with_answers: bool = True) -> tuple[Instances, list[Question]]:
        questions = read_squad(path, with_answers, allow_no_answer=self.args.version_2_with_negative)
        return encode_questions(self.tokenizer, questions, self.args.seq_length, self.args.doc_stride,
                                with_answers), questions

    def eval_set(self, name: str, path: str) -> EvalSet:
        data, questions = self.read(path)
        kind = metric_kind(self.args.metric, questions)
        if not hasattr(self, "metric_used"):
            self.metric_used = kind
            logger.info("%s metric on %s (--metric %s)", "SQuAD's" if kind == "squad" else "CMRC 2018's", path,
                        self.args.metric)
        return EvalSet(name, data, cmrc_metric(questions, self.args.max_answer_length, kind, self.null_threshold),
                       "f1" if kind == "squad" else "avg")

    def read_training(self) -> TrainingData:
        args = self.args
        train, self.train_questions = self.read(args.train_path)
        dev = self.eval_set("dev", args.dev_path)
        test = [self.eval_set("test", args.test_path)] if args.test_path else []
        return TrainingData(train, [dev], test)

    def describe(self, data: TrainingData) -> str:
        return "%d training questions in %d windows (--seq_length %d, --doc_stride %d)" % (
            len(self.train_questions), len(data.train), self.args.seq_length, self.args.doc_stride)

    def build_model(self, pretrained: bool) -> nn.Module:
        return span_extractor_from_args(self.args, len(self.tokenizer.vocab), pretrained=pretrained)

    def read_inference(self, path: str) -> InferenceData:
        data, questions = self.read(path, with_answers=False)
        return InferenceData(data, questions)

    def write_predictions(self, path: str, predictions: list[Prediction], data: InferenceData) -> str:
        answers = decode_answers(predictions, data.instances, data.source, self.args.max_answer_length,
                                 self.null_threshold)
        write_json(path, {a["id"]: a["text"] for a in answers})
        return f"answered {len(data.source)} questions of {self.args.test_path} into {path}"

    def service(self, device, max_batch_size: int):
        """``{"text", "start", "end", "score"}`` per (question, context): texts are the questions, texts_b the
        contexts."""
        from uer.serving.tasks import MrcService

        args = self.args
        model = self.load_model(args.load_model_path)
        info = {"model": args.load_model_path, "task": self.name, "device": str(device), "threads": args.threads}
        return MrcService(model, self.tokenizer, args.seq_length, max_batch_size, device, args.doc_stride,
                          args.max_answer_length, info)


def write_json(path: str, value) -> None:
    atomic_write_text(path, json.dumps(value, ensure_ascii=False, indent=1) + "\n")


register_task(MrcTask)
