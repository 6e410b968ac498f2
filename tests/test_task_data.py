"""Readers and decoding of the task scripts on worked examples: NER windows and first-piece tags, CMRC
windows (--doc_stride) and answers mapped back to the original characters, C3/ChID groups with fillers, and
the heads' batch arithmetic (groups, token losses)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from uer.data.finetune_data import IGNORE_INDEX, collate
from uer.finetune.tasks.multiple_choice import MultipleChoice, choice_instances, read_c3_questions, read_chid_questions
from uer.finetune.tasks.mrc import Question, best_span, decode_answers, encode_questions, tokenize_with_offsets
from uer.finetune.tasks.ner import Tagger, encode_sentences, entities_with_offsets, read_tagging, sentence_tags, window_instances
from uer.text.tokenizers import BertTokenizer, SpaceTokenizer
from uer.text.vocab import Vocab

TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "北", "京", "上", "海", "是", "城", "市", "在", "哪", "里",
          "play", "##ing", "the", "game", "a", "b", "c", "d", "好", "书"]


@pytest.fixture
def vocab() -> Vocab:
    return Vocab.from_tokens(TOKENS)


def test_ner_windows_keep_every_tag_and_first_pieces_carry_them(vocab, tmp_path):
    tok = BertTokenizer(vocab=vocab)
    # "playing" is two pieces: its tag on the first, IGNORE_INDEX on "##ing"
    windows = window_instances([[15, 16], [17], [18]], [1, 0, 2], width=2)
    assert [w[0] for w in windows] == [[15, 16], [17, 18]]
    assert [w[1] for w in windows] == [[1, 0], [1, 1]]
    assert [w[2] for w in windows] == [[1, IGNORE_INDEX], [0, 2]]
    # a 5-word sentence at --seq_length 4 ([CLS] + 2 words + [SEP]) becomes 3 windows; all 5 tags survive
    path = tmp_path / "ner.tsv"
    path.write_text("text_a\tlabel\n北 京 是 城 市\tB-LOC I-LOC O O O\nplaying 好\tO B-X\n", encoding="utf-8")
    labels = {"O": 0, "B-LOC": 1, "I-LOC": 2, "B-X": 3}
    data, sentences = read_tagging(str(path), tok, 4, labels)
    # ... and "playing 好" (3 pieces) two: the word's pieces stay together
    assert data.fields["sentence"].tolist() == [0, 0, 0, 1, 1]
    assert data.lengths.tolist() == [4, 4, 3, 4, 3]
    flat = data.token_fields["label"]
    assert [int(x) for x in flat[data.token_fields["tag_mask"] > 0]] == [1, 2, 0, 0, 0, 0, 3]
    # predictions joined back per sentence, one tag per word
    preds = [{"tags": data.token_fields["label"][data.offsets[i]:data.offsets[i + 1]]} for i in range(len(data))]
    assert sentence_tags(preds, data, sentences, ["O", "B-LOC", "I-LOC", "B-X"]) == [
        ["B-LOC", "I-LOC", "O", "O", "O"], ["O", "B-X"]]
    # without a closing [SEP] (--no_closing_sep) a window holds one more token
    legacy, _ = encode_sentences(tok, [["北", "京", "是"]], None, 4, closing_sep=False)
    assert legacy.lengths.tolist() == [4] and "label" not in legacy.token_fields


def test_entities_map_to_character_offsets_of_the_raw_text():
    text = "我 在北京"
    # tags are per non-space character: 我 在 北 京
    assert entities_with_offsets(text, ["O", "O", "B-LOC", "I-LOC"]) == [
        {"type": "LOC", "start": 3, "end": 5, "text": "北京"}]


def test_tagger_token_loss_counts_and_crf_outputs(vocab):
    torch.manual_seed(0)
    emb = torch.nn.Embedding(len(TOKENS), 8)

    class Enc(torch.nn.Module):
        def forward(self, x, seg):
            return x

    class Emb(torch.nn.Module):
        def forward(self, src, seg):
            return emb(src)

    batch = {"src": torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]]), "seg": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]),
             "tag_mask": torch.tensor([[0, 1, 1, 0], [0, 1, 0, IGNORE_INDEX]]),
             "label": torch.tensor([[IGNORE_INDEX, 1, 2, IGNORE_INDEX], [IGNORE_INDEX, 0, IGNORE_INDEX, IGNORE_INDEX]])}
    for crf in (False, True):
        out = Tagger(Emb(), Enc(), 8, 3, crf=crf)(batch)
        assert out.stats["count"].tolist() == [2, 1]
        tags = out.outputs["tags"]
        assert tags[0, 0] == IGNORE_INDEX and tags[1, 2] == IGNORE_INDEX and (tags[batch["tag_mask"] > 0] >= 0).all()
        assert (out.loss_count is not None) != crf  # token-mean without CRF; per-sentence likelihood with it
        assert torch.isfinite(out.loss).all()


def test_cmrc_offsets_windows_and_answers_from_the_original_characters(vocab):
    tok = BertTokenizer(vocab=vocab)
    context = "北京 是 Playing! 城市X"
    ids, starts, ends = tokenize_with_offsets(tok, context)
    # 北 京 | 是 | play ##ing (sub-spans of "Playing") | ! (UNK) | 城 市 | X (UNK)
    assert [context[s:e] for s, e in zip(starts, ends)] == ["北", "京", "是", "Play", "ing", "!", "城", "市", "X"]
    q = Question("q1", "哪里", context, ["城市X"], context.index("城市X"))
    data = encode_questions(tok, [q], seq_length=9, doc_stride=2)  # [CLS] 哪 里 [SEP] + 4 tokens + [SEP]
    # windows of 4 context tokens starting every 2: 0-3, 2-5, 4-7, 6-8: every token in some window
    assert len(data) == 4 and data.fields["example"].tolist() == [0, 0, 0, 0]
    # the answer (tokens 6..8) fits only the last window: targets there, [CLS] (0) elsewhere
    assert data.fields["start"].tolist() == [0, 0, 0, 4] and data.fields["end"].tolist() == [0, 0, 0, 6]
    # decoding: make the last window point at 城..X; the text comes from the context, UNK character included
    preds = []
    for i in range(len(data)):
        n = int(data.lengths[i])
        s, e = np.zeros(n, np.float32), np.zeros(n, np.float32)
        if i == 3:
            s[4], e[6] = 5.0, 5.0
        preds.append({"start_logits": s, "end_logits": e})
    answer = decode_answers(preds, data, [q], max_answer_length=5)[0]
    assert answer["text"] == "城市X" and (answer["start"], answer["end"]) == (14, 17)
    # max_answer_length 2 forbids the 3-token span
    assert decode_answers(preds, data, [q], max_answer_length=2)[0]["text"] != "城市X"


def test_best_span_start_before_end_single_token_legal():
    s = np.array([0.0, 1.0, 9.0, 0.0])
    e = np.array([0.0, 8.0, 0.0, 1.0])  # the best end (1) is before the best start (2)
    assert best_span(s, e, np.ones(4, bool), 10)[:2] == (2, 3)
    assert best_span(np.array([0.0, 5.0]), np.array([0.0, 5.0]), np.ones(2, bool), 10)[:2] == (1, 1)  # one token
    assert best_span(s, e, np.array([True, True, False, False]), 10)[:2] == (1, 1)
    assert best_span(s, e, np.zeros(4, bool), 10) is None


def test_c3_groups_fillers_and_truncation(vocab, tmp_path):
    tok = BertTokenizer(vocab=vocab)
    path = tmp_path / "c3.json"
    doc = "北京是城市" * 10
    path.write_text(json.dumps([[[doc], [{"question": "哪里", "choice": ["北京", "上海"], "answer": "上海", "id": 7}], "a"]],
                               ensure_ascii=False), encoding="utf-8")
    qs = read_c3_questions(str(path), tok, seq_length=12, max_choices_num=3)
    assert qs[0].label == 1 and qs[0].qid == 7
    # [CLS] choice [SEP] question [SEP] document... [SEP], cut to 12 with choice and question whole
    assert qs[0].texts[0][:7] == [2, 5, 6, 3, 13, 14, 3] and len(qs[0].texts[0]) == 12 and qs[0].texts[0][-1] == 3
    data = choice_instances(qs, 3, tok)
    assert data.groups.tolist() == [0, 0, 0] and data.fields["choice_mask"].tolist() == [1, 1, 0]

    class First(torch.nn.Module):
        def forward(self, x, seg):
            return x

    class Emb(torch.nn.Module):
        def forward(self, src, seg):
            return torch.nn.functional.one_hot(src, 8).float() if src.max() < 8 else torch.ones(*src.shape, 8)

    head = MultipleChoice(Emb(), First(), 8, choices_num=3)
    out = head(collate(data, np.arange(3), 0))
    assert out.outputs["logits"][2] == -1e4  # the filler never wins
    assert out.stats["count"].tolist() == [1.0, 0.0, 0.0] and out.loss_count.tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="whole groups"):
        head(collate(data, np.arange(2), 0))


def test_chid_blanks_context_and_masks(vocab, tmp_path):
    tok = SpaceTokenizer(vocab=vocab)
    path = tmp_path / "chid.json"
    path.write_text(json.dumps({"candidates": ["北", "上"], "content": ["a b #idiom000001# c #idiom000002# d"]}) + "\n",
                    encoding="utf-8")
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"#idiom000001#": 1, "#idiom000002#": 0}), encoding="utf-8")
    qs = read_chid_questions(str(path), tok, seq_length=16, max_choices_num=3, answer_path=str(answers))
    assert [q.qid for q in qs] == ["#idiom000001#", "#idiom000002#"] and [q.label for q in qs] == [1, 0]
    a, b, c, d, mask = (vocab.get(x) for x in ("a", "b", "c", "d", "[MASK]"))
    # blank 1: [CLS] cand [SEP] a b [SEP] c [MASK] d [SEP]; blank 2: ... a b [MASK] c [SEP] d [SEP]
    assert qs[0].texts[1] == [2, vocab.get("上"), 3, a, b, 3, c, mask, d, 3]
    assert qs[1].texts[0] == [2, vocab.get("北"), 3, a, b, mask, c, 3, d, 3]
    assert qs[0].segment_1 == [3, 3]


def test_predict_functions_for_servers(vocab):
    """predict_entities / predict_answers on raw texts: one tag per non-space character with entities at
    character offsets; answers as substrings of their contexts with their spans."""
    from uer.finetune.tasks.mrc import SpanExtractor, predict_answers
    from uer.finetune.tasks.ner import predict_entities
    from uer.model_builder import build_model
    from uer.model_config import ModelConfig

    cfg = ModelConfig(vocab_size=len(TOKENS), emb_size=16, hidden_size=16, feedforward_size=32, heads_num=2,
                      layers_num=1, max_seq_length=64, dropout=0.0)
    torch.manual_seed(0)
    base = build_model(cfg, with_target=False)
    tagger = Tagger(base.embedding, base.encoder, 16, 3)
    with torch.no_grad():
        tagger.output_layer.bias.copy_(torch.tensor([0.0, 50.0, 0.0]))  # every character B-X: one entity each
    tok = BertTokenizer(vocab=vocab)
    texts = ["北京 是城市", "", "上海" * 40]  # a long text is predicted in windows
    out = predict_entities(tagger, tok, texts, ["O", "B-X", "I-X"], seq_length=16)
    assert out[1] == {"tags": [], "entities": []}
    assert out[0]["tags"] == ["B-X"] * 5 and [e["start"] for e in out[0]["entities"]] == [0, 1, 3, 4, 5]
    assert out[0]["entities"][2] == {"type": "X", "start": 3, "end": 4, "text": "是"}
    assert len(out[2]["tags"]) == 80 and len(out[2]["entities"]) == 80
    reader = SpanExtractor(base.embedding, base.encoder, 16)
    contexts = ["北京是城市", "上海在哪里" * 10]
    answers = predict_answers(reader, tok, ["哪里", "哪里"], contexts, seq_length=24, doc_stride=8, max_answer_length=4)
    for a, c in zip(answers, contexts):
        assert c[a["start"]:a["end"]] == a["text"] and 1 <= len(a["text"]) <= 4
