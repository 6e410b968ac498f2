"""Every encoder honours padding and, where causal, never looks ahead; UER-py key names; GPT-2 numerics;
key/value-cached generation equals uncached generation."""
from __future__ import annotations

import argparse
import math

import pytest
import torch

from uer import opts
from uer.encoders import str2encoder
from uer.generation import LmGenerator, SamplingConfig, choose, detokenize, filter_logits
from uer.layers.sequence import reverse_padded
from uer.config import ConfigError, ModelConfig, model_config_from_args, parse_args_with_config
from uer.model_builder import build_model, validate_model_config

VOCAB = 60
# (encoder, mask, extra config) for every registered encoder; the attention ones in both mask modes.
CASES = [(name, "fully_visible", {}) for name in sorted(str2encoder)] + [
    ("transformer", "causal", {}), ("transformer", "causal", {"layernorm_positioning": "pre"}),
    ("attn", "causal", {}), ("synt", "causal", {}), ("synt", "fully_visible", {"synt_type": "random"}),
    ("lstm", "fully_visible", {"bidirectional": True}), ("gru", "fully_visible", {"bidirectional": True}),
]


def config(encoder: str, mask: str = "fully_visible", **extra) -> ModelConfig:
    values = dict(vocab_size=VOCAB, emb_size=16, hidden_size=16, feedforward_size=32, heads_num=2, layers_num=2,
                  max_seq_length=24, dropout=0.0, embedding=("word", "pos"), encoder=encoder, mask=mask,
                  target=("lm",), kernel_size=3, block_size=1)
    values.update(extra)
    return validate_model_config(ModelConfig(**values))


def encode(model, src: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    seg = (torch.arange(src.shape[1])[None, :] < torch.tensor(lengths)[:, None]).long()
    return model.encode(src * seg, seg)


@pytest.mark.parametrize("encoder,mask,extra", CASES, ids=lambda v: v if isinstance(v, str) else "")
def test_padding_never_changes_real_positions(encoder, mask, extra):
    torch.manual_seed(0)
    model = build_model(config(encoder, mask, **extra)).eval()
    src = torch.randint(5, VOCAB, (2, 10))
    with torch.no_grad():
        alone = [encode(model, src[i:i + 1, :n], [n])[0] for i, n in enumerate((10, 6))]
        # Row 1 is padded inside the batch, and the whole batch gets 5 more padding columns.
        batch = encode(model, torch.cat([src, torch.zeros(2, 5, dtype=torch.long)], 1), [10, 6])
    torch.testing.assert_close(batch[0, :10], alone[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batch[1, :6], alone[1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("encoder,mask,extra", [c for c in CASES if build_model(config(c[0], c[1], **c[2])).encoder.causal],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_causal_encoders_never_look_ahead(encoder, mask, extra):
    torch.manual_seed(0)
    model = build_model(config(encoder, mask, **extra)).eval()
    src = torch.randint(5, VOCAB, (2, 12))
    changed = src.clone()
    changed[:, 7:] = torch.randint(5, VOCAB, (2, 5))
    with torch.no_grad():
        a, b = encode(model, src, [12, 12]), encode(model, changed, [12, 12])
    scale = a.abs().max()  # attn has no residual or norm: its outputs are tiny, so compare relative to them
    torch.testing.assert_close(a[:, :7] / scale, b[:, :7] / scale, atol=1e-6, rtol=1e-6)
    assert (a[:, 7:] - b[:, 7:]).abs().max() > 1e-3 * scale  # the later positions do see the change


def test_which_encoders_are_causal():
    causal = {name for name in str2encoder if build_model(config(name)).encoder.causal}
    assert causal == {"rnn", "lstm", "gru", "cnn", "gatedcnn", "rcnn", "crnn"}
    assert build_model(config("transformer", "causal")).encoder.causal
    assert not build_model(config("lstm", bidirectional=True)).encoder.causal


def test_bilstm_halves_are_left_to_right_and_right_to_left_but_lstm_bidirectional_mixes_them():
    """The docs' point: ELMo needs two separate stacks; torch's 2-layer bidirectional LSTM leaks the future."""
    torch.manual_seed(0)
    src = torch.randint(5, VOCAB, (1, 12))
    changed = src.clone()
    changed[0, 7:] = (changed[0, 7:] + 1 - 5) % (VOCAB - 5) + 5
    early = src.clone()
    early[0, :3] = (early[0, :3] + 1 - 5) % (VOCAB - 5) + 5
    for name in ("bilstm", "bigru", "birnn"):
        model = build_model(config(name)).eval()
        with torch.no_grad():
            a, b, c = (encode(model, x, [12]) for x in (src, changed, early))
        torch.testing.assert_close(a[:, :7, :8], b[:, :7, :8], atol=1e-6, rtol=1e-6)  # forward half: past only
        torch.testing.assert_close(a[:, 3:, 8:], c[:, 3:, 8:], atol=1e-6, rtol=1e-6)  # backward half: future only
    mixed = build_model(config("lstm", bidirectional=True)).eval()
    with torch.no_grad():
        a, b = encode(mixed, src, [12]), encode(mixed, changed, [12])
    assert (a[:, :7, :8] - b[:, :7, :8]).abs().max() > 1e-5


def test_reverse_padded_keeps_padding_in_place():
    x = torch.arange(10.0).view(2, 5, 1)
    out = reverse_padded(x, torch.tensor([3, 5]))
    assert out[..., 0].tolist() == [[2, 1, 0, 3, 4], [9, 8, 7, 6, 5]]
    assert torch.equal(reverse_padded(out, torch.tensor([3, 5])), x)


def test_checkpoint_keys_match_uer_naming():
    def keys(encoder, **extra):
        return {k: tuple(v.shape) for k, v in build_model(config(encoder, **extra)).state_dict().items()}

    assert {"encoder.rnn.weight_ih_l0", "encoder.rnn.weight_hh_l1"} <= set(keys("lstm"))
    assert "encoder.rnn.weight_hh_l0_reverse" in keys("gru", bidirectional=True)
    bi = keys("bilstm")
    assert bi["encoder.rnn_forward.weight_hh_l0"] == (32, 8) and "encoder.rnn_backward.weight_ih_l1" in bi
    g = keys("gatedcnn", emb_size=12, layers_num=3, kernel_size=4)
    assert g["encoder.conv_1.weight"] == (16, 1, 4, 12) and g["encoder.gate_1.weight"] == (16, 1, 4, 12)
    assert g["encoder.conv.1.weight"] == (16, 16, 4, 1) and g["encoder.gate_b.1"] == (1, 16, 1, 1)
    assert {"encoder.conv_b1", "encoder.gate_b1", "encoder.conv_b.0", "encoder.gate.0.bias"} <= set(g)
    assert "encoder.conv.2.weight" not in g  # layers_num gated layers in all, as UER-py
    c = keys("cnn", layers_num=2)
    assert c["encoder.conv_1.weight"] == (16, 1, 3, 16) and "encoder.conv.1.weight" in c
    assert {"encoder.rnn.weight_ih_l0", "encoder.conv_1.weight", "encoder.conv.0.weight"} <= set(keys("rcnn"))
    assert {"encoder.rnn.weight_ih_l0", "encoder.conv_1.weight", "encoder.conv.0.weight"} <= set(keys("crnn"))
    assert "encoder.self_attn.1.linear_layers.2.weight" in keys("attn")
    dense, rand = keys("synt"), keys("synt", synt_type="random")
    assert dense["encoder.synthesizer.0.att.F_linear_2.weight"] == (24, 24)
    assert rand["encoder.synthesizer.1.att.R"] == (24, 24) and "encoder.synthesizer.1.layer_norm_2.gamma" in rand
    pre = keys("transformer", mask="causal", layernorm_positioning="pre")
    assert "encoder.layer_norm.gamma" in pre and "encoder.layer_norm.gamma" not in keys("transformer")
    assert keys("lstm")["target.lm.output_layer.weight"] == (VOCAB, 16)
    assert "target.lm.output_layer.bias" in keys("lstm", has_lmtarget_bias=True)
    assert keys("bilstm", target=("bilm",))["target.bilm.output_layer.weight"] == (VOCAB, 8)
    cls = keys("transformer", target=("cls",), labels_num=5)
    assert cls["target.cls.linear_2.weight"] == (5, 16)
    assert not any("sinusoidal" in k for k in keys("transformer", embedding=("word", "sinusoidalpos")))


def test_tied_lm_output_and_sinusoidal_positions():
    model = build_model(config("lstm", embedding=("word",), tie_weights=True))
    assert model.target.lm.output_layer.weight is model.embedding.word.embedding.weight
    table = build_model(config("transformer", embedding=("word", "sinusoidalpos"))).embedding.sinusoidalpos.table
    assert table.shape == (24, 16)
    assert table[3, 0].item() == pytest.approx(math.sin(3)) and table[3, 1].item() == pytest.approx(math.cos(3))
    assert table[5, 4].item() == pytest.approx(math.sin(5 / 10000 ** (4 / 16)), abs=1e-6)


def test_gpt2_pre_layernorm_matches_huggingface():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=VOCAB, n_positions=24, n_embd=16, n_layer=2, n_head=2, activation_function="gelu_new",
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5)).eval()
    ours = build_model(config("transformer", "causal", layernorm_positioning="pre", hidden_act="gelu_fast",
                              feedforward_size=64, remove_embedding_layernorm=True, layernorm_eps=1e-5,
                              tie_weights=True)).eval()
    hf_state = hf.state_dict()
    state = {"embedding.word.embedding.weight": hf_state["transformer.wte.weight"],
             "embedding.pos.embedding.weight": hf_state["transformer.wpe.weight"],
             "encoder.layer_norm.gamma": hf_state["transformer.ln_f.weight"],
             "encoder.layer_norm.beta": hf_state["transformer.ln_f.bias"],
             "target.lm.output_layer.weight": hf_state["lm_head.weight"]}
    for i in range(2):
        h, o = f"transformer.h.{i}.", f"encoder.transformer.{i}."
        for j, w in enumerate(hf_state[h + "attn.c_attn.weight"].t().chunk(3)):
            state[f"{o}self_attn.linear_layers.{j}.weight"] = w
        for j, b in enumerate(hf_state[h + "attn.c_attn.bias"].chunk(3)):
            state[f"{o}self_attn.linear_layers.{j}.bias"] = b
        for ours_name, theirs in (("self_attn.final_linear", "attn.c_proj"), ("feed_forward.linear_1", "mlp.c_fc"),
                                  ("feed_forward.linear_2", "mlp.c_proj")):
            state[o + ours_name + ".weight"] = hf_state[h + theirs + ".weight"].t()
            state[o + ours_name + ".bias"] = hf_state[h + theirs + ".bias"]
        for n in (1, 2):
            state[f"{o}layer_norm_{n}.gamma"] = hf_state[f"{h}ln_{n}.weight"]
            state[f"{o}layer_norm_{n}.beta"] = hf_state[f"{h}ln_{n}.bias"]
    ours.load_state_dict(state, strict=True)  # raises on a missing or unexpected key
    src = torch.randint(0, VOCAB, (2, 11))
    with torch.no_grad():
        expected = hf(input_ids=src).logits
        got = ours.target.lm.logits(ours.encode(src, torch.ones_like(src)))
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("extra", [{}, {"layernorm_positioning": "pre"}, {"parameter_sharing": True}],
                         ids=["post_ln", "pre_ln", "shared_layers"])
def test_cached_generation_equals_uncached(extra):
    torch.manual_seed(1)
    model = build_model(config("transformer", "causal", max_seq_length=40, **extra)).eval()
    with torch.no_grad():  # untrained weights give flat distributions: sharpen them so greedy choices are clear-cut
        model.target.lm.output_layer.weight.mul_(30)
    prompt = [2, 17, 33, 8]
    greedy = SamplingConfig(top_k=1)
    cached, plain = LmGenerator(model, use_cache=True), LmGenerator(model, use_cache=False)
    assert cached.cached and not plain.cached
    a = cached.generate(prompt, 30, greedy)
    b = plain.generate(prompt, 30, greedy)
    assert a == b and len(a) == 30 and a[:4] == prompt
    # The cached hidden states are the full re-run's, position by position.
    src = torch.tensor([a])
    with torch.no_grad():
        full = model.encode(src, torch.ones_like(src))
        cache = model.encoder.new_cache()
        steps = [cached._hidden(src[:, :4], cache, 4)] + [cached._hidden(src[:, :n], cache, 1) for n in range(5, 31)]
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)
    # Sampling with the same seed is reproducible, and stops at the stop id.
    sample = SamplingConfig(top_k=10, top_p=0.9, temperature=0.8)
    s1 = cached.generate(prompt, 30, sample, torch.Generator().manual_seed(3))
    s2 = plain.generate(prompt, 30, sample, torch.Generator().manual_seed(3))
    assert s1 == s2
    stop = a[6]
    assert cached.generate(prompt, 30, greedy, stop_id=stop) == a[:a.index(stop, 4) + 1]


def test_generation_refuses_non_causal_encoders():
    with pytest.raises(ValueError, match="not causal"):
        LmGenerator(build_model(config("transformer", "fully_visible")))
    with pytest.raises(ValueError, match="lm target"):
        LmGenerator(build_model(config("transformer", "causal", target=("cls",))))


def nucleus_reference(probs: list[float], top_p: float) -> set[int]:
    """Brute force: the most likely tokens, in order, until their probability reaches top_p."""
    kept, total = set(), 0.0
    for i in sorted(range(len(probs)), key=lambda i: -probs[i]):
        if total >= top_p:
            break
        kept.add(i)
        total += probs[i]
    return kept


@pytest.mark.parametrize("seed", range(5))
def test_sampling_filters_keep_the_top_k_and_nucleus_sets(seed):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(12, generator=generator, dtype=torch.float64) * 2
    values = logits.tolist()
    kept = lambda filtered: set(torch.nonzero(~torch.isinf(filtered)).flatten().tolist())  # noqa: E731
    for k in (1, 3, 11):
        assert kept(filter_logits(logits, k, 0.0)) == set(sorted(range(12), key=lambda i: -values[i])[:k])
    probs = torch.softmax(logits, 0).tolist()
    for top_p in (0.3, 0.6, 0.9):
        assert kept(filter_logits(logits, 0, top_p)) == nucleus_reference(probs, top_p)
    # Both: the nucleus of the distribution renormalised over the top 5.
    top5 = sorted(range(12), key=lambda i: -values[i])[:5]
    renormalised = [math.exp(values[i]) if i in top5 else 0.0 for i in range(12)]
    renormalised = [v / sum(renormalised) for v in renormalised]
    assert kept(filter_logits(logits, 5, 0.7)) == nucleus_reference(renormalised, 0.7)
    assert kept(filter_logits(logits, 0, 0.0)) == set(range(12))  # 0 means off


def test_sampling_draws_from_the_filtered_tempered_distribution():
    logits = torch.tensor([2.0, 1.5, 0.0, -1.0, 1.0])
    sampling = SamplingConfig(top_k=3, top_p=0.0, temperature=0.5)
    generator = torch.Generator().manual_seed(0)
    draws = torch.tensor([choose(logits, sampling, generator) for _ in range(6000)])
    frequencies = torch.bincount(draws, minlength=5).double() / len(draws)
    expected = torch.zeros(5, dtype=torch.float64)
    expected[[0, 1, 4]] = torch.softmax(logits[[0, 1, 4]].double() / 0.5, 0)  # ~[0.63, 0.23, 0.09] at T = 0.5
    assert frequencies[2] == frequencies[3] == 0
    torch.testing.assert_close(frequencies, expected, atol=0.02, rtol=0)
    assert choose(logits, SamplingConfig(top_k=1), None) == 0  # greedy
    with pytest.raises(ValueError):
        SamplingConfig(temperature=0.0)
    assert detokenize(["我", "们", "play", "##ing", "the", "game", "。"]) == "我们playing the game。"


def test_configs_of_the_docs_load_and_build(tmp_path):
    parser = argparse.ArgumentParser()
    opts.add_model_options(parser)
    opts.add_pretrain_target_option(parser)
    opts.add_pretrain_encoder_options(parser)
    expected = {
        "models/rnn_config.json": ("lstm", 512, 512, ("lm",)),
        "models/birnn_config.json": ("bilstm", 512, 1536, ("bilm",)),
        "models/gatedcnn_9_config.json": ("gatedcnn", 128, 807, ("lm",)),
        "models/gatedcnn_13_config.json": ("gatedcnn", 128, 1268, ("lm",)),
        "models/rnn/gru_config.json": ("gru", 512, 512, ("lm",)),
        "models/gpt2_config.json": ("transformer", 768, 768, ("lm",)),
        "models/gpt2_medium_config.json": ("transformer", 1024, 1024, ("lm",)),
        "models/gpt2/distil_config.json": ("transformer", 768, 768, ("lm",)),
        "models/gpt2/large_config.json": ("transformer", 1280, 1280, ("lm",)),
        "models/gpt2/xlarge_config.json": ("transformer", 1600, 1600, ("lm",)),
    }
    for path, (encoder, emb, hidden, target) in expected.items():
        cfg = model_config_from_args(parse_args_with_config(parser, ["--config_path", path]), 21128)
        assert (cfg.encoder, cfg.emb_size, cfg.hidden_size, cfg.target) == (encoder, emb, hidden, target), path
        with torch.device("meta"):  # shapes only: no memory, no time
            build_model(cfg)
    gpt2 = model_config_from_args(parse_args_with_config(parser, ["--config_path", "models/gpt2/config.json"]), 50257)
    assert (gpt2.mask, gpt2.layernorm_positioning, gpt2.hidden_act, gpt2.tie_weights) == ("causal", "pre", "gelu_fast", True)
    gcnn = model_config_from_args(parse_args_with_config(parser, ["--config_path", "models/gatedcnn_9_config.json"]), 9)
    assert (gcnn.kernel_size, gcnn.block_size, gcnn.layers_num) == (4, 2, 9)
    # The docs' flags beat the JSON: GPT from the BERT config, LSTM/GRU from rnn_config, ELMo from birnn_config.
    gpt = model_config_from_args(parse_args_with_config(parser, ["--config_path", "models/bert_base_config.json",
                                                                 "--encoder", "gpt", "--target", "lm"]), 100)
    assert (gpt.encoder, gpt.mask, gpt.target) == ("transformer", "causal", ("lm",))
    gru = model_config_from_args(parse_args_with_config(parser, ["--config_path", "models/rnn_config.json",
                                                                 "--embedding", "word", "--encoder", "gru",
                                                                 "--target", "lm", "--bidirectional"]), 100)
    assert (gru.encoder, gru.embedding, gru.bidirectional) == ("gru", ("word",), True)
    odd = tmp_path / "odd.json"
    odd.write_text('{"emb_size": 8, "hidden_size": 7, "encoder": "bilstm"}')
    with pytest.raises(ConfigError, match="make it even"):
        model_config_from_args(parse_args_with_config(parser, ["--config_path", str(odd)]), 100)
    # RNN/CNN encoders may have emb_size != hidden_size and any heads_num; attention encoders may not.
    with pytest.raises(ConfigError, match="emb_size"):
        config("attn", emb_size=8)
    config("gatedcnn", emb_size=8, hidden_size=13)
