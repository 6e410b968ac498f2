"""Sequence labelling (run_ner.py, inference/run_ner_infer.py): reader, head, metric, predict function, task.

File format (UER-py): a header row, then ``text_a<TAB>label`` per sentence; ``text_a`` holds the sentence's
characters separated by spaces and ``label`` one tag per character (``B-PER I-PER O ...``); the tag names
and their ids come from ``--label2id_path`` (JSON ``{"O": 0, "B-PER": 1, ...}``).

Tokens: each space-separated field of ``text_a`` is one word. The word's pieces come from the tokenizer
(``--tokenizer space``, the default of run_ner.py: the field itself, or [UNK]; ``bert``: its WordPiece
pieces); the tag goes to the first piece and the other pieces are ignored in the loss and the metric
(label ``IGNORE_INDEX``). A word with no pieces at all (a control character) becomes [UNK].

CoNLL-2003 files (``--file_format conll``): one token per line with its tag in the last column (other
columns, such as POS and chunk tags, are ignored), a blank line between sentences, ``-DOCSTART-`` lines
skipped; with ``--tokenizer bert`` each token is a word whose tag goes to its first WordPiece piece, the metric
being word-level; ``--label_all_tokens`` also trains every later piece on the word's tag (``B-X`` as ``I-X``,
as HF's run_ner does). Predictions of a CoNLL file are written in CoNLL form: ``token<TAB>tag`` lines.

Long sentences are never cut out of the metric: a sentence whose pieces do not fit ``--seq_length`` is
split, at word boundaries, into consecutive windows that each become an instance ([CLS] window [SEP]); the
predictions of a sentence's windows are joined again before scoring and before writing.

Metric: entity-level precision, recall and F1, micro-averaged over all entities and per type, with the
CoNLL chunking of conlleval and of seqeval's default mode (uer.finetune.metrics.extract_entities): in
particular an ``I-X`` that does not follow ``B-X``/``I-X`` starts an entity of type X.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from uer.data.finetune_data import IGNORE_INDEX, Instances, read_tsv_lines
from uer.data.json_files import read_json
from uer.errors import DataError, UsageError
from uer.finetune.adversarial import add_adversarial_options
from uer.finetune.contract import EvalSet, Evaluation, HeadOutput, Prediction
from uer.finetune.crf import CRF, bio_allowed, viterbi
from uer.text.tokenizers import Tokenizer
from uer.finetune.metrics import entity_report, extract_entities
from uer.finetune.tasks.base import InferenceData, Task, TrainingData, register_task
from uer.utils.io import atomic_write_text, check_input_file, read_lines

FILE_FORMATS = ("tsv", "conll")


def read_label2id(path: str) -> dict[str, int]:
    """``--label2id_path``: a JSON object tag -> id, the ids exactly 0 .. n-1."""
    labels = read_json(path, "label map (--label2id_path)")
    if not isinstance(labels, dict) or not labels or not all(isinstance(v, int) for v in labels.values()):
        raise DataError("must be a JSON object mapping each tag to an integer id, e.g. {\"O\": 0, \"B-PER\": 1}", path)
    if sorted(labels.values()) != list(range(len(labels))):
        raise DataError(f"the ids must be 0 .. {len(labels) - 1}, each once; found {sorted(labels.values())}", path)
    return dict(labels)


@dataclass
class Sentences:
    """What the windows of a tagging file came from: per sentence its words and (when labelled) gold tags;
    ``sentence`` [instances] maps each instance (window) back to its sentence."""

    words: list[list[str]]
    gold: list[list[str]] | None
    sentence: np.ndarray


def encode_words(tokenizer: Tokenizer, words: Sequence[str]) -> list[list[int]]:
    """The pieces of every word; a word the tokenizer drops entirely becomes [UNK] (one tag, one token)."""
    unk = tokenizer.vocab.unk_id
    return [tokenizer.encode(w) or [unk] for w in words]


def window_instances(pieces: list[list[int]], tags: list[int] | None, width: int,
                     continuation: Sequence[int] | None = None) -> list[tuple[list[int], list[int], list[int]]]:
    """Cut a sentence's words into windows of at most ``width`` pieces, at word boundaries.

    Returns per window (piece ids, tag_mask, labels): tag_mask is 1 on each word's first piece; labels hold
    the word's tag there and IGNORE_INDEX on other pieces (all IGNORE_INDEX without tags). A single word
    longer than a window keeps its first ``width`` pieces (the others carry no tag). ``continuation`` (tag id ->
    the id later pieces get, ``--label_all_tokens``): the later pieces are labelled too, not only the first
    (their predictions still never reach the metric: tag_mask stays on the first piece).
    """
    windows, ids, mask, labels = [], [], [], []
    for i, word in enumerate(pieces):
        word = word[:width]
        if ids and len(ids) + len(word) > width:
            windows.append((ids, mask, labels))
            ids, mask, labels = [], [], []
        ids.extend(word)
        mask.extend([1] + [0] * (len(word) - 1))
        tag = tags[i] if tags is not None else IGNORE_INDEX
        rest = continuation[tag] if continuation is not None and tag != IGNORE_INDEX else IGNORE_INDEX
        labels.extend([tag] + [rest] * (len(word) - 1))
    if ids or not windows:
        windows.append((ids, mask, labels))
    return windows


def encode_sentences(tokenizer: Tokenizer, sentences: Sequence[list[str]], tags: Sequence[list[int]] | None,
                     seq_length: int, closing_sep: bool = True,
                     continuation: Sequence[int] | None = None) -> tuple[Instances, np.ndarray]:
    """Instances ([CLS] window [SEP], or [CLS] window with ``closing_sep`` False) of word lists, with token
    fields ``tag_mask`` and (with tags) ``label``; and the sentence index of every instance."""
    vocab = tokenizer.vocab
    specials = 2 if closing_sep else 1
    width = seq_length - specials
    if width < 1:
        raise UsageError(f"--seq_length {seq_length} leaves no room for a token next to [CLS]/[SEP]")
    sequences, masks, labels, owner = [], [], [], []
    for s, words in enumerate(sentences):
        for ids, mask, lab in window_instances(encode_words(tokenizer, words), None if tags is None else tags[s], width,
                                               continuation):
            tail = [vocab.sep_id] if closing_sep else []
            sequences.append(([vocab.cls_id] + ids + tail, seq_length))
            masks.append([0] + mask + [0] * len(tail))
            labels.append([IGNORE_INDEX] + lab + [IGNORE_INDEX] * len(tail))
            owner.append(s)
    token_fields = {"tag_mask": [np.asarray(m, dtype=np.int64) for m in masks]}
    if tags is not None:
        token_fields["label"] = [np.asarray(lab, dtype=np.int64) for lab in labels]
    data = Instances.from_sequences(sequences, {"sentence": np.asarray(owner, dtype=np.int64)}, token_fields)
    return data, np.asarray(owner, dtype=np.int64)


def read_conll(path: str, with_labels: bool = True) -> list[tuple[int, list[str], list[str]]]:
    """CoNLL-2003-style sentences: (line of the first token, tokens, tags from the last column; empty tags
    without labels). Blank lines end sentences; ``-DOCSTART-`` lines are skipped."""
    check_input_file(path, "CoNLL file")
    sentences: list[tuple[int, list[str], list[str]]] = []
    first, words, tags = 0, [], []
    for number, line in read_lines(path):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if words:
                sentences.append((first, words, tags))
            first, words, tags = 0, [], []
            continue
        if with_labels and len(fields) < 2:
            raise DataError(f"one column ({fields[0]!r}): a CoNLL line needs the token, then its tag in the last "
                            "column", path, number)
        first = first or number
        words.append(fields[0])
        tags.append(fields[-1] if with_labels else "")
    if words:
        sentences.append((first, words, tags))
    if not sentences:
        raise DataError("no sentences (a token per line, a blank line between sentences)", path)
    return sentences


def read_tsv_sentences(path: str, with_labels: bool = True) -> list[tuple[int, list[str], list[str]]]:
    """UER-py's tagging TSV as (line, words, tags) (see the module docstring)."""
    required = ("text_a",) + (("label",) if with_labels else ())
    columns, rows, lines = read_tsv_lines(path, required=required)
    out = []
    for line, row in zip(lines, rows):
        sentence = row[columns["text_a"]].strip().split()
        if not sentence:
            raise DataError("empty text_a (a sentence needs at least one character)", path, line)
        tags = row[columns["label"]].split() if with_labels else []
        if with_labels and len(tags) != len(sentence):
            raise DataError(f"{len(sentence)} characters in text_a but {len(tags)} tags in label "
                            "(one space-separated tag per space-separated character)", path, line)
        out.append((line, sentence, tags))
    return out


def continuation_ids(label2id: dict[str, int]) -> list[int]:
    """--label_all_tokens: the tag id a word's later pieces get: ``I-X`` for ``B-X`` when the map has it, else the
    word's own tag."""
    out = [0] * len(label2id)
    for tag, i in label2id.items():
        inside = "I-" + tag[2:] if tag.startswith("B-") else tag
        out[i] = label2id.get(inside, i)
    return out


def read_tagging(path: str, tokenizer: Tokenizer, seq_length: int, label2id: dict[str, int],
                 with_labels: bool = True, closing_sep: bool = True, file_format: str = "tsv",
                 label_all_tokens: bool = False) -> tuple[Instances, Sentences]:
    """Encode a tagging file (see the module docstring); every tag must be in ``label2id``."""
    rows = (read_conll if file_format == "conll" else read_tsv_sentences)(path, with_labels)
    words, gold, ids = [], [] if with_labels else None, [] if with_labels else None
    for line, sentence, tags in rows:
        words.append(sentence)
        if with_labels:
            unknown = [t for t in tags if t not in label2id]
            if unknown:
                raise DataError(f"tag {unknown[0]!r} is not in --label2id_path (known: {', '.join(label2id)})", path, line)
            gold.append(tags)
            ids.append([label2id[t] for t in tags])
    continuation = continuation_ids(label2id) if label_all_tokens and with_labels else None
    data, owner = encode_sentences(tokenizer, words, ids, seq_length, closing_sep, continuation)
    return data, Sentences(words, gold, owner)


# ------------------------------------------------------------------------------------------------------
# head

def _tagged_first(tag_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions of the tagged tokens of each row moved to the front: (gather index [B x L], mask [B x L])."""
    tagged = tag_mask > 0
    order = torch.argsort((~tagged).to(torch.int8), dim=1, stable=True)
    mask = torch.arange(tagged.shape[1], device=tagged.device)[None, :] < tagged.sum(1, keepdim=True)
    return order, mask


class Tagger(nn.Module):
    """Encoder output of every token -> ``output_layer`` -> tag scores; with a CRF (``crf.*``, --crf_target)
    the scores are its emissions, trained by log-likelihood and decoded by Viterbi.

    ``bio``: (allowed starts, allowed transitions) of :func:`uer.finetune.crf.bio_allowed`; when given,
    decoding never produces an ``I-X`` that does not follow ``B-X``/``I-X`` (with or without a CRF).
    Outputs: ``tags`` [B x L] (IGNORE_INDEX on untagged tokens) and ``tag_logits`` [B x L x T], per token.
    """

    def __init__(self, embedding: nn.Module, encoder: nn.Module, hidden_size: int, labels_num: int,
                 crf: bool = False, bio: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        super().__init__()
        self.embedding = embedding
        self.encoder = encoder
        self.labels_num = labels_num
        self.output_layer = nn.Linear(hidden_size, labels_num)
        self.crf = CRF(labels_num, bio) if crf else None
        self.use_bio = bio is not None
        if bio is not None and not crf:
            start = torch.where(bio[0], 0.0, -1e4)
            trans = torch.where(bio[1], 0.0, -1e4)
            self.register_buffer("bio_start", start, persistent=False)
            self.register_buffer("bio_transitions", trans, persistent=False)

    def forward(self, batch: dict[str, torch.Tensor]) -> HeadOutput:
        src, seg = batch["src"], batch["seg"]
        logits = self.output_layer(self.encoder(self.embedding(src, seg), seg)).float()  # [B x L x T]
        tag_mask = batch["tag_mask"]
        order, mask = _tagged_first(tag_mask)
        emissions = logits.gather(1, order.unsqueeze(-1).expand_as(logits))  # tagged tokens first
        with torch.no_grad():  # the decoded tags get no gradient: no autograd record of Viterbi's loop
            if self.crf is not None:
                packed = self.crf.decode(emissions, mask)
            elif self.use_bio:
                log_probs = F.log_softmax(emissions, dim=-1)
                zeros = torch.zeros_like(self.bio_start)
                packed = viterbi(log_probs, mask, self.bio_start, self.bio_transitions, zeros)
            else:
                packed = emissions.argmax(-1)
        packed = torch.where(mask, packed, torch.full_like(packed, IGNORE_INDEX))
        tags = torch.full_like(packed, IGNORE_INDEX).scatter(1, order, packed)  # back to token positions
        outputs = {"tags": tags, "tag_logits": logits}
        if "label" not in batch:
            return HeadOutput(None, outputs, token_outputs=("tags", "tag_logits"))
        label = batch["label"]
        labelled = label != IGNORE_INDEX
        count = labelled.sum(1)
        correct = ((tags == label) & labelled).sum(1)
        stats = {"correct": correct.float(), "count": count.float()}
        if self.crf is not None:
            gold = label.gather(1, order)
            loss = -self.crf.log_likelihood(emissions, gold.clamp(min=0), mask)
            return HeadOutput(loss, outputs, stats, ("tags", "tag_logits"))
        token_loss = F.cross_entropy(logits.transpose(1, 2), label, ignore_index=IGNORE_INDEX, reduction="none")
        # Summed per sentence and normalised by the labelled tokens of the global batch: every token weighs
        # the same, as in UER-py (whose loss is the mean over the batch's labelled tokens).
        return HeadOutput(token_loss.sum(1), outputs, stats, ("tags", "tag_logits"), loss_count=count.float())


def tagger_from_args(args, vocab_size: int, label2id: dict[str, int], pretrained: bool = True) -> Tagger:
    """run_ner.py's model: encoder + output_layer (+ crf with --crf_target), pre-trained weights loaded."""
    from uer.finetune.builders import encoder_from_args, init_head, load_pretrained

    cfg, embedding, encoder = encoder_from_args(args, vocab_size)
    bio = bio_allowed(label2id) if getattr(args, "bio_constraints", False) else None
    model = Tagger(embedding, encoder, cfg.hidden_size, len(label2id), crf=getattr(args, "crf_target", False), bio=bio)
    init_head(model)  # output_layer; the CRF keeps its own initialisation (init_head sets Linear/Embedding/norms)
    if pretrained:
        load_pretrained(model, getattr(args, "pretrained_model_path", None))
    return model


# ------------------------------------------------------------------------------------------------------
# joining windows, metric, predictions

def sentence_tags(predictions: list[Prediction], data: Instances, sentences: Sentences,
                  id2label: Sequence[str]) -> list[list[str]]:
    """Predicted tag names of every sentence, one per word, the windows of a sentence joined."""
    out: list[list[str]] = [[] for _ in sentences.words]
    offsets = data.offsets
    tag_mask = data.token_fields["tag_mask"]
    for i, pred in enumerate(predictions):
        mask = tag_mask[offsets[i]:offsets[i + 1]] > 0
        out[sentences.sentence[i]].extend(id2label[t] for t in pred["tags"][mask])
    return out


PREDICTION_COLUMN = "pred_label"  # UER-py's run_ner_infer.py header


def format_predicted_tags(tags: Sequence[Sequence[str]]) -> str:
    """The NER prediction file's text, as UER-py's run_ner_infer.py writes it: a ``pred_label`` header, then one
    line per sentence with one tag per input character, separated by spaces."""
    return PREDICTION_COLUMN + "\n" + "".join(" ".join(sentence) + "\n" for sentence in tags)


def ner_metric(sentences: Sentences, id2label: Sequence[str]):
    """Metric for an EvalSet of a labelled tagging file: entity P/R/F1 (primary score ``f1``)."""

    def metric(predictions: list[Prediction], data: Instances) -> Evaluation:
        pred = sentence_tags(predictions, data, sentences, id2label)
        report = entity_report(sentences.gold, pred)
        return Evaluation(report.scores(), report.summary(), report.format())

    return metric


def entities_with_offsets(text: str, tags: Sequence[str]) -> list[dict]:
    """Entities of a raw text tagged one tag per non-space character: type, start and end (exclusive)
    offsets into ``text``, and the entity's text."""
    positions = [i for i, c in enumerate(text) if not c.isspace()]
    out = []
    for kind, first, last in extract_entities(tags):
        start, end = positions[first], positions[last] + 1
        out.append({"type": kind, "start": start, "end": end, "text": text[start:end]})
    return out


@torch.no_grad()
def predict_entities(model: Tagger, tokenizer: Tokenizer, texts: Sequence[str], id2label: Sequence[str],
                     seq_length: int = 128, batch_size: int = 32, device: torch.device | str = "cpu",
                     closing_sep: bool = True) -> list[dict]:
    """Tag raw texts (every non-space character a token) with a trained :class:`Tagger`.

    Returns per text ``{"tags": [one tag per non-space character], "entities": [{"type", "start", "end",
    "text"}]}`` with character offsets into the given text. For servers and notebooks.
    """
    from uer.finetune.loop import predict

    sentences = [[c for c in text if not c.isspace()] for text in texts]
    keep = [i for i, s in enumerate(sentences) if s]
    data, owner = encode_sentences(tokenizer, [sentences[i] for i in keep], None, seq_length, closing_sep)
    preds = predict(model.to(device), data, batch_size, tokenizer.vocab.pad_id, torch.device(device))
    tags = sentence_tags(preds, data, Sentences([sentences[i] for i in keep], None, owner), id2label)
    results = [{"tags": [], "entities": []} for _ in texts]
    for i, t in zip(keep, tags):
        results[i] = {"tags": t, "entities": entities_with_offsets(texts[i], t)}
    return results


# ------------------------------------------------------------------------------------------------------
# the task

def add_tagging_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sequence labelling")
    group.add_argument("--label2id_path", required=True, help="JSON object: tag -> id (ids 0 .. n-1).")
    group.add_argument("--crf_target", action="store_true",
                       help="Linear-chain CRF over the tag scores: log-likelihood training, Viterbi decoding.")
    group.add_argument("--bio_constraints", action="store_true",
                       help="Decode only valid BIO sequences (no I-X after O or after another type).")


class NerTask(Task):
    name = "ner"
    summary = "a tag per character: named entities, BIO tags, optional CRF (run_ner.py)"
    train_script = "run_ner.py"
    infer_script = "run_ner_infer.py"
    defaults = {"tokenizer": "space"}
    input_options = ("label2id_path",)
    train_doc = r"""Fine-tune a sequence labeller (named entity recognition): one feed-forward layer over every token's
encoder output, optionally followed by a linear-chain CRF (--crf_target).

    python3 run_ner.py --pretrained_model_path models/google_zh_model.bin --vocab_path models/google_zh_vocab.txt \
        --train_path datasets/msra_ner/train.tsv --dev_path datasets/msra_ner/dev.tsv \
        --test_path datasets/msra_ner/test.tsv --label2id_path datasets/msra_ner/label2id.json \
        --epochs_num 5 --batch_size 16 --embedding word_pos_seg --encoder transformer --mask fully_visible

Files: a header row, ``text_a`` (characters separated by spaces) and ``label`` (one tag per character,
separated by spaces); --label2id_path maps every tag to its id. Each character is one token (--tokenizer
space, the default here; --tokenizer bert gives a space-separated word its WordPiece pieces, the tag going
to the first). A sentence longer than --seq_length is predicted in consecutive windows, never cut.

Metric: entity-level precision/recall/F1, overall and per type, exactly as seqeval's default (CoNLL) mode:
an entity is a chunk of B-X I-X ... tags, and an I-X that does not continue an X entity starts a new one.
English CoNLL-2003 files: --file_format conll --tokenizer bert (word-level tags on each word's first piece;
--label_all_tokens labels every piece). --crf_target: CRF log-likelihood training and Viterbi decoding. --bio_constraints: decoding never outputs
an I-X that does not follow B-X or I-X (with or without CRF). The best model on dev F1 is kept.
"""
    infer_doc = r"""Tag a file with a model fine-tuned by run_ner.py.

    python3 inference/run_ner_infer.py --load_model_path models/finetuned_model.bin \
        --vocab_path models/google_zh_vocab.txt --test_path datasets/msra_ner/test_nolabel.tsv \
        --prediction_path datasets/msra_ner/prediction.tsv --label2id_path datasets/msra_ner/label2id.json \
        --embedding word_pos_seg --encoder transformer --mask fully_visible

Reads ``text_a`` (space-separated characters) by column name; writes a TSV with UER-py's ``pred_label`` column: one
tag per input character, separated by spaces (long sentences are predicted in windows and joined). A model
trained with --crf_target is recognised from its file (its ``crf.*`` weights) and decoded by Viterbi.
"""

    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser, mode: str) -> None:
        add_tagging_options(parser)
        if mode != "serve":
            parser.add_argument("--file_format", choices=FILE_FORMATS, default="tsv",
                                help="tsv: UER-py's text_a/label TSV; conll: CoNLL-2003 (a token per line, its tag in "
                                     "the last column, a blank line between sentences), usually with --tokenizer bert.")
        if mode == "train":
            parser.add_argument("--label_all_tokens", action="store_true",
                                help="Train every piece of a word on its tag (B-X as I-X after the first piece), not "
                                     "only the first; the metric stays word-level.")
            add_adversarial_options(parser)

    def __init__(self, args: argparse.Namespace, tokenizer: Tokenizer) -> None:
        super().__init__(args, tokenizer)
        self.label2id = read_label2id(args.label2id_path)
        self.id2label = sorted(self.label2id, key=self.label2id.get)

    def read(self, path: str, with_labels: bool = True) -> tuple[Instances, Sentences]:
        return read_tagging(path, self.tokenizer, self.args.seq_length, self.label2id, with_labels=with_labels,
                            closing_sep=self.closing_sep, file_format=self.args.file_format,
                            label_all_tokens=getattr(self.args, "label_all_tokens", False))

    def eval_set(self, name: str, path: str) -> EvalSet:
        data, sentences = self.read(path)
        return EvalSet(name, data, ner_metric(sentences, self.id2label), "f1")

    def read_training(self) -> TrainingData:
        args = self.args
        train, _ = self.read(args.train_path)
        dev = self.eval_set("dev", args.dev_path)
        test = [self.eval_set("test", args.test_path)] if args.test_path else []
        return TrainingData(train, [dev], test)

    def describe(self, data: TrainingData) -> str:
        args = self.args
        return "%d tags (from %s)%s%s; %d training windows" % (
            len(self.label2id), args.label2id_path, "; CRF" if args.crf_target else "",
            "; BIO-constrained decoding" if args.bio_constraints else "", len(data.train))

    def build_model(self, pretrained: bool) -> nn.Module:
        return tagger_from_args(self.args, len(self.tokenizer.vocab), self.label2id, pretrained=pretrained)

    def load_model(self, path: str) -> nn.Module:
        from uer.model_loader import load_model_weights, load_state_dict

        state = load_state_dict(path)
        self.args.crf_target = self.args.crf_target or "crf.transitions" in state  # a CRF model decodes by Viterbi
        model = self.build_model(pretrained=False)
        load_model_weights(model, path, strict_prefixes=("",), state=state)
        return self.inference_model(model)

    def read_inference(self, path: str) -> InferenceData:
        data, sentences = self.read(path, with_labels=False)
        return InferenceData(data, sentences)

    def write_predictions(self, path: str, predictions: list[Prediction], data: InferenceData) -> str:
        tags = sentence_tags(predictions, data.instances, data.source, self.id2label)
        if self.args.file_format == "conll":
            atomic_write_text(path, "\n".join("".join(f"{w}\t{t}\n" for w, t in zip(words, sentence_tags_))
                                              for words, sentence_tags_ in zip(data.source.words, tags)))
        else:
            atomic_write_text(path, format_predicted_tags(tags))
        return f"tagged {len(data.source.words)} sentences of {self.args.test_path} into {path}"

    def service(self, device, max_batch_size: int):
        """``{"entities": [{"type", "start", "end", "text"}], "tags": [...]}`` per text."""
        from uer.serving.tasks import NerService

        args = self.args
        model = self.load_model(args.load_model_path)
        info = {"model": args.load_model_path, "task": self.name, "device": str(device), "threads": args.threads}
        return NerService(model, self.tokenizer, args.seq_length, max_batch_size, device, self.id2label,
                          self.closing_sep, info)


register_task(NerTask)
