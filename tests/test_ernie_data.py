"""ERNIE 1.0's pre-training line format (preprocess.py --corpus_format ernie) and validation during pre-training."""
from __future__ import annotations

import re

import numpy as np
import pytest

from conftest import run_script, shared_path
from uer.data.dataset import PretrainDataset
from uer.data.instances_ernie import parse_ernie_line
from uer.data.masking import MaskingConfig
from uer.data.preprocessing import PreprocessError, PreprocessOptions, build_dataset
from uer.data.pretrain_loader import PretrainBatches
from uer.text.segment import Segmenter, segmented_encoder
from uer.text.tokenizers import build_tokenizer


@pytest.fixture(scope="module")
def vocab() -> str:
    return str(shared_path("models/google_zh_vocab.txt"))


def ernie_line(a, b=None, label: int = 0, cls: int = 101, sep: int = 102) -> str:
    """An ERNIE 1.0 line from our own tokenisation: ``a``/``b`` are SegmentedIds (ids + unit codes)."""
    tokens, types, seg = [cls, *a, sep], [0] * (len(a) + 2), [-1] + [0 if u else 1 for u in a.units] + [-1]
    if b is not None:
        tokens += [*b, sep]
        types += [1] * (len(b) + 1)
        seg += [0 if u else 1 for u in b.units] + [-1]
    join = lambda xs: " ".join(map(str, xs))  # noqa: E731
    return f"{join(tokens)};{join(types)};{join(range(len(tokens)))};{join(seg)};{label}"


def words(vocab: str, count: int) -> list[str]:
    """Short CLUECorpusSmall documents, segmented by jieba into space-separated words (our text)."""
    jieba = pytest.importorskip("jieba", reason="segmenting the test text needs jieba (requirements-segment.txt)")
    jieba.setLogLevel(60)
    lines = [line.strip()[:60] for line in open(shared_path("corpora/CLUECorpusSmall_sampled.txt"), encoding="utf-8")
             if line.strip()][:count]
    return [" ".join(w for w in jieba.cut(line) if w.strip()) for line in lines]


def build(tmp_path, corpus_lines: list[str], name: str, vocab: str, **options) -> PretrainDataset:
    corpus = tmp_path / f"{name}.txt"
    corpus.write_text("\n".join(corpus_lines) + "\n", encoding="utf-8")
    build_dataset(PreprocessOptions(corpus_path=str(corpus), dataset_path=str(tmp_path / f"{name}.pt"),
                                    vocab_path=vocab, seq_length=64, **options), log=lambda _: None)
    return PretrainDataset.open(tmp_path / f"{name}.pt")


def test_ernie_lines_equal_our_instances_and_masking_keeps_words(tmp_path, vocab):
    texts = words(vocab, 60)
    encode = segmented_encoder(build_tokenizer("bert", vocab).encode, Segmenter("space"))
    ours = build(tmp_path, texts, "ours", vocab, target="mlm", dynamic_masking=True, whole_word_masking=True,
                 segmenter="space")
    ernie = build(tmp_path, [ernie_line(encode(t)) for t in texts], "ernie", vocab, target="mlm",
                  dynamic_masking=True, corpus_format="ernie")
    assert len(ours) == len(ernie) == len(texts)
    for name in ("src", "length", "seg_a_len", "unit"):
        assert np.array_equal(np.asarray(ours.arrays[name]), np.asarray(ernie.arrays[name])), name
    assert ernie.header["knowledge_masking"]["segmenter"] == "ernie seg_labels"
    # Dynamic masks from the stored words: whole words only, ~15% of the tokens.
    batches = PretrainBatches(ernie, batch_size=20, dynamic_masking=MaskingConfig.from_header(ernie.header))
    units = np.asarray(ernie.arrays["unit"])
    masked = maskable = 0
    for g in range(6):
        idx = batches.indices(batches.positions(g))
        batch = batches.batch(g)
        width = batch["src"].shape[1]
        pos = batch["mlm_positions"].numpy()
        for r, i in enumerate(idx):
            n = int(ernie.length[i])
            cols = set((pos[pos // width == r] % width).tolist())
            starts = [c for c in range(1, n - 1) if units[i, c] > 0 or c == 1] + [n - 1]
            for lo, hi in zip(starts, starts[1:]):
                inside = cols & set(range(lo, hi))
                assert not inside or len(inside) == hi - lo, f"word {lo}:{hi} cut by the mask {sorted(inside)}"
            maskable += n - 2
        masked += len(pos)
    assert 0.10 < masked / maskable < 0.20


def test_ernie_pairs_keep_segments_labels_and_static_word_masks(tmp_path, vocab):
    texts = words(vocab, 40)
    encode = segmented_encoder(build_tokenizer("bert", vocab).encode, Segmenter("space"))
    pairs = [(_cut(encode(texts[i]), 25), _cut(encode(texts[i + 1]), 25), (i // 2) % 2) for i in range(0, 40, 2)]
    lines = [ernie_line(a, b, label) for a, b, label in pairs]
    ds = build(tmp_path, lines, "pairs", vocab, target="bert", dup_factor=2, corpus_format="ernie")
    assert len(ds) == 2 * len(pairs)
    for row in range(len(ds)):
        a, b, label = pairs[row % len(pairs)]
        n, seg_a = int(ds.length[row]), int(ds.seg_a_len[row])
        assert (seg_a, n, int(ds.label[row])) == (len(a) + 2, len(a) + len(b) + 3, label)
        start, count = int(ds.mask_offsets[row]), int(ds.mask_offsets[row + 1] - ds.mask_offsets[row])
        cols = set(np.asarray(ds.mask_pos[start:start + count]).tolist())
        original = [101, *a, 102, *b, 102]
        units = [1, *a.units, 1, *b.units, 1]
        starts = [c for c in range(1, n) if units[c] > 0] + [n]
        for lo, hi in zip(starts, starts[1:]):
            if original[lo] == 102:
                continue
            inside = cols & set(range(lo, hi))
            assert not inside or len(inside) == hi - lo
        assert [original[c] for c in sorted(cols)] == np.asarray(ds.mask_label[start:start + count]).tolist()


def _cut(ids, n):
    """The first ``n`` tokens of SegmentedIds, units kept."""
    from uer.text.segment import SegmentedIds

    return SegmentedIds(list(ids)[:n], list(ids.units)[:n])


BAD_ERNIE_LINES = [
    ("101 5 102;0 0 0;0 1 2;-1 0 -1", "expected 5"),
    ("101 5 99999 102;0 0 0 0;0 1 2 3;-1 0 0 -1;0", "outside the vocabulary"),
    ("101 5 102;0 0 0;0 1 2;-1 0 -1;2", "next_sentence_label"),
    ("101 5 102;0 0;0 1 2;-1 0 -1;0", "different lengths"),
    ("101 5 102;0 0 0;0 2 1;-1 0 -1;0", "position_ids"),
    ("101 5 102 6 102;0 0 0 0 1;0 1 2 3 4;-1 0 -1 0 -1;0", "sentence_type_ids"),
    ("101 5 102;0 0 0;0 1 2;-1 1 0;0", "seg_labels"),
    ("5 5 102;0 0 0;0 1 2;-1 0 -1;0", "[CLS] A [SEP]"),
    ("101 5 x 102;0 0 0 0;0 1 2 3;-1 0 0 -1;0", "token_ids"),
]


@pytest.mark.parametrize("line,problem", BAD_ERNIE_LINES,  # node ids: the problem, without spaces or brackets
                         ids=[re.sub(r"\W+", "_", problem).strip("_") for _, problem in BAD_ERNIE_LINES])
def test_bad_ernie_lines_are_named(tmp_path, vocab, line, problem):
    good = "101 791 102 1921 102;0 0 0 1 1;0 1 2 3 4;-1 0 -1 0 -1;1"
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_ernie_line(line, 21128, 101, 102)
    with pytest.raises(PreprocessError, match=re.escape(f"ernie.txt:3: ")):
        build(tmp_path, [good, good, line, good], "ernie", vocab, target="bert", corpus_format="ernie")
    assert not (tmp_path / "ernie.pt").exists()


@pytest.mark.slow
def test_preprocess_ernie_lines_and_validate_during_pretraining(tmp_path, vocab):
    """End to end: preprocess.py --corpus_format ernie, then pretrain.py with --dev_dataset_path reporting
    loss, perplexity and accuracy per target on the dev set every --validation_steps."""
    texts = words(vocab, 120)
    encode = segmented_encoder(build_tokenizer("bert", vocab).encode, Segmenter("space"))
    lines = [ernie_line(_cut(encode(texts[i]), 20), _cut(encode(texts[i + 1]), 20), int(i % 4 == 0))
             for i in range(0, 120, 2)]
    for name, part in (("train", lines[:48]), ("dev", lines[48:])):
        (tmp_path / f"{name}.txt").write_text("\n".join(part) + "\n", encoding="utf-8")
        run_script("preprocess.py", "--corpus_path", str(tmp_path / f"{name}.txt"), "--vocab_path", vocab,
                   "--dataset_path", str(tmp_path / f"{name}.pt"), "--target", "bert", "--corpus_format", "ernie",
                   "--seq_length", "48", "--dup_factor", "1", "--dynamic_masking")
    out = run_script("pretrain.py", "--threads", "1", "--dataset_path", str(tmp_path / "train.pt"), "--dev_dataset_path",
                     str(tmp_path / "dev.pt"), "--validation_steps", "4", "--vocab_path", vocab, "--config_path",
                     "models/bert/tiny_config.json", "--output_model_path", str(tmp_path / "m.bin"),
                     "--total_steps", "8", "--save_checkpoint_steps", "8", "--report_steps", "4", "--batch_size", "8",
                     "--learning_rate", "1e-3", "--target", "bert", "--tensorboard_dir", str(tmp_path / "tb")).stdout
    dev_lines = [line for line in out.splitlines() if "validation" in line]
    assert len(dev_lines) == 2, out
    for line in dev_lines:
        values = dict(re.findall(r"(\w+) ([0-9.]+)", line.split("|", 2)[-1]))
        assert {"loss_mlm", "ppl_mlm", "acc_mlm", "loss_sp", "acc_sp"} <= set(values), line
        assert abs(float(values["ppl_mlm"]) - np.exp(float(values["loss_mlm"]))) < 0.02 * float(values["ppl_mlm"])
    assert list((tmp_path / "tb").iterdir()), "no TensorBoard events"
