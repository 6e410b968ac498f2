"""The engine both loops share: one optimisation config, the report dicts formatted into the exact report
lines users parse, the nominal learning rate, the step, and the per-step seeding."""
from __future__ import annotations

import argparse
from dataclasses import fields

import pytest
import torch

from uer import opts
from uer.config import optim_options_from_args
from uer.training.engine import Engine, OptimConfig, finetune_report_line, pretrain_report_line
from uer.finetune.loop import FinetuneConfig
from uer.training.pretrain_loop import TrainConfig
from uer.utils.distributed import DistContext


def test_one_optimisation_config_for_both_loops():
    shared = {f.name for f in fields(OptimConfig)}
    assert {"learning_rate", "warmup", "beta1", "beta2", "weight_decay", "seed", "fp16", "fp16_opt_level"} <= shared
    assert issubclass(TrainConfig, OptimConfig) and issubclass(FinetuneConfig, OptimConfig)
    # pre-training keeps torch's bias-corrected Adam, fine-tuning takes UER-py's steps
    assert TrainConfig(output_model_path="m.bin").adam_bias_correction is True
    assert FinetuneConfig().adam_bias_correction is False
    with pytest.raises(ValueError, match="--warmup"):
        FinetuneConfig(warmup=1.5)
    parser = argparse.ArgumentParser()
    opts.add_optimization_options(parser)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(["--learning_rate", "3e-4", "--warmup", "0.2", "--seed", "5", "--fp16"])
    options = optim_options_from_args(args)
    assert options["learning_rate"] == 3e-4 and options["warmup"] == 0.2 and options["seed"] == 5 and options["fp16"]
    assert "adam_bias_correction" not in options  # no such option: each loop keeps its default
    assert TrainConfig(output_model_path="m.bin", **options).beta2 == 0.999


def test_report_lines_are_today_s_text():
    # the lines of a real run (uer.training.pretrain_loop / uer.finetune before the engine), rebuilt from their scalars
    pretrain = {"step": 2, "total_steps": 6, "tokens_per_s": 2811.4, "loss_mlm": 9.97849, "acc_mlm": 0.0,
                "loss_sp": 0.65432, "acc_sp": 0.5625, "lr": 6.666666e-4}
    assert pretrain_report_line(pretrain) == ("|        2/       6 steps|       2811 tokens/s| loss_mlm   9.978| "
                                              "acc_mlm  0.000| loss_sp   0.654| acc_sp  0.562| lr 6.67e-04")
    finetune = {"epoch": 1, "epochs": 2, "epoch_step": 4, "epoch_steps": 13, "step": 4, "loss": 0.72543,
                "acc": 0.375, "examples_per_s": 95.31, "lr": 9.583e-4, "seconds_left": 75.4}
    assert finetune_report_line(finetune) == ("| epoch 1/2 |      4/13 steps ( 30.8%) | loss 0.7254 | acc 0.3750 |"
                                              "    95.3 examples/s | lr 9.58e-04 | 1m15s left")
    # a head with more statistics gets one more field each, in order, and no acc when it has none
    assert "| loss 0.7254 | f1 0.5000 | exact 0.2500 |" in finetune_report_line(
        {**{k: v for k, v in finetune.items() if k != "acc"}, "f1": 0.5, "exact": 0.25})


def test_step_follows_the_schedule_and_seeding_depends_on_step_and_rank():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    cfg = OptimConfig(learning_rate=1e-2, warmup=0.25, weight_decay=0.0)
    engine = Engine(model, cfg, DistContext())
    engine.build_optimization(total_steps=8)
    # warm-up over 2 steps, then linear decay to 0 at step 8
    assert [engine.learning_rate(t) for t in range(8)] == pytest.approx(
        [5e-3, 1e-2, 1e-2, 5e-3 * 5 / 3, 5e-3 * 4 / 3, 5e-3, 5e-3 * 2 / 3, 5e-3 / 3])
    before = model.weight.detach().clone()
    for t in range(3):
        with engine.autocast():
            loss = model(torch.ones(3, 4)).pow(2).sum()
        engine.backward(loss)
        engine.step()
        assert model.weight.grad is None  # zeroed for the next step
        assert engine.scheduler.get_last_lr()[0] == pytest.approx(engine.learning_rate(t + 1))
    assert not torch.equal(before, model.weight)
    engine.seed_step(3)
    a = torch.rand(3)
    engine.seed_step(3)
    assert torch.equal(a, torch.rand(3))
    engine.seed_step(4)
    assert not torch.equal(a, torch.rand(3))
    other_rank = Engine(torch.nn.Linear(4, 2), cfg, DistContext(rank=1, world_size=1))
    other_rank.seed_step(3)
    assert not torch.equal(a, torch.rand(3))
