#!/usr/bin/env python3
"""GPU readiness in one run (under five minutes on one GPU): BERT-base pre-training MFU in bf16 at seq 128 and
512, fine-tuning examples/s, and a 1-GPU DDP pre-training run started through torchrun (NCCL).

Everything is our code path: ``build_model`` + the training :class:`uer.training.engine.Engine` (fused AdamW, autocast
from ``--bf16``, the attention's SDPA path) on synthetic batches (random ids, 15% MLM positions, sentence-pair
labels; no data files needed). MFU = model FLOPs per second / the GPU's dense bf16 peak, with model FLOPs per
step = 6 x (non-embedding parameters) x tokens + 12 x layers x hidden x seq x tokens (attention scores and
their product with the values) + 6 x (hidden x vocab + hidden^2) x masked positions (the MLM head runs on
those only); the peak comes from --peak_tflops or the device name (H100/H200 989, A100 312, L40S 362, A10 125).

    python3 benchmarks/bench_gpu.py                         # on a GPU machine: BERT-base, ~3-4 minutes
    python3 benchmarks/bench_gpu.py --device cpu --smoke    # tiny sizes on the CPU (the test suite runs this)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

from uer.training.engine import Engine, OptimConfig  # noqa: E402
from uer.finetune.tasks.classifier import Classifier  # noqa: E402
from uer.model_builder import build_model  # noqa: E402
from uer.model_config import ModelConfig  # noqa: E402
from uer.utils.distributed import DistContext  # noqa: E402

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}
VOCAB = 21128


def model_config(smoke: bool, max_seq_length: int) -> ModelConfig:
    sizes = json.loads((ROOT / ("models/bert/tiny_config.json" if smoke else "models/bert/base_config.json")).read_text())
    keys = ("emb_size", "hidden_size", "feedforward_size", "heads_num", "layers_num")
    return ModelConfig(vocab_size=VOCAB, max_seq_length=max(512, max_seq_length), dropout=0.1, tie_weights=True,
                       target=("mlm", "sp"), **{k: sizes[k] for k in keys})


def synthetic_batch(batch_size: int, seq_length: int, device: torch.device, generator: torch.Generator) -> dict:
    src = torch.randint(5, VOCAB, (batch_size, seq_length), generator=generator)
    seg = torch.ones_like(src)
    seg[:, seq_length // 2:] = 2
    positions = torch.nonzero(torch.rand(batch_size * seq_length, generator=generator) < 0.15).flatten()
    batch = {"src": src, "seg": seg, "mlm_positions": positions, "mlm_labels": src.flatten()[positions],
             "sp_labels": torch.randint(0, 2, (batch_size,), generator=generator), "tokens_num": src.numel()}
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def step_flops(cfg: ModelConfig, model: torch.nn.Module, batch: dict) -> float:
    """Model FLOPs of one training step (forward + backward) on ``batch`` (module doc)."""
    tokens = batch["src"].numel()
    seq_length = batch["src"].shape[1]
    embedding = sum(p.numel() for p in model.embedding.parameters())
    body = sum(p.numel() for p in model.encoder.parameters())
    masked = batch["mlm_positions"].numel()
    del embedding  # lookups are not matrix work
    return (6.0 * body * tokens + 12.0 * cfg.layers_num * cfg.hidden_size * seq_length * tokens
            + 6.0 * (cfg.hidden_size * cfg.vocab_size + cfg.hidden_size ** 2) * masked)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given:
        return given
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_TFLOPS.items() if key in name), None)


def pretrain_speed(cfg: ModelConfig, seq_length: int, batch_size: int, steps: int, warmup: int,
                   device: torch.device, ddp: bool = False) -> dict:
    """Steps of our engine (bf16 autocast) on synthetic batches: seconds per step, tokens/s, model TFLOP/s."""
    torch.manual_seed(0)
    model = build_model(cfg)
    engine = Engine(model, OptimConfig(learning_rate=1e-4, bf16=True), DistContext(device=device))
    engine.build_optimization(warmup + steps)
    module = engine.model
    if ddp:  # one rank: DDP's bucketing and all-reduce (NCCL on a GPU) on the real path
        from torch.nn.parallel import DistributedDataParallel

        module = DistributedDataParallel(engine.model, device_ids=[device.index] if device.type == "cuda" else None)
    generator = torch.Generator().manual_seed(1)
    batches = [synthetic_batch(batch_size, seq_length, device, generator) for _ in range(min(steps, 4))]

    def step(batch: dict) -> None:
        with engine.autocast():
            outputs = module(batch)
        loss = sum(out.loss_sum / max(out.count, 1) for out in outputs.values())
        engine.backward(loss)
        engine.step()

    for i in range(warmup):
        step(batches[i % len(batches)])
    synchronize(device)
    start = time.perf_counter()
    for i in range(steps):
        step(batches[i % len(batches)])
    synchronize(device)
    elapsed = (time.perf_counter() - start) / steps
    flops = sum(step_flops(cfg, engine.model, batches[i % len(batches)]) for i in range(steps)) / steps
    return {"s_per_step": elapsed, "tokens_per_s": batch_size * seq_length / elapsed, "tflops": flops / elapsed / 1e12,
            "peak_memory_gb": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None}


def finetune_speed(cfg: ModelConfig, seq_length: int, batch_size: int, steps: int, warmup: int,
                   device: torch.device) -> float:
    """Examples/s of classifier fine-tuning steps (bf16 autocast, our engine) on synthetic sentences."""
    torch.manual_seed(0)
    base = build_model(cfg, with_target=False)
    model = Classifier(base.embedding, base.encoder, cfg.hidden_size, 2)
    engine = Engine(model, OptimConfig(learning_rate=2e-5, bf16=True, adam_bias_correction=False),
                    DistContext(device=device))
    engine.build_optimization(warmup + steps)
    generator = torch.Generator().manual_seed(2)
    src = torch.randint(5, VOCAB, (batch_size, seq_length), generator=generator).to(device)
    batch = {"src": src, "seg": torch.ones_like(src), "label": torch.randint(0, 2, (batch_size,)).to(device)}

    def step() -> None:
        with engine.autocast():
            loss = engine.model(batch).loss.mean()
        engine.backward(loss)
        engine.step()

    for _ in range(warmup):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return batch_size * steps / (time.perf_counter() - start)


def ddp_worker(args: argparse.Namespace) -> None:
    """One torchrun rank: joins the process group (NCCL on a GPU, gloo on the CPU) and runs DDP steps."""
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device("cuda", local_rank) if args.device == "cuda" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        result = pretrain_speed(model_config(args.smoke, args.seq_lengths[0]), args.seq_lengths[0], args.batch_sizes[0],
                                args.steps, args.warmup, device, ddp=True)
        if dist.get_rank() == 0:
            print("DDP_RESULT " + json.dumps({**result, "backend": dist.get_backend(),
                                              "world_size": dist.get_world_size()}), flush=True)
    finally:
        dist.destroy_process_group()


def run_ddp(args: argparse.Namespace) -> dict:
    """This script again, as one rank started by torchrun; its result line."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", __file__,
           "--ddp_worker", "--device", args.device, "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--seq_lengths", str(args.seq_lengths[0]), "--batch_sizes", str(args.batch_sizes[0])]
    if args.smoke:
        cmd.append("--smoke")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    for line in proc.stdout.splitlines():
        if line.startswith("DDP_RESULT "):
            return json.loads(line[len("DDP_RESULT "):])
    raise SystemExit(f"the torchrun DDP run failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--smoke", action="store_true", help="Tiny model, short sequences, 2 steps (CPU test).")
    parser.add_argument("--seq_lengths", type=int, nargs="+", default=None, help="Default 128 512 (smoke: 16 32).")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=None,
                        help="Pre-training batch per sequence length; default 128 32 (smoke: 4 2).")
    parser.add_argument("--steps", type=int, default=None, help="Timed steps (default 30; smoke 2).")
    parser.add_argument("--warmup", type=int, default=None, help="Untimed steps first (default 5; smoke 1).")
    parser.add_argument("--peak_tflops", type=float, default=None, help="The device's dense bf16 peak (TFLOP/s).")
    parser.add_argument("--ddp_worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.seq_lengths = args.seq_lengths or ([16, 32] if args.smoke else [128, 512])
    args.batch_sizes = args.batch_sizes or ([4, 2] if args.smoke else [128, 32])
    args.steps = args.steps or (2 if args.smoke else 30)
    args.warmup = args.warmup or (1 if args.smoke else 5)
    if len(args.batch_sizes) != len(args.seq_lengths):
        parser.error("give one --batch_sizes value per --seq_lengths value")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device here: run it on a GPU machine, or with --device cpu --smoke")
    if args.smoke and args.device == "cpu":
        torch.set_num_threads(1)  # a tiny model: a second thread only waits for the first on a busy machine
    if args.ddp_worker:
        ddp_worker(args)
        return
    device = torch.device("cuda", 0) if args.device == "cuda" else torch.device("cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    peak = peak_tflops(device, args.peak_tflops)
    started = time.perf_counter()
    print(f"{'tiny (smoke)' if args.smoke else 'BERT-base'} on {name}, bf16 autocast, torch {torch.__version__}")
    for seq_length, batch_size in zip(args.seq_lengths, args.batch_sizes):
        cfg = model_config(args.smoke, seq_length)
        r = pretrain_speed(cfg, seq_length, batch_size, args.steps, args.warmup, device)
        mfu = f"{100 * r['tflops'] / peak:.1f}% MFU" if peak else "MFU n/a (no peak known: --peak_tflops)"
        memory = f", peak memory {r['peak_memory_gb']:.1f} GB" if r["peak_memory_gb"] is not None else ""
        print(f"pre-training seq {seq_length} x batch {batch_size}: {r['s_per_step'] * 1000:.1f} ms/step, "
              f"{r['tokens_per_s']:.0f} tokens/s, {r['tflops']:.2f} model TFLOP/s, {mfu}{memory}", flush=True)
    cfg = model_config(args.smoke, args.seq_lengths[0])
    examples = finetune_speed(cfg, args.seq_lengths[0], args.batch_sizes[0] // 4 or 1, args.steps, args.warmup, device)
    print(f"fine-tuning (classifier) seq {args.seq_lengths[0]}: {examples:.1f} examples/s", flush=True)
    r = run_ddp(args)
    print(f"DDP through torchrun, {r['world_size']} rank ({r['backend']}), seq {args.seq_lengths[0]}: "
          f"{r['s_per_step'] * 1000:.1f} ms/step, {r['tokens_per_s']:.0f} tokens/s, {r['tflops']:.2f} model TFLOP/s",
          flush=True)
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
