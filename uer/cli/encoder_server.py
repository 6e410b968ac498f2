"""Serve sentence vectors of a pre-trained model over HTTP (FastAPI + uvicorn; pip install -r requirements-serve.txt).

    python3 scripts/encoder_server.py --load_model_path models/demo_bert_model.bin-300 \\
        --vocab_path models/google_zh_vocab.txt --config_path models/bert/tiny_config.json \\
        --encode_layer mean --port 8866

    from uer.serving.client import EncoderClient
    vectors = EncoderClient("127.0.0.1", 8866)(["今天天气很好", "这本书很好看"])   # numpy [2 x hidden_size]

``POST /encode {"texts": [...], "texts_b": [...]?}`` -> vectors; ``GET /health``; ``GET /info``. A vector
(``--encode_layer``) is the last layer at [CLS] (``first``), averaged (``mean``), maximum (``max``) or at the
last real token (``last``), exactly ``uer.api.TextEncoder.embed``'s, or ``pooler``: [CLS] through the
pre-training head's pooler (files with BERT's next-sentence / ALBERT's sentence-order head);
``--normalize`` scales vectors to unit length. ``--backend onnxruntime --onnx_path encoder.onnx`` runs the
export of scripts/export_onnx.py --kind encoder instead (same flags; the layer is the exported one).
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
from uer.serving.app import create_app
from uer.text.tokenizers import tokenizer_from_args
from uer.serving.backends import EncoderService, OnnxRunner, TorchRunner
from uer.serving.modules import add_encoder_output_options, encoder_vectors_from_args
from uer.serving.server import (add_server_options, announce, batcher_from_args, bind, check_server_options,
                                limits_from_args, serve, set_threads, url_of)
from uer.utils.logging import setup_logging
from uer.utils.quantize import check_quantize_backend, quantize_for_inference
from uer.utils.runtime import tune_cpu_allocator
from uer.utils.ranges import sequence_length

logger = logging.getLogger("encoder_server")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=opts.HelpFormatter)
    group = parser.add_argument_group("model file and vectors")
    group.add_argument("--load_model_path", "--pretrained_model_path", dest="load_model_path", default=None,
                       help="Pre-trained model file (.bin or .safetensors, any UER-py key generation); "
                            "not needed with --backend onnxruntime.")
    group.add_argument("--seq_length", type=sequence_length, default=128, help="Longest input in tokens; longer texts are cut.")
    add_encoder_output_options(parser)
    opts.add_device_option(group)
    opts.add_quantize_option(group)
    opts.add_tokenizer_options(parser)
    opts.add_model_options(parser)
    add_server_options(parser, default_port=8866)
    return parser


def build_service(args: argparse.Namespace) -> EncoderService:
    device = resolve_device(args.device)
    if args.backend == "torch":
        if not args.load_model_path:
            raise UsageError("give --load_model_path: the pre-trained model to serve")
        args.encode_layer = args.encode_layer or "first"
        module, tokenizer, cfg = encoder_vectors_from_args(args, args.load_model_path)
        runner = TorchRunner(quantize_for_inference(module, args.quantize, device), device)
        dim, model = cfg.hidden_size, args.load_model_path
    else:
        check_quantize_backend(args.quantize, args.backend)
        tokenizer = tokenizer_from_args(args)
        runner = OnnxRunner(args.onnx_path, args.threads, device)
        meta = runner.check("encoder", len(tokenizer.vocab), args.seq_length)
        for flag, key, given in (("--encode_layer", "encode_layer", args.encode_layer),
                                 ("--normalize", "normalize", "true" if args.normalize else None)):
            if given is not None and given != meta[key]:
                raise UsageError(f"{args.onnx_path} was exported with {key}={meta[key]}; {flag} {given} differs "
                                 "(export again with the flags to serve)")
        args.encode_layer, args.normalize = meta["encode_layer"], meta["normalize"] == "true"
        dim, model = int(meta["dim"]), args.onnx_path
    info = {"model": model, "encode_layer": args.encode_layer, "normalize": args.normalize, "device": str(device),
            "threads": args.threads}
    return EncoderService(tokenizer, args.seq_length, runner, args.max_batch_size, dim, info)


@entry_point("encoder_server.py")
def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args_with_config(build_parser(), list(sys.argv[1:] if argv is None else argv))
    check_server_options(args)
    setup_logging(True)
    tune_cpu_allocator()
    set_threads(args.threads)
    service = build_service(args)
    sock = bind(args.host, args.port)
    app = create_app(service, batcher_from_args(service.run, args), limits_from_args(args),
                     on_startup=lambda: announce(url_of(sock), "encoder"))
    logger.info("encoder %s (%s, dim %d, %s backend, max length %d)", service.info["model"],
                args.encode_layer + (" normalised" if args.normalize else ""), service.dim, args.backend,
                args.seq_length)
    serve(app, sock, args.log_requests)
