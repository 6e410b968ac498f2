"""HF ALBERT (AlbertForPreTraining / AlbertModel) <-> ours with factorized embeddings and one shared layer:
hidden states and MLM / sentence-order logits equal transformers' to 1e-5; round trips exact, through the scripts."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import run_script
from test_convert_bert import pair_batch, randomize
from uer.converters import albert, cli
from uer.converters.common import ConversionError
from uer.model_builder import build_model
from uer.model_config import ModelConfig
from uer.model_saver import save_state_dict
from uer.model_loader import load_state_dict

transformers = pytest.importorskip("transformers")
VOCAB, EMB, HIDDEN, LAYERS, HEADS, FF = 50, 16, 32, 3, 4, 64


def hf_albert_config(**extra):
    return transformers.AlbertConfig(vocab_size=VOCAB, embedding_size=EMB, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                                     num_attention_heads=HEADS, intermediate_size=FF, max_position_embeddings=24,
                                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **extra)


def test_albert_logits_equal_hf_and_round_trip(tmp_path):
    torch.manual_seed(7)
    hf = randomize(transformers.AlbertForPreTraining(hf_albert_config()))
    save_state_dict(hf.state_dict(), tmp_path / "hf.bin")
    run_script("scripts/convert_albert_from_huggingface_to_uer.py", "--input_model_path", str(tmp_path / "hf.bin"),
               "--output_model_path", str(tmp_path / "uer.bin"))
    ours_state = load_state_dict(tmp_path / "uer.bin")
    cfg = ModelConfig(vocab_size=VOCAB, emb_size=EMB, hidden_size=HIDDEN, feedforward_size=FF, heads_num=HEADS,
                      layers_num=LAYERS, max_seq_length=24, dropout=0.0, hidden_act="gelu_fast",
                      factorized_embedding_parameterization=True, parameter_sharing=True, target=("mlm", "sp"))
    model = build_model(cfg).eval()
    model.load_state_dict(ours_state, strict=True)
    ids, token_types, attention = pair_batch()
    ids = ids.clamp(max=VOCAB - 1)
    seg = (token_types + 1) * attention
    with torch.no_grad():
        expected = hf(input_ids=ids, token_type_ids=token_types, attention_mask=attention, output_hidden_states=True)
        hidden = model.encode(ids, seg)
        real = attention.bool()
        torch.testing.assert_close(hidden[real], expected.hidden_states[-1][real], atol=1e-5, rtol=1e-5)
        s = ours_state
        h = F.layer_norm(F.gelu(F.linear(hidden, s["target.mlm.linear_1.weight"], s["target.mlm.linear_1.bias"]),
                                approximate="tanh"), (EMB,), s["target.mlm.layer_norm.gamma"], s["target.mlm.layer_norm.beta"],
                         eps=1e-12)
        mlm = F.linear(h, s["target.mlm.linear_2.weight"], s["target.mlm.linear_2.bias"])
        torch.testing.assert_close(mlm[real], expected.prediction_logits[real], atol=1e-5, rtol=1e-5)
        sop = F.linear(torch.tanh(F.linear(hidden[:, 0], s["target.sp.linear_1.weight"], s["target.sp.linear_1.bias"])),
                       s["target.sp.linear_2.weight"], s["target.sp.linear_2.bias"])
        torch.testing.assert_close(sop, expected.sop_logits, atol=1e-5, rtol=1e-5)
    # back to HF with its config (the layer count comes from --layers_num: shared layers leave it out of the tensors)
    cli.albert_uer_to_huggingface(["--input_model_path", str(tmp_path / "uer.bin"), "--output_model_path",
                                   str(tmp_path / "hf_out" / "pytorch_model.bin"), "--config_output_dir",
                                   str(tmp_path / "hf_out"), "--heads_num", str(HEADS), "--layers_num", str(LAYERS)])
    reloaded = transformers.AlbertForPreTraining.from_pretrained(tmp_path / "hf_out")
    assert reloaded.config.num_hidden_layers == LAYERS and reloaded.config.embedding_size == EMB
    for key, value in hf.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key


def test_bare_albert_model_and_errors():
    torch.manual_seed(8)
    bare = transformers.AlbertModel(hf_albert_config()).state_dict()  # no "albert." prefix, no heads
    ours = albert.hf_to_uer(bare, "albert")
    assert "encoder.linear.weight" in ours and not any(k.startswith("target.") for k in ours)
    with pytest.raises(ConversionError, match="no MLM head"):
        albert.uer_to_hf(ours, "albert")
    with pytest.raises(ConversionError, match="not an ALBERT model"):
        albert.uer_to_hf({k: v for k, v in ours.items() if k != "encoder.linear.weight"}, "mlm")
    with pytest.raises(ConversionError, match="layer group"):
        albert.hf_to_uer(transformers.AlbertModel(hf_albert_config(num_hidden_groups=2)).state_dict())
