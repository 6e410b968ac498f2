"""English tokenizers against transformers' on ~3,000 unseen SST-2 lines: cased and uncased WordPiece (the casing
from the vocabulary or --do_lower_case), byte-level BPE (RoBERTa's vocabulary and merges) and XLM-R's sentencepiece
ids (a tiny sentencepiece model trained here)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from conftest import shared_path
from uer.errors import UsageError
from uer.opts import add_tokenizer_options
from uer.text.tokenizers import build_tokenizer, tokenizer_from_args

transformers = pytest.importorskip("transformers")
EXTRA = ["Paris is the capital of France.", "Héllo wörld — naïve café 你好 🙂  double  spaces\ttab",
         "it's I'll we've 1,000.5 $#@! ALL CAPS McDonald's"]


@pytest.fixture(scope="module")
def lines() -> list[str]:
    glue = shared_path("datasets/glue/SST-2")
    dev = [row.split("\t")[0] for row in (glue / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    train = [row.split("\t")[0] for row in (glue / "train.tsv").read_text(encoding="utf-8").splitlines()[1:2200]]
    return dev + train + EXTRA


def hf_tokenizer(folder: Path, tokenizer_class: str, **config):
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": tokenizer_class, **config}))
    return transformers.AutoTokenizer.from_pretrained(folder)


def assert_same_ids(ours, hf, lines):
    different = [(text, mine, theirs) for text in lines
                 for mine, theirs in [(ours.encode(text), hf(text, add_special_tokens=False)["input_ids"])]
                 if mine != theirs]
    assert not different, f"{len(different)} of {len(lines)} lines differ, first: {different[0]}"


@pytest.mark.parametrize("name,lower", [("google_cased_en_vocab.txt", False), ("google_uncased_en_vocab.txt", True)])
def test_wordpiece_casing_from_the_vocabulary(tmp_path, lines, name, lower):
    vocab = shared_path(f"models/{name}")
    (tmp_path / "vocab.txt").write_bytes(vocab.read_bytes())
    hf = hf_tokenizer(tmp_path, "BertTokenizer", do_lower_case=lower)
    parser = argparse.ArgumentParser()
    add_tokenizer_options(parser)
    ours = tokenizer_from_args(parser.parse_args(["--vocab_path", str(vocab)]))  # no --do_lower_case: the vocabulary's
    assert ours.do_lower_case is lower
    assert_same_ids(ours, hf, lines)
    first = ours.tokenize("Paris")
    assert first == (["paris"] if lower else ["Paris"])
    # the flag wins over the vocabulary
    forced = tokenizer_from_args(parser.parse_args(["--vocab_path", str(vocab), "--do_lower_case", str(not lower)]))
    assert forced.do_lower_case is (not lower)


def test_byte_level_bpe_equals_roberta(tmp_path, lines):
    vocab = shared_path("models/huggingface_gpt2_vocab.txt")
    merges = shared_path("models/huggingface_gpt2_merges.txt")
    tokens = vocab.read_text(encoding="utf-8").splitlines()
    (tmp_path / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(tokens)}), encoding="utf-8")
    (tmp_path / "merges.txt").write_bytes(merges.read_bytes())
    hf = hf_tokenizer(tmp_path, "RobertaTokenizer")
    for vocab_file in (vocab, tmp_path / "vocab.json"):  # UER-py's one token a line, and HF's vocab.json
        ours = build_tokenizer("bpe", vocab_file, merges_path=merges)
        assert_same_ids(ours, hf, lines)
    specials = ours.vocab
    assert (specials.cls_id, specials.pad_id, specials.sep_id, specials.unk_id, specials.mask_id) == \
        tuple(hf.convert_tokens_to_ids(["<s>", "<pad>", "</s>", "<unk>", "<mask>"]))
    with pytest.raises(ValueError, match="merges_path"):
        build_tokenizer("bpe", vocab)
    with pytest.raises(ValueError, match="never lower-cases"):
        build_tokenizer("bpe", vocab, merges_path=merges, do_lower_case=True)
    parser = argparse.ArgumentParser()
    add_tokenizer_options(parser)
    with pytest.raises(UsageError, match="--merges_path is read by --tokenizer bpe only"):
        tokenizer_from_args(parser.parse_args(["--vocab_path", str(shared_path("models/google_uncased_en_vocab.txt")),
                                               "--merges_path", str(merges)]))


def test_xlmroberta_ids_equal_transformers(tmp_path, lines):
    spm = pytest.importorskip("sentencepiece")
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines[900:]), model_prefix=str(tmp_path / "sentencepiece.bpe"),
                                   vocab_size=400, model_type="unigram", character_coverage=1.0, unk_id=0, bos_id=1,
                                   eos_id=2, pad_id=-1, minloglevel=2)
    hf = hf_tokenizer(tmp_path, "XLMRobertaTokenizer")
    ours = build_tokenizer("xlmroberta", spm_model_path=tmp_path / "sentencepiece.bpe.model")
    assert len(ours.vocab) == len(hf)
    assert_same_ids(ours, hf, lines[:900] + EXTRA)  # the dev lines: unseen by the sentencepiece trainer
    v = ours.vocab
    assert (v.cls_id, v.pad_id, v.sep_id, v.unk_id, v.mask_id) == \
        tuple(hf.convert_tokens_to_ids(["<s>", "<pad>", "</s>", "<unk>", "<mask>"]))
