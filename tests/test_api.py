"""The programmatic API (uer/api.py): config with overrides, the one loader, embedding without argparse."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from uer.api import TextEncoder, load_config, load_model, resolve_device
from uer.config import ConfigError, model_config_from_args, parse_args_with_config
from uer.data.finetune_data import encode_pair
from uer.model_builder import build_model
from uer.model_saver import save_model
from uer.text.tokenizers import build_tokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("今天气很好这本书看我们")


@pytest.fixture()
def vocab_path(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return str(path)


def test_load_config_equals_the_command_line():
    """Keyword overrides win over the JSON exactly as flags do, legacy spellings included."""
    from uer.cli import pretrain

    argv = ["--dataset_path", "x.pt", "--output_model_path", "x.bin", "--config_path", "models/bert/tiny_config.json",
            "--encoder", "bert", "--target", "albert",
            "--dropout", "0.0", "--layernorm_variant", "uer"]
    cli = model_config_from_args(parse_args_with_config(pretrain.build_parser(), argv), len(VOCAB))
    api = load_config("models/bert/tiny_config.json", len(VOCAB), encoder="bert", target="albert", dropout=0.0,
                      layernorm_variant="uer")
    assert api == cli
    assert (api.hidden_size, api.layers_num, api.target, api.layernorm_variant) == (128, 2, ("mlm", "sp"), "uer")
    with pytest.raises(ConfigError, match="hiden_size"):
        load_config("models/bert/tiny_config.json", len(VOCAB), hiden_size=64)
    with pytest.raises(ConfigError, match="vocab_size"):
        load_config("models/bert/tiny_config.json")


def test_embed_equals_the_models_encoder_output(tmp_path, vocab_path):
    cfg = load_config("models/bert/tiny_config.json", len(VOCAB), dropout=0.0)
    torch.manual_seed(0)
    reference = build_model(cfg)
    save_model(reference, tmp_path / "model.bin")
    encoder = TextEncoder.from_pretrained(tmp_path / "model.bin", vocab_path=vocab_path,
                                          config_path="models/bert/tiny_config.json", device="cpu", dropout=0.0)
    assert encoder.model.target is not None  # the file has pre-training heads, so they were built and loaded
    texts, texts_b = ["今天天气很好", "这本书", "我们看书很好"], [None, "很好看", None]
    tokenizer = build_tokenizer("bert", vocab_path)
    reference.eval()
    expected_mean, expected_first, expected_hidden = [], [], []
    with torch.no_grad():
        for a, b in zip(texts, texts_b):
            ids, first_len = encode_pair(tokenizer, a, b, 128)
            seg = [1] * first_len + [2] * (len(ids) - first_len)
            hidden = reference.encode(torch.tensor([ids]), torch.tensor([seg]))[0]
            expected_hidden.append(hidden.numpy())
            expected_mean.append(hidden.mean(0).numpy())
            expected_first.append(hidden[0].numpy())
    # one call with pairs and single texts mixed is not the API's form: pairs go in their own call
    single = [0, 2]
    got_mean = encoder.embed([texts[i] for i in single], pooling="mean", batch_size=2)
    np.testing.assert_allclose(got_mean, np.stack([expected_mean[i] for i in single]), atol=1e-5)
    got_pair = encoder.embed([texts[1]], [texts_b[1]], pooling="first")
    np.testing.assert_allclose(got_pair[0], expected_first[1], atol=1e-5)
    hidden = encoder.hidden_states([texts[i] for i in single], batch_size=1)
    assert [h.shape for h in hidden] == [expected_hidden[i].shape for i in single]
    np.testing.assert_allclose(hidden[1], expected_hidden[2], atol=1e-5)
    unit = encoder.embed(texts[:1], pooling="max", normalize=True)
    assert abs(np.linalg.norm(unit[0]) - 1.0) < 1e-5


def test_load_model_without_heads_and_devices(tmp_path):
    cfg = load_config("models/bert/tiny_config.json", len(VOCAB))
    torch.manual_seed(1)
    full = build_model(cfg)
    save_model(full, tmp_path / "model.bin")
    bare = load_model(cfg, tmp_path / "model.bin", with_target=False)
    assert bare.target is None and not bare.training
    torch.testing.assert_close(bare.embedding.word.embedding.weight, full.embedding.word.embedding.weight)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda:1")
    with pytest.raises(ConfigError, match="expected auto"):
        resolve_device("tpu?")


def test_readme_python_snippet_runs(tmp_path):
    """The guide's Python API block (docs/python-api.md), run as written (the demo model replaced by a fresh tiny
    one, the demo vocabulary by Google's)."""
    from conftest import ROOT, shared_path

    vocab = shared_path("models/google_zh_vocab.txt")
    section = (ROOT / "docs" / "python-api.md").read_text(encoding="utf-8")
    code = section[section.index("```python\n") + len("```python\n"):section.index("```\n", section.index("```python"))]
    tokenizer = build_tokenizer("bert", str(vocab))
    cfg = load_config("models/bert/tiny_config.json", len(tokenizer.vocab), encoder="bert", target="bert")
    save_model(build_model(cfg), tmp_path / "demo.bin")
    code = code.replace("models/demo_bert_model.bin-300", str(tmp_path / "demo.bin"))
    code = code.replace("models/demo_vocab.txt", str(vocab))
    namespace: dict = {}
    exec(compile(code, "docs/python-api.md", "exec"), namespace)
    assert namespace["vectors"].shape == (2, 128) and namespace["hidden"].shape[1] == 128
    assert sorted(namespace["model"].target.names) == ["mlm", "sp"]
