"""The tool scripts of UER-py's "Scripts" section (uer/tools, scripts/*.py), checked by value: averaging gives the
mean, the cloze test predicts the MLM head's argmax, features equal the encoder's output, whitening gives
identity covariance, nearest neighbours are ordered by cosine without the word itself (UER-py's blocks), the vocabulary
adapter keeps shared rows bit-identical, the multi-task inference reads every head. The docs' command lines
run as written (paths adjusted, tiny configs). The word-based recipe and the stacking recipe are in
tests/test_tools_recipes.py.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT, run_script, shared_path, subprocess_env
from uer.api import TextEncoder, load_config, load_model
from uer.model_builder import build_model
from uer.model_loader import load_state_dict
from uer.model_saver import save_model, save_state_dict
from uer.text.tokenizers import build_tokenizer
from uer.text.vocab import Vocab

TINY = "models/bert/tiny_config.json"
ENV = {"OMP_NUM_THREADS": "1"}
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["中国", "人民", "经济", "发展", "今天", "天气", "很", "好", "我们", "喜欢", "读书", "北京", "上海", "城市",
         "的", "了", "在", "是", "有", "和"]
SENTENCES = ["中国 人民 喜欢 读书", "今天 天气 很 好", "北京 和 上海 是 城市", "我们 在 北京 读书 了",
             "经济 发展 很 好", "上海 的 天气 好", "中国 经济 在 发展", "我们 喜欢 今天 的 天气"]


def tool(script: str, *args: str) -> subprocess.CompletedProcess:
    return run_script(script, *args, env=ENV)


def failing(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run a tool expected to refuse its input: exit status 2 and one line on stderr."""
    proc = subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True, text=True, timeout=300,
                          env={**subprocess_env(), **ENV}, cwd=ROOT)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc


def write_vocab(path: Path, tokens: list[str]) -> str:
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return str(path)


def tiny_model(path: Path, vocab_size: int, seed: int, **overrides) -> torch.nn.Module:
    """A freshly initialised tiny BERT with its MLM/NSP heads (tied MLM output), saved in UER-py's format."""
    torch.manual_seed(seed)
    model = build_model(load_config(TINY, vocab_size, **overrides))
    # random layer norms and biases too, so that no output is special by construction
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("gamma", "beta", "bias")):
                param.add_(torch.randn_like(param) * 0.1)
    save_model(model, path)
    return model.eval()


@pytest.fixture(scope="module")
def word(tmp_path_factory):
    """A word-based tiny model over a 25-token vocabulary, and texts in that vocabulary."""
    root = tmp_path_factory.mktemp("tools")
    vocab = write_vocab(root / "word_vocab.txt", SPECIALS + WORDS)
    model = tiny_model(root / "word_model.bin", len(SPECIALS + WORDS), seed=3)
    (root / "sentences.txt").write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    return {"root": root, "vocab": vocab, "model": str(root / "word_model.bin"), "module": model,
            "tokenizer": build_tokenizer("space", vocab)}


def encode_ids(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        src = torch.tensor([ids])
        return model.encode(src, torch.ones_like(src))[0]


# ------------------------------------------------------------------------------------------- averaging

def test_average_model_is_the_elementwise_mean(tmp_path):
    a = tiny_model(tmp_path / "a.bin", 30, seed=1)
    b = tiny_model(tmp_path / "b.safetensors", 30, seed=2)
    tool("scripts/average_model.py", "--model_list_path", str(tmp_path / "a.bin"), str(tmp_path / "b.safetensors"),
         "--output_model_path", str(tmp_path / "mean.bin"))
    tool("scripts/average_models.py", "--model_list_path", str(tmp_path / "a.bin"), str(tmp_path / "a.bin"),
         str(tmp_path / "b.safetensors"), "--output_model_path", str(tmp_path / "mean3.safetensors"))
    mean, mean3 = load_state_dict(tmp_path / "mean.bin"), load_state_dict(tmp_path / "mean3.safetensors")
    sa, sb = a.state_dict(), b.state_dict()
    assert set(mean) == set(sa) == set(mean3)
    for key in sa:
        expected = ((sa[key].double() + sb[key].double()) / 2).float()
        assert torch.equal(mean[key], expected), key
        assert torch.equal(mean3[key], ((2 * sa[key].double() + sb[key].double()) / 3).float()), key
    assert not torch.equal(mean["embedding.word.embedding.weight"], sa["embedding.word.embedding.weight"])


def test_average_model_names_the_first_difference_and_refuses_to_overwrite(tmp_path):
    tiny_model(tmp_path / "a.bin", 30, seed=1)
    tiny_model(tmp_path / "one_layer.bin", 30, seed=2, layers_num=1)
    tiny_model(tmp_path / "vocab31.bin", 31, seed=2)
    proc = failing("scripts/average_model.py", "--model_list_path", str(tmp_path / "a.bin"),
                   str(tmp_path / "one_layer.bin"), "--output_model_path", str(tmp_path / "out.bin"))
    assert "lacks 'encoder.transformer.1." in proc.stderr
    proc = failing("scripts/average_model.py", "--model_list_path", str(tmp_path / "a.bin"),
                   str(tmp_path / "vocab31.bin"), "--output_model_path", str(tmp_path / "out.bin"))
    assert "embedding.word.embedding.weight has shape (31, 128)" in proc.stderr
    before = (tmp_path / "a.bin").read_bytes()
    proc = failing("scripts/average_model.py", "--model_list_path", str(tmp_path / "a.bin"),
                   str(tmp_path / "vocab31.bin"), "--output_model_path", str(tmp_path / "a.bin"))
    assert "is the same file as" in proc.stderr and (tmp_path / "a.bin").read_bytes() == before
    assert not (tmp_path / "out.bin").exists()


# ------------------------------------------------------------------------------------------- check_model

def test_check_model_reports_the_file_and_the_loading_check(tmp_path, word):
    model = word["module"]
    out = tool("scripts/check_model.py", "--load_model_path", word["model"], "--config_path", TINY,
               "--vocab_path", word["vocab"]).stdout
    unique = sum(p.numel() for p in model.parameters())  # the tied MLM output counted once
    assert "keys: current UER-py names" in out
    assert "embedding: word + pos + seg (vocabulary 25, emb_size 128, 512 positions)" in out
    assert "encoder: transformer, 2 layer(s), hidden_size 128, feedforward_size 512" in out
    assert "heads: target.mlm (output tied to the word embedding), target.sp" in out and f"parameters: {unique:,} (" in out
    assert "NaN/inf: none" in out and "heads (from models/bert/tiny_config.json): 2" in out
    assert "loading with models/bert/tiny_config.json: OK" in out
    # a NaN, a legacy key name and a config of another size: reported, exit status 1
    state = load_state_dict(word["model"])
    state["encoder.transformer.1.feed_forward.linear_1.bias"][3] = float("nan")
    state["embedding.word_embedding.weight"] = state.pop("embedding.word.embedding.weight")
    torch.save(state, tmp_path / "bad.bin")  # (save_state_dict refuses NaN)
    three_layers = tmp_path / "three_layers_config.json"
    three_layers.write_text(json.dumps(dict(json.loads((ROOT / TINY).read_text()), layers_num=3)), encoding="utf-8")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts/check_model.py"), "--input_model_path",
                           str(tmp_path / "bad.bin"), "--config_path", str(three_layers)], capture_output=True,
                          text=True, timeout=300, env={**subprocess_env(), **ENV}, cwd=ROOT)
    assert proc.returncode == 1, proc.stderr
    assert "UER-py 2020-era names" in proc.stdout
    assert "NaN/inf: encoder.transformer.1.feed_forward.linear_1.bias (1 of 512 values)" in proc.stdout
    assert "FAILED" in proc.stdout and "encoder.transformer.2.self_attn" in proc.stdout


# ------------------------------------------------------------------------------------------- cloze test

def test_cloze_predictions_are_the_argmax_of_the_mlm_logits(tmp_path, word):
    lines = ["中国 [MASK] 喜欢 读书", "今天 天气 [MASK] 好 [MASK]", "北京 和 上海 是 城市", "我们 在 北京 读书 了"]
    (tmp_path / "cloze_input.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # the docs' command line (+ the tiny config and the space tokenizer of a word-based model)
    tool("scripts/cloze_test.py", "--input_path", str(tmp_path / "cloze_input.txt"), "--pretrained_model_path",
         word["model"], "--vocab_path", word["vocab"], "--output_path", str(tmp_path / "output.txt"),
         "--config_path", TINY, "--tokenizer", "space", "--topn", "5")
    # read as UER-py's output is read: 4-line blocks (text, predicted, correct, blank), one per masked position
    rows = (tmp_path / "output.txt").read_text(encoding="utf-8").split("\n")
    assert len(rows) % 4 == 1 and rows[-1] == ""
    blocks = [rows[i:i + 4] for i in range(0, len(rows) - 1, 4)]
    assert all(b[1].startswith("Predicted answer: ") and b[2].startswith("Correct answer: ") and b[3] == ""
               for b in blocks)
    masks_per_line = [max(line.split(" ").count("[MASK]"), 1) for line in lines]
    assert len(blocks) == sum(masks_per_line) == 5
    tokenizer, model = word["tokenizer"], word["module"]
    vocab = tokenizer.vocab
    block_iter = iter(blocks)
    for line, count in zip(lines, masks_per_line):
        mine = [next(block_iter) for _ in range(count)]
        seen = mine[0][0].split(" ")
        assert seen[0] == "[CLS]" and seen[-1] == "[SEP]" and all(b[0] == mine[0][0] for b in mine)
        ids = vocab.to_ids(seen)
        positions = [i for i, t in enumerate(ids) if t == vocab.mask_id]
        with torch.no_grad():
            hidden = model.encode(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long))
            probs = torch.softmax(model.target.mlm.logits(hidden, torch.tensor(positions)), -1)
        for row_probs, block in zip(probs, mine):
            tokens = block[1].removeprefix("Predicted answer: ").split(" ")
            best = torch.argsort(row_probs, descending=True, stable=True)[:5]
            assert tokens == vocab.to_tokens(best.tolist())
            assert tokens[0] == vocab.i2w[int(row_probs.argmax())]
        answer = mine[0][2].removeprefix("Correct answer: ")
        if "[MASK]" in line:
            assert seen[1:-1] == line.split(" ") and answer == ""
        else:  # one token masked by the tool: the answer puts the line back together
            assert seen.count("[MASK]") == 1 and [answer if t == "[MASK]" else t for t in seen[1:-1]] == line.split(" ")
    # --output_prob: a Probabilities line after each prediction, the probabilities of the predicted tokens
    tool("scripts/cloze_test.py", "--test_path", str(tmp_path / "cloze_input.txt"), "--load_model_path",
         word["model"], "--vocab_path", word["vocab"], "--prediction_path", str(tmp_path / "output_prob.txt"),
         "--config_path", TINY, "--tokenizer", "space", "--topn", "5", "--output_prob")
    prob_blocks = (tmp_path / "output_prob.txt").read_text(encoding="utf-8").split("\n\n")[:-1]
    first = prob_blocks[0].split("\n")
    assert len(prob_blocks) == 5 and first[2].startswith("Probabilities: ") and first[:2] == blocks[0][:2]
    ids = vocab.to_ids(first[0].split(" "))
    with torch.no_grad():
        hidden = model.encode(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long))
        row = torch.softmax(model.target.mlm.logits(hidden, torch.tensor([ids.index(vocab.mask_id)])), -1)[0]
    shown = np.array(first[2].removeprefix("Probabilities: ").split(), float)
    np.testing.assert_allclose(shown, row[vocab.to_ids(first[1].removeprefix("Predicted answer: ").split(" "))],
                               atol=5e-5)


# ------------------------------------------------------------------------------------------- features

def test_extract_feature_equals_the_encoder_output(tmp_path, word):
    sentences = str(word["root"] / "sentences.txt")
    # the docs' command line: per-token hidden states in a tensor file
    tool("scripts/extract_feature.py", "--input_path", sentences, "--vocab_path", word["vocab"],
         "--pretrained_model_path", word["model"], "--output_path", str(tmp_path / "feature_output.pt"),
         "--config_path", TINY, "--tokenizer", "space", "--batch_size", "3")
    states = torch.load(tmp_path / "feature_output.pt", weights_only=True)
    tokenizer, model = word["tokenizer"], word["module"]
    # [CLS] text [SEP], the default encoding of single texts
    assert states.shape == (len(SENTENCES), 2 + max(len(s.split()) for s in SENTENCES), 128)
    for i, sentence in enumerate(SENTENCES):
        expected = encode_ids(model, [tokenizer.vocab.cls_id] + tokenizer.encode(sentence) + [tokenizer.vocab.sep_id])
        torch.testing.assert_close(states[i, :len(expected)], expected, atol=2e-5, rtol=0)
        assert not states[i, len(expected):].any()
    # UER-py's newer spelling: pooled vectors (padding excluded) in .npy and .safetensors
    for pooling, name in (("mean", "vectors.npy"), ("max", "vectors.safetensors")):
        tool("scripts/extract_features.py", "--test_path", sentences, "--vocab_path", word["vocab"],
             "--load_model_path", word["model"], "--prediction_path", str(tmp_path / name), "--config_path", TINY,
             "--tokenizer", "space", "--pooling", pooling, "--batch_size", "2")
    vectors = np.load(tmp_path / "vectors.npy", allow_pickle=False)
    from safetensors.numpy import load_file

    max_vectors = load_file(str(tmp_path / "vectors.safetensors"))["features"]
    for i, sentence in enumerate(SENTENCES):
        expected = encode_ids(model, [tokenizer.vocab.cls_id] + tokenizer.encode(sentence) + [tokenizer.vocab.sep_id])
        np.testing.assert_allclose(vectors[i], expected.mean(0).numpy(), atol=2e-5)
        np.testing.assert_allclose(max_vectors[i], expected.max(0).values.numpy(), atol=2e-5)
    encoder = TextEncoder(load_model(load_config(TINY, 25), word["model"]), tokenizer, load_config(TINY, 25))
    np.testing.assert_array_equal(vectors, encoder.embed(SENTENCES, pooling="mean"))  # the serving vectors


def test_whitened_vectors_have_identity_covariance(tmp_path, word):
    from uer.tools.features import whiten

    rng = np.random.default_rng(0)
    raw = rng.normal(size=(300, 16)) @ rng.normal(size=(16, 16)) + 5.0  # correlated, off-centre
    white = whiten(raw.astype(np.float32), 10).astype(np.float64)
    np.testing.assert_allclose(white.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(10), atol=1e-4)
    # from the command line: 40 texts of the word model, mean vectors whitened to 12 dimensions
    rng = np.random.default_rng(1)
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(2, 9))) for _ in range(40)]
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    tool("scripts/extract_features.py", "--test_path", str(tmp_path / "texts.txt"), "--vocab_path", word["vocab"],
         "--load_model_path", word["model"], "--prediction_path", str(tmp_path / "white.pt"), "--config_path", TINY,
         "--tokenizer", "space", "--pooling", "mean", "--whitening_size", "12")
    white = torch.load(tmp_path / "white.pt", weights_only=True).double().numpy()
    assert white.shape == (40, 12)
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(12), atol=1e-3)
    proc = failing("scripts/extract_features.py", "--test_path", str(tmp_path / "texts.txt"), "--vocab_path",
                   word["vocab"], "--load_model_path", word["model"], "--prediction_path", str(tmp_path / "w.npy"),
                   "--config_path", TINY, "--tokenizer", "space", "--whitening_size", "64")
    assert "span 39 dimension(s)" in proc.stderr and not (tmp_path / "w.npy").exists()


# ------------------------------------------------------------------------------------------- embeddings, neighbours

def test_extract_embedding_writes_the_matrix_in_word2vec_format(tmp_path, word):
    for script, flag in (("scripts/extract_embedding.py", "--output_word_embedding_path"),
                         ("scripts/extract_embeddings.py", "--word_embedding_path")):
        tool(script, "--load_model_path", word["model"], "--vocab_path", word["vocab"], flag, str(tmp_path / "e.txt"))
        lines = (tmp_path / "e.txt").read_text(encoding="utf-8").splitlines()
        assert lines[0] == "25 128"
        matrix = word["module"].embedding.word.embedding.weight.detach().numpy()
        tokens = [line.split(" ")[0] for line in lines[1:]]
        values = np.array([line.split(" ")[1:] for line in lines[1:]], dtype=np.float32)
        assert tokens == SPECIALS + WORDS
        np.testing.assert_allclose(values, matrix, rtol=1e-7, atol=0)


def neighbours(text: str) -> dict[str, list[tuple[str, float]]]:
    """Read the output as a reader of UER-py's topn_words_* output does: blocks that end with a blank line,
    an optional ``Original sentence:`` line, ``Target word: w``, then ``token<TAB>cosine`` lines."""
    out = {}
    assert text.endswith("\n\n"), "every block ends with a blank line"
    for block in text.split("\n\n")[:-1]:
        rows = block.splitlines()
        if rows[0].startswith("Original sentence: "):
            rows = rows[1:]
        assert rows[0].startswith("Target word: ")
        out[rows[0].removeprefix("Target word: ")] = [(r.split("\t")[0], float(r.split("\t")[1])) for r in rows[1:]]
    return out


def test_topn_words_indep_ranks_by_cosine_without_the_word_itself(tmp_path, word):
    (tmp_path / "target_words.txt").write_text("中国\n天气\n", encoding="utf-8")
    cand = write_vocab(tmp_path / "cand.txt", SPECIALS + WORDS[:12] + ["不在词表"])
    # the docs' word-based command line
    out = tool("scripts/topn_words_indep.py", "--pretrained_model_path", word["model"], "--vocab_path", word["vocab"],
               "--cand_vocab_path", cand, "--target_words_path", str(tmp_path / "target_words.txt"),
               "--topn", "6").stdout
    matrix = word["module"].embedding.word.embedding.weight.detach().double()
    vocab = word["tokenizer"].vocab
    result = neighbours(out)
    assert list(result) == ["中国", "天气"]
    for target, ranked in result.items():
        assert target not in dict(ranked) and len(ranked) == 6  # UER-py: the 6 best other words
        sims = [s for _, s in ranked]
        assert sims == sorted(sims, reverse=True)
        assert all(token in WORDS[:12] for token, _ in ranked)  # specials and unknown candidates left out
        for token, sim in ranked:
            expected = torch.cosine_similarity(matrix[vocab.get(target)], matrix[vocab.get(token)], dim=0)
            assert abs(sim - float(expected)) < 1e-6
        # nothing better was left out
        others = [t for t in WORDS[:12] if t not in dict(ranked) and t != target]
        best_left = max(float(torch.cosine_similarity(matrix[vocab.get(target)], matrix[vocab.get(t)], dim=0))
                        for t in others)
        assert best_left <= sims[-1] + 1e-9


def test_topn_words_dep_compares_hidden_states_at_the_word(tmp_path, word):
    (tmp_path / "target_words_with_sentences.txt").write_text(
        "中国 人民 喜欢 读书\t喜欢\n今天 天气 很 好\t天气\n", encoding="utf-8")
    # the docs' word-based command line (its config is BERT-base; the model here is tiny)
    out = tool("scripts/topn_words_dep.py", "--pretrained_model_path", word["model"], "--vocab_path", word["vocab"],
               "--cand_vocab_path", word["vocab"], "--sent_path", str(tmp_path / "target_words_with_sentences.txt"),
               "--config_path", TINY, "--batch_size", "7", "--seq_length", "32", "--tokenizer", "space",
               "--topn", "8").stdout
    (tmp_path / "new_order.txt").write_text("喜欢\t中国 人民 喜欢 读书\n", encoding="utf-8")
    newer = tool("scripts/topn_words_dep.py", "--load_model_path", word["model"], "--vocab_path", word["vocab"],
                 "--test_path", str(tmp_path / "new_order.txt"), "--config_path", TINY, "--tokenizer", "space",
                 "--topn", "8", "--prediction_path", str(tmp_path / "dep.txt")).stdout
    result = neighbours(out)
    assert neighbours(newer)["喜欢"] == result["喜欢"] == neighbours((tmp_path / "dep.txt").read_text())["喜欢"]
    model, vocab = word["module"], word["tokenizer"].vocab
    for sentence, target in (("中国 人民 喜欢 读书", "喜欢"), ("今天 天气 很 好", "天气")):
        ids = [vocab.cls_id] + vocab.to_ids(sentence.split())
        position = ids.index(vocab.get(target))
        reference = encode_ids(model, ids)[position].double()
        ranked = result[target]
        assert target not in dict(ranked) and len(ranked) == 8
        sims = [s for _, s in ranked]
        assert sims == sorted(sims, reverse=True)
        for token, sim in ranked[:3]:
            swapped = list(ids)
            swapped[position] = vocab.get(token)
            expected = torch.cosine_similarity(reference, encode_ids(model, swapped)[position].double(), dim=0)
            assert abs(sim - float(expected)) < 1e-5
    (tmp_path / "bad.txt").write_text("今天 天气 很 好\t读书\n", encoding="utf-8")
    proc = failing("scripts/topn_words_dep.py", "--load_model_path", word["model"], "--vocab_path", word["vocab"],
                   "--sent_path", str(tmp_path / "bad.txt"), "--config_path", TINY, "--tokenizer", "space")
    assert f"{tmp_path / 'bad.txt'}:1: the word '读书' is not a token of its sentence" in proc.stderr


def test_topn_words_char_based_command_lines(tmp_path):
    """The docs' character-based command lines, over google_zh_vocab (candidates: a 300-token slice)."""
    vocab = shared_path("models/google_zh_vocab.txt")
    tokens = list(Vocab.from_file(vocab))
    tiny_model(tmp_path / "google_zh_model.bin", len(tokens), seed=5)
    cand = write_vocab(tmp_path / "cand_vocab.txt", tokens[100:100 + 300] + ["天", "气"])
    (tmp_path / "target_words.txt").write_text("天\n", encoding="utf-8")
    out = tool("scripts/topn_words_indep.py", "--pretrained_model_path", str(tmp_path / "google_zh_model.bin"),
               "--vocab_path", str(vocab), "--cand_vocab_path", cand, "--target_words_path",
               str(tmp_path / "target_words.txt")).stdout
    assert "天" not in dict(neighbours(out)["天"]) and len(neighbours(out)["天"]) == 15  # UER-py's default 15
    (tmp_path / "target_words_with_sentences.txt").write_text("今天天气很好\t天\n", encoding="utf-8")
    out = tool("scripts/topn_words_dep.py", "--pretrained_model_path", str(tmp_path / "google_zh_model.bin"),
               "--vocab_path", str(vocab), "--cand_vocab_path", cand, "--sent_path",
               str(tmp_path / "target_words_with_sentences.txt"), "--config_path", TINY,
               "--batch_size", "256", "--seq_length", "32", "--tokenizer", "bert").stdout
    assert out.startswith("Original sentence: 今天天气很好\nTarget word: 天\n")
    ranked = neighbours(out)["天"]
    assert "天" not in dict(ranked) and [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)


# ------------------------------------------------------------------------------------------- vocabularies

def test_diff_vocab(tmp_path):
    one = write_vocab(tmp_path / "v1.txt", SPECIALS + ["a", "b", "c", "d"])
    two = write_vocab(tmp_path / "v2.txt", SPECIALS + ["c", "a", "x"])
    out = tool("scripts/diff_vocab.py", "--vocab_1", one, "--vocab_2", two, "--output_path",
               str(tmp_path / "diff.tsv")).stdout
    assert "vocab_1 - vocab_2 = 2: b d" in out and "vocab_2 - vocab_1 = 1: x" in out
    assert "vocab_1 & vocab_2 = 7" in out and "shared tokens with a different id: 2: a c" in out
    rows = [r.split("\t") for r in (tmp_path / "diff.tsv").read_text(encoding="utf-8").splitlines()]
    assert rows[0] == ["token", "id_1", "id_2"] and ["a", "5", "6"] in rows and ["x", "-1", "7"] in rows
    assert ["d", "8", "-1"] in rows and len(rows) == 1 + 10


def test_vocab_adapter_keeps_shared_rows_and_predictions(tmp_path, word):
    old_tokens = SPECIALS + WORDS
    # new vocabulary: some words dropped, the rest reordered, new words added in between
    new_tokens = SPECIALS + ["城市", "新词", "天气", "中国", "另一个", "喜欢", "读书", "今天", "很", "好", "的"]
    new_vocab = write_vocab(tmp_path / "new_vocab.txt", new_tokens)
    tool("scripts/dynamic_vocab_adapter.py", "--old_model_path", word["model"], "--old_vocab_path", word["vocab"],
         "--new_vocab_path", new_vocab, "--new_model_path", str(tmp_path / "new_model.bin"))
    old, new = load_state_dict(word["model"]), load_state_dict(tmp_path / "new_model.bin")
    shared = [t for t in new_tokens if t in old_tokens]
    new_ids = torch.tensor([new_tokens.index(t) for t in shared])
    old_ids = torch.tensor([old_tokens.index(t) for t in shared])
    fresh = torch.tensor([i for i, t in enumerate(new_tokens) if t not in old_tokens])
    for key in ("embedding.word.embedding.weight", "target.mlm.linear_2.weight", "target.mlm.linear_2.bias"):
        assert new[key].shape[0] == len(new_tokens)
        assert torch.equal(new[key][new_ids], old[key][old_ids]), key  # bit-identical
    assert not new["target.mlm.linear_2.bias"][fresh].any()  # the builder's zero biases
    assert torch.equal(new["target.mlm.linear_2.weight"], new["embedding.word.embedding.weight"])  # still tied
    assert 0.005 < float(new["embedding.word.embedding.weight"][fresh].std()) < 0.05  # N(0, 0.02)
    assert all(torch.equal(new[k], v) for k, v in old.items() if k not in (
        "embedding.word.embedding.weight", "target.mlm.linear_2.weight", "target.mlm.linear_2.bias"))
    # the adapted model predicts as before on text of shared tokens (logits of the shared tokens)
    old_model = word["module"]
    new_model = load_model(load_config(TINY, len(new_tokens)), tmp_path / "new_model.bin")
    text = ["中国", "喜欢", "读书", "[MASK]", "今天", "天气", "很", "好"]
    old_in = [old_tokens.index(t) for t in ["[CLS]"] + text + ["[SEP]"]]
    new_in = [new_tokens.index(t) for t in ["[CLS]"] + text + ["[SEP]"]]
    positions = torch.arange(len(old_in))
    with torch.no_grad():
        old_logits = old_model.target.mlm.logits(encode_ids(old_model, old_in)[None], positions)
        new_logits = new_model.target.mlm.logits(encode_ids(new_model, new_in)[None], positions)
    torch.testing.assert_close(new_logits[:, new_ids], old_logits[:, old_ids], atol=1e-5, rtol=0)
    assert torch.equal(new_logits[:, new_ids].argmax(-1), old_logits[:, old_ids].argmax(-1))
    proc = failing("scripts/dynamic_vocab_adapter.py", "--old_model_path", word["model"], "--old_vocab_path",
                   new_vocab, "--new_vocab_path", word["vocab"], "--new_model_path", str(tmp_path / "x.bin"))
    assert "is not the model's vocabulary" in proc.stderr and not (tmp_path / "x.bin").exists()


# ------------------------------------------------------------------------------------------- multi-task inference

def test_multitask_inference_reads_every_head(tmp_path, word):
    from uer.finetune.tasks.classifier_mt import MultitaskClassifier

    cfg = load_config(TINY, 25)
    torch.manual_seed(11)
    base = build_model(cfg, with_target=False)
    model = MultitaskClassifier(base.embedding, base.encoder, 128, [2, 3]).eval()
    save_model(model, tmp_path / "mt_model.bin")
    rows = ["text_a"] + SENTENCES
    (tmp_path / "test_nolabel.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    tool("inference/run_classifier_mt_infer.py", "--load_model_path", str(tmp_path / "mt_model.bin"), "--vocab_path",
         word["vocab"], "--config_path", TINY, "--test_path", str(tmp_path / "test_nolabel.tsv"), "--prediction_path",
         str(tmp_path / "prediction.tsv"), "--labels_num_list", "2", "3", "--tokenizer", "space", "--output_logits",
         "--output_prob", "--batch_size", "3", "--embedding", "word_pos_seg", "--encoder", "transformer",
         "--mask", "fully_visible")
    lines = (tmp_path / "prediction.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "label\tlogits\tprob" and len(lines) == 1 + len(SENTENCES)
    vocab = word["tokenizer"].vocab
    for sentence, line in zip(SENTENCES, lines[1:]):
        labels, logits, probs = line.split("\t")
        ids = torch.tensor([[vocab.cls_id] + vocab.to_ids(sentence.split()) + [vocab.sep_id]])
        expected = []
        with torch.no_grad():
            for task in (0, 1):
                out = model({"src": ids, "seg": torch.ones_like(ids), "task": torch.tensor([task])})
                expected.append(out.outputs["logits"][0])
        assert labels == "|".join(str(int(e.argmax())) for e in expected)
        for task, (got_logits, got_probs) in enumerate(zip(logits.split("|"), probs.split("|"))):
            np.testing.assert_allclose(np.array(got_logits.split(), float), expected[task].numpy(), atol=1e-5)
            np.testing.assert_allclose(np.array(got_probs.split(), float), torch.softmax(expected[task], -1).numpy(),
                                       atol=1e-5)
    proc = failing("inference/run_classifier_mt_infer.py", "--load_model_path", str(tmp_path / "mt_model.bin"),
                   "--vocab_path", word["vocab"], "--config_path", TINY, "--test_path",
                   str(tmp_path / "test_nolabel.tsv"), "--prediction_path", str(tmp_path / "test_nolabel.tsv"),
                   "--labels_num_list", "2", "3", "--tokenizer", "space")
    assert "is the same file as" in proc.stderr
    assert (tmp_path / "test_nolabel.tsv").read_text(encoding="utf-8").splitlines() == rows


# ------------------------------------------------------------------------------------------- optional packages

def test_missing_optional_packages_name_them(monkeypatch):
    import builtins

    from uer.tools import segment, stacking
    from uer.tools.common import ToolError

    real_import = builtins.__import__

    def no_optional(name, *args, **kwargs):
        if name in ("jieba", "lightgbm", "bayes_opt"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_optional)
    with pytest.raises(ToolError, match="'jieba'.*requirements-segment.txt"):
        segment.jieba_segmenter()
    with pytest.raises(ToolError, match="'lightgbm'.*requirements-stacking.txt"):
        stacking.import_lightgbm()
    with pytest.raises(ToolError, match="'bayesian-optimization'.*requirements-stacking.txt"):
        stacking.import_bayes_opt()
