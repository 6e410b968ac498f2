"""GPT-2 converters against transformers' GPT2LMHeadModel: HF -> ours -> HF through the scripts is exact,
and our causal pre-LayerNorm transformer with the lm target reproduces HF's hidden states and logits."""
from __future__ import annotations

import json

import pytest
import torch

from conftest import run_script
from uer.model_builder import build_model
from uer.model_loader import load_model_weights, load_state_dict
from uer.model_config import ModelConfig

transformers = pytest.importorskip("transformers")

VOCAB, HIDDEN, LAYERS, HEADS, POSITIONS = 50, 32, 2, 4, 24


def test_gpt2_round_trip_and_outputs(tmp_path):
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=VOCAB, n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS, n_positions=POSITIONS,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    hf = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # non-trivial layer norms and biases
        for name, param in hf.named_parameters():
            if ".ln_" in name or name.endswith("bias"):
                param.add_(torch.randn_like(param) * 0.2)
    torch.save(hf.state_dict(), tmp_path / "pytorch_model.bin")
    run_script("scripts/convert_gpt2_from_huggingface_to_uer.py", "--input_model_path", str(tmp_path / "pytorch_model.bin"),
               "--output_model_path", str(tmp_path / "uer.bin"))
    (tmp_path / "gpt2.json").write_text(json.dumps({"heads_num": HEADS, "hidden_act": "gelu_fast"}))
    run_script("scripts/convert_gpt2_from_uer_to_huggingface.py", "--input_model_path", str(tmp_path / "uer.bin"),
               "--output_model_path", str(tmp_path / "hf" / "model.safetensors"), "--config_output_dir",
               str(tmp_path / "hf"), "--config_path", str(tmp_path / "gpt2.json"))
    original = hf.state_dict()
    written = load_state_dict(tmp_path / "hf" / "model.safetensors", normalize=False)
    assert set(written) == {k for k in original if not k.endswith((".attn.bias", ".attn.masked_bias"))}
    for key, value in written.items():
        assert torch.equal(value, original[key]), key
    reloaded = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "hf")
    for key, value in reloaded.state_dict().items():
        assert torch.equal(value, original[key]), key

    ours = build_model(ModelConfig(vocab_size=VOCAB, emb_size=HIDDEN, hidden_size=HIDDEN, feedforward_size=4 * HIDDEN,
                                   heads_num=HEADS, layers_num=LAYERS, max_seq_length=POSITIONS, dropout=0.0,
                                   embedding=("word", "pos"), mask="causal", layernorm_positioning="pre",
                                   remove_embedding_layernorm=True, target=("lm",), hidden_act="gelu_fast",
                                   layernorm_eps=1e-5, tie_weights=True)).eval()
    assert load_model_weights(ours, tmp_path / "uer.bin") == {"missing": [], "unexpected": []}
    ids = torch.randint(0, VOCAB, (2, 10), generator=torch.Generator().manual_seed(1))
    attention = torch.ones_like(ids)
    attention[1, 7:] = 0  # right padding: causal attention never reads it from real positions
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=attention, output_hidden_states=True)
        hidden = ours.encode(ids, attention)
        real = attention.bool()
        torch.testing.assert_close(hidden[real], ref.hidden_states[-1][real], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours.target.lm.logits(hidden)[real], ref.logits[real], atol=1e-5, rtol=1e-5)


def test_gpt2_file_with_2020_era_uer_names_converts(tmp_path):
    """UER-py's older GPT-2 files: embedding.word_embedding / position_embedding, target.output_layer."""
    from uer.converters import gpt2

    torch.manual_seed(1)
    config = transformers.GPT2Config(vocab_size=VOCAB, n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS, n_positions=POSITIONS)
    original = transformers.GPT2LMHeadModel(config).state_dict()
    current = gpt2.hf_to_uer(original)
    legacy = {k.replace("embedding.word.embedding.", "embedding.word_embedding.")
              .replace("embedding.pos.embedding.", "embedding.position_embedding.")
              .replace("target.lm.output_layer.", "target.output_layer."): v for k, v in current.items()}
    assert "target.output_layer.weight" in legacy
    back = gpt2.uer_to_hf(legacy)
    for key, value in back.items():
        assert torch.equal(value, original[key]), key
