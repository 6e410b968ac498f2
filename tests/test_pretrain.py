"""pretrain.py end to end: loss falls, exact resume, 2 gloo ranks == 1 process, a dying rank fails fast."""
from __future__ import annotations

import json
import re
import time

import pytest
import torch
import torch.multiprocessing as mp

from uer.cli import pretrain
from conftest import free_port, run_script, shared_path, subprocess_env
from uer.model_loader import load_state_dict
from uer.config import parse_args_with_config
from uer.utils.distributed import destroy_process_group, init_process_group

SMALL_CONFIG = {"emb_size": 32, "feedforward_size": 64, "hidden_size": 32, "hidden_act": "gelu", "heads_num": 2,
                "layers_num": 2, "max_seq_length": 64, "dropout": 0.1, "data_processor": "bert",
                "embedding": ["word", "pos", "seg"], "encoder": "transformer", "mask": "fully_visible",
                "target": ["mlm", "sp"], "tie_weights": True}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A small BERT-format corpus slice, a config, and datasets built by preprocess.py (static and dynamic)."""
    root = tmp_path_factory.mktemp("pretrain")
    corpus = shared_path("corpora/CLUECorpusSmall_bert_sampled.txt")
    vocab = shared_path("models/google_zh_vocab.txt")
    lines = corpus.read_text(encoding="utf-8").splitlines()[:600]
    (root / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "config.json").write_text(json.dumps(SMALL_CONFIG))
    for name, extra in (("static.pt", []), ("dynamic.pt", ["--dynamic_masking"])):
        run_script("preprocess.py", "--corpus_path", str(root / "corpus.txt"), "--vocab_path", str(vocab),
                   "--dataset_path", str(root / name), "--seq_length", "64", "--target", "bert",
                   "--dup_factor", "1", *extra)
    return {"root": root, "vocab": str(vocab), "config": str(root / "config.json")}


def common_args(ws, dataset: str, output: str, *extra: str) -> list[str]:
    return ["--dataset_path", str(ws["root"] / dataset), "--vocab_path", ws["vocab"], "--config_path", ws["config"],
            "--output_model_path", str(ws["root"] / output), "--learning_rate", "1e-3", "--report_steps", "2",
            "--encoder", "transformer", "--target", "bert", *extra]


@pytest.mark.slow
def test_resume_continues_exactly(workspace):
    ws = workspace
    run_script("pretrain.py", *common_args(ws, "dynamic.pt", "full.bin", "--total_steps", "8",
                                           "--save_checkpoint_steps", "4", "--batch_size", "4"))
    run_script("pretrain.py", *common_args(ws, "dynamic.pt", "part.bin", "--total_steps", "8",
                                           "--save_checkpoint_steps", "4", "--batch_size", "4",
                                           "--keep_trainer_state", "all"))  # default: only the newest .trainer
    assert (ws["root"] / "part.bin-4.trainer").exists() and not (ws["root"] / "full.bin-4.trainer").exists()
    (ws["root"] / "part.bin-8").unlink()
    out = run_script("pretrain.py", *common_args(ws, "dynamic.pt", "part.bin", "--total_steps", "8",
                                                 "--save_checkpoint_steps", "4", "--batch_size", "4",
                                                 "--resume_from", str(ws["root"] / "part.bin-4")))
    assert "resumed from" in out.stdout and "at step 4" in out.stdout
    full, resumed = load_state_dict(ws["root"] / "full.bin-8"), load_state_dict(ws["root"] / "part.bin-8")
    middle = load_state_dict(ws["root"] / "full.bin-4")
    assert any(not torch.equal(full[k], middle[k]) for k in full)  # training really moved between 4 and 8
    for key in full:
        assert torch.equal(full[key], resumed[key]), key


def _rank_worker(proc_index: int, argv: list[str], out_dir: str, fail_rank: int) -> None:
    args = parse_args_with_config(pretrain.build_parser(), argv)
    ctx = init_process_group("gloo", args.master_ip, proc_index, 2, torch.device("cpu"))
    torch.set_num_threads(1)
    try:
        if proc_index == fail_rank:
            original = pretrain.PretrainBatches.iter_from

            def failing(self, index):
                for i, batch in enumerate(original(self, index)):
                    if i == 2:
                        raise RuntimeError(f"injected failure on rank {proc_index}")
                    yield batch

            pretrain.PretrainBatches.iter_from = failing
        trainer = pretrain.train(args, ctx)
        torch.save({k: v.detach().clone() for k, v in trainer.model.state_dict().items()},
                   f"{out_dir}/rank{proc_index}.bin")
    finally:
        destroy_process_group()


@pytest.mark.slow
@pytest.mark.distributed
def test_two_gloo_ranks_match_one_process(workspace):
    ws = workspace
    # with gradient clipping: the norm clipped is the global one (after DDP's all-reduce), as in one process
    steps = ["--total_steps", "5", "--save_checkpoint_steps", "5", "--dropout", "0", "--max_grad_norm", "0.5"]
    # The real command line: two CPU ranks started by pretrain.py itself.
    out = run_script("pretrain.py", *common_args(ws, "static.pt", "ddp.bin", *steps, "--batch_size", "4",
                                                 "--world_size", "2", "--gpu_ranks", "0", "1", "--backend", "gloo",
                                                 "--master_ip", f"tcp://127.0.0.1:{free_port()}"))
    assert "on 2 process(es)" in out.stdout
    assert min(map(float, re.findall(r"grad_norm (\d+\.\d+)", out.stdout))) > 0.5  # clipping was active
    run_script("pretrain.py", *common_args(ws, "static.pt", "single.bin", *steps, "--batch_size", "8"))
    ddp, single = load_state_dict(ws["root"] / "ddp.bin-5"), load_state_dict(ws["root"] / "single.bin-5")
    for key in single:
        torch.testing.assert_close(ddp[key], single[key], rtol=1e-4, atol=1e-5, msg=key)
    # Both ranks end with identical parameters (each saves its own copy here).
    argv = common_args(ws, "static.pt", "ranks.bin", *steps, "--batch_size", "4",
                       "--master_ip", f"tcp://127.0.0.1:{free_port()}")
    mp.spawn(_rank_worker, args=(argv, str(ws["root"]), -1), nprocs=2, join=True)
    rank0, rank1 = torch.load(ws["root"] / "rank0.bin"), torch.load(ws["root"] / "rank1.bin")
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
        torch.testing.assert_close(rank0[key], single[key], rtol=1e-4, atol=1e-5, msg=key)


@pytest.mark.slow
@pytest.mark.distributed
def test_a_failing_rank_stops_the_others(workspace):
    argv = common_args(workspace, "static.pt", "fail.bin", "--total_steps", "50", "--batch_size", "4",
                       "--master_ip", f"tcp://127.0.0.1:{free_port()}")
    start = time.monotonic()
    # torch reports the first rank it sees fail: rank 1's own error, or rank 0's collective that lost its peer
    with pytest.raises(mp.ProcessRaisedException, match="injected failure on rank 1|Connection closed by peer"):
        mp.spawn(_rank_worker, args=(argv, str(workspace["root"]), 1), nprocs=2, join=True)
    assert time.monotonic() - start < 120


@pytest.mark.slow
def test_bert_pretraining_learns(workspace):
    """A few hundred steps on real text: MLM loss falls and MLM accuracy rises in the report lines."""
    ws = workspace
    out = run_script("pretrain.py", *common_args(ws, "dynamic.pt", "learn.bin", "--total_steps", "200",
                                                 "--save_checkpoint_steps", "200", "--batch_size", "16",
                                                 "--report_steps", "20"))
    reports = re.findall(r"loss_mlm\s+([\d.]+)\| acc_mlm\s+([\d.]+)", out.stdout)
    assert len(reports) == 10, out.stdout
    losses, accs = [float(l) for l, _ in reports], [float(a) for _, a in reports]
    assert losses[-1] < losses[0] - 2.0, losses
    assert accs[-1] > accs[0] + 0.02, accs  # past the unigram stage: ~0.004 -> ~0.045 with this tiny model
    assert re.search(r"tokens/s", out.stdout)


@pytest.mark.slow
@pytest.mark.distributed
def test_two_nodes_each_starting_their_own_rank(workspace):
    """The multi-node command lines of the docs, with both 'nodes' on this machine: node 0 runs rank 0,
    node 1 runs rank 1, both name rank 0's address; only node 0 writes the model."""
    import subprocess
    import sys

    from conftest import ROOT

    master = f"tcp://127.0.0.1:{free_port()}"
    base = common_args(workspace, "static.pt", "nodes.bin", "--total_steps", "3", "--save_checkpoint_steps", "3",
                       "--batch_size", "4", "--dropout", "0", "--world_size", "2", "--backend", "gloo",
                       "--master_ip", master)
    env = {**subprocess_env(), "OMP_NUM_THREADS": "1"}
    nodes = [subprocess.Popen([sys.executable, str(ROOT / "pretrain.py"), *base, "--gpu_ranks", str(rank)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) for rank in (0, 1)]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    assert "steps" in outputs[0] and "steps" not in outputs[1]  # only rank 0 reports
    assert (workspace["root"] / "nodes.bin-3").is_file()
    single = common_args(workspace, "static.pt", "nodes_ref.bin", "--total_steps", "3", "--save_checkpoint_steps", "3",
                         "--batch_size", "8", "--dropout", "0")
    run_script("pretrain.py", *single)
    two, one = load_state_dict(workspace["root"] / "nodes.bin-3"), load_state_dict(workspace["root"] / "nodes_ref.bin-3")
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5, msg=key)


@pytest.mark.slow
def test_accumulation_steps_equal_a_batch_twice_as_large(workspace):
    """--accumulation_steps 2 x batch 16 reads the instances of batch 32 and normalises by the same global
    count, so the parameters after 3 steps agree to float tolerance (dropout off: it is seeded per step)."""
    ws = workspace
    steps = ["--total_steps", "3", "--save_checkpoint_steps", "3", "--dropout", "0"]
    run_script("pretrain.py", *common_args(ws, "dynamic.pt", "accum.bin", *steps, "--batch_size", "16",
                                           "--accumulation_steps", "2"))
    run_script("pretrain.py", *common_args(ws, "dynamic.pt", "batch32.bin", *steps, "--batch_size", "32"))
    run_script("pretrain.py", *common_args(ws, "dynamic.pt", "batch16.bin", *steps, "--batch_size", "16"))
    accum, big, small = (load_state_dict(ws["root"] / f"{name}.bin-3") for name in ("accum", "batch32", "batch16"))
    for key in big:
        torch.testing.assert_close(accum[key], big[key], rtol=1e-5, atol=1e-6, msg=key)
    # ... which batch 16 alone does not do: the comparison can tell the two apart.
    assert max((small[k] - big[k]).abs().max().item() for k in big) > 1e-4


def test_batch_widths_are_multiples_of_eight(workspace):
    """pretrain.py pads each bucketed batch to a multiple of 8 positions (fewer distinct shapes: less heap
    fragmentation): the widths it trains on, and the same instances as unrounded batches."""
    from uer import opts
    from uer.utils.distributed import DistContext

    args = parse_args_with_config(pretrain.build_parser(),
                                  common_args(workspace, "dynamic.pt", "widths.bin", "--total_steps", "1",
                                              "--batch_size", "4"))
    trainer = pretrain.train(args, DistContext())
    loader = trainer.batches
    widths = {loader.batch(g)["src"].shape[1] for g in range(40)}
    lengths = {int(loader.batch(g)["seg"].gt(0).sum(1).max()) for g in range(40)}
    assert opts.PAD_MULTIPLE == 8 and all(w % 8 == 0 or w == 64 for w in widths), widths
    assert any(n % 8 for n in lengths), lengths  # the rounding had something to do
