"""Vocabularies: compare two (scripts/diff_vocab.py) and move a model to a new one (scripts/dynamic_vocab_adapter.py).

    python3 scripts/diff_vocab.py --vocab_1 models/google_zh_vocab.txt --vocab_2 models/rmrb_word_vocab.txt
    python3 scripts/dynamic_vocab_adapter.py --old_model_path models/wiki_bert_word_model.bin \\
        --old_vocab_path models/wiki_word_vocab.txt --new_vocab_path models/rmrb_word_vocab.txt \\
        --new_model_path models/rmrb_bert_word_model.bin

The adapter rebuilds every tensor with one row per vocabulary entry: the word embedding, the MLM output
(``target.mlm.linear_2`` weight and bias) and the LM outputs (``target.lm.output_layer``,
``target.bilm.output_layer``). A token of both vocabularies keeps its rows exactly (bit-identical); a new
token gets the builder's initialisation (weights N(0, 0.02), biases 0, drawn with --seed). Tensors that were
tied in the old file (the same values under two names, as --tie_weights saves them) stay tied. Everything
else is copied unchanged, so the adapted model predicts exactly as before on text made of shared tokens,
and pre-trains with the new vocabulary (preprocess.py / pretrain.py --vocab_path new_vocab).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from uer.tools.common import ToolError, check_outputs_are_not_inputs, require_file, run_tool, write_text
from uer.utils.ranges import seed_int

if TYPE_CHECKING:
    import torch

# Tensors with one row per vocabulary entry (UER-py's key names).
VOCAB_ROW_KEYS = ("embedding.word.embedding.weight", "target.mlm.linear_2.weight", "target.mlm.linear_2.bias",
                  "target.lm.output_layer.weight", "target.lm.output_layer.bias",
                  "target.bilm.output_layer.weight", "target.bilm.output_layer.bias")


def read_vocab_tokens(path: str) -> list[str]:
    """Tokens in id order (as uer.text.vocab reads them: the first field of each line)."""
    from uer.text.vocab import Vocab

    require_file(path, "vocabulary")
    return list(Vocab.from_file(path, validate=False))


@dataclass
class VocabDiff:
    size_1: int
    size_2: int
    only_1: list[str]
    only_2: list[str]
    shared: list[str]
    moved: list[str]  # shared tokens whose id differs

    def lines(self, name_1: str, name_2: str, show: int = 10) -> list[str]:
        sample = lambda tokens: " ".join(tokens[:show]) + (" ..." if len(tokens) > show else "")  # noqa: E731
        return [f"vocab_1: {name_1}, size: {self.size_1}", f"vocab_2: {name_2}, size: {self.size_2}",
                f"vocab_1 - vocab_2 = {len(self.only_1)}" + (f": {sample(self.only_1)}" if self.only_1 else ""),
                f"vocab_2 - vocab_1 = {len(self.only_2)}" + (f": {sample(self.only_2)}" if self.only_2 else ""),
                f"vocab_1 & vocab_2 = {len(self.shared)}",
                f"shared tokens with a different id: {len(self.moved)}" + (f": {sample(self.moved)}" if self.moved else "")]


def diff_vocabs(tokens_1: Sequence[str], tokens_2: Sequence[str]) -> VocabDiff:
    ids_1 = {t: i for i, t in enumerate(tokens_1)}
    ids_2 = {t: i for i, t in enumerate(tokens_2)}
    shared = [t for t in tokens_1 if t in ids_2]
    return VocabDiff(len(tokens_1), len(tokens_2), [t for t in tokens_1 if t not in ids_2],
                     [t for t in tokens_2 if t not in ids_1], shared, [t for t in shared if ids_1[t] != ids_2[t]])


def adapt_state_dict(state: dict[str, "torch.Tensor"], old_tokens: Sequence[str], new_tokens: Sequence[str],
                     seed: int = 7) -> tuple[dict[str, "torch.Tensor"], list[str]]:
    """A copy of ``state`` for ``new_tokens``; returns it and the adapted keys."""
    import torch

    old_ids = {t: i for i, t in enumerate(old_tokens)}
    keys = [key for key in VOCAB_ROW_KEYS if key in state]
    if "embedding.word.embedding.weight" not in keys:
        raise ToolError("the model has no word embedding (embedding.word.embedding.weight) to adapt")
    for key in keys:
        if state[key].shape[0] != len(old_tokens):
            raise ToolError(f"{key} has {state[key].shape[0]} rows but the old vocabulary has {len(old_tokens)} "
                            "tokens: --old_vocab_path is not the model's vocabulary")
    new_rows = torch.tensor([i for i, t in enumerate(new_tokens) if t in old_ids], dtype=torch.long)
    old_rows = torch.tensor([old_ids[t] for t in new_tokens if t in old_ids], dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    out = dict(state)
    adapted: dict[str, "torch.Tensor"] = {}
    for key in keys:
        old = state[key]
        tied_to = next((k for k, v in adapted.items() if state[k].shape == old.shape and torch.equal(state[k], old)),
                       None)
        if tied_to is not None:
            out[key] = out[tied_to]  # the same tensor: the tie survives saving and loading
            adapted[key] = out[key]
            continue
        shape = (len(new_tokens),) + tuple(old.shape[1:])
        if key.endswith(".bias"):
            new = torch.zeros(shape, dtype=old.dtype)
        else:
            new = torch.empty(shape, dtype=torch.float32).normal_(0.0, 0.02, generator=generator).to(old.dtype)
        new[new_rows] = old[old_rows]
        out[key] = new
        adapted[key] = new
    return out, keys


def diff_main(argv: Sequence[str] | None = None, prog: str = "diff_vocab.py") -> None:
    parser = argparse.ArgumentParser(prog=prog, description="Compare two vocabularies.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--vocab_1", required=True, help="First vocabulary.")
    parser.add_argument("--vocab_2", required=True, help="Second vocabulary.")
    parser.add_argument("--output_path", default=None,
                        help="Also write every token of either vocabulary as 'token<TAB>id_1<TAB>id_2' (-1: absent).")

    def body(argv: Sequence[str] | None) -> None:
        args = parser.parse_args(argv)
        check_outputs_are_not_inputs([("--output_path", args.output_path)],
                                     [("--vocab_1", args.vocab_1), ("--vocab_2", args.vocab_2)])
        tokens_1, tokens_2 = read_vocab_tokens(args.vocab_1), read_vocab_tokens(args.vocab_2)
        diff = diff_vocabs(tokens_1, tokens_2)
        print("\n".join(diff.lines(args.vocab_1, args.vocab_2)))
        if args.output_path:
            ids_1 = {t: i for i, t in enumerate(tokens_1)}
            ids_2 = {t: i for i, t in enumerate(tokens_2)}
            union = tokens_1 + diff.only_2
            write_text(args.output_path, "token\tid_1\tid_2\n" + "".join(
                f"{t}\t{ids_1.get(t, -1)}\t{ids_2.get(t, -1)}\n" for t in union))

    run_tool(prog, body, argv)


def adapter_main(argv: Sequence[str] | None = None, prog: str = "dynamic_vocab_adapter.py") -> None:
    parser = argparse.ArgumentParser(prog=prog, description="Adapt a model's vocabulary rows to a new vocabulary.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--old_model_path", required=True, help="Model trained with --old_vocab_path.")
    parser.add_argument("--old_vocab_path", required=True, help="The model's vocabulary.")
    parser.add_argument("--new_vocab_path", required=True, help="The vocabulary to adapt to.")
    parser.add_argument("--new_model_path", required=True, help="The adapted model (.bin, or .safetensors by name).")
    parser.add_argument("--seed", type=seed_int, default=7, help="Seed of the new tokens' random rows.")

    def body(argv: Sequence[str] | None) -> None:
        from uer.model_loader import load_state_dict
        from uer.model_saver import save_state_dict

        args = parser.parse_args(argv)
        check_outputs_are_not_inputs([("--new_model_path", args.new_model_path)],
                                     [("--old_model_path", args.old_model_path), ("--old_vocab_path", args.old_vocab_path),
                                      ("--new_vocab_path", args.new_vocab_path)])
        old_tokens, new_tokens = read_vocab_tokens(args.old_vocab_path), read_vocab_tokens(args.new_vocab_path)
        for flag, path, tokens in (("--old_vocab_path", args.old_vocab_path, old_tokens),
                                   ("--new_vocab_path", args.new_vocab_path, new_tokens)):
            if not tokens:
                raise ToolError(f"{flag} {path}: the vocabulary is empty; the model would have no embedding rows")
        state = load_state_dict(args.old_model_path)
        try:
            adapted, keys = adapt_state_dict(state, old_tokens, new_tokens, args.seed)
        except ToolError as err:
            raise ToolError(f"{args.old_model_path}: {err}") from None
        save_state_dict(adapted, args.new_model_path)
        diff = diff_vocabs(old_tokens, new_tokens)
        print(f"{args.new_model_path}: {len(diff.shared)} shared tokens keep their rows, {len(diff.only_2)} new "
              f"tokens initialised, {len(diff.only_1)} dropped; adapted {', '.join(keys)}")

    run_tool(prog, body, argv)
