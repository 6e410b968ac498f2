"""K-fold cross-validation of the classifier (run_classifier_cv.py) and the fold models' test-set features
(inference/run_classifier_cv_infer.py), for stacking (scripts/run_lgb.py).

Training: the rows are dealt into --folds_num folds (a permutation seeded by --seed; UER-py cut the file in
order, which a label-sorted file turns into single-class folds). Each fold's model is trained on the other
folds and kept as it ends (no model selection on the held-out fold: that would leak it into the estimate),
saved as NAME-fold_i.SUFFIX; its class probabilities on the held-out rows go to --train_features_path at the
rows' own positions. Inference: every fold model predicts every test row; the mean probabilities are the
test features, and optionally the ensemble's prediction file.
"""
from __future__ import annotations

import argparse
import io
import logging
from pathlib import Path

import numpy as np

from uer.errors import DataError, UsageError
from uer.finetune.adversarial import add_adversarial_options
from uer.finetune.contract import EvalSet
from uer.finetune.metrics import classification_report
from uer.finetune.tasks.base import Task, register_task
from uer.finetune.tasks.classifier import (ClassifierTask, add_classifier_options, add_prediction_columns_options,
                                           count_labels, prediction_rows, read_classification, softmax,
                                           stacked_logits)
from uer.utils.io import atomic_write_bytes, atomic_write_text, check_input_file
from uer.utils.ranges import int_range, positive_int

logger = logging.getLogger("uer.finetune")


def fold_model_path(path: str, fold: int) -> str:
    """models/classifier_model.bin -> models/classifier_model-fold_0.bin (UER-py's naming)."""
    p = Path(path)
    return str(p.with_name(f"{p.stem}-fold_{fold}{p.suffix}"))


def save_array(path: str, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic_write_bytes(path, buffer.getvalue())


class ClassifierCvTask(ClassifierTask):
    name = "classifier_cv"
    summary = "k-fold cross-validation of the classifier, out-of-fold features for stacking (run_classifier_cv.py)"
    train_script = "run_classifier_cv.py"
    infer_script = "run_classifier_cv_infer.py"
    infer_script_aliases = ("run_classifier_infer_cv.py",)
    output_model_path = "models/classifier_model.bin"
    data_paths = False
    early_stopping = False
    prediction_required = False
    train_doc = r"""K-fold cross-validation of the classifier; writes out-of-fold class probabilities for stacking.

    python3 run_classifier_cv.py --pretrained_model_path models/google_zh_model.bin --vocab_path models/google_zh_vocab.txt \
        --config_path models/bert/base_config.json --output_model_path models/classifier_model.bin \
        --train_features_path datasets/smp2020-ewect/virus/train_features.npy \
        --train_path datasets/smp2020-ewect/virus/train.tsv \
        --epochs_num 3 --batch_size 32 --folds_num 5 --embedding word_pos_seg --encoder transformer --mask fully_visible

The training rows are dealt into --folds_num folds (a permutation seeded by --seed). For each fold a
model is trained on the other folds for --epochs_num epochs and saved with the fold as suffix
(models/classifier_model-fold_0.bin, ...); no model selection on the held-out fold (that would leak it
into the estimate). Its class probabilities on the held-out rows go to --train_features_path, a .npy of
shape [training rows x labels], row i belonging to line i of the training file. Prints accuracy and
macro F1 per fold (numbered from 0, as the model files) and their means.
"""
    infer_doc = r"""Test-set features for stacking from the fold models of run_classifier_cv.py: class probabilities averaged
over the folds.

    python3 inference/run_classifier_cv_infer.py --load_model_path models/classifier_model.bin \
        --vocab_path models/google_zh_vocab.txt --config_path models/bert/base_config.json \
        --test_path datasets/smp2020-ewect/virus/test_nolabel.tsv \
        --test_features_path datasets/smp2020-ewect/virus/test_features.npy \
        --folds_num 5 --labels_num 6 --embedding word_pos_seg --encoder transformer --mask fully_visible

--load_model_path names the models as run_classifier_cv.py's --output_model_path did: fold i is read from
models/classifier_model-fold_i.bin. Each fold model predicts every row of --test_path (``text_a``, and
``text_b`` for pairs); --test_features_path gets the mean of their class probabilities, [rows x labels]
(.npy), the test-side counterpart of --train_features_path for scripts/run_lgb.py. --prediction_path
(optional) also writes the ensemble's predictions as inference/run_classifier_infer.py does: ``label`` (argmax
of the mean probabilities), ``logits`` (the folds' mean logits, --output_logits) and ``prob`` (the mean
probabilities, --output_prob). inference/run_classifier_infer_cv.py is the same script.
"""

    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser, mode: str) -> None:
        group = parser.add_argument_group("cross-validation")
        group.add_argument("--folds_num", type=int_range(2), default=5, help="Number of folds (of fold models).")
        if mode == "train":
            group.add_argument("--train_path", required=True, help="Training set (TSV with a header row).")
            group.add_argument("--train_features_path", required=True,
                               help="Out-of-fold class probabilities (.npy, one row per training row) for stacking.")
        else:
            group.add_argument("--labels_num", type=positive_int, required=True, help="Number of labels of the models.")
            group.add_argument("--test_features_path", default=None,
                               help="Mean class probabilities of the fold models (.npy [rows x labels]) for stacking.")
            add_prediction_columns_options(group)
        add_classifier_options(parser)
        if mode == "train":
            add_adversarial_options(parser)

    @classmethod
    def check_options(cls, args: argparse.Namespace, mode: str) -> None:
        if mode == "train" and args.folds_num < 2:
            raise UsageError(f"--folds_num must be at least 2, got {args.folds_num}")
        if mode == "infer":
            super().check_options(args, mode)
            if args.folds_num < 1:
                raise UsageError(f"--folds_num must be >= 1, got {args.folds_num}")
            if not args.test_features_path and not args.prediction_path:
                raise UsageError("give --test_features_path (features for stacking) and/or --prediction_path")
            if (args.output_logits or args.output_prob) and not args.prediction_path:
                raise UsageError("--output_logits/--output_prob add columns to the --prediction_path file: give it")

    @classmethod
    def output_paths(cls, args: argparse.Namespace, mode: str) -> dict[str, str]:
        if mode == "train":
            folds = {f"--output_model_path (fold {fold})": fold_model_path(args.output_model_path, fold)
                     for fold in range(max(args.folds_num, 0))}
            return {"--train_features_path": args.train_features_path, **folds}
        return {"--test_features_path": args.test_features_path} if args.test_features_path else {}

    @classmethod
    def extra_inputs(cls, args: argparse.Namespace, mode: str) -> dict[str, str]:
        if mode == "infer":
            return {f"the model of fold {fold}": fold_model_path(args.load_model_path, fold)
                    for fold in range(max(args.folds_num, 0))}
        return {}

    # training: one run per fold ------------------------------------------------------------------------
    def fit(self, ctx) -> None:
        from uer.finetune.builders import finetune_config_from_args
        from uer.finetune.loop import FineTuner

        args = self.args
        self.labels_num = count_labels(args.train_path, args.soft_targets)
        data = read_classification(args.train_path, self.tokenizer, args.seq_length, self.labels_num,
                                   soft_targets=args.soft_targets, closing_sep=self.closing_sep)
        if len(data) < args.folds_num:
            raise DataError(f"{len(data)} rows cannot make {args.folds_num} folds (--folds_num)", args.train_path)
        folds = np.array_split(np.random.default_rng(args.seed).permutation(len(data)), args.folds_num)
        features = np.zeros((len(data), self.labels_num), dtype=np.float32)
        accs, f1s = [], []
        for fold, held_out in enumerate(folds):
            held_out = np.sort(held_out)
            train_rows = np.setdiff1d(np.arange(len(data)), held_out)
            path = fold_model_path(args.output_model_path, fold)
            curves = None if args.tensorboard_dir is None else str(Path(args.tensorboard_dir) / f"fold_{fold}")
            tuner = FineTuner(self.build_model(pretrained=True),
                              finetune_config_from_args(args, output_model_path=path, keep="last", tensorboard_dir=curves),
                              ctx, self.tokenizer.vocab.pad_id)
            if ctx.is_main:
                logger.info("fold %d (%d of %d): training on %d rows, held out %d", fold, fold + 1, args.folds_num,
                            len(train_rows), len(held_out))
            held = data.subset(held_out)
            scored: list = []  # the predictions of the latest evaluation of the held-out fold

            def metric(predictions, instances, score=self.metric(), scored=scored):
                scored[:] = [predictions]
                return score(predictions, instances)

            tuner.fit(data.subset(train_rows), [EvalSet(f"fold {fold}", held, metric)])
            if ctx.is_main:
                self.write_model_record(path)
            # The loop evaluates the held-out fold after the last step, and keeps that (last) model: those
            # predictions are the fold model's, so they are not computed a second time.
            logits = stacked_logits(scored[0] if scored else tuner.predict(held), self.labels_num)
            features[held_out] = softmax(logits)
            report = classification_report(held.fields["label"], logits.argmax(-1), self.labels_num)
            accs.append(report.accuracy)
            f1s.append(report.macro_f1)
            if ctx.is_main:
                logger.info("fold %d: %s; model %s", fold, report.summary(), path)
        if ctx.is_main:
            save_array(args.train_features_path, features)
            logger.info("out-of-fold probabilities [%d x %d] -> %s", *features.shape, args.train_features_path)
            logger.info("cross-validation over %d folds: Acc. %.4f  Macro F1 %.4f (means over folds)",
                        args.folds_num, float(np.mean(accs)), float(np.mean(f1s)))

    # inference: every fold model on every row ---------------------------------------------------------
    def predict_file(self, device) -> None:
        from uer.finetune.loop import predict

        args = self.args
        data = self.read_inference(args.test_path)
        for path in self.extra_inputs(args, "infer").values():
            check_input_file(path, "a fold model")
        logits_sum = np.zeros((len(data.instances), self.labels_num), dtype=np.float64)
        probs_sum = np.zeros_like(logits_sum)
        for fold in range(args.folds_num):
            path = fold_model_path(args.load_model_path, fold)
            model = self.load_model(path).to(device)
            logits = stacked_logits(predict(model, data.instances, args.batch_size,
                                            self.tokenizer.vocab.pad_id, device), self.labels_num)
            logits_sum += logits
            probs_sum += softmax(logits)
            logger.info("fold %d: %s predicted %d rows", fold, path, len(data.instances))
        logits, probs = ((s / args.folds_num).astype(np.float32) for s in (logits_sum, probs_sum))
        if args.test_features_path:
            save_array(args.test_features_path, probs)
            logger.info("mean probabilities of %d fold models [%d x %d] -> %s", args.folds_num, *probs.shape,
                        args.test_features_path)
        if args.prediction_path:
            atomic_write_text(args.prediction_path, prediction_rows(logits, args.output_logits, args.output_prob, probs))
            logger.info("predictions of the %d-fold ensemble -> %s", args.folds_num, args.prediction_path)

    service = Task.service  # the fold ensemble is not served


register_task(ClassifierCvTask)
