"""Model files: UER key naming, bit-identical reload, refusing pickles, no silently ignored keys."""
from __future__ import annotations

import logging
import os
import pickle

import pytest
import torch

from uer.model_builder import build_model
from uer.model_loader import ModelLoadError, load_model_weights, load_state_dict
from uer.model_saver import save_model
from uer.model_config import ModelConfig

CFG = ModelConfig(vocab_size=30, emb_size=16, hidden_size=16, feedforward_size=32, heads_num=2, layers_num=1,
                  max_seq_length=8, dropout=0.0)


def hand_built_state_dict(h: int = 16, v: int = 30, ff: int = 32, seq: int = 8) -> dict:
    """A state dict keyed as design.md §3, written out by hand (not taken from our own model)."""
    g = torch.Generator().manual_seed(3)
    r = lambda *shape: torch.randn(*shape, generator=g)
    sd = {"embedding.word.embedding.weight": r(v, h), "embedding.pos.embedding.weight": r(seq, h),
          "embedding.seg.embedding.weight": r(3, h), "embedding.layer_norm.gamma": r(h), "embedding.layer_norm.beta": r(h)}
    p = "encoder.transformer.0."
    for i in range(3):
        sd[f"{p}self_attn.linear_layers.{i}.weight"], sd[f"{p}self_attn.linear_layers.{i}.bias"] = r(h, h), r(h)
    sd[f"{p}self_attn.final_linear.weight"], sd[f"{p}self_attn.final_linear.bias"] = r(h, h), r(h)
    sd[f"{p}layer_norm_1.gamma"], sd[f"{p}layer_norm_1.beta"] = r(h), r(h)
    sd[f"{p}feed_forward.linear_1.weight"], sd[f"{p}feed_forward.linear_1.bias"] = r(ff, h), r(ff)
    sd[f"{p}feed_forward.linear_2.weight"], sd[f"{p}feed_forward.linear_2.bias"] = r(h, ff), r(h)
    sd[f"{p}layer_norm_2.gamma"], sd[f"{p}layer_norm_2.beta"] = r(h), r(h)
    sd["target.mlm.linear_1.weight"], sd["target.mlm.linear_1.bias"] = r(h, h), r(h)
    sd["target.mlm.layer_norm.gamma"], sd["target.mlm.layer_norm.beta"] = r(h), r(h)
    sd["target.mlm.linear_2.weight"], sd["target.mlm.linear_2.bias"] = r(v, h), r(v)
    sd["target.sp.linear_1.weight"], sd["target.sp.linear_1.bias"] = r(h, h), r(h)
    sd["target.sp.linear_2.weight"], sd["target.sp.linear_2.bias"] = r(2, h), r(2)
    return sd


def test_hand_built_state_dict_loads_exactly(tmp_path):
    sd = hand_built_state_dict()
    path = tmp_path / "hand.bin"
    torch.save(sd, path)
    model = build_model(CFG)
    report = load_model_weights(model, path)
    assert report == {"missing": [], "unexpected": []}
    for key, value in model.state_dict().items():
        assert torch.equal(value, sd[key]), key


@pytest.mark.parametrize("suffix", [".bin", ".safetensors"])
def test_save_then_reload_is_bit_identical(tmp_path, suffix):
    torch.manual_seed(1)
    model = build_model(ModelConfig(**{**CFG.__dict__, "tie_weights": True}))
    path = tmp_path / f"model{suffix}"
    save_model(model, path)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # atomic write left no temp file
    reloaded = load_state_dict(path)
    original = model.state_dict()
    assert set(reloaded) == set(original)
    for key in original:
        assert torch.equal(reloaded[key], original[key]), key
    fresh = build_model(ModelConfig(**{**CFG.__dict__, "tie_weights": True}))
    load_model_weights(fresh, path)
    src = torch.randint(1, 30, (2, 8))
    seg = torch.ones_like(src)
    torch.testing.assert_close(fresh.eval().encode(src, seg), model.eval().encode(src, seg), rtol=0, atol=0)


class NotATensor:
    def __reduce__(self):
        return (os.getcwd, ())


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.bin"
    with open(path, "wb") as handle:
        pickle.dump({"embedding.word.embedding.weight": NotATensor()}, handle)
    with pytest.raises(ModelLoadError, match="refused"):
        load_state_dict(path)
    torch.save({"step": 3}, tmp_path / "notweights.bin")
    with pytest.raises(ModelLoadError, match="expected a state dict"):
        load_state_dict(tmp_path / "notweights.bin")


def test_legacy_2020_names_load(tmp_path):
    sd = hand_built_state_dict()
    legacy = {}
    for key, value in sd.items():
        key = (key.replace("embedding.word.embedding.", "embedding.word_embedding.")
               .replace("embedding.pos.embedding.", "embedding.position_embedding.")
               .replace("embedding.seg.embedding.", "embedding.segment_embedding.")
               .replace("target.mlm.linear_", "target.mlm_linear_").replace("target.mlm.layer_norm.", "target.layer_norm.")
               .replace("target.sp.linear_", "target.nsp_linear_"))
        legacy[key] = value
    torch.save(legacy, tmp_path / "legacy.bin")
    model = build_model(CFG)
    assert load_model_weights(model, tmp_path / "legacy.bin") == {"missing": [], "unexpected": []}
    assert torch.equal(model.target.sp.linear_2.weight, sd["target.sp.linear_2.weight"])


def test_key_mismatches_are_reported_or_refused(tmp_path, caplog):
    sd = hand_built_state_dict()
    # Targets may differ (a BERT model loaded for MLM-only training): reported, not silent.
    mlm_only = ModelConfig(**{**CFG.__dict__, "target": ("mlm",)})
    torch.save(sd, tmp_path / "full.bin")
    with caplog.at_level(logging.WARNING):
        report = load_model_weights(build_model(mlm_only), tmp_path / "full.bin")
    assert sorted(report["unexpected"]) == sorted(k for k in sd if k.startswith("target.sp."))
    assert "not used by this model" in caplog.text
    # Encoder keys that do not match are an error, naming the keys.
    renamed = {k.replace("encoder.transformer.0.", "encoder.layers.0."): v for k, v in sd.items()}
    torch.save(renamed, tmp_path / "renamed.bin")
    with pytest.raises(ModelLoadError, match="encoder.transformer.0"):
        load_model_weights(build_model(CFG), tmp_path / "renamed.bin")
    # A wrong vocabulary gives a shape error naming the key, both shapes and the likely cause.
    with pytest.raises(ModelLoadError, match=r"embedding.word.embedding.weight.*\(30, 16\).*\(40, 16\).*vocabulary"):
        load_model_weights(build_model(ModelConfig(**{**CFG.__dict__, "vocab_size": 40})), tmp_path / "full.bin")
