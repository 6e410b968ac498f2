"""English tasks (issue 20 item 5): SQuAD v1.1/v2.0 scoring with the official normalisation and the no-answer
threshold in the mrc task; CoNLL-2003 files in the ner task with word-level labels on the first piece
(--label_all_tokens: every piece) and seqeval's per-type scores.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from errors_workspace import run_entry

ROOT = Path(__file__).resolve().parent.parent
EN_VOCAB = ROOT.parent / "shared" / "data" / "models" / "google_uncased_en_vocab.txt"


def english_tokenizer():
    from uer.text.tokenizers import build_tokenizer

    if not EN_VOCAB.is_file():
        pytest.skip(f"{EN_VOCAB} is absent (the shared English vocabulary)")
    return build_tokenizer("bert", EN_VOCAB)


# ---------------------------------------------------------------------------------------------------- SQuAD

def test_squad_scores_follow_the_official_script() -> None:
    """Worked examples of SQuAD's evaluate-v2.0.py: articles, punctuation and case do not count; F1 over
    tokens, the best reference wins; a no-answer question scores 1 only for the empty prediction."""
    from uer.finetune.metrics import cmrc_em, squad_em, squad_f1, squad_report

    assert squad_em(["teacher"], "a teacher") == 1.0 and squad_f1(["teacher"], "a teacher") == 1.0
    assert cmrc_em(["teacher"], "a teacher") == 0.0  # the Chinese metric does not drop English articles
    assert squad_em(["The Eiffel Tower!"], "eiffel   tower") == 1.0
    assert squad_f1(["a cat sat on"], "the cat sat") == pytest.approx(0.8)  # P 1, R 2/3
    assert squad_f1(["Denver Broncos", "the Broncos"], "Broncos") == pytest.approx(1.0)
    assert squad_f1(["1990"], "in 1991") == 0.0
    assert squad_f1([], "") == 1.0 and squad_f1([], "Paris") == 0.0 and squad_em([], "") == 1.0
    report = squad_report({"q1": ["teacher"], "q2": [], "q3": ["blue sky"]}, {"q1": "a teacher", "q2": "", "q3": "sky"})
    assert report.em == pytest.approx(200 / 3) and report.f1 == pytest.approx(100 * (1 + 1 + 2 / 3) / 3)
    assert report.no_answer == 1


def squad_file(path: Path, version_2: bool) -> Path:
    qas = [{"id": "q1", "question": "Who teaches?", "answers": [{"text": "a teacher", "answer_start": 8}]},
           {"id": "q2", "question": "What colour is the sky?", "answers": [{"text": "blue", "answer_start": 39}]}]
    if version_2:
        qas.append({"id": "q3", "question": "Who won the cup?", "answers": [], "is_impossible": True})
    context = "She was a teacher. The sky above us is blue today."
    assert context[8:17] == "a teacher" and context[39:43] == "blue"
    path.write_text(json.dumps({"data": [{"paragraphs": [{"context": context, "qas": qas}]}]}), encoding="utf-8")
    return path


def test_no_answer_threshold_and_metric_choice(tmp_path) -> None:
    """v2.0 decoding: "" when the [CLS] score beats the best span by more than the threshold; --metric auto
    picks SQuAD's metric for English contexts and CMRC's for Chinese ones."""
    from uer.finetune.tasks.mrc import Question, decode_answers, encode_questions, metric_kind, read_squad

    tok = english_tokenizer()
    questions = read_squad(str(squad_file(tmp_path / "v2.json", True)), allow_no_answer=True)
    assert [q.answers for q in questions] == [["a teacher"], ["blue"], []]
    with pytest.raises(Exception, match="version_2_with_negative"):
        read_squad(str(tmp_path / "v2.json"))
    data = encode_questions(tok, questions, 64, 32)
    assert data.fields["start"].tolist()[2] == 0 and data.fields["end"].tolist()[2] == 0  # no answer: [CLS]
    preds = []
    for i in range(len(data)):
        n = data.offsets[i + 1] - data.offsets[i]
        start, end = np.zeros(n, np.float32), np.zeros(n, np.float32)
        context = np.flatnonzero(data.token_fields["char_start"][data.offsets[i]:data.offsets[i + 1]] >= 0)
        start[context[2]], end[context[3]] = 3.0, 3.0  # best span: context tokens 2..3 ("a teacher"), score 6
        start[0] = end[0] = 2.5 if i < 2 else 3.5  # [CLS] score 5 (an answer) or 7 (no answer)
        preds.append({"start_logits": start, "end_logits": end})
    texts = [a["text"] for a in decode_answers(preds, data, questions, 10, null_threshold=0.0)]
    assert texts == ["a teacher", "a teacher", ""]
    assert [a["text"] for a in decode_answers(preds, data, questions, 10, null_threshold=1.5)][2] == "a teacher"
    assert [a["text"] for a in decode_answers(preds, data, questions, 10)][2] == "a teacher"  # v1.1: always a span
    assert metric_kind("auto", questions) == "squad"
    assert metric_kind("auto", [Question("c", "谁?", "她是一位老师。天空是蓝色的。", ["老师"], 4)]) == "cmrc"
    assert metric_kind("cmrc", questions) == "cmrc"


@pytest.mark.slow
def test_run_cmrc_english_v2_end_to_end(tmp_path, capsys) -> None:
    """run_cmrc.py on an English SQuAD v2.0 file: scored with SQuAD's metric; the inference script writes the
    answers, "" for predicted no-answers, and refuses the threshold without --version_2_with_negative."""
    english_tokenizer()
    data = squad_file(tmp_path / "v2.json", True)
    model = tmp_path / "mrc.bin"
    common = ["--vocab_path", EN_VOCAB, "--config_path", ROOT / "models/bert/tiny_config.json", "--seq_length", "48",
              "--doc_stride", "16", "--version_2_with_negative"]
    capsys.readouterr()
    assert run_entry("run_cmrc.py", "--train_path", data, "--dev_path", data, "--output_model_path", model,
                     "--epochs_num", "2", "--batch_size", "2", "--learning_rate", "1e-3", *common) == 0
    log = capsys.readouterr()
    assert "SQuAD's metric" in log.out + log.err and "SQuAD F1/EM" in log.out + log.err
    prediction = tmp_path / "prediction.json"
    assert run_entry("inference/run_cmrc_infer.py", "--test_path", data, "--load_model_path", model,
                     "--prediction_path", prediction, *common) == 0
    answers = json.loads(prediction.read_text())
    assert set(answers) == {"q1", "q2", "q3"} and all(a == "" or a in data.read_text() for a in answers.values())
    assert run_entry("run_cmrc.py", "--train_path", data, "--dev_path", data, "--output_model_path", model,
                     "--null_score_diff_threshold", "1", *common[:-1]) == 2


# ---------------------------------------------------------------------------------------------------- CoNLL NER

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
to TO B-VP O
boycott VB I-VP O
British JJ B-NP B-MISC
lamb NN I-NP O
. . O O

Kournikova NNP B-NP B-PER
Fischler NNP I-NP I-PER

BRUSSELS NNP B-NP B-LOC
1996-08-22 CD I-NP O
"""
LABELS = {"O": 0, "B-ORG": 1, "I-ORG": 2, "B-MISC": 3, "I-MISC": 4, "B-PER": 5, "I-PER": 6, "B-LOC": 7, "I-LOC": 8}


def test_conll_word_labels_on_first_pieces_and_seqeval_scores(tmp_path) -> None:
    """CoNLL-2003 lines -> words; tags on each word's first WordPiece (every piece with --label_all_tokens, B-X
    as I-X); predictions joined per word score as seqeval's classification report, per type."""
    from seqeval.metrics import classification_report

    from uer.data.finetune_data import IGNORE_INDEX
    from uer.finetune.tasks.ner import ner_metric, read_tagging

    tok = english_tokenizer()
    path = tmp_path / "train.txt"
    path.write_text(CONLL, encoding="utf-8")
    data, sentences = read_tagging(str(path), tok, 32, LABELS, file_format="conll")
    assert sentences.words[1] == ["Kournikova", "Fischler"] and sentences.gold[2] == ["B-LOC", "O"]
    assert len(sentences.words) == 3
    first = data.token_fields["tag_mask"] > 0
    assert [int(t) for t in data.token_fields["label"][first]] == [LABELS[t] for s in sentences.gold for t in s]
    pieces = {w: tok.encode(w) for w in ("Fischler", "1996-08-22")}
    assert len(pieces["Fischler"]) > 1  # a word of several pieces: only its first is labelled
    assert int((data.token_fields["label"] != IGNORE_INDEX).sum()) == int(first.sum())
    all_data, _ = read_tagging(str(path), tok, 32, LABELS, file_format="conll", label_all_tokens=True)
    labels = all_data.token_fields["label"]
    start = all_data.offsets[1]  # [CLS] ko(B-PER) ##urn ##iko ##va fis ##ch ##ler ...
    peter = len(tok.encode("Kournikova"))
    assert peter > 1 and labels[start + 1] == LABELS["B-PER"]
    assert set(labels[start + 2:start + 1 + peter].tolist()) == {LABELS["I-PER"]}  # B-PER pieces after the first: I-PER
    assert set(labels[start + 1 + peter:start + 1 + peter + len(pieces["Fischler"])].tolist()) == {LABELS["I-PER"]}
    # predictions: the gold tags with two mistakes, on the first pieces only
    id2label = sorted(LABELS, key=LABELS.get)
    predicted = [list(s) for s in sentences.gold]
    predicted[0][2] = "B-ORG"
    predicted[1][1] = "O"
    preds, k = [], 0
    for i in range(len(data)):
        mask = data.token_fields["tag_mask"][data.offsets[i]:data.offsets[i + 1]] > 0
        tags = np.full(len(mask), IGNORE_INDEX)
        tags[mask] = [LABELS[t] for t in predicted[k]]
        preds.append({"tags": tags})
        k += 1
    result = ner_metric(sentences, id2label)(preds, data)
    expected = classification_report(sentences.gold, predicted, output_dict=True)
    assert result.scores["f1"] == pytest.approx(expected["micro avg"]["f1-score"])
    for kind in ("ORG", "MISC", "PER", "LOC"):
        assert result.scores[f"f1_{kind}"] == pytest.approx(expected[kind]["f1-score"]), kind


@pytest.mark.slow
def test_run_ner_conll_end_to_end(tmp_path) -> None:
    """run_ner.py --file_format conll --tokenizer bert trains on CoNLL lines; the inference script writes
    token<TAB>tag lines, one per input token, a blank line between sentences."""
    english_tokenizer()
    path = tmp_path / "train.txt"
    path.write_text(CONLL, encoding="utf-8")
    label2id = tmp_path / "label2id.json"
    label2id.write_text(json.dumps(LABELS), encoding="utf-8")
    common = ["--vocab_path", EN_VOCAB, "--config_path", ROOT / "models/bert/tiny_config.json", "--seq_length", "24",
              "--tokenizer", "bert", "--file_format", "conll", "--label2id_path", label2id]
    model = tmp_path / "ner.bin"
    assert run_entry("run_ner.py", "--train_path", path, "--dev_path", path, "--output_model_path", model,
                     "--epochs_num", "1", "--batch_size", "2", "--label_all_tokens", *common) == 0
    prediction = tmp_path / "prediction.txt"
    assert run_entry("inference/run_ner_infer.py", "--test_path", path, "--load_model_path", model,
                     "--prediction_path", prediction, *common) == 0
    blocks = [b.splitlines() for b in prediction.read_text().strip().split("\n\n")]
    assert [[line.split("\t")[0] for line in b] for b in blocks] == [
        ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."], ["Kournikova", "Fischler"],
        ["BRUSSELS", "1996-08-22"]]
    assert all(line.split("\t")[1] in LABELS for b in blocks for line in b)
