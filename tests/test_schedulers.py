"""--scheduler formulas at chosen steps, and --optimizer adafactor against torch's Adafactor and a hand computation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from uer.training.optimizers import Adafactor, build_optimizer
from uer.training.schedulers import adam_bias_correction_undone, build_scheduler, schedule_factor, str2scheduler

T, WARMUP = 100, 0.1  # 10 warm-up steps


def lrs(name: str, steps: list[int], **kw) -> list[float]:
    """Learning rates (peak 1.0) at ``steps`` as torch's LambdaLR gives them to the optimiser."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = build_scheduler(optimizer, schedule_factor(name, T, WARMUP, learning_rate=1.0, **kw))
    out = {}
    for step in range(max(steps) + 1):
        out[step] = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
    return [out[s] for s in steps]


@pytest.mark.parametrize("name, expected", [
    # steps:                 0     9     10           55                          99         100
    ("linear", [0.1, 1.0, 1.0, 45 / 90, 1 / 90, 0.0]),
    ("cosine", [0.1, 1.0, 1.0, 0.5 * (1 + math.cos(math.pi * 0.5)), 0.5 * (1 + math.cos(math.pi * 89 / 90)), 0.0]),
    ("cosine_with_restarts", [0.1, 1.0, 1.0, 0.5, 0.5 * (1 + math.cos(math.pi * 89 / 90)), 0.0]),
    ("polynomial", [0.1, 1.0, 1.0, (1 - 1e-7) * 0.5 + 1e-7, (1 - 1e-7) / 90 + 1e-7, 1e-7]),
    ("constant", [1.0] * 6),
    ("constant_with_warmup", [0.1, 1.0, 1.0, 1.0, 1.0, 1.0]),
    ("inverse_sqrt", [0.1, 1.0, 1.0, math.sqrt(10 / 55), math.sqrt(10 / 99), math.sqrt(10 / 100)]),
    # tri_stage, --lr_decay 0.5: warm-up 0.01 -> 1 over 10 steps, hold until 50, exp decay to 0.05 at 100
    ("tri_stage", [0.01, 0.01 + 0.99 * 0.9, 1.0, math.exp(math.log(0.05) * 5 / 50),
                   math.exp(math.log(0.05) * 49 / 50), 0.05]),
])
def test_schedule_formula(name: str, expected: list[float]) -> None:
    assert lrs(name, [0, 9, 10, 55, 99, 100]) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_every_registered_schedule_is_tested() -> None:
    assert set(str2scheduler) == {"linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
                                  "constant_with_warmup", "inverse_sqrt", "tri_stage"}


def test_restarts_and_tri_stage_options() -> None:
    # two hard restarts: the cosine starts again from the peak half-way through the decay
    first, restart = lrs("cosine_with_restarts", [54, 55], num_cycles=2)
    assert first == pytest.approx(0.5 * (1 + math.cos(math.pi * (2 * 44 / 90))))
    assert restart == pytest.approx(1.0)
    # tri_stage with --lr_decay 0.2: holds until step 80
    assert lrs("tri_stage", [79, 80, 90], lr_decay=0.2) == pytest.approx([1.0, 1.0, math.sqrt(0.05)])
    with pytest.raises(ValueError, match="overlap"):
        schedule_factor("tri_stage", T, 0.6, lr_decay=0.5)
    with pytest.raises(ValueError, match="--learning_rate must be larger"):
        schedule_factor("polynomial", T, 0.1, learning_rate=1e-8)


def test_no_warmup_schedules_start_at_the_peak() -> None:
    for name in ("linear", "cosine", "constant_with_warmup", "inverse_sqrt"):
        assert schedule_factor(name, T, 0.0)(0) == 1.0, name


def test_bias_correction_factor() -> None:
    factor = adam_bias_correction_undone(schedule_factor("constant", T, 0.0), 0.9, 0.999)
    assert factor(0) == pytest.approx(0.1 / math.sqrt(0.001))
    assert factor(99) == pytest.approx((1 - 0.9 ** 100) / math.sqrt(1 - 0.999 ** 100))


def _gradients(shapes: list[tuple[int, ...]], steps: int) -> list[list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(3)
    return [[torch.randn(s, generator=gen) for s in shapes] for _ in range(steps)]


def test_adafactor_equals_torch_adafactor() -> None:
    """With relative steps and parameter scaling (torch's only mode), our Adafactor takes torch's steps."""
    shapes = [(6, 4), (3, 5, 2), (7,)]
    start = [torch.randn(s, generator=torch.Generator().manual_seed(i)) for i, s in enumerate(shapes)]
    ours = [torch.nn.Parameter(p.clone()) for p in start]
    theirs = [torch.nn.Parameter(p.clone()) for p in start]
    opt_ours = Adafactor(ours, lr=1e-2, scale_parameter=True, relative_step=True)
    opt_theirs = torch.optim.Adafactor(theirs, lr=1e-2, foreach=False)
    for grads in _gradients(shapes, 6):
        for p, q, g in zip(ours, theirs, grads):
            p.grad, q.grad = g.clone(), g.clone()
        opt_ours.step()
        opt_theirs.step()
    for p, q, s in zip(ours, theirs, start):
        assert not torch.allclose(p, s)  # the parameters moved
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7)


def test_adafactor_uer_settings_by_hand() -> None:
    """UER-py's Adafactor (absolute learning rate, no parameter scaling), two steps computed by hand in numpy."""
    lr, wd = 0.05, 0.01
    w0 = np.array([[0.5, -1.0, 2.0], [0.1, 0.3, -0.2]])
    g1 = np.array([[0.2, -0.4, 0.1], [1.0, 0.05, -0.3]])
    g2 = np.array([[-0.1, 0.3, 0.2], [0.4, -0.2, 0.1]])
    w, row, col = w0.copy(), np.zeros(2), np.zeros(3)
    for t, g in ((1, g1), (2, g2)):
        beta2t = 1 - t ** -0.8
        row = beta2t * row + (1 - beta2t) * (g ** 2 + 1e-30).mean(axis=1)
        col = beta2t * col + (1 - beta2t) * (g ** 2 + 1e-30).mean(axis=0)
        v = np.outer(row, col) / row.mean()
        u = g / np.sqrt(v)
        u /= max(1.0, np.sqrt((u ** 2).mean()))
        w = w - wd * lr * w - lr * u
    param = torch.nn.Parameter(torch.tensor(w0))
    optimizer = Adafactor([{"params": [param], "weight_decay": wd}], lr=lr)
    for g in (g1, g2):
        param.grad = torch.tensor(g)
        optimizer.step()
    np.testing.assert_allclose(param.detach().numpy(), w, rtol=1e-12)


def test_build_optimizer_choices() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    adafactor = build_optimizer(model, 1e-3, weight_decay=0.01, name="adafactor")
    assert isinstance(adafactor, Adafactor)
    assert [g["weight_decay"] for g in adafactor.param_groups] == [0.01, 0.0]
    assert [len(g["params"]) for g in adafactor.param_groups] == [1, 3]  # the matrix; bias, gamma, beta
    assert isinstance(build_optimizer(model, 1e-3), torch.optim.AdamW)
    with pytest.raises(ValueError, match="--optimizer"):
        build_optimizer(model, 1e-3, name="sgd")
