"""The pre-training command lines of UER-py's docs, run here on small real data (paths adjusted, tiny config).

Quickstart (BERT), RoBERTa, ALBERT, SpanBERT with static and with dynamic masking; plus --fp16 on a CPU
and a torchrun launch.
"""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, free_port, run_script, shared_path, subprocess_env
from uer.model_loader import load_state_dict
from uer.data.dataset import PretrainDataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("docs")
    bert_corpus = shared_path("corpora/CLUECorpusSmall_bert_sampled.txt").read_text(encoding="utf-8").splitlines()
    doc_corpus = shared_path("corpora/CLUECorpusSmall_sampled.txt").read_text(encoding="utf-8").splitlines()
    (root / "book_review_bert.txt").write_text("\n".join(bert_corpus[:400]) + "\n", encoding="utf-8")
    (root / "book_review.txt").write_text("\n".join(doc_corpus[:60]) + "\n", encoding="utf-8")
    return {"root": root, "vocab": str(shared_path("models/google_zh_vocab.txt"))}


def preprocess(ws, corpus: str, dataset: str, *extra: str) -> PretrainDataset:
    run_script("preprocess.py", "--corpus_path", str(ws["root"] / corpus), "--vocab_path", ws["vocab"],
               "--dataset_path", str(ws["root"] / dataset), "--processes_num", "2", "--seq_length", "128", *extra)
    return PretrainDataset.open(ws["root"] / dataset)


def pretrain(ws, dataset: str, output: str, *extra: str, steps: int = 4) -> str:
    out = run_script("pretrain.py", "--dataset_path", str(ws["root"] / dataset), "--vocab_path", ws["vocab"],
                     "--output_model_path", str(ws["root"] / output), "--config_path", "models/bert/tiny_config.json",
                     "--total_steps", str(steps), "--save_checkpoint_steps", str(steps), "--report_steps", "2",
                     "--batch_size", "8", *extra)
    assert (ws["root"] / f"{output}-{steps}").is_file()
    return out.stdout


def test_quickstart_bert(ws):
    data = preprocess(ws, "book_review_bert.txt", "bert.pt", "--target", "bert")
    assert data.header["target"] == "bert" and len(data) > 50
    out = pretrain(ws, "bert.pt", "book_review_model.bin", "--embedding", "word_pos_seg", "--encoder", "transformer",
                   "--mask", "fully_visible", "--target", "bert")
    assert re.search(r"loss_mlm .*acc_mlm .*loss_sp .*acc_sp", out)
    # incremental pre-training from that model with the old spelling (--encoder bert)
    model = str(ws["root"] / "book_review_model.bin-4")
    out = pretrain(ws, "bert.pt", "incremental.bin", "--pretrained_model_path", model, "--encoder", "bert",
                   "--target", "bert")
    assert "keep their random initialisation" not in out


def test_roberta(ws):
    data = preprocess(ws, "book_review.txt", "roberta.pt", "--dynamic_masking", "--target", "mlm")
    assert data.header["dynamic_masking"] is True
    out = pretrain(ws, "roberta.pt", "roberta.bin", "--learning_rate", "1e-4", "--encoder", "bert", "--target", "mlm")
    assert "loss_mlm" in out and "loss_sp" not in out
    assert not any(k.startswith("target.sp.") for k in load_state_dict(ws["root"] / "roberta.bin-4"))


def test_albert(ws):
    preprocess(ws, "book_review_bert.txt", "albert.pt", "--target", "albert")
    out = pretrain(ws, "albert.pt", "albert.bin", "--learning_rate", "1e-4", "--factorized_embedding_parameterization",
                   "--parameter_sharing", "--encoder", "bert", "--target", "albert",
                   "--config_path", "models/albert/base_config.json", steps=2)
    assert "loss_sp" in out
    keys = load_state_dict(ws["root"] / "albert.bin-2")
    assert "encoder.linear.weight" in keys and "encoder.transformer.self_attn.linear_layers.0.weight" in keys
    assert keys["embedding.word.embedding.weight"].shape[1] == 128  # emb_size of the ALBERT config


def test_spanbert_static_and_dynamic(ws):
    data = preprocess(ws, "book_review.txt", "span_static.pt", "--target", "mlm", "--dup_factor", "2",
                      "--span_masking", "--span_geo_prob", "0.3", "--span_max_length", "5")
    assert data.header["dynamic_masking"] is False
    pretrain(ws, "span_static.pt", "span_static.bin", "--learning_rate", "1e-4", "--encoder", "bert", "--target", "mlm")
    preprocess(ws, "book_review.txt", "span_dynamic.pt", "--dynamic_masking", "--target", "mlm")
    pretrain(ws, "span_dynamic.pt", "span_dynamic.bin", "--learning_rate", "1e-4", "--span_masking",
             "--span_geo_prob", "0.3", "--span_max_length", "5", "--encoder", "bert", "--target", "mlm")
    # --span_masking at pre-training on a statically masked dataset cannot apply: a clear error, not a no-op
    with pytest.raises(AssertionError, match="masked at preprocessing"):
        pretrain(ws, "span_static.pt", "bad.bin", "--span_masking", "--encoder", "bert", "--target", "mlm")


def masked_run_lengths(ws, monkeypatch, dataset: str, *flags: str) -> list[int]:
    """Lengths of the runs of consecutive masked positions in the batches that pretrain.py's loader made
    (pretrain.py run in this process for 2 steps, PretrainBatches.batch recorded)."""
    from uer.cli import pretrain as pretrain_cli
    from uer.data.pretrain_loader import PretrainBatches

    seen: list[list[int]] = []
    original = PretrainBatches.batch

    def recording(self, micro_batch_index):
        batch = original(self, micro_batch_index)
        seen.append(sorted(batch["mlm_positions"].tolist()))  # flat row * width + column; column 0 is [CLS]
        return batch

    monkeypatch.setattr(PretrainBatches, "batch", recording)
    pretrain_cli.main(["--dataset_path", str(ws["root"] / dataset), "--vocab_path", ws["vocab"],
                       "--output_model_path", str(ws["root"] / "spans.bin"), "--config_path",
                       "models/bert/tiny_config.json", "--total_steps", "2", "--save_checkpoint_steps", "2",
                       "--batch_size", "8", "--encoder", "bert", "--target", "mlm", *flags])
    monkeypatch.undo()
    runs = []
    for positions in seen:
        run = 1
        for a, b in zip(positions, positions[1:]):
            if b == a + 1:
                run += 1
            else:
                runs.append(run)
                run = 1
        runs.append(run)
    return runs


def test_dynamic_span_masking_reaches_the_loader(ws, monkeypatch):
    if not (ws["root"] / "span_dynamic.pt").exists():
        preprocess(ws, "book_review.txt", "span_dynamic.pt", "--dynamic_masking", "--target", "mlm")
    spans = masked_run_lengths(ws, monkeypatch, "span_dynamic.pt", "--span_masking", "--span_geo_prob", "0.3",
                               "--span_max_length", "5")
    tokens = masked_run_lengths(ws, monkeypatch, "span_dynamic.pt")
    # Span lengths ~ geometric(0.3) cut at 5: mean 2.3 before neighbouring spans merge; single-token masking at
    # 15% gives runs of ~1.2 (two masked neighbours by chance).
    assert sum(spans) / len(spans) > 1.8, spans
    assert sum(tokens) / len(tokens) < 1.4, tokens
    assert max(spans) >= 5 and sum(spans) > 100


def test_fp16_on_cpu_says_what_it_does(ws):
    if not (ws["root"] / "roberta.pt").exists():
        preprocess(ws, "book_review.txt", "roberta.pt", "--dynamic_masking", "--target", "mlm")
    out = pretrain(ws, "roberta.pt", "fp16.bin", "--fp16", "--encoder", "bert", "--target", "mlm", steps=2)
    assert "autocast to bfloat16" in out
    # Autocast really ran: the same seed in float32 ends with other weights (bfloat16 rounds the activations).
    pretrain(ws, "roberta.pt", "fp32.bin", "--encoder", "bert", "--target", "mlm", steps=2)
    bf16, fp32 = load_state_dict(ws["root"] / "fp16.bin-2"), load_state_dict(ws["root"] / "fp32.bin-2")
    differences = [(bf16[k] - fp32[k]).abs().max().item() for k in fp32]
    assert max(differences) > 0, "--fp16 trained exactly like float32"
    assert all(bf16[k].dtype == torch.float32 for k in bf16)  # float32 master weights


def test_wrong_target_for_dataset_is_refused(ws):
    if not (ws["root"] / "roberta.pt").exists():
        preprocess(ws, "book_review.txt", "roberta.pt", "--dynamic_masking", "--target", "mlm")
    with pytest.raises(AssertionError, match="preprocessed for --target mlm"):
        pretrain(ws, "roberta.pt", "bad.bin", "--target", "bert")


@pytest.mark.distributed
def test_torchrun_launch(ws):
    if not (ws["root"] / "roberta.pt").exists():
        preprocess(ws, "book_review.txt", "roberta.pt", "--dynamic_masking", "--target", "mlm")
    port = free_port()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(port), str(ROOT / "pretrain.py"), "--dataset_path", str(ws["root"] / "roberta.pt"),
           "--vocab_path", ws["vocab"], "--output_model_path", str(ws["root"] / "torchrun.bin"),
           "--config_path", "models/bert/tiny_config.json", "--total_steps", "2", "--save_checkpoint_steps", "2",
           "--report_steps", "1", "--batch_size", "4", "--encoder", "bert", "--target", "mlm", "--backend", "gloo"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**subprocess_env(), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "on 2 process(es)" in proc.stdout
    # The same run started by pretrain.py's own launcher (2 spawned gloo ranks) ends with the same parameters.
    port = free_port()
    spawn = cmd[cmd.index(str(ROOT / "pretrain.py")):]
    spawn[spawn.index("--output_model_path") + 1] = str(ws["root"] / "spawn.bin")
    run_script("pretrain.py", *spawn[1:], "--world_size", "2", "--gpu_ranks", "0", "1",
               "--master_ip", f"tcp://127.0.0.1:{port}", env={"OMP_NUM_THREADS": "1"})
    torchrun, spawned = load_state_dict(ws["root"] / "torchrun.bin-2"), load_state_dict(ws["root"] / "spawn.bin-2")
    for key in spawned:
        torch.testing.assert_close(torchrun[key], spawned[key], rtol=1e-5, atol=1e-6, msg=key)
