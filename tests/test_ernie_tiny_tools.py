"""ERNIE tiny's tools: the Chinese subword vocabulary (scripts/build_vocab.py --subword wordpiece with the
jieba_wordpiece tokenizer) and data augmentation for data distillation (scripts/augment_data.py)."""
from __future__ import annotations

import pytest

from conftest import run_script, shared_path
from uer.text.tokenizers import build_tokenizer

jieba = pytest.importorskip("jieba", reason="subword vocabularies and augmentation segment with jieba "
                                            "(requirements-segment.txt)")


@pytest.mark.slow
def test_subword_vocabulary_shortens_inputs(tmp_path):
    corpus = tmp_path / "corpus.txt"
    texts = [line.split("\t", 1)[1] for line in
             open(shared_path("datasets/chnsenticorp/train.tsv"), encoding="utf-8").read().splitlines()[1:]]
    corpus.write_text("\n".join(texts[:1500]) + "\n", encoding="utf-8")
    out = run_script("scripts/build_vocab.py", "--corpus_path", str(corpus), "--vocab_path", str(tmp_path / "v.txt"),
                     "--subword", "wordpiece", "--vocab_size", "9000").stdout
    assert "multi-character pieces" in out
    vocab = (tmp_path / "v.txt").read_text(encoding="utf-8").splitlines()
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] and len(vocab) == len(set(vocab)) <= 9000
    chars = {t for t in vocab if len(t) == 1}
    assert {"##" + c for c in chars} <= set(vocab)  # every character also inside a word: no word becomes [UNK]
    assert sum(1 for t in vocab if len(t.lstrip("#")) > 1 and not t.isascii()) > 1000  # Chinese multi-char pieces
    subword = build_tokenizer("jieba_wordpiece", str(tmp_path / "v.txt"))
    chars_tok = build_tokenizer("bert", str(shared_path("models/google_zh_vocab.txt")))
    held_out = texts[-300:]  # not in the corpus
    n_sub = sum(len(subword.encode(t)) for t in held_out)
    n_char = sum(len(chars_tok.encode(t)) for t in held_out)
    assert n_sub < 0.92 * n_char, (n_sub, n_char)  # 12% shorter from 1,500 reviews; see benchmarks for more
    unk = sum(i == subword.vocab.unk_id for t in held_out for i in subword.encode(t))
    assert unk < 0.01 * n_sub
    assert subword.tokenize("我很喜欢这个酒店") == [p for w in jieba.cut("我很喜欢这个酒店")
                                                for p in subword.wordpiece_tokenizer.tokenize_word(w)]


def test_augmentation_noise_swaps_and_ngrams(tmp_path):
    from uer.tools.augment import UNK_CHAR, Augmenter, join_words, tag_words

    tagged = tag_words(["我喜欢北京的天气", "他讨厌上海的美食", "我们 爱 学习"])
    tags = {word: tag for words in tagged for word, tag in words}
    swap = Augmenter(tagged, unk_prob=0.0, pos_prob=1.0, ngram_prob=0.0, seed=1)
    for _ in range(20):
        out = swap.augment(tagged[0])
        assert [tags[w] for w in out] == [t for _, t in tagged[0]]  # every word swapped for one with its tag
    noise = Augmenter(tagged, unk_prob=1.0, pos_prob=0.0, ngram_prob=0.0)
    assert noise.augment(tagged[1]) == [UNK_CHAR] * len(tagged[1])
    assert join_words([UNK_CHAR, UNK_CHAR, "好"]) == f"{UNK_CHAR} {UNK_CHAR} 好"
    chars = build_tokenizer("bert", str(shared_path("models/google_zh_vocab.txt")))
    assert chars.tokenize(join_words([UNK_CHAR, UNK_CHAR, "好"])) == ["[UNK]", "[UNK]", "好"]
    ngram = Augmenter(tagged, unk_prob=0.0, pos_prob=0.0, ngram_prob=1.0, ngram_range=(2, 3), seed=2)
    words = [w for w, _ in tagged[0]]
    for _ in range(20):
        out = ngram.augment(tagged[0])
        assert 2 <= len(out) <= 3 and any(words[i:i + len(out)] == out for i in range(len(words)))


@pytest.mark.slow
def test_augment_data_end_to_end(tmp_path):
    rows = open(shared_path("datasets/chnsenticorp/train.tsv"), encoding="utf-8").read().splitlines()[:41]
    (tmp_path / "train.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    args = ["--input_path", str(tmp_path / "train.tsv"), "--aug_times", "3", "--seed", "5"]
    run_script("scripts/augment_data.py", *args, "--output_path", str(tmp_path / "a.tsv"))
    run_script("scripts/augment_data.py", *args, "--output_path", str(tmp_path / "b.tsv"))
    lines = (tmp_path / "a.tsv").read_text(encoding="utf-8").splitlines()
    assert (tmp_path / "b.tsv").read_text(encoding="utf-8").splitlines() == lines  # same seed, same file
    originals = [r.split("\t", 1)[1] for r in rows[1:]]
    assert lines[0] == "text_a" and lines[1:41] == originals
    assert 80 < len(lines) - 41 <= 120 and len(set(lines)) == len(lines)
