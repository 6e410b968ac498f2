"""Training curves from a log file (the report lines of pretrain.py and the run_*.py scripts) or from a
TensorBoard folder (``--tensorboard_dir``), and their plot (scripts/plot_training.py).

Both sources give the same tag names (see uer.utils.tensorboard): ``train/<name>`` against the optimiser
step, ``dev/<metric>`` (``dev/<set>/<metric>`` with several dev sets) against the epoch. matplotlib and
tensorboard are optional and imported only when needed, with a message naming the package.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path

from uer.errors import DataError, UsageError
from uer.utils.io import atomic_write

Curves = dict[str, list[tuple[float, float]]]  # tag -> [(x, value)], x: step (train/) or epoch (dev/)

# "|      100/    1000 steps|      12345 tokens/s| loss_mlm   1.234| acc_mlm  0.123| lr 1.00e-04"
PRETRAIN_LINE = re.compile(r"\|\s*(\d+)/\s*(\d+) steps\|(.*)$")
# "| epoch 1/3 |    100/300 steps ( 33.3%) | loss 0.1234 | acc 0.5000 |   123.4 examples/s | lr 1.00e-04 | 1m left"
FINETUNE_LINE = re.compile(r"\| epoch (\d+)/(\d+) \|\s*(\d+)/(\d+) steps \([^)]*\)\s*\|(.*)$")
# "epoch 2/3 dev (100 instances, 0.4 s): Acc. (Correct/Total): 0.7000 (70/100)  Macro F1: 0.6500"
DEV_LINE = re.compile(r"epoch (\d+)/\d+ dev(?: \[(.+?)\])? \(\d+ instances, [\d.]+ s\): (.*)$")
DEV_METRIC = re.compile(r"([A-Za-z][A-Za-z0-9 .]*?)(?: \([^)]*\))?: (-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")
# The wording of the summaries (uer.utils.metrics) -> the score names the TensorBoard tags use.
METRIC_NAMES = {"acc.": "acc", "macro f1": "macro_f1", "mean reciprocal rank": "mrr", "map": "map"}


def _fields(text: str) -> dict[str, float]:
    """``loss_mlm 1.234| acc_mlm 0.1| 12345 tokens/s| lr 1e-4| 1m left`` -> {name: value} (times skipped)."""
    values = {}
    for part in text.split("|"):
        words = part.split()
        if len(words) != 2 or words[1] == "left":
            continue
        if words[1].endswith("/s"):
            name, number = words[1][:-2] + "_per_s", words[0]
        else:
            name, number = words
        try:
            values[name] = float(number)
        except ValueError:
            continue
    return values


def parse_log(path: str | Path) -> Curves:
    """Curves of the report lines of a log file (console output or ``--log_path``; any line prefix)."""
    curves: Curves = defaultdict(list)
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        raise DataError("log file not found", path) from None
    for line in lines:
        match = FINETUNE_LINE.search(line)
        if match:
            epoch, _, done, per_epoch, rest = match.groups()
            step = (int(epoch) - 1) * int(per_epoch) + int(done)
            for name, value in _fields(rest).items():
                curves[f"train/{name}"].append((step, value))
            continue
        match = PRETRAIN_LINE.search(line)
        if match:
            for name, value in _fields(match.group(3)).items():
                curves[f"train/{name}"].append((int(match.group(1)), value))
            continue
        match = DEV_LINE.search(line)
        if match:
            epoch, dev_set, summary = match.groups()
            for label, value in DEV_METRIC.findall(summary):
                name = METRIC_NAMES.get(label.strip().lower(), re.sub(r"\W+", "_", label.strip().lower()).strip("_"))
                tag = f"dev/{dev_set}/{name}" if dev_set else f"dev/{name}"
                curves[tag].append((int(epoch), float(value)))
    return dict(curves)


def read_tensorboard(folder: str | Path) -> Curves:
    """Every scalar of the event files under ``folder``."""
    from uer.utils.tensorboard import use_tensorboard_without_tensorflow

    use_tensorboard_without_tensorflow()
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        raise UsageError("reading a TensorBoard folder needs the 'tensorboard' package: pip install tensorboard "
                         "(or pip install -r requirements-curves.txt)") from None
    import logging

    logging.getLogger("tensorboard").setLevel(logging.WARNING)  # its directory watcher chats at INFO
    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0})  # 0: keep every point
    accumulator.Reload()
    return {tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
            for tag in accumulator.Tags().get("scalars", [])}


def load_curves(source: str | Path) -> Curves:
    """A TensorBoard folder (or one event file's folder) or a log file."""
    source = Path(source)
    if source.is_dir():
        curves = read_tensorboard(source)
        if not curves:
            raise DataError("no TensorBoard scalars found in this folder (written with --tensorboard_dir?)", source)
        return curves
    if source.is_file() and source.name.startswith("events.out.tfevents"):
        return read_tensorboard(source.parent)
    curves = parse_log(source)
    if not curves:
        raise DataError("no report lines found (a log of pretrain.py or a run_*.py script?)", source)
    return curves


def _panels(curves: Curves) -> list[tuple[str, list[str]]]:
    """(title, tags) of each subplot: one per loss (losses differ by orders of magnitude: a 0.67 loss would be a
    flat line under a 7.0 one), accuracy (per target), learning rate, throughput, gradient norm and loss scale
    against steps; dev metrics against epochs."""
    train = sorted(t for t in curves if t.startswith("train/"))
    losses = [t for t in train if t.split("/")[-1].startswith("loss") and t != "train/loss_scale"]
    panels = [(t.split("/", 1)[1].replace("_", " ", 1) if len(losses) > 1 else "loss", [t]) for t in losses]
    panels += [
        ("accuracy", [t for t in train if t.split("/")[-1].startswith("acc")]),
        ("learning rate", [t for t in train if t == "train/lr"]),
        ("throughput", [t for t in train if t.endswith("_per_s")]),
        ("gradient norm", [t for t in train if t == "train/grad_norm"]),
        ("loss scale", [t for t in train if t == "train/loss_scale"]),
    ]
    named = {t for _, tags in panels for t in tags}
    other = [t for t in train if t not in named]
    if other:
        panels.append(("other statistics", other))
    dev = sorted(t for t in curves if t.startswith("dev/"))
    if dev:
        panels.append(("dev (per epoch)", dev))
    return [(title, tags) for title, tags in panels if tags]


MIN_Y_SPAN = 0.05  # of the values' magnitude: 0.9700 and 0.9701 must not look far apart


def readable_y_limits(values: list[float]) -> tuple[float, float] | None:
    """y-limits spanning at least MIN_Y_SPAN of the values' magnitude around them, or None when the values
    already spread that far (matplotlib's own limits then)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return None
    low, high = min(finite), max(finite)
    span = MIN_Y_SPAN * max(abs(low), abs(high)) or 1.0  # all zero: a unit range
    if high - low >= span:
        return None
    middle = (low + high) / 2
    return middle - span / 2, middle + span / 2


def plot(curves: Curves, output_path: str | Path, title: str = "", width: float = 12.0) -> tuple[int, int]:
    """Draw ``curves`` into a PNG (two panels per row); returns its (width, height) in pixels."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no display needed
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise UsageError("plotting needs the 'matplotlib' package: pip install matplotlib "
                         "(or pip install -r requirements-curves.txt)") from None
    panels = _panels(curves)
    if not panels:
        raise DataError("nothing to plot: no training or dev curves")
    columns = 2 if len(panels) > 1 else 1
    rows = math.ceil(len(panels) / columns)
    dpi = 100
    fig, axes = plt.subplots(rows, columns, figsize=(width, 3.2 * rows), dpi=dpi, squeeze=False)
    for ax, (name, tags) in zip(axes.flat, panels):
        shown: list[float] = []
        for tag in tags:
            xs, ys = zip(*curves[tag])
            shown += ys
            # lines with markers: a short run is a few points, and a single point is a marker with its value
            ax.plot(xs, ys, marker="o" if len(xs) < 50 else None, markersize=4, label=tag.split("/", 1)[1])
            if len(xs) == 1:
                ax.annotate(f"{ys[0]:.4g}", (xs[0], ys[0]), textcoords="offset points", xytext=(6, 6),
                            fontsize="small")
        ax.set_title(name)
        ax.set_xlabel("epoch" if tags[0].startswith("dev/") else "step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps and epochs are whole numbers
        limits = readable_y_limits(shown)
        if limits:
            ax.set_ylim(*limits)
        if name == "learning rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
        else:
            ax.ticklabel_format(axis="y", useOffset=False)  # 0.97, not 1e-6 + 9.7e-1
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_write(output_path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))  # never a half-written PNG
    plt.close(fig)
    return int(width * dpi), int(3.2 * rows * dpi)
