"""Vocabulary rules and tokenizers: parity with transformers' BERT tokenizers on real corpora, worked examples."""
from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest

from conftest import shared_path
from uer.text.tokenizers import (BasicTokenizer, BertTokenizer, CharTokenizer, SpaceTokenizer, WordpieceTokenizer,
                                  build_tokenizer, str2tokenizer)
from uer.text.vocab import Vocab, VocabError

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# Hand-made lines: English, accents, punctuation, control characters, odd whitespace, long words.
HAND_LINES = [
    "Hello, World! It's 3.14 o'clock; (really?) [yes] {no} <maybe> ~tilde~ `back` ^caret^ $5 @user #tag %50 "
    "&amp *star* _under_ |pipe| \\slash/",
    "Héllo naïve café Ångström résumé CRÈME BRÛLÉE façade Øresund Straße ŁÓDŹ",
    "unaffable unbelievably antidisestablishmentarianism supercalifragilisticexpialidocious",
    "tab\there\nnewline\rcarriage\x00nul\x07bell\x1bescape\ufffdreplacement\u200bzwsp\ufeffbom\u200djoiner"
    "\u00adsofthyphen",
    "non\u00a0breaking\u3000ideographic\u2003emspace\u2028linesep\u2029parasep\x85nel\x0bvt\x0cff",
    "İstanbul ǅemal ﬁne ﬀ Ｆｕｌｌｗｉｄｔｈ ＡＢＣ ａｂｃ １２３",
    "混合English和中文123，４５６！“引号”《书名》——破折号……省略号",
    "a" * 150 + " " + "b" * 100 + " " + "c" * 101 + " x" + "y" * 99,
    "e\u0301 e\u0301\u0327 \u0301alone x\u0300\u0301y \u0300\u0301",
    "emoji 😀👍🏽 ♥ ★ ✓ → ∞ ≠ ± × ÷ € £ ¥ ©®™ § ¶ • ° ′ ″",
    "한국어 텍스트 日本語のテキスト カタカナ ｶﾀｶﾅ 𠀀𪜀 \U0002b740 \U0002f800 \uf900\ufa0b 㐀",
    "don't can't won't it’s “smart quotes” ‘single’ «guillemets» ¿qué? ¡sí! \u037e\u0387\u1fef\u2329\u232a",
    "http://www.example.com/path?query=1&b=2 user@example.com 192.168.0.1 1,000,000 3.5e-10",
    "",
    "   \t\n",
]
# Python's str.lower() (original BERT, UER-py, transformers' Python tokenizer) gives a word-final
# sigma "ς"; the Rust-backed transformers tokenizer lower-cases char by char ("σ"). We follow BERT.
FINAL_SIGMA_LINE = "ΟΔΟΣ ΟΔΟΣ. Σίσυφος ΣΊΣΥΦΟΣ"


# ---------------------------------------------------------------------------------------------- helpers
def _corpus_lines() -> list[str]:
    """≥3000 real lines: every 10th line of the CLUECorpusSmall sample plus every 8th of chnsenticorp."""
    lines = []
    for name, step in (("corpora/CLUECorpusSmall_bert_sampled.txt", 10), ("corpora/chnsenticorp.txt", 8)):
        with open(shared_path(name), encoding="utf-8") as f:
            lines.extend(line.rstrip("\n") for line in f.readlines()[::step])
    assert len(lines) >= 3000
    return lines


def _reference_tokenizers(vocab_file: Path, folder: Path, do_lower_case: bool = True) -> dict:
    """transformers' BERT tokenizers (Python and Rust-backed) reading ``vocab_file``.

    transformers 5.x ``BertTokenizer(vocab_file=...)`` silently builds a 5-token vocabulary, so the
    file is copied as vocab.txt and loaded with ``from_pretrained``; the size is then asserted.
    """
    transformers = pytest.importorskip("transformers")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(vocab_file, folder / "vocab.txt")
    with open(vocab_file, encoding="utf-8") as f:
        n_lines = sum(1 for _ in f)
    if hasattr(transformers, "BertTokenizerLegacy"):  # transformers 5.x
        classes = {"python": transformers.BertTokenizerLegacy, "rust": transformers.BertTokenizer}
    else:  # transformers 4.x
        classes = {"python": transformers.BertTokenizer, "rust": transformers.BertTokenizerFast}
    refs = {}
    for kind, cls in classes.items():
        ref = cls.from_pretrained(str(folder), do_lower_case=do_lower_case)
        assert len(ref) == ref.vocab_size == n_lines, f"{cls.__name__} loaded {len(ref)} tokens, file has {n_lines}"
        assert ref.is_fast == (kind == "rust")
        refs[kind] = ref
    return refs


def _ref_ids(ref, text: str) -> list[int]:
    return ref.convert_tokens_to_ids(ref.tokenize(text))


def _assert_parity(ours: BertTokenizer, ref, lines: list[str]) -> None:
    mismatches = []
    for line in lines:
        ids = ours.encode(line)
        if ids != _ref_ids(ref, line):
            mismatches.append((line[:80], ours.tokenize(line)[:20], ref.tokenize(line)[:20]))
    assert not mismatches, f"{len(mismatches)} of {len(lines)} lines differ from {type(ref).__name__}: {mismatches[:3]}"


def _write_vocab(path: Path, tokens: list[str]) -> Path:
    path.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpus_lines() -> list[str]:
    return _corpus_lines()


@pytest.fixture(scope="module")
def tiny_vocab_path(tmp_path_factory) -> Path:
    tokens = SPECIALS + ["un", "##aff", "##able", "want", "##ed", "wa", "runn", "##ing", ",", "##s", "a", "b",
                         "中", "国", "hello", "world", "x"]
    return _write_vocab(tmp_path_factory.mktemp("tiny") / "vocab.txt", tokens)


# ---------------------------------------------------------------------------------------------- parity
def test_bert_parity_google_zh_vocab(corpus_lines, tmp_path):
    vocab_file = shared_path("models/google_zh_vocab.txt")
    refs = _reference_tokenizers(vocab_file, tmp_path / "zh")
    ours = BertTokenizer(vocab_path=vocab_file)
    assert len(ours.vocab) == len(refs["python"])
    lines = corpus_lines + HAND_LINES
    for ref in refs.values():
        _assert_parity(ours, ref, lines)
    _assert_parity(ours, refs["python"], [FINAL_SIGMA_LINE])


def test_bert_parity_google_uncased_en_vocab(corpus_lines, tmp_path):
    vocab_file = shared_path("models/google_uncased_en_vocab.txt")
    refs = _reference_tokenizers(vocab_file, tmp_path / "en")
    ours = build_tokenizer("bert", vocab_path=vocab_file)
    lines = corpus_lines + HAND_LINES
    for ref in refs.values():
        _assert_parity(ours, ref, lines)
    _assert_parity(ours, refs["python"], [FINAL_SIGMA_LINE])
    # The lines really exercise WordPiece on English, digits and [UNK].
    tokens = {t for line in HAND_LINES for t in ours.tokenize(line)}
    assert {"[UNK]", "##ism", "hello", "cafe", "una", "##ffa"} <= tokens


def test_bert_parity_cased_without_lower_case(corpus_lines, tmp_path):
    """do_lower_case=False matches the Rust tokenizer (transformers' Python one adds an NFC step BERT lacks)."""
    vocab_file = shared_path("models/google_cased_en_vocab.txt")
    refs = _reference_tokenizers(vocab_file, tmp_path / "cased", do_lower_case=False)
    ours = build_tokenizer("bert", vocab_path=vocab_file, do_lower_case=False)
    assert ours.tokenize("Hello WORLD") == refs["rust"].tokenize("Hello WORLD") == ["Hello", "W", "##OR", "##LD"]
    _assert_parity(ours, refs["rust"], corpus_lines[::3] + HAND_LINES + [FINAL_SIGMA_LINE])


def test_encode_equals_ids_of_tokenize(corpus_lines):
    tok = BertTokenizer(vocab_path=shared_path("models/google_zh_vocab.txt"))
    for line in corpus_lines[:500] + HAND_LINES:
        tokens = tok.tokenize(line)
        assert tok.encode(line) == tok.convert_tokens_to_ids(tokens)
    ids = tok.encode("我爱北京天安门")
    assert tok.convert_ids_to_tokens(ids) == list("我爱北京天安门")


# ---------------------------------------------------------------------------------------------- worked examples
def test_wordpiece_worked_examples(tiny_vocab_path):
    vocab = Vocab.from_file(tiny_vocab_path)
    wp = WordpieceTokenizer(vocab, unk_token="[UNK]", max_input_chars_per_word=100)
    assert wp.tokenize("unaffable") == ["un", "##aff", "##able"]
    assert wp.tokenize("wanted runnings") == ["want", "##ed", "runn", "##ing", "##s"]
    assert wp.tokenize("unknownword") == ["[UNK]"]  # no piece covers "unk..." after "un"
    assert wp.tokenize("") == []
    long_word = "a" * 101
    assert WordpieceTokenizer(vocab.w2i | {"##a": 99}, "[UNK]").tokenize("a" * 100) == ["a"] + ["##a"] * 99
    assert WordpieceTokenizer(vocab.w2i | {"##a": 99}, "[UNK]").tokenize(long_word) == ["[UNK]"]
    assert WordpieceTokenizer({"a", "##b"}, "<oov>", max_input_chars_per_word=3).tokenize("abb abbb c") == \
        ["a", "##b", "##b", "<oov>", "<oov>"]


def test_basic_tokenizer_worked_examples():
    basic = BasicTokenizer(do_lower_case=True)
    assert basic.tokenize(" \tHeLLo!how  \n Are yoU?  ") == ["hello", "!", "how", "are", "you", "?"]
    assert basic.tokenize("Héllo Ångström naïve") == ["hello", "angstrom", "naive"]
    assert basic.tokenize("中国人民ab12，ok。") == ["中", "国", "人", "民", "ab12", "，", "ok", "。"]
    assert basic.tokenize("a\x00b\ufffdc\u200bd\x07e\u3000f\u00a0g") == ["abcde", "f", "g"]
    assert basic.tokenize("don't 1,000.5 e-mail") == ["don", "'", "t", "1", ",", "000", ".", "5", "e", "-", "mail"]
    assert basic.tokenize("$^`~|") == ["$", "^", "`", "~", "|"]  # ASCII symbols count as punctuation
    assert basic.tokenize("ΟΔΟΣ") == ["οδος"]  # word-final sigma, like Python's str.lower()
    cased = BasicTokenizer(do_lower_case=False)
    assert cased.tokenize("HeLLo Héllo!") == ["HeLLo", "Héllo", "!"]
    assert basic.tokenize("") == [] and basic.tokenize(" \n ") == []


def test_bert_tokenizer_on_tiny_vocab(tiny_vocab_path):
    tok = BertTokenizer(vocab_path=tiny_vocab_path)
    assert tok.tokenize("UNaffable, 中国! Hello") == ["un", "##aff", "##able", ",", "中", "国", "[UNK]", "hello"]
    assert tok.encode("UNaffable, 中国! Hello") == tok.convert_tokens_to_ids(tok.tokenize("UNaffable, 中国! Hello"))
    assert tok.encode("x" * 101) == [tok.vocab.unk_id]


def test_char_and_space_tokenizers(tiny_vocab_path):
    char = CharTokenizer(vocab_path=tiny_vocab_path)
    assert char.tokenize(" 中 国人\tx ") == ["中", "国", "[UNK]", "x"]  # whitespace dropped, OOV -> [UNK]
    assert char.encode(" 中 国人\tx ") == char.vocab.to_ids(["中", "国", "[UNK]", "x"])
    assert char.tokenize("X") == ["[UNK]"]  # no lower-casing (UER-py)
    assert char.tokenize("") == [] and char.encode("  ") == []
    space = SpaceTokenizer(vocab_path=tiny_vocab_path)
    assert space.tokenize(" hello world 中国 \n") == ["hello", "world", "[UNK]"]
    assert space.tokenize("hello  world") == ["hello", "[UNK]", "world"]  # split(" "), like UER-py
    assert space.encode("hello world") == [space.vocab.get("hello"), space.vocab.get("world")]
    assert space.tokenize("   ") == [] and space.encode("") == []


def test_char_tokenizer_speed_path_matches_on_corpus(corpus_lines):
    char = build_tokenizer("char", vocab_path=shared_path("models/google_zh_vocab.txt"))
    for line in corpus_lines[:300]:
        assert char.encode(line) == char.convert_tokens_to_ids(char.tokenize(line))


# ---------------------------------------------------------------------------------------------- vocabulary
def test_vocab_loads_google_zh_exactly():
    path = shared_path("models/google_zh_vocab.txt")
    vocab = Vocab.from_file(path)
    with open(path, encoding="utf-8") as f:
        lines = [line[:-1] for line in f]
    assert len(vocab) == len(lines) == 21128 and vocab.i2w == lines
    assert (vocab.pad_id, vocab.unk_id, vocab.cls_id, vocab.sep_id, vocab.mask_id) == (0, 100, 101, 102, 103)
    assert vocab.unk_token == "[UNK]" and vocab.path == str(path)
    # Tokens ending in non-newline whitespace are kept verbatim (as transformers does).
    assert vocab.i2w[343] == "\u2028" and vocab.i2w[13502] == "##\u2028"
    assert vocab.get("中") == vocab.w2i["中"] and vocab.get("not-a-token") == 100
    assert "中" in vocab and "not-a-token" not in vocab
    assert vocab.to_ids(["[CLS]", "中", "???"]) == [101, vocab.w2i["中"], 100]


@pytest.mark.parametrize("tokens, message", [
    (["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"], "[PAD] must have id 0, found at line 2"),
    (["[UNK]", "[CLS]", "[SEP]", "[MASK]"], "[PAD] is missing"),
    (["[PAD]", "[UNK]", "[CLS]", "[SEP]"], "[MASK] missing"),
    (["[PAD]", "[UNK]", "[MASK]"], "[CLS], [SEP] missing"),
    (["[PAD]", "[CLS]", "[SEP]", "[MASK]", "<unk>"], "unknown token [UNK] is missing"),
    (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[PAD]"], "[PAD] must have id 0, found at line 6"),
    ([], "[PAD] is missing"),
])
def test_vocab_rule_violations_name_the_file(tmp_path, tokens, message):
    path = _write_vocab(tmp_path / "bad_vocab.txt", tokens)
    with pytest.raises(VocabError) as info:
        Vocab.from_file(path)
    assert str(path) in str(info.value) and message in str(info.value)
    with pytest.raises(VocabError):
        build_tokenizer("bert", vocab_path=path)
    assert len(Vocab.from_file(path, validate=False)) == len(tokens)


def test_vocab_duplicates_keep_line_ids_like_transformers(tmp_path):
    path = _write_vocab(tmp_path / "dup.txt", SPECIALS + ["ab", "c", "ab"])
    vocab = Vocab.from_file(path)
    assert len(vocab) == 8 and vocab.i2w[5] == vocab.i2w[7] == "ab"
    assert vocab.get("ab") == 7  # last occurrence, as transformers' load_vocab and UER-py's Vocab.load


def test_vocab_file_with_crlf_and_from_tokens(tmp_path):
    path = tmp_path / "crlf.txt"
    path.write_bytes("\r\n".join(SPECIALS + ["a b", "z"]).encode("utf-8"))  # no trailing newline either
    vocab = Vocab.from_file(path)
    assert vocab.i2w == SPECIALS + ["a b", "z"]
    assert Vocab.from_tokens(SPECIALS).w2i == {t: i for i, t in enumerate(SPECIALS)}
    with pytest.raises(VocabError, match="in memory"):
        Vocab.from_tokens(["[CLS]"])


def test_vocab_save_roundtrip_is_atomic(tmp_path):
    src = Vocab.from_file(shared_path("models/google_zh_vocab.txt"))
    out = tmp_path / "saved_vocab.txt"
    out.write_text("old content\n", encoding="utf-8")
    src.save(out)
    assert Vocab.from_file(out).i2w == src.i2w
    assert sorted(os.listdir(tmp_path)) == ["saved_vocab.txt"]  # no temp file left behind
    with pytest.raises(VocabError, match="line break"):
        Vocab.from_tokens(SPECIALS + ["a\nb"]).save(tmp_path / "bad.txt")
    assert not (tmp_path / "bad.txt").exists() and sorted(os.listdir(tmp_path)) == ["saved_vocab.txt"]
    assert pickle.loads(pickle.dumps(src)).w2i == src.w2i


def test_missing_files_and_bad_arguments_are_named(tmp_path):
    missing = tmp_path / "nope" / "vocab.txt"
    with pytest.raises(FileNotFoundError, match="nope"):
        Vocab.from_file(missing)
    with pytest.raises(FileNotFoundError, match="nope"):
        build_tokenizer("bert", vocab_path=missing)
    with pytest.raises(FileNotFoundError, match="missing.model"):
        build_tokenizer("char", spm_model_path=tmp_path / "missing.model")
    with pytest.raises(ValueError, match="vocab_path"):
        build_tokenizer("bert")
    with pytest.raises(ValueError, match="unknown tokenizer"):
        build_tokenizer("wordpiece", vocab_path=missing)
    assert set(str2tokenizer) == {"bert", "char", "space", "jieba_wordpiece", "bpe", "xlmroberta"}


# ---------------------------------------------------------------------------------------------- sentencepiece
def test_spm_vocab_and_tokenizer_roundtrip():
    sp_path = shared_path("models/cluecorpussmall_spm.model")
    spm = pytest.importorskip("sentencepiece")
    sp = spm.SentencePieceProcessor()
    sp.Load(str(sp_path))
    vocab = Vocab.from_spm(sp_path)
    assert len(vocab) == sp.GetPieceSize()
    assert vocab.i2w[:5] == SPECIALS and vocab.unk_token == "[UNK]" == sp.IdToPiece(sp.unk_id())
    assert (vocab.pad_id, vocab.unk_id, vocab.cls_id, vocab.sep_id, vocab.mask_id) == (0, 1, 2, 3, 4)

    tok = build_tokenizer("bert", spm_model_path=sp_path)
    text = "北京是中华人民共和国的首都，有两千多万人口"
    pieces = tok.tokenize(text)
    ids = tok.encode(text)
    assert len(ids) > 3 and vocab.unk_id not in ids
    assert ids == [sp.PieceToId(p) for p in pieces] == sp.EncodeAsIds(text)
    assert tok.convert_ids_to_tokens(ids) == pieces
    assert sp.DecodePieces(pieces) == sp.DecodeIds(sp.EncodeAsIds(text))
    assert "".join(pieces).replace("\u2581", "") == text.replace("，", ",")  # the model normalizes NFKC
    # ALBERT-style fix: a piece "<digits>," is split so the comma stands alone.
    assert all(not (len(p) > 1 and p.endswith(",") and p[-2].isdigit()) for p in tok.tokenize("共3,5,7,人"))

    char = build_tokenizer("char", spm_model_path=sp_path)
    assert char.vocab.i2w == vocab.i2w and char.tokenize("北 京") == ["北", "京"]
    assert char.encode("北京") == [sp.PieceToId("北"), sp.PieceToId("京")]
    assert pickle.loads(pickle.dumps(tok)).encode(text) == ids


def test_plain_spm_model_violates_rules(tmp_path):
    """A sentencepiece model without [PAD]/[CLS]/[SEP]/[MASK] pieces is rejected with the file named."""
    spm = pytest.importorskip("sentencepiece")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(["hello world", "the quick brown fox", "jumps over the lazy dog"] * 20),
                      encoding="utf-8")
    prefix = tmp_path / "plain"
    spm.SentencePieceTrainer.Train(input=str(corpus), model_prefix=str(prefix), vocab_size=40,
                                   model_type="char", minloglevel=2)
    with pytest.raises(VocabError) as info:
        Vocab.from_spm(f"{prefix}.model")
    assert "plain.model" in str(info.value) and "[PAD]" in str(info.value) and "[CLS]" in str(info.value)


def test_tokenizers_pickle_for_worker_processes(tiny_vocab_path):
    for name in ("bert", "char", "space"):
        tok = build_tokenizer(name, vocab_path=tiny_vocab_path)
        tok.encode("unaffable 中国")  # fill caches
        clone = pickle.loads(pickle.dumps(tok))
        assert clone.encode("unaffable 中国 hello") == tok.encode("unaffable 中国 hello")
        assert type(clone) is type(tok) and clone.vocab.w2i == tok.vocab.w2i
