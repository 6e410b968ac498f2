"""Regression (run_regression.py, inference/run_regression_infer.py, the prediction server): one real number per
text or cross-encoded pair (STS-B similarity, a rating), from UER-py's two-layer head over the pooled encoder
output with one output, mean squared error. Dev and test print Spearman and Pearson correlation; the kept model
is the one of the best dev Spearman.

File format (UER-py): a header row naming the columns, then tab-separated rows; ``label`` is a plain decimal
number (``4.375``, ``-1``, ``.5``: no exponent, no nan/inf), ``text_a`` the text, ``text_b`` the second text of a
pair. The prediction file has a header ``label`` and one score per row, in input order.
"""
from __future__ import annotations

import argparse
import re

import numpy as np
import torch
from torch import nn

from uer.data.finetune_data import DataError, Instances, encode_pair, read_tsv_lines
from uer.finetune.adversarial import add_adversarial_options
from uer.finetune.contract import EvalSet, Evaluation, HeadOutput, Prediction, stack_outputs
from uer.finetune.metrics import regression_report
from uer.finetune.tasks.base import InferenceData, Task, TrainingData, register_task
from uer.finetune.tasks.classifier import add_pooling_option, check_pairs, has_text_b
from uer.layers.pooling import encode_and_pool
from uer.names import POOLINGS
from uer.text.tokenizers import Tokenizer
from uer.utils.io import atomic_write_text

DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def parse_score(value: str, path: str, line: int) -> float:
    """A label of a regression file: a plain decimal number."""
    value = value.strip()
    if not DECIMAL.fullmatch(value):
        raise DataError(f"label {value!r} is not a plain decimal number (e.g. 4.375)", path, line)
    return float(value)


def read_regression(path: str, tokenizer: Tokenizer, seq_length: int, with_labels: bool = True,
                    pairs: bool | None = None, pairs_from: str | None = None, closing_sep: bool = True) -> Instances:
    """Encode a regression file: ``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]``; field ``label`` float32."""
    columns, rows, lines = read_tsv_lines(path, required=("text_a",) + (("label",) if with_labels else ()))
    check_pairs(columns, path, pairs, pairs_from)
    a, b = columns["text_a"], columns.get("text_b")
    sequences = [encode_pair(tokenizer, row[a], None if b is None else row[b], seq_length, closing_sep) for row in rows]
    fields = {}
    if with_labels:
        fields["label"] = np.array([parse_score(row[columns["label"]], path, line) for row, line in zip(rows, lines)],
                                   dtype=np.float32)
    return Instances.from_sequences(sequences, fields)


def regression_metric(predictions: list[Prediction], data: Instances) -> Evaluation:
    """Spearman (primary), Pearson and MSE of the predicted scores against the gold ones."""
    pred = stack_outputs(predictions, "score") if predictions else np.zeros(0, dtype=np.float32)
    report = regression_report(data.fields["label"], pred)
    return Evaluation(report.scores(), report.summary(), report.format())


def format_score(value: float) -> str:
    """A score as the shortest plain decimal that reads back as the same float32 (no exponent)."""
    return np.format_float_positional(np.float32(value), trim="-")


class Regressor(nn.Module):
    """Pooled encoder output -> tanh(output_layer_1) -> output_layer_2 -> one score (UER-py's regression head;
    the checkpoint keys are UER-py's)."""

    def __init__(self, embedding: nn.Module, encoder: nn.Module, hidden_size: int, pooling: str = "first") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
        self.embedding = embedding
        self.encoder = encoder
        self.pooling = pooling
        self.output_layer_1 = nn.Linear(hidden_size, hidden_size)
        self.output_layer_2 = nn.Linear(hidden_size, 1)

    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """[batch_size x 1]: the scores (the server's module calls this, as for the classifier)."""
        pooled = encode_and_pool(self.embedding, self.encoder, batch["src"], batch["seg"], self.pooling)
        return self.output_layer_2(torch.tanh(self.output_layer_1(pooled)))

    def forward(self, batch: dict[str, torch.Tensor]) -> HeadOutput:
        score = self.logits(batch)[:, 0].float()
        if "label" not in batch:
            return HeadOutput(None, {"score": score})
        return HeadOutput((score - batch["label"].float()).pow(2), {"score": score})


class RegressionTask(Task):
    name = "regression"
    summary = "single texts or pairs -> a real-valued score, MSE; Spearman/Pearson (run_regression.py)"
    train_script = "run_regression.py"
    infer_script = "run_regression_infer.py"
    train_doc = r"""Fine-tune a regression head (one output over the pooled encoder output, mean squared error) on single
texts or pairs, e.g. sentence similarity scored 0-5 (STS-B).

    python3 run_regression.py --pretrained_model_path models/google_zh_model.bin --vocab_path models/google_zh_vocab.txt \
        --config_path models/bert/base_config.json \
        --train_path datasets/chinese_stsb/train.tsv --dev_path datasets/chinese_stsb/dev.tsv \
        --test_path datasets/chinese_stsb/test.tsv --epochs_num 3 --batch_size 32 --seq_length 128

Files: a header row naming the columns (``label``: a decimal number; ``text_a``; ``text_b`` for pairs, encoded
together as [CLS] a [SEP] b [SEP]). Dev and test print Spearman and Pearson correlation and the MSE; the model
of the best dev Spearman is kept (the first evaluation always writes one).
"""
    infer_doc = r"""Predict scores with a model fine-tuned by run_regression.py.

    python3 inference/run_regression_infer.py --load_model_path models/finetuned_model.bin \
        --vocab_path models/google_zh_vocab.txt --config_path models/bert/base_config.json \
        --test_path datasets/chinese_stsb/test_nolabel.tsv --prediction_path datasets/chinese_stsb/prediction.tsv \
        --seq_length 128

Reads ``text_a`` (and ``text_b`` for pairs) by column name; other columns are ignored. Writes a TSV with the
header ``label`` and one score per input row, in order.
"""

    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser, mode: str) -> None:
        add_pooling_option(parser.add_argument_group("regression"))
        if mode == "train":
            add_adversarial_options(parser)

    def __init__(self, args: argparse.Namespace, tokenizer: Tokenizer) -> None:
        super().__init__(args, tokenizer)
        self.pairs: bool | None = None

    def read(self, path: str, **kw) -> Instances:
        return read_regression(path, self.tokenizer, self.args.seq_length, closing_sep=self.closing_sep, **kw)

    def eval_set(self, name: str, data: Instances) -> EvalSet:
        return EvalSet(name, data, regression_metric, primary="spearman", greater_is_better=True)

    def read_training(self) -> TrainingData:
        args = self.args
        self.pairs = has_text_b(args.train_path)
        train = self.read(args.train_path)
        if not len(train):
            raise DataError("no examples (only a header)", args.train_path)
        dev = self.read(args.dev_path, pairs=self.pairs, pairs_from=args.train_path)
        test = self.read(args.test_path, pairs=self.pairs, pairs_from=args.train_path) if args.test_path else None
        return TrainingData(train, [self.eval_set("dev", dev)], [self.eval_set("test", test)] if test else [])

    def describe(self, data: TrainingData) -> str:
        labels = data.train.fields["label"]
        return "regression on %s (scores %.4g .. %.4g, mean %.4g); %s pooling" % (
            "pairs" if self.pairs else "single texts", labels.min(), labels.max(), labels.mean(), self.args.pooling)

    def build_model(self, pretrained: bool) -> nn.Module:
        from uer.finetune.builders import encoder_from_args, init_head, load_pretrained

        cfg, embedding, encoder = encoder_from_args(self.args, len(self.tokenizer.vocab))
        model = Regressor(embedding, encoder, cfg.hidden_size, self.args.pooling)
        if pretrained:
            init_head(model)
            load_pretrained(model, self.args.pretrained_model_path)
        return model

    def read_inference(self, path: str) -> InferenceData:
        return InferenceData(read_regression(path, self.tokenizer, self.args.seq_length, with_labels=False,
                                             closing_sep=self.closing_sep))

    def write_predictions(self, path: str, predictions: list[Prediction], data: InferenceData) -> str:
        scores = [format_score(p["score"]) for p in predictions]
        atomic_write_text(path, "label\n" + "".join(f"{s}\n" for s in scores))
        return f"predicted {len(data.instances)} scores of {self.args.test_path} into {path}"

    def service(self, device, max_batch_size: int):
        """``{"score": float}`` per text (pair)."""
        from uer.serving.backends import TorchRunner
        from uer.serving.modules import ClassifierLogits
        from uer.serving.tasks import ScoreService

        args = self.args
        runner = TorchRunner(ClassifierLogits(self.load_model(args.load_model_path)).eval(), device)
        info = {"model": args.load_model_path, "task": self.name, "device": str(device), "threads": args.threads}
        return ScoreService(self.tokenizer, args.seq_length, runner, max_batch_size, info, closing_sep=self.closing_sep)


register_task(RegressionTask)
