"""Throughput of our BertTokenizer.encode against transformers' BERT tokenizers (Python and Rust-backed).

Usage: python3 benchmarks/bench_tokenizer.py [--corpus PATH] [--vocab PATH] [--repeat N]
Every tokenizer runs over the same lines (ids without [CLS]/[SEP]); outputs are compared so that a
speed-up can never come from a wrong answer. "cold" is the first pass of a fresh tokenizer (empty
caches, what preprocess.py sees), "warm" the best of the following passes.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("UER_SHARED_DATA", ROOT.parent / "shared" / "data"))

from uer.text.tokenizers import BertTokenizer


def _timed(fn, lines: list[str], repeat: int) -> tuple[float, float, list]:
    """(cold seconds, best warm seconds, output of the cold pass)."""
    start = time.perf_counter()
    out = fn(lines)
    cold = time.perf_counter() - start
    warm = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(lines)
        warm = min(warm, time.perf_counter() - start)
    return cold, warm, out


def _report(name: str, cold: float, warm: float, n_lines: int, n_chars: int) -> None:
    def rate(seconds: float) -> str:
        return f"{seconds:7.3f}s {n_lines / seconds:10,.0f} lines/s {n_chars / seconds:12,.0f} chars/s"

    warm_text = rate(warm) if warm != float("inf") else "-"
    print(f"{name:<52} cold {rate(cold)} | warm {warm_text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", default=str(DATA / "corpora" / "CLUECorpusSmall_bert_sampled.txt"))
    parser.add_argument("--vocab", default=str(DATA / "models" / "google_zh_vocab.txt"))
    parser.add_argument("--repeat", type=int, default=2, help="warm passes after the cold one")
    args = parser.parse_args()

    with open(args.corpus, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    n_lines, n_chars = len(lines), sum(map(len, lines))
    print(f"corpus {args.corpus}: {n_lines} lines, {n_chars} chars; vocab {args.vocab}")

    start = time.perf_counter()
    ours = BertTokenizer(vocab_path=args.vocab)
    print(f"our tokenizer loads in {time.perf_counter() - start:.3f}s")
    cold, warm, expected = _timed(lambda ls: [ours.encode(line) for line in ls], lines, args.repeat)
    _report("uer BertTokenizer.encode", cold, warm, n_lines, n_chars)

    try:
        import transformers
    except ImportError:
        print("transformers not installed: no reference timings")
        return
    with tempfile.TemporaryDirectory() as folder:
        # transformers 5.x BertTokenizer(vocab_file=...) ignores the file: load a folder instead.
        shutil.copyfile(args.vocab, os.path.join(folder, "vocab.txt"))
        if hasattr(transformers, "BertTokenizerLegacy"):
            candidates = [("python", transformers.BertTokenizerLegacy), ("rust", transformers.BertTokenizer)]
        else:
            candidates = [("python", transformers.BertTokenizer), ("rust", transformers.BertTokenizerFast)]
        for kind, cls in candidates:
            ref = cls.from_pretrained(folder)
            assert len(ref) == len(ours.vocab), f"{cls.__name__} loaded {len(ref)} tokens"
            name = f"transformers {cls.__name__} ({kind})"
            cold, warm, out = _timed(lambda ls: [ref.convert_tokens_to_ids(ref.tokenize(x)) for x in ls], lines,
                                     args.repeat if kind == "rust" else 0)
            _report(name + " tokenize", cold, warm, n_lines, n_chars)
            mismatches = sum(a != b for a, b in zip(expected, out))
            print(f"{'':<52} lines whose ids differ from ours: {mismatches}")
            if kind == "rust":
                cold, warm, _ = _timed(lambda ls: ref(ls, add_special_tokens=False)["input_ids"], lines, args.repeat)
                _report(name + " batch call", cold, warm, n_lines, n_chars)
    print("(Rust batch calls may use several threads unless RAYON_NUM_THREADS=1; ours is single-threaded.)")


if __name__ == "__main__":
    main()
