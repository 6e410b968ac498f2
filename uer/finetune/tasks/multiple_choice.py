"""Multiple choice (run_c3.py, run_chid.py and their inference scripts): readers, head, accuracy, the two tasks.

Every candidate of a question is one sequence; the head scores each sequence and a softmax runs over the
candidates of a question. A question is a *group* of exactly ``--max_choices_num`` consecutive instances:
questions with fewer candidates get filler sequences (``[CLS] [SEP]``, field ``choice_mask`` 0) whose score
is pushed to -10000, so they can never win and take no probability. Batching keeps a group whole, in one
batch and on one rank, and ``--batch_size`` counts questions (the model sees batch_size x max_choices_num
sequences per step). Per-question values (loss, correct) sit on the group's first instance.

C3 (JSON list of ``[[document sentences], [{"question", "choice": [...], "answer"}, ...], id]``): each
sequence is ``[CLS] choice [SEP] question [SEP] document [SEP]`` (UER-py's order; choice and question in
segment 1, the document in segment 2), the texts lower-cased as UER-py does. The document is cut from its
end so that choice and question always fit.

ChID (one JSON object a line: ``{"candidates": [10 idioms], "content": ["... #idiom000123# ...", ...]}`` and
an answer file ``{"#idiom000123#": 3, ...}``): each blank is a question; its sequences are ``[CLS] candidate
[SEP] left context [SEP] right context [SEP]`` around the blank, other blanks of the passage as [MASK], the
context cut around the blank so that the sequence fits.
"""
from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from uer.data.finetune_data import Instances
from uer.data.json_files import read_json, read_json_lines
from uer.errors import DataError, UsageError
from uer.finetune.contract import EvalSet, Evaluation, HeadOutput, Prediction
from uer.finetune.tasks.base import InferenceData, Task, TrainingData, register_task
from uer.utils.io import atomic_write_text
from uer.text.tokenizers import Tokenizer
from uer.utils.ranges import positive_int

FILLER_SCORE = -1e4


@dataclass
class ChoiceQuestion:
    qid: str | int
    texts: list[list[int]]        # token ids of each sequence (real candidates first)
    segment_1: list[int]          # length of segment 1 of each sequence
    label: int                    # index of the right candidate (-1 when unknown)


def read_c3_questions(path: str, tokenizer: Tokenizer, seq_length: int, max_choices_num: int,
                      with_answers: bool = True) -> list[ChoiceQuestion]:
    data = read_json(path, "C3-format file")
    if not isinstance(data, list):
        raise DataError("expected the C3 format: a JSON list of [document sentences, questions, id]", path)
    vocab = tokenizer.vocab
    out = []
    for d, item in enumerate(data):
        if not (isinstance(item, list) and len(item) >= 2 and isinstance(item[1], list)
                and isinstance(item[0], list) and all(isinstance(x, str) for x in item[0])):
            raise DataError(f"item {d}: expected [document sentences (strings), questions, id]", path)
        document = tokenizer.encode("\n".join(item[0]).lower())
        for k, q in enumerate(item[1]):
            where = f"item {d}, question {k}"
            if not isinstance(q, dict):
                raise DataError(f"{where}: expected an object with 'question', 'choice' and 'answer'", path)
            choices = q.get("choice")
            if not isinstance(choices, list) or not choices or not all(isinstance(c, str) for c in choices):
                raise DataError(f"{where}: no 'choice' list of strings", path)
            if len(choices) > max_choices_num:
                raise DataError(f"{where}: {len(choices)} choices, more than --max_choices_num {max_choices_num}", path)
            label = -1
            if with_answers:
                if "answer" not in q:
                    raise DataError(f"{where}: no 'answer' in a labelled file", path)
                try:
                    label = choices.index(q["answer"])
                except ValueError:
                    raise DataError(f"{where}: the answer {q['answer']!r} is not one of its choices", path) from None
                if choices.count(q["answer"]) > 1:
                    raise DataError(f"{where}: the answer {q['answer']!r} is choice {label + 1} and again choice "
                                    f"{choices.index(q['answer'], label + 1) + 1}; the copy would be trained as "
                                    "wrong", path)
            question = tokenizer.encode(q.get("question", "").lower())
            texts, firsts = [], []
            for choice in choices:
                head = [vocab.cls_id] + tokenizer.encode(choice.lower()) + [vocab.sep_id] + question + [vocab.sep_id]
                head = head[:seq_length - 1]  # a question + choice longer than the sequence: cut (rare)
                room = seq_length - len(head) - 1
                texts.append(head + document[:max(0, room)] + [vocab.sep_id])
                firsts.append(len(head))
            out.append(ChoiceQuestion(q.get("id", f"{d}-{k}"), texts, firsts, label))
    return out


_BLANK = re.compile(r"#idiom\d+#")


def read_chid_questions(path: str, tokenizer: Tokenizer, seq_length: int, max_choices_num: int,
                        answer_path: str | None = None) -> list[ChoiceQuestion]:
    answers = None
    if answer_path is not None:
        answers = read_json(answer_path, "ChID answer file")
        if not isinstance(answers, dict):
            raise DataError("expected a JSON object: blank (#idiomNNNNNN#) -> candidate index", answer_path)
    vocab = tokenizer.vocab
    out = []
    for line_no, item in read_json_lines(path, "ChID file"):
        candidates = item.get("candidates") if isinstance(item, dict) else None
        if not isinstance(candidates, list) or not candidates or not isinstance(item.get("content"), list):
            raise DataError("needs 'candidates' and 'content' lists", path, line_no)
        if len(candidates) > max_choices_num:
            raise DataError(f"{len(candidates)} candidates, more than --max_choices_num {max_choices_num}", path, line_no)
        cand_ids = [tokenizer.encode(c) for c in candidates]
        for passage in item["content"]:
            pieces = _BLANK.split(passage)
            blanks = _BLANK.findall(passage)
            encoded = [tokenizer.encode(p) for p in pieces]
            for b, blank in enumerate(blanks):
                label = -1
                if answers is not None:
                    if blank not in answers:
                        raise DataError(f"no answer for {blank} (of {path}, line {line_no})", answer_path)
                    label = answers[blank]
                    if not isinstance(label, int) or isinstance(label, bool) or not 0 <= label < len(candidates):
                        raise DataError(f"answer {label} of {blank} is not a candidate index (0 .. {len(candidates) - 1})",
                                        answer_path)
                left: list[int] = []
                for i in range(b + 1):
                    left += encoded[i] + ([vocab.mask_id] if i < b else [])
                right: list[int] = []
                for i in range(b + 1, len(pieces)):
                    right += ([vocab.mask_id] if i > b + 1 else []) + encoded[i]
                texts, firsts = [], []
                for cand in cand_ids:
                    head = ([vocab.cls_id] + cand + [vocab.sep_id])[:seq_length - 3]
                    room = seq_length - len(head) - 2
                    n_left = min(len(left), max(room // 2, room - len(right)))
                    n_right = min(len(right), room - n_left)
                    texts.append(head + left[len(left) - n_left:] + [vocab.sep_id] + right[:n_right] + [vocab.sep_id])
                    firsts.append(len(head))
                out.append(ChoiceQuestion(blank, texts, firsts, label))
    return out


def choice_instances(questions: Sequence[ChoiceQuestion], max_choices_num: int, tokenizer: Tokenizer,
                     with_labels: bool = True) -> Instances:
    """Groups of ``max_choices_num`` instances, one per candidate, fillers last; fields ``choice_mask``
    (1 real, 0 filler), ``question`` (index) and, with labels, ``label`` (the right candidate's index, on
    every instance of the group)."""
    vocab = tokenizer.vocab
    sequences, mask, owner, labels = [], [], [], []
    for qi, q in enumerate(questions):
        for k in range(max_choices_num):
            if k < len(q.texts):
                sequences.append((q.texts[k], q.segment_1[k]))
                mask.append(1)
            else:
                sequences.append(([vocab.cls_id, vocab.sep_id], 2))
                mask.append(0)
            owner.append(qi)
            labels.append(q.label)
    fields = {"choice_mask": np.asarray(mask, dtype=np.int64), "question": np.asarray(owner, dtype=np.int64)}
    if with_labels:
        fields["label"] = np.asarray(labels, dtype=np.int64)
    return Instances.from_sequences(sequences, fields, groups=np.asarray(owner, dtype=np.int64))


# ------------------------------------------------------------------------------------------------------
# head

class MultipleChoice(nn.Module):
    """Score of each (candidate) sequence from its first token: ``output_layer`` (hidden -> 1) as UER-py's
    run_c3.py, or with ``pooler`` HF's ``BertForMultipleChoice``: tanh(``output_layer_1``) then
    ``output_layer_2`` (the keys the text-classification converters use for HF's pooler and classifier).

    ``choices_num``: instances per group; a batch is whole groups in order, so its scores reshape to
    [questions x choices_num]. Output ``logits`` [B] (one score per sequence, fillers at -10000).
    """

    def __init__(self, embedding: nn.Module, encoder: nn.Module, hidden_size: int, choices_num: int,
                 pooler: bool = False) -> None:
        super().__init__()
        self.embedding = embedding
        self.encoder = encoder
        self.choices_num = choices_num
        self.pooler = pooler
        if pooler:
            self.output_layer_1 = nn.Linear(hidden_size, hidden_size)
            self.output_layer_2 = nn.Linear(hidden_size, 1)
        else:
            self.output_layer = nn.Linear(hidden_size, 1)

    def forward(self, batch: dict[str, torch.Tensor]) -> HeadOutput:
        src, seg = batch["src"], batch["seg"]
        if src.shape[0] % self.choices_num:
            raise ValueError(f"a batch of {src.shape[0]} sequences is not whole groups of {self.choices_num}")
        if getattr(self.encoder, "supports_first_only", False):
            first = self.encoder(self.embedding(src, seg), seg, first_only=True)[:, 0]
        else:
            first = self.encoder(self.embedding(src, seg), seg)[:, 0]
        if self.pooler:
            scores = self.output_layer_2(torch.tanh(self.output_layer_1(first)))
        else:
            scores = self.output_layer(first)
        scores = scores.float().squeeze(-1).masked_fill(batch["choice_mask"] == 0, FILLER_SCORE)
        outputs = {"logits": scores}
        if "label" not in batch:
            return HeadOutput(None, outputs)
        grouped = scores.view(-1, self.choices_num)
        label = batch["label"].view(-1, self.choices_num)[:, 0]
        loss_q = F.cross_entropy(grouped, label, reduction="none")
        correct_q = (grouped.argmax(-1) == label).float()
        # per-question values on each group's first instance, zeros elsewhere; counts say how many questions
        first_of_group = torch.zeros_like(grouped)
        first_of_group[:, 0] = 1.0
        loss = (first_of_group * loss_q[:, None]).view(-1)
        correct = (first_of_group * correct_q[:, None]).view(-1)
        count = first_of_group.view(-1)
        return HeadOutput(loss, outputs, {"correct": correct, "count": count}, loss_count=count)


def multiple_choice_from_args(args, vocab_size: int, pooler: bool | None = None,
                              pretrained: bool = True) -> MultipleChoice:
    """run_c3.py / run_chid.py's model. ``pooler`` None: HF's form when the model file to load has
    ``output_layer_1`` (a converted BertForMultipleChoice), UER-py's otherwise."""
    from uer.finetune.builders import encoder_from_args, init_head, load_pretrained

    path = getattr(args, "pretrained_model_path", None)
    if pooler is None:
        pooler = bool(path) and has_pooler(path)
    cfg, embedding, encoder = encoder_from_args(args, vocab_size)
    model = MultipleChoice(embedding, encoder, cfg.hidden_size, args.max_choices_num, pooler)
    init_head(model)
    if pretrained:
        load_pretrained(model, getattr(args, "pretrained_model_path", None))
    return model


def has_pooler(path: str) -> bool:
    from uer.model_loader import load_state_dict

    return "output_layer_1.weight" in load_state_dict(path)


# ------------------------------------------------------------------------------------------------------
# decoding and metric

def question_scores(predictions: list[Prediction], data: Instances) -> list[np.ndarray]:
    """The scores of the real candidates of every question, in file order."""
    owner, mask = data.fields["question"], data.fields["choice_mask"]
    out: list[list[float]] = [[] for _ in range(int(owner.max()) + 1 if len(owner) else 0)]
    for i, pred in enumerate(predictions):
        if mask[i]:
            out[owner[i]].append(float(pred["logits"]))
    return [np.asarray(s) for s in out]


def choice_metric(questions: Sequence[ChoiceQuestion]):
    """Accuracy over questions (primary score ``acc``)."""

    def metric(predictions: list[Prediction], data: Instances) -> Evaluation:
        scores = question_scores(predictions, data)
        correct = sum(int(np.argmax(s) == q.label) for s, q in zip(scores, questions))
        acc = correct / max(len(questions), 1)
        text = f"Acc. (Correct/Total): {acc:.4f} ({correct}/{len(questions)})"
        return Evaluation({"acc": acc}, text, text)

    return metric


# ------------------------------------------------------------------------------------------------------
# the tasks

def add_choice_options(parser: argparse.ArgumentParser, default_choices: int) -> None:
    group = parser.add_argument_group("multiple choice")
    group.add_argument("--max_choices_num", type=positive_int, default=default_choices,
                       help="Choices per question; questions with fewer get filler choices that never win.")


class C3Task(Task):
    name = "c3"
    summary = "multiple choice: a document, a question, its choices (run_c3.py)"
    train_script = "run_c3.py"
    infer_script = "run_c3_infer.py"
    infer_defaults = {"seq_length": 512, "batch_size": 8}
    default_choices = 4
    train_doc = r"""Fine-tune multiple choice (C3): one score per (document, question, choice) sequence, softmax over the
choices of a question.

    python3 run_c3.py --pretrained_model_path models/google_zh_model.bin --vocab_path models/google_zh_vocab.txt \
        --train_path datasets/c3/train.json --dev_path datasets/c3/dev.json \
        --epochs_num 8 --batch_size 16 --seq_length 512 --max_choices_num 4 \
        --embedding word_pos_seg --encoder transformer --mask fully_visible

Each sequence is [CLS] choice [SEP] question [SEP] document [SEP]; the document is cut so that choice and
question always fit. Questions with fewer than --max_choices_num choices get filler choices that can never
win. --batch_size counts questions: a step sees batch_size x max_choices_num sequences, and the choices of a
question are never split across batches or processes. Metric: accuracy; the best model on dev is kept.
"""
    infer_doc = r"""Predict the choice of every question of a C3-format file with a model fine-tuned by run_c3.py.

    python3 inference/run_c3_infer.py --load_model_path models/finetuned_model.bin \
        --vocab_path models/google_zh_vocab.txt --test_path datasets/c3/test.json \
        --prediction_path datasets/c3/prediction.json --max_choices_num 4 \
        --embedding word_pos_seg --encoder transformer --mask fully_visible

Writes one JSON object a line, ``{"id": question id, "label": index of the predicted choice}``, as UER-py's
script does. Answers in the input file, if any, are ignored.
"""

    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser, mode: str) -> None:
        add_choice_options(parser, cls.default_choices)

    @classmethod
    def check_options(cls, args: argparse.Namespace, mode: str) -> None:
        if mode == "train" and args.max_choices_num < 2:
            raise UsageError(f"--max_choices_num must be at least 2, got {args.max_choices_num}")

    def questions(self, path: str, with_answers: bool = True, answers_path: str | None = None) -> list[ChoiceQuestion]:
        return read_c3_questions(path, self.tokenizer, self.args.seq_length, self.args.max_choices_num,
                                 with_answers=with_answers)

    def eval_set(self, name: str, path: str, answers_path: str | None = None) -> EvalSet:
        questions = self.questions(path, answers_path=answers_path)
        return EvalSet(name, choice_instances(questions, self.args.max_choices_num, self.tokenizer),
                       choice_metric(questions))

    def read_training(self) -> TrainingData:
        args = self.args
        self.train_questions = self.questions(args.train_path, answers_path=getattr(args, "train_answer_path", None))
        train = choice_instances(self.train_questions, args.max_choices_num, self.tokenizer)
        dev = self.eval_set("dev", args.dev_path, getattr(args, "dev_answer_path", None))
        test = [self.eval_set("test", args.test_path, getattr(args, "test_answer_path", None))] if args.test_path else []
        return TrainingData(train, [dev], test)

    def describe(self, data: TrainingData) -> str:
        return f"{len(self.train_questions)} training questions, {self.args.max_choices_num} choices each (fillers included)"

    def build_model(self, pretrained: bool) -> nn.Module:
        load = None if pretrained else self.args.load_model_path
        return multiple_choice_from_args(self.args, len(self.tokenizer.vocab),
                                         pooler=None if load is None else has_pooler(load), pretrained=pretrained)

    def read_inference(self, path: str) -> InferenceData:
        questions = self.questions(path, with_answers=False)
        return InferenceData(choice_instances(questions, self.args.max_choices_num, self.tokenizer, with_labels=False),
                             questions)

    def choices(self, predictions: list[Prediction], data: InferenceData) -> list[int]:
        return [int(np.argmax(s)) for s in question_scores(predictions, data.instances)]

    def write_predictions(self, path: str, predictions: list[Prediction], data: InferenceData) -> str:
        records = [{"id": q.qid, "label": label} for q, label in zip(data.source, self.choices(predictions, data))]
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        return f"predicted {len(data.source)} questions of {self.args.test_path} into {path}"


class ChidTask(C3Task):
    name = "chid"
    summary = "idiom cloze: the candidate that fills each #idiomNNNNNN# blank (run_chid.py)"
    train_script = "run_chid.py"
    infer_script = "run_chid_infer.py"
    defaults = {"tokenizer": "char"}
    infer_defaults = {"seq_length": 64, "batch_size": 8}
    input_options = ("train_answer_path", "dev_answer_path", "test_answer_path")
    default_choices = 10
    train_doc = r"""Fine-tune idiom cloze (ChID): choose the idiom that fills each #idiomNNNNNN# blank from its candidates.

    python3 run_chid.py --pretrained_model_path models/google_zh_model.bin --vocab_path models/google_zh_vocab.txt \
        --train_path datasets/chid/train.json --train_answer_path datasets/chid/train_answer.json \
        --dev_path datasets/chid/dev.json --dev_answer_path datasets/chid/dev_answer.json \
        --batch_size 24 --seq_length 64 --max_choices_num 10 \
        --embedding word_pos_seg --encoder transformer --mask fully_visible

Files: one JSON object a line, ``{"candidates": [idioms], "content": [passages with #idiomNNNNNN# blanks]}``,
and an answer file ``{"#idiomNNNNNN#": index of the right candidate}``. Each blank is a question whose
sequences are [CLS] candidate [SEP] left context [SEP] right context [SEP] (other blanks as [MASK]), scored as
run_c3.py does; --batch_size counts blanks. Metric: accuracy; the best model on dev is kept.
"""
    infer_doc = r"""Fill the idiom blanks of a ChID file with a model fine-tuned by run_chid.py.

    python3 inference/run_chid_infer.py --load_model_path models/finetuned_model.bin \
        --vocab_path models/google_zh_vocab.txt --test_path datasets/chid/test.json \
        --prediction_path datasets/chid/prediction.json --seq_length 64 --max_choices_num 10 \
        --embedding word_pos_seg --encoder transformer --mask fully_visible

Writes ``{"#idiomNNNNNN#": index of the predicted candidate, ...}``, the format of ChID's answer files.
"""

    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser, mode: str) -> None:
        if mode == "train":
            group = parser.add_argument_group("idiom cloze")
            group.add_argument("--train_answer_path", required=True, help="Answers of the training set (JSON).")
            group.add_argument("--dev_answer_path", required=True, help="Answers of the development set (JSON).")
            group.add_argument("--test_answer_path", default=None, help="Answers of --test_path (JSON).")
        super().add_options(parser, mode)

    @classmethod
    def check_options(cls, args: argparse.Namespace, mode: str) -> None:
        super().check_options(args, mode)
        if mode == "train" and args.test_path and not args.test_answer_path:
            raise UsageError("--test_path needs --test_answer_path (the blanks' answers)")

    def questions(self, path: str, with_answers: bool = True, answers_path: str | None = None) -> list[ChoiceQuestion]:
        return read_chid_questions(path, self.tokenizer, self.args.seq_length, self.args.max_choices_num,
                                   answers_path if with_answers else None)

    def write_predictions(self, path: str, predictions: list[Prediction], data: InferenceData) -> str:
        labels = self.choices(predictions, data)
        atomic_write_text(path, json.dumps({q.qid: label for q, label in zip(data.source, labels)},
                                           ensure_ascii=False, indent=1) + "\n")
        return f"filled {len(data.source)} blanks of {self.args.test_path} into {path}"


register_task(C3Task)
register_task(ChidTask)
