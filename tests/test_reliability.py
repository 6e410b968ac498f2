"""The reliability matrix (issue 12): bad inputs and faults a careful user meets, each made here for real,
each run through the entry script (its main() in-process where that is faithful, a subprocess where
signals and processes are the point), checking the message, the exit status and the files left behind.

Case numbers are the issue's. Everything runs on a 65-token vocabulary, a 1-layer 16-wide model and
corpora the tests write, so the whole file stays short on 2 cores.
"""
from __future__ import annotations

import json
import os
import random
import re
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import ROOT, free_port, subprocess_env
from uer.data.dataset import MAGIC, DatasetFormatError, PretrainDataset
from uer.errors import UsageError

WORDS = [f"w{i}" for i in range(60)]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
BERT = {"emb_size": 16, "feedforward_size": 32, "hidden_size": 16, "hidden_act": "gelu", "heads_num": 2,
        "layers_num": 1, "max_seq_length": 32, "dropout": 0.1, "embedding": ["word", "pos", "seg"],
        "encoder": "transformer", "mask": "fully_visible", "target": ["mlm", "sp"], "tie_weights": True}


def write_corpus(path: Path, documents: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(documents):
            for _ in range(rng.randint(3, 6)):
                f.write(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) + "\n")
            f.write("\n")
    return path


def preprocess(corpus: Path, dataset: Path, vocab: Path, *extra: str) -> None:
    from uer.cli import preprocess as cli

    assert cli.main(["--corpus_path", str(corpus), "--vocab_path", str(vocab), "--dataset_path", str(dataset),
                     "--seq_length", "32", "--tokenizer", "space", "--dup_factor", "1", *extra]) == 0


@pytest.fixture(autouse=True)
def keep_sigterm():
    """The entry points install a SIGTERM handler (case 14); give pytest its own back."""
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("reliability")
    (root / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    (root / "bert.json").write_text(json.dumps(BERT, indent=1))
    write_corpus(root / "corpus.txt", 40)
    preprocess(root / "corpus.txt", root / "ds.pt", root / "vocab.txt", "--dynamic_masking")
    return root


def pretrain_argv(ws: Path, output: str, *extra: str, dataset: str = "ds.pt") -> list[str]:
    return ["--dataset_path", str(ws / dataset), "--vocab_path", str(ws / "vocab.txt"), "--tokenizer", "space",
            "--config_path", str(ws / "bert.json"), "--output_model_path", str(ws / output), "--batch_size", "4",
            "--total_steps", "2", "--save_checkpoint_steps", "2", "--report_steps", "1", *extra]


def pretrain(argv: list[str]) -> None:
    from uer.cli import pretrain as cli

    cli.main(argv)


def user_error(capsys, run, *args) -> str:
    """Run an entry point's main that must stop on a user error: exit status 2 and one line on stderr."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        run(*args)
    assert stop.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines, "no error line"
    return lines[-1]


def hidden_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ------------------------------------------------------------------------------------------------ case 4
def _tiny_bert_state(ws: Path) -> dict[str, torch.Tensor]:
    from uer.config import model_config_from_args, parse_args_with_config
    from uer.cli import pretrain as cli
    from uer.model_builder import build_model

    args = parse_args_with_config(cli.build_parser(), pretrain_argv(ws, "unused.bin"))
    return build_model(model_config_from_args(args, len(VOCAB))).state_dict()


@pytest.mark.parametrize("suffix", [".bin", ".safetensors"])
def test_case04_integer_weights_are_refused(ws: Path, suffix: str, capsys) -> None:
    from uer.model_saver import save_state_dict

    state = {k: (v * 100).to(torch.int32) if v.is_floating_point() else v for k, v in _tiny_bert_state(ws).items()}
    path = ws / f"int_model{suffix}"
    save_state_dict(state, path)
    line = user_error(capsys, pretrain, pretrain_argv(ws, f"int_out{suffix}.bin", "--pretrained_model_path", str(path)))
    assert re.fullmatch(rf"pretrain\.py: error: \S*int_model{suffix}: embedding\.\S+ is stored as int32, but it is a "
                        r"floating-point parameter \(float32 in the model\): refusing to cast .*", line), line
    assert not list(ws.glob(f"int_out{suffix}.bin*"))


def test_case04_half_precision_loads_with_a_notice(ws: Path, capsys) -> None:
    from uer.model_saver import save_state_dict

    state = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in _tiny_bert_state(ws).items()}
    save_state_dict(state, ws / "bf16.safetensors")
    pretrain(pretrain_argv(ws, "bf16_out.bin", "--pretrained_model_path", str(ws / "bf16.safetensors")))
    assert re.search(r"bf16\.safetensors: \d+ tensors are stored as bfloat16; loaded as float32", capsys.readouterr().out)
    assert (ws / "bf16_out.bin-2").is_file()


# ------------------------------------------------------------------------------------------------ case 5
def test_case05_resume_refuses_changed_options_and_honours_total_steps(ws: Path, capsys) -> None:
    pretrain(pretrain_argv(ws, "run.bin", "--total_steps", "4", "--keep_trainer_state", "all"))  # resumed from step 2
    resume = ["--resume_from", str(ws / "run.bin-2")]
    line = user_error(capsys, pretrain, pretrain_argv(ws, "run.bin", "--total_steps", "4", "--learning_rate", "1e-3",
                                                      "--warmup", "0.3", *resume))
    assert re.match(r"pretrain\.py: error: --resume_from \S+run\.bin-2: this run differs from the one that wrote the "
                    r"checkpoint: --learning_rate was 2e-05, now 0\.001; --warmup was 0\.1, now 0\.3\.", line), line
    (ws / "wider.json").write_text(json.dumps({**BERT, "dropout": 0.2}))
    line = user_error(capsys, pretrain, pretrain_argv(ws, "run.bin", "--total_steps", "4", "--config_path",
                                                      str(ws / "wider.json"), *resume))
    assert "model config dropout was 0.1, now 0.2" in line
    line = user_error(capsys, pretrain, pretrain_argv(ws, "run.bin", *resume))
    assert "--total_steps 2 is not beyond the checkpoint's step 2" in line
    # bucketing on in the checkpoint, off now: the message names the flag to drop (and the other way round)
    line = user_error(capsys, pretrain, pretrain_argv(ws, "run.bin", "--total_steps", "4", "--no_length_bucketing",
                                                      *resume))
    assert "bucketed batches by length (windows of 100 steps) and this one does not: drop --no_length_bucketing" in line
    sidecar = ws / "run.bin-2.trainer"
    state = torch.load(sidecar, weights_only=False)
    saved_sidecar = sidecar.read_bytes()
    del state["run"]["length_bucketing"]  # as a checkpoint written before bucketing existed records it
    torch.save(state, sidecar)
    line = user_error(capsys, pretrain, pretrain_argv(ws, "run.bin", "--total_steps", "4", *resume))
    assert "without length bucketing (off, or written before bucketing became the default) and this one buckets: " \
           "add --no_length_bucketing to resume it" in line
    sidecar.write_bytes(saved_sidecar)
    assert sorted(p.name for p in ws.glob("run.bin*")) == ["run.bin-2", "run.bin-2.trainer", "run.bin-4",
                                                           "run.bin-4.trainer"]
    pretrain(pretrain_argv(ws, "run.bin", "--total_steps", "8", "--save_checkpoint_steps", "8", *resume))
    out = capsys.readouterr().out
    assert "resume: --total_steps was 4, now 8: the learning rate now decays to 0 at step 8" in out
    # Warm-up 0.1 of 8 = 0 steps: lr at step 2 = 2e-5 * (8 - 2) / 8 (the old schedule had 2e-5 * 2/4).
    assert "learning rate at step 2: 1.500e-05 (the old schedule's: 1.000e-05)" in out
    assert (ws / "run.bin-8").is_file()


# ------------------------------------------------------------------------------------------------ case 7
def test_case07_unknown_config_key_is_warned_with_the_closest_known_key(ws: Path) -> None:
    config = {**BERT}
    config["hiden_size"] = config.pop("hidden_size")
    (ws / "typo.json").write_text(json.dumps(config, indent=1))
    proc = subprocess.run([sys.executable, str(ROOT / "pretrain.py"),
                           *pretrain_argv(ws, "typo.bin", "--config_path", str(ws / "typo.json"), "--total_steps", "1",
                                          "--save_checkpoint_steps", "1")],
                          capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert proc.returncode != 0  # hidden_size is then the default 768, which emb_size 16 contradicts
    line = 1 + next(i for i, text in enumerate((ws / "typo.json").read_text().splitlines()) if "hiden_size" in text)
    assert f'typo.json:{line}: warning: unknown key "hiden_size" (did you mean "hidden_size"?) is ignored' in proc.stderr


def test_case07_wrong_value_type_is_an_error(ws: Path, capsys) -> None:
    (ws / "string.json").write_text(json.dumps({**BERT, "hidden_size": "16"}, indent=1))
    line = user_error(capsys, pretrain, pretrain_argv(ws, "string.bin", "--config_path", str(ws / "string.json")))
    assert re.fullmatch(r'pretrain\.py: error: \S+string\.json:4: "hidden_size" must be an integer, got a string '
                        r'\("16"\)', line), line
    assert not list(ws.glob("string.bin*"))


# ------------------------------------------------------------------------------------------------ case 9
def _as_old_format(src: Path, dst: Path) -> None:
    """The file as the previous version wrote it: no checksums, no vocabulary fingerprint."""
    data = bytearray(src.read_bytes())
    (hlen,) = struct.unpack("<Q", data[8:16])
    header = json.loads(data[16:16 + hlen])
    for key in ("checksums", "vocab_sha256"):
        header.pop(key)
    for array in header["arrays"].values():
        array.pop("crc32")
    blob = json.dumps(header).encode()
    data_start = min(a["offset"] for a in header["arrays"].values())
    data[:data_start] = (MAGIC + struct.pack("<Q", len(blob)) + blob).ljust(data_start, b"\0")
    dst.write_bytes(bytes(data))


def test_case09_same_size_vocabulary_in_another_order_is_refused(ws: Path, capsys) -> None:
    swapped = VOCAB[:]
    swapped[10], swapped[11] = swapped[11], swapped[10]
    (ws / "swapped.txt").write_text("\n".join(swapped) + "\n", encoding="utf-8")
    argv = pretrain_argv(ws, "swapped.bin") + ["--vocab_path", str(ws / "swapped.txt")]
    line = user_error(capsys, pretrain, argv)
    assert re.fullmatch(r"pretrain\.py: error: \S+swapped\.txt: not the vocabulary \S+ds\.pt was built with \(same "
                        r"size, 65 tokens, but other tokens or another order; it was built with \S+vocab\.txt\): .*",
                        line), line
    assert not list(ws.glob("swapped.bin*"))


def test_case09_17_old_datasets_load_with_notices(ws: Path, capsys) -> None:
    _as_old_format(ws / "ds.pt", ws / "old.pt")
    pretrain(pretrain_argv(ws, "old.bin", dataset="old.pt"))
    out = capsys.readouterr().out
    assert "old.pt was written before datasets carried checksums" in out
    assert "old.pt was built before datasets recorded their vocabulary" in out
    assert (ws / "old.bin-2").is_file()


# ------------------------------------------------------------------------------------------------ case 17
def _flipped(ws: Path, name: str, where: str) -> Path:
    data = bytearray((ws / "ds.pt").read_bytes())
    (hlen,) = struct.unpack("<Q", data[8:16])
    header = json.loads(data[16:16 + hlen])
    if where == "header":
        at = data.index(b'"seq_length": 32') + len('"seq_length": 3')
        data[at] = ord("1")  # seq_length 32 -> 31: still valid JSON, a silently wrong value before
    else:
        at = header["arrays"][where]["offset"] + 5
        data[at] ^= 0x01
    (ws / name).write_bytes(bytes(data))
    return ws / name


def test_case17_flipped_bytes_are_found_when_the_dataset_is_opened(ws: Path, capsys) -> None:
    _flipped(ws, "bad_src.pt", "src")
    line = user_error(capsys, pretrain, pretrain_argv(ws, "bad_src.bin", dataset="bad_src.pt"))
    assert re.fullmatch(r"pretrain\.py: error: \S+bad_src\.pt: array 'src' is damaged: its bytes \d+-\d+ have CRC32 "
                        r"[0-9a-f]{8}, the header says [0-9a-f]{8} .*--no_verify_dataset skips this check\)", line), line
    _flipped(ws, "bad_header.pt", "header")
    line = user_error(capsys, pretrain, pretrain_argv(ws, "bad_header.bin", dataset="bad_header.pt"))
    assert re.match(r"pretrain\.py: error: \S+bad_header\.pt: the header is corrupt", line), line
    _flipped(ws, "bad_length.pt", "length")
    with pytest.raises(DatasetFormatError, match=r"array 'length' is damaged"):
        PretrainDataset.open(ws / "bad_length.pt", verify=True)
    assert not list(ws.glob("bad_src.bin*"))
    # --no_verify_dataset trusts the arrays (very large files): the header is still checked, and token ids outside
    # the vocabulary are found when their batch is read (one line naming the step; nothing saved)
    line = user_error(capsys, pretrain, pretrain_argv(ws, "bad_src.bin", "--no_verify_dataset", dataset="bad_src.pt"))
    assert "outside the vocabulary" in line and "--no_verify_dataset" in line, line
    assert not list(ws.glob("bad_src.bin*"))


# ------------------------------------------------------------------------------------------------ case 10
def test_case10_prompt_longer_than_seq_length_is_cut_from_the_left(ws: Path, capsys) -> None:
    from uer.config import model_config_from_args, parse_args_with_config
    from uer.generation import build_parser, main
    from uer.model_builder import build_model
    from uer.model_saver import save_model

    gpt = {**BERT, "embedding": ["word", "pos"], "mask": "causal", "target": ["lm"], "max_seq_length": 64}
    (ws / "gpt.json").write_text(json.dumps(gpt))
    common = ["--vocab_path", str(ws / "vocab.txt"), "--tokenizer", "space", "--config_path", str(ws / "gpt.json")]
    args = parse_args_with_config(build_parser("generate.py"), ["--load_model_path", "x", "--input_path", "x",
                                                                "--output_path", "x", *common])
    args.target = ["lm"]
    torch.manual_seed(0)
    save_model(build_model(model_config_from_args(args, len(VOCAB))), ws / "gpt.bin")
    prompt = " ".join(WORDS[i % 50] for i in range(40))
    (ws / "prompts.txt").write_text(f"w1 w2 w3\n{prompt}\n", encoding="utf-8")
    main(["--load_model_path", str(ws / "gpt.bin"), "--input_path", str(ws / "prompts.txt"), "--output_path",
          str(ws / "story.txt"), "--seq_length", "16", "--top_k", "1", *common])
    short, long = (ws / "story.txt").read_text(encoding="utf-8").splitlines()
    assert long.startswith(prompt) and len(long) > len(prompt)  # the whole line, then new words
    assert short.startswith("w1 w2 w3") and len(short) > len("w1 w2 w3")
    assert ("prompts.txt:2: the beginning has 40 tokens, which leaves no room in --seq_length 16: the model sees "
            "its last 7 tokens and adds up to 8") in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------ case 15
def test_case15_no_more_processes_than_parts_with_text_or_cores(ws: Path, monkeypatch) -> None:
    from uer.data import preprocessing

    lines = (ws / "corpus.txt").read_text(encoding="utf-8").splitlines(keepends=True)[:30]
    (ws / "c30.txt").write_text("".join(lines), encoding="utf-8")
    logs: list[str] = []
    options = preprocessing.PreprocessOptions(corpus_path=str(ws / "c30.txt"), dataset_path=str(ws / "p64.pt"),
                                              target="mlm", tokenizer="space", vocab_path=str(ws / "vocab.txt"),
                                              processes_num=64, seq_length=32)
    monkeypatch.setattr(preprocessing, "available_cores", lambda: 2)
    start = time.monotonic()
    preprocessing.build_dataset(options, log=logs.append)
    assert time.monotonic() - start < 30  # 64 spawned workers took 75 s
    notice = next(line for line in logs if "running" in line)
    assert notice.startswith("--processes_num 64: running 2 process(es) (") and "2 CPU core(s)" in notice
    # The same dataset whatever the number of processes that run the 64 parts.
    monkeypatch.setattr(preprocessing, "available_cores", lambda: 1)
    preprocessing.build_dataset(options.__class__(**{**options.__dict__, "dataset_path": str(ws / "p1.pt")}),
                                log=logs.append)
    assert (ws / "p64.pt").read_bytes() == (ws / "p1.pt").read_bytes()
    # The plan: parts with text dealt round-robin over min(parts with text, cores, --processes_num) processes.
    jobs = [preprocessing.WorkerJob(None, None, i, 0, 1 if i % 2 else 0, "") for i in range(64)]  # 32 with text
    assert [len(g) for g in preprocessing.plan_processes(jobs, 64, cores=16)] == [2] * 16
    assert [[j.worker for j in g] for g in preprocessing.plan_processes(jobs[:8], 8, cores=16)] == [[1], [3], [5], [7]]
    assert len(preprocessing.plan_processes(jobs, 4, cores=16)) == 4


# ------------------------------------------------------------------------------------------------ case 14
def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start_preprocess(ws: Path, big: Path, dataset: Path) -> tuple[subprocess.Popen, list[int]]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "preprocess.py"), "--corpus_path", str(big), "--vocab_path",
                             str(ws / "vocab.txt"), "--dataset_path", str(dataset), "--seq_length", "32",
                             "--tokenizer", "space", "--processes_num", "2", "--dup_factor", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env(),
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        workers = [pid for pid in _children(proc.pid) if "preprocess" in Path(f"/proc/{pid}/cmdline").read_text()
                   or "multiprocessing" in Path(f"/proc/{pid}/cmdline").read_text()]
        shards = [p for p in dataset.parent.iterdir() if ".shard-" in p.name]
        if workers and len(shards) >= 2:
            return proc, workers
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"preprocess.py started no worker: {proc.communicate()}")


@pytest.mark.slow
def test_case14_killed_preprocess_leaves_no_workers_and_the_next_run_removes_its_shards(ws: Path, tmp_path: Path) -> None:
    big = write_corpus(tmp_path / "big.txt", 12000)
    dataset = tmp_path / "big.pt"
    proc, workers = _start_preprocess(ws, big, dataset)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "a worker outlived its killed parent"
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".big.pt."))
    assert left and all(".shard-" in name for name in left)  # SIGKILL: nothing could clean up
    # SIGTERM: workers stopped, shards removed, exit status 143; and this run removed the SIGKILLed run's shards.
    proc, workers = _start_preprocess(ws, big, dataset)
    os.kill(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert f"removed {len(left)} temp file(s) left beside {dataset} by interrupted runs" in out
    time.sleep(0.5)
    assert not any(_alive(pid) for pid in workers)
    assert hidden_files(tmp_path) == [] and not dataset.exists()


def test_case14_sigterm_during_a_save_removes_the_temp_file(tmp_path: Path) -> None:
    code = ("import os, signal, time\n"
            "from uer.utils.cleanup import install_signal_handlers\n"
            "from uer.model_saver import atomic_write\n"
            "install_signal_handlers()\n"
            "def write(tmp):\n"
            "    open(tmp, 'wb').write(b'half a model')\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    time.sleep(30)\n"
            f"atomic_write({str(tmp_path / 'model.bin')!r}, write)\n")
    proc = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), capture_output=True, timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_case14_pretrain_removes_temp_files_of_a_killed_run(ws: Path, capsys) -> None:
    stale = [ws / f".leftover.bin-2.tmp-{dead_pid()}-0a1b2c3d", ws / f".leftover.bin-2.trainer.tmp-{dead_pid()}-99"]
    live = ws / f".leftover.bin-4.tmp-{os.getppid()}-0a1b2c3d"  # a running process's file is left alone
    for path in stale + [live]:
        path.write_bytes(b"partial")
    pretrain(pretrain_argv(ws, "leftover.bin"))
    assert "removed 2 temp file(s) left beside" in capsys.readouterr().out
    assert not any(p.exists() for p in stale) and live.exists()
    live.unlink()


# ------------------------------------------------------------------------------------------------ case 18
def test_case18_one_gpu_rank_alone_trains_on_that_gpu(monkeypatch) -> None:
    import argparse

    from uer import opts
    from uer.utils import launch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    parser = argparse.ArgumentParser()
    opts.add_distributed_options(parser)
    seen = []
    launch.launch(parser.parse_args(["--gpu_ranks", "3"]), lambda args, ctx: seen.append(ctx), "pretrain.py",
                  use_visible_gpus=False)
    assert [(c.device, c.world_size, c.rank) for c in seen] == [(torch.device("cuda", 3), 1, 0)]
    with pytest.raises(UsageError, match=r"--gpu_ranks 5: there is no GPU 5 \(4 visible: 0 to 3"):
        launch.launch(parser.parse_args(["--gpu_ranks", "5"]), lambda args, ctx: None, "pretrain.py")
    # Several ranks still need --world_size to cover them.
    with pytest.raises(UsageError, match=r"--gpu_ranks \[0, 1\] must be distinct ranks in \[0, --world_size 1\)"):
        launch.launch(parser.parse_args(["--gpu_ranks", "0", "1"]), lambda args, ctx: None, "pretrain.py")


# ------------------------------------------------------------------------------------------------ cases 13, 19
def _node(ws: Path, rank: int, master: str, *extra: str, **popen) -> subprocess.Popen:
    argv = pretrain_argv(ws, "nodes.bin", "--world_size", "2", "--gpu_ranks", str(rank), "--backend", "gloo",
                         "--master_ip", master, *extra)
    env = {**subprocess_env(), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(ROOT / "pretrain.py"), *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, **popen)


@pytest.mark.slow
@pytest.mark.distributed
def test_case13_a_rank_that_never_starts_is_named(ws: Path) -> None:
    start = time.monotonic()
    node = _node(ws, 0, f"tcp://127.0.0.1:{free_port()}", "--dist_timeout", "3")
    out = node.communicate(timeout=120)[0]
    assert node.returncode == 2, out
    assert re.search(r"pretrain\.py: error: rank 1 did not join within 3 s \(--dist_timeout\) at --master_ip "
                     r"tcp://\S+: start every node .* \(rank 0; the other ranks on this node were stopped\)", out), out
    assert time.monotonic() - start < 60


@pytest.mark.slow
@pytest.mark.distributed
def test_case13_a_frozen_rank_is_named(ws: Path) -> None:
    master = f"tcp://127.0.0.1:{free_port()}"
    flags = ("--dist_timeout", "4", "--total_steps", "100000", "--save_checkpoint_steps", "100000")
    node0 = _node(ws, 0, master, *flags)
    node1 = _node(ws, 1, master, *flags, start_new_session=True)
    try:
        for line in node0.stdout:
            if "tokens/s" in line:  # both ranks are training
                break
        os.killpg(node1.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        out = node0.communicate(timeout=120)[0]
        assert node0.returncode == 2, out
        assert re.search(r"pretrain\.py: error: rank 1 stopped answering: a collective did not complete within 4 s "
                         r"\(--dist_timeout\) .*ranks that answered: 0 \(rank 0;", out), out
        assert time.monotonic() - stopped < 40
    finally:
        os.killpg(node1.pid, signal.SIGKILL)
        node1.communicate()
        if node0.poll() is None:
            node0.kill()
            node0.communicate()


@pytest.mark.slow
@pytest.mark.distributed
def test_case19_nodes_with_different_options_are_refused_at_start_up(ws: Path) -> None:
    master = f"tcp://127.0.0.1:{free_port()}"
    nodes = [_node(ws, 0, master, "--dist_timeout", "60"),
             _node(ws, 1, master, "--dist_timeout", "60", "--learning_rate", "0.001")]
    outputs = [node.communicate(timeout=180)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [2, 2], outputs
    for out in outputs:
        assert re.search(r"pretrain\.py: error: every node must be started with the same options: --learning_rate "
                         r"is 0\.001 on node \S+ \(ranks 1\) but 2e-05 on rank 0's node \S+ \(ranks 0\) "
                         r"\(rank [01];", out), out
    assert not list(ws.glob("nodes.bin*"))


@pytest.mark.slow
@pytest.mark.distributed
def test_case19_report_and_save_intervals_given_to_node_0_only(ws: Path) -> None:
    """UER-py's docs give --report_steps and --save_checkpoint_steps to node 0 alone: node 1 (here with the
    defaults) takes node 0's values, so both report at node 0's steps and node 0 saves at its steps."""
    master = f"tcp://127.0.0.1:{free_port()}"
    nodes = [_node(ws, 0, master, "--dist_timeout", "60", "--total_steps", "4", "--report_steps", "1",
                   "--save_checkpoint_steps", "2", "--output_model_path", str(ws / "intervals.bin")),
             _node(ws, 1, master, "--dist_timeout", "60", "--total_steps", "4", "--report_steps", "100",
                   "--save_checkpoint_steps", "10000", "--output_model_path", str(ws / "intervals.bin"))]
    outputs = [node.communicate(timeout=180)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    assert len(re.findall(r"\|\s*\d+/\s*4 steps\|", outputs[0])) == 4, outputs[0]  # a report at every step
    assert sorted(p.name for p in ws.glob("intervals.bin-*") if not p.name.endswith(".trainer")) == \
        ["intervals.bin-2", "intervals.bin-4"]

