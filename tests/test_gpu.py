"""benchmarks/bench_gpu.py stays runnable (a CPU smoke run here), and the CUDA-only paths run where there is a
GPU: float16 autocast with loss scaling, the GPU benchmark itself (bf16 MFU, fine-tuning, DDP over NCCL)."""
from __future__ import annotations

import re

import pytest
import torch

from conftest import run_script
from uer.training.engine import Engine, OptimConfig
from uer.model_builder import build_model
from uer.model_config import ModelConfig
from uer.utils.distributed import DistContext


@pytest.mark.slow
def test_gpu_benchmark_runs_on_the_cpu_in_smoke_mode():
    out = run_script("benchmarks/bench_gpu.py", "--device", "cpu", "--smoke").stdout
    assert re.search(r"pre-training seq 16 x batch 4: [\d.]+ ms/step, \d+ tokens/s", out), out
    assert re.search(r"pre-training seq 32 x batch 2: ", out) and re.search(r"fine-tuning \(classifier\)", out), out
    assert re.search(r"DDP through torchrun, 1 rank \(gloo\), seq 16: [\d.]+ ms/step", out), out


@pytest.mark.gpu
def test_gpu_benchmark_on_cuda():
    out = run_script("benchmarks/bench_gpu.py", "--steps", "3", "--warmup", "2", "--peak_tflops", "100").stdout
    assert len(re.findall(r"\d+\.\d% MFU", out)) == 2, out
    assert re.search(r"DDP through torchrun, 1 rank \(nccl\)", out), out


@pytest.mark.gpu
def test_float16_with_loss_scaling_learns_on_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)  # an older GPU
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=100, emb_size=64, hidden_size=64, feedforward_size=128, heads_num=2, layers_num=2,
                      max_seq_length=32, dropout=0.0, target=("mlm",))
    engine = Engine(build_model(cfg), OptimConfig(learning_rate=1e-3, fp16=True), DistContext(device=torch.device("cuda", 0)))
    engine.build_optimization(60)
    assert engine.amp_dtype == torch.float16 and engine.scaler.is_enabled()
    src = torch.randint(5, 100, (8, 32), device="cuda")
    positions = torch.arange(0, 256, 7, device="cuda")
    batch = {"src": src, "seg": torch.ones_like(src), "mlm_positions": positions, "mlm_labels": src.flatten()[positions]}
    losses = []
    for _ in range(60):
        with engine.autocast():
            out = engine.model(batch)["mlm"]
        loss = out.loss_sum / out.count
        assert loss.dtype == torch.float32
        engine.backward(loss)
        engine.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0] and engine.scaler.get_scale() > 1.0
