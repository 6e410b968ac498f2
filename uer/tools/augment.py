"""scripts/augment_data.py: more (unlabelled) training texts for data distillation (ERNIE Slim).

    python3 scripts/augment_data.py --input_path datasets/chnsenticorp/train.tsv \\
        --output_path datasets/chnsenticorp/train_aug.tsv --aug_times 4 --seed 7

The input is a TSV with a header and a ``text_a`` column. Each text is cut into words (jieba, with part-of-speech
tags) and ``--aug_times`` new texts are made from it, each word independently:

* with probability ``--unk_prob`` replaced by ``--unk_token`` (unknown-token noise; by default U+E000, a
  private-use character no vocabulary has, which every tokenizer turns into [UNK]: the text "[UNK]" itself
  would be split into "[", "un", "##k", "]" by BERT's tokenizer);
* else with probability ``--pos_prob`` replaced by a word of the same part of speech, drawn from all the words
  of the input with that tag (by frequency);

then, with probability ``--ngram_prob``, only a random window of n words is kept (n uniform in
``--ngram_range``, n-gram sampling). The output is a TSV with the column ``text_a``: the original texts first,
then the new ones (texts equal to their original or repeated are dropped). It has no labels: the teacher
labels it (``inference/run_classifier_infer.py --output_logits``) and the student trains on that
(``run_classifier.py``, hard labels, or ``--soft_targets`` on the logits). The same ``--seed`` gives the same file.
"""
from __future__ import annotations

import argparse
import random
from collections import Counter, defaultdict
from typing import Sequence

from uer.utils.ranges import positive_int, probability, seed_int
from uer.tools.common import ToolError, check_outputs_are_not_inputs, require_file, run_tool

UNK_CHAR = "\ue000"  # the default --unk_token (see the module doc)


def tag_words(texts: Sequence[str]) -> list[list[tuple[str, str]]]:
    """(word, part-of-speech tag) pairs of each text, by jieba.posseg (whitespace dropped)."""
    from uer.text.segment import _import_jieba

    try:
        jieba = _import_jieba()
    except ImportError as err:
        raise ToolError(str(err)) from None
    return [[(p.word, p.flag) for p in jieba.posseg.cut(text) if p.word.strip()] for text in texts]


class Augmenter:
    """Makes new word sequences from tagged texts (see the module doc)."""

    def __init__(self, tagged: Sequence[Sequence[tuple[str, str]]], unk_prob: float = 0.1, pos_prob: float = 0.1,
                 ngram_prob: float = 0.25, ngram_range: tuple[int, int] = (3, 30), unk_token: str = UNK_CHAR,
                 seed: int = 7) -> None:
        for name, p in (("unk_prob", unk_prob), ("pos_prob", pos_prob), ("ngram_prob", ngram_prob)):
            if not 0.0 <= p <= 1.0:
                raise ToolError(f"--{name} must be in [0, 1], got {p}")
        if not 1 <= ngram_range[0] <= ngram_range[1]:
            raise ToolError(f"--ngram_range must be MIN MAX with 1 <= MIN <= MAX, got {list(ngram_range)}")
        self.unk_prob, self.pos_prob, self.ngram_prob = unk_prob, pos_prob, ngram_prob
        self.ngram_range = ngram_range
        self.unk_token = unk_token
        self.random = random.Random(seed)
        counts: dict[str, Counter] = defaultdict(Counter)
        for words in tagged:
            for word, tag in words:
                counts[tag][word] += 1
        # per tag: the words and their cumulative counts, for draws by frequency
        self.by_tag = {tag: (list(c), list(_cumulative(c.values()))) for tag, c in counts.items()}

    def same_pos(self, tag: str) -> str:
        words, cumulative = self.by_tag[tag]
        return self.random.choices(words, cum_weights=cumulative)[0]

    def augment(self, words: Sequence[tuple[str, str]]) -> list[str]:
        rnd = self.random
        out = []
        for word, tag in words:
            u = rnd.random()
            if u < self.unk_prob:
                out.append(self.unk_token)
            elif u < self.unk_prob + (1.0 - self.unk_prob) * self.pos_prob:
                out.append(self.same_pos(tag))
            else:
                out.append(word)
        if out and rnd.random() < self.ngram_prob:
            n = min(len(out), rnd.randint(*self.ngram_range))
            start = rnd.randrange(len(out) - n + 1)
            out = out[start:start + n]
        return out


def _cumulative(values) -> list[int]:
    total, out = 0, []
    for v in values:
        total += v
        out.append(total)
    return out


def augment_texts(texts: Sequence[str], aug_times: int, **options) -> list[str]:
    """The originals, then ``aug_times`` augmented versions of each (duplicates and unchanged copies dropped).
    Chinese words are joined without spaces; a space is kept between two ASCII words."""
    tagged = tag_words(texts)
    augmenter = Augmenter(tagged, **options)
    seen = set(texts)
    out = list(texts)
    for words in tagged:
        for _ in range(aug_times):
            text = join_words(augmenter.augment(words), augmenter.unk_token)
            if text and text not in seen:
                seen.add(text)
                out.append(text)
    return out


def join_words(words: Sequence[str], unk_token: str = UNK_CHAR) -> str:
    """Words as text: no space between Chinese words; one between two ASCII words and around the unknown token
    (so that two in a row stay two tokens)."""
    text, previous = "", ""
    for word in words:
        if text and ((text[-1].isascii() and text[-1].isalnum() and word[:1].isascii() and word[:1].isalnum())
                     or unk_token in (word, previous)):
            text += " "
        text += word
        previous = word
    return text


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--input_path", required=True, help="TSV with a header and a text_a column (e.g. train.tsv).")
    parser.add_argument("--output_path", required=True, help="TSV with the column text_a: originals, then new texts.")
    parser.add_argument("--aug_times", type=positive_int, default=4, help="New texts made from each input text.")
    parser.add_argument("--unk_prob", type=probability, default=0.1, help="Probability that a word becomes --unk_token.")
    parser.add_argument("--pos_prob", type=probability, default=0.1,
                        help="Probability that a word is swapped for a word of the same part of speech.")
    parser.add_argument("--ngram_prob", type=probability, default=0.25, help="Probability of keeping only an n-gram.")
    parser.add_argument("--ngram_range", type=positive_int, nargs=2, default=[3, 30], metavar=("MIN", "MAX"),
                        help="Length in words of the n-gram kept.")
    parser.add_argument("--unk_token", default=UNK_CHAR,
                        help="What unknown-token noise writes (default U+E000, which every tokenizer maps to [UNK]).")
    parser.add_argument("--seed", type=seed_int, default=7, help="Random seed (the same seed gives the same file).")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "augment_data.py") -> None:
    def body(argv: Sequence[str] | None) -> None:
        from uer.data.finetune_data import read_tsv
        from uer.utils.io import atomic_open

        args = build_parser(prog).parse_args(argv)
        if args.aug_times < 1:
            raise ToolError(f"--aug_times must be >= 1, got {args.aug_times}")
        require_file(args.input_path, "input TSV (--input_path)")
        check_outputs_are_not_inputs([("--output_path", args.output_path)], [("--input_path", args.input_path)])
        columns, rows = read_tsv(args.input_path, required=("text_a",))
        texts = [row[columns["text_a"]].strip() for row in rows if row[columns["text_a"]].strip()]
        out = augment_texts(texts, args.aug_times, unk_prob=args.unk_prob, pos_prob=args.pos_prob,
                            ngram_prob=args.ngram_prob, ngram_range=tuple(args.ngram_range), unk_token=args.unk_token,
                            seed=args.seed)
        with atomic_open(args.output_path, "w") as target:
            target.write("text_a\n" + "".join(text + "\n" for text in out))
        print(f"{args.output_path}: {len(texts)} original and {len(out) - len(texts)} new texts "
              f"(--aug_times {args.aug_times}, seed {args.seed})")

    run_tool(prog, body, argv)
