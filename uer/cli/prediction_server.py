"""Serve a fine-tuned model's predictions over HTTP (FastAPI + uvicorn; pip install -r requirements-serve.txt).

    python3 scripts/prediction_server.py --load_model_path models/demo_classifier_model.bin \\
        --vocab_path models/google_zh_vocab.txt --config_path models/bert/tiny_config.json --labels_num 2 \\
        --embedding word_pos_seg --encoder transformer --mask fully_visible --port 8867

    from uer.serving.client import PredictionClient
    PredictionClient("127.0.0.1", 8867)(["这本书很好看"])   # [{"label": 1, "probabilities": [...], "logits": [...]}]

The model file and the flags are those of inference/run_classifier_infer.py (the flags the model was trained
with: config, embedding, encoder, --pooling, --labels_num, --seq_length), and the answers are its labels,
probabilities and logits. ``POST /predict {"texts": [...], "texts_b": [...]?}``; ``GET /health``; ``GET /info``.
``--backend onnxruntime --onnx_path classifier.onnx`` runs the export of scripts/export_onnx.py --kind classifier.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from uer import opts
from uer.api import resolve_device
from uer.config import parse_args_with_config
from uer.errors import UsageError, entry_point
from uer.finetune.builders import tokenizer_from_args
from uer.serving.app import create_app
from uer.model_loader import load_model_weights, load_state_dict
from uer.serving.backends import ClassifierService, OnnxRunner, TextService, TorchRunner
from uer.serving.tasks import MrcService, NerService
from uer.serving.modules import classifier_logits_from_args
from uer.serving.server import (add_server_options, announce, batcher_from_args, bind, check_server_options,
                                limits_from_args, serve, set_threads, url_of)
from uer.utils.logging import setup_logging
from uer.utils.runtime import tune_cpu_allocator
from uer.utils.ranges import positive_int, sequence_length

logger = logging.getLogger("prediction_server")

TASKS = ("classifier", "ner", "mrc")


def build_parser(task: str = "classifier") -> argparse.ArgumentParser:
    """The options of ``--task`` (each task takes the flags of its own inference script)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_argument_group("model")
    group.add_argument("--task", choices=TASKS, default="classifier",
                       help="What the model was fine-tuned for: classifier (run_classifier.py), ner (run_ner.py: "
                            "entities with character offsets) or mrc (run_cmrc.py: texts are questions, texts_b "
                            "their contexts; the answer text and span).")
    group.add_argument("--load_model_path", default=None,
                       help="Fine-tuned model file; not needed with --backend onnxruntime.")
    group.add_argument("--seq_length", type=sequence_length, default=128, help="Longest input in tokens (as in training).")
    opts.add_device_option(group)
    opts.add_input_form_option(group)
    opts.add_tokenizer_options(parser)
    opts.add_model_options(parser)
    if task == "classifier":
        group.add_argument("--labels_num", type=positive_int, default=None,
                           help="Number of labels of the classifier (as for run_classifier_infer.py).")
        opts.add_classifier_options(parser)
    elif task == "ner":
        from uer.cli.run_ner import add_tagging_options

        parser.set_defaults(tokenizer="space")  # as run_ner_infer.py: one token per character
        add_tagging_options(parser)
    else:
        from uer.cli.run_cmrc import add_mrc_options

        parser.set_defaults(seq_length=512)  # as run_cmrc_infer.py
        add_mrc_options(parser)
    add_server_options(parser, default_port=8867)
    return parser


def task_of(argv: Sequence[str]) -> str:
    """``--task`` of a command line (its options depend on it); a bad value is left to the full parser."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--task", default="classifier")
    task = pre.parse_known_args(argv)[0].task
    return task if task in TASKS else "classifier"


def build_task_service(args: argparse.Namespace, device) -> TextService:
    """NER or reading comprehension: the model as its inference script loads it (every key), torch only."""
    if args.backend != "torch":
        raise UsageError(f"--task {args.task} runs on --backend torch (ONNX export covers encoders and classifiers)")
    if not args.load_model_path:
        raise UsageError("give --load_model_path: the fine-tuned model to serve")
    tokenizer = tokenizer_from_args(args)
    info = {"model": args.load_model_path, "task": args.task, "device": str(device), "threads": args.threads}
    if args.task == "ner":
        from uer.finetune.tagging import read_label2id, tagger_from_args

        label2id = read_label2id(args.label2id_path)
        state = load_state_dict(args.load_model_path)
        args.crf_target = args.crf_target or "crf.transitions" in state  # as run_ner_infer.py
        model = tagger_from_args(args, len(tokenizer.vocab), label2id, pretrained=False)
        load_model_weights(model, args.load_model_path, strict_prefixes=("",), state=state)
        return NerService(model, tokenizer, args.seq_length, args.max_batch_size, device,
                          sorted(label2id, key=label2id.get), not args.no_closing_sep, info)
    from uer.finetune.mrc import span_extractor_from_args

    model = span_extractor_from_args(args, len(tokenizer.vocab), pretrained=False)
    load_model_weights(model, args.load_model_path, strict_prefixes=("",))
    return MrcService(model, tokenizer, args.seq_length, args.max_batch_size, device, args.doc_stride,
                      args.max_answer_length, info)


def build_service(args: argparse.Namespace) -> TextService:
    device = resolve_device(args.device)
    if args.task != "classifier":
        return build_task_service(args, device)
    if args.backend == "torch":
        if not args.load_model_path:
            raise UsageError("give --load_model_path: the fine-tuned model to serve")
        if args.labels_num is None or args.labels_num < 1:
            raise UsageError("give --labels_num: the number of labels the classifier was trained with")
        module, tokenizer, _ = classifier_logits_from_args(args, args.load_model_path)
        runner, model = TorchRunner(module, device), args.load_model_path
    else:
        tokenizer = tokenizer_from_args(args)
        runner = OnnxRunner(args.onnx_path, args.threads, device)
        meta = runner.check("classifier", len(tokenizer.vocab), args.seq_length)
        if args.labels_num is not None and args.labels_num != int(meta["labels_num"]):
            raise UsageError(f"{args.onnx_path} has {meta['labels_num']} labels; --labels_num {args.labels_num} differs")
        args.labels_num, model = int(meta["labels_num"]), args.onnx_path
    info = {"model": model, "task": args.task, "device": str(device), "threads": args.threads}
    return ClassifierService(tokenizer, args.seq_length, runner, args.max_batch_size, args.labels_num, info,
                             closing_sep=not args.no_closing_sep)


@entry_point("prediction_server.py")
def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args_with_config(build_parser(task_of(argv)), argv)
    check_server_options(args)
    setup_logging(True)
    tune_cpu_allocator()
    set_threads(args.threads)
    service = build_service(args)
    sock = bind(args.host, args.port)
    app = create_app(service, batcher_from_args(service.run, args), limits_from_args(args),
                     on_startup=lambda: announce(url_of(sock), "prediction"))
    logger.info("%s %s (%s backend, max length %d)", args.task, service.info["model"], args.backend, args.seq_length)
    serve(app, sock, args.log_requests)
