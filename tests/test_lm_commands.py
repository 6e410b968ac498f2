"""The docs' GPT, ELMo, LSTM, GRU and GatedCNN command lines ("Pretrain models with different encoders and
targets") and the text generator, run here on a slice of CLUECorpusSmall with tiny configs and few steps.

Flags are the docs'; only paths, --processes_num, the step counts and the configs' sizes are scaled down
(the tiny configs below keep the docs configs' structure), and the vocabulary is built from the corpus
slice by scripts/build_vocab.py (~2k characters instead of google_zh_vocab's 21k: the output softmax is
most of the cost of these tiny models, and the suite must stay short on 2 cores).
"""
from __future__ import annotations

import json
import re

import pytest

from conftest import run_script, shared_path
from uer.model_loader import load_state_dict

pytestmark = pytest.mark.slow

STEPS = 40
TINY = {
    "rnn_config.json": {"emb_size": 64, "hidden_size": 64, "layers_num": 2, "max_seq_length": 256, "dropout": 0.1,
                        "data_processor": "lm", "embedding": ["word"], "remove_embedding_layernorm": True,
                        "encoder": "lstm", "target": ["lm"]},
    "birnn_config.json": {"emb_size": 64, "hidden_size": 128, "layers_num": 2, "max_seq_length": 256, "dropout": 0.1,
                          "data_processor": "bilm", "embedding": ["word"], "remove_embedding_layernorm": True,
                          "encoder": "bilstm", "target": ["bilm"]},
    "gatedcnn_9_config.json": {"emb_size": 32, "hidden_size": 96, "layers_num": 3, "kernel_size": 4, "block_size": 2,
                               "max_seq_length": 256, "dropout": 0.1, "data_processor": "lm", "embedding": ["word"],
                               "remove_embedding_layernorm": True, "encoder": "gatedcnn", "target": ["lm"]},
}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm_docs")
    lines = shared_path("corpora/CLUECorpusSmall_sampled.txt").read_text(encoding="utf-8").splitlines()[:300]
    (root / "book_review.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for name, cfg in TINY.items():
        (root / name).write_text(json.dumps(cfg))
    vocab = str(root / "vocab.txt")
    run_script("scripts/build_vocab.py", "--corpus_path", str(root / "book_review.txt"), "--vocab_path", vocab,
               "--tokenizer", "char", "--min_count", "2")
    for target in ("lm", "bilm"):
        run_script("preprocess.py", "--corpus_path", str(root / "book_review.txt"), "--vocab_path", vocab,
                   "--dataset_path", str(root / f"{target}.pt"), "--processes_num", "2", "--target", target,
                   "--seq_length", "64")
    return {"root": root, "vocab": vocab}


def pretrain(ws, dataset: str, output: str, config: str, *flags: str) -> list[float]:
    """Runs pretrain.py; returns the reported losses (one per 10 steps) after checking the checkpoint."""
    out = run_script("pretrain.py", "--dataset_path", str(ws["root"] / dataset), "--vocab_path", ws["vocab"],
                     "--output_model_path", str(ws["root"] / output), "--config_path", config, *flags,
                     "--total_steps", str(STEPS), "--save_checkpoint_steps", str(STEPS), "--report_steps", "10",
                     "--batch_size", "8")
    assert (ws["root"] / f"{output}-{STEPS}").is_file()
    losses = [float(x) for x in re.findall(r"loss_b?i?lm\s+([\d.]+)", out.stdout)]
    assert len(losses) == STEPS // 10, out.stdout
    return losses


def finetune(ws, model: str, config: str, encoder: str, pooling: str) -> None:
    """The README's fine-tuning example for this encoder (run_classifier.py, 1 epoch on a small split)."""
    data = shared_path("datasets/test_data/book_review")
    out = run_script("run_classifier.py", "--pretrained_model_path", str(ws["root"] / model), "--vocab_path", ws["vocab"],
                     "--config_path", config, "--train_path", str(data / "train.tsv"), "--dev_path", str(data / "dev.tsv"),
                     "--test_path", str(data / "test.tsv"), "--output_model_path", str(ws["root"] / f"ft_{encoder}.bin"),
                     "--epochs_num", "1", "--batch_size", "64", "--learning_rate", "1e-3", "--embedding", "word",
                     "--encoder", encoder, "--pooling", pooling)
    # (loading is strict for embedding and encoder keys: a file that did not fit would have failed)
    assert "Acc." in out.stdout + out.stderr


def test_gpt_and_text_generator(ws):
    # docs: --config_path models/bert_base_config.json (flat legacy name; the tiny size here)
    losses = pretrain(ws, "lm.pt", "gpt.bin", "models/bert_tiny_config.json", "--learning_rate", "1e-4",
                      "--encoder", "gpt", "--target", "lm")
    assert losses[-1] < losses[0] - 0.05, losses
    model = str(ws["root"] / f"gpt.bin-{STEPS}")
    keys = load_state_dict(model)
    assert "target.lm.output_layer.weight" in keys and "encoder.transformer.1.self_attn.final_linear.weight" in keys

    prompts = ["这本书写得", "今天天气"]
    (ws["root"] / "story_beginning.txt").write_text("\n".join(prompts) + "\n", encoding="utf-8")
    run_script("scripts/generate.py", "--pretrained_model_path", model, "--vocab_path", ws["vocab"],
               "--input_path", str(ws["root"] / "story_beginning.txt"), "--output_path",
               str(ws["root"] / "story_full.txt"), "--config_path", "models/bert_tiny_config.json",
               "--encoder", "gpt", "--target", "lm", "--seq_length", "32")
    story = (ws["root"] / "story_full.txt").read_text(encoding="utf-8").splitlines()
    assert len(story) == 2 and all(s.startswith(p) and len(s) > len(p) for s, p in zip(story, prompts)), story
    # The newer script name and flags; greedy decoding with and without the key/value cache agree.
    outputs = []
    for extra in ([], ["--no_cache"]):
        out = ws["root"] / f"greedy{len(extra)}.txt"
        run_script("scripts/generate_lm.py", "--load_model_path", model, "--vocab_path", ws["vocab"],
                   "--test_path", str(ws["root"] / "story_beginning.txt"), "--prediction_path", str(out),
                   "--config_path", "models/bert/tiny_config.json", "--encoder", "transformer", "--mask", "causal",
                   "--seq_length", "32", "--top_k", "1", *extra)
        outputs.append(out.read_text(encoding="utf-8"))
    assert outputs[0] == outputs[1] and outputs[0].startswith(prompts[0])


def test_elmo(ws):
    losses = pretrain(ws, "bilm.pt", "elmo.bin", str(ws["root"] / "birnn_config.json"), "--learning_rate", "5e-4",
                      "--embedding", "word", "--encoder", "bilstm", "--target", "bilm")
    assert losses[-1] < losses[0] - 0.02, losses
    keys = load_state_dict(ws["root"] / f"elmo.bin-{STEPS}")
    assert {"encoder.rnn_forward.weight_ih_l0", "encoder.rnn_backward.weight_hh_l1", "target.bilm.output_layer.weight"} <= set(keys)
    finetune(ws, f"elmo.bin-{STEPS}", str(ws["root"] / "birnn_config.json"), "bilstm", "mean")


@pytest.mark.parametrize("encoder", ["lstm", "gru"])
def test_lstm_and_gru(ws, encoder):
    losses = pretrain(ws, "lm.pt", f"{encoder}.bin", str(ws["root"] / "rnn_config.json"), "--learning_rate", "1e-3",
                      "--embedding", "word", "--encoder", encoder, "--target", "lm")
    assert losses[-1] < losses[0] - 0.05, losses
    if encoder == "lstm":
        finetune(ws, f"lstm.bin-{STEPS}", str(ws["root"] / "rnn_config.json"), "lstm", "mean")


def test_gatedcnn(ws):
    losses = pretrain(ws, "lm.pt", "gatedcnn.bin", str(ws["root"] / "gatedcnn_9_config.json"), "--learning_rate",
                      "1e-4", "--embedding", "word", "--encoder", "gatedcnn", "--target", "lm")
    assert losses[-1] < losses[0] - 0.05, losses
    finetune(ws, f"gatedcnn.bin-{STEPS}", str(ws["root"] / "gatedcnn_9_config.json"), "gatedcnn", "max")
