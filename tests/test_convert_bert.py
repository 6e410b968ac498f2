"""BERT converters against HuggingFace's transformers (the numerical reference, test-only dependency).

A tiny random BertForPreTraining goes HF -> ours -> HF through the scripts: every tensor must come back
bit-identical, and our model on the converted file must reproduce HF's hidden states, MLM logits and
NSP logits on sentence pairs with padding. Key-set variants (BertModel, BertForMaskedLM, old names,
safetensors without tied copies), task heads and the error messages are checked on the library calls
the scripts make.
"""
from __future__ import annotations

import json

import pytest
import torch

from conftest import run_script, shared_path
from uer.converters import bert
from uer.converters.common import ConversionError
from uer.finetune.tasks.classifier import Classifier
from uer.model_builder import build_model
from uer.model_loader import load_model_weights, load_state_dict
from uer.model_saver import save_state_dict
from uer.model_config import ModelConfig
from uer.text.vocab import Vocab

transformers = pytest.importorskip("transformers")

VOCAB, HIDDEN, LAYERS, HEADS, FF, POSITIONS = 50, 32, 2, 4, 64, 24


def hf_config(**extra) -> "transformers.BertConfig":
    return transformers.BertConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                                   num_attention_heads=HEADS, intermediate_size=FF, max_position_embeddings=POSITIONS,
                                   hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **extra)


def randomize(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial layer norms and biases (fresh ones are 1 and 0), so a swapped mapping cannot pass."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                param.add_(torch.randn_like(param) * 0.2)
    return model.eval()


def our_config(**extra) -> ModelConfig:
    values = dict(vocab_size=VOCAB, emb_size=HIDDEN, hidden_size=HIDDEN, feedforward_size=FF, heads_num=HEADS,
                  layers_num=LAYERS, max_seq_length=POSITIONS, dropout=0.0)
    values.update(extra)
    return ModelConfig(**values)


def pair_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ids, HF token types, HF attention mask: sentence pairs of different lengths, padded."""
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(5, VOCAB, (3, 14), generator=g)
    token_types = torch.zeros_like(ids)
    attention = torch.ones_like(ids)
    for row, (first, total) in enumerate([(6, 14), (4, 10), (3, 5)]):
        token_types[row, first:total] = 1
        attention[row, total:] = 0
        ids[row, total:] = 0
    return ids, token_types, attention


@pytest.fixture(scope="module")
def hf_model() -> "transformers.BertForPreTraining":
    torch.manual_seed(0)
    return randomize(transformers.BertForPreTraining(hf_config()))


@pytest.fixture(scope="module")
def converted(hf_model, tmp_path_factory):
    """HF -> ours -> HF through the scripts; the HF side leaves as safetensors with config.json."""
    root = tmp_path_factory.mktemp("convert")
    torch.save(hf_model.state_dict(), root / "pytorch_model.bin")
    (root / "tiny.json").write_text(json.dumps({"hidden_size": HIDDEN, "heads_num": HEADS, "hidden_act": "gelu"}))
    run_script("scripts/convert_bert_from_huggingface_to_uer.py", "--input_model_path", str(root / "pytorch_model.bin"),
               "--output_model_path", str(root / "uer.bin"), "--type", "bert")
    run_script("scripts/convert_bert_from_uer_to_huggingface.py", "--input_model_path", str(root / "uer.bin"),
               "--output_model_path", str(root / "hf" / "model.safetensors"), "--config_output_dir", str(root / "hf"),
               "--config_path", str(root / "tiny.json"), "--layers_num", str(LAYERS))
    return root


def test_round_trip_through_the_scripts_is_exact(hf_model, converted):
    original = hf_model.state_dict()
    written = load_state_dict(converted / "hf" / "model.safetensors", normalize=False)
    assert set(written) == set(original)  # BertForPreTraining's own key set, tied copies included
    for key, value in original.items():
        assert torch.equal(written[key], value), key
    reloaded = transformers.BertForPreTraining.from_pretrained(converted / "hf").eval()
    config = json.loads((converted / "hf" / "config.json").read_text())
    assert (config["architectures"], config["num_attention_heads"], config["tie_word_embeddings"]) == \
        (["BertForPreTraining"], HEADS, True)
    for key, value in reloaded.state_dict().items():
        assert torch.equal(value, original[key]), key


def test_converted_model_reproduces_hf_outputs(hf_model, converted):
    ours = build_model(our_config()).eval()
    assert load_model_weights(ours, converted / "uer.bin") == {"missing": [], "unexpected": []}
    ids, token_types, attention = pair_batch()
    seg = (token_types + 1) * attention  # ours: 1 first segment, 2 second, 0 padding
    with torch.no_grad():
        ref = hf_model(input_ids=ids, token_type_ids=token_types, attention_mask=attention, output_hidden_states=True)
        hidden = ours.encode(ids, seg)
        base = transformers.BertModel(hf_config(), add_pooling_layer=False).eval()
        base.load_state_dict({k[len("bert."):]: v for k, v in hf_model.state_dict().items()
                              if k.startswith("bert.") and not k.startswith("bert.pooler.")})
        last_hidden = base(input_ids=ids, token_type_ids=token_types, attention_mask=attention).last_hidden_state
        # Every position, padding included: our padding row of the segment embedding is HF's type-0 row.
        torch.testing.assert_close(hidden, last_hidden, atol=1e-5, rtol=1e-5)
        positions = torch.arange(ids.numel())
        torch.testing.assert_close(ours.target.mlm.logits(hidden, positions), ref.prediction_logits.reshape(-1, VOCAB),
                                   atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours.target.sp.logits(hidden), ref.seq_relationship_logits, atol=1e-5, rtol=1e-5)


def test_hf_key_set_variants_convert_alike(hf_model, converted, tmp_path):
    reference = load_state_dict(converted / "uer.bin")
    full = hf_model.state_dict()
    # BertModel: no "bert." prefix, 2020-era gamma/beta names, the position_ids buffer old versions saved.
    bare = {k[len("bert."):].replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
            for k, v in full.items() if k.startswith("bert.")}
    bare["embeddings.position_ids"] = torch.arange(POSITIONS)[None]
    out = bert.hf_to_uer(bare, "mlm")
    assert set(out) == {k for k in reference if k.startswith(("embedding.", "encoder."))}  # no MLM head in BertModel
    for key, value in out.items():
        assert torch.equal(value, reference[key]), key
    # BertForMaskedLM saved by save_pretrained (safetensors without the tied decoder weight).
    mlm = transformers.BertForMaskedLM(hf_config())
    mlm.load_state_dict({k: v for k, v in full.items() if not k.startswith(("bert.pooler.", "cls.seq_relationship."))})
    mlm.save_pretrained(tmp_path / "mlm")
    saved = load_state_dict(tmp_path / "mlm" / "model.safetensors", normalize=False)
    assert "cls.predictions.decoder.weight" not in saved
    out = bert.hf_to_uer(saved, "mlm")
    assert set(out) == {k for k in reference if not k.startswith("target.sp.")}
    for key, value in out.items():
        assert torch.equal(value, reference[key]), key
    # ... and back as BertForMaskedLM, loadable without missing or unexpected keys.
    back = bert.uer_to_hf(out, "mlm")
    mlm_back = transformers.BertForMaskedLM(hf_config())
    mlm_back.load_state_dict(back, strict=True)  # raises on a missing or unexpected key
    for key, value in mlm_back.state_dict().items():  # every weight is the original one
        assert torch.equal(value, mlm.state_dict()[key]), key


def test_untied_mlm_output_survives_from_pretrained(tmp_path):
    torch.manual_seed(1)
    model = build_model(our_config(target=("mlm",)))  # tie_weights off: UER-py's default
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    assert not torch.equal(state["target.mlm.linear_2.weight"], state["embedding.word.embedding.weight"])
    hf_state = bert.uer_to_hf(state, "mlm")
    save_state_dict(hf_state, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps(bert.hf_config(hf_state, "mlm", heads_num=HEADS)))
    hf = transformers.BertForMaskedLM.from_pretrained(tmp_path)
    assert torch.equal(hf.cls.predictions.decoder.weight, state["target.mlm.linear_2.weight"])
    assert torch.equal(hf.bert.embeddings.word_embeddings.weight, state["embedding.word.embedding.weight"])


def test_task_heads_match_hf_sequence_and_token_classification(tmp_path):
    torch.manual_seed(2)
    ids, token_types, attention = pair_batch()
    seg = (token_types + 1) * attention
    seq_hf = randomize(transformers.BertForSequenceClassification(hf_config(num_labels=3)))
    ours = bert.hf_to_uer(seq_hf.state_dict(), "text_classification")
    assert {k for k in ours if not k.startswith(("embedding.", "encoder."))} == \
        {"output_layer_1.weight", "output_layer_1.bias", "output_layer_2.weight", "output_layer_2.bias"}
    encoder_model = build_model(our_config(), with_target=False).eval()
    encoder_model.load_state_dict({k: v for k, v in ours.items() if k.startswith(("embedding.", "encoder."))})
    with torch.no_grad():
        expected = seq_hf(input_ids=ids, token_type_ids=token_types, attention_mask=attention).logits
        hidden = encoder_model.encode(ids, seg)
        pooled = torch.tanh(torch.nn.functional.linear(hidden[:, 0], ours["output_layer_1.weight"], ours["output_layer_1.bias"]))
        logits = torch.nn.functional.linear(pooled, ours["output_layer_2.weight"], ours["output_layer_2.bias"])
        torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
        head = Classifier(encoder_model.embedding, encoder_model.encoder, HIDDEN, 3, "first").eval()
        assert set(head.state_dict()) == set(ours)
        head.load_state_dict(ours)
        torch.testing.assert_close(head.logits({"src": ids, "seg": seg}), expected, atol=1e-5, rtol=1e-5)
    # back through the script, to a file HF's BertForSequenceClassification loads exactly
    save_state_dict(ours, tmp_path / "classifier.bin")
    run_script("scripts/convert_bert_text_classification_from_uer_to_huggingface.py",
               "--input_model_path", str(tmp_path / "classifier.bin"),
               "--output_model_path", str(tmp_path / "hf_cls" / "pytorch_model.bin"),
               "--config_output_dir", str(tmp_path / "hf_cls"), "--heads_num", str(HEADS))
    reloaded = transformers.BertForSequenceClassification.from_pretrained(tmp_path / "hf_cls")
    assert reloaded.config.num_labels == 3
    for key, value in seq_hf.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key

    tok_hf = randomize(transformers.BertForTokenClassification(hf_config(num_labels=5)))
    ours = bert.hf_to_uer(tok_hf.state_dict(), "token_classification")
    encoder_model.load_state_dict({k: v for k, v in ours.items() if k.startswith(("embedding.", "encoder."))})
    with torch.no_grad():
        expected = tok_hf(input_ids=ids, token_type_ids=token_types, attention_mask=attention).logits
        logits = torch.nn.functional.linear(encoder_model.encode(ids, seg), ours["output_layer.weight"],
                                            ours["output_layer.bias"])
        torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
    back = bert.uer_to_hf(ours, "token_classification")
    transformers.BertForTokenClassification(hf_config(num_labels=5)).load_state_dict(back, strict=True)  # exact keys
    for key, value in tok_hf.state_dict().items():
        assert torch.equal(back[key], value), key


def test_conversion_errors_name_the_problem(hf_model, converted):
    ours = load_state_dict(converted / "uer.bin")
    mlm_only = {k: v for k, v in ours.items() if not k.startswith("target.sp.")}
    with pytest.raises(ConversionError, match="no next-sentence head.*--type mlm"):
        bert.uer_to_hf(mlm_only, "bert")
    with pytest.raises(ConversionError, match="--layers_num 3 but the UER file has 2 layers"):
        bert.uer_to_hf(ours, "bert", layers_num=3)
    with pytest.raises(ConversionError, match="already has our"):
        bert.hf_to_uer(ours, "bert")
    shared = {k.replace("encoder.transformer.0.", "encoder.transformer."): v for k, v in ours.items()
              if not k.startswith("encoder.transformer.1.")}
    with pytest.raises(ConversionError, match="ALBERT"):
        bert.uer_to_hf(shared, "bert")
    with pytest.raises(ConversionError, match="output_layer_1"):
        bert.uer_to_hf(ours, "text_classification")
    # the scripts print the message, not a traceback
    with pytest.raises(AssertionError, match=r"error: --layers_num 5 but the HuggingFace file has 2 layers"):
        run_script("scripts/convert_bert_from_huggingface_to_uer.py", "--input_model_path",
                   str(converted / "pytorch_model.bin"), "--output_model_path", str(converted / "x.bin"),
                   "--layers_num", "5")


def test_legacy_rewrite_script(tmp_path):
    from test_checkpoint import hand_built_state_dict

    current = hand_built_state_dict()
    legacy = {k.replace("embedding.word.embedding.", "embedding.word_embedding.")
              .replace("embedding.pos.embedding.", "embedding.position_embedding.")
              .replace("embedding.seg.embedding.", "embedding.segment_embedding.")
              .replace("target.mlm.linear_", "target.mlm_linear_").replace("target.mlm.layer_norm.", "target.layer_norm.")
              .replace("target.sp.linear_", "target.nsp_linear_"): v for k, v in current.items()}
    torch.save(legacy, tmp_path / "old.bin")
    out = run_script("scripts/convert_uer_legacy_to_current.py", "--input_model_path", str(tmp_path / "old.bin"),
                     "--output_model_path", str(tmp_path / "new.safetensors"))
    assert "renamed 13 of" in out.stdout
    written = load_state_dict(tmp_path / "new.safetensors", normalize=False)
    assert set(written) == set(current)
    for key, value in current.items():
        assert torch.equal(written[key], value), key


@pytest.mark.slow
def test_docs_roberta_wwm_ext_large_example_then_serve_with_hf(tmp_path):
    """README: convert HIT's RoBERTa-wwm-ext-large, then run_classifier_cv.py; here with a tiny stand-in of
    the same format (BertForPreTraining keys with pytorch-pretrained-bert's gamma/beta names), and the
    fine-tuned fold model converted back and served by HF's BertForSequenceClassification."""
    vocab = shared_path("models/google_zh_vocab.txt")
    rows = shared_path("datasets/chnsenticorp/train.tsv").read_text(encoding="utf-8").splitlines()[:41]
    vocab_size = len(Vocab.from_file(vocab))
    torch.manual_seed(3)
    stand_in = transformers.BertForPreTraining(transformers.BertConfig(
        vocab_size=vocab_size, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
        intermediate_size=FF, max_position_embeddings=64))
    model_dir = tmp_path / "models" / "chinese_roberta_wwm_large_ext_pytorch"
    model_dir.mkdir(parents=True)
    torch.save({k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
                for k, v in stand_in.state_dict().items()}, model_dir / "pytorch_model.bin")
    data_dir = tmp_path / "datasets" / "smp2020-ewect" / "virus"
    data_dir.mkdir(parents=True)
    (data_dir / "train.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = {"emb_size": HIDDEN, "hidden_size": HIDDEN, "feedforward_size": FF, "heads_num": HEADS, "layers_num": LAYERS,
              "max_seq_length": 64, "dropout": 0.1, "embedding": ["word", "pos", "seg"], "encoder": "transformer",
              "mask": "fully_visible", "target": ["mlm", "sp"]}
    (tmp_path / "models" / "bert").mkdir()
    (tmp_path / "models" / "bert" / "large_config.json").write_text(json.dumps(config))

    run_script("scripts/convert_bert_from_huggingface_to_uer.py", "--input_model_path",
               "models/chinese_roberta_wwm_large_ext_pytorch/pytorch_model.bin", "--output_model_path",
               "models/chinese_roberta_wwm_large_ext_pytorch/pytorch_model_uer.bin", "--layers_num", str(LAYERS),
               cwd=tmp_path)
    out = run_script("run_classifier_cv.py", "--pretrained_model_path",
                     "models/chinese_roberta_wwm_large_ext_pytorch/pytorch_model_uer.bin", "--vocab_path", str(vocab),
                     "--config_path", "models/bert/large_config.json", "--train_path", "datasets/smp2020-ewect/virus/train.tsv",
                     "--train_features_path", "datasets/smp2020-ewect/virus/train_features.npy",
                     "--output_model_path", "models/classifier_model.bin", "--seq_length", "32",
                     "--epochs_num", "1", "--batch_size", "8", "--folds_num", "2",
                     "--embedding", "word_pos_seg", "--encoder", "transformer", "--mask", "fully_visible", cwd=tmp_path)
    assert "keep their random initialisation: ['output_layer_1" in out.stdout  # only the new head is fresh
    assert (data_dir / "train_features.npy").is_file()
    fold_models = sorted((tmp_path / "models").glob("classifier_model*fold_0.bin"))
    assert len(fold_models) == 1, sorted(p.name for p in (tmp_path / "models").iterdir())

    run_script("scripts/convert_bert_text_classification_from_uer_to_huggingface.py", "--input_model_path",
               str(fold_models[0]), "--output_model_path", "hf_classifier/pytorch_model.bin",
               "--config_output_dir", "hf_classifier", "--config_path", "models/bert/large_config.json", cwd=tmp_path)
    served = transformers.BertForSequenceClassification.from_pretrained(tmp_path / "hf_classifier").eval()
    from uer.finetune.tasks.classifier import Classifier

    encoder_model = build_model(our_config(vocab_size=vocab_size, max_seq_length=64), with_target=False)
    classifier = Classifier(encoder_model.embedding, encoder_model.encoder, HIDDEN, 2, "first").eval()
    load_model_weights(classifier, fold_models[0])
    ids = torch.randint(5, vocab_size, (2, 16), generator=torch.Generator().manual_seed(0))
    seg = torch.ones_like(ids)
    seg[1, 12:] = 0
    with torch.no_grad():
        expected = served(input_ids=ids, attention_mask=(seg > 0).long()).logits
        torch.testing.assert_close(classifier.logits({"src": ids, "seg": seg}), expected, atol=1e-5, rtol=1e-5)
