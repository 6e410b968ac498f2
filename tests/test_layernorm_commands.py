"""``--layernorm_variant uer`` end to end: pretrain.py, run_classifier.py on its model, then inference whose
logits are UER-py's layer norm numerics, checked against a forward pass written out by hand (one layer)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import run_script, shared_path
from uer.data.finetune_data import encode_pair
from uer.model_loader import load_state_dict
from uer.text.tokenizers import BertTokenizer

pytestmark = pytest.mark.slow

CONFIG = {"emb_size": 32, "hidden_size": 32, "feedforward_size": 64, "heads_num": 2, "layers_num": 1,
          "max_seq_length": 64, "dropout": 0.0, "hidden_act": "gelu", "embedding": ["word", "pos", "seg"],
          "encoder": "transformer", "mask": "fully_visible", "target": ["mlm"], "data_processor": "mlm",
          "tie_weights": True}
SEQ = 32
ENV = {"OMP_NUM_THREADS": "1"}


def layer_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, variant: str) -> torch.Tensor:
    mean = x.mean(-1, keepdim=True)
    if variant == "uer":  # UER-py: unbiased standard deviation, epsilon 1e-6 added to it
        std = ((x - mean).pow(2).sum(-1, keepdim=True) / (x.shape[-1] - 1)).sqrt()
        return gamma * (x - mean) / (std + 1e-6) + beta
    return gamma * (x - mean) / ((x - mean).pow(2).mean(-1, keepdim=True) + 1e-12).sqrt() + beta


def classifier_logits(w: dict[str, torch.Tensor], ids: list[int], variant: str) -> torch.Tensor:
    """BERT with one post-LN layer and UER-py's classifier head on [CLS], one unpadded instance."""
    def linear(x: torch.Tensor, name: str) -> torch.Tensor:
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    src = torch.tensor(ids)
    h = w["embedding.word.embedding.weight"][src] + w["embedding.pos.embedding.weight"][:len(ids)] \
        + w["embedding.seg.embedding.weight"][torch.ones_like(src)]
    h = layer_norm(h, w["embedding.layer_norm.gamma"], w["embedding.layer_norm.beta"], variant)
    layer, heads = "encoder.transformer.0.", CONFIG["heads_num"]
    q, k, v = (linear(h, f"{layer}self_attn.linear_layers.{i}").view(len(ids), heads, -1).transpose(0, 1)
               for i in range(3))
    attention = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(q.shape[-1]), -1)
    context = (attention @ v).transpose(0, 1).reshape(len(ids), -1)
    h = layer_norm(h + linear(context, layer + "self_attn.final_linear"), w[layer + "layer_norm_1.gamma"],
                   w[layer + "layer_norm_1.beta"], variant)
    ffn = linear(F.gelu(linear(h, layer + "feed_forward.linear_1")), layer + "feed_forward.linear_2")
    h = layer_norm(h + ffn, w[layer + "layer_norm_2.gamma"], w[layer + "layer_norm_2.beta"], variant)
    return linear(torch.tanh(linear(h[0], "output_layer_1")), "output_layer_2")


def test_uer_layer_norm_through_pretraining_fine_tuning_and_inference(tmp_path):
    vocab = str(shared_path("models/google_zh_vocab.txt"))
    book = shared_path("datasets/test_data/book_review")
    lines = shared_path("corpora/CLUECorpusSmall_sampled.txt").read_text(encoding="utf-8").splitlines()[:40]
    (tmp_path / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG))
    run_script("preprocess.py", "--corpus_path", str(tmp_path / "corpus.txt"), "--vocab_path", vocab, "--dataset_path",
               str(tmp_path / "mlm.pt"), "--seq_length", str(SEQ), "--target", "mlm", "--dup_factor", "1", env=ENV)

    def pretrain(output: str, variant: str) -> dict:
        run_script("pretrain.py", "--dataset_path", str(tmp_path / "mlm.pt"), "--vocab_path", vocab, "--config_path",
                   str(config), "--output_model_path", str(tmp_path / output), "--total_steps", "3",
                   "--save_checkpoint_steps", "3", "--batch_size", "8", "--learning_rate", "1e-3",
                   "--layernorm_variant", variant, env=ENV)
        return load_state_dict(tmp_path / f"{output}-3")

    def finetune(output: str, variant: str) -> dict:
        run_script("run_classifier.py", "--pretrained_model_path", str(tmp_path / "uer.bin-3"), "--vocab_path", vocab,
                   "--config_path", str(config), "--train_path", str(book / "train.tsv"), "--dev_path",
                   str(book / "dev.tsv"), "--output_model_path", str(tmp_path / output), "--epochs_num", "1",
                   "--batch_size", "32", "--seq_length", str(SEQ), "--learning_rate", "1e-3",
                   "--layernorm_variant", variant, env=ENV)
        return load_state_dict(tmp_path / output)

    def differs(a: dict, b: dict) -> float:
        return max((a[k] - b[k]).abs().max().item() for k in a)

    # Both scripts build what the flag says: same seed and data, the other variant trains other weights.
    assert differs(pretrain("uer.bin", "uer"), pretrain("standard.bin", "standard")) > 1e-6
    weights = finetune("classifier_uer.bin", "uer")
    assert differs(weights, finetune("classifier_standard.bin", "standard")) > 1e-6
    # The fine-tuned model's inference logits are the hand computation with UER-py's layer norm.
    run_script("inference/run_classifier_infer.py", "--load_model_path", str(tmp_path / "classifier_uer.bin"),
               "--vocab_path", vocab, "--config_path", str(config), "--test_path", str(book / "test_nolabel.tsv"),
               "--prediction_path", str(tmp_path / "predictions.tsv"), "--seq_length", str(SEQ), "--labels_num", "2",
               "--output_logits", "--layernorm_variant", "uer", env=ENV)
    rows = (tmp_path / "predictions.tsv").read_text(encoding="utf-8").splitlines()[1:]
    got = torch.tensor([[float(x) for x in row.split("\t")[1].split()] for row in rows], dtype=torch.float64)
    tokenizer = BertTokenizer(vocab_path=vocab)
    texts = [line.split("\t")[0] for line in (book / "test_nolabel.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    assert len(texts) == len(got) > 10
    w = {k: v.double() for k, v in weights.items()}
    with torch.no_grad():
        by_hand = {variant: torch.stack([classifier_logits(w, encode_pair(tokenizer, text, None, SEQ)[0], variant)
                                         for text in texts]) for variant in ("uer", "standard")}
    torch.testing.assert_close(got, by_hand["uer"], rtol=1e-4, atol=1e-4)
    # ... and the comparison can tell the variants apart at this tolerance.
    assert (by_hand["standard"] - by_hand["uer"]).abs().max() > 1e-3
    assert np.isfinite(got.numpy()).all()
