"""Sentence-BERT pair classification (run_classifier_siamese.py, inference/run_classifier_siamese_infer.py, the
prediction server): two towers (embedding + encoder) encode ``text_a`` and ``text_b`` apart, each pooled to u and
v, and one linear layer classifies ``[u; v; |u - v|; u * v]``. The trained tower is a sentence encoder.

Towers: shared when ``tie_weights`` is true (UER-py's SBERT configs set it; so does a BERT config), else two
copies. Config: a BERT config (models/bert/*.json), or UER-py's dual config (models/sbert/*.json: the tower's
options under ``stream_0``/``stream_1``, ``"embedding": ["dual"]``, ``"encoder": "dual"``).

Checkpoint keys: ``embedding.embedding_{0,1}.*``, ``encoder.encoder_{0,1}.*`` (the spelling of UER-py's SBERT
converters; shared towers appear under both names) and ``classifier.{weight,bias}``. Loading accepts, besides
that: a single-tower file (a pre-trained BERT: its weights go into both towers; UER-py's own loader looks for
names its model does not have and leaves the embeddings random), and UER-py's fine-tuned siamese files
(``embedding.dual.*``), whose stream-level layer norms must still be the identity: this model has none (it is
the plain BERT tower sentence-transformers uses, so converted models compute exactly its embeddings).
"""
from __future__ import annotations

import argparse
import copy
import logging
import re

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from uer.utils.ranges import positive_int
from uer.data.finetune_data import Instances
from uer.config import ConfigError
from uer.errors import UsageError
from uer.finetune.contract import EvalSet, Evaluation, HeadOutput, Prediction, stack_outputs
from uer.finetune.metrics import classification_report
from uer.finetune.tasks.base import InferenceData, Task, TrainingData, register_task
from uer.finetune.tasks.classifier import add_prediction_columns_options, count_labels, prediction_rows, softmax
from uer.finetune.tasks.simcse import read_sentence_pairs
from uer.layers.pooling import encode_and_pool
from uer.model_loader import ModelLoadError, load_model_weights, load_state_dict
from uer.names import POOLINGS
from uer.text.tokenizers import Tokenizer
from uer.utils.io import atomic_write_text

logger = logging.getLogger("uer.finetune")

TOWER_KEYS = re.compile(r"^(embedding|encoder)\.\1_([01])\.")


# ------------------------------------------------------------------------------------------------------
# options: the tower of a dual config

def tower_args(args: argparse.Namespace, stream: int) -> argparse.Namespace:
    """The options of one tower: with UER-py's dual config, its ``stream_<i>`` object over the merged options
    (flags typed on the command line still win); with a BERT config, the options as they are."""
    spec = getattr(args, f"stream_{stream}", None)
    if getattr(args, "encoder", None) != "dual" and spec is None:
        return args
    if not isinstance(spec, dict):
        raise ConfigError(f"{args.config_path}: a dual config (\"encoder\": \"dual\") needs a 'stream_{stream}' "
                          "object with the tower's options")
    tower = copy.copy(args)
    for key, value in spec.items():
        if key != "vocab_size" and key not in args.explicit:
            setattr(tower, key, value)
    if tower.encoder == "dual" or "dual" in (tower.embedding if isinstance(tower.embedding, list) else [tower.embedding]):
        raise ConfigError(f"{args.config_path}: stream_{stream} must name the tower's own embedding and encoder")
    return tower


# ------------------------------------------------------------------------------------------------------
# the model

class SiameseClassifier(nn.Module):
    """Two towers over the pairs of a batch (instances 2i = text_a, 2i+1 = text_b) and a linear classifier over
    ``[u; v; |u-v|; u*v]``. Output ``logits`` [2B x labels] (each pair's logits on both of its instances) and
    ``vector`` [2B x H] (each text's pooled vector)."""

    def __init__(self, towers: list[tuple[nn.Module, nn.Module]], hidden_size: int, labels_num: int,
                 pooling: str = "first") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
        (emb_0, enc_0), (emb_1, enc_1) = towers
        self.embedding = nn.Module()
        self.embedding.embedding_0, self.embedding.embedding_1 = emb_0, emb_1
        self.encoder = nn.Module()
        self.encoder.encoder_0, self.encoder.encoder_1 = enc_0, enc_1
        self.pooling = pooling
        self.classifier = nn.Linear(4 * hidden_size, labels_num)

    @property
    def shared(self) -> bool:
        return self.embedding.embedding_0 is self.embedding.embedding_1 and self.encoder.encoder_0 is self.encoder.encoder_1

    def tower(self, side: int, src: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        """[n x H]: the pooled vectors of tower ``side`` (0 or 1)."""
        embedding = getattr(self.embedding, f"embedding_{side}")
        encoder = getattr(self.encoder, f"encoder_{side}")
        return encode_and_pool(embedding, encoder, src, seg, self.pooling)

    def forward(self, batch: dict[str, torch.Tensor]) -> HeadOutput:
        src, seg = batch["src"], batch["seg"]
        if src.shape[0] % 2:
            raise ValueError(f"a batch of {src.shape[0]} sequences is not whole pairs")
        if self.shared:  # one pass over both sides
            vectors = self.tower(0, src, seg)
        else:  # interleaved back: a0, b0, a1, b1, ...
            u, v = self.tower(0, src[0::2], seg[0::2]), self.tower(1, src[1::2], seg[1::2])
            vectors = torch.stack([u, v], dim=1).reshape(src.shape[0], -1)
        u, v = vectors[0::2], vectors[1::2]
        logits = self.classifier(torch.cat([u, v, (u - v).abs(), u * v], dim=-1)).float()
        outputs = {"logits": logits.repeat_interleave(2, dim=0), "vector": vectors}
        if "label" not in batch:
            return HeadOutput(None, outputs)
        label = batch["label"][0::2]
        first = torch.zeros(src.shape[0], device=src.device)
        first[0::2] = 1.0
        loss, correct = torch.zeros_like(first), torch.zeros_like(first)
        loss[0::2] = F.cross_entropy(logits, label, reduction="none")
        correct[0::2] = (logits.argmax(-1) == label).float()
        return HeadOutput(loss, outputs, {"correct": correct, "count": first}, loss_count=first)


def tower_state(state: dict[str, torch.Tensor], path: str) -> dict[str, torch.Tensor]:
    """A file's weights in the siamese layout: single-tower files into both towers, UER-py's spellings mapped."""
    if any(key.startswith("embedding.dual.") for key in state):  # UER-py's fine-tuned siamese models
        mapped = {}
        for key, value in state.items():
            norm = re.match(r"^embedding\.dual\.stream_[01]_layer_norm\.(gamma|beta)$", key)
            if norm:
                identity = torch.ones_like(value) if norm.group(1) == "gamma" else torch.zeros_like(value)
                if not torch.equal(value, identity):
                    raise ModelLoadError(f"{key} is not the identity: UER-py's extra stream-level layer norm was "
                                         "trained, and this model (the plain BERT tower) has none", path)
                continue
            mapped[re.sub(r"^embedding\.dual\.", "embedding.", key)] = value
        return mapped
    if any(TOWER_KEYS.match(key) for key in state):
        return state
    out = {}
    for key, value in state.items():
        head, dot, rest = key.partition(".")
        if dot and head in ("embedding", "encoder"):
            out[f"{head}.{head}_0.{rest}"] = value
            out[f"{head}.{head}_1.{rest}"] = value
        else:
            out[key] = value
    logger.info("%s: a single-tower model: its embedding and encoder weights start both towers", path)
    return out


def load_siamese_weights(model: SiameseClassifier, path: str) -> dict[str, list[str]]:
    """Load ``path`` (siamese or single-tower, see :func:`tower_state`); tower keys must all match."""
    state = tower_state(load_state_dict(path), path)
    if model.shared:
        for key in state:
            match = TOWER_KEYS.match(key)
            if match and match.group(2) == "1":
                twin = key.replace(f"{match.group(1)}_1.", f"{match.group(1)}_0.", 1)
                if twin in state and not torch.equal(state[twin], state[key]):
                    raise ModelLoadError(f"the file's two towers differ ({key}), but the model shares one tower "
                                         "(tie_weights true): set \"tie_weights\": false", path)
    return load_model_weights(model, path, state=state)


def siamese_metric(labels_num: int):
    def metric(predictions: list[Prediction], data: Instances) -> Evaluation:
        logits = stack_outputs(predictions, "logits")[0::2]
        report = classification_report(data.fields["label"][0::2], logits.argmax(-1), labels_num)
        return Evaluation(report.scores(), report.summary(), report.format())

    return metric


def predict_pairs(model: nn.Module, tokenizer: Tokenizer, texts: list[str], texts_b: list[str], seq_length: int,
                  batch_size: int, device) -> list[dict]:
    """The server's answers: label, probabilities and logits of each pair."""
    from uer.data.finetune_data import encode_pair
    from uer.finetune.loop import predict

    sequences = []
    for a, b in zip(texts, texts_b):
        sequences += [encode_pair(tokenizer, a, None, seq_length), encode_pair(tokenizer, b, None, seq_length)]
    data = Instances.from_sequences(sequences, groups=np.repeat(np.arange(len(texts)), 2))
    logits = stack_outputs(predict(model, data, batch_size, tokenizer.vocab.pad_id, device), "logits")[0::2]
    return [{"label": int(k), "probabilities": p.tolist(), "logits": row.tolist()}
            for k, p, row in zip(logits.argmax(-1), softmax(logits), logits.astype(np.float64))]


# ------------------------------------------------------------------------------------------------------
# the task

class SiameseTask(Task):
    name = "siamese"
    summary = "Sentence-BERT pairs: two towers, [u; v; |u-v|; u*v] classifier (run_classifier_siamese.py)"
    train_script = "run_classifier_siamese.py"
    infer_script = "run_classifier_siamese_infer.py"
    train_doc = r"""Fine-tune a Sentence-BERT pair classifier: text_a and text_b through two towers, a linear layer over [u; v; |u-v|; u*v].

    python3 run_classifier_siamese.py --pretrained_model_path models/google_zh_model.bin \
        --vocab_path models/google_zh_vocab.txt --config_path models/sbert/base_config.json \
        --train_path datasets/ChineseTextualInference/train.tsv --dev_path datasets/ChineseTextualInference/dev.tsv \
        --epochs_num 3 --batch_size 32

Files: ``label`` (0 .. n-1), ``text_a``, ``text_b``, each text encoded alone as [CLS] text [SEP]. A pre-trained
BERT file starts both towers; a sentence-transformers model comes in through
scripts/convert_sbert_from_huggingface_to_uer.py. The towers are shared when tie_weights is true.
"""
    infer_doc = r"""Predict pair labels with a model fine-tuned by run_classifier_siamese.py.

    python3 inference/run_classifier_siamese_infer.py --load_model_path models/finetuned_model.bin \
        --vocab_path models/google_zh_vocab.txt --config_path models/sbert/base_config.json \
        --test_path datasets/ChineseTextualInference/test_nolabel.tsv \
        --prediction_path datasets/ChineseTextualInference/prediction.tsv --labels_num 3 --seq_length 128 --output_prob

Reads ``text_a`` and ``text_b``; writes ``label`` (then ``logits``/``prob`` when asked), as run_classifier_infer.py.
"""
    defaults = {"batch_size": 32}  # UER-py 2024's training default
    infer_defaults = {"batch_size": 64}

    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser, mode: str) -> None:
        parser.config_sections = ("stream_0", "stream_1")  # UER-py's dual configs: read by tower_args
        group = parser.add_argument_group("siamese")
        group.add_argument("--pooling", choices=POOLINGS, default="first",
                           help="How each tower's output becomes u and v (sentence-transformers models: mean).")
        if mode != "train":
            group.add_argument("--labels_num", type=positive_int, required=mode == "infer", default=None,
                               help="Number of labels of the model.")
        if mode == "infer":
            add_prediction_columns_options(group)

    @classmethod
    def check_options(cls, args: argparse.Namespace, mode: str) -> None:
        if mode != "train" and args.labels_num is not None and args.labels_num < 1:
            raise UsageError(f"--labels_num must be at least 1, got {args.labels_num}")

    def __init__(self, args: argparse.Namespace, tokenizer: Tokenizer) -> None:
        super().__init__(args, tokenizer)
        self.labels_num: int | None = getattr(args, "labels_num", None)

    def read(self, path: str, with_labels: bool = True) -> Instances:
        return read_sentence_pairs(path, self.tokenizer, self.args.seq_length, label="class" if with_labels else None,
                                   pairs_required=True, labels_num=self.labels_num)

    def eval_set(self, name: str, data: Instances) -> EvalSet:
        return EvalSet(name, data, siamese_metric(self.labels_num), "acc")

    def read_training(self) -> TrainingData:
        args = self.args
        self.labels_num = count_labels(args.train_path)
        train, dev = self.read(args.train_path), self.read(args.dev_path)
        test = self.read(args.test_path) if args.test_path else None
        return TrainingData(train, [self.eval_set("dev", dev)], [self.eval_set("test", test)] if test else [])

    def describe(self, data: TrainingData) -> str:
        return "%d labels (from %s); %s towers, %s pooling" % (
            self.labels_num, self.args.train_path, "shared" if self.tied else "separate", self.args.pooling)

    @property
    def tied(self) -> bool:
        return bool(getattr(self.args, "tie_weights", False))

    def build_model(self, pretrained: bool) -> nn.Module:
        from uer.finetune.builders import encoder_from_args, init_head

        vocab_size = len(self.tokenizer.vocab)
        cfg, emb_0, enc_0 = encoder_from_args(tower_args(self.args, 0), vocab_size)
        if self.tied:
            emb_1, enc_1 = emb_0, enc_0
        else:
            cfg_1, emb_1, enc_1 = encoder_from_args(tower_args(self.args, 1), vocab_size)
            if cfg_1.hidden_size != cfg.hidden_size:
                raise ConfigError(f"{self.args.config_path}: the towers' hidden sizes differ ({cfg.hidden_size}, "
                                  f"{cfg_1.hidden_size}); u and v must have one size")
        model = SiameseClassifier([(emb_0, enc_0), (emb_1, enc_1)], cfg.hidden_size, self.labels_num,
                                  self.args.pooling)
        if pretrained:
            init_head(model)
            if self.args.pretrained_model_path:
                load_siamese_weights(model, self.args.pretrained_model_path)
            else:
                logger.info("no --pretrained_model_path: training from random initialisation")
        return model

    def load_model(self, path: str) -> nn.Module:
        model = self.build_model(pretrained=False)
        found = load_siamese_weights(model, path)
        if found["missing"]:
            raise ModelLoadError(f"not a siamese classifier: no {found['missing'][:3]}", path)
        return model

    def read_inference(self, path: str) -> InferenceData:
        return InferenceData(self.read(path, with_labels=False))

    def write_predictions(self, path: str, predictions: list[Prediction], data: InferenceData) -> str:
        logits = (stack_outputs(predictions, "logits")[0::2] if predictions
                  else np.zeros((0, self.labels_num), dtype=np.float32))
        atomic_write_text(path, prediction_rows(logits, self.args.output_logits, self.args.output_prob))
        return f"predicted {len(data.instances) // 2} pairs of {self.args.test_path} into {path}"

    def service(self, device, max_batch_size: int):
        """Label, probabilities and logits of each pair (texts and texts_b)."""
        from uer.serving.tasks import SiameseService

        args = self.args
        if self.labels_num is None:
            raise UsageError("give --labels_num: the number of labels the classifier was trained with")
        info = {"model": args.load_model_path, "task": self.name, "device": str(device), "threads": args.threads,
                "labels_num": self.labels_num}
        return SiameseService(self.load_model(args.load_model_path), self.tokenizer, args.seq_length, max_batch_size,
                              device, info)


register_task(SiameseTask)
