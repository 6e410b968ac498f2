"""SimCSE sentence embeddings (run_simcse.py): contrastive training with in-batch negatives, kept by the
Spearman correlation of cosine similarities against a scored dev set.

Training file (UER-py's format, header by name): ``text_a`` only -> unsupervised SimCSE, each text against
itself under two dropout masks; ``text_a`` + ``text_b`` -> supervised, each pair a positive (UER-py needs a
``label`` column for that and silently trains on text_a twice without one; here ``text_b`` is enough and a
``label`` column is ignored). Dev file: ``text_a``, ``text_b``, ``label`` (a float score, e.g. STS-B's 0-5).

Each side is encoded alone as ``[CLS] text [SEP]`` (segment 1). A pair is a group of two instances, so a batch
holds whole pairs and ``--batch_size`` counts pairs. The model is embedding + encoder only: the saved file has
the keys of a pre-trained model and loads unchanged into scripts/extract_features.py, uer.api.TextEncoder and
the encoder server (the answer of this task's models in serving).

--eval_steps: the dev set is evaluated every N steps (the counter restarts each epoch, as in UER-py) and after
each epoch; the best model so far is written to --output_model_path. There is no test phase in UER-py; a
--test_path (scored pairs) is evaluated here with the kept model.
"""
from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from uer.utils.ranges import finite_positive_float, positive_int
from uer.data.finetune_data import DataError, Instances, encode_pair, parse_label, read_tsv_lines
from uer.errors import UsageError
from uer.finetune.contract import EvalSet, Evaluation, HeadOutput, Prediction, stack_outputs
from uer.finetune.tasks.base import Task, TrainingData, register_task
from uer.layers.pooling import encode_and_pool
from uer.names import POOLINGS
from uer.text.tokenizers import Tokenizer

logger = logging.getLogger("uer.finetune")


# ------------------------------------------------------------------------------------------------------
# reading

def parse_score(value: str, path: str, line: int) -> float:
    try:
        score = float(value)
    except ValueError:
        raise DataError(f"label {value!r} is not a number (a similarity score)", path, line) from None
    if not np.isfinite(score):
        raise DataError(f"label {value!r} is not a finite number", path, line)
    return score


def read_sentence_pairs(path: str, tokenizer: Tokenizer, seq_length: int, label: str | None = None,
                        pairs_required: bool = False, labels_num: int | None = None) -> Instances:
    """Each row as a group of two instances: (text_a, text_b), or (text_a, text_a) when the file has no
    ``text_b``; each side ``[CLS] text [SEP]`` (segment 1). ``label``: None (not read), ``"score"`` (a float:
    field ``score``) or ``"class"`` (0 .. labels_num-1: field ``label``), on both instances of a pair."""
    required = ("text_a",) + (("text_b",) if pairs_required else ()) + (("label",) if label else ())
    columns, rows, lines = read_tsv_lines(path, required=required)
    if not rows and label:
        raise DataError("no examples (only a header)", path, 1)
    a, b = columns["text_a"], columns.get("text_b", columns["text_a"])
    sequences = []
    for row in rows:
        sequences.append(encode_pair(tokenizer, row[a], None, seq_length))
        sequences.append(encode_pair(tokenizer, row[b], None, seq_length))
    fields = {}
    if label == "score":
        scores = np.array([parse_score(row[columns["label"]], path, line) for row, line in zip(rows, lines)])
        fields["score"] = np.repeat(scores, 2).astype(np.float32)
    elif label == "class":
        labels = np.array([parse_label(row[columns["label"]], path, line) for row, line in zip(rows, lines)])
        if labels_num is not None and labels.max() >= labels_num:
            row = int(np.argmax(labels >= labels_num))
            raise DataError(f"label {labels[row]} is not below the number of labels {labels_num} (taken from the "
                            "training data: labels are 0 .. n-1)", path, lines[row])
        fields["label"] = np.repeat(labels, 2).astype(np.int64)
    return Instances.from_sequences(sequences, fields, groups=np.repeat(np.arange(len(rows)), 2))


# ------------------------------------------------------------------------------------------------------
# loss, model, metric

def simcse_loss(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-pair loss [B]: row i of the cosine-similarity matrix cos(a_i, b_j) / temperature, cross-entropy
    against column i (the other rows' b are the in-batch negatives)."""
    sim = F.cosine_similarity(a.float().unsqueeze(1), b.float().unsqueeze(0), dim=-1) / temperature
    return F.cross_entropy(sim, torch.arange(a.shape[0], device=a.device), reduction="none")


class SentenceEncoder(nn.Module):
    """Embedding + encoder + pooling; its state dict is a pre-trained model's (``embedding.*``, ``encoder.*``).

    ``forward`` on whole pairs (instances 2i, 2i+1): output ``vector`` [2B x H]; in training mode also the
    SimCSE loss, on each pair's first instance (``loss_count`` counts pairs)."""

    def __init__(self, embedding: nn.Module, encoder: nn.Module, pooling: str = "first",
                 temperature: float = 0.05) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
        self.embedding = embedding
        self.encoder = encoder
        self.pooling = pooling
        self.temperature = temperature

    def forward(self, batch: dict[str, torch.Tensor]) -> HeadOutput:
        vectors = encode_and_pool(self.embedding, self.encoder, batch["src"], batch["seg"], self.pooling)
        outputs = {"vector": vectors}
        if not self.training:
            return HeadOutput(None, outputs)
        if vectors.shape[0] % 2:
            raise ValueError(f"a batch of {vectors.shape[0]} sequences is not whole pairs")
        per_pair = simcse_loss(vectors[0::2], vectors[1::2], self.temperature)
        first = torch.zeros(vectors.shape[0], device=vectors.device)
        first[0::2] = 1.0
        loss = torch.zeros_like(first)
        loss[0::2] = per_pair
        return HeadOutput(loss, outputs, loss_count=first)


def rank_average(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their mean rank (scipy.stats.rankdata's default)."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(1, len(values) + 1)
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    for s, e in zip(starts, ends):
        if e - s > 1:
            ranks[order[s:e]] = (s + 1 + e) / 2.0
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (Pearson of the average ranks); 0.0 when either side is constant."""
    rx, ry = rank_average(np.asarray(x, dtype=np.float64)), rank_average(np.asarray(y, dtype=np.float64))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    return float((rx * ry).sum() / denom) if denom > 0 else 0.0


def pair_cosines(predictions: list[Prediction]) -> np.ndarray:
    """Cosine similarity of each pair (instances 2i, 2i+1) from the predicted vectors, rounded to 6 decimals:
    float32 vectors carry no more, and identical texts (cosine 1 up to rounding noise) must tie in the ranks."""
    vectors = stack_outputs(predictions, "vector").astype(np.float64)
    a, b = vectors[0::2], vectors[1::2]
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.round((a * b).sum(1) / np.maximum(norms, 1e-12), 6)


def similarity_metric(predictions: list[Prediction], data: Instances) -> Evaluation:
    """Spearman's correlation between the gold scores and the cosine similarity of each pair's vectors."""
    rho = spearman(pair_cosines(predictions), data.fields["score"][0::2])
    line = f"Spearman's correlation: {rho:.4f}"
    return Evaluation({"spearman": rho}, line, f"{line} ({len(data) // 2} pairs)")


# ------------------------------------------------------------------------------------------------------
# the task

class SimcseTask(Task):
    name = "simcse"
    summary = "sentence embeddings by contrastive learning (SimCSE, run_simcse.py)"
    train_script = "run_simcse.py"
    train_doc = r"""Train sentence embeddings with SimCSE: in-batch negatives, unsupervised (one text, two dropout masks) or supervised (pairs).

    python3 run_simcse.py --pretrained_model_path models/google_zh_model.bin --vocab_path models/google_zh_vocab.txt \
        --config_path models/bert/base_config.json --train_path datasets/simcse/train_unsup.tsv \
        --dev_path datasets/chinese_stsb/dev.tsv --learning_rate 1e-5 --epochs_num 1 --batch_size 64 \
        --seq_length 64 --temperature 0.05 --eval_steps 200 --pooling first

Training file: ``text_a`` (unsupervised) or ``text_a`` and ``text_b`` (positive pairs). Dev (and optional
test) file: ``text_a``, ``text_b``, ``label`` (a float similarity score); the printed metric is Spearman's
correlation of the cosine similarity with the score. The saved model has the layout of a pre-trained model:
give it to scripts/extract_features.py, uer.api.TextEncoder or scripts/encoder_server.py as it is.
"""
    defaults = {"batch_size": 32}  # UER-py 2024's training default
    early_stopping = False

    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser, mode: str) -> None:
        group = parser.add_argument_group("SimCSE")
        group.add_argument("--pooling", choices=POOLINGS, default="first",
                           help="How the encoder output becomes the sentence vector.")
        group.add_argument("--temperature", type=finite_positive_float, default=0.05,
                           help="Divides the cosine similarities in the training loss.")
        group.add_argument("--eval_steps", type=positive_int, default=200,
                           help="Evaluate on dev every N steps of an epoch (and after each epoch).")

    @classmethod
    def check_options(cls, args: argparse.Namespace, mode: str) -> None:
        if args.temperature <= 0:
            raise UsageError(f"--temperature must be positive, got {args.temperature}")
        if args.eval_steps < 1:
            raise UsageError(f"--eval_steps must be at least 1, got {args.eval_steps}")

    def read_training(self) -> TrainingData:
        from uer.finetune.tasks.classifier import has_text_b

        args = self.args
        train = read_sentence_pairs(args.train_path, self.tokenizer, args.seq_length)
        dev = read_sentence_pairs(args.dev_path, self.tokenizer, args.seq_length, label="score", pairs_required=True)
        test = (read_sentence_pairs(args.test_path, self.tokenizer, args.seq_length, label="score", pairs_required=True)
                if args.test_path else None)
        self.supervised = has_text_b(args.train_path)
        return TrainingData(train, [EvalSet("dev", dev, similarity_metric, "spearman")],
                            [EvalSet("test", test, similarity_metric, "spearman")] if test else [])

    def describe(self, data: TrainingData) -> str:
        return "%s SimCSE on %d %s; %s pooling, temperature %g, dev every %d steps" % (
            "supervised" if self.supervised else "unsupervised", len(data.train) // 2,
            "pairs" if self.supervised else "texts", self.args.pooling, self.args.temperature, self.args.eval_steps)

    def build_model(self, pretrained: bool) -> nn.Module:
        from uer.finetune.builders import encoder_from_args, load_pretrained

        _, embedding, encoder = encoder_from_args(self.args, len(self.tokenizer.vocab))
        model = SentenceEncoder(embedding, encoder, self.args.pooling, self.args.temperature)
        if pretrained:
            load_pretrained(model, self.args.pretrained_model_path)
        return model

    def fit(self, ctx) -> None:
        """The loop's training step with a dev evaluation every --eval_steps (the shared loop evaluates per
        epoch only); the best model on dev is kept, the test set evaluated with it."""
        from uer.data.finetune_data import (batches_per_epoch, collate, split_for_rank, training_batches,
                                            width_multiple)
        from uer.training.engine import finetune_report_line
        from uer.finetune.builders import finetune_config_from_args
        from uer.finetune.loop import FineTuner, report_scalars, weighted_sums
        from uer.model_saver import save_model
        from uer.utils.distributed import all_reduce_sum

        args = self.args
        data = self.read_training()
        model = self.build_model(pretrained=True)
        if ctx.is_main:
            logger.info("%s", self.describe(data))
        cfg = finetune_config_from_args(args)
        tuner = FineTuner(model, cfg, ctx, self.tokenizer.vocab.pad_id)
        engine, train = tuner.engine, data.train
        steps_per_epoch = batches_per_epoch(train, cfg.batch_size)
        engine.build_optimization(steps_per_epoch * cfg.epochs_num)
        best: float | None = None
        start = time.perf_counter()

        def evaluate(epoch: int, step: int) -> None:
            nonlocal best
            score = tuner.evaluate(data.dev, f"epoch {epoch}/{cfg.epochs_num} step {step} dev",
                                   full=False)["dev"].scores["spearman"]
            engine.report_dev({"spearman": score}, epoch)
            if best is None or score > best:  # the first evaluation is always kept (UER-py's starts at 0.0)
                best = score
                if ctx.is_main:
                    save_model(tuner.model, cfg.output_model_path)
                    logger.info("best so far (spearman %.4f): saved %s", score, cfg.output_model_path)
            tuner.model.train()

        try:
            for epoch in range(1, cfg.epochs_num + 1):
                tuner.model.train()
                batches = training_batches(train, cfg.batch_size, np.random.default_rng([cfg.seed, epoch]),
                                           cfg.length_bucketing)
                names, sums, window = [], None, time.perf_counter()
                for i, global_batch in enumerate(batches):
                    engine.seed_step(tuner.step)
                    part, weights = split_for_rank(global_batch, ctx.rank, ctx.world_size, train.groups[global_batch])
                    batch = engine.to_device(collate(train, part, self.tokenizer.vocab.pad_id,
                                                     multiple=width_multiple(engine.amp_dtype)))
                    with engine.autocast():
                        out: HeadOutput = engine.module(batch)
                    w = torch.from_numpy(weights).to(ctx.device)
                    engine.backward((out.loss * w).sum() * (ctx.world_size * 2 / len(global_batch)))
                    engine.step()
                    tuner.step += 1
                    with torch.no_grad():
                        step_sums = weighted_sums(out, w)
                        names = list(step_sums)
                        step_tensor = torch.stack([step_sums[n] for n in names]).double()
                        sums = step_tensor if sums is None else sums + step_tensor
                    if (i + 1) % cfg.report_steps == 0 or i + 1 == len(batches):
                        totals = dict(zip(names, all_reduce_sum(sums, ctx).cpu().tolist()))
                        totals["instances"] /= 2  # pairs
                        now = time.perf_counter()
                        steps_left = steps_per_epoch * cfg.epochs_num - tuner.step
                        engine.report({"epoch": epoch, "epochs": cfg.epochs_num, "epoch_step": i + 1,
                                       "epoch_steps": len(batches), "step": tuner.step, **report_scalars(totals),
                                       "examples_per_s": totals["instances"] / max(now - window, 1e-9),
                                       "lr": engine.learning_rate(tuner.step - 1),
                                       "seconds_left": (now - start) / tuner.step * steps_left},
                                      finetune_report_line)
                        sums, window = None, time.perf_counter()
                    if (i + 1) % args.eval_steps == 0 or i + 1 == len(batches):
                        evaluate(epoch, i + 1)
        finally:
            engine.close()
        if ctx.distributed:
            torch.distributed.barrier()
        tuner.load(cfg.output_model_path)
        if data.test:
            tuner.evaluate(data.test, "test (best model on dev)")


register_task(SimcseTask)
