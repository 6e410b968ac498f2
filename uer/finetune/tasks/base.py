"""What a fine-tuning task is: one object that owns its options, its readers, its head, its metric, its
prediction writer and its server answer. The generic commands (``uer/cli/finetune.py``, ``uer/cli/infer.py``)
hold everything tasks share: the parser layout, the output checks, reading every input before a model is built,
the launch over processes, the loop and the test evaluation.

A task module defines a :class:`Task` subclass and registers it with :func:`uer.finetune.tasks.register_task`
(tasks of other packages come in through the ``uer.tasks`` entry-point group). The smallest task overrides
:meth:`Task.read_training`, :meth:`Task.build_model`, :meth:`Task.read_inference` and
:meth:`Task.write_predictions`; see docs/architecture.md ("Extending").
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

from torch import nn

from uer.data.finetune_data import Instances
from uer.finetune.contract import EvalSet, Prediction
from uer.text.tokenizers import Tokenizer

logger = logging.getLogger("uer.finetune")

TRAIN, INFER, SERVE = "train", "infer", "serve"  # the modes a task's options are built for


@dataclass
class TrainingData:
    """Everything a training run reads, read before any model is built (a bad test file must not be found
    after the epochs, when --output_model_path has already been replaced).

    train: the training instances, or one Instances per sub-task (multi-task: batches never mix them).
    dev: the sets evaluated after each epoch; their mean primary score picks the kept model.
    test: the sets evaluated with the kept model at the end.
    """

    train: Instances | list[Instances]
    dev: list[EvalSet]
    test: list[EvalSet] = field(default_factory=list)


@dataclass
class InferenceData:
    """A file to predict: the model's instances and whatever the writer needs to turn predictions back
    into rows, sentences, questions (``source``)."""

    instances: Instances
    source: Any = None


class Task:
    """Base class of fine-tuning tasks. Class attributes describe the commands; methods do the work.

    Attributes:
        name: the registry key (``uer-finetune --task NAME``).
        summary: one line for ``uer-finetune --help``.
        train_doc / infer_doc: the ``--help`` description of training / inference (usage example first);
            ``infer_doc`` None: the task has no inference command.
        train_script / infer_script: UER-py's script names (``run_ner.py``, ``run_ner_infer.py``), used as
            the program name in messages; None for tasks without one.
        script_aliases / infer_script_aliases: other script names that run the same training / inference
            command (``run_mt_classifier.py``).
        prediction_required: whether inference needs --prediction_path (cross-validation writes features instead).
        defaults / infer_defaults: parser defaults of both commands / of inference only (``tokenizer="space"``).
        output_model_path: default --output_model_path.
        data_paths: whether training takes --train_path/--dev_path/--test_path (cross-validation and
            multi-task read their files otherwise).
        input_options: the task's own input-file options; no output may be one of them.
        serve_backends: the prediction server's --backend values :meth:`service` handles.
        early_stopping: whether training offers --early_stopping_patience (tasks that keep the best model on dev).
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    train_doc: ClassVar[str] = ""
    infer_doc: ClassVar[str | None] = None
    train_script: ClassVar[str | None] = None
    infer_script: ClassVar[str | None] = None
    script_aliases: ClassVar[tuple[str, ...]] = ()
    infer_script_aliases: ClassVar[tuple[str, ...]] = ()
    prediction_required: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {}
    infer_defaults: ClassVar[dict[str, Any]] = {}
    output_model_path: ClassVar[str] = "models/finetuned_model.bin"
    data_paths: ClassVar[bool] = True
    input_options: ClassVar[tuple[str, ...]] = ()
    early_stopping: ClassVar[bool] = True
    serve_backends: ClassVar[tuple[str, ...]] = ("torch",)

    # ------------------------------------------------------------------------------------------------
    # options (class methods: they run before anything is read)

    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser, mode: str) -> None:
        """Add the task's own option group; ``mode`` is ``"train"``, ``"infer"`` (the inference command) or
        ``"serve"`` (the prediction server: the inference options without the prediction file's)."""

    @classmethod
    def check_options(cls, args: argparse.Namespace, mode: str) -> None:
        """Refuse option values that cannot work together (raise UsageError), before any file is read."""

    @classmethod
    def output_paths(cls, args: argparse.Namespace, mode: str) -> dict[str, str]:
        """The files this run writes besides --output_model_path / --prediction_path (description -> path),
        checked against every input before any work."""
        return {}

    @classmethod
    def extra_inputs(cls, args: argparse.Namespace, mode: str) -> dict[str, str]:
        """Input files named otherwise than by an option (description -> path), e.g. a task folder's files."""
        return {}

    # ------------------------------------------------------------------------------------------------
    def __init__(self, args: argparse.Namespace, tokenizer: Tokenizer) -> None:
        self.args = args
        self.tokenizer = tokenizer

    @property
    def closing_sep(self) -> bool:
        return not getattr(self.args, "no_closing_sep", False)

    # training ----------------------------------------------------------------------------------------
    def read_training(self) -> TrainingData:
        """Read and check every file of a training run (train, dev, test)."""
        raise NotImplementedError(f"task {self.name!r} does not train")

    def build_model(self, pretrained: bool) -> nn.Module:
        """The task's model: embedding + encoder + head. ``pretrained``: load --pretrained_model_path (training);
        otherwise the caller loads a fine-tuned file (inference). Called after :meth:`read_training` or
        :meth:`read_inference`, so it may use what they found (the number of labels, ...)."""
        raise NotImplementedError

    def describe(self, data: TrainingData) -> str | None:
        """One log line about the task before training (labels found, windows, ...); None for none."""
        return None

    def model_outputs(self) -> dict[str, Any]:
        """What the model's record (:mod:`uer.model_meta`) keeps about the task's outputs besides the options,
        e.g. the number of labels found in the training file."""
        return {}

    def write_model_record(self, model_path: str) -> None:
        """The record next to a kept model: the options that define its inputs and outputs."""
        from uer import model_meta

        model_meta.write(model_path, model_meta.build_record(self.args, self.name, self.tokenizer.vocab.fingerprint(),
                                                             self.model_outputs()))

    def find_unused_parameters(self) -> bool:
        """DDP: whether some parameters get no gradient in a step (multi-task heads)."""
        return False

    def fit(self, ctx) -> None:
        """A whole training run: read, build, train with dev evaluation, test with the kept model."""
        from uer.finetune.builders import finetune_config_from_args
        from uer.finetune.loop import FineTuner

        data = self.read_training()
        model = self.build_model(pretrained=True)
        line = self.describe(data)
        if line and ctx.is_main:
            logger.info("%s", line)
        tuner = FineTuner(model, finetune_config_from_args(self.args), ctx, self.tokenizer.vocab.pad_id,
                          find_unused_parameters=self.find_unused_parameters())
        tuner.fit(data.train, data.dev)
        if ctx.is_main:
            self.write_model_record(self.args.output_model_path)
        if data.test:
            tuner.evaluate(data.test, "test (best model on dev)")

    # inference ---------------------------------------------------------------------------------------
    def read_inference(self, path: str) -> InferenceData:
        """Read and check the file to predict (before the model is loaded)."""
        raise NotImplementedError(f"task {self.name!r} has no inference command")

    def load_model(self, path: str) -> nn.Module:
        """The fine-tuned model of ``path``, every key loaded strictly, as inference runs it
        (:meth:`inference_model`)."""
        from uer.model_loader import load_model_weights

        model = self.build_model(pretrained=False)
        load_model_weights(model, path, strict_prefixes=("",))
        return self.inference_model(model)

    def inference_model(self, model: nn.Module) -> nn.Module:
        """``model`` for inference and serving: with ``--quantize int8`` its encoder's linear layers dynamically
        quantized (uer.utils.quantize; CPU only). Every ``load_model`` ends here."""
        from uer.api import resolve_device
        from uer.utils.quantize import quantize_for_inference

        return quantize_for_inference(model, getattr(self.args, "quantize", "none"), resolve_device(self.args.device))

    def write_predictions(self, path: str, predictions: list[Prediction], data: InferenceData) -> str:
        """Write the prediction file; returns the log line saying what was written."""
        raise NotImplementedError

    def predict_file(self, device) -> None:
        """The inference command's work: read --test_path, load --load_model_path, predict, write."""
        from uer.finetune.loop import predict

        args = self.args
        data = self.read_inference(args.test_path)  # bad input fails before the model loads
        model = self.load_model(args.load_model_path).to(device)
        predictions = predict(model, data.instances, args.batch_size, self.tokenizer.vocab.pad_id, device)
        logger.info("%s", self.write_predictions(args.prediction_path, predictions, data))

    # serving -----------------------------------------------------------------------------------------
    @classmethod
    def serves(cls) -> bool:
        """Whether the prediction server answers with this task's models (an inference command and a
        :meth:`service`)."""
        return bool(cls.infer_doc) and cls.service is not Task.service

    def service(self, device, max_batch_size: int):
        """The prediction server's answer: a :class:`uer.serving.backends.TextService` that loads
        --load_model_path (options of ``mode="serve"``) and answers requests of up to ``max_batch_size`` texts."""
        raise NotImplementedError


str2task: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: add a task under ``cls.name`` (unique, a :class:`Task` subclass)."""
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TypeError(f"{cls!r} is not a subclass of uer.finetune.tasks.Task")
    if not cls.name or not cls.name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"{cls.__name__}.name must be a non-empty word (letters, digits, '_', '-'), got {cls.name!r}")
    if cls.name in str2task and str2task[cls.name] is not cls:
        raise ValueError(f"duplicate task name {cls.name!r}: {str2task[cls.name].__module__} and {cls.__module__}")
    str2task[cls.name] = cls
    return cls
