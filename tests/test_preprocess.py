"""Instance builders (bert, albert, mlm) on synthetic numbered corpora, and preprocess.py end to end on
a real corpus slice (targets, masking modes, several processes, errors, determinism)."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from conftest import run_script, shared_path
from uer.data.dataset import PretrainDataset
from uer.data.instances_base import DocumentBuffer, InstanceConfig
from uer.data.instances_mlm import MlmInstances
from uer.data.instances_pairs import AlbertInstances, BertInstances, _cut_lengths
from uer.data.pretrain_instances import str2instances
from uer.data.masking import MaskingConfig
from uer.data.preprocessing import split_corpus

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
VOCAB = 60000
DOC_STRIDE = 500  # token id = 5 + doc * DOC_STRIDE + position in the document: order and origin are visible


def masking(**kw) -> MaskingConfig:
    return MaskingConfig(vocab_size=VOCAB, pad_id=PAD, cls_id=CLS, sep_id=SEP, mask_id=MASK, unk_id=UNK, **kw)


def numbered_docs(n_docs: int, seed: int = 0, sentences: tuple[int, int] = (4, 25),
                  sentence_len: tuple[int, int] = (3, 20)) -> list[list[list[int]]]:
    rng = random.Random(seed)
    docs = []
    for d in range(n_docs):
        pos, doc = 0, []
        for _ in range(rng.randint(*sentences)):
            n = rng.randint(*sentence_len)
            if pos + n > DOC_STRIDE:
                break
            doc.append(list(range(5 + d * DOC_STRIDE + pos, 5 + d * DOC_STRIDE + pos + n)))
            pos += n
        docs.append(doc)
    return docs


def fill(docs: list[list[list[int]]]) -> DocumentBuffer:
    buf = DocumentBuffer()
    for doc in docs:
        for sentence in doc:
            buf.add_sentence(sentence)
        buf.end_document()
    return buf


def build(builder_cls: type, docs: list, *, final: bool = True, **kw) -> list[dict]:
    """Run a builder over one buffer; returns instances as dicts of plain values (unmasked)."""
    cfg_kw = {"seq_length": 64, "dup_factor": 1, "short_seq_prob": 0.0, "dynamic_masking": True, **kw}
    builder = builder_cls(InstanceConfig(masking=masking(), **cfg_kw), seed=3)
    return blocks_to_instances(builder.blocks(fill(docs), final=final))


def blocks_to_instances(blocks) -> list[dict]:
    out = []
    for arrays, n in blocks:
        for i in range(n):
            length, a = int(arrays["length"][i]), int(arrays["seg_a_len"][i])
            src = arrays["src"][i].tolist()
            assert all(t == PAD for t in src[length:])
            inst = {"src": src[:length], "A": src[1:a - 1], "B": src[a:length - 1] if a < length else []}
            if "label" in arrays:
                inst["label"] = int(arrays["label"][i])
            out.append(inst)
    return out


def doc_of(token: int) -> int:
    return (token - 5) // DOC_STRIDE


def is_run(tokens: list[int]) -> bool:
    return all(b == a + 1 for a, b in zip(tokens, tokens[1:]))


def test_cut_lengths_matches_one_token_at_a_time() -> None:
    rng = random.Random(0)
    for _ in range(2000):
        la, lb, m = rng.randint(1, 80), rng.randint(1, 80), rng.randint(2, 100)
        a, b = la, lb
        while a + b > m:
            if a > b:
                a -= 1
            else:
                b -= 1
        assert _cut_lengths(la, lb, m) == (la - a, lb - b)


def test_bert_instances_are_well_formed_with_half_random_next() -> None:
    docs = numbered_docs(60)
    insts = build(BertInstances, docs, seq_length=64)
    assert len(insts) > 200
    labels = []
    for inst in insts:
        src, a, b = inst["src"], inst["A"], inst["B"]
        assert len(src) <= 64 and src[0] == CLS and src[len(a) + 1] == SEP and src[-1] == SEP
        assert len(src) == len(a) + len(b) + 3 and a and b
        assert not {CLS, SEP, PAD, MASK} & set(a + b)
        assert is_run(a) and is_run(b)  # each segment is contiguous text (truncation only trims ends)
        assert len({doc_of(t) for t in a}) == 1 and len({doc_of(t) for t in b}) == 1
        if inst["label"] == 0:  # B is the continuation of A
            assert doc_of(b[0]) == doc_of(a[0]) and b[0] > a[-1]
        else:  # B comes from another document
            assert doc_of(b[0]) != doc_of(a[0])
        labels.append(inst["label"])
    assert 0.42 < np.mean(labels) < 0.62
    # Every document starts some instance's segment A (nothing lost).
    assert {doc_of(i["A"][0]) for i in insts} == set(range(60))


def test_short_seq_prob_shortens_instances() -> None:
    docs = numbered_docs(200, sentences=(20, 40), sentence_len=(5, 12))
    mean_len = {}
    for prob in (0.0, 0.1, 1.0):
        lengths = [len(i["src"]) for i in build(BertInstances, docs, seq_length=128, short_seq_prob=prob)]
        assert max(lengths) <= 128
        mean_len[prob] = np.mean(lengths)
    assert mean_len[0.0] > 100  # full-length targets
    assert mean_len[1.0] < 0.5 * mean_len[0.0]  # every target length random in [2, 125]
    assert mean_len[1.0] < mean_len[0.1] < mean_len[0.0] - 5


def test_bert_single_document_buffer_draws_b_from_itself() -> None:
    insts = build(BertInstances, numbered_docs(1, sentences=(30, 30)), seq_length=32)
    assert {doc_of(t) for i in insts for t in i["A"] + i["B"]} == {0}


def test_albert_label_is_one_exactly_when_swapped() -> None:
    docs = numbered_docs(60) + [[[5 + 60 * DOC_STRIDE + k for k in range(9)]]]  # a one-sentence document
    insts = build(AlbertInstances, docs, seq_length=64)
    labels = []
    for inst in insts:
        a, b = inst["A"], inst["B"]
        assert a and b and is_run(a) and is_run(b) and len(inst["src"]) <= 64
        assert doc_of(a[0]) == doc_of(b[0])  # never a random document
        swapped = a[0] > b[-1]
        assert inst["label"] == int(swapped)
        labels.append(inst["label"])
    assert 0.4 < np.mean(labels) < 0.6
    assert any(doc_of(i["A"][0]) == 60 for i in insts)  # the one-sentence document was split, not dropped


def test_mlm_without_full_sentences_chunks_each_document() -> None:
    docs = [[list(range(5 + d * DOC_STRIDE, 5 + d * DOC_STRIDE + n))] for d, n in enumerate([3, 62, 63, 130, 1])]
    insts = build(MlmInstances, docs, seq_length=64)
    # ceil(len / 62) chunks per document: 1 + 1 + 2 + 3 + 1
    assert len(insts) == 8
    assert [len(i["A"]) for i in insts] == [3, 62, 62, 1, 62, 62, 6, 1]
    for inst in insts:
        assert inst["src"][0] == CLS and inst["src"][-1] == SEP and inst["B"] == []
        assert len({doc_of(t) for t in inst["A"]}) == 1 and is_run(inst["A"])


def test_mlm_full_sentences_packs_across_documents() -> None:
    rng = random.Random(1)
    docs = [[list(range(5 + d * DOC_STRIDE, 5 + d * DOC_STRIDE + rng.randint(1, 90)))] for d in range(50)]
    builder = MlmInstances(InstanceConfig(seq_length=64, masking=masking(), dup_factor=1, full_sentences=True,
                                          dynamic_masking=True), seed=0)
    # Two buffers: the tail of the first carries over into the second.
    insts = blocks_to_instances(builder.blocks(fill(docs[:20]), final=False))
    insts += blocks_to_instances(builder.blocks(fill(docs[20:]), final=True))
    assert all(len(i["src"]) == 64 for i in insts[:-1]) and len(insts[-1]["src"]) <= 64
    body = [t for i in insts for t in i["A"]]
    assert [t for t in body if t != SEP] == [t for d in docs for t in d[0]]  # every token once, in order
    assert sum(t == SEP for t in body) >= 40  # documents separated by [SEP] (minus those cut at an edge)
    assert all(i["A"][0] != SEP for i in insts)
    assert sum(len({doc_of(t) for t in i["A"] if t != SEP}) > 1 for i in insts) > 10


def test_static_masking_and_dup_factor() -> None:
    docs = [[list(range(5 + d * DOC_STRIDE, 5 + d * DOC_STRIDE + 100))] for d in range(10)]
    builder = MlmInstances(InstanceConfig(seq_length=64, masking=masking(), dup_factor=3), seed=0)
    blocks = list(builder.blocks(fill(docs), final=True))
    arrays = blocks[0][0]
    n = blocks[0][1]
    assert n == 3 * 20 and "mask_pos" in arrays
    offsets = np.concatenate([[0], np.cumsum(arrays["mask_count"], dtype=np.int64)])
    copies = []
    for i in range(n):
        src = arrays["src"][i].astype(int)
        pos = arrays["mask_pos"][offsets[i]:offsets[i + 1]].astype(int)
        lab = arrays["mask_label"][offsets[i]:offsets[i + 1]].astype(int)
        restored = src.copy()
        restored[pos] = lab
        inner = restored[1:int(arrays["length"][i]) - 1]
        assert is_run(inner.tolist())  # restoring the labels gives back the original text
        assert len(pos) == max(1, int(np.floor(0.15 * len(inner) + 0.5)))
        copies.append((inner[0], tuple(pos)))
    # The three copies of a chunk carry different masks.
    by_chunk: dict[int, set] = {}
    for first, pos in copies:
        by_chunk.setdefault(first, set()).add(pos)
    assert all(len(v) == 3 for v in by_chunk.values())


def test_registry_and_split_points(tmp_path: Path) -> None:
    assert {"bert", "albert", "mlm"} <= set(str2instances)
    corpus = tmp_path / "c.txt"
    docs = ["\n".join(f"doc{d} sentence{s}" for s in range(d % 5 + 1)) for d in range(40)]
    corpus.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    data = corpus.read_bytes()
    for parts in (1, 2, 3, 7):
        ranges = split_corpus(corpus, parts, documents=True)
        assert ranges[0][0] == 0 and ranges[-1][1] == len(data)
        assert all(ranges[i][1] == ranges[i + 1][0] for i in range(parts - 1))
        for start, _ in ranges[1:]:  # every cut is a document start: right after a blank line
            assert start == len(data) or data[start - 2:start] == b"\n\n"
        for start, _ in split_corpus(corpus, parts, documents=False)[1:]:
            assert data[start - 1:start] == b"\n"


# ------------------------------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = shared_path("corpora/CLUECorpusSmall_bert_sampled.txt")
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    with open(src, encoding="utf-8") as f:
        lines = [next(f) for _ in range(500)]
    path.write_text("".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def vocab() -> Path:
    return shared_path("models/google_zh_vocab.txt")


def script_module():
    """preprocess.py imported as a module (its main() runs in this process: no interpreter start per run)."""
    from uer.cli import preprocess

    return preprocess


def preprocess(corpus: Path, vocab: Path, out: Path, *args: str) -> PretrainDataset:
    """Run preprocess.py's main() with a small seq_length; --processes_num 2 spawns real workers."""
    rc = script_module().main(["--corpus_path", str(corpus), "--vocab_path", str(vocab), "--dataset_path", str(out),
                      "--seq_length", "64", *args])
    assert rc == 0
    return PretrainDataset.open(out)


@pytest.mark.parametrize("target,flags", [
    ("bert", []),
    ("albert", []),
    ("mlm", []),
    ("mlm", ["--dynamic_masking"]),
    ("mlm", ["--span_masking", "--span_geo_prob", "0.3", "--span_max_length", "5"]),
    ("mlm", ["--full_sentences", "--dynamic_masking"]),
])
def test_preprocess_end_to_end(corpus: Path, vocab: Path, tmp_path: Path, target: str, flags: list[str]) -> None:
    ds = preprocess(corpus, vocab, tmp_path / "dataset.pt", "--target", target, "--dup_factor", "2", *flags)
    dynamic = "--dynamic_masking" in flags
    assert ds.target == target and ds.seq_length == 64 and ds.vocab_size == 21128 and ds.dynamic_masking == dynamic
    assert len(ds) > 50 and ds.src.dtype == np.uint16
    length = np.asarray(ds.length)
    assert length.max() <= 64 and (np.asarray(ds.src[:, 0]) == 101).all()
    assert (np.asarray(ds.src)[np.arange(len(ds)), length - 1] == 102).all()
    assert (ds.label is not None) == (target in ("bert", "albert"))
    if target == "albert":
        assert 0.35 < np.asarray(ds.label).mean() < 0.65
    if target == "bert":  # long sentences at seq_length 64: many one-sentence chunks, always random-next
        assert 0.4 < np.asarray(ds.label).mean() < 0.85
    if "--full_sentences" in flags:
        assert (length[:-1] == 64).all()
    if dynamic:
        assert ds.mask_offsets is None and ds.header["dup_factor"] == 1
    else:
        counts = np.diff(np.asarray(ds.mask_offsets))
        assert (counts >= 1).all() and abs(counts.sum() / (length - 2 - (ds.label is not None)).sum() - 0.15) < 0.01
        assert (np.asarray(ds.src) == 103).sum() > 0.7 * counts.sum()
    if "--span_masking" in flags:
        pos = np.asarray(ds.mask_pos, dtype=int)
        rows = np.repeat(np.arange(len(ds)), counts)
        adjacent = (np.diff(pos) == 1) & (np.diff(rows) == 0)
        assert adjacent.mean() > 0.5  # spans: most masked tokens have a masked neighbour


def test_processes_two_matches_one(corpus: Path, vocab: Path, tmp_path: Path) -> None:
    """mlm with dynamic masking is deterministic text chunking: 2 workers give the very same dataset.
    albert without short sequences has a deterministic instance count; bert's depends on random-next
    choices, so only the count's ballpark is checkable there."""
    common = ["--dup_factor", "1", "--short_seq_prob", "0"]
    one = preprocess(corpus, vocab, tmp_path / "m1.pt", "--target", "mlm", "--dynamic_masking", *common)
    run_script("preprocess.py", "--corpus_path", str(corpus), "--vocab_path", str(vocab), "--dataset_path",
               str(tmp_path / "m2.pt"), "--seq_length", "64", "--target", "mlm", "--dynamic_masking",
               "--processes_num", "2", *common)
    two = PretrainDataset.open(tmp_path / "m2.pt")
    assert two.header["processes_num"] == 2
    assert np.array_equal(np.asarray(one.src), np.asarray(two.src))
    a1 = preprocess(corpus, vocab, tmp_path / "a1.pt", "--target", "albert", "--dynamic_masking", *common)
    a2 = preprocess(corpus, vocab, tmp_path / "a2.pt", "--target", "albert", "--dynamic_masking",
                    "--processes_num", "2", *common)
    assert len(a1) == len(a2)
    assert np.asarray(a1.length).sum() == np.asarray(a2.length).sum()
    b1 = preprocess(corpus, vocab, tmp_path / "b1.pt", "--target", "bert", *common)
    b2 = preprocess(corpus, vocab, tmp_path / "b2.pt", "--target", "bert", "--processes_num", "2", *common)
    assert abs(len(b1) - len(b2)) <= 0.1 * len(b1)
    assert not list(tmp_path.glob(".*shard*"))


def test_same_seed_same_dataset(corpus: Path, vocab: Path, tmp_path: Path) -> None:
    a = preprocess(corpus, vocab, tmp_path / "a.pt", "--target", "bert", "--seed", "5")
    b = preprocess(corpus, vocab, tmp_path / "b.pt", "--target", "bert", "--seed", "5")
    c = preprocess(corpus, vocab, tmp_path / "c.pt", "--target", "bert", "--seed", "6")
    for name in a.arrays:
        assert np.array_equal(a.arrays[name], b.arrays[name]), name
    assert len(a) != len(c) or not np.array_equal(np.asarray(a.src), np.asarray(c.src))


def test_cli_errors(corpus: Path, vocab: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    script = script_module()

    def run(*args: str) -> tuple[int, str]:
        try:
            rc = script.main(list(args))
        except SystemExit as e:
            rc = e.code
        return rc, capsys.readouterr().err

    out = str(tmp_path / "d.pt")
    rc, err = run("--corpus_path", str(tmp_path / "nope.txt"), "--vocab_path", str(vocab), "--dataset_path", out)
    assert rc == 2 and "nope.txt" in err and "not found" in err
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    rc, err = run("--corpus_path", str(empty), "--vocab_path", str(vocab), "--dataset_path", out)
    assert rc == 2 and "empty" in err
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n   \n")
    rc, err = run("--corpus_path", str(blank), "--vocab_path", str(vocab), "--dataset_path", out)
    assert rc == 2 and "no instances" in err
    rc, err = run("--corpus_path", str(corpus), "--vocab_path", str(tmp_path / "v.txt"), "--dataset_path", out)
    assert rc == 2 and "v.txt" in err
    rc, err = run("--corpus_path", str(corpus), "--dataset_path", out)
    assert rc == 2 and "--vocab_path" in err
    rc, err = run("--corpus_path", str(corpus), "--vocab_path", str(vocab), "--dataset_path", out,
                  "--target", "bogus")
    assert rc == 2 and "invalid choice: 'bogus'" in err
    assert not Path(out).exists()


def test_cli_prints_where_the_dataset_went(corpus: Path, vocab: Path, tmp_path: Path) -> None:
    out = tmp_path / "dataset.pt"
    proc = run_script("preprocess.py", "--corpus_path", str(corpus), "--vocab_path", str(vocab),
                      "--dataset_path", str(out), "--target", "albert", "--dup_factor", "1")
    n = len(PretrainDataset.open(out))
    assert str(out) in proc.stdout and f"Wrote {n} instances" in proc.stdout
