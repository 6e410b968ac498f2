r"""Document-based question answering as pair classification: is sentence text_b an answer to question text_a?

    python3 run_dbqa.py --pretrained_model_path models/google_zh_model.bin --vocab_path models/google_zh_vocab.txt \
        --train_path datasets/nlpcc-dbqa/train.tsv --dev_path datasets/nlpcc-dbqa/dev.tsv \
        --test datasets/nlpcc-dbqa/test.tsv \
        --epochs_num 3 --batch_size 64 --embedding word_pos_seg --encoder transformer --mask fully_visible

Columns (by header name): ``qid`` (question id), ``label`` (1 = the sentence answers the question),
``text_a`` (question), ``text_b`` (sentence). The model is run_classifier.py's; the candidate sentences
of each question are ranked by the predicted probability of label 1, and the script reports accuracy
and the mean reciprocal rank and mean average precision over questions (see uer/finetune/metrics.py for
ties and questions without a correct sentence). The model with the best dev MRR is kept.
inference/run_classifier_infer.py predicts with the model.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from uer import opts
from uer.errors import DataError, entry_point
from uer.finetune.builders import FINETUNE_INPUTS, classifier_from_args, finetune_config_from_args, tokenizer_from_args
from uer.utils.io import check_outputs
from uer.finetune.classification import count_labels, has_text_b, read_classification, softmax, stacked_logits
from uer.data.finetune_data import Instances
from uer.utils.launch import launch
from uer.finetune.contract import EvalSet, Evaluation, Prediction
from uer.finetune.loop import FineTuner
from uer.config import parse_args_with_config
from uer.utils.distributed import DistContext
from uer.finetune.metrics import classification_report, ranking_report

logger = logging.getLogger("run_dbqa")


def build_parser() -> argparse.ArgumentParser:
    return opts.build_finetune_parser(__doc__, opts.add_classifier_options)


def dbqa_metric(labels_num: int):
    """Accuracy of the labels, and MRR/MAP of the candidates ranked by P(label 1) within each question."""

    def metric(predictions: list[Prediction], data: Instances) -> Evaluation:
        logits = stacked_logits(predictions, labels_num)
        labels = data.fields["label"]
        cls = classification_report(labels, logits.argmax(-1), labels_num)
        ranking = ranking_report(data.fields["qid"], labels, softmax(logits)[:, 1])
        scores = {**cls.scores(), **ranking.scores()}
        return Evaluation(scores, f"{ranking.summary()}  {cls.summary()}", f"{ranking.summary()}\n{cls.format()}")

    return metric


def run(args: argparse.Namespace, ctx: DistContext) -> None:
    tokenizer = tokenizer_from_args(args)
    labels_num = count_labels(args.train_path, args.soft_targets)
    if labels_num != 2:
        raise DataError(f"{labels_num} labels; DBQA labels are 0 (not an answer) and 1 (an answer)", args.train_path)

    pairs = has_text_b(args.train_path)

    def read(path: str, **kw) -> Instances:
        return read_classification(path, tokenizer, args.seq_length, labels_num, extra_int_columns=("qid",),
                                   closing_sep=not args.no_closing_sep, **kw)

    # Every file is read before training (a bad test.tsv must not be found after the epochs).
    train = read(args.train_path, soft_targets=args.soft_targets)
    dev = read(args.dev_path, pairs=pairs, pairs_from=args.train_path)
    test = read(args.test_path, pairs=pairs, pairs_from=args.train_path) if args.test_path else None
    model = classifier_from_args(args, len(tokenizer.vocab), labels_num)
    metric = dbqa_metric(labels_num)
    tuner = FineTuner(model, finetune_config_from_args(args), ctx, tokenizer.vocab.pad_id)
    tuner.fit(train, [EvalSet("dev", dev, metric, "mrr")])
    if test is not None:
        tuner.evaluate([EvalSet("test", test, metric, "mrr")], "test (best model on dev)")


@entry_point("run_dbqa.py")
def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args_with_config(build_parser(), argv)
    check_outputs(args, outputs=("output_model_path",), inputs=FINETUNE_INPUTS)
    launch(args, run, "run_dbqa.py")
