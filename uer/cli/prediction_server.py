"""Serve a fine-tuned model's predictions over HTTP (FastAPI + uvicorn; pip install -r requirements-serve.txt).

    python3 scripts/prediction_server.py --load_model_path models/demo_classifier_model.bin \\
        --vocab_path models/google_zh_vocab.txt --config_path models/bert/tiny_config.json --labels_num 2 \\
        --embedding word_pos_seg --encoder transformer --mask fully_visible --port 8867

    from uer.serving.client import PredictionClient
    PredictionClient("127.0.0.1", 8867)(["这本书很好看"])   # [{"label": 1, "probabilities": [...], "logits": [...]}]

``--task`` is any registered fine-tuning task that has an answer (classifier by default; ner: entities with
character offsets; mrc: texts are questions, texts_b their contexts; the answer text and span; regression: a
score; multi_label: the label ids above --threshold with their probabilities). The model file
and the flags are those of the task's inference script (the flags the model was trained with). ``POST /predict
{"texts": [...], "texts_b": [...]?}``; ``GET /health``; ``GET /info``. ``--backend onnxruntime --onnx_path
classifier.onnx`` runs the export of scripts/export_onnx.py --kind classifier.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from uer import model_meta, opts
from uer.api import resolve_device
from uer.config import parse_args_with_config
from uer.errors import UsageError, entry_point
from uer.finetune.tasks import SERVE, Task, get_task, same_model_tasks, task_from_argv, task_names
from uer.serving.app import create_app
from uer.serving.server import (add_server_options, announce, batcher_from_args, bind, check_server_options, serve,
                                limits_from_args, set_threads, url_of)
from uer.text.tokenizers import tokenizer_from_args
from uer.utils.logging import setup_logging
from uer.utils.quantize import check_quantize_backend
from uer.utils.runtime import tune_cpu_allocator
from uer.utils.ranges import sequence_length

logger = logging.getLogger("prediction_server")

DEFAULT_TASK = "classifier"


def served_tasks() -> list[str]:
    """Every registered task with a server answer (plugins included)."""
    return [name for name in task_names() if get_task(name).serves()]


def build_parser(task: type[Task] | str = DEFAULT_TASK) -> argparse.ArgumentParser:
    """The options of ``--task``: its inference script's model and task flags, then the server's."""
    task = get_task(task) if isinstance(task, str) else task
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=opts.HelpFormatter)
    group = parser.add_argument_group("model file and task")
    group.add_argument("--task", choices=served_tasks(), default=DEFAULT_TASK,
                       help="What the model was fine-tuned for: " + "; ".join(
                           f"{name}: {get_task(name).summary}" for name in served_tasks()) + ".")
    group.add_argument("--load_model_path", default=None,
                       help="Fine-tuned model file; not needed with --backend onnxruntime.")
    group.add_argument("--seq_length", type=sequence_length, default=128, help="Longest input in tokens (as in training).")
    opts.add_device_option(group)
    opts.add_quantize_option(group)
    opts.add_input_form_option(group)
    opts.add_tokenizer_options(parser)
    opts.add_model_options(parser)
    task.add_options(parser, SERVE)
    add_server_options(parser, default_port=8867)
    dests = {action.dest for action in parser._actions}
    parser.set_defaults(**{k: v for k, v in {**task.defaults, **task.infer_defaults}.items() if k in dests})
    return parser


def build_service(args: argparse.Namespace):
    task = get_task(args.task)
    if args.backend not in task.serve_backends:
        raise UsageError(f"--task {args.task} runs on --backend {' or '.join(task.serve_backends)} "
                         "(ONNX export covers encoders and classifiers)")
    if args.backend == "torch" and not args.load_model_path:
        raise UsageError("give --load_model_path: the fine-tuned model to serve")
    check_quantize_backend(args.quantize, args.backend)
    record = model_meta.apply(args, args.load_model_path, same_model_tasks(task)) if args.load_model_path else None
    task.check_options(args, SERVE)
    tokenizer = tokenizer_from_args(args)
    if args.load_model_path:
        model_meta.check_vocabulary(record, tokenizer.vocab, args.load_model_path)
    return task(args, tokenizer).service(resolve_device(args.device), args.max_batch_size)


@entry_point("prediction_server.py")
def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = task_from_argv(argv)
    task = get_task(name) if name in served_tasks() else DEFAULT_TASK  # a bad value is left to the full parser
    args = parse_args_with_config(build_parser(task), argv)
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
