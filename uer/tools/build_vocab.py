"""scripts/build_vocab.py: a vocabulary file from a corpus, special tokens first, then tokens by descending count.

Example (UER-py's command lines; --processes_num = --workers_num, --output_path = --vocab_path)::

    python3 scripts/build_vocab.py --corpus_path corpora/rmrb_seg_bert.txt --vocab_path models/rmrb_word_vocab.txt \\
        --tokenizer space --min_count 50
    python3 scripts/build_vocab.py --corpus_path corpora/demo_bert.txt --vocab_path models/demo_vocab.txt \\
        --tokenizer char --min_count 2 --processes_num 2

The vocabulary is one token per line: [PAD] (id 0), [UNK], [CLS], [SEP], [MASK], then every token
seen at least --min_count times, most frequent first, ties in token order, so the file only depends
on the corpus and the options (not on --workers_num). Counting tokens:

* char:  every non-whitespace character;
* space: the line split on whitespace;
* bert:  BERT's basic tokenization (text cleaning, CJK characters and punctuation split out, lower case);
* with --spm_model_path: the pieces of that sentencepiece model.

--processes_num N starts N processes, each counting the lines that start in its N-th of the file's bytes.

Subword vocabulary (ERNIE tiny's Chinese subwords): ``--subword wordpiece --vocab_size 30000`` cuts each line
into words with jieba, learns subword pieces over those words with sentencepiece's unigram model, and writes
them as a WordPiece vocabulary: [PAD] [UNK] [CLS] [SEP] [MASK], every character (as ``c`` and ``##c``, so no
word becomes [UNK]), then the most probable multi-character pieces (a word-initial piece as is, a piece inside
a word as ``##piece``) up to --vocab_size. Use it with ``--tokenizer jieba_wordpiece``::

    python3 scripts/build_vocab.py --corpus_path corpora/CLUECorpusSmall.txt --vocab_path models/zh_subword_vocab.txt \
        --subword wordpiece --vocab_size 30000
"""
from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from multiprocessing import get_context
from typing import Callable, Sequence

from uer.errors import DataError, UsageError, entry_point
from uer.utils.io import UTF8_BOM, atomic_open, check_input_file, check_outputs, decode_utf8
from uer.utils.ranges import positive_int

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TOKENIZERS = ("bert", "char", "space")
SUBWORDS = ("wordpiece",)


def char_tokenize(text: str) -> list[str]:
    """Every non-whitespace character is a token."""
    return [ch for ch in text if not ch.isspace()]


def space_tokenize(text: str) -> list[str]:
    """Tokens are the whitespace-separated words (empty strings never count)."""
    return text.split()


def make_tokenize(tokenizer: str, spm_model_path: str | None = None) -> Callable[[str], list[str]]:
    """The counting function for a tokenizer name (or a sentencepiece model, which wins when given)."""
    if spm_model_path:
        try:
            import sentencepiece
        except ImportError:
            raise UsageError("--spm_model_path needs the package 'sentencepiece' "
                             "(pip install sentencepiece)") from None
        processor = sentencepiece.SentencePieceProcessor()
        processor.Load(str(spm_model_path))
        return processor.EncodeAsPieces
    if tokenizer == "char":
        return char_tokenize
    if tokenizer == "space":
        return space_tokenize
    if tokenizer == "bert":
        from uer.text.tokenizers import BasicTokenizer
        return BasicTokenizer(do_lower_case=True).tokenize
    raise ValueError(f"unknown tokenizer {tokenizer!r}; choose one of {', '.join(TOKENIZERS)}")


def byte_ranges(path: str | os.PathLike, parts: int) -> list[tuple[int, int]]:
    """Split a file's size into ``parts`` contiguous [start, end) byte ranges (line alignment is done by readers)."""
    size = os.path.getsize(path)
    return [(size * i // parts, size * (i + 1) // parts) for i in range(parts)]


def count_range(path: str, start: int, end: int, tokenizer: str, spm_model_path: str | None) -> Counter:
    """Count the tokens of every line whose first byte lies in [start, end)."""
    tokenize = make_tokenize(tokenizer, spm_model_path)
    counts: Counter = Counter()
    with open(path, "rb") as f:
        if start > 0:
            f.seek(start - 1)
            f.readline()  # finish the line that straddles ``start``: its owner is the previous range
        pos = f.tell()
        while pos < end:
            raw = f.readline()
            if not raw:
                break
            line = decode_utf8(raw[3:] if pos == 0 and raw.startswith(UTF8_BOM) else raw, path, offset=pos)
            pos += len(raw)
            counts.update(tokenize(line))
    return counts


def count_tokens(path: str, tokenizer: str, workers_num: int = 1, spm_model_path: str | None = None) -> Counter:
    """Token counts over the whole corpus, with ``workers_num`` processes each counting one byte range."""
    ranges = byte_ranges(path, workers_num)
    jobs = [(str(path), start, end, tokenizer, spm_model_path) for start, end in ranges]
    if workers_num == 1:
        return count_range(*jobs[0])
    total: Counter = Counter()
    with get_context("spawn").Pool(workers_num) as pool:
        for counts in pool.starmap(count_range, jobs):
            total.update(counts)
    return total


def vocab_from_counts(counts: Counter, min_count: int = 1) -> list[str]:
    """Special tokens, then tokens with count >= min_count by descending count, ties by token text."""
    kept = [(token, n) for token, n in counts.items() if n >= min_count and token not in SPECIAL_TOKENS]
    kept.sort(key=lambda item: (-item[1], item[0]))
    return SPECIAL_TOKENS + [token for token, _ in kept]


def jieba_words(text: str, jieba) -> list[str]:
    """The lower-cased words jieba cuts ``text`` into (what the jieba_wordpiece tokenizer splits further)."""
    return [part for word in jieba.cut(text.lower()) for part in word.split()]


def train_wordpiece(corpus_path: str, vocab_size: int, character_coverage: float = 0.9995,
                    max_lines: int = 2_000_000) -> list[str]:
    """A WordPiece vocabulary of ``vocab_size`` entries learned over the jieba words of the corpus (module doc)."""
    import tempfile

    import sentencepiece as spm

    from uer.text.segment import _import_jieba

    jieba = _import_jieba()
    with tempfile.TemporaryDirectory() as tmp:
        words_path = os.path.join(tmp, "words.txt")
        lines = 0
        with open(corpus_path, "rb") as src, open(words_path, "w", encoding="utf-8") as out:
            for offset, raw in _lines_with_offsets(src):
                text = decode_utf8(raw, corpus_path, offset=offset).strip()
                if text:
                    out.write(" ".join(jieba_words(text, jieba)) + "\n")
                    lines += 1
                    if lines >= max_lines:
                        break
        if lines == 0:
            raise UsageError(f"{corpus_path}: no text to learn a vocabulary from")
        prefix = os.path.join(tmp, "sp")
        try:
            spm.SentencePieceTrainer.Train(
                input=words_path, model_prefix=prefix, vocab_size=vocab_size, model_type="unigram",
                character_coverage=character_coverage, unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1,
                hard_vocab_limit=False, max_sentence_length=1 << 16, split_by_whitespace=True,
                normalization_rule_name="identity",  # keep full-width punctuation: the tokenizer does not fold it
                shuffle_input_sentence=False, minloglevel=2, num_threads=1)  # deterministic: every line, in order
        except RuntimeError as err:
            raise UsageError(f"{corpus_path}: sentencepiece could not learn a vocabulary: {err}") from None
        processor = spm.SentencePieceProcessor()
        processor.Load(prefix + ".model")
    pieces = [(processor.IdToPiece(i), processor.GetScore(i)) for i in range(processor.GetPieceSize())
              if not (processor.IsUnknown(i) or processor.IsControl(i))]
    chars = sorted({ch for piece, _ in pieces for ch in piece.replace(SPIECE_UNDERLINE, "")})
    vocab = list(SPECIAL_TOKENS) + chars + ["##" + ch for ch in chars]
    if len(vocab) >= vocab_size:
        raise UsageError(f"--vocab_size {vocab_size} leaves no room for subword pieces: the corpus has {len(chars)} "
                         f"characters ({len(vocab)} entries with their ## forms and the special tokens); give more")
    seen = set(vocab)
    for piece, _ in sorted(pieces, key=lambda item: -item[1]):
        body = piece.replace(SPIECE_UNDERLINE, "")
        token = body if piece.startswith(SPIECE_UNDERLINE) else "##" + body
        if len(body) > 1 and token not in seen:
            vocab.append(token)
            seen.add(token)
        if len(vocab) >= vocab_size:
            break
    return vocab


SPIECE_UNDERLINE = "\u2581"


def _lines_with_offsets(handle):
    offset = 0
    for raw in handle:
        yield offset, (raw[3:] if offset == 0 and raw.startswith(UTF8_BOM) else raw)
        offset += len(raw)


def write_vocab(vocab: list[str], path: str | os.PathLike) -> None:
    """Write one token per line, atomically (uer.utils.io.atomic_open)."""
    with atomic_open(path, "w") as f:
        f.write("".join(token + "\n" for token in vocab))


def build_parser(prog: str = "build_vocab.py") -> argparse.ArgumentParser:
    """UER-py's build_vocab.py options (both generations' spellings)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--corpus_path", required=True, help="Text corpus, UTF-8 (any line format).")
    parser.add_argument("--vocab_path", "--output_path", dest="vocab_path", required=True,
                        help="Output vocabulary, one token per line.")
    parser.add_argument("--spm_model_path", default=None,
                        help="Count the pieces of this sentencepiece model instead of --tokenizer's tokens.")
    parser.add_argument("--tokenizer", choices=TOKENIZERS, default=None,
                        help="How lines are cut into tokens: bert (basic BERT tokenization), char, space. "
                             "Default: --delimiter if given, else bert.")
    parser.add_argument("--delimiter", choices=("char", "space"), default=None,
                        help="Older spelling of --tokenizer char / --tokenizer space.")
    parser.add_argument("--processes_num", "--workers_num", dest="workers_num", type=positive_int, default=1,
                        help="Processes counting tokens in parallel.")
    parser.add_argument("--min_count", type=positive_int, default=1, help="Keep tokens seen at least this many times.")
    parser.add_argument("--subword", choices=SUBWORDS, default=None,
                        help="Learn a subword vocabulary instead of counting tokens: wordpiece = jieba words, then "
                             "subword pieces (ERNIE tiny); use it with --tokenizer jieba_wordpiece.")
    parser.add_argument("--vocab_size", type=positive_int, default=None,
                        help="--subword: entries of the vocabulary (special tokens and every character included).")
    return parser


@entry_point("build_vocab.py")
def main(argv: Sequence[str] | None = None) -> None:
    """Count, select and write the vocabulary."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.tokenizer and args.delimiter and args.tokenizer != args.delimiter:
        parser.error(f"--tokenizer {args.tokenizer} and --delimiter {args.delimiter} disagree; give one of them")
    tokenizer = args.tokenizer or args.delimiter or "bert"
    if args.workers_num < 1:
        parser.error("--processes_num must be >= 1")
    if args.min_count < 1:
        parser.error("--min_count must be >= 1")
    check_input_file(args.corpus_path, "corpus file")
    if args.spm_model_path:
        check_input_file(args.spm_model_path, "sentencepiece model")

    started = time.perf_counter()
    check_outputs(args, outputs=("vocab_path",), inputs=("corpus_path", "spm_model_path"))
    if (args.subword is None) != (args.vocab_size is None):
        parser.error("--subword and --vocab_size go together")
    if args.subword:
        if args.spm_model_path or args.tokenizer or args.delimiter or args.min_count != 1:
            parser.error("--subword learns its own pieces: --spm_model_path, --tokenizer, --delimiter and --min_count "
                         "do not apply")
        if args.vocab_size < 100:
            parser.error("--vocab_size must be at least 100")
        vocab = train_wordpiece(args.corpus_path, args.vocab_size)
        write_vocab(vocab, args.vocab_path)
        chars = sum(1 for token in vocab if len(token) == 1)
        print(f"{args.vocab_path}: {len(vocab)} tokens ({len(SPECIAL_TOKENS)} special, {chars} characters and their ## "
              f"forms, {len(vocab) - len(SPECIAL_TOKENS) - 2 * chars} multi-character pieces) learned over jieba words "
              f"in {time.perf_counter() - started:.1f} s; tokenize with --tokenizer jieba_wordpiece", flush=True)
        return
    counts = count_tokens(args.corpus_path, tokenizer, args.workers_num, args.spm_model_path)
    vocab = vocab_from_counts(counts, args.min_count)
    if len(vocab) == len(SPECIAL_TOKENS):  # nothing but the special tokens: no model could use it
        found = (f"{len(counts)} distinct tokens, the most frequent seen {max(counts.values())} times" if counts
                 else "no tokens at all")
        raise DataError(f"no token is seen at least --min_count {args.min_count} times ({found}); nothing written: "
                        "lower --min_count or give a larger corpus", args.corpus_path)
    write_vocab(vocab, args.vocab_path)
    by = f"sentencepiece model {args.spm_model_path}" if args.spm_model_path else f"{tokenizer} tokenizer"
    print(f"{args.vocab_path}: {len(vocab)} tokens ({len(SPECIAL_TOKENS)} special + {len(vocab) - len(SPECIAL_TOKENS)} "
          f"of {len(counts)} distinct with count >= {args.min_count}), {sum(counts.values())} tokens counted by the "
          f"{by}, {args.workers_num} worker(s), {time.perf_counter() - started:.1f} s", flush=True)

