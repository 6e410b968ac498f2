"""scripts/cloze_test.py: the MLM head's top --topn predictions, with probabilities, for masked tokens.

    python3 scripts/cloze_test.py --input_path datasets/cloze_input.txt --pretrained_model_path models/google_zh_model.bin \\
        --vocab_path models/google_zh_vocab.txt --output_path output.txt

Each input line is one text. A line that contains ``[MASK]`` gets predictions for those positions; any other
line gets one of its tokens masked, drawn with --seed (the token is reported as the correct answer). The model
reads ``[CLS] text [SEP]`` truncated to --seq_length, in batches padded to their longest line. The output has
UER-py's 4-line block per masked position::

    [CLS]text as the model saw it, with [MASK][SEP]
    Predicted answer: tok_1 tok_2 ... tok_n
    Correct answer: tok            (empty for a [MASK] of the input: there is no answer to give)
    <blank line>

(tokens joined as UER-py joins them; with --tokenizer space, by spaces). --output_prob adds a line
``Probabilities: p_1 ... p_n`` after the prediction. (--load_model_path/--test_path/--prediction_path are
UER-py's newer spellings.)
"""
from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from uer.text.tokenizers import SpaceTokenizer
from uer.tools.common import (ToolError, add_encoder_options, add_io_options, add_load_model_option,
                              check_outputs_are_not_inputs, load_encoder, parse, run_tool, text_lines, write_text)
from uer.utils.ranges import positive_int, seed_int

MASK_TOKEN = "[MASK]"


@dataclass
class ClozeItem:
    """One text: its ids ([CLS] ... [SEP]), the masked positions and, when this tool masked it, the answer."""

    ids: list[int]
    positions: list[int]
    answer: int | None


def make_items(lines: Sequence[tuple[int, str]], tokenizer, seq_length: int, seed: int, path: str) -> list[ClozeItem]:
    """Encode each (line number, text); keep its [MASK]s or mask one random token (not [CLS]/[SEP])."""
    vocab = tokenizer.vocab
    rng = random.Random(seed)
    items = []
    for line_no, line in lines:
        pieces = line.strip().split(MASK_TOKEN)
        ids = [vocab.cls_id]
        for i, piece in enumerate(pieces):
            if i:
                ids.append(vocab.mask_id)
            ids.extend(tokenizer.encode(piece))
        ids = ids[:seq_length - 1] + [vocab.sep_id]
        positions = [i for i, token in enumerate(ids) if token == vocab.mask_id]
        answer = None
        if not positions:
            if len(ids) < 3:
                raise ToolError(f"{path}:{line_no}: no token to mask (empty line)")
            position = rng.randrange(1, len(ids) - 1)
            answer, ids[position] = ids[position], vocab.mask_id
            positions = [position]
        items.append(ClozeItem(ids, positions, answer))
    return items


def mlm_probabilities(model, items: Sequence[ClozeItem], batch_size: int, pad_id: int,
                      device: torch.device) -> list[np.ndarray]:
    """Per item, [masked positions x vocab_size] probabilities from the MLM head (float32)."""
    out: list[np.ndarray | None] = [None] * len(items)
    order = sorted(range(len(items)), key=lambda i: len(items[i].ids))  # similar lengths share a batch
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            width = max(len(items[i].ids) for i in chunk)
            src = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            seg = torch.zeros((len(chunk), width), dtype=torch.long)
            flat = []
            for row, i in enumerate(chunk):
                ids = items[i].ids
                src[row, :len(ids)] = torch.tensor(ids)
                seg[row, :len(ids)] = 1
                flat.extend(row * width + p for p in items[i].positions)
            hidden = model.encode(src.to(device), seg.to(device))
            logits = model.target.mlm.logits(hidden, torch.tensor(flat, device=device))
            probs = torch.softmax(logits.float(), dim=-1).cpu().numpy()
            at = 0
            for i in chunk:
                n = len(items[i].positions)
                out[i] = probs[at:at + n]
                at += n
    return out  # type: ignore[return-value]


def format_results(items: Sequence[ClozeItem], probs: Sequence[np.ndarray], tokenizer, topn: int,
                   output_prob: bool = False) -> str:
    """UER-py's blocks, one per masked position: the text, ``Predicted answer:``, (``Probabilities:``),
    ``Correct answer:``, a blank line."""
    joiner = " " if isinstance(tokenizer, SpaceTokenizer) else ""
    blocks = []
    for item, p in zip(items, probs):
        text = joiner.join(tokenizer.convert_ids_to_tokens(item.ids))
        answer = "" if item.answer is None else tokenizer.convert_ids_to_tokens([item.answer])[0]
        for row in p:
            best = np.argsort(-row, kind="stable")[:topn]
            lines = [text, "Predicted answer: " + " ".join(tokenizer.convert_ids_to_tokens(best.tolist()))]
            if output_prob:
                lines.append("Probabilities: " + " ".join(f"{row[i]:.4f}" for i in best))
            lines.append("Correct answer: " + answer)
            blocks.append("\n".join(lines) + "\n\n")
    return "".join(blocks)


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_load_model_option(parser)
    add_io_options(parser, "Texts, one per line ([MASK] marks the positions to predict).",
                   "Where the predictions go (text file).")
    parser.add_argument("--topn", type=positive_int, default=10, help="Predictions per masked position.")
    parser.add_argument("--seed", type=seed_int, default=7, help="Seed of the random choice of the masked token.")
    parser.add_argument("--output_prob", action="store_true",
                        help="Add a 'Probabilities:' line (the predictions' probabilities) to each block.")
    add_encoder_options(parser)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "cloze_test.py") -> None:
    def body(argv: Sequence[str] | None) -> None:
        args = parse(build_parser(prog), argv)
        check_outputs_are_not_inputs([("--prediction_path", args.prediction_path)],
                                     [("--test_path", args.test_path), ("--load_model_path", args.load_model_path),
                                      ("--vocab_path", args.vocab_path)])
        if args.topn < 1:
            raise ToolError(f"--topn must be >= 1, got {args.topn}")
        lines = [(n, line) for n, line in text_lines(args.test_path, "input file (--test_path)") if line.strip()]
        tokenizer, encoder = load_encoder(args, with_mlm=True)
        if tokenizer.vocab.mask_id < 0:
            raise ToolError(f"{args.vocab_path or args.spm_model_path}: the vocabulary has no [MASK] token")
        items = make_items(lines, tokenizer, args.seq_length, args.seed, args.test_path)
        probs = mlm_probabilities(encoder.model, items, args.batch_size, tokenizer.vocab.pad_id, encoder.device)
        write_text(args.prediction_path, format_results(items, probs, tokenizer, args.topn, args.output_prob))
        print(f"{args.prediction_path}: top {args.topn} predictions for {sum(len(i.positions) for i in items)} "
              f"masked position(s) of {len(items)} line(s)")

    run_tool(prog, body, argv)
