r"""GLUE (run_glue.py, ``uer-finetune --task glue``): the nine tasks in their own TSV files, HuggingFace's
recipe and metrics, a HuggingFace model folder in and out.

A GLUE-like data set is one row of :data:`GLUE_TASKS`: where the texts and the label are (header names, or
column numbers for header-less files such as CoLA's), the label list (None: regression), the metric, and the
dev/test file names. The model is HF's BertForSequenceClassification: tanh(pooler) over [CLS], dropout, a
linear classifier (one output and a mean squared error for regression), whose layers are run_classifier.py's
``output_layer_1`` / ``output_layer_2`` (so the converters and inference scripts read it). The pooler starts from
the pre-trained one when the model has it, as in HF.

Training follows HF's run_glue: AdamW with bias correction, epsilon 1e-8, linear decay to 0, no warm-up unless
asked, gradient clipping at 1.0, no evaluation during training; the final model is written to --output_dir as
a HuggingFace folder and evaluated there. Metrics are HF's ``glue_compute_metrics`` (names and definitions).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from uer.utils.ranges import finite_positive_float, non_negative_int, positive_int
from uer.data.finetune_data import DataError, Instances
from uer.errors import UsageError
from uer.finetune.contract import HeadOutput
from uer.finetune.tasks.base import Task, register_task
from uer.finetune.tasks.classifier import Classifier, classification_output
from uer.text.tokenizers import Tokenizer
from uer.utils.io import atomic_write_text, check_input_file, read_lines

logger = logging.getLogger("uer.finetune")


@dataclass(frozen=True)
class GlueSpec:
    """One GLUE-like data set.

    text_a / text_b / label: column names in the header; ``headerless`` maps them to column numbers for
    files without a header (CoLA's train and dev). labels: the label strings in the order of the model's
    outputs (HF's processors' order), None for regression (one float output). metric: a key of
    :data:`METRICS`. dev / test: file names in --data_dir, with the name each evaluation is reported under.
    submission: GLUE's submission file name of each test file.
    """

    text_a: str
    text_b: str | None
    label: str
    labels: tuple[str, ...] | None
    metric: str
    dev: tuple[tuple[str, str], ...]
    test: tuple[tuple[str, str], ...]
    headerless: tuple[tuple[str, int], ...] = ()
    test_text_a: str | None = None  # the test file's column when it differs (SST-2, CoLA: 'sentence' by index)

    @property
    def regression(self) -> bool:
        return self.labels is None


def _pair(name: str, metric: str, labels, a: str, b: str, label: str = "label", dev=None, test=None) -> GlueSpec:
    return GlueSpec(a, b, label, labels, metric, dev or (("dev.tsv", name),), test or (("test.tsv", name),))


# HF's processors (transformers.data.processors.glue): columns, label order, metric.
GLUE_TASKS: dict[str, GlueSpec] = {
    "cola": GlueSpec("sentence", None, "label", ("0", "1"), "mcc", (("dev.tsv", "cola"),), (("test.tsv", "cola"),),
                     headerless=(("label", 1), ("sentence", 3))),
    "sst-2": GlueSpec("sentence", None, "label", ("0", "1"), "acc", (("dev.tsv", "sst-2"),), (("test.tsv", "sst-2"),)),
    "mrpc": _pair("mrpc", "acc_and_f1", ("0", "1"), "#1 String", "#2 String", label="Quality"),
    "sts-b": _pair("sts-b", "pearson_and_spearman", None, "sentence1", "sentence2", label="score"),
    "qqp": _pair("qqp", "acc_and_f1", ("0", "1"), "question1", "question2", label="is_duplicate"),
    "mnli": _pair("mnli", "acc", ("contradiction", "entailment", "neutral"), "sentence1", "sentence2",
                  label="gold_label", dev=(("dev_matched.tsv", "mnli"), ("dev_mismatched.tsv", "mnli-mm")),
                  test=(("test_matched.tsv", "mnli"), ("test_mismatched.tsv", "mnli-mm"))),
    "mnli-mm": _pair("mnli-mm", "acc", ("contradiction", "entailment", "neutral"), "sentence1", "sentence2",
                     label="gold_label", dev=(("dev_mismatched.tsv", "mnli-mm"),),
                     test=(("test_mismatched.tsv", "mnli-mm"),)),
    "qnli": _pair("qnli", "acc", ("entailment", "not_entailment"), "question", "sentence"),
    "rte": _pair("rte", "acc", ("entailment", "not_entailment"), "sentence1", "sentence2"),
    "wnli": _pair("wnli", "acc", ("0", "1"), "sentence1", "sentence2"),
}
# GLUE's submission file of each evaluation name (gluebenchmark.com: one TSV per task, "index<TAB>prediction").
SUBMISSION_FILES = {"cola": "CoLA.tsv", "sst-2": "SST-2.tsv", "mrpc": "MRPC.tsv", "sts-b": "STS-B.tsv",
                    "qqp": "QQP.tsv", "mnli": "MNLI-m.tsv", "mnli-mm": "MNLI-mm.tsv", "qnli": "QNLI.tsv",
                    "rte": "RTE.tsv", "wnli": "WNLI.tsv"}


def glue_spec(name: str) -> GlueSpec:
    key = name.lower()
    if key not in GLUE_TASKS:
        raise UsageError(f"unknown GLUE task {name!r}; known: {', '.join(GLUE_TASKS)}")
    return GLUE_TASKS[key]


# ------------------------------------------------------------------------------------------------------
# metrics: transformers' glue_compute_metrics (acc, f1, acc_and_f1, mcc, pearson, spearmanr, corr), computed
# here with numpy (scikit-learn and scipy are no runtime dependency; tests/test_glue.py checks them against both)

def _acc(preds: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return {"acc": float((preds == labels).mean())}


def binary_f1(preds: np.ndarray, labels: np.ndarray) -> float:
    """F1 of label 1 (scikit-learn's f1_score default); 0 when nothing is predicted or gold positive."""
    tp = float(((preds == 1) & (labels == 1)).sum())
    denominator = float((preds == 1).sum() + (labels == 1).sum())
    return 2 * tp / denominator if denominator else 0.0


def _acc_and_f1(preds: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    acc = float((preds == labels).mean())
    f1 = binary_f1(preds, labels)
    return {"acc": acc, "f1": f1, "acc_and_f1": (acc + f1) / 2}


def matthews_corrcoef(preds: np.ndarray, labels: np.ndarray) -> float:
    """Matthews correlation of any number of classes (Gorodkin's form, as scikit-learn); 0 when undefined."""
    classes = np.union1d(labels, preds)
    confusion = np.array([[np.sum((labels == g) & (preds == p)) for p in classes] for g in classes], dtype=np.float64)
    t, p = confusion.sum(1), confusion.sum(0)
    correct, n = np.trace(confusion), confusion.sum()
    denominator = np.sqrt((n * n - p @ p) * (n * n - t @ t))
    return float((correct * n - t @ p) / denominator) if denominator else 0.0


def _mcc(preds: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return {"mcc": matthews_corrcoef(preds, labels)}


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt((x @ x) * (y @ y))
    return float(x @ y / denominator) if denominator else float("nan")


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank (scipy's rankdata 'average')."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(1, len(values) + 1)
    _, inverse = np.unique(values, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / np.bincount(inverse))[inverse]


def _pearson_and_spearman(preds: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    p = pearson(preds.astype(np.float64), labels.astype(np.float64))
    s = pearson(average_ranks(preds), average_ranks(labels))
    return {"pearson": p, "spearmanr": s, "corr": (p + s) / 2}


METRICS = {"acc": _acc, "acc_and_f1": _acc_and_f1, "mcc": _mcc, "pearson_and_spearman": _pearson_and_spearman}


def glue_metrics(spec: GlueSpec, name: str, preds: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """HF's metric dict of evaluation ``name`` (MNLI's are prefixed ``mnli/`` and ``mnli-mm/``, as HF's)."""
    scores = METRICS[spec.metric](preds, labels)
    if name in ("mnli", "mnli-mm"):
        return {f"{name}/{key}": value for key, value in scores.items()}
    return scores


# ------------------------------------------------------------------------------------------------------
# files

@dataclass
class GlueFile:
    """An encoded GLUE file: instances (field ``label`` when it has labels), the rows' ids for submissions."""

    instances: Instances
    ids: list[str]
    path: str


def _columns(spec: GlueSpec, path: str, header: list[str], with_labels: bool) -> tuple[dict[str, int], bool]:
    """{role: column number} of a file, and whether its first line is a header."""
    wanted = {"text_a": spec.text_a, "text_b": spec.text_b, "label": spec.label if with_labels else None}
    if not with_labels and spec.test_text_a:
        wanted["text_a"] = spec.test_text_a
    names = {name.strip(): i for i, name in enumerate(header)}
    if all(column in names for column in wanted.values() if column):
        columns = {role: names[column] for role, column in wanted.items() if column}
        for id_name in ("index", "id"):
            if id_name in names:
                columns["id"] = names[id_name]
        return columns, True
    if spec.headerless:
        numbers = dict(spec.headerless)
        if all(column in numbers for column in wanted.values() if column):
            return {role: numbers[column] for role, column in wanted.items() if column}, False
    missing = [column for column in wanted.values() if column and column not in names]
    raise DataError(f"the header has no column {', '.join(map(repr, missing))} (found: {', '.join(names)}); "
                    "is --data_dir the folder of this GLUE task?", path, 1)


def truncate_pair(a: list[int], b: list[int] | None, budget: int) -> None:
    """HF's (fast tokenizers') 'longest_first' truncation, in place: the shorter text (the first on a tie) keeps
    at most half the budget (rounded down), the other text the rest."""
    if b is None:
        del a[budget:]
        return
    if len(a) + len(b) <= budget:
        return
    short, long_ = (b, a) if len(a) > len(b) else (a, b)
    del short[budget // 2:]
    del long_[budget - len(short):]


def read_glue_file(path: str, spec: GlueSpec, tokenizer: Tokenizer, seq_length: int,
                   with_labels: bool = True) -> GlueFile:
    """Encode a GLUE file as HF's run_glue does: ``[CLS] a [SEP] (b [SEP])``, longest-first truncation; labels
    as the position of the label string in ``spec.labels`` (float scores for regression)."""
    check_input_file(path, "GLUE file")
    lines = [(number, line) for number, line in read_lines(path) if line.strip()]
    if not lines:
        raise DataError("empty file", path)
    columns, has_header = _columns(spec, path, lines[0][1].split("\t"), with_labels)
    rows = lines[1:] if has_header else lines
    vocab = tokenizer.vocab
    sequences, labels, ids = [], [], []
    width = max(columns.values()) + 1
    for position, (number, line) in enumerate(rows):
        fields = line.split("\t")
        if len(fields) < width:
            raise DataError(f"{len(fields)} fields, but the {spec.label if with_labels else 'text'} columns need "
                            f"{width}", path, number)
        a = tokenizer.encode(fields[columns["text_a"]])
        b = tokenizer.encode(fields[columns["text_b"]]) if "text_b" in columns else None
        truncate_pair(a, b, seq_length - (3 if b is not None else 2))
        ids_ = [vocab.cls_id] + a + [vocab.sep_id]
        first = len(ids_)
        if b is not None:
            ids_ += b + [vocab.sep_id]
        sequences.append((ids_, first))
        ids.append(fields[columns["id"]].strip() if "id" in columns else str(position))
        if with_labels:
            value = fields[columns["label"]].strip()
            if spec.regression:
                try:
                    labels.append(float(value))
                except ValueError:
                    raise DataError(f"score {value!r} is not a number", path, number) from None
            elif value in spec.labels:
                labels.append(spec.labels.index(value))
            else:
                raise DataError(f"label {value!r} is not one of {', '.join(spec.labels)}", path, number)
    if not sequences:
        raise DataError("no examples (only a header)", path)
    fields_ = {}
    if with_labels:
        fields_["label"] = np.asarray(labels, dtype=np.float32 if spec.regression else np.int64)
    return GlueFile(Instances.from_sequences(sequences, fields_), ids, path)


# ------------------------------------------------------------------------------------------------------
# the model

class GlueClassifier(Classifier):
    """HF's BertForSequenceClassification on our encoder: tanh(output_layer_1) over [CLS] (HF's pooler),
    dropout, output_layer_2 (HF's classifier); cross-entropy, or MSE on one output (regression)."""

    def __init__(self, embedding: nn.Module, encoder: nn.Module, hidden_size: int, labels_num: int,
                 dropout: float, regression: bool) -> None:
        super().__init__(embedding, encoder, hidden_size, labels_num, pooling="first")
        self.dropout = nn.Dropout(dropout)
        self.regression = regression

    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        from uer.layers.pooling import encode_and_pool

        pooled = torch.tanh(self.output_layer_1(encode_and_pool(self.embedding, self.encoder, batch["src"],
                                                                batch["seg"], "first")))
        return self.output_layer_2(self.dropout(pooled))

    def forward(self, batch: dict[str, torch.Tensor]) -> HeadOutput:
        logits = self.logits(batch)
        if not self.regression:
            return classification_output(logits, batch, 0.0)
        if "label" not in batch:
            return HeadOutput(None, {"logits": logits})
        error = (logits.float().squeeze(-1) - batch["label"].float()) ** 2
        return HeadOutput(error, {"logits": logits}, {"squared_error": error.detach()})


# ------------------------------------------------------------------------------------------------------
# HF model folders: read by uer/hf_folder.py (through --pretrained_model_path); written here as
# BertForSequenceClassification

def pretrained_state(path: str) -> dict[str, torch.Tensor]:
    """Our state dict of a pre-trained model (an HF folder or our file), BERT's pooler as ``output_layer_1``: HF's
    BertForSequenceClassification starts its classifier's pooler from the pre-trained one (our key for it, in a
    BERT model or a BertModel folder, is the next-sentence head's first layer)."""
    from uer.model_loader import load_state_dict

    state = load_state_dict(path)
    if "output_layer_1.weight" not in state and "target.sp.linear_1.weight" in state:
        for suffix in (".weight", ".bias"):
            state["output_layer_1" + suffix] = state.pop("target.sp.linear_1" + suffix)
    return state


def write_hf_folder(model: GlueClassifier, folder: str, spec: GlueSpec, task_name: str, tokenizer: Tokenizer,
                    heads_num: int, hidden_act: str, layer_norm_eps: float) -> None:
    """A complete HF BertForSequenceClassification folder: config.json (labels named), model.safetensors and the
    tokenizer files (uer/hf_folder.py's writer: vocab.txt, tokenizer_config.json with the casing, special tokens)."""
    from safetensors.torch import save_file

    from uer.converters import bert
    from uer.hf_folder import write_tokenizer_files
    from uer.model_saver import model_state_dict
    from uer.utils.io import atomic_write

    hf_state = bert.uer_to_hf(model_state_dict(model), "text_classification")
    config = bert.hf_config(hf_state, "text_classification", heads_num, hidden_act, layer_norm_eps)
    labels = spec.labels or ("LABEL_0",)
    config.update(id2label={str(i): name for i, name in enumerate(labels)},
                  label2id={name: i for i, name in enumerate(labels)}, finetuning_task=task_name,
                  problem_type="regression" if spec.regression else "single_label_classification")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {key: value.detach().contiguous().cpu() for key, value in hf_state.items()}
    atomic_write(out / "model.safetensors", lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    atomic_write_text(out / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
    write_tokenizer_files(out, tokenizer, "bert", int(config["max_position_embeddings"]))


# ------------------------------------------------------------------------------------------------------
# the task

class GlueTask(Task):
    name = "glue"
    summary = "GLUE's nine tasks from their own files, HF's recipe and metrics, HF folders in and out (run_glue.py)"
    # run_glue.py is not this task's UER-style command but HF's flags mapped onto it (uer/finetune/glue_args.py, uer.cli.finetune.run_glue)
    train_doc = r"""Fine-tune and evaluate on a GLUE task, as HuggingFace's run_glue.py (whose flags run_glue.py takes).

    uer-finetune --task glue --glue_task mrpc --data_dir glue/MRPC --pretrained_model_path all-MiniLM-L6-v2/ \
        --output_dir out/mrpc --do_train --do_eval

--pretrained_model_path is a HuggingFace BERT folder (config.json, model.safetensors or pytorch_model.bin,
vocab.txt): sizes, casing and vocabulary come from it. Files: GLUE's own (train.tsv, dev.tsv or
dev_matched/dev_mismatched.tsv, test.tsv) in --data_dir. --output_dir receives the fine-tuned model as a
HuggingFace folder, eval_results.txt/.json (HF's metric names) and, with --do_predict, GLUE's submission files.
Defaults are HF's: batch 8, learning rate 5e-5, AdamW with bias correction (always: --adam_bias_correction is
on), epsilon 1e-8, no warm-up, linear decay, gradient clipping at 1.0, seed 42.
"""
    data_paths = False
    early_stopping = False
    input_options = ("data_dir",)
    # HF's run_glue defaults (TrainingArguments)
    defaults = {"batch_size": 8, "learning_rate": 5e-5, "epochs_num": 3, "warmup": 0.0, "weight_decay": 0.0,
                "seed": 42, "max_grad_norm": 1.0, "report_steps": 500, "adam_bias_correction": True,
                "adam_epsilon": 1e-8, "length_bucketing": False}  # HF's random batches (--length_bucketing: ours)

    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser, mode: str) -> None:
        group = parser.add_argument_group("GLUE")
        group.add_argument("--glue_task", required=True, type=str.lower, choices=list(GLUE_TASKS),
                           help="The GLUE task (any case).")
        group.add_argument("--data_dir", required=True, help="The task's folder of GLUE files.")
        group.add_argument("--output_dir", required=True,
                           help="Where the fine-tuned HF folder, eval_results.txt/.json and submissions go.")
        group.add_argument("--overwrite_output_dir", action="store_true",
                           help="Write into a non-empty --output_dir (refused otherwise).")
        group.add_argument("--do_train", action="store_true", help="Fine-tune on train.tsv.")
        group.add_argument("--do_eval", action="store_true", help="Evaluate on the dev file(s).")
        group.add_argument("--do_predict", action="store_true", help="Write GLUE submission files for test.tsv.")
        group.add_argument("--num_train_epochs", type=finite_positive_float, default=None,
                           help="Passes over the training set, fractions allowed: ceil(epochs x steps per epoch) "
                                "optimiser steps (HF's rule); replaces --epochs_num.")
        group.add_argument("--max_steps", type=positive_int, default=None,
                           help="Optimiser steps; overrides the epochs (HF's max_steps).")
        group.add_argument("--warmup_steps", type=non_negative_int, default=None,
                           help="Warm-up steps (HF's); replaces --warmup (a fraction).")
        group.add_argument("--eval_batch_size", type=positive_int, default=8, help="Instances per evaluation forward.")
        group.add_argument("--save_steps", type=non_negative_int, default=0,
                           help="Also write --output_dir/checkpoint-STEP (an HF folder) every N steps; 0: none.")

    @classmethod
    def check_options(cls, args: argparse.Namespace, mode: str) -> None:
        explicit = getattr(args, "explicit", set())
        if not (args.do_train or args.do_eval or args.do_predict):
            raise UsageError("give --do_train, --do_eval and/or --do_predict: nothing to do")
        if not args.pretrained_model_path:
            raise UsageError("give the model: --pretrained_model_path (run_glue.py: --model_name_or_path), an HF "
                             "model folder or our model file")
        if "epochs_num" in explicit and args.num_train_epochs is not None:
            raise UsageError("give --epochs_num or --num_train_epochs, not both")
        if args.num_train_epochs is not None and not args.num_train_epochs > 0:
            raise UsageError(f"--num_train_epochs must be positive, got {args.num_train_epochs}")
        if "warmup" in explicit and args.warmup_steps is not None:
            raise UsageError("give --warmup (a fraction) or --warmup_steps, not both")
        for flag in ("warmup_steps", "save_steps"):
            if (getattr(args, flag) or 0) < 0:
                raise UsageError(f"--{flag} must not be negative")
        if args.eval_batch_size < 1:
            raise UsageError(f"--eval_batch_size must be positive, got {args.eval_batch_size}")
        if args.do_train and "output_model_path" not in explicit:
            args.output_model_path = os.path.join(args.output_dir, "uer_model.bin")
        out = Path(args.output_dir)
        if out.is_dir() and any(out.iterdir()) and args.do_train and not args.overwrite_output_dir:
            raise UsageError(f"--output_dir {out} exists and is not empty; use --overwrite_output_dir to write "
                             "into it")
        if out.exists() and not out.is_dir():
            raise UsageError(f"--output_dir {out} is a file, not a folder")
        out.mkdir(parents=True, exist_ok=True)  # as HF: the run's outputs all go there

    def __init__(self, args: argparse.Namespace, tokenizer: Tokenizer) -> None:
        super().__init__(args, tokenizer)
        self.spec = glue_spec(args.glue_task)

    def data_file(self, name: str) -> str:
        return os.path.join(self.args.data_dir, name)

    def read(self, name: str, with_labels: bool = True) -> GlueFile:
        return read_glue_file(self.data_file(name), self.spec, self.tokenizer, self.args.seq_length, with_labels)

    @property
    def labels_num_(self) -> int:
        return 1 if self.spec.regression else len(self.spec.labels)

    def build_model(self, pretrained: bool) -> nn.Module:
        from uer.finetune.builders import encoder_from_args, init_head
        from uer.model_loader import load_model_weights

        cfg, embedding, encoder = encoder_from_args(self.args, len(self.tokenizer.vocab))
        model = GlueClassifier(embedding, encoder, cfg.hidden_size, self.labels_num_, self.args.dropout,
                               self.spec.regression)
        init_head(model)
        if pretrained:
            state = pretrained_state(self.args.pretrained_model_path)
            if "output_layer_2.weight" in state and state["output_layer_2.weight"].shape[0] != self.labels_num_:
                raise UsageError(f"{self.args.pretrained_model_path} is a classifier with "
                                 f"{state['output_layer_2.weight'].shape[0]} labels; {self.args.glue_task} has "
                                 f"{self.labels_num_}")
            load_model_weights(model, self.args.pretrained_model_path, state=state)
        return model

    def fit(self, ctx) -> None:
        """HF's run_glue: read every file first, train (no evaluation during training), write the HF folder,
        evaluate on dev, predict the test files."""
        from uer.data.finetune_data import batches_per_epoch
        from uer.finetune.builders import finetune_config_from_args
        from uer.finetune.loop import FineTuner

        args = self.args
        train = self.read("train.tsv") if args.do_train else None
        dev = [(name, self.read(file)) for file, name in self.spec.dev] if args.do_eval else []
        test = [(name, self.read(file, with_labels=False)) for file, name in self.spec.test] if args.do_predict else []
        model = self.build_model(pretrained=True)
        if ctx.is_main:
            logger.info("GLUE %s: %s; %s", args.glue_task, ", ".join(
                f"{what} {len(f.instances)}" for what, f in [("train", train)] + dev + test if f is not None),
                "regression" if self.spec.regression else f"labels {', '.join(self.spec.labels)}")
        if train is not None:
            steps_per_epoch = batches_per_epoch(train.instances, args.batch_size)
            epochs = args.num_train_epochs if args.num_train_epochs is not None else args.epochs_num
            total = args.max_steps or math.ceil(epochs * steps_per_epoch)
            warmup = args.warmup if args.warmup_steps is None else min(1.0, (args.warmup_steps + 0.5) / total)
            cfg = finetune_config_from_args(
                args, epochs_num=math.ceil(total / steps_per_epoch), max_steps=total, warmup=warmup,
                checkpoint_steps=args.save_steps)
            tuner = FineTuner(model, cfg, ctx, self.tokenizer.vocab.pad_id, checkpoint=self.write_checkpoint)
            tuner.fit(train.instances, [])
            model = tuner.model
            if ctx.is_main:
                self.write_folder(model, args.output_dir)
        if not ctx.is_main:
            return
        device = ctx.device
        model = model.to(device)
        if dev:
            self.evaluate(model, dev, device)
        for name, data in test:
            self.write_submission(model, name, data, device)

    def write_folder(self, model: nn.Module, folder: str) -> None:
        args = self.args
        write_hf_folder(model, folder, self.spec, args.glue_task, self.tokenizer, args.heads_num, args.hidden_act,
                        args.layernorm_eps if args.layernorm_eps is not None else 1e-12)
        logger.info("wrote the fine-tuned model as a HuggingFace folder: %s", folder)

    def write_checkpoint(self, model: nn.Module, step: int) -> None:
        self.write_folder(model, os.path.join(self.args.output_dir, f"checkpoint-{step}"))

    def logits(self, model: nn.Module, data: GlueFile, device) -> np.ndarray:
        from uer.finetune.loop import predict

        predictions = predict(model, data.instances, self.args.eval_batch_size, self.tokenizer.vocab.pad_id, device,
                              desc=f"predicting {data.path}")
        return np.stack([p["logits"] for p in predictions]).astype(np.float64)

    def evaluate(self, model: nn.Module, dev: list[tuple[str, GlueFile]], device) -> dict[str, float]:
        results: dict[str, float] = {}
        for name, data in dev:
            logits = self.logits(model, data, device)
            labels = data.instances.fields["label"]
            if self.spec.regression:
                preds = logits[:, 0]
                loss = float(np.mean((preds - labels) ** 2))
            else:
                preds = logits.argmax(-1)
                shifted = logits - logits.max(-1, keepdims=True)
                log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
                loss = float(-log_probs[np.arange(len(labels)), labels].mean())
            results.update(glue_metrics(self.spec, name, preds, labels))
            results[f"{name}/eval_loss" if name in ("mnli", "mnli-mm") else "eval_loss"] = loss
        text = "".join(f"{key} = {value}\n" for key, value in sorted(results.items()))
        logger.info("***** eval results (%s) *****\n%s", self.args.glue_task, text.rstrip())
        atomic_write_text(os.path.join(self.args.output_dir, "eval_results.txt"), text)
        atomic_write_text(os.path.join(self.args.output_dir, "eval_results.json"),
                          json.dumps(results, indent=2, sort_keys=True) + "\n")
        return results

    def write_submission(self, model: nn.Module, name: str, data: GlueFile, device) -> None:
        logits = self.logits(model, data, device)
        if self.spec.regression:
            values = [f"{v:.3f}" for v in logits[:, 0]]
        else:
            values = [self.spec.labels[i] for i in logits.argmax(-1)]
        path = os.path.join(self.args.output_dir, SUBMISSION_FILES[name])
        atomic_write_text(path, "index\tprediction\n" + "".join(f"{i}\t{v}\n" for i, v in zip(data.ids, values)))
        logger.info("wrote GLUE's submission file %s (%d predictions of %s)", path, len(values), data.path)


register_task(GlueTask)
