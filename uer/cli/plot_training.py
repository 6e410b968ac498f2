r"""Plot a training run: loss and accuracy per target, learning rate, throughput and gradient norm against
steps, dev metrics against epochs, from a log file or a TensorBoard folder, into one PNG.

    python3 scripts/plot_training.py --input_path models/pretrain.log --output_path pretrain.png
    python3 scripts/plot_training.py --input_path runs/classifier --output_path classifier.png \
        --title "book_review, tiny BERT"

A log file is the console output or --log_path of pretrain.py or a run_*.py script (its report lines and
dev lines); a folder holds the event files of --tensorboard_dir. Needs matplotlib (and tensorboard for a
folder): pip install -r requirements-curves.txt
"""
from __future__ import annotations

import argparse
import logging
from typing import Sequence

from uer.errors import entry_point
from uer.utils.ranges import finite_positive_float

logger = logging.getLogger("plot_training")


def build_parser() -> argparse.ArgumentParser:
    from uer.opts import HelpFormatter, add_logging_options

    parser = argparse.ArgumentParser(prog="plot_training.py", description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--input_path", required=True, help="Log file, or TensorBoard folder (--tensorboard_dir).")
    parser.add_argument("--output_path", required=True, help="PNG to write.")
    parser.add_argument("--title", default="", help="Title above the panels.")
    parser.add_argument("--width", type=finite_positive_float, default=12.0, help="Width in inches (100 pixels each).")
    add_logging_options(parser)
    return parser


@entry_point("plot_training.py")
def main(argv: Sequence[str] | None = None) -> None:
    from uer.utils.curves import load_curves, plot
    from uer.utils.io import check_outputs
    from uer.utils.logging import setup_logging_from_args

    args = build_parser().parse_args(argv)
    setup_logging_from_args(args)
    check_outputs(args, outputs=("output_path",), inputs=("input_path",))
    curves = load_curves(args.input_path)
    width, height = plot(curves, args.output_path, args.title, args.width)
    logger.info("%d curves of %s -> %s (%d x %d pixels)", len(curves), args.input_path, args.output_path, width, height)
