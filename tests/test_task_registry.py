"""The task registry: every task is a registered component; the generic commands and UER-py's script names run
the same code; console scripts follow the registry; a task from another package plugs in through the
``uer.tasks`` entry points, unchanged code here."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, subprocess_env
from errors_workspace import MICRO, TEXTS, VOCAB, labelled_rows, run_entry, tsv
from uer.finetune.tasks import Task, get_task, register_task, str2task, task_names
from uer.errors import UsageError

SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def test_console_scripts_follow_the_registry() -> None:
    """Every task script of UER-py's names has its console command, pointing at the generic command."""
    expected = {}
    for name in task_names():
        task = get_task(name)
        for script, module in ((task.train_script, "finetune"), (task.infer_script, "infer")):
            if script:
                expected[f"uer.cli.{module}:{script[:-3]}"] = name
    targets = {target for target in SCRIPTS.values() if target.startswith(("uer.cli.finetune:", "uer.cli.infer:"))}
    # run_glue: HF's run_glue flags mapped onto the glue task (not a UER-py script name of a task)
    assert targets - {"uer.cli.finetune:main", "uer.cli.infer:main", "uer.cli.finetune:run_glue"} == set(expected)
    import uer.cli.finetune as finetune
    import uer.cli.infer as infer

    for target in expected:
        module, attr = target.split(":")
        assert callable(getattr(finetune if module.endswith("finetune") else infer, attr)), target


def test_wrappers_are_thin_and_name_their_task() -> None:
    """run_*.py and inference/*_infer.py of a task are a few lines calling the generic command."""
    for name in task_names():
        task = get_task(name)
        for script, folder, module in ((task.train_script, "", "finetune"), (task.infer_script, "inference/", "infer")):
            for alias in (script,) + (task.script_aliases if module == "finetune" else task.infer_script_aliases):
                if not alias:
                    continue
                text = (ROOT / f"{folder}{alias}").read_text()
                assert f'task_main("{name}")' in text and f"from uer.cli.{module} import task_main" in text, alias
                assert len(text.splitlines()) <= 12, alias


def test_registration_checks() -> None:
    class Nameless(Task):
        pass

    with pytest.raises(ValueError, match="non-empty"):
        register_task(Nameless)

    class Clash(Task):
        name = "ner"

    with pytest.raises(ValueError, match="duplicate task name 'ner'"):
        register_task(Clash)
    with pytest.raises(TypeError):
        register_task(dict)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="unknown task 'nre'; known tasks: .*ner"):
        get_task("nre")


def test_help_lists_tasks_and_a_tasks_options(capsys) -> None:
    from uer.cli import finetune, infer

    finetune.main(["--help"])
    out = capsys.readouterr().out
    for name in task_names():
        assert re.search(rf"^  {name} ", out, re.M), name
    with pytest.raises(SystemExit):
        finetune.main(["--task", "ner", "--help"])
    out = capsys.readouterr().out
    assert "--label2id_path" in out and "--crf_target" in out and "--train_path" in out
    with pytest.raises(SystemExit):
        infer.main(["--task", "classifier", "--help"])
    assert "--output_prob" in capsys.readouterr().out


def write_tiny_task_files(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    files = {"vocab": root / "vocab.txt", "config": root / "config.json", "train": root / "train.tsv",
             "test": root / "test.tsv", "ner": root / "ner.tsv", "label2id": root / "label2id.json",
             "squad": root / "squad.json"}
    files["vocab"].write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    files["config"].write_text(json.dumps(MICRO))
    files["train"].write_text(tsv(labelled_rows(16), ["qid", "label", "text_a"]), encoding="utf-8")
    files["test"].write_text(tsv([[t] for t in TEXTS], ["text_a"]), encoding="utf-8")
    rows = [[" ".join(t), " ".join(["B-X"] + ["I-X"] * (len(t) - 1))] for t in TEXTS] * 2
    files["ner"].write_text(tsv(rows, ["text_a", "label"]), encoding="utf-8")
    files["label2id"].write_text(json.dumps({"O": 0, "B-X": 1, "I-X": 2}))
    contexts = ["这本书很好看", "坏书不看"]
    data = [{"paragraphs": [{"context": c, "qas": [{"id": f"q{i}", "question": "好",
                                                     "answers": [{"text": c[1:3], "answer_start": 1}]}]}]}
            for i, c in enumerate(contexts * 2)]
    files["squad"].write_text(json.dumps({"data": data}, ensure_ascii=False), encoding="utf-8")
    return files


def zip_members(path: Path) -> dict[str, bytes]:
    """A torch model file's members, without what differs between two saves of the same tensors: the archive's
    folder name (the temporary file's) and the random id torch.save writes."""
    with zipfile.ZipFile(path) as archive:
        return {name.split("/", 1)[1]: archive.read(name) for name in archive.namelist()
                if not name.endswith("serialization_id")}


TRAINING = ["--epochs_num", "2", "--batch_size", "4", "--seq_length", "16", "--report_steps", "1000",
            "--learning_rate", "1e-3", "--seed", "3"]


@pytest.mark.slow
@pytest.mark.parametrize("name, script, inputs", [
    ("classifier", "run_classifier.py", lambda f: ["--train_path", f["train"], "--dev_path", f["train"],
                                                   "--test_path", f["train"]]),
    ("ner", "run_ner.py", lambda f: ["--train_path", f["ner"], "--dev_path", f["ner"], "--test_path", f["ner"],
                                     "--label2id_path", f["label2id"]]),
    ("mrc", "run_cmrc.py", lambda f: ["--train_path", f["squad"], "--dev_path", f["squad"], "--test_path", f["squad"]]),
])
def test_generic_command_equals_the_uerpy_script(tmp_path, capsys, name, script, inputs) -> None:
    """``uer-finetune --task NAME`` and UER-py's script name: the same model file bytes, the same metrics."""
    files = write_tiny_task_files(tmp_path / "data")
    common = [*inputs(files), "--vocab_path", files["vocab"], "--config_path", files["config"], *TRAINING]
    outputs = {}
    for label, argv in (("script", [script]), ("generic", ["-m", "uer.cli.finetune", "--task", name])):
        model = tmp_path / label / "model.bin"  # the same name: torch.save writes it into the file
        model.parent.mkdir()
        proc = subprocess.run([sys.executable, *argv, *map(str, common), "--output_model_path", str(model)],
                              cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        log = proc.stdout + proc.stderr  # timestamps and timings removed: the rest must be equal
        metrics = [re.sub(r"\(\d+ instances, [\d.]+ s\)", "", re.sub(r"^\d\d:\d\d:\d\d ", "", line))
                   for line in log.splitlines() if re.search(r"Acc|F1|EM|precision", line)]
        outputs[label] = (zip_members(model), metrics)
    assert outputs["script"][1], "no metric lines"
    assert outputs["script"][1] == outputs["generic"][1]
    assert outputs["script"][0] == outputs["generic"][0]


PLUGIN = '''
"""A throw-away task from another package: is the text longer than three characters? (labels from the text)"""
import numpy as np

from uer.data.finetune_data import encode_pair, read_tsv_lines
from uer.finetune.contract import EvalSet
from uer.finetune.tasks import InferenceData, Task, TrainingData
from uer.finetune.tasks.classifier import Classifier, classification_metric, stacked_logits
from uer.data.finetune_data import Instances
from uer.utils.io import atomic_write_text


class LongTextTask(Task):
    name = "long_text"
    summary = "toy: is a text longer than three characters"
    train_doc = "Toy task of a plugin package."
    infer_doc = "Toy task of a plugin package: predictions."

    def read(self, path, with_labels=True):
        columns, rows, _ = read_tsv_lines(path, required=("text_a",))
        texts = [row[columns["text_a"]] for row in rows]
        fields = {"label": np.array([int(len(t) > 3) for t in texts])} if with_labels else {}
        seqs = [encode_pair(self.tokenizer, t, None, self.args.seq_length) for t in texts]
        return Instances.from_sequences(seqs, fields)

    def read_training(self):
        metric = classification_metric(2)
        return TrainingData(self.read(self.args.train_path), [EvalSet("dev", self.read(self.args.dev_path), metric)])

    def build_model(self, pretrained):
        from uer.finetune.builders import encoder_from_args, init_head, load_pretrained

        cfg, embedding, encoder = encoder_from_args(self.args, len(self.tokenizer.vocab))
        model = Classifier(embedding, encoder, cfg.hidden_size, 2)
        if pretrained:
            init_head(model)
            load_pretrained(model, self.args.pretrained_model_path)
        return model

    def read_inference(self, path):
        return InferenceData(self.read(path, with_labels=False))

    def write_predictions(self, path, predictions, data):
        labels = stacked_logits(predictions, 2).argmax(-1)
        atomic_write_text(path, "label\\n" + "".join(f"{int(v)}\\n" for v in labels))
        return f"wrote {len(labels)} toy predictions to {path}"
'''


@pytest.mark.slow
def test_a_task_from_another_package(tmp_path) -> None:
    """A plugin installed beside us (a module + dist-info with a ``uer.tasks`` entry point) trains through
    ``uer-finetune`` and predicts through ``uer-infer``; the help lists it."""
    site = tmp_path / "site"
    (site / "long_text_task-0.1.dist-info").mkdir(parents=True)
    (site / "long_text_task.py").write_text(textwrap.dedent(PLUGIN))
    (site / "long_text_task-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: long-text-task\nVersion: 0.1\n")
    (site / "long_text_task-0.1.dist-info" / "entry_points.txt").write_text("[uer.tasks]\nlong_text = long_text_task:LongTextTask\n")
    files = write_tiny_task_files(tmp_path / "data")
    env = subprocess_env()
    env["PYTHONPATH"] = f"{site}:{env['PYTHONPATH']}"

    def run(*argv: object) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", *map(str, argv)], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=600)

    assert "long_text " in run("uer.cli.finetune", "--help").stdout
    model, pred = tmp_path / "toy.bin", tmp_path / "pred.tsv"
    trained = run("uer.cli.finetune", "--task", "long_text", "--train_path", files["train"], "--dev_path",
                  files["train"], "--vocab_path", files["vocab"], "--config_path", files["config"],
                  "--output_model_path", model, *TRAINING)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert re.search(r"epoch 2/2 dev.*Acc", trained.stdout), trained.stdout[-2000:]
    inferred = run("uer.cli.infer", "--task", "long_text", "--load_model_path", model, "--test_path", files["test"],
                   "--prediction_path", pred, "--vocab_path", files["vocab"], "--config_path", files["config"],
                   "--seq_length", "16")
    assert inferred.returncode == 0, inferred.stderr[-2000:]
    assert pred.read_text().splitlines()[0] == "label" and len(pred.read_text().splitlines()) == len(TEXTS) + 1
    assert "long_text" not in str2task  # this process never loaded the plugin


def test_a_broken_plugin_is_named(tmp_path) -> None:
    site = tmp_path / "site"
    (site / "broken-0.1.dist-info").mkdir(parents=True)
    (site / "broken-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (site / "broken-0.1.dist-info" / "entry_points.txt").write_text("[uer.tasks]\nbroken = no_such_module:Task\n")
    env = subprocess_env()
    env["PYTHONPATH"] = f"{site}:{env['PYTHONPATH']}"
    proc = subprocess.run([sys.executable, "-m", "uer.cli.finetune", "--help"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("uer-finetune: error: task plugin 'broken' (no_such_module:Task) failed to load: "
                                   "ModuleNotFoundError: No module named 'no_such_module'")
