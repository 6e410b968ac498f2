"""Numerics of the model against references: hand-computed layer norms, and HuggingFace's BERT."""
from __future__ import annotations

import argparse
import math

import pytest
import torch

from uer import opts
from uer.layers.dropout import Dropout
from uer.layers.layer_norm import LayerNorm, UerLayerNorm
from uer.layers.multi_headed_attn import MultiHeadedAttention
from uer.model_builder import build_model
from uer.config import ConfigError, ModelConfig, model_config_from_args, parse_args_with_config


def test_layer_norms_against_hand_computation():
    x = torch.tensor([[1.0, 2.0, 3.0, 6.0]])
    mean = 3.0
    var_biased = ((1 - 3) ** 2 + (2 - 3) ** 2 + 0 + (6 - 3) ** 2) / 4  # 3.5
    std_unbiased = math.sqrt(14 / 3)
    standard = LayerNorm(4, eps=1e-12)(x)
    expected_standard = torch.tensor([[(v - mean) / math.sqrt(var_biased + 1e-12) for v in (1, 2, 3, 6)]])
    torch.testing.assert_close(standard, expected_standard, rtol=0, atol=1e-6)
    uer = UerLayerNorm(4, eps=1e-6)(x)
    expected_uer = torch.tensor([[(v - mean) / (std_unbiased + 1e-6) for v in (1, 2, 3, 6)]])
    torch.testing.assert_close(uer, expected_uer, rtol=0, atol=1e-6)
    # The two variants really differ (by the sqrt(n/(n-1)) factor), which is why the choice matters.
    assert (standard - uer).abs().max().item() > 0.1


def tiny_config(**overrides) -> ModelConfig:
    values = dict(vocab_size=50, emb_size=32, hidden_size=32, feedforward_size=64, heads_num=4, layers_num=2,
                  max_seq_length=24, dropout=0.0, tie_weights=True)
    values.update(overrides)
    return ModelConfig(**values)


def test_cpu_dropout_rate_scale_gradient_and_seeding():
    x = torch.randn(256, 1024, requires_grad=True)
    layer = Dropout(0.1)
    torch.manual_seed(5)
    out = layer(x)
    kept = out != 0
    # 262,144 draws: the dropped share is 0.1 within 5 standard deviations (0.003)
    assert abs(1 - kept.float().mean().item() - 0.1) < 0.003
    torch.testing.assert_close(out[kept], x[kept] / 0.9)
    out.backward(torch.full_like(x, 2.0))
    torch.testing.assert_close(x.grad, kept.float() * 2.0 / 0.9)
    # the same seed draws the same mask; another seed another one; columns are not correlated
    torch.manual_seed(5)
    assert torch.equal(layer(x) != 0, kept)
    assert not torch.equal(layer(x) != 0, kept)
    assert abs(kept.float().mean(0).std().item() - math.sqrt(0.09 / 256)) < 0.005
    # evaluation, p = 0 and p = 1 are those of nn.Dropout
    assert torch.equal(layer.eval()(x), x) and torch.equal(Dropout(0.0)(x), x)
    assert torch.equal(Dropout(1.0)(x), torch.zeros_like(x))
    with pytest.raises(ValueError):
        Dropout(1.5)


@pytest.mark.parametrize("batch_size, seq_length", [(3, 7), (4, 20)])  # 21 rows: separate products; 80: stacked
def test_attention_fused_projection_and_inference_kernel_match_separate_products(batch_size, seq_length):
    torch.manual_seed(0)
    attn = MultiHeadedAttention(hidden_size=16, heads_num=2, head_size=8, dropout=0.0)
    x = torch.randn(batch_size, seq_length, 16, requires_grad=True)
    mask = torch.zeros(batch_size, 1, 1, seq_length)
    mask[1, ..., 5:] = -10000.0
    # reference: three separate projections, explicit softmax attention
    q, k, v = (lin(x).view(batch_size, seq_length, 2, 8).transpose(1, 2) for lin in attn.linear_layers)
    probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(8) + mask, dim=-1)
    reference = attn.final_linear((probs @ v).transpose(1, 2).reshape(batch_size, seq_length, 16))
    ref_grads = torch.autograd.grad(reference.sum(), [x, *attn.parameters()])
    out = attn(x, mask)  # training path (gradients on)
    torch.testing.assert_close(out, reference, rtol=1e-5, atol=1e-6)
    for ours, ref in zip(torch.autograd.grad(out.sum(), [x, *attn.parameters()]), ref_grads):
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # inference path (fused kernel)
        torch.testing.assert_close(attn.eval()(x, mask), reference.detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", [{}, {"layernorm_positioning": "pre"}, {"parameter_sharing": True}])
@pytest.mark.parametrize("seq_length", [9, 24])  # 27 and 72 rows: both ways of projecting Q, K, V
def test_first_only_encoder_output_and_gradients_equal_the_full_ones(variant, seq_length):
    """A classifier reading [CLS] lets the last layer compute one position: same output, same gradients."""
    torch.manual_seed(0)
    model = build_model(tiny_config(dropout=0.0, **variant), with_target=False)
    src = torch.randint(5, 50, (3, seq_length))
    seg = torch.ones(3, seq_length, dtype=torch.long)
    seg[0, 6:] = 0  # padding
    seg[2, 4:] = 2  # a second segment
    params = list(model.parameters())
    full = model.encoder(model.embedding(src, seg), seg)[:, :1]
    first = model.encoder(model.embedding(src, seg), seg, first_only=True)
    assert first.shape == (3, 1, 32)
    torch.testing.assert_close(first, full, rtol=1e-5, atol=1e-6)
    weights = torch.randn(3, 1, 32)
    for ours, ref in zip(torch.autograd.grad((first * weights).sum(), params),
                         torch.autograd.grad((full * weights).sum(), params)):
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(model.encoder(model.embedding(src, seg), seg, first_only=True), full.detach(),
                                   rtol=1e-5, atol=1e-6)



@pytest.mark.parametrize("target,variant", [(("mlm", "sp"), {}), (("mlm",), {"parameter_sharing": True}),
                                            (("mlm", "sp"), {"factorized_embedding_parameterization": True,
                                                             "emb_size": 16}),
                                            (("mlm", "sp"), {"layernorm_positioning": "pre"}),
                                            (("mlm", "lm"), {})])
@pytest.mark.parametrize("seq_length", [9, 24])  # both ways of projecting K and V
def test_pretraining_computes_the_last_layer_at_the_positions_the_objectives_read(target, variant, seq_length):
    """MLM reads the masked positions, sentence prediction [CLS]: the last layer computes only those (when
    every objective says which it reads) and loss and gradients equal the full computation's."""
    torch.manual_seed(0)
    model = build_model(tiny_config(dropout=0.0, target=target, tie_weights=True, **variant)).train()
    src = torch.randint(5, 50, (3, seq_length))
    seg = torch.ones(3, seq_length, dtype=torch.long)
    seg[0, 6:] = 0  # padding
    seg[2, 4:] = 2  # a second segment
    positions = torch.tensor([1, 3, 4, seq_length + 2, 2 * seq_length + 1, 2 * seq_length + 5])  # row 0: three
    batch = {"src": src, "seg": seg, "mlm_positions": positions, "mlm_labels": torch.randint(5, 50, (6,)),
             "sp_labels": torch.tensor([0, 1, 1]), "lm_labels": torch.randint(5, 50, (3, seq_length))}
    if "lm" in target:
        batch.pop("lm_labels")  # an unfed objective (another dataset's) does not widen the positions
    read = model.target.read_positions(batch, seq_length)
    expected = [0, 1, 3, 4, seq_length, seq_length + 2, 2 * seq_length, 2 * seq_length + 1, 2 * seq_length + 5]
    assert read.tolist() == (expected if "sp" in target else positions.tolist())
    params = [p for p in model.parameters()]
    outputs = model(batch)
    full = model.target(model.encode(src, seg), batch)
    losses = [sum(o.loss_sum for o in out.values()) for out in (outputs, full)]
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)
    for ours, ref in zip(torch.autograd.grad(losses[0], params, allow_unused=True),
                         torch.autograd.grad(losses[1], params, allow_unused=True)):
        assert (ours is None) == (ref is None)
        if ref is not None:
            torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    hidden = model.encode(src, seg, positions=read)  # the rows nobody reads are zeros
    unread = torch.ones(3 * seq_length, dtype=torch.bool)
    unread[read] = False
    assert hidden.reshape(-1, 32)[unread].abs().sum() == 0 and hidden.reshape(-1, 32)[~unread].abs().min() > 0
    batch["lm_labels"] = torch.randint(5, 50, (3, seq_length))
    if "lm" in target:  # a fed objective that reads every position: nothing is skipped
        assert model.target.read_positions(batch, seq_length) is None


def test_checkpoint_keys_match_uer_naming():
    keys = set(build_model(tiny_config()).state_dict())
    for key in ["embedding.word.embedding.weight", "embedding.pos.embedding.weight", "embedding.seg.embedding.weight",
                "embedding.layer_norm.gamma", "embedding.layer_norm.beta",
                "encoder.transformer.0.self_attn.linear_layers.0.weight",
                "encoder.transformer.1.self_attn.final_linear.bias", "encoder.transformer.1.layer_norm_1.gamma",
                "encoder.transformer.1.feed_forward.linear_1.weight", "encoder.transformer.1.layer_norm_2.beta",
                "target.mlm.linear_1.weight", "target.mlm.layer_norm.gamma", "target.mlm.linear_2.weight",
                "target.mlm.linear_2.bias", "target.sp.linear_1.weight", "target.sp.linear_2.bias"]:
        assert key in keys, key
    shared = set(build_model(tiny_config(parameter_sharing=True, factorized_embedding_parameterization=True,
                                         emb_size=16)).state_dict())
    assert "encoder.transformer.self_attn.linear_layers.0.weight" in shared
    assert not any(k.startswith("encoder.transformer.0.") for k in shared)
    assert "encoder.linear.weight" in shared


def test_tie_weights_and_factorized_shapes():
    model = build_model(tiny_config(factorized_embedding_parameterization=True, emb_size=16))
    assert model.target.mlm.linear_2.weight is model.embedding.word.embedding.weight
    assert model.embedding.word.embedding.weight.shape == (50, 16)
    assert model.encoder.linear.weight.shape == (32, 16)
    assert model.target.mlm.linear_1.weight.shape == (16, 32)


def test_parameter_sharing_reuses_one_layer():
    shared = build_model(tiny_config(parameter_sharing=True, layers_num=6))
    plain = build_model(tiny_config(layers_num=6))
    count = lambda m: sum(p.numel() for p in {id(p): p for p in m.parameters()}.values())
    per_layer = sum(p.numel() for p in plain.encoder.transformer[0].parameters())
    assert count(plain) - count(shared) == 5 * per_layer


def test_padding_does_not_change_real_positions_and_causal_never_looks_ahead():
    torch.manual_seed(0)
    model = build_model(tiny_config()).eval()
    src = torch.randint(5, 50, (1, 10))
    seg = torch.ones(1, 10, dtype=torch.long)
    base = model.encode(src, seg)
    padded = model.encode(torch.cat([src, torch.zeros(1, 4, dtype=torch.long)], 1),
                          torch.cat([seg, torch.zeros(1, 4, dtype=torch.long)], 1))
    torch.testing.assert_close(padded[:, :10], base, atol=1e-5, rtol=1e-5)
    causal = build_model(tiny_config(mask="causal")).eval()
    changed = src.clone()
    changed[0, 6:] = 7
    a, b = causal.encode(src, seg), causal.encode(changed, seg)
    torch.testing.assert_close(a[:, :6], b[:, :6])
    assert (a[:, 6:] - b[:, 6:]).abs().max() > 1e-3


def test_config_generations_and_aliases(tmp_path):
    parser = argparse.ArgumentParser()
    opts.add_model_options(parser)
    opts.add_pretrain_target_option(parser)
    old = tmp_path / "old.json"
    old.write_text('{"emb_size": 32, "hidden_size": 32, "feedforward_size": 64, "heads_num": 4, "layers_num": 2,'
                   ' "max_seq_length": 64, "dropout": 0.1, "embedding": "word_pos_seg", "target": "bert"}')
    args = parse_args_with_config(parser, ["--config_path", str(old), "--encoder", "bert"])
    cfg = model_config_from_args(args, 100)
    assert (cfg.embedding, cfg.encoder, cfg.mask, cfg.target) == (("word", "pos", "seg"), "transformer",
                                                                   "fully_visible", ("mlm", "sp"))
    args = parse_args_with_config(parser, ["--config_path", str(old), "--encoder", "gpt", "--target", "mlm",
                                           "--dropout", "0.3"])
    cfg = model_config_from_args(args, 100)
    assert (cfg.mask, cfg.target, cfg.dropout) == ("causal", ("mlm",), 0.3)  # explicit flags beat the JSON
    # flat legacy config names resolve to the per-family folders
    args = parse_args_with_config(parser, ["--config_path", "models/bert_tiny_config.json"])
    assert model_config_from_args(args, 100).hidden_size == 128
    bad = tmp_path / "bad.json"
    bad.write_text('{"emb_size": 64, "hidden_size": 32, "heads_num": 4}')
    with pytest.raises(ConfigError, match="factorized_embedding_parameterization"):
        model_config_from_args(parse_args_with_config(parser, ["--config_path", str(bad)]), 100)
    broken = tmp_path / "broken.json"
    broken.write_text('{"emb_size": 64,\n "hidden_size": }')
    with pytest.raises(ConfigError, match="broken.json:2: invalid JSON"):
        parse_args_with_config(parser, ["--config_path", str(broken)])


def hf_to_uer(hf_state: dict, layers: int) -> dict:
    """Test-local mapping of HF BertForPreTraining keys onto ours (the converter scripts are separate work)."""
    out = {
        "embedding.word.embedding.weight": hf_state["bert.embeddings.word_embeddings.weight"],
        "embedding.pos.embedding.weight": hf_state["bert.embeddings.position_embeddings.weight"],
        # our segment rows: 0 padding, 1 first, 2 second; HF token types 0 / 1
        "embedding.seg.embedding.weight": torch.cat([torch.zeros_like(hf_state["bert.embeddings.token_type_embeddings.weight"][:1]),
                                                     hf_state["bert.embeddings.token_type_embeddings.weight"]]),
        "embedding.layer_norm.gamma": hf_state["bert.embeddings.LayerNorm.weight"],
        "embedding.layer_norm.beta": hf_state["bert.embeddings.LayerNorm.bias"],
        "target.mlm.linear_1.weight": hf_state["cls.predictions.transform.dense.weight"],
        "target.mlm.linear_1.bias": hf_state["cls.predictions.transform.dense.bias"],
        "target.mlm.layer_norm.gamma": hf_state["cls.predictions.transform.LayerNorm.weight"],
        "target.mlm.layer_norm.beta": hf_state["cls.predictions.transform.LayerNorm.bias"],
        "target.mlm.linear_2.weight": hf_state["bert.embeddings.word_embeddings.weight"],
        "target.mlm.linear_2.bias": hf_state["cls.predictions.bias"],
        "target.sp.linear_1.weight": hf_state["bert.pooler.dense.weight"],
        "target.sp.linear_1.bias": hf_state["bert.pooler.dense.bias"],
        "target.sp.linear_2.weight": hf_state["cls.seq_relationship.weight"],
        "target.sp.linear_2.bias": hf_state["cls.seq_relationship.bias"],
    }
    names = {"self_attn.linear_layers.0": "attention.self.query", "self_attn.linear_layers.1": "attention.self.key",
             "self_attn.linear_layers.2": "attention.self.value", "self_attn.final_linear": "attention.output.dense",
             "feed_forward.linear_1": "intermediate.dense", "feed_forward.linear_2": "output.dense"}
    for i in range(layers):
        for ours, theirs in names.items():
            for p in ("weight", "bias"):
                out[f"encoder.transformer.{i}.{ours}.{p}"] = hf_state[f"bert.encoder.layer.{i}.{theirs}.{p}"]
        for ours, theirs in (("layer_norm_1", "attention.output.LayerNorm"), ("layer_norm_2", "output.LayerNorm")):
            out[f"encoder.transformer.{i}.{ours}.gamma"] = hf_state[f"bert.encoder.layer.{i}.{theirs}.weight"]
            out[f"encoder.transformer.{i}.{ours}.beta"] = hf_state[f"bert.encoder.layer.{i}.{theirs}.bias"]
    return out


def test_matches_huggingface_bert_for_pretraining():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hf_cfg = transformers.BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=24, hidden_dropout_prob=0.0,
                                     attention_probs_dropout_prob=0.0)
    hf = transformers.BertForPreTraining(hf_cfg).eval()
    with torch.no_grad():  # random non-trivial layer norms and biases so the mapping is really exercised
        for name, p in hf.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    ours = build_model(tiny_config()).eval()
    ours.load_state_dict(hf_to_uer(hf.state_dict(), 2), strict=True)  # raises on a missing or unexpected key
    src = torch.randint(1, 50, (3, 12))
    type_ids = torch.zeros(3, 12, dtype=torch.long)
    type_ids[:, 7:] = 1
    attention = torch.ones(3, 12, dtype=torch.long)
    attention[1, 9:] = 0
    attention[2, 5:] = 0
    seg = (type_ids + 1) * attention
    with torch.no_grad():
        ref = hf(input_ids=src, token_type_ids=type_ids, attention_mask=attention, output_hidden_states=True)
        hidden = ours.encode(src, seg)
        real = attention.bool()
        torch.testing.assert_close(hidden[real], ref.hidden_states[-1][real], atol=1e-5, rtol=1e-5)
        positions = torch.nonzero(real.reshape(-1)).squeeze(1)
        mlm = ours.target.mlm.logits(hidden, positions)
        torch.testing.assert_close(mlm, ref.prediction_logits.reshape(-1, 50)[positions], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(ours.target.sp.logits(hidden), ref.seq_relationship_logits, atol=1e-5, rtol=1e-5)
