"""Real short runs with the training-experience options: TensorBoard scalars read back equal the report
lines, the plot of a run, gradient clipping reported, checkpoints kept, schedule and optimiser choice,
early stopping."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from conftest import run_script, shared_path
from test_pretrain import SMALL_CONFIG

pytest.importorskip("tensorboard", reason="the TensorBoard tests need requirements-curves.txt")
pytest.importorskip("matplotlib", reason="the plot test needs requirements-curves.txt")

from matplotlib import image  # noqa: E402

from uer.cli import plot_training  # noqa: E402
from uer.utils.curves import _panels, load_curves, parse_log, plot, readable_y_limits  # noqa: E402
from uer.training.schedulers import schedule_factor  # noqa: E402

# printed precision of each report field -> the largest difference rounding can make
TOLERANCE = {"loss": 5.1e-4, "acc": 5.1e-4, "tokens_per_s": 0.51, "examples_per_s": 0.051, "grad_norm": 5.1e-4}


def _close(name: str, printed: float, exact: float) -> bool:
    if name == "lr":
        return math.isclose(printed, exact, rel_tol=5.1e-3, abs_tol=1e-12)
    key = next((k for k in TOLERANCE if name.startswith(k)), "loss")
    return abs(printed - exact) <= TOLERANCE[key] + 1e-6 * abs(exact)


def assert_scalars_equal_report_lines(log: Path, tensorboard: Path) -> dict:
    printed, written = parse_log(log), load_curves(tensorboard)
    train = {t for t in printed if t.startswith("train/")}
    assert train and train <= set(written), (sorted(printed), sorted(written))
    for tag in printed:
        assert [x for x, _ in printed[tag]] == [x for x, _ in written[tag]], tag
        for (_, a), (_, b) in zip(printed[tag], written[tag]):
            assert _close(tag.split("/")[-1], a, b), (tag, a, b)
    return written


@pytest.fixture(scope="module")
def pretraining(tmp_path_factory):
    root = tmp_path_factory.mktemp("curves")
    vocab = shared_path("models/google_zh_vocab.txt")
    lines = shared_path("corpora/CLUECorpusSmall_bert_sampled.txt").read_text(encoding="utf-8").splitlines()[:300]
    (root / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "config.json").write_text(json.dumps(SMALL_CONFIG))
    from uer.cli import preprocess  # in this process: no interpreter start

    preprocess.main(["--corpus_path", str(root / "corpus.txt"), "--vocab_path", str(vocab), "--dataset_path",
                     str(root / "dataset.pt"), "--seq_length", "64", "--target", "bert", "--dup_factor", "1"])
    out = run_script("pretrain.py", "--dataset_path", str(root / "dataset.pt"), "--vocab_path", str(vocab),
                     "--config_path", str(root / "config.json"), "--output_model_path", str(root / "model.bin"),
                     "--total_steps", "6", "--save_checkpoint_steps", "2", "--report_steps", "2", "--batch_size", "8",
                     "--learning_rate", "1e-3", "--encoder", "transformer", "--target", "bert",
                     "--max_grad_norm", "1.0", "--scheduler", "cosine", "--warmup", "0.2", "--save_total_limit", "2",
                     "--tensorboard_dir", str(root / "tb"), "--log_path", str(root / "run.log"), "--threads", "1")
    return {"root": root, "stdout": out.stdout}


@pytest.mark.slow
def test_pretraining_scalars_clipping_checkpoints_and_plot(pretraining) -> None:
    root = pretraining["root"]
    written = assert_scalars_equal_report_lines(root / "run.log", root / "tb")
    for tag in ("train/loss_mlm", "train/acc_mlm", "train/loss_sp", "train/acc_sp", "train/lr", "train/tokens_per_s",
                "train/grad_norm"):
        assert [step for step, _ in written[tag]] == [2, 4, 6], tag
    # the reported norm is the one before clipping; the line shows it only because --max_grad_norm is given
    assert all(norm > 0 for _, norm in written["train/grad_norm"])
    reports = [line for line in pretraining["stdout"].splitlines() if " steps|" in line]
    assert len(reports) == 3 and all(re.search(r"\| lr \d\.\d\de[-+]\d+\| grad_norm \d+\.\d{3}$", line) for line in reports)
    # --scheduler cosine with 1 warm-up step: the reported rate is the next step's
    cosine = schedule_factor("cosine", 6, 0.2)
    assert [v for _, v in written["train/lr"]] == pytest.approx([1e-3 * cosine(s) for s in (2, 4, 6)], rel=1e-6)
    # --save_total_limit 2 and the default --keep_trainer_state last
    assert sorted(p.name for p in root.glob("model.bin-*")) == ["model.bin-4", "model.bin-6", "model.bin-6.trainer"]
    # the plot of the run, from the log file and from the TensorBoard folder
    for source in (root / "run.log", root / "tb"):
        png = root / f"plot-{source.name}.png"
        plot_training.main(["--input_path", str(source), "--output_path", str(png)])

        pixels = image.imread(str(png))
        assert pixels.shape[:2] == (3 * 320, 1200)  # 6 panels (loss mlm, loss sp, acc, lr, throughput, grad norm)
        assert pixels[..., :3].std() > 0.05 and len({tuple(p) for p in pixels[::7, ::7, :3].reshape(-1, 3)}) > 20


@pytest.mark.slow
def test_finetuning_scalars_schedule_optimizer_and_early_stopping(tmp_path) -> None:
    book = shared_path("datasets/test_data/book_review")
    vocab = shared_path("models/google_zh_vocab.txt")
    (tmp_path / "config.json").write_text(json.dumps(SMALL_CONFIG))
    out = run_script("run_classifier.py", "--vocab_path", str(vocab), "--config_path", str(tmp_path / "config.json"),
                     "--train_path", str(book / "train.tsv"), "--dev_path", str(book / "dev.tsv"),
                     "--output_model_path", str(tmp_path / "classifier.bin"), "--epochs_num", "4",
                     "--batch_size", "50", "--seq_length", "32", "--report_steps", "2", "--threads", "1",
                     # a rate so small the predictions never change: dev stops improving after epoch 1
                     "--learning_rate", "1e-9", "--optimizer", "adafactor", "--scheduler", "constant_with_warmup",
                     "--warmup", "0.25", "--early_stopping_patience", "2",
                     "--tensorboard_dir", str(tmp_path / "tb"), "--log_path", str(tmp_path / "run.log"))
    assert "early stopping after epoch 3/4: no better dev score for 2 epoch(s)" in out.stdout
    assert "epoch 4/4" not in out.stdout
    written = assert_scalars_equal_report_lines(tmp_path / "run.log", tmp_path / "tb")
    assert [epoch for epoch, _ in written["dev/acc"]] == [1, 2, 3]
    assert len({v for _, v in written["dev/acc"]}) == 1 and "dev/macro_f1" in written
    # 4 steps per epoch, reports after steps 2 and 4 of each; constant_with_warmup: 4 warm-up steps of 16
    assert [s for s, _ in written["train/lr"]] == [2, 4, 6, 8, 10, 12]
    assert [v for _, v in written["train/lr"]] == pytest.approx([1e-9 * f for f in (2 / 4, 4 / 4, 1, 1, 1, 1)])
    assert "grad_norm" not in "".join(line for line in out.stdout.splitlines() if "| epoch" in line)


def test_fine_tuning_time_left_covers_the_whole_run() -> None:
    """The report's time left: the steps left of all epochs at the run's rate, plus the dev evaluations left."""
    import torch

    from uer.finetune.loop import FinetuneConfig, FineTuner
    from uer.utils.distributed import DistContext

    tuner = FineTuner(torch.nn.Linear(2, 2), FinetuneConfig(epochs_num=3), DistContext(), pad_id=0)
    tuner.total_steps = 30  # 10 steps per epoch
    tuner.step = 5          # half-way through epoch 1, 10 s in: 2 s a step, no evaluation timed yet
    assert tuner._seconds_left(1, 10.0) == pytest.approx(25 * 2.0)
    tuner.step, tuner.train_seconds, tuner.eval_seconds = 15, 20.0, 4.0  # epoch 2, half-way; epoch 1's dev took 4 s
    assert tuner._seconds_left(2, 10.0) == pytest.approx(15 * 2.0 + 2 * 4.0)  # 2 evaluations left (epochs 2 and 3)


def test_plots_of_short_runs_read_well(tmp_path, monkeypatch) -> None:
    """A one-epoch run: each loss on its own axis, a dev score that barely moves is not zoomed to 1e-6, and a
    single point is drawn (marker) with its value."""
    curves = {"train/loss_mlm": [(2, 7.1), (4, 6.9), (6, 6.8)], "train/loss_sp": [(2, 0.69), (4, 0.68), (6, 0.67)],
              "train/acc_mlm": [(2, 0.01), (4, 0.02), (6, 0.03)], "train/lr": [(2, 1e-4), (4, 1e-4), (6, 1e-4)],
              "dev/acc": [(1, 0.97)], "dev/macro_f1": [(1, 0.9700001)]}
    panels = dict(_panels(curves))
    assert panels["loss mlm"] == ["train/loss_mlm"] and panels["loss sp"] == ["train/loss_sp"]
    assert readable_y_limits([0.97, 0.9700001]) == pytest.approx((0.97 - 0.02425, 0.97 + 0.02425), abs=1e-6)
    assert readable_y_limits([0.5, 0.9]) is None  # spread enough: matplotlib's own limits
    assert readable_y_limits([0.0, 0.0]) == (-0.5, 0.5)
    import matplotlib.axes

    seen = {}
    original = matplotlib.axes.Axes.set_ylim

    def record(self, *limits, **kwargs):
        if len(limits) == 2:  # the plot's own call (matplotlib's internal calls pass other forms)
            seen[self.get_title()] = limits
        return original(self, *limits, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "set_ylim", record)
    plot(curves, tmp_path / "short.png")
    low, high = seen["dev (per epoch)"]
    assert high - low >= 0.04 and low < 0.97 < high
    assert image.imread(str(tmp_path / "short.png")).shape[:2] == (3 * 320, 1200)  # 5 panels
