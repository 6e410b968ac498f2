"""Gradient clipping (against torch's clip_grad_norm_, with accumulation and float16 loss scaling) and which
pre-training checkpoints stay on disk."""
from __future__ import annotations

import copy

import pytest
import torch

from uer.training.checkpoints import checkpoint_steps, prune_checkpoints
from uer.training.optimizers import clip_gradients


def _model_and_batches():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    batches = [(torch.randn(5, 6) * 4, torch.randint(0, 3, (5,))) for _ in range(2)]
    return model, batches


def _backward(model, batches, scaler: torch.amp.GradScaler | None = None) -> None:
    for x, y in batches:  # two micro-batches accumulate into .grad
        loss = torch.nn.functional.cross_entropy(model(x), y)
        (scaler.scale(loss) if scaler is not None else loss).backward()


def test_clipping_equals_torch_and_bounds_the_norm() -> None:
    model, batches = _model_and_batches()
    reference = copy.deepcopy(model)
    _backward(model, batches)
    _backward(reference, batches)
    unclipped = torch.nn.utils.get_total_norm([p.grad for p in reference.parameters()])
    assert unclipped > 1.0  # so that clipping at 0.5 changes something
    expected_norm = torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    norm = clip_gradients(optimizer, 0.5)
    assert norm.item() == pytest.approx(unclipped.item()) and norm.item() == pytest.approx(expected_norm.item())
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=0)
    after = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])
    assert after.item() == pytest.approx(0.5, rel=1e-5)
    # measuring only (no --max_grad_norm) leaves the gradients alone
    model2, _ = _model_and_batches()
    _backward(model2, batches)
    before = [p.grad.clone() for p in model2.parameters()]
    assert clip_gradients(torch.optim.SGD(model2.parameters(), lr=0.1), None).item() == pytest.approx(unclipped.item())
    assert all(torch.equal(p.grad, b) for p, b in zip(model2.parameters(), before))


def test_clipping_unscales_float16_loss_scaling_first() -> None:
    """With a loss scale of 1024 the clipped gradients (and the step taken) equal the unscaled run's."""
    model, batches = _model_and_batches()
    plain = copy.deepcopy(model)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, enabled=True)
    opt_scaled = torch.optim.SGD(model.parameters(), lr=0.1)
    opt_plain = torch.optim.SGD(plain.parameters(), lr=0.1)
    _backward(model, batches, scaler)
    assert model[0].weight.grad.abs().max() > 100 * plain_grad_bound(plain, batches)
    _backward(plain, batches)
    norm_scaled = clip_gradients(opt_scaled, 0.5, scaler)
    norm_plain = clip_gradients(opt_plain, 0.5)
    assert norm_scaled.item() == pytest.approx(norm_plain.item(), rel=1e-5)
    scaler.step(opt_scaled)  # must not unscale a second time
    scaler.update()
    opt_plain.step()
    for p, q in zip(model.parameters(), plain.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7)


def plain_grad_bound(model, batches) -> float:
    probe = copy.deepcopy(model)
    _backward(probe, batches)
    return probe[0].weight.grad.abs().max().item()


def _touch(tmp_path, *names: str) -> None:
    for name in names:
        (tmp_path / name).write_bytes(b"x")


def test_save_total_limit_and_trainer_state(tmp_path) -> None:
    base = str(tmp_path / "model.bin")
    _touch(tmp_path, "model.bin-2", "model.bin-2.trainer", "model.bin-4", "model.bin-4.trainer", "model.bin-6",
           "model.bin-6.trainer", "model.bin-old", "other.bin-2")
    assert checkpoint_steps(base) == [2, 4, 6]
    deleted = prune_checkpoints(base, 6, save_total_limit=2, keep_trainer_state="last")
    assert sorted(deleted) == sorted([f"{base}-2", f"{base}-2.trainer", f"{base}-4.trainer"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin-4", "model.bin-6", "model.bin-6.trainer",
                                                          "model.bin-old", "other.bin-2"]
    # keep everything: no limit, every .trainer
    _touch(tmp_path, "model.bin-4.trainer", "model.bin-8", "model.bin-8.trainer")
    assert prune_checkpoints(base, 8, None, "all") == []
    # a checkpoint newer than the current step (an earlier, longer run) is never touched
    assert prune_checkpoints(base, 6, 1, "last") == [f"{base}-4", f"{base}-4.trainer"]
    assert (tmp_path / "model.bin-8.trainer").exists() and (tmp_path / "model.bin-6.trainer").exists()


def test_entry_points_let_openmp_threads_sleep_unless_the_user_chose() -> None:
    import subprocess
    import sys

    from conftest import subprocess_env

    code = "import os, uer.cli.pretrain, torch; print(os.environ['OMP_WAIT_POLICY'], torch.get_num_threads())"
    env = {k: v for k, v in subprocess_env().items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "PASSIVE"
    out = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "ACTIVE"}, capture_output=True,
                         text=True, check=True)
    assert out.stdout.split()[0] == "ACTIVE"


def test_threads_option() -> None:
    import torch

    from uer.errors import UserError
    from uer.utils.runtime import set_threads

    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 and torch.get_num_threads() == 1
        assert set_threads(None) == 1  # default: leave torch's setting alone
        with pytest.raises((SystemExit, UserError)):
            set_threads(0)
    finally:
        torch.set_num_threads(before)
