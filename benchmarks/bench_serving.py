#!/usr/bin/env python3
"""Serving throughput, latency and memory: the encoder server under 1, 8 and 32 concurrent clients, next to
calling the model directly one request at a time, in the same run.

The server (scripts/encoder_server.py) runs in its own process on 127.0.0.1 (a free port) with --threads
threads; the clients are threads of this process, each with its own keep-alive connection
(uer.serving.client.EncoderClient), sending one sentence per request (--texts_per_request) until the level's
--requests are done or --max_seconds have passed. The reference is TextEncoder.embed([sentence]) called one
request at a time in this process with the same threads (same model file, same sentences). Printed per level:
sentences/s, latency p50/p95/p99 (ms), errors, and the server's RSS (peak, and at the level's start and end:
memory must stay flat: the highest level runs twice and the second run must not grow it). The same server with --max_batch_size 1 at the highest concurrency shows what the
micro-batching adds on top of the same HTTP stack. The closing lines check the issue's targets at 32 clients: throughput >= 4x the
one-at-a-time rate, p99 < 10x the single-request latency, no errors, RSS growth < 5%.

Sentences: lines of 8-64 characters of ../shared/data/corpora/CLUECorpusSmall_bert_sampled.txt (a built-in list
when ../shared is absent). Model: --model_path, or random weights of --config_path saved to a temporary file
(speed does not depend on the values). --backends torch onnxruntime also exports the model
(scripts/export_onnx.py) and serves it with onnxruntime.

    python3 benchmarks/bench_serving.py                                   # BERT-tiny, torch, 1/8/32 clients
    python3 benchmarks/bench_serving.py --backends torch onnxruntime --config_path models/bert/mini_config.json
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UER_SHARED_DATA", ROOT.parent / "shared" / "data"))
FALLBACK_SENTENCES = ["今天天气很好", "这本书很好看，推荐给大家", "我们明天去公园散步吧", "服务态度很差，再也不来了",
                      "房间干净整洁，交通方便", "这部电影的结局出人意料", "价格合理，物流也很快", "他每天早上六点起床跑步"]


def sentences(limit: int) -> list[str]:
    corpus = SHARED / "corpora" / "CLUECorpusSmall_bert_sampled.txt"
    if not corpus.exists():
        return (FALLBACK_SENTENCES * (limit // len(FALLBACK_SENTENCES) + 1))[:limit]
    out = []
    with open(corpus, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if 8 <= len(line) <= 64:
                out.append(line)
                if len(out) == limit:
                    break
    return out


def vocab_path(tmp: Path) -> str:
    shared = SHARED / "models" / "google_zh_vocab.txt"
    if shared.exists():
        return str(shared)
    chars = sorted({c for s in FALLBACK_SENTENCES for c in s})
    path = tmp / "vocab.txt"
    path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars) + "\n", encoding="utf-8")
    return str(path)


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def percentiles(latencies: list[float]) -> tuple[float, float, float]:
    values = np.asarray(latencies) * 1000
    return tuple(float(np.percentile(values, q)) for q in (50, 95, 99)) if len(values) else (float("nan"),) * 3


class Server:
    """scripts/encoder_server.py in a child process on a free port."""

    def __init__(self, flags: list[str]) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "encoder_server.py"), "--port", "0", *flags],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: list[str] = []
        deadline = time.monotonic() + 300
        self.port = None
        while self.port is None and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                break
            self.lines.append(line)
            match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            self.port = int(match.group(1)) if match else None
        if self.port is None:
            self.stop()
            raise SystemExit("the server did not start:\n" + "".join(self.lines))
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        return self.proc.returncode


def load_level(port: int, pid: int, texts: list[str], clients: int, requests: int, per_request: int,
               max_seconds: float) -> dict:
    """``requests`` requests from ``clients`` threads (bounded by ``max_seconds``)."""
    from uer.serving.client import EncoderClient, ServingError

    client = EncoderClient("127.0.0.1", port, timeout=120)
    counter = iter(range(requests))
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + max_seconds

    def worker(_: int) -> None:
        while time.monotonic() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            batch = [texts[(i * per_request + k) % len(texts)] for k in range(per_request)]
            start = time.perf_counter()
            try:
                client(batch)
            except ServingError as err:
                errors.append(str(err))
                continue
            latencies.append(time.perf_counter() - start)

    rss_start = rss_mb(pid)
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    wall = time.perf_counter() - start
    p50, p95, p99 = percentiles(latencies)
    return {"clients": clients, "requests": len(latencies), "errors": len(errors), "first_error": errors[:1],
            "sentences_per_s": len(latencies) * per_request / wall, "p50": p50, "p95": p95, "p99": p99,
            "rss_start": rss_start, "rss_end": rss_mb(pid), "rss_peak": rss_mb(pid, "VmHWM"), "wall": wall}


def direct_reference(args: argparse.Namespace, model_path: str, vocab: str, texts: list[str], backend: str,
                     onnx_path: str | None) -> dict:
    """The model called directly, one request at a time (same threads, same sentences)."""
    import torch

    from uer.api import TextEncoder
    from uer.utils.runtime import tune_cpu_allocator

    tune_cpu_allocator()  # as the server does
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    from uer.serving.backends import EncoderService, OnnxRunner, TextPairs, TorchRunner
    from uer.serving.modules import EncoderVectors

    if backend == "torch":
        encoder = TextEncoder.from_pretrained(model_path, vocab_path=vocab, config_path=args.config_path, device="cpu",
                                              seq_length=args.seq_length)
        runner = TorchRunner(EncoderVectors(encoder.model.embedding, encoder.model.encoder, args.encode_layer),
                             torch.device("cpu"))

        def call(batch: list[str]) -> None:
            encoder.embed(batch, pooling=args.encode_layer)
    else:
        runner = OnnxRunner(onnx_path, args.threads)

        def call(batch: list[str]) -> None:
            service.run([TextPairs(batch)])

    from uer.text.tokenizers import build_tokenizer

    service = EncoderService(build_tokenizer("bert", vocab), args.seq_length, runner, args.max_batch_size, 0, {})
    for text in texts[:5]:  # warm-up
        call([text] * args.texts_per_request)
    latencies = []
    start = time.perf_counter()
    n = min(args.direct_requests, len(texts))
    for i in range(n):
        batch = [texts[(i * args.texts_per_request + k) % len(texts)] for k in range(args.texts_per_request)]
        t = time.perf_counter()
        call(batch)
        latencies.append(time.perf_counter() - t)
    wall = time.perf_counter() - start
    p50, p95, p99 = percentiles(latencies)
    # The ceiling of batching without HTTP: the same sentences in batches of --max_batch_size, as the server's
    # worker runs them (length chunks).
    total = n * args.texts_per_request
    start = time.perf_counter()
    for i in range(0, total, args.max_batch_size):
        service.run([TextPairs(texts[i:min(i + args.max_batch_size, total)])])
    batched = total / (time.perf_counter() - start)
    return {"sentences_per_s": total / wall, "p50": p50, "p95": p95, "p99": p99, "batched_per_s": batched}


def serve_levels(flags: list[str], client_levels: list[int], texts: list[str], args: argparse.Namespace,
                 direct: dict, label: str) -> list[dict]:
    """Start a server with ``flags``, load it at each level of concurrency, stop it; prints a line per level."""
    server = Server(flags)
    levels = []
    try:
        load_level(server.port, server.proc.pid, texts, 4, 16, args.texts_per_request, 60)  # warm-up
        # the highest level twice: the second time its memory must not grow (no leak once batch shapes are seen)
        for round_, clients in enumerate(client_levels + client_levels[-1:]):
            level = load_level(server.port, server.proc.pid, texts, clients, args.requests,
                               args.texts_per_request, args.max_seconds)
            level["again"] = round_ == len(client_levels)
            levels.append(level)
            print(f"[{label}] {clients:3d} clients{' again' if level['again'] else ''}: {level['sentences_per_s']:8.1f} sentences/s "
                  f"({level['sentences_per_s'] / direct['sentences_per_s']:.1f}x direct), latency p50 "
                  f"{level['p50']:.1f} / p95 {level['p95']:.1f} / p99 {level['p99']:.1f} ms, "
                  f"{level['requests']} requests, {level['errors']} errors{level['first_error'] or ''}, "
                  f"server RSS {level['rss_start']:.0f} -> {level['rss_end']:.0f} MB "
                  f"(peak {level['rss_peak']:.0f})", flush=True)
    finally:
        rc = server.stop()
    stats = [line.strip() for line in server.lines if "served" in line]
    print(f"[{label}] server stopped with status {rc}: {stats[-1] if stats else ''}", flush=True)
    return levels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config_path", default="models/bert/tiny_config.json")
    parser.add_argument("--model_path", default=None, help="Model file (default: random weights of --config_path).")
    parser.add_argument("--backends", nargs="+", default=["torch"], choices=["torch", "onnxruntime"])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=320, help="Requests per level (32 clients: 10 each).")
    parser.add_argument("--direct_requests", type=int, default=100, help="One-at-a-time reference calls.")
    parser.add_argument("--texts_per_request", type=int, default=1)
    parser.add_argument("--max_seconds", type=float, default=120.0, help="Time limit of one level.")
    parser.add_argument("--threads", type=int, default=1,
                        help="Model threads (server and reference). On a busy machine 2+ OpenMP threads wait for "
                             "each other at every operation (tiny: 500 ms a sentence with 2 threads under load, 5 ms with 1).")
    parser.add_argument("--seq_length", type=int, default=128)
    parser.add_argument("--encode_layer", default="mean", choices=["first", "mean", "max", "last"])
    parser.add_argument("--max_batch_size", type=int, default=32)
    parser.add_argument("--max_wait_ms", type=float, default=2.0)
    parser.add_argument("--no_unbatched_reference", action="store_true",
                        help="Skip the run of the same server with --max_batch_size 1 at the highest concurrency.")
    args = parser.parse_args()

    texts = sentences(2000)
    with tempfile.TemporaryDirectory() as tmp:
        vocab = vocab_path(Path(tmp))
        model_path = args.model_path
        if model_path is None:
            import torch

            from uer.api import load_config
            from uer.model_builder import build_model
            from uer.model_saver import save_model
            from uer.text.tokenizers import build_tokenizer

            cfg = load_config(args.config_path, len(build_tokenizer("bert", vocab).vocab), target=["mlm"])
            torch.manual_seed(0)
            model_path = str(Path(tmp) / "model.bin")
            save_model(build_model(cfg), model_path)
        print(f"model {args.config_path} ({'random weights' if args.model_path is None else args.model_path}), "
              f"{len(texts)} sentences of 8-64 characters, {args.texts_per_request} per request, "
              f"--encode_layer {args.encode_layer}, {args.threads} model threads, max batch {args.max_batch_size}, "
              f"max wait {args.max_wait_ms:g} ms, {os.cpu_count()} CPUs", flush=True)
        summary = {}
        for backend in args.backends:
            flags = ["--vocab_path", vocab, "--config_path", args.config_path, "--seq_length", str(args.seq_length),
                     "--threads", str(args.threads), "--max_batch_size", str(args.max_batch_size),
                     "--max_wait_ms", str(args.max_wait_ms), "--max_queue", "1024", "--device", "cpu"]
            onnx_path = None
            if backend == "onnxruntime":
                onnx_path = str(Path(tmp) / "encoder.onnx")
                start = time.perf_counter()
                subprocess.run([sys.executable, str(ROOT / "scripts" / "export_onnx.py"), "--kind", "encoder",
                                "--load_model_path", model_path, "--output_path", onnx_path,
                                "--encode_layer", args.encode_layer, *flags[:4]], check=True,
                               env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.DEVNULL)
                print(f"[{backend}] exported in {time.perf_counter() - start:.0f} s", flush=True)
                flags += ["--backend", "onnxruntime", "--onnx_path", onnx_path]
            else:
                flags += ["--load_model_path", model_path, "--encode_layer", args.encode_layer]
            direct = direct_reference(args, model_path, vocab, texts, backend, onnx_path)
            print(f"[{backend}] direct, one request at a time: {direct['sentences_per_s']:8.1f} sentences/s, "
                  f"latency p50 {direct['p50']:.1f} ms, p99 {direct['p99']:.1f} ms; in batches of "
                  f"{args.max_batch_size} (no HTTP): {direct['batched_per_s']:.1f} sentences/s "
                  f"({direct['batched_per_s'] / direct['sentences_per_s']:.1f}x)", flush=True)
            levels = serve_levels(flags, args.clients, texts, args, direct, backend)
            if not args.no_unbatched_reference:
                # the same server without micro-batching, at the highest concurrency: what batching adds
                unbatched = [f for f in flags]
                unbatched[unbatched.index("--max_batch_size") + 1] = "1"
                serve_levels(unbatched, args.clients[-1:], texts, args, direct, backend + ", --max_batch_size 1")
            summary[backend] = (direct, levels)
        for backend, (direct, levels) in summary.items():
            top = next((lv for lv in levels if lv["clients"] == 32 and not lv["again"]), None)
            again = levels[-1]
            if top is None:
                continue
            growth = (again["rss_end"] - again["rss_start"]) / again["rss_start"]
            checks = {
                "throughput >= 4x one-at-a-time": top["sentences_per_s"] >= 4 * direct["sentences_per_s"],
                "p99 < 10x single-request latency": top["p99"] < 10 * direct["p50"],
                "no errors": all(lv["errors"] == 0 for lv in levels),
                "RSS flat (< 2% growth over the repeated level)": growth < 0.02,
            }
            print(f"[{backend}] 32 clients: {top['sentences_per_s'] / direct['sentences_per_s']:.1f}x the direct rate, "
                  f"p99 {top['p99'] / direct['p50']:.1f}x the single-request latency, RSS {levels[0]['rss_start']:.0f} "
                  f"-> {again['rss_end']:.0f} MB ({100 * growth:+.1f}% over the repeat): "
                  + ", ".join(f"{name}: {'yes' if ok else 'NO'}" for name, ok in checks.items()), flush=True)


if __name__ == "__main__":
    main()
