"""ERNIE 2.0's remaining objectives: the labels of each dataset kind on constructed documents, each target's loss
falling on a tiny model (real text), the continual stage schedule and the task embedding."""
from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
import torch

from conftest import run_script, shared_path
from uer.data.dataset import PretrainDataset
from uer.data.instances_ernie import RELATIONS, split_connective, tdr_labels
from uer.data.preprocessing import PreprocessError, PreprocessOptions, build_dataset
from uer.data.pretrain_loader import MixedBatches, PretrainBatches
from uer.model_builder import build_model
from uer.model_config import ModelConfig
from uer.text.tokenizers import build_tokenizer

LOSS = re.compile(r"loss_(\w+)\s+([0-9.]+)")


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on a machine other processes keep busy, two threads wait for each other (README)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def zh_vocab() -> str:
    return str(shared_path("models/google_zh_vocab.txt"))


@pytest.fixture(scope="module")
def en_vocab() -> str:
    return str(shared_path("models/google_uncased_en_vocab.txt"))


def build(tmp_path, text: str, name: str, vocab: str, target: str, seq_length: int = 64, **options) -> PretrainDataset:
    corpus = tmp_path / f"{name}.txt"
    corpus.write_text(text, encoding="utf-8")
    build_dataset(PreprocessOptions(corpus_path=str(corpus), dataset_path=str(tmp_path / f"{name}.pt"),
                                    vocab_path=vocab, target=target, seq_length=seq_length, dup_factor=1,
                                    **options), log=lambda _: None)
    return PretrainDataset.open(tmp_path / f"{name}.pt")


def segments(ds: PretrainDataset, row: int) -> tuple[list[int], list[int]]:
    """Segment A and B (without specials) of an instance built with --dynamic_masking."""
    src, n, a = ds.src[row].tolist(), int(ds.length[row]), int(ds.seg_a_len[row])
    return src[1:a - 1], src[a:n - 1]


# ------------------------------------------------------------------------------------------------- labels
def test_cap_labels_mark_capitalised_word_starts(tmp_path, en_vocab):
    ds = build(tmp_path, "The Cat sat in Paris yesterday\nnothing Capital here\n", "cap", en_vocab, "cap",
               dynamic_masking=True)
    tok = build_tokenizer("bert", en_vocab)
    words = "The Cat sat in Paris yesterday".split()
    ids, labels = [], []
    for word in words:
        piece = tok.encode(word.lower())
        ids += piece
        labels += [int(word[0].isupper())] + [-1] * (len(piece) - 1)
    n = int(ds.length[0])
    assert ds.src[0, 1:n - 1].tolist() == ids
    assert np.asarray(ds.arrays["token_label"][0, :n]).tolist() == [-1] + labels + [-1]
    assert np.asarray(ds.arrays["token_label"][0, n:]).tolist() == [-1] * (64 - n)  # padding: no label
    assert [x for x in np.asarray(ds.arrays["token_label"][1]).tolist() if x >= 0] == [0, 1, 0]
    batch = PretrainBatches(ds, batch_size=2, seed=1,
                            dynamic_masking=__import__("uer.data.masking", fromlist=["MaskingConfig"])
                            .MaskingConfig.from_header(ds.header)).batch(0)
    assert batch["cap_labels"].shape == batch["src"].shape


def test_tdr_labels_mark_tokens_repeated_in_other_sentences(tmp_path, zh_vocab):
    tokens = np.array([5, 6, 7, 6, 8, 5, 9, 9], np.int32)  # sentences [5 6 7] [6 8 5] [9 9]
    assert tdr_labels(tokens, [0, 3, 6, 8]).tolist() == [1, 1, 0, 1, 0, 1, 0, 0]
    ds = build(tmp_path, "天气好。\n好天气。\n我们走\n\n孤单一句\n", "tdr", zh_vocab, "tdr", dynamic_masking=True)
    assert len(ds) == 3  # the one-sentence document gives no instance
    labels = [[x for x in np.asarray(ds.arrays["token_label"][r]).tolist() if x >= 0] for r in range(3)]
    assert labels == [[1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0]]


def test_dr_pairs_sentences_joined_by_connectives(tmp_path, zh_vocab):
    assert split_connective("但是，我不想出去。") == (RELATIONS.index("contrast"), "我不想出去。")
    assert split_connective("However, we went out.") == (RELATIONS.index("contrast"), "we went out.")
    assert split_connective("For example the cat.") == (RELATIONS.index("example"), "the cat.")
    assert split_connective("Thus we know.") == (RELATIONS.index("result"), "we know.")
    assert split_connective("Sofa is soft.") == (-1, "Sofa is soft.")  # "so" only as a whole word
    text = "今天下雨。\n但是，我们出去了。\n然后回家。\n吃饭。\n\n因为天冷。\n所以穿衣。\n"
    ds = build(tmp_path, text, "dr", zh_vocab, "dr", dynamic_masking=True)
    tok = build_tokenizer("bert", zh_vocab)
    expected = [("今天下雨。", "我们出去了。", "contrast"), ("我们出去了。", "回家。", "temporal"),
                ("天冷。", "穿衣。", "result")]  # the document's first sentence has no sentence before it
    assert len(ds) == len(expected)
    for row, (a, b, relation) in enumerate(expected):
        assert segments(ds, row) == (tok.encode(a), tok.encode(b))
        assert int(ds.label[row]) == RELATIONS.index(relation)


def test_ir_reads_graded_query_title_pairs(tmp_path, zh_vocab):
    ds = build(tmp_path, "query\ttitle\tgrade\n北京天气\t北京今天晴\t2\n北京天气\t上海美食\t0\n", "ir", zh_vocab, "ir",
               dynamic_masking=True)
    tok = build_tokenizer("bert", zh_vocab)
    assert [segments(ds, r) for r in range(2)] == [(tok.encode("北京天气"), tok.encode("北京今天晴")),
                                                   (tok.encode("北京天气"), tok.encode("上海美食"))]
    assert ds.label[:].tolist() == [2, 0]
    with pytest.raises(PreprocessError, match=r"bad\.txt:2: .*grade 0, 1 or 2"):
        build(tmp_path, "北京天气\t北京今天晴\t2\n北京天气\t上海美食\t5\n", "bad", zh_vocab, "ir")


def test_dlm_replaces_half_the_responses_by_others(tmp_path, zh_vocab):
    pairs = [(f"问题{i}号", f"回答{i}号是") for i in range(400)]
    ds = build(tmp_path, "".join(f"{q}\t{r}\n" for q, r in pairs), "dlm", zh_vocab, "dlm", dynamic_masking=True)
    tok = build_tokenizer("bert", zh_vocab)
    responses = {tuple(tok.encode(r)): i for i, (_, r) in enumerate(pairs)}
    labels = ds.label[:].tolist()
    for row, label in enumerate(labels):
        a, b = segments(ds, row)
        assert a == tok.encode(pairs[row][0])
        assert (responses[tuple(b)] == row) == (label == 0)  # replaced: another line's response
    assert 0.42 < np.mean(labels) < 0.58
    assert ds.seg_a_len[0] < ds.length[0]  # query and response are segments 1 and 2: their role embeddings


# ------------------------------------------------------------------------------------------------- schedule
def test_stage_schedule_adds_datasets_at_their_step_and_keeps_earlier_ones():
    class Source:
        def __init__(self, name):
            self.name = name

        def batch(self, k):
            return {"src": torch.zeros(2, 3), "name": self.name, "k": k}

    mixed = MixedBatches([Source("a"), Source("b"), Source("c")], [1.0, 1.0, 2.0], seed=3, stages=[0, 100, 200],
                         micro_batches_per_step=2, task_ids=True)
    stream = mixed.iter_from(0)
    batches = [next(stream) for _ in range(1200)]
    names = [b["name"] for b in batches]
    assert set(names[:200]) == {"a"}  # steps 0-99 (2 micro-batches a step)
    assert set(names[200:400]) == {"a", "b"} and abs(names[200:400].count("a") / 200 - 0.5) < 0.12
    late = names[400:]
    assert abs(late.count("c") / len(late) - 0.5) < 0.06 and abs(late.count("a") / len(late) - 0.25) < 0.06
    assert all(int(b["task_ids"][0]) == "abc".index(b["name"]) for b in batches)
    resumed = mixed.iter_from(333)
    assert [(b["name"], b["k"]) for b in (next(resumed) for _ in range(50))] == \
        [(b["name"], b["k"]) for b in batches[333:383]]
    with pytest.raises(ValueError, match="one of them 0"):
        MixedBatches([Source("a"), Source("b")], [1.0, 1.0], stages=[5, 10])


def test_task_embedding_adds_a_vector_per_task():
    cfg = ModelConfig(vocab_size=50, hidden_size=16, emb_size=16, feedforward_size=32, heads_num=2, layers_num=1,
                      dropout=0.0, target=("mlm",), tasks_num=3)
    model = build_model(cfg).eval()
    src, seg = torch.randint(5, 50, (2, 6)), torch.ones(2, 6, dtype=torch.long)
    base = model.encoder(model.embedding(src, seg), seg)
    task = torch.tensor([2, 0])
    expected = model.encoder(model.embedding(src, seg) + model.task_embedding.weight[task][:, None], seg)
    assert torch.allclose(model.encode(src, seg, task), expected)
    assert not torch.allclose(model.encode(src, seg, task), base)
    assert "task_embedding.weight" in model.state_dict()
    assert "tasks_num" not in ModelConfig(vocab_size=50).to_json_dict()  # old configs stay as they were


# ------------------------------------------------------------------------------------------------- learning
def real_texts(tmp_path, kind: str) -> tuple[str, str]:
    """(corpus text, vocabulary) of real data for each kind."""
    if kind == "cap":  # English news sentences with their capitals (GLUE MRPC)
        with open(shared_path("datasets/glue/MRPC/train.tsv"), encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[1:97]
        return "".join(row[3] + "\n" for row in rows), str(shared_path("models/google_uncased_en_vocab.txt"))
    zh = str(shared_path("models/google_zh_vocab.txt"))
    if kind in ("tdr", "dr"):
        lines = open(shared_path("corpora/CLUECorpusSmall_bert_sampled.txt"), encoding="utf-8").read().split("\n")
        return "\n".join(lines[:300 if kind == "tdr" else 6000]) + "\n", zh
    if kind == "ir":  # Chinese STS-B pairs, similarity 0-5 as 3 grades
        rows = [line.rstrip("\n").split("\t") for line in open(shared_path("datasets/chinese_stsb/train.tsv"),
                                                               encoding="utf-8")][1:97]
        return "".join(f"{a}\t{b}\t{min(2, int(float(s) // 2))}\n" for a, b, s in rows), zh
    dialogues = json.load(open(shared_path("datasets/c3/train.json"), encoding="utf-8"))  # C3's dialogue turns
    pairs = [(d[0][i][2:], d[0][i + 1][2:]) for d in dialogues if d[0][0][:2] in ("男：", "女：")
             for i in range(len(d[0]) - 1)][:96]
    return "".join(f"{q}\t{r}\n" for q, r in pairs), zh


@pytest.mark.parametrize("kind", ["cap", "tdr", "dr", "ir", "dlm"])
def test_each_new_objective_learns_on_a_tiny_model(tmp_path, kind):
    text, vocab = real_texts(tmp_path, kind)
    ds = build(tmp_path, text, kind, vocab, kind)
    assert len(ds) >= 48, len(ds)
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=ds.vocab_size, hidden_size=64, emb_size=64, feedforward_size=128, heads_num=2,
                      layers_num=1, max_seq_length=64, dropout=0.0, target=(kind,))
    model = build_model(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    batches = PretrainBatches(ds, batch_size=16, seed=0)
    losses = []
    for g in range(60):
        batch = batches.batch_at((np.arange(16) + 16 * g) % 48)  # the same 48 instances, over and over
        out = model(batch)[kind]
        loss = out.loss_sum / max(out.count, 1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5]), (kind, losses[:5], losses[-5:])


@pytest.mark.slow
def test_continual_multi_task_pretraining_end_to_end(tmp_path, zh_vocab):
    """pretrain.py mixes mlm with the new kinds by stage, with a task embedding, and reports each objective."""
    for kind in ("tdr", "dr", "ir"):
        text, _ = real_texts(tmp_path, kind)
        (tmp_path / f"{kind}.txt").write_text(text, encoding="utf-8")
        run_script("preprocess.py", "--corpus_path", str(tmp_path / f"{kind}.txt"), "--vocab_path", zh_vocab,
                   "--dataset_path", str(tmp_path / f"{kind}.pt"), "--target", kind, "--seq_length", "64",
                   "--dup_factor", "1")
    out = run_script("pretrain.py", "--threads", "1", "--dataset_path_list", *(str(tmp_path / f"{k}.pt") for k in ("tdr", "dr", "ir")),
                     "--dataset_stages", "0", "6", "12", "--dataset_weights", "1", "1", "3", "--task_embedding", "--output_model_path",
                     str(tmp_path / "mt.bin"), "--vocab_path", zh_vocab, "--config_path", "models/bert/tiny_config.json",
                     "--total_steps", "24", "--save_checkpoint_steps", "24", "--report_steps", "6", "--batch_size", "8",
                     "--target", "mlm", "tdr", "dr", "ir").stdout
    reports = [dict(LOSS.findall(line)) for line in out.splitlines() if "steps|" in line.replace(" ", "")]
    assert len(reports) == 4, out
    assert set(reports[0]) == {"mlm", "tdr", "dr", "ir"}
    assert float(reports[0]["dr"]) == 0 and float(reports[0]["ir"]) == 0  # not started yet
    for name in ("tdr", "dr", "ir"):  # from step 12 all three are drawn: the first ones are kept
        assert max(float(r[name]) for r in reports[2:]) > 0, (name, reports)
    state = torch.load(str(tmp_path / "mt.bin-24"), weights_only=True)
    assert state["task_embedding.weight"].shape == (3, 128)


@pytest.mark.parametrize("kind,text", [("dr", "今天下雨。\n但是，我们出去了。\n\n"), ("cap", "The Cat sat in Paris\n"),
                                       ("tdr", "天气好。\n好天气。\n\n"), ("ir", "北京天气\t北京今天晴\t2\n")],
                         ids=["dr", "cap", "tdr", "ir"])  # plain node ids (the texts have tabs and newlines)
def test_word_units_survive_the_kinds_text_encoders(tmp_path, zh_vocab, kind, text):
    pytest.importorskip("jieba", reason="--whole_word_masking segments with jieba")
    ds = build(tmp_path, text, kind, zh_vocab, kind, dynamic_masking=True, whole_word_masking=True)
    n = int(ds.length[0])
    units = np.asarray(ds.arrays["unit"][0, 1:n - 1]).tolist()
    assert units[0] == 1 and (kind == "cap" or 0 in units)  # Chinese words of several characters continue
