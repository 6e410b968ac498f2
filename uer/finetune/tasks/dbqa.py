"""Document-based question answering as pair classification (run_dbqa.py): is sentence text_b an answer to
question text_a? The model and the prediction file are the classifier's; the metric ranks each question's
candidate sentences by P(label 1): MRR (which picks the kept model), MAP and accuracy.

Columns (by header name): ``qid`` (question id), ``label`` (1 = the sentence answers the question), ``text_a``
(question), ``text_b`` (sentence). See uer/finetune/metrics.py for ties and questions without a correct sentence.
"""
from __future__ import annotations

from uer.data.finetune_data import Instances
from uer.errors import DataError
from uer.finetune.contract import Evaluation, Prediction
from uer.finetune.metrics import classification_report, ranking_report
from uer.finetune.tasks.base import TrainingData, register_task
from uer.finetune.tasks.classifier import ClassifierTask, read_classification, softmax, stacked_logits


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


class DbqaTask(ClassifierTask):
    name = "dbqa"
    summary = "question-sentence pairs ranked per question: MRR, MAP (run_dbqa.py)"
    train_script = "run_dbqa.py"
    infer_script = None  # inference/run_classifier_infer.py predicts with the model
    infer_doc = None
    primary = "mrr"
    train_doc = r"""Document-based question answering as pair classification: is sentence text_b an answer to question text_a?

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

    def read(self, path: str, **kw) -> Instances:
        return read_classification(path, self.tokenizer, self.args.seq_length, self.labels_num,
                                   extra_int_columns=("qid",), closing_sep=self.closing_sep, **kw)

    def metric(self):
        return dbqa_metric(self.labels_num)

    def read_training(self) -> TrainingData:
        from uer.finetune.tasks.classifier import count_labels

        labels_num = count_labels(self.args.train_path, self.args.soft_targets)
        if labels_num != 2:
            raise DataError(f"{labels_num} labels; DBQA labels are 0 (not an answer) and 1 (an answer)",
                            self.args.train_path)
        return super().read_training()

    def describe(self, data: TrainingData) -> None:
        return None


register_task(DbqaTask)
