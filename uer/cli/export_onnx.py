"""Export a pre-trained encoder or a fine-tuned classifier to ONNX for the servers' onnxruntime backend
(pip install -r requirements-serve.txt).

    # sentence vectors (what scripts/encoder_server.py serves), here averaged and normalised
    python3 scripts/export_onnx.py --kind encoder --load_model_path models/demo_bert_model.bin-300 \\
        --vocab_path models/google_zh_vocab.txt --config_path models/bert/tiny_config.json \\
        --encode_layer mean --normalize --output_path models/encoder.onnx
    python3 scripts/encoder_server.py --backend onnxruntime --onnx_path models/encoder.onnx \\
        --vocab_path models/google_zh_vocab.txt

    # a classifier of run_classifier.py (the flags it was trained with, as for run_classifier_infer.py)
    python3 scripts/export_onnx.py --kind classifier --load_model_path models/demo_classifier_model.bin \\
        --vocab_path models/google_zh_vocab.txt --config_path models/bert/tiny_config.json --labels_num 2 \\
        --output_path models/classifier.onnx

Inputs ``src`` and ``seg`` (int64 [batch x sequence], segment 0 = padding; both axes dynamic), output
``vectors`` [batch x hidden_size] or ``logits`` [batch x labels_num]. The export is run by onnxruntime on
padded batches of several shapes and must equal PyTorch's outputs to --tolerance before it is written.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Sequence

from uer import opts
from uer.config import parse_args_with_config
from uer.errors import UsageError, entry_point
from uer.finetune.tasks.classifier import add_pooling_option
from uer.serving.modules import add_encoder_output_options, classifier_logits_from_args, encoder_vectors_from_args
from uer.serving.onnx_export import export_onnx
from uer.utils.io import check_outputs
from uer.utils.logging import setup_logging_from_args
from uer.utils.ranges import finite_positive_float, positive_int, sequence_length

logger = logging.getLogger("export_onnx")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=opts.HelpFormatter)
    parser.add_argument("--kind", choices=("encoder", "classifier"), required=True,
                        help="encoder: a pre-trained model's sentence vectors; classifier: a run_classifier.py model.")
    parser.add_argument("--load_model_path", required=True, help="The model file to export.")
    parser.add_argument("--output_path", required=True, help="The ONNX file to write (atomically).")
    parser.add_argument("--seq_length", type=sequence_length, default=128, help="Longest input the export is checked on.")
    parser.add_argument("--opset_version", type=positive_int, default=18, help="ONNX opset.")
    parser.add_argument("--tolerance", type=finite_positive_float, default=1e-4,
                        help="Largest difference to PyTorch's outputs the export may have.")
    add_encoder_output_options(parser)
    parser.add_argument("--labels_num", type=positive_int, default=None, help="--kind classifier: number of labels.")
    opts.add_quantize_option(parser)
    opts.add_tokenizer_options(parser)
    opts.add_model_options(parser)
    add_pooling_option(parser)
    opts.add_logging_options(parser)  # --log_level DEBUG shows the exporter's and optimiser's own lines
    return parser


@entry_point("export_onnx.py")
def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args_with_config(build_parser(), list(sys.argv[1:] if argv is None else argv))
    check_outputs(args, outputs=("output_path",),
                  inputs=("load_model_path", "vocab_path", "spm_model_path", "config_path"))
    setup_logging_from_args(args)
    if args.kind == "encoder":
        if args.labels_num is not None:
            raise UsageError("--labels_num is for --kind classifier")
        args.encode_layer = args.encode_layer or "first"
        module, tokenizer, cfg = encoder_vectors_from_args(args, args.load_model_path)
        metadata = {"uer_kind": "encoder", "encode_layer": args.encode_layer,
                    "normalize": "true" if args.normalize else "false", "dim": str(cfg.hidden_size)}
        output = "vectors"
    else:
        if args.encode_layer is not None or args.normalize:
            raise UsageError("--encode_layer and --normalize are for --kind encoder")
        if args.labels_num is None or args.labels_num < 1:
            raise UsageError("--kind classifier needs --labels_num (as the model was trained with)")
        module, tokenizer, cfg = classifier_logits_from_args(args, args.load_model_path)
        metadata = {"uer_kind": "classifier", "labels_num": str(args.labels_num), "pooling": args.pooling}
        output = "logits"
    metadata["source_model"] = os.path.basename(args.load_model_path)
    bounded = "pos" in cfg.embedding or cfg.encoder == "synt"
    start = time.perf_counter()
    worst = export_onnx(module, args.output_path, metadata, output, cfg.max_seq_length if bounded else None,
                        len(tokenizer.vocab), tokenizer.vocab.cls_id, args.seq_length, args.opset_version,
                        args.tolerance, args.quantize)
    logger.info("wrote %s (%s, %.1f MB) in %.1f s; onnxruntime equals PyTorch to %.2g", args.output_path, args.kind,
                os.path.getsize(args.output_path) / 1e6, time.perf_counter() - start, worst)
