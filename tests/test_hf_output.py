"""Our models out as complete HF folders (weights, config.json, tokenizer files), through the converter scripts:
AutoTokenizer + AutoModelFor... load them and give our logits to 1e-5; bare encoders (the real sentence-transformers
MiniLM folder, pooler included) round-trip HF -> ours -> HF bit-exactly; RoBERTa and XLM-R both ways."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import run_script, shared_path
from test_convert_bert import randomize
from test_hf_folder import HIDDEN, HEADS, LAYERS, FF, POSITIONS, SIZES, minilm_folder
from uer.api import load_config, load_model
from uer.converters import cli
from uer.finetune.tasks.classifier import Classifier
from uer.model_loader import load_model_weights, load_state_dict
from uer.text.tokenizers import build_tokenizer

transformers = pytest.importorskip("transformers")
TEXTS = ["Paris is the capital of France.", "an utterly charming, often affecting journey"]


def our_classifier(model_path: Path, labels: int, **config) -> Classifier:
    cfg = load_config(None, config.pop("vocab_size"), **config)
    base = load_model(cfg, None)
    head = Classifier(base.embedding, base.encoder, cfg.hidden_size, labels).eval()
    load_model_weights(head, model_path)
    return head


def our_logits(head: Classifier, tokenizer, texts) -> torch.Tensor:
    vocab = tokenizer.vocab
    rows = [[vocab.cls_id] + tokenizer.encode(text) + [vocab.sep_id] for text in texts]
    width = max(map(len, rows))
    src = torch.tensor([row + [vocab.pad_id] * (width - len(row)) for row in rows])
    seg = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows])
    with torch.no_grad():
        return head.logits({"src": src, "seg": seg})


def hf_logits(folder: Path, texts) -> torch.Tensor:
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        return model(**tokenizer(texts, padding=True, return_tensors="pt")).logits


def test_bert_classifier_out_as_hf_folder_with_cased_vocab(tmp_path):
    vocab = shared_path("models/google_cased_en_vocab.txt")
    torch.manual_seed(5)
    hf = randomize(transformers.BertForSequenceClassification(transformers.BertConfig(
        vocab_size=28996, max_position_embeddings=POSITIONS, num_labels=3, **SIZES)))
    hf.save_pretrained(tmp_path / "hf_in")
    cli.bert_huggingface_to_uer(["--input_model_path", str(tmp_path / "hf_in"), "--output_model_path",
                                 str(tmp_path / "classifier.bin")], kind="text_classification")
    cli.bert_uer_to_huggingface(["--input_model_path", str(tmp_path / "classifier.bin"), "--output_model_path",
                                 str(tmp_path / "hf_out"), "--vocab_path", str(vocab), "--heads_num", str(HEADS)],
                                kind="text_classification")
    out = tmp_path / "hf_out"
    assert json.loads((out / "tokenizer_config.json").read_text())["do_lower_case"] is False  # from the vocabulary
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    assert len(hf_tokenizer) == 28996 and "Paris" in hf_tokenizer.tokenize("Paris")
    ours = our_classifier(tmp_path / "classifier.bin", 3, vocab_size=28996, hidden_size=HIDDEN, layers_num=LAYERS,
                          heads_num=HEADS, feedforward_size=FF, max_seq_length=POSITIONS, dropout=0.0)
    expected = our_logits(ours, build_tokenizer("bert", vocab), TEXTS)
    torch.testing.assert_close(hf_logits(out, TEXTS), expected, atol=1e-5, rtol=1e-5)


def test_sentence_transformers_folder_round_trips_bit_exactly(tmp_path):
    folder = minilm_folder()
    cli.bert_huggingface_to_uer(["--input_model_path", str(folder), "--output_model_path", str(tmp_path / "minilm.bin")])
    assert "target.sp.linear_1.weight" in load_state_dict(tmp_path / "minilm.bin")  # the pooler, kept
    cli.bert_uer_to_huggingface(["--input_model_path", str(tmp_path / "minilm.bin"), "--output_model_path",
                                 str(tmp_path / "out"), "--vocab_path", str(folder / "vocab.txt"), "--config_path",
                                 str(folder / "config.json")])
    original = load_state_dict(folder / "model.safetensors", normalize=False)
    written = load_state_dict(tmp_path / "out" / "model.safetensors", normalize=False)
    original = {k: v for k, v in original.items() if not k.endswith("position_ids")}
    assert set(written) == set(original)
    assert all(torch.equal(written[key], original[key]) for key in original)
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["architectures"] == ["BertModel"] and config["num_attention_heads"] == 12
    a = transformers.AutoTokenizer.from_pretrained(folder)
    b = transformers.AutoTokenizer.from_pretrained(tmp_path / "out")
    assert a(TEXTS)["input_ids"] == b(TEXTS)["input_ids"]


def test_roberta_both_ways_with_bpe_tokenizer_files(tmp_path):
    vocab, merges = shared_path("models/huggingface_gpt2_vocab.txt"), shared_path("models/huggingface_gpt2_merges.txt")
    torch.manual_seed(6)
    config = transformers.RobertaConfig(vocab_size=50265, max_position_embeddings=POSITIONS + 2, type_vocab_size=1,
                                        num_labels=2, **SIZES)
    hf = randomize(transformers.RobertaForSequenceClassification(config))
    hf.save_pretrained(tmp_path / "hf_in")
    run_script("scripts/convert_roberta_from_huggingface_to_uer.py", "--input_model_path", str(tmp_path / "hf_in"),
               "--output_model_path", str(tmp_path / "roberta.bin"), "--type", "text_classification")
    run_script("scripts/convert_roberta_from_uer_to_huggingface.py", "--input_model_path", str(tmp_path / "roberta.bin"),
               "--output_model_path", str(tmp_path / "hf_out"), "--type", "text_classification", "--vocab_path",
               str(vocab), "--merges_path", str(merges), "--heads_num", str(HEADS))
    ours = our_classifier(tmp_path / "roberta.bin", 2, vocab_size=50265, hidden_size=HIDDEN, layers_num=LAYERS,
                          heads_num=HEADS, feedforward_size=FF, max_seq_length=POSITIONS, dropout=0.0,
                          layernorm_eps=1e-5)
    tokenizer = build_tokenizer("bpe", vocab, merges_path=merges)
    expected = our_logits(ours, tokenizer, TEXTS)
    torch.testing.assert_close(hf_logits(tmp_path / "hf_out", TEXTS), expected, atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # and the original HF model agrees
        batch = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf_out")(TEXTS, padding=True, return_tensors="pt")
        torch.testing.assert_close(hf(**batch).logits, expected, atol=1e-5, rtol=1e-5)


def test_xlmroberta_both_ways(tmp_path):
    spm = pytest.importorskip("sentencepiece")
    lines = [row.split("\t")[0] for row in
             shared_path("datasets/glue/SST-2/train.tsv").read_text(encoding="utf-8").splitlines()[1:2000]]
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=str(tmp_path / "sp"), vocab_size=300,
                                   model_type="unigram", unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
    tokenizer = build_tokenizer("xlmroberta", spm_model_path=tmp_path / "sp.model")
    torch.manual_seed(8)
    config = transformers.XLMRobertaConfig(vocab_size=len(tokenizer.vocab), max_position_embeddings=POSITIONS + 2,
                                           type_vocab_size=1, num_labels=2, **SIZES)
    hf = randomize(transformers.XLMRobertaForSequenceClassification(config))
    hf.save_pretrained(tmp_path / "hf_in")
    run_script("scripts/convert_xlmroberta_from_huggingface_to_uer.py", "--input_model_path", str(tmp_path / "hf_in"),
               "--output_model_path", str(tmp_path / "xlmr.bin"), "--type", "text_classification")
    run_script("scripts/convert_xlmroberta_from_uer_to_huggingface.py", "--input_model_path", str(tmp_path / "xlmr.bin"),
               "--output_model_path", str(tmp_path / "hf_out"), "--type", "text_classification", "--spm_model_path",
               str(tmp_path / "sp.model"), "--heads_num", str(HEADS))
    assert json.loads((tmp_path / "hf_out" / "config.json").read_text())["model_type"] == "xlm-roberta"
    ours = our_classifier(tmp_path / "xlmr.bin", 2, vocab_size=len(tokenizer.vocab), hidden_size=HIDDEN,
                          layers_num=LAYERS, heads_num=HEADS, feedforward_size=FF, max_seq_length=POSITIONS,
                          dropout=0.0, layernorm_eps=1e-5)
    expected = our_logits(ours, tokenizer, TEXTS)
    torch.testing.assert_close(hf_logits(tmp_path / "hf_out", TEXTS), expected, atol=1e-5, rtol=1e-5)


def test_fine_tuned_classifier_out_as_hf_folder(tmp_path):
    """HF folder in (MiniLM) -> our classifier -> save_hf_folder -> AutoModelForSequenceClassification: our logits."""
    from uer.api import TextEncoder
    from uer.hf_folder import save_hf_folder

    folder = minilm_folder()
    encoder = TextEncoder.from_pretrained(folder, device="cpu")
    torch.manual_seed(3)
    head = Classifier(encoder.model.embedding, encoder.model.encoder, encoder.cfg.hidden_size, 2).eval()
    torch.nn.init.normal_(head.output_layer_1.weight, std=0.2)
    torch.nn.init.normal_(head.output_layer_2.weight, std=0.2)
    save_hf_folder(head.state_dict(), tmp_path / "out", encoder.cfg, encoder.tokenizer, kind="text_classification",
                   labels=["negative", "positive"])
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    torch.testing.assert_close(hf_logits(tmp_path / "out", TEXTS), our_logits(head, encoder.tokenizer, TEXTS),
                               atol=1e-5, rtol=1e-5)


def test_gpt2_out_with_bpe_tokenizer_files(tmp_path):
    vocab, merges = shared_path("models/huggingface_gpt2_vocab.txt"), shared_path("models/huggingface_gpt2_merges.txt")
    torch.manual_seed(2)
    hf = randomize(transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=50265, n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS, n_positions=POSITIONS, resid_pdrop=0.0,
        embd_pdrop=0.0, attn_pdrop=0.0)))
    hf.save_pretrained(tmp_path / "hf_in")
    cli.gpt2_huggingface_to_uer(["--input_model_path", str(tmp_path / "hf_in"), "--output_model_path",
                                 str(tmp_path / "gpt2.bin")])
    cli.gpt2_uer_to_huggingface(["--input_model_path", str(tmp_path / "gpt2.bin"), "--output_model_path",
                                 str(tmp_path / "hf_out"), "--vocab_path", str(vocab), "--merges_path", str(merges),
                                 "--heads_num", str(HEADS)])
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf_out")
    ours = build_tokenizer("bpe", vocab, merges_path=merges)
    assert [hf_tokenizer(text, add_special_tokens=False)["input_ids"] for text in TEXTS] == [ours.encode(t) for t in TEXTS]
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf_out").eval()
    ids = torch.tensor([ours.encode(TEXTS[0])])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(ids).logits, hf(ids).logits, atol=1e-5, rtol=1e-5)
