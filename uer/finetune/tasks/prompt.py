"""Prompt classification (run_classifier_prompt.py, inference/run_classifier_prompt_infer.py, the prediction
server): each text is put into a cloze template, the pre-trained MLM head scores the answer words at its
[MASK], and each answer word stands for a label. ``--epochs_num 0`` evaluates without training (zero-shot).

Prompt file (UER-py's ``models/prompts.json``): ``{prompt_id: {"template": "[TEXT_A],我[ANS]满意",
"answer_words": {"0": "不", "1": "很"}}}``. ``[TEXT_A]``, ``[TEXT_B]`` and ``[ANS]`` (the [MASK]) are
placeholders; other text is tokenized. Each answer word must be one vocabulary entry. The TSV ``label`` column
holds the keys of ``answer_words``.

Where this differs from UER-py (its defects, not its format): the MLM head is loaded from the pre-trained file
(UER-py names it ``target.*`` while pre-trained files store ``target.mlm.*``, so only the tied output matrix
loaded); the loss is cross-entropy over the answer words' logits (UER-py multiplies the vocabulary logits by a
0/1 mask, so other words keep logit 0 in its softmax); long texts are cut so the template always fits (UER-py
drops such rows or fails in pair mode); the prediction file's ``label`` is the label key (UER-py writes
``tensor(k)`` with k in vocabulary-id order), and its ``logits``/``prob`` columns follow ``answer_words``' order.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from uer.data.finetune_data import DataError, Instances, read_tsv_lines
from uer.config import ConfigError
from uer.errors import UsageError
from uer.finetune.contract import EvalSet, Evaluation, HeadOutput, Prediction, stack_outputs
from uer.finetune.metrics import classification_report
from uer.finetune.tasks.base import InferenceData, Task, TrainingData, register_task
from uer.finetune.tasks.classifier import add_prediction_columns_options, format_values, softmax
from uer.text.tokenizers import Tokenizer
from uer.utils.io import atomic_write_text

logger = logging.getLogger("uer.finetune")

PLACEHOLDERS = ("[TEXT_A]", "[TEXT_B]", "[ANS]")


@dataclass(frozen=True)
class Prompt:
    """A parsed template: pieces are placeholders or token ids; labels and answer ids in the file's order."""

    prompt_id: str
    pieces: tuple[str | tuple[int, ...], ...]
    labels: tuple[str, ...]
    answer_ids: tuple[int, ...]

    @property
    def pairs(self) -> bool:
        return "[TEXT_B]" in self.pieces

    @property
    def fixed_length(self) -> int:
        """Tokens of the template itself: literal pieces, the [MASK], [CLS] and the final [SEP] (and the
        [SEP] after text_a in pair templates)."""
        literal = sum(len(p) for p in self.pieces if isinstance(p, tuple))
        return literal + 1 + 2 + (1 if self.pairs else 0)


def load_prompt(path: str, prompt_id: str, tokenizer: Tokenizer) -> Prompt:
    """The prompt ``prompt_id`` of the prompt file ``path``, its pieces tokenized and answer words looked up."""
    from uer.config import load_json_config

    data = load_json_config(path)
    if not isinstance(data, dict) or prompt_id not in data:
        known = ", ".join(sorted(data)) if isinstance(data, dict) else "none"
        raise ConfigError(f"{path}: no prompt {prompt_id!r} (prompts in the file: {known})")
    entry = data[prompt_id]
    if not isinstance(entry, dict) or not isinstance(entry.get("template"), str) \
            or not isinstance(entry.get("answer_words"), dict) or not entry["answer_words"]:
        raise ConfigError(f"{path}: prompt {prompt_id!r} needs a 'template' string and an 'answer_words' object "
                          "(label -> answer word)")
    template = entry["template"]
    if template.count("[ANS]") != 1 or template.count("[TEXT_A]") != 1 or template.count("[TEXT_B]") > 1:
        raise ConfigError(f"{path}: prompt {prompt_id!r}: the template must hold [ANS] and [TEXT_A] once each "
                          f"(and [TEXT_B] at most once), got {template!r}")
    if "[TEXT_B]" in template and template.index("[TEXT_B]") < template.index("[TEXT_A]"):
        raise ConfigError(f"{path}: prompt {prompt_id!r}: [TEXT_B] must come after [TEXT_A]")
    pieces: list[str | tuple[int, ...]] = []
    for part in re.split(r"(\[TEXT_A\]|\[TEXT_B\]|\[ANS\])", template):
        if part in PLACEHOLDERS:
            pieces.append(part)
        elif part:
            pieces.append(tuple(tokenizer.encode(part)))
    vocab = tokenizer.vocab
    labels, answer_ids = [], []
    for label, word in entry["answer_words"].items():
        if not isinstance(word, str) or word not in vocab.w2i:
            raise ConfigError(f"{path}: prompt {prompt_id!r}: answer word {word!r} of label {label!r} is not one "
                              "entry of the vocabulary (each answer word must be a single token)")
        labels.append(str(label))
        answer_ids.append(vocab.w2i[word])
    if len(set(answer_ids)) != len(answer_ids):
        raise ConfigError(f"{path}: prompt {prompt_id!r}: two labels share an answer word")
    return Prompt(prompt_id, tuple(pieces), tuple(labels), tuple(answer_ids))


def fill_template(prompt: Prompt, tokenizer: Tokenizer, text_a: str, text_b: str | None,
                  seq_length: int) -> tuple[list[int], int]:
    """``[CLS]`` + the template with the texts and a [MASK] + ``[SEP]``, at most ``seq_length`` tokens (texts are
    cut, text_a first, so the template always fits). Returns (ids, position of the [MASK])."""
    vocab = tokenizer.vocab
    room = max(0, seq_length - prompt.fixed_length)
    a = tokenizer.encode(text_a)
    b = tokenizer.encode(text_b) if prompt.pairs and text_b is not None else []
    a = a[:room]
    b = b[:room - len(a)]
    ids = [vocab.cls_id]
    mask_pos = -1
    for piece in prompt.pieces:
        if piece == "[TEXT_A]":
            ids.extend(a + ([vocab.sep_id] if prompt.pairs else []))
        elif piece == "[TEXT_B]":
            ids.extend(b)
        elif piece == "[ANS]":
            mask_pos = len(ids)
            ids.append(vocab.mask_id)
        else:
            ids.extend(piece)
    ids.append(vocab.sep_id)
    return ids[:seq_length], mask_pos


def encode_prompts(prompt: Prompt, tokenizer: Tokenizer, texts: list[str], texts_b: list[str | None],
                   seq_length: int, fields: dict[str, np.ndarray] | None = None) -> Instances:
    """Instances of the filled template of each text (pair), with field ``mask_pos`` (and ``fields``)."""
    sequences, positions = [], []
    for a, b in zip(texts, texts_b):
        ids, mask_pos = fill_template(prompt, tokenizer, a, b, seq_length)
        if mask_pos >= seq_length:
            raise UsageError(f"--seq_length {seq_length} is too short for the template of {prompt.prompt_id!r} "
                             f"({prompt.fixed_length} tokens without the texts)")
        sequences.append((ids, len(ids)))
        positions.append(mask_pos)
    return Instances.from_sequences(sequences, {"mask_pos": np.asarray(positions, dtype=np.int64), **(fields or {})})


def read_prompt_file(path: str, prompt: Prompt, tokenizer: Tokenizer, seq_length: int,
                     with_labels: bool = True) -> Instances:
    """Encode a TSV (``text_a``, ``text_b`` for pair templates, ``label`` = an answer_words key) into
    instances with fields ``mask_pos`` and (with labels) ``label`` = the label's index in answer_words."""
    required = ("text_a",) + (("text_b",) if prompt.pairs else ()) + (("label",) if with_labels else ())
    columns, rows, lines = read_tsv_lines(path, required=required)
    if with_labels and not rows:
        raise DataError("no examples (only a header)", path, 1)
    fields = {}
    if with_labels:
        index = {label: i for i, label in enumerate(prompt.labels)}
        labels = []
        for row, line in zip(rows, lines):
            value = row[columns["label"]].strip()
            if value not in index:
                raise DataError(f"label {value!r} is not a label of prompt {prompt.prompt_id!r} (its labels: "
                                f"{', '.join(prompt.labels)})", path, line)
            labels.append(index[value])
        fields["label"] = np.asarray(labels, dtype=np.int64)
    a, b = columns["text_a"], columns.get("text_b")
    return encode_prompts(prompt, tokenizer, [row[a] for row in rows],
                          [None if b is None else row[b] for row in rows], seq_length, fields)


# ------------------------------------------------------------------------------------------------------
# the model

class PromptClassifier(nn.Module):
    """Embedding + encoder + the pre-trained MLM head (``target.mlm.*``, the keys of a pre-trained file); the
    logits of a text are the MLM logits of the answer words at its [MASK] (output ``logits`` [B x labels])."""

    def __init__(self, embedding: nn.Module, encoder: nn.Module, target: nn.Module, answer_ids: tuple[int, ...]) -> None:
        super().__init__()
        self.embedding = embedding
        self.encoder = encoder
        self.target = target
        self.register_buffer("answer_ids", torch.tensor(answer_ids, dtype=torch.long), persistent=False)

    def forward(self, batch: dict[str, torch.Tensor]) -> HeadOutput:
        src, seg = batch["src"], batch["seg"]
        hidden = self.encoder(self.embedding(src, seg), seg)
        flat = torch.arange(src.shape[0], device=src.device) * src.shape[1] + batch["mask_pos"]
        logits = self.target.mlm.logits(hidden, flat, self.answer_ids).float()
        if "label" not in batch:
            return HeadOutput(None, {"logits": logits})
        label = batch["label"]
        correct = (logits.argmax(-1) == label).float()
        return HeadOutput(F.cross_entropy(logits, label, reduction="none"), {"logits": logits},
                          {"correct": correct, "count": torch.ones_like(correct)})


def prompt_metric(labels_num: int):
    def metric(predictions: list[Prediction], data: Instances) -> Evaluation:
        report = classification_report(data.fields["label"], stack_outputs(predictions, "logits").argmax(-1),
                                       labels_num)
        return Evaluation(report.scores(), report.summary(), report.format())

    return metric


# ------------------------------------------------------------------------------------------------------
# the task

class PromptTask(Task):
    name = "prompt"
    summary = "cloze classification through the MLM head: template + answer words (run_classifier_prompt.py)"
    train_script = "run_classifier_prompt.py"
    infer_script = "run_classifier_prompt_infer.py"
    train_doc = r"""Classify with a cloze template and the pre-trained MLM head (few-shot training, or zero-shot with --epochs_num 0).

    python3 run_classifier_prompt.py --pretrained_model_path models/google_zh_model.bin \
        --vocab_path models/google_zh_vocab.txt --config_path models/bert/base_config.json \
        --train_path datasets/chnsenticorp/train.tsv --dev_path datasets/chnsenticorp/dev.tsv \
        --test_path datasets/chnsenticorp/test.tsv --prompt_id chnsenticorp_char --prompt_path models/prompts.json \
        --learning_rate 3e-5 --epochs_num 3 --batch_size 32 --seq_length 128

Prompt file: {id: {"template": "[TEXT_A],我[ANS]满意", "answer_words": {"0": "不", "1": "很"}}}; each answer word
one vocabulary entry; the TSV ``label`` column holds the answer_words keys. --epochs_num 0 evaluates dev and
test with the pre-trained model (zero-shot) and writes it, head included, to --output_model_path.
"""
    infer_doc = r"""Predict labels with a prompt model (from run_classifier_prompt.py, or a pre-trained model for zero-shot).

    python3 inference/run_classifier_prompt_infer.py --load_model_path models/finetuned_model.bin \
        --vocab_path models/google_zh_vocab.txt --config_path models/bert/base_config.json \
        --test_path datasets/chnsenticorp/test_nolabel.tsv --prediction_path datasets/chnsenticorp/prediction.tsv \
        --prompt_id chnsenticorp_char --seq_length 128 --output_prob

Writes a TSV with a header: ``label`` (the answer_words key), then ``logits`` (--output_logits) and ``prob``
(--output_prob, softmax over the answer words), one value per label in the prompt file's order.
"""
    defaults = {"batch_size": 32}  # UER-py 2024's training default
    infer_defaults = {"batch_size": 64}
    input_options = ("prompt_path",)
    zero_epochs = True  # --epochs_num 0: zero-shot

    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser, mode: str) -> None:
        group = parser.add_argument_group("prompt")
        group.add_argument("--prompt_id", default="chnsenticorp_char", help="Key of the template in --prompt_path.")
        group.add_argument("--prompt_path", default="models/prompts.json",
                           help="Prompt file (JSON: id -> template and answer words).")
        if mode == "infer":
            add_prediction_columns_options(group)

    def __init__(self, args: argparse.Namespace, tokenizer: Tokenizer) -> None:
        super().__init__(args, tokenizer)
        self.prompt = load_prompt(args.prompt_path, args.prompt_id, tokenizer)

    def eval_set(self, name: str, data: Instances) -> EvalSet:
        return EvalSet(name, data, prompt_metric(len(self.prompt.labels)), "acc")

    def read_training(self) -> TrainingData:
        args = self.args
        read = lambda path: read_prompt_file(path, self.prompt, self.tokenizer, args.seq_length)  # noqa: E731
        train, dev = read(args.train_path), read(args.dev_path)
        test = read(args.test_path) if args.test_path else None
        return TrainingData(train, [self.eval_set("dev", dev)], [self.eval_set("test", test)] if test else [])

    def describe(self, data: TrainingData) -> str:
        vocab = self.tokenizer.vocab
        answers = ", ".join(f"{label}={vocab.i2w[i]}" for label, i in zip(self.prompt.labels, self.prompt.answer_ids))
        return f"prompt {self.prompt.prompt_id!r} from {self.args.prompt_path}: answers {answers}" + (
            "; zero-shot (--epochs_num 0)" if self.args.epochs_num == 0 else "")

    def build_model(self, pretrained: bool) -> nn.Module:
        from uer.config import model_config_from_args
        from uer.model_builder import build_model

        args = self.args
        cfg = model_config_from_args(args, len(self.tokenizer.vocab), with_target=False)
        if "pos" in cfg.embedding and args.seq_length > cfg.max_seq_length:
            raise UsageError(f"--seq_length {args.seq_length} exceeds the model's max_seq_length {cfg.max_seq_length}")
        torch.manual_seed(getattr(args, "seed", 7))
        base = build_model(dataclasses.replace(cfg, target=("mlm",)), with_target=True)
        model = PromptClassifier(base.embedding, base.encoder, base.target, self.prompt.answer_ids)
        if pretrained and args.pretrained_model_path:
            self.load_weights(model, args.pretrained_model_path)
        elif pretrained:
            logger.info("no --pretrained_model_path: training from random initialisation (the MLM head too)")
        return model

    @staticmethod
    def load_weights(model: nn.Module, path: str) -> dict[str, list[str]]:
        """Embedding, encoder and MLM head must all be in the file; other targets (``target.sp``) are skipped."""
        from uer.model_loader import load_model_weights

        return load_model_weights(model, path, strict_prefixes=("embedding.", "encoder.", "target.mlm."))

    def load_model(self, path: str) -> nn.Module:
        model = self.build_model(pretrained=False)
        self.load_weights(model, path)
        return model

    def fit(self, ctx) -> None:
        if self.args.epochs_num > 0:
            return super().fit(ctx)
        from uer.finetune.builders import finetune_config_from_args
        from uer.finetune.loop import FineTuner
        from uer.model_saver import save_model

        data = self.read_training()
        model = self.build_model(pretrained=True)
        if ctx.is_main:
            logger.info("%s", self.describe(data))
        tuner = FineTuner(model, finetune_config_from_args(self.args, epochs_num=1), ctx, self.tokenizer.vocab.pad_id)
        tuner.evaluate(data.dev, "zero-shot dev")
        if data.test:
            tuner.evaluate(data.test, "zero-shot test")
        if ctx.is_main:
            save_model(tuner.model, self.args.output_model_path)
            logger.info("saved the pre-trained model with its MLM head to %s", self.args.output_model_path)
        tuner.engine.close()

    def read_inference(self, path: str) -> InferenceData:
        return InferenceData(read_prompt_file(path, self.prompt, self.tokenizer, self.args.seq_length,
                                              with_labels=False))

    def rows(self, logits: np.ndarray, output_logits: bool, output_prob: bool) -> list[str]:
        probs = softmax(logits)
        header = ["label"] + (["logits"] if output_logits else []) + (["prob"] if output_prob else [])
        lines = ["\t".join(header)]
        for i, k in enumerate(probs.argmax(-1)):
            row = [self.prompt.labels[int(k)]]
            if output_logits:
                row.append(format_values(logits[i]))
            if output_prob:
                row.append(format_values(probs[i]))
            lines.append("\t".join(row))
        return lines

    def write_predictions(self, path: str, predictions: list[Prediction], data: InferenceData) -> str:
        logits = stack_outputs(predictions, "logits") if predictions else np.zeros((0, len(self.prompt.labels)))
        atomic_write_text(path, "\n".join(self.rows(logits, self.args.output_logits, self.args.output_prob)) + "\n")
        return f"predicted {len(data.instances)} instances of {self.args.test_path} into {path}"

    def service(self, device, max_batch_size: int):
        """Each text's label key, with the probabilities and logits of the labels (prompt file order)."""
        from uer.serving.tasks import PromptService

        args = self.args
        info = {"model": args.load_model_path, "task": self.name, "device": str(device), "threads": args.threads,
                "prompt_id": self.prompt.prompt_id, "labels": list(self.prompt.labels)}
        return PromptService(self.load_model(args.load_model_path), self.tokenizer, args.seq_length, max_batch_size,
                             device, self.prompt, info)


def predict_prompt(model: nn.Module, prompt: Prompt, tokenizer: Tokenizer, texts: list[str], texts_b: list[str] | None,
                   seq_length: int, batch_size: int, device) -> list[dict]:
    """The server's answers: label key, probabilities and logits of each text (pair)."""
    from uer.finetune.loop import predict

    data = encode_prompts(prompt, tokenizer, texts, texts_b if texts_b is not None else [None] * len(texts),
                          seq_length)
    logits = stack_outputs(predict(model, data, batch_size, tokenizer.vocab.pad_id, device), "logits")
    return [{"label": prompt.labels[int(k)], "probabilities": p.tolist(), "logits": row.tolist()}
            for k, p, row in zip(logits.argmax(-1), softmax(logits), logits.astype(np.float64))]


register_task(PromptTask)
