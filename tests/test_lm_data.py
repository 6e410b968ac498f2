"""lm/bilm/cls datasets: instance builders on numbered documents, preprocess.py on real corpora, batch keys."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import run_script, shared_path
from uer.data.pretrain_loader import PretrainBatches
from uer.data.dataset import PretrainDataset
from uer.data.instances_base import DocumentBuffer, InstanceConfig
from uer.data.instances_lm import ClsInstances, LmInstances, parse_labelled_line
from uer.data.masking import MaskingConfig

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4


def masking() -> MaskingConfig:
    return MaskingConfig(vocab_size=5000, pad_id=PAD, cls_id=CLS, sep_id=SEP, mask_id=MASK, unk_id=UNK)


def numbered(lengths: list[int]) -> tuple[DocumentBuffer, list[list[int]]]:
    """Documents whose token ids say where they come from: 5 + 100 * doc + position."""
    buf, streams = DocumentBuffer(), []
    for d, n in enumerate(lengths):
        ids = [5 + 100 * d + i for i in range(n)]
        buf.add_document(ids)
        streams.append([CLS] + ids + [SEP])
    return buf, streams


def test_lm_windows_predict_every_token_once():
    buf, streams = numbered([1, 6, 7, 8, 30])
    builder = LmInstances(InstanceConfig(seq_length=8, masking=masking(), dup_factor=5), seed=1)
    blocks = list(builder.blocks(buf, final=True))
    assert len(blocks) == 1
    arrays, n = blocks[0]
    assert set(arrays) == {"src", "length", "seg_a_len"} and arrays["src"].shape == (n, 9)  # no masks, S + 1 wide
    windows = [arrays["src"][i, :arrays["length"][i]].tolist() for i in range(n)]
    assert all(2 <= len(w) <= 9 for w in windows) and np.array_equal(arrays["length"], arrays["seg_a_len"])
    # Each window predicts its tokens after the first; per document they are exactly the stream after [CLS].
    predicted = [t for w in windows for t in w[1:]]
    assert predicted == [t for s in streams for t in s[1:]]
    assert windows[0] == [CLS, 5, SEP] and windows[1][:2] == [CLS, 105]
    # Consecutive windows of one document share one token (the last input of one is the first of the next).
    long_doc = [w for w in windows if w[1] >= 405 or w[0] >= 405]
    assert all(a[-1] == b[0] for a, b in zip(long_doc, long_doc[1:]))


def test_cls_instances_and_labelled_lines():
    assert parse_labelled_line("1\t好书") == (1, "好书")
    assert parse_labelled_line("label\ttext_a") is None
    for bad in ("好书", "x\t好书", "-1\t好书"):
        with pytest.raises(ValueError, match="integer label"):
            parse_labelled_line(bad)
    buf = DocumentBuffer()
    buf.add_document([10, 11, 12], label=1)
    buf.add_document([], label=0)  # no tokens: dropped with its label
    buf.add_document(list(range(20, 40)), label=3)
    arrays, n = next(ClsInstances(InstanceConfig(seq_length=8, masking=masking()), seed=1).blocks(buf, final=True))
    assert n == 2 and arrays["label"].tolist() == [1, 3] and arrays["label"].dtype == np.int32
    assert arrays["src"][0].tolist() == [CLS, 10, 11, 12, SEP, PAD, PAD, PAD]
    assert arrays["src"][1].tolist() == [CLS, 20, 21, 22, 23, 24, 25, SEP]  # truncated to seq_length


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("lmdata")
    vocab = str(shared_path("models/google_zh_vocab.txt"))
    docs = shared_path("corpora/CLUECorpusSmall_sampled.txt").read_text(encoding="utf-8").splitlines()[:40]
    (root / "docs.txt").write_text("\n".join(docs) + "\n", encoding="utf-8")
    labelled = shared_path("corpora/book_review_cls.txt").read_text(encoding="utf-8").splitlines()[:60]
    (root / "cls.txt").write_text("label\ttext_a\n" + "\n".join(labelled) + "\n", encoding="utf-8")
    (root / "bad.txt").write_text("1\tfine\nnot-a-label\tbroken\n", encoding="utf-8")
    for target, corpus in (("lm", "docs.txt"), ("bilm", "docs.txt"), ("cls", "cls.txt")):
        run_script("preprocess.py", "--corpus_path", str(root / corpus), "--vocab_path", vocab, "--dataset_path",
                   str(root / f"{target}.pt"), "--target", target, "--seq_length", "32", "--processes_num", "2",
                   "--dynamic_masking")
    return root, vocab, docs, labelled


def test_preprocess_and_batches(datasets):
    root, vocab, docs, labelled = datasets
    lm, bilm, cls = (PretrainDataset.open(root / f"{t}.pt") for t in ("lm", "bilm", "cls"))
    assert (lm.target, bilm.target, cls.target) == ("lm", "bilm", "cls")
    assert not lm.dynamic_masking and lm.mask_offsets is None and lm.src.shape[1] == 33
    assert np.array_equal(lm.src, bilm.src)  # the two targets store the same windows
    assert len(cls) == len(labelled) and cls.label.tolist() == [int(line.split("\t")[0]) for line in labelled]

    batches = PretrainBatches(lm, batch_size=5, seed=3)
    batch = batches.batch(2)
    src, seg = batch["src"], batch["seg"]
    assert src.shape[1] <= 32 and seg.shape == src.shape
    window = torch.from_numpy(lm.src[batches.indices(batches.positions(2))].astype(np.int64))
    flat = src.reshape(-1)
    rows, cols = batch["lm_positions"] // src.shape[1], batch["lm_positions"] % src.shape[1]
    assert torch.equal(flat[batch["lm_positions"]], window[rows, cols])  # inputs are the window's tokens ...
    assert torch.equal(batch["lm_labels"], window[rows, cols + 1])  # ... and the labels the next ones
    assert len(batch["lm_positions"]) == int(seg.sum()) == batch["tokens_num"]
    rows, cols = batch["lm_backward_positions"] // src.shape[1], batch["lm_backward_positions"] % src.shape[1]
    assert bool((cols >= 1).all()) and torch.equal(batch["lm_backward_labels"], window[rows, cols - 1])
    assert int((seg[rows, cols] == 1).sum()) == len(rows)

    cls_batch = PretrainBatches(cls, batch_size=4, seed=3).batch(0)
    assert set(cls_batch) == {"src", "seg", "cls_labels", "tokens_num"}
    assert cls_batch["src"][:, 0].tolist() == [101] * 4 and cls_batch["cls_labels"].dtype == torch.int64

    with pytest.raises(AssertionError, match="integer label"):
        run_script("preprocess.py", "--corpus_path", str(root / "bad.txt"), "--vocab_path", vocab,
                   "--dataset_path", str(root / "bad.pt"), "--target", "cls")
