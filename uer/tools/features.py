"""scripts/extract_feature.py (= extract_features.py): the encoder's output for every input line.

    python3 scripts/extract_feature.py --input_path datasets/cloze_input.txt --vocab_path models/google_zh_vocab.txt \\
        --pretrained_model_path models/google_zh_model.bin --output_path feature_output.pt
    python3 scripts/extract_features.py --load_model_path models/google_zh_model.bin --vocab_path models/google_zh_vocab.txt \\
        --config_path models/bert/base_config.json --test_path sentences.txt --prediction_path vectors.npy \\
        --pooling mean --whitening_size 64

Line i of the input is row i of the output (an empty line is the [CLS] token alone); texts are read as the
classifiers read them (``[CLS] text``, truncated to --seq_length) in length-sorted batches with dynamic
padding, and vectors come from :meth:`uer.api.TextEncoder.embed` / ``hidden_states``, so they equal what the
serving code computes.

- ``--pooling none`` (extract_feature.py's default, UER-py's 2020 output): the last layer's hidden states,
  [lines x longest x hidden_size], zeros after each line's length (a ``.safetensors`` file also gets the
  ``lengths``).
- ``--pooling first|mean|max|last`` (extract_features.py's default: first): one vector per line,
  [lines x hidden_size], padding excluded from the pooling.
- ``--whitening_size K``: BERT-whitening (Su et al. 2021) of the pooled vectors: centred, rotated onto the
  principal axes of their covariance and scaled to unit variance, the first K axes kept. On the extracted set
  the result has mean 0 and identity covariance. UER-py also scales each whitened vector to unit length: add
  ``--normalize`` for that (cosine similarities are the same either way).

The file format follows the name: ``.npy`` (numpy), ``.safetensors`` (tensor ``features``), anything else a
tensor for ``torch.load(weights_only=True)``. Nothing needs unpickling code to read it.
"""
from __future__ import annotations

import argparse
from typing import Sequence

import numpy as np

from uer.tools.common import (ToolError, add_encoder_options, add_io_options, add_load_model_option,
                              check_outputs_are_not_inputs, load_encoder, parse, run_tool, save_array,
                              text_lines)
from uer.utils.ranges import positive_int

POOLING_CHOICES = ("none", "first", "mean", "max", "last")


def whitening_transform(vectors: np.ndarray, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mean [hidden], kernel [hidden x size]) of BERT-whitening fitted on ``vectors`` [N x hidden]:
    ``(v - mean) @ kernel`` has identity covariance on ``vectors``.

    Axes with (numerically) zero variance cannot be scaled to 1: asking for more axes than the data spans
    is an error naming both numbers.
    """
    if vectors.ndim != 2 or len(vectors) < 2:
        raise ToolError(f"whitening needs at least 2 vectors, got {len(vectors)}")
    data = vectors.astype(np.float64)
    mean = data.mean(axis=0)
    cov = np.cov(data - mean, rowvar=False)
    u, s, _ = np.linalg.svd(cov)
    rank = int((s > s[0] * 1e-10).sum()) if s[0] > 0 else 0
    size = rank if size is None else size
    if size < 1 or size > rank:
        raise ToolError(f"--whitening_size {size}: the {len(vectors)} vectors span {rank} dimension(s) "
                        f"(at most min(lines - 1, hidden_size)); ask for at most {rank}")
    kernel = u[:, :size] / np.sqrt(s[:size])
    return mean, kernel


def whiten(vectors: np.ndarray, size: int | None = None, normalize: bool = False) -> np.ndarray:
    """Fit BERT-whitening on ``vectors`` and apply it (float32 [N x size])."""
    mean, kernel = whitening_transform(vectors, size)
    out = (vectors.astype(np.float64) - mean) @ kernel
    if normalize:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out.astype(np.float32)


def extract(encoder, texts: Sequence[str], pooling: str, batch_size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """[N x hidden] pooled vectors (and None), or [N x longest x hidden] hidden states, zero padded, and the
    lengths."""
    if pooling != "none":
        return encoder.embed(list(texts), pooling=pooling, batch_size=batch_size), None
    states = encoder.hidden_states(list(texts), batch_size=batch_size)
    lengths = np.array([len(s) for s in states], dtype=np.int64)
    out = np.zeros((len(states), int(lengths.max()) if len(states) else 0, encoder.hidden_size), dtype=np.float32)
    for i, state in enumerate(states):
        out[i, :len(state)] = state
    return out, lengths


def build_parser(prog: str, default_pooling: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_load_model_option(parser)
    add_io_options(parser, "Texts, one per line.",
                   "Features file: .npy, .safetensors, or a torch tensor file (.pt) by the name.")
    parser.add_argument("--pooling", choices=POOLING_CHOICES, default=default_pooling,
                        help="none: per-token hidden states; first/mean/max/last: one vector per line.")
    parser.add_argument("--whitening_size", type=positive_int, default=None,
                        help="BERT-whitening of the pooled vectors to this many dimensions.")
    parser.add_argument("--normalize", action="store_true",
                        help="Scale each output vector to unit length (after whitening, as UER-py does).")
    add_encoder_options(parser)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "extract_feature.py", default_pooling: str = "none") -> None:
    def body(argv: Sequence[str] | None) -> None:
        args = parse(build_parser(prog, default_pooling), argv)
        check_outputs_are_not_inputs([("--prediction_path", args.prediction_path)],
                                     [("--test_path", args.test_path), ("--load_model_path", args.load_model_path),
                                      ("--vocab_path", args.vocab_path)])
        if args.pooling == "none" and (args.whitening_size is not None or args.normalize):
            raise ToolError("--whitening_size and --normalize apply to sentence vectors: give --pooling "
                            "first, mean, max or last")
        texts = [line for _, line in text_lines(args.test_path, "input file (--test_path)")]
        if not texts:
            raise ToolError(f"{args.test_path}: no lines to encode")
        _, encoder = load_encoder(args)
        features, lengths = extract(encoder, texts, args.pooling, args.batch_size)
        if args.whitening_size is not None:
            features = whiten(features, args.whitening_size, args.normalize)
        elif args.normalize:
            features = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
        save_array(args.prediction_path, features, {"lengths": lengths} if lengths is not None else None)
        print(f"{args.prediction_path}: features {list(features.shape)} of {len(texts)} line(s) "
              f"({'hidden states' if args.pooling == 'none' else args.pooling + ' pooling'}"
              f"{', whitened' if args.whitening_size else ''})")

    run_tool(prog, body, argv)
