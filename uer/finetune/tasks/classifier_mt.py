"""Multi-task classification (run_classifier_mt.py, old name run_mt_classifier.py; inference/run_classifier_mt_infer.py):
embedding and encoder shared, UER-py's two-layer classifier per task under ``output_layers_1.{i}`` /
``output_layers_2.{i}`` (its checkpoint keys).

Each folder of --dataset_path_list holds train.tsv and dev.tsv (test.tsv, when present, is evaluated with the
kept model at the end). Batches hold one task each and the tasks' batches are interleaved at random every
epoch; the model with the best mean dev accuracy is kept. Inference runs every head on every row: the
prediction file's columns hold one value per task, separated by ``|``.
"""
from __future__ import annotations

import argparse
import os
from typing import Sequence

import numpy as np
import torch
from torch import nn

from uer.data.finetune_data import Instances
from uer.errors import DataError, UsageError
from uer.finetune.contract import EvalSet, HeadOutput, Prediction, stack_outputs
from uer.finetune.tasks.base import InferenceData, Task, TrainingData, register_task
from uer.finetune.tasks.classifier import (add_classifier_options, add_prediction_columns_options,
                                           classification_metric, classification_output, count_labels,
                                           format_values, has_text_b, read_classification, softmax)
from uer.layers.pooling import encode_and_pool
from uer.names import POOLINGS
from uer.utils.io import atomic_write_text
from uer.utils.ranges import positive_int


class MultitaskClassifier(nn.Module):
    """Shared embedding and encoder, one two-layer classifier per task; ``batch["task"]`` picks the head.

    Every instance of a batch belongs to the same task (the loop never mixes datasets in a batch).
    """

    def __init__(self, embedding: nn.Module, encoder: nn.Module, hidden_size: int, labels_nums: list[int],
                 pooling: str = "first") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
        self.embedding = embedding
        self.encoder = encoder
        self.pooling = pooling
        self.labels_nums = list(labels_nums)
        self.output_layers_1 = nn.ModuleList([nn.Linear(hidden_size, hidden_size) for _ in labels_nums])
        self.output_layers_2 = nn.ModuleList([nn.Linear(hidden_size, n) for n in labels_nums])

    def forward(self, batch: dict[str, torch.Tensor]) -> HeadOutput:
        task = int(batch["task"][0])
        pooled = encode_and_pool(self.embedding, self.encoder, batch["src"], batch["seg"], self.pooling)
        logits = self.output_layers_2[task](torch.tanh(self.output_layers_1[task](pooled)))
        return classification_output(logits, batch, 0.0)  # no soft targets: the script refuses --soft_targets


class AllTaskLogits(nn.Module):
    """A multi-task classifier read by every head at once (the encoder runs once per batch): outputs
    ``task_0``, ``task_1``, ... hold each task's logits [batch_size x labels_num]."""

    def __init__(self, model: MultitaskClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> HeadOutput:
        m = self.model
        pooled = encode_and_pool(m.embedding, m.encoder, batch["src"], batch["seg"], m.pooling)
        return HeadOutput(None, {f"task_{i}": layer_2(torch.tanh(layer_1(pooled)))
                                 for i, (layer_1, layer_2) in enumerate(zip(m.output_layers_1, m.output_layers_2))})


def format_predictions(per_task: Sequence[np.ndarray], output_logits: bool, output_prob: bool) -> str:
    probs = [softmax(task) for task in per_task]
    header = ["label"] + (["logits"] if output_logits else []) + (["prob"] if output_prob else [])
    lines = ["\t".join(header)]
    for i in range(len(per_task[0])):
        row = ["|".join(str(int(task[i].argmax())) for task in per_task)]
        if output_logits:
            row.append("|".join(format_values(task[i]) for task in per_task))
        if output_prob:
            row.append("|".join(format_values(task[i]) for task in probs))
        lines.append("\t".join(row))
    return "\n".join(lines) + "\n"


class ClassifierMtTask(Task):
    name = "classifier_mt"
    summary = "several classification data sets, one shared encoder, a head each (run_classifier_mt.py)"
    train_script = "run_classifier_mt.py"
    script_aliases = ("run_mt_classifier.py",)
    infer_script = "run_classifier_mt_infer.py"
    output_model_path = "models/multitask_classifier_model.bin"
    data_paths = False
    input_options = ("dataset_path_list",)
    train_doc = r"""Multi-task classification: embedding and encoder shared, one two-layer classifier per task.

    python3 run_classifier_mt.py --pretrained_model_path models/google_zh_model.bin --vocab_path models/google_zh_vocab.txt \
        --dataset_path_list datasets/douban_book_review/ datasets/chnsenticorp/ \
        --epochs_num 1 --batch_size 64 --embedding word_pos_seg --encoder transformer --mask fully_visible

Each folder of --dataset_path_list holds train.tsv and dev.tsv (test.tsv, when present, is evaluated
with the kept model at the end). Batches hold one task each and the tasks' batches are interleaved in a
random order every epoch. Every task's dev set is evaluated after each epoch; the model with the best
mean dev accuracy is written to --output_model_path (heads under output_layers_1.{i}/output_layers_2.{i},
UER-py's keys). The old name run_mt_classifier.py runs this script.
"""
    infer_doc = r"""Predict with a multi-task classifier of run_classifier_mt.py: every task's head on every row.

    python3 inference/run_classifier_mt_infer.py --load_model_path models/multitask_classifier_model.bin \
        --vocab_path models/google_zh_vocab.txt --test_path datasets/test_nolabel.tsv \
        --prediction_path datasets/prediction.tsv --labels_num_list 2 2 --output_logits --output_prob \
        --embedding word_pos_seg --encoder transformer --mask fully_visible

Writes ``label`` (and ``logits``/``prob`` on request) with one value per task separated by ``|``, in the
order of training's --dataset_path_list (as UER-py's script).
"""

    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser, mode: str) -> None:
        group = parser.add_argument_group("multi-task")
        if mode == "train":
            group.add_argument("--dataset_path_list", nargs="+", required=True,
                               help="Task folders, each with train.tsv and dev.tsv (test.tsv optional).")
        else:
            group.add_argument("--labels_num_list", type=positive_int, nargs="+", required=True,
                               help="Number of labels of each task, in training order.")
            add_prediction_columns_options(group)
        add_classifier_options(parser)

    @classmethod
    def check_options(cls, args: argparse.Namespace, mode: str) -> None:
        if args.soft_targets:
            raise UsageError("--soft_targets is not supported for multi-task training")
        if mode != "train" and min(args.labels_num_list) < 1:
            raise UsageError(f"--labels_num_list: every task needs at least one label, got {args.labels_num_list}")

    @classmethod
    def extra_inputs(cls, args: argparse.Namespace, mode: str) -> dict[str, str]:
        if mode != "train":
            return {}
        return {f"{folder}/{name}": os.path.join(folder, name) for folder in args.dataset_path_list
                for name in ("train.tsv", "dev.tsv", "test.tsv")}

    def __init__(self, args: argparse.Namespace, tokenizer) -> None:
        super().__init__(args, tokenizer)
        self.labels_nums: list[int] = list(getattr(args, "labels_num_list", None) or [])

    def read_training(self) -> TrainingData:
        args = self.args
        folders = [os.path.normpath(path) for path in args.dataset_path_list]
        for folder in folders:
            if not os.path.isdir(folder):
                raise DataError("not a folder (--dataset_path_list takes task folders holding train.tsv and dev.tsv)",
                                folder)
        self.folders = folders
        self.labels_nums = [count_labels(os.path.join(folder, "train.tsv")) for folder in folders]
        pairs = [has_text_b(os.path.join(folder, "train.tsv")) for folder in folders]

        def read(task: int, name: str) -> Instances:
            data = read_classification(os.path.join(folders[task], name), self.tokenizer, args.seq_length,
                                       self.labels_nums[task], pairs=pairs[task],
                                       pairs_from=os.path.join(folders[task], "train.tsv"), closing_sep=self.closing_sep)
            data.fields["task"] = np.full(len(data), task, dtype=np.int64)  # selects the head
            return data

        def eval_set(task: int, name: str) -> EvalSet:
            return EvalSet(f"{task}: {os.path.basename(folders[task])}", read(task, name),
                           classification_metric(self.labels_nums[task]))

        tasks = range(len(folders))
        return TrainingData([read(task, "train.tsv") for task in tasks], [eval_set(task, "dev.tsv") for task in tasks],
                            [eval_set(task, "test.tsv") for task in tasks
                             if os.path.isfile(os.path.join(folders[task], "test.tsv"))])

    def describe(self, data: TrainingData) -> str:
        return "; ".join(f"task {task}: {folder}, {n} labels"
                         for task, (folder, n) in enumerate(zip(self.folders, self.labels_nums)))

    def find_unused_parameters(self) -> bool:
        return True  # every task's head is idle in the other tasks' steps

    def build_model(self, pretrained: bool) -> nn.Module:
        from uer.finetune.builders import encoder_from_args, init_head, load_pretrained

        cfg, embedding, encoder = encoder_from_args(self.args, len(self.tokenizer.vocab))
        model = MultitaskClassifier(embedding, encoder, cfg.hidden_size, self.labels_nums, self.args.pooling)
        if pretrained:
            init_head(model)
            load_pretrained(model, self.args.pretrained_model_path)
        return model

    def read_inference(self, path: str) -> InferenceData:
        return InferenceData(read_classification(path, self.tokenizer, self.args.seq_length, with_labels=False,
                                                 closing_sep=self.closing_sep))

    def load_model(self, path: str) -> nn.Module:
        return AllTaskLogits(super().load_model(path))

    def write_predictions(self, path: str, predictions: list[Prediction], data: InferenceData) -> str:
        per_task = [stack_outputs(predictions, f"task_{i}") if predictions else np.zeros((0, n), np.float32)
                    for i, n in enumerate(self.labels_nums)]
        atomic_write_text(path, format_predictions(per_task, self.args.output_logits, self.args.output_prob))
        return (f"predicted {len(data.instances)} rows of {self.args.test_path} for {len(self.labels_nums)} tasks "
                f"into {path}")


register_task(ClassifierMtTask)
