"""Google's original TensorFlow BERT checkpoints, both directions.

The test writes a tiny Google-format checkpoint with TensorFlow itself (raw SaveV2, variable names as
google-research/bert's modeling.py creates them, plus Adam slots and global_step), converts it with the
script, and checks our model against an independent reference: the same TF variables mapped by hand
(below, not by our converter) into transformers' BertForPreTraining. The reverse conversion is read back
with TensorFlow and must return every original variable exactly. Skipped when TensorFlow is missing
(CI installs tensorflow-cpu from requirements-convert.txt).
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, run_script, subprocess_env
from uer.converters import google
from uer.converters.common import ConversionError
from uer.model_builder import build_model
from uer.model_loader import load_model_weights
from uer.model_config import ModelConfig

VOCAB, HIDDEN, LAYERS, HEADS, FF, POSITIONS = 40, 24, 2, 3, 48, 16
SLOTS = ("bert/embeddings/word_embeddings/adam_m", "bert/embeddings/word_embeddings/adam_v")


def google_variables() -> dict[str, np.ndarray]:
    """Random weights under Google's names and shapes (dense kernels are [in x out])."""
    rng = np.random.default_rng(7)
    r = lambda *shape: rng.normal(0.0, 0.2, shape).astype(np.float32)
    v = {"bert/embeddings/word_embeddings": r(VOCAB, HIDDEN), "bert/embeddings/token_type_embeddings": r(2, HIDDEN),
         "bert/embeddings/position_embeddings": r(POSITIONS, HIDDEN),
         "bert/embeddings/LayerNorm/gamma": 1 + r(HIDDEN), "bert/embeddings/LayerNorm/beta": r(HIDDEN)}
    for i in range(LAYERS):
        p = f"bert/encoder/layer_{i}/"
        for name, (n_in, n_out) in {"attention/self/query": (HIDDEN, HIDDEN), "attention/self/key": (HIDDEN, HIDDEN),
                                    "attention/self/value": (HIDDEN, HIDDEN), "attention/output/dense": (HIDDEN, HIDDEN),
                                    "intermediate/dense": (HIDDEN, FF), "output/dense": (FF, HIDDEN)}.items():
            v[p + name + "/kernel"], v[p + name + "/bias"] = r(n_in, n_out), r(n_out)
        for name in ("attention/output/LayerNorm", "output/LayerNorm"):
            v[p + name + "/gamma"], v[p + name + "/beta"] = 1 + r(HIDDEN), r(HIDDEN)
    v["bert/pooler/dense/kernel"], v["bert/pooler/dense/bias"] = r(HIDDEN, HIDDEN), r(HIDDEN)
    v["cls/predictions/transform/dense/kernel"], v["cls/predictions/transform/dense/bias"] = r(HIDDEN, HIDDEN), r(HIDDEN)
    v["cls/predictions/transform/LayerNorm/gamma"] = 1 + r(HIDDEN)
    v["cls/predictions/transform/LayerNorm/beta"] = r(HIDDEN)
    v["cls/predictions/output_bias"] = r(VOCAB)
    v["cls/seq_relationship/output_weights"], v["cls/seq_relationship/output_bias"] = r(2, HIDDEN), r(2)
    return v


def reference_bert(v: dict[str, np.ndarray]):
    """transformers' BertForPreTraining holding the TF variables, mapped by hand as Google's graph uses them."""
    transformers = pytest.importorskip("transformers")
    t = lambda name, transpose=False: torch.from_numpy(v[name].T.copy() if transpose else v[name])
    sd = {"bert.embeddings.word_embeddings.weight": t("bert/embeddings/word_embeddings"),
          "bert.embeddings.token_type_embeddings.weight": t("bert/embeddings/token_type_embeddings"),
          "bert.embeddings.position_embeddings.weight": t("bert/embeddings/position_embeddings"),
          "bert.embeddings.LayerNorm.weight": t("bert/embeddings/LayerNorm/gamma"),
          "bert.embeddings.LayerNorm.bias": t("bert/embeddings/LayerNorm/beta"),
          "bert.pooler.dense.weight": t("bert/pooler/dense/kernel", True), "bert.pooler.dense.bias": t("bert/pooler/dense/bias"),
          "cls.predictions.transform.dense.weight": t("cls/predictions/transform/dense/kernel", True),
          "cls.predictions.transform.dense.bias": t("cls/predictions/transform/dense/bias"),
          "cls.predictions.transform.LayerNorm.weight": t("cls/predictions/transform/LayerNorm/gamma"),
          "cls.predictions.transform.LayerNorm.bias": t("cls/predictions/transform/LayerNorm/beta"),
          "cls.predictions.bias": t("cls/predictions/output_bias"),
          "cls.predictions.decoder.weight": t("bert/embeddings/word_embeddings"),  # Google's output layer
          "cls.predictions.decoder.bias": t("cls/predictions/output_bias"),
          # logits = matmul(pooled, output_weights, transpose_b=True): already [out x in]
          "cls.seq_relationship.weight": t("cls/seq_relationship/output_weights"),
          "cls.seq_relationship.bias": t("cls/seq_relationship/output_bias")}
    for i in range(LAYERS):
        for tf_name, hf_name in [("attention/self/query", "attention.self.query"), ("attention/self/key", "attention.self.key"),
                                 ("attention/self/value", "attention.self.value"),
                                 ("attention/output/dense", "attention.output.dense"),
                                 ("intermediate/dense", "intermediate.dense"), ("output/dense", "output.dense")]:
            sd[f"bert.encoder.layer.{i}.{hf_name}.weight"] = t(f"bert/encoder/layer_{i}/{tf_name}/kernel", True)
            sd[f"bert.encoder.layer.{i}.{hf_name}.bias"] = t(f"bert/encoder/layer_{i}/{tf_name}/bias")
        for tf_name, hf_name in [("attention/output/LayerNorm", "attention.output.LayerNorm"),
                                 ("output/LayerNorm", "output.LayerNorm")]:
            sd[f"bert.encoder.layer.{i}.{hf_name}.weight"] = t(f"bert/encoder/layer_{i}/{tf_name}/gamma")
            sd[f"bert.encoder.layer.{i}.{hf_name}.bias"] = t(f"bert/encoder/layer_{i}/{tf_name}/beta")
    config = transformers.BertConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                                     num_attention_heads=HEADS, intermediate_size=FF, max_position_embeddings=POSITIONS,
                                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = transformers.BertForPreTraining(config).eval()
    model.load_state_dict(sd, strict=True)
    return model


@pytest.fixture(scope="module")
def tf_checkpoint(tmp_path_factory):
    tf = pytest.importorskip("tensorflow", reason="tensorflow not installed (pip install -r requirements-convert.txt)")
    root = tmp_path_factory.mktemp("google")
    variables = google_variables()
    extra = {name: np.zeros_like(variables["bert/embeddings/word_embeddings"]) for name in SLOTS}
    extra["global_step"] = np.array(1000, dtype=np.int64)
    names = list(variables) + list(extra)
    tensors = [tf.constant(a) for a in list(variables.values()) + list(extra.values())]
    prefix = root / "bert_model.ckpt"
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors)
    return tf, prefix, variables


def test_google_checkpoint_converts_and_matches_reference(tf_checkpoint, tmp_path):
    tf, prefix, variables = tf_checkpoint
    out = run_script("scripts/convert_bert_from_original_tf_to_uer.py", "--input_model_path", str(prefix),
                     "--output_model_path", str(tmp_path / "uer.bin"), "--type", "bert")
    assert "not converted" not in out.stdout  # Adam slots and global_step are skipped without a word
    ours = build_model(ModelConfig(vocab_size=VOCAB, emb_size=HIDDEN, hidden_size=HIDDEN, feedforward_size=FF,
                                   heads_num=HEADS, layers_num=LAYERS, max_seq_length=POSITIONS, dropout=0.0)).eval()
    assert load_model_weights(ours, tmp_path / "uer.bin") == {"missing": [], "unexpected": []}
    reference = reference_bert(variables)
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(5, VOCAB, (2, 12), generator=g)
    token_types = torch.zeros_like(ids)
    token_types[:, 5:] = 1
    attention = torch.ones_like(ids)
    attention[1, 8:] = 0
    token_types *= attention  # padding carries token type 0, as HF's tokenizers pad
    seg = (token_types + 1) * attention
    with torch.no_grad():
        ref = reference(input_ids=ids, token_type_ids=token_types, attention_mask=attention, output_hidden_states=True)
        hidden = ours.encode(ids, seg)
        torch.testing.assert_close(hidden, ref.hidden_states[-1], atol=1e-5, rtol=1e-5)
        mlm = ours.target.mlm.logits(hidden, torch.arange(ids.numel()))
        torch.testing.assert_close(mlm, ref.prediction_logits.reshape(-1, VOCAB), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours.target.sp.logits(hidden), ref.seq_relationship_logits, atol=1e-5, rtol=1e-5)

    # and back: TensorFlow reads every original variable, bit-identical, and no optimizer state
    run_script("scripts/convert_bert_from_uer_to_google.py", "--input_model_path", str(tmp_path / "uer.bin"),
               "--output_model_path", str(tmp_path / "tf" / "bert_model.ckpt"), "--config_output_dir",
               str(tmp_path / "tf"), "--heads_num", str(HEADS))
    reader = tf.train.load_checkpoint(str(tmp_path / "tf" / "bert_model.ckpt"))
    assert set(reader.get_variable_to_shape_map()) == set(variables)
    for name, array in variables.items():
        back = reader.get_tensor(name)
        assert back.dtype == np.float32 and np.array_equal(back, array), name
    config = json.loads((tmp_path / "tf" / "bert_config.json").read_text())
    assert {k: config[k] for k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                   "intermediate_size", "max_position_embeddings", "type_vocab_size")} == \
        {"vocab_size": VOCAB, "hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
         "intermediate_size": FF, "max_position_embeddings": POSITIONS, "type_vocab_size": 2}


def test_google_names_map_both_ways():
    for name, array in google_variables().items():
        key, transpose = google.google_to_hf_name(name)
        assert google.hf_to_google_name(key) == (name, transpose), name
        assert transpose == name.endswith("/kernel")
    assert google.google_to_hf_name(SLOTS[0]) is None and google.google_to_hf_name("global_step") is None
    assert google.hf_to_google_name("cls.predictions.decoder.weight") is None  # tied to the word embedding


def test_missing_tensorflow_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # makes `import tensorflow` fail like an absent package
    (tmp_path / "bert_model.ckpt.index").write_bytes(b"")  # a checkpoint is there; only TensorFlow is missing
    with pytest.raises(ConversionError, match="pip install tensorflow-cpu"):
        google.read_tf_checkpoint(tmp_path / "bert_model.ckpt")
    # and nothing else in the converters imports it
    code = "import sys, uer.converters.cli; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=subprocess_env()).returncode == 0
