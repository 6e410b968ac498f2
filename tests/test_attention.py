"""The fused attention (F.scaled_dot_product_attention) and the explicit reference path compute the same
function: every encoder with attention, every mask (fully visible, padding, causal, causal + padding, cached
decoding), both layer norm variants, outputs and gradients, to 1e-5 in float32. And which path ``auto`` takes."""
from __future__ import annotations

import pytest
import torch

from uer.generation import LmGenerator
from uer.layers.multi_headed_attn import attention, attention_path
from uer.model_builder import build_model, validate_model_config
from uer.model_config import ModelConfig

VOCAB = 50
# every encoder that has attention, in every mask mode it offers
ENCODERS = [("transformer", "fully_visible", {}), ("transformer", "causal", {}),
            ("transformer", "causal", {"layernorm_positioning": "pre"}),
            ("transformer", "fully_visible", {"parameter_sharing": True}),
            ("attn", "fully_visible", {}), ("attn", "causal", {})]


def model_of(encoder: str, mask: str, layernorm: str, **extra) -> torch.nn.Module:
    cfg = ModelConfig(vocab_size=VOCAB, emb_size=32, hidden_size=32, feedforward_size=64, heads_num=4, layers_num=2,
                      max_seq_length=32, dropout=0.0, embedding=("word", "pos", "seg"), encoder=encoder, mask=mask,
                      layernorm_variant=layernorm, **{"target": ("mlm",), **extra})
    torch.manual_seed(0)
    return build_model(validate_model_config(cfg)).train()


def outputs_and_grads(model: torch.nn.Module, src: torch.Tensor, seg: torch.Tensor, path: str):
    model.zero_grad(set_to_none=True)
    with attention_path(path):
        hidden = model.encode(src, seg)
    (hidden * torch.linspace(-1, 1, hidden.shape[-1])).sum().backward()
    return hidden.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("layernorm", ["standard", "uer"])
@pytest.mark.parametrize("padded", [False, True], ids=["no_padding", "padding"])
@pytest.mark.parametrize("encoder,mask,extra", ENCODERS, ids=lambda v: v if isinstance(v, str) else "")
def test_fused_attention_equals_the_reference_path(encoder, mask, extra, padded, layernorm):
    model = model_of(encoder, mask, layernorm, **extra)
    torch.manual_seed(1)
    src = torch.randint(5, VOCAB, (3, 20))
    seg = torch.ones_like(src)
    if padded:
        seg[1, 13:] = 0
        seg[2, 6:] = 0
        src = src * seg
    fused, fused_grads = outputs_and_grads(model, src, seg, "fused")
    reference, reference_grads = outputs_and_grads(model, src, seg, "reference")
    scale = reference.abs().max()  # attn (no residual, no norm) has small outputs: compare relative to them
    torch.testing.assert_close(fused / scale, reference / scale, atol=1e-5, rtol=1e-5)
    assert fused_grads.keys() == reference_grads.keys() and len(fused_grads) > 10
    for name, grad in reference_grads.items():
        torch.testing.assert_close(fused_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)
    if padded and mask == "fully_visible":  # the mask is in play: unmasked padding would change real positions
        with attention_path("fused"):
            unmasked = model.encode(src, torch.ones_like(seg)).detach()
        assert (unmasked[2, :6] - fused[2, :6]).abs().max() > 1e-3 * scale


@pytest.mark.parametrize("path", ["fused", "reference"])
def test_cached_decoding_equals_the_full_run_on_both_paths(path):
    # one new query against all cached keys (no mask), then 4 at once against 8 keys (a mask aligned to the end)
    model = model_of("transformer", "causal", "standard", target=("lm",)).eval()
    decoder = LmGenerator(model, use_cache=True)
    src = torch.randint(5, VOCAB, (1, 12))
    with torch.no_grad(), attention_path(path):
        full = model.encode(src, torch.ones_like(src))
        cache = model.encoder.new_cache()
        parts = [decoder._hidden(src[:, :4], cache, 4), decoder._hidden(src[:, :8], cache, 4)]
        parts += [decoder._hidden(src[:, :n], cache, 1) for n in range(9, 13)]
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=1e-5)


def test_auto_takes_sdpa_in_float32_and_the_explicit_ops_in_bfloat16_on_cpu():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 9, 8) for _ in range(3))
    mask = torch.zeros(2, 1, 1, 9)
    mask[1, ..., 6:] = -10000.0
    with attention_path("fused"):
        fused = attention(q, k, v, mask, 0.0)
    with attention_path("reference"):
        reference = attention(q, k, v, mask, 0.0)
    assert torch.equal(attention(q, k, v, mask, 0.0), fused) and not torch.equal(fused, reference)
    torch.testing.assert_close(fused, reference, atol=1e-6, rtol=1e-5)
    low = [t.bfloat16() for t in (q, k, v)]
    with attention_path("reference"):
        low_reference = attention(*low, mask, 0.0)
    with attention_path("fused"):
        low_fused = attention(*low, mask, 0.0)
    assert torch.equal(attention(*low, mask, 0.0), low_reference) and not torch.equal(low_fused, low_reference)
    with pytest.raises(ValueError, match="attention path"):
        with attention_path("flash"):
            pass


def test_float32_training_with_dropout_takes_the_explicit_ops_and_bfloat16_softmax_is_float32_rounded():
    """On CPU, float32 attention with dropout takes the explicit ops (their cheaper dropout draw); and the
    explicit path's bfloat16 softmax, which keeps no float32 copy, gives exactly float32's softmax rounded."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 9, 8) for _ in range(3))
    mask = torch.zeros(2, 1, 1, 9)
    mask[1, ..., 6:] = -10000.0
    runs = {}
    for path in ("auto", "reference", "fused"):
        torch.manual_seed(1)
        with attention_path(path):
            runs[path] = attention(q, k, v, mask, 0.5)
    assert torch.equal(runs["auto"], runs["reference"]) and not torch.equal(runs["auto"], runs["fused"])
    scores = (torch.randn(3, 4, 16, 16) * 6).bfloat16()
    torch.testing.assert_close(torch.softmax(scores, -1), torch.softmax(scores.float(), -1).bfloat16(), atol=0, rtol=0)
    low = [t.bfloat16() for t in (q, k, v)]
    with attention_path("reference"):
        got = attention(*low, mask, 0.0)
    expected = torch.matmul(torch.softmax(low[0].float() @ low[1].float().transpose(-1, -2) / 8 ** 0.5 + mask, -1),
                            low[2].float())
    torch.testing.assert_close(got.float(), expected, atol=2e-2, rtol=2e-2)
