"""Entity-level NER scores against seqeval, the CMRC 2018 metric on worked examples, the CRF against
brute-force enumeration of every tag path."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from uer.finetune.crf import CRF, bio_allowed, viterbi
from uer.finetune.metrics import cmrc_em, cmrc_f1, cmrc_report, cmrc_segments, entity_report, extract_entities, \
    treebank_words

HAND_CASES = [
    # (gold, predicted)
    (["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "I-PER", "O", "B-LOC"]),
    (["O", "I-PER", "I-PER", "O"], ["B-PER", "I-PER", "I-PER", "O"]),          # I- without B- starts an entity
    (["B-PER", "B-PER", "I-PER"], ["B-PER", "I-PER", "I-PER"]),                 # adjacent entities of one type
    (["B-LOC", "I-ORG", "I-ORG", "O"], ["B-LOC", "I-LOC", "I-ORG", "O"]),       # type change splits
    (["B-ORG", "I-ORG", "I-ORG"], ["B-ORG", "I-ORG", "O"]),                      # boundary error
    (["O", "O", "O"], ["I-LOC", "O", "B-PER"]),                                  # spurious entities only
    (["I-ORG"], ["I-ORG"]),
]


def test_extract_entities_conll_rules():
    assert extract_entities(["O", "I-PER", "I-PER", "O"]) == [("PER", 1, 2)]
    assert extract_entities(["B-PER", "B-PER", "I-PER"]) == [("PER", 0, 0), ("PER", 1, 2)]
    assert extract_entities(["B-LOC", "I-ORG", "I-ORG"]) == [("LOC", 0, 0), ("ORG", 1, 2)]
    assert extract_entities(["I-LOC", "O", "B-PER"]) == [("LOC", 0, 0), ("PER", 2, 2)]
    assert extract_entities(["O", "O"]) == []


def test_entity_report_equals_seqeval_on_hand_cases():
    seqeval = pytest.importorskip("seqeval.metrics", reason="pip install -r requirements-test.txt (seqeval)")
    gold = [g for g, _ in HAND_CASES]
    pred = [p for _, p in HAND_CASES]
    report = entity_report(gold, pred)
    assert report.precision == pytest.approx(seqeval.precision_score(gold, pred), abs=1e-12)
    assert report.recall == pytest.approx(seqeval.recall_score(gold, pred), abs=1e-12)
    assert report.f1 == pytest.approx(seqeval.f1_score(gold, pred), abs=1e-12)
    per_type = seqeval.classification_report(gold, pred, output_dict=True, zero_division=0)
    for kind, (c, p, g) in report.per_type.items():
        assert report._prf(c, p, g)[2] == pytest.approx(per_type[kind]["f1-score"], abs=1e-12)
        assert g == per_type[kind]["support"]
    # counted by hand, case by case: gold 2+1+2+2+1+0+1, predicted 2+1+1+2+1+2+1, correct 2 (case 1) + 1 (case 7)
    assert (report.correct, report.predicted, report.gold) == (3, 10, 9)


# ------------------------------------------------------------------------------------------------------
# CMRC 2018

def test_cmrc_segmentation():
    # punctuation is dropped before the runs are cut, so the letters around it join (as officially)
    assert cmrc_segments("光荣和ω-force") == ["光", "荣", "和", "ωforce"]
    assert cmrc_segments("光荣和ω-force", drop_punctuation=False) == ["光", "荣", "和", "ω", "-", "force"]
    assert cmrc_segments("USS Port Royal CG-73") == ["uss", "port", "royal", "cg73"]
    assert cmrc_segments("《战国无双3》") == ["战", "国", "无", "双", "3"]
    assert cmrc_segments("1,000 km.") == ["1,000", "km", "."]


def test_treebank_words_equal_nltk():
    nltk = pytest.importorskip("nltk", reason="nltk is the official script's tokenizer (optional reference)")
    for text in ["Susan G. Baker, ok", "don't (a) \"b\" 3.5%", "e.g. A.B.C.", "a...b", "x,y", "cannot 'tis", "$3.88 (3,36)"]:
        assert treebank_words(text) == nltk.word_tokenize(text, preserve_line=True), text


def test_cmrc_f1_em_worked_examples():
    # prediction 光荣 vs answer 光荣和ω-force: segments 光 荣 | 光 荣 和 ωforce: LCS 2, P 1, R 2/4
    assert cmrc_f1(["光荣和ω-force"], "光荣") == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert cmrc_em(["光荣和ω-force"], "光荣和ω force") == 0.0      # '-' removed, the space is not
    assert cmrc_em(["光荣和ω-force"], "光荣和ωforce") == 1.0
    assert cmrc_em(["《战国无双3》"], " 战国无双3 ") == 1.0             # punctuation and outer spaces
    # several references: the best one counts
    assert cmrc_f1(["村雨城", "任天堂游戏谜之村雨城"], "谜之村雨城") == pytest.approx(max(2 * 0.6 * 1 / 1.6, 2 * 1 * 0.5 / 1.5))
    assert cmrc_em(["村雨城", "任天堂游戏谜之村雨城"], "村雨城") == 1.0
    # single-character answers are ordinary answers
    assert cmrc_f1(["是"], "是") == 1.0 and cmrc_em(["是"], "是") == 1.0
    # an empty prediction scores 0 (F1) and matches only an answer that is all punctuation (EM)
    assert cmrc_f1(["北京"], "") == 0.0 and cmrc_em(["北京"], "") == 0.0
    # longest common *substring*: 北 京 市 vs 北 x 京 市 -> 2 (京 市), not the subsequence 3
    assert cmrc_f1(["北京市"], "北x京市") == pytest.approx(2 * (2 / 4) * (2 / 3) / (2 / 4 + 2 / 3))


def test_cmrc_report_averages_and_skips():
    refs = {"q1": ["北京"], "q2": ["上海"], "q3": ["广州"]}
    report = cmrc_report(refs, {"q1": "北京", "q2": "上"})
    assert report.total == 3 and report.skipped == 1
    assert report.em == pytest.approx(100 / 3)
    assert report.f1 == pytest.approx(100 * (1 + 2 * 1 * 0.5 / 1.5) / 3)
    assert report.average == pytest.approx((report.em + report.f1) / 2)


# ------------------------------------------------------------------------------------------------------
# CRF

def _brute_force(crf: CRF, emissions: torch.Tensor, length: int, allowed=None):
    """log Z, and the best path with its score, by enumerating every tag path of the first ``length`` positions."""
    tags_num = emissions.shape[-1]
    scores = {}
    crf = crf.requires_grad_(False)
    for path in itertools.product(range(tags_num), repeat=length):
        if allowed is not None:
            if not allowed[0][path[0]] or any(not allowed[1][a, b] for a, b in zip(path, path[1:])):
                continue
        s = crf.start_transitions[path[0]] + crf.end_transitions[path[-1]]
        s = s + sum(emissions[t, y] for t, y in enumerate(path))
        s = s + sum(crf.transitions[a, b] for a, b in zip(path, path[1:]))
        scores[path] = float(s)
    log_z = math.log(sum(math.exp(v) for v in scores.values()))
    best = max(scores, key=scores.get)
    return log_z, best, scores


def test_crf_likelihood_and_viterbi_equal_brute_force():
    torch.manual_seed(0)
    tags_num, max_len = 4, 5
    crf = CRF(tags_num)
    with torch.no_grad():
        crf.transitions.normal_()
        crf.start_transitions.normal_()
        crf.end_transitions.normal_()
    lengths = [5, 3, 1]
    emissions = torch.randn(len(lengths), max_len, tags_num)
    mask = torch.arange(max_len)[None, :] < torch.tensor(lengths)[:, None]
    tags = torch.randint(0, tags_num, (len(lengths), max_len))
    ll = crf.log_likelihood(emissions, tags, mask).detach()
    decoded = crf.decode(emissions, mask)
    for b, n in enumerate(lengths):
        log_z, best, scores = _brute_force(crf, emissions[b], n)
        gold = tuple(tags[b, :n].tolist())
        assert float(ll[b]) == pytest.approx(scores[gold] - log_z, abs=1e-4)
        assert tuple(decoded[b, :n].tolist()) == best
        assert decoded[b, n:].eq(0).all()


def test_bio_constrained_viterbi_equals_brute_force_over_valid_paths():
    labels = {"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3, "I-LOC": 4}
    allowed = bio_allowed(labels)
    assert not allowed[0][2] and not allowed[1][0, 2] and allowed[1][1, 2] and not allowed[1][1, 4]
    torch.manual_seed(1)
    crf = CRF(len(labels), allowed)
    emissions = torch.randn(3, 4, len(labels)) * 3
    emissions[:, :, 2] += 4  # push towards I-PER everywhere: unconstrained decoding would start with it
    mask = torch.ones(3, 4, dtype=torch.bool)
    decoded = crf.decode(emissions, mask)
    for b in range(3):
        _, best, _ = _brute_force(crf, emissions[b], 4, allowed)
        assert tuple(decoded[b].tolist()) == best
        assert decoded[b, 0] != 2
    # the same Viterbi over softmax log-probabilities (no CRF): zero scores plus the penalties
    free = viterbi(emissions, mask, torch.zeros(5), torch.zeros(5, 5), torch.zeros(5))
    assert torch.equal(free, emissions.argmax(-1))


def test_crf_gradient_flows_and_loss_is_finite():
    crf = CRF(3)
    emissions = torch.randn(2, 6, 3, requires_grad=True)
    mask = torch.tensor([[1] * 6, [1] * 2 + [0] * 4], dtype=torch.bool)
    tags = torch.randint(0, 3, (2, 6))
    loss = -crf.log_likelihood(emissions, tags, mask).sum()
    loss.backward()
    assert torch.isfinite(loss) and emissions.grad[1, 2:].abs().sum() == 0
