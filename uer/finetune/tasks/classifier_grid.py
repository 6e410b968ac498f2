"""Grid search of the classifier's batch size, learning rate and number of epochs (run_classifier_grid.py).

Every configuration of ``--batch_size_list`` x ``--learning_rate_list`` x ``--epochs_num_list`` (batch size
outermost, as UER-py) fine-tunes the classifier from --pretrained_model_path with the same --seed, keeping its
best model on dev as run_classifier.py does; each configuration's best dev accuracy is printed as it finishes,
and at the end the table of all and the best one. ``--keep_best_model`` writes the best configuration's model to
--output_model_path; --test_path is evaluated with it. (UER-py prints the best configuration so far under "On
configuration" and saves nothing.)
"""
from __future__ import annotations

import argparse
import itertools
import logging
import os
import shutil
import tempfile

from uer.utils.ranges import finite_positive_float, positive_int
from uer.errors import UsageError
from uer.finetune.tasks.base import TrainingData, register_task
from uer.finetune.tasks.classifier import ClassifierTask

logger = logging.getLogger("uer.finetune")

GRID_FLAGS = (("batch_size", "batch_size_list"), ("learning_rate", "learning_rate_list"),
              ("epochs_num", "epochs_num_list"))


class ClassifierGridTask(ClassifierTask):
    name = "classifier_grid"
    summary = "grid search of batch size x learning rate x epochs for the classifier (run_classifier_grid.py)"
    train_script = "run_classifier_grid.py"
    infer_script = None  # inference/run_classifier_infer.py predicts with the kept model
    infer_doc = None
    train_doc = r"""Grid search of the classifier's batch size, learning rate and number of epochs by dev accuracy.

    python3 run_classifier_grid.py --pretrained_model_path models/google_zh_model.bin \
        --vocab_path models/google_zh_vocab.txt --config_path models/bert/base_config.json \
        --train_path datasets/tnews/train.tsv --dev_path datasets/tnews/dev.tsv \
        --batch_size_list 32 64 --learning_rate_list 3e-5 1e-4 --epochs_num_list 3 5 --seq_length 128 \
        --keep_best_model --output_model_path models/tnews_best.bin

Every configuration is fine-tuned from the pre-trained model with the same --seed and its best dev accuracy
printed; the last lines give the table and the best configuration. --keep_best_model writes that configuration's
model to --output_model_path (nothing is written without it); --test_path is evaluated with that model.
The lists replace --batch_size, --learning_rate and --epochs_num (giving those is an error).
"""

    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser, mode: str) -> None:
        super().add_options(parser, mode)
        group = parser.add_argument_group("grid search")
        group.add_argument("--batch_size_list", type=positive_int, nargs="+", default=[32, 64], help="Batch sizes to try.")
        group.add_argument("--learning_rate_list", type=finite_positive_float, nargs="+", default=[3e-5, 1e-4, 3e-4],
                           help="Learning rates to try.")
        group.add_argument("--epochs_num_list", type=positive_int, nargs="+", default=[3, 5, 8], help="Epoch counts to try.")
        group.add_argument("--keep_best_model", action="store_true",
                           help="Write the best configuration's model (best on dev) to --output_model_path.")

    @classmethod
    def check_options(cls, args: argparse.Namespace, mode: str) -> None:
        super().check_options(args, mode)
        explicit = getattr(args, "explicit", set())
        if "output_model_path" in explicit and not args.keep_best_model:
            raise UsageError("the grid search writes --output_model_path only with --keep_best_model: add it, or "
                             "leave --output_model_path out")
        for single, many in GRID_FLAGS:
            if single in explicit:
                raise UsageError(f"--{single} is what the grid search varies: give --{many}")
            values = getattr(args, many)
            if any(v <= 0 for v in values):
                raise UsageError(f"--{many} must hold positive values, got {values}")

    def configurations(self) -> list[dict[str, float]]:
        args = self.args
        return [{"batch_size": b, "learning_rate": lr, "epochs_num": e}
                for b, lr, e in itertools.product(args.batch_size_list, args.learning_rate_list, args.epochs_num_list)]

    def fit(self, ctx) -> None:
        from uer.finetune.builders import finetune_config_from_args
        from uer.finetune.loop import FineTuner

        args = self.args
        data: TrainingData = self.read_training()
        line = self.describe(data)
        if ctx.is_main:
            logger.info("%s", line)
        configurations = self.configurations()
        folder = None  # the system's temporary folder
        if args.keep_best_model:  # beside the output: the winner is moved there, not copied
            folder = os.path.dirname(os.path.abspath(args.output_model_path))
            if ctx.is_main:
                os.makedirs(folder, exist_ok=True)
        # each configuration's best model goes to a scratch file; nothing of it is left behind
        scratch = tempfile.mkdtemp(prefix=".grid-", dir=folder) if ctx.is_main else None
        scratch = _broadcast(scratch, ctx)
        results: list[tuple[dict[str, float], float]] = []
        best_index = None
        try:
            for n, config in enumerate(configurations, 1):
                if ctx.is_main:
                    logger.info("configuration %d/%d: %s", n, len(configurations), _describe(config))
                path = os.path.join(scratch, f"config{n}.bin")
                model = self.build_model(pretrained=True)
                tuner = FineTuner(model, finetune_config_from_args(args, output_model_path=path, **config), ctx,
                                  self.tokenizer.vocab.pad_id)
                score = tuner.fit(data.train, data.dev)
                results.append((config, score))
                if best_index is None or score > results[best_index][1]:
                    if best_index is not None and ctx.is_main:
                        os.remove(os.path.join(scratch, f"config{best_index + 1}.bin"))
                    best_index = n - 1
                elif ctx.is_main:
                    os.remove(path)
                if ctx.is_main:
                    logger.info("configuration %d/%d: %s: dev acc %.4f", n, len(configurations), _describe(config), score)
            best_config, best_score = results[best_index]
            if ctx.is_main:
                logger.info("grid search, dev acc of every configuration:\n%s", "\n".join(
                    f"  {_describe(c)}: {s:.4f}{'  (best)' if i == best_index else ''}"
                    for i, (c, s) in enumerate(results)))
                logger.info("best configuration: %s, dev acc %.4f", _describe(best_config), best_score)
            best_path = os.path.join(scratch, f"config{best_index + 1}.bin")
            if data.test:
                model = self.build_model(pretrained=False)
                tuner = FineTuner(model, finetune_config_from_args(args, output_model_path=best_path, **best_config),
                                  ctx, self.tokenizer.vocab.pad_id)
                tuner.load(best_path)
                tuner.evaluate(data.test, "test (best configuration, best model on dev)")
            if args.keep_best_model and ctx.is_main:
                os.replace(best_path, args.output_model_path)
                logger.info("saved the best configuration's model to %s", args.output_model_path)
        finally:
            if ctx.distributed:
                import torch.distributed as dist
                dist.barrier()
            if ctx.is_main:
                shutil.rmtree(scratch, ignore_errors=True)


def _describe(config: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in config.items())


def _broadcast(value, ctx):
    """Rank 0's ``value`` on every rank."""
    if not ctx.distributed:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


register_task(ClassifierGridTask)
