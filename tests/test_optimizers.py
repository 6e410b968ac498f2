"""build_optimizer: which parameters get weight decay, and tied weights counted (and decayed) once."""
from __future__ import annotations

import torch

from uer.model_builder import build_model
from uer.model_config import ModelConfig
from uer.training.optimizers import build_optimizer


def tied_model() -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=30, emb_size=16, hidden_size=16, feedforward_size=32, heads_num=2, layers_num=1,
                      max_seq_length=16, target=("mlm", "sp"), tie_weights=True)
    return build_model(cfg)


def test_weight_decay_groups_and_tied_weights_once():
    model = tied_model()
    word = model.embedding.word.embedding.weight
    assert model.target.mlm.linear_2.weight is word  # tied: two names, one tensor
    optimizer = build_optimizer(model, learning_rate=0.1, weight_decay=0.5)
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.5 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}  # named_parameters lists a tied tensor once
    decayed = sorted(names[id(p)] for p in decay["params"])
    assert sorted(n for n, p in model.named_parameters() if p.dim() >= 2) == decayed
    assert "embedding.word.embedding.weight" in decayed and "encoder.transformer.0.self_attn.linear_layers.0.weight" in decayed
    assert all(n.endswith(("bias", "gamma", "beta")) for n in (names[id(p)] for p in no_decay["params"]))
    every = [p for g in optimizer.param_groups for p in g["params"]]
    assert len(every) == len({id(p) for p in every}) == len(list(model.parameters()))
    assert sum(p.numel() for p in every) == sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def test_one_step_decays_matrices_once_and_leaves_vectors():
    """With zero gradients Adam's update is 0, so one step is the decoupled decay alone: p * (1 - lr * wd)."""
    model = tied_model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = build_optimizer(model, learning_rate=0.1, weight_decay=0.5)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    for name, p in model.named_parameters():
        factor = 0.95 if p.dim() >= 2 else 1.0  # the tied matrix too: 0.95, not 0.95 ** 2
        torch.testing.assert_close(p.detach(), before[name] * factor, msg=name)
