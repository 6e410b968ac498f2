"""The loop's dev evaluations (every --eval_steps steps and after each epoch; the kept model is the best by the
primary score's direction; the first evaluation always keeps one; early stopping counts evaluations), FGM/PGD
adversarial training (only the word embedding moves, by the configured size, and is restored exactly; the
gradient is the clean one plus the perturbed model's), and the regression / multi-label metrics against scipy
and scikit-learn."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from uer.data.finetune_data import Instances
from uer.errors import UsageError
from uer.finetune.adversarial import AdversarialConfig, Adversary, WORD_EMBEDDING
from uer.finetune.contract import EvalSet, Evaluation, HeadOutput
from uer.finetune.loop import FinetuneConfig, FineTuner
from uer.finetune.metrics import average_ranks, multi_label_report, pearson, regression_report, spearman
from uer.utils.distributed import DistContext


def toy_data(n: int = 12) -> Instances:
    rng = np.random.default_rng(0)
    sequences = [(rng.integers(1, 30, size=int(k)).tolist(), int(k)) for k in rng.integers(2, 6, size=n)]
    return Instances.from_sequences(sequences, {"label": rng.normal(size=n).astype(np.float32)})


class ToyRegressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(32, 4)
        self.out = nn.Linear(4, 1)

    def forward(self, batch: dict[str, torch.Tensor]) -> HeadOutput:
        score = self.out(self.emb(batch["src"]).mean(1))[:, 0]
        loss = (score - batch["label"]).pow(2) if "label" in batch else None
        return HeadOutput(loss, {"score": score})


def scripted_run(tmp_path, scores: list[float], greater: bool = True, **cfg):
    """Train the toy head with a dev metric that answers ``scores`` in turn; returns (weights at each
    evaluation, the final weights, how many evaluations ran)."""
    torch.manual_seed(0)
    head = ToyRegressor()
    snapshots: list[torch.Tensor] = []

    def metric(predictions, data) -> Evaluation:
        snapshots.append(head.out.weight.detach().clone())
        value = scores[len(snapshots) - 1]
        return Evaluation({"score": value}, f"score {value}", f"score {value}")

    data = toy_data()
    config = FinetuneConfig(output_model_path=str(tmp_path / "model.bin"), batch_size=2, learning_rate=0.05,
                            report_steps=1000, seed=1, **{"epochs_num": 1, **cfg})
    best = FineTuner(head, config, DistContext(), pad_id=0).fit(data, [EvalSet("dev", data, metric, "score", greater)])
    return snapshots, head.out.weight.detach().clone(), best


def test_eval_steps_evaluate_during_and_after_each_epoch(tmp_path):
    # 12 instances in batches of 2: 6 steps an epoch; every 4 steps: at steps 4, 8, 12 and the end of epoch 1
    snapshots, _, _ = scripted_run(tmp_path, [1, 2, 3, 4, 5], epochs_num=2, eval_steps=4)
    assert len(snapshots) == 4
    # every 3 steps: steps 3 and 6, the end of the epoch is step 6 (not evaluated twice)
    snapshots, final, best = scripted_run(tmp_path, [1, 2, 3], eval_steps=3)
    assert len(snapshots) == 2 and best == 2 and torch.equal(final, snapshots[1])


def test_lower_is_better_keeps_the_lowest(tmp_path):
    snapshots, final, best = scripted_run(tmp_path, [3.0, 1.0, 2.0], greater=False, eval_steps=2)
    assert best == 1.0 and torch.equal(final, snapshots[1]) and not torch.equal(final, snapshots[2])


def test_the_first_evaluation_saves_even_a_zero_score_and_nan_never_beats_a_number(tmp_path):
    snapshots, final, best = scripted_run(tmp_path, [0.0, 0.0, 0.0], eval_steps=2)
    assert best == 0.0 and torch.equal(final, snapshots[0]) and (tmp_path / "model.bin").exists()
    snapshots, final, best = scripted_run(tmp_path, [float("nan"), -0.5, float("nan")], eval_steps=2)
    assert best == -0.5 and torch.equal(final, snapshots[1])


def test_early_stopping_counts_evaluations(tmp_path, caplog):
    with caplog.at_level("INFO"):
        snapshots, final, best = scripted_run(tmp_path, [1.0, 0.5, 0.7, 2.0, 3.0], epochs_num=3, eval_steps=2,
                                              early_stopping_patience=2)
    assert len(snapshots) == 3 and best == 1.0 and torch.equal(final, snapshots[0])
    assert "early stopping at step 6 (epoch 1/3): no better dev score in 2 evaluation(s)" in caplog.text
    with pytest.raises(UsageError, match="--eval_steps"):
        FinetuneConfig(eval_steps=0)


# ---------------------------------------------------------------------------------------------------------
# adversarial training

def tiny_classifier() -> nn.Module:
    from uer.finetune.tasks.classifier import Classifier
    from uer.model_builder import build_model
    from uer.model_config import ModelConfig

    torch.manual_seed(0)
    base = build_model(ModelConfig(vocab_size=40, emb_size=16, hidden_size=16, feedforward_size=32, heads_num=2,
                                   layers_num=1, max_seq_length=16), with_target=False)
    return Classifier(base.embedding, base.encoder, 16, 3)


def batch() -> dict[str, torch.Tensor]:
    src = torch.tensor([[2, 5, 7, 9, 3], [2, 11, 13, 3, 0]])
    seg = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
    return {"src": src, "seg": seg, "label": torch.tensor([0, 2])}


def params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.grad.clone() for k, v in model.named_parameters() if v.grad is not None}


@pytest.mark.parametrize("adv_type", ["fgm", "pgd"])
def test_adversarial_perturbs_only_the_word_embedding_and_restores_it_exactly(adv_type):
    model = tiny_classifier()
    model.eval()  # no dropout: the passes are comparable
    cfg = AdversarialConfig(adv_type, fgm_epsilon=0.7, pgd_k=3, pgd_epsilon=0.5, pgd_alpha=0.3)
    clean = params(model)
    model(batch()).loss.mean().backward()
    clean_grads = grads(model)
    seen: list[dict[str, torch.Tensor]] = []   # the weights of every perturbed pass
    pass_grads: list[dict[str, torch.Tensor]] = []  # each perturbed pass's own gradient, computed apart

    def loss_fn() -> torch.Tensor:
        seen.append(params(model))
        copy = tiny_classifier()
        copy.load_state_dict(model.state_dict())
        copy.eval()
        copy(batch()).loss.mean().backward()
        pass_grads.append(grads(copy))
        return model(batch()).loss.mean()

    Adversary(model, cfg).attack(loss_fn, lambda loss: loss.backward())
    assert len(seen) == (1 if adv_type == "fgm" else 3)
    for weights in seen:
        changed = {k for k in weights if not torch.equal(weights[k], clean[k])}
        assert changed == {WORD_EMBEDDING}
        delta = weights[WORD_EMBEDDING] - clean[WORD_EMBEDDING]
        rows = torch.nonzero(delta.abs().sum(1))[:, 0]
        assert set(rows.tolist()) <= {2, 3, 5, 7, 9, 11, 13, 0}  # only the batch's tokens move (PAD has no grad)
    sizes = [float(torch.linalg.vector_norm(w[WORD_EMBEDDING] - clean[WORD_EMBEDDING])) for w in seen]
    if adv_type == "fgm":
        assert sizes[0] == pytest.approx(0.7, rel=1e-4)
    else:
        assert sizes[0] == pytest.approx(0.3, rel=1e-4) and all(s <= 0.5 + 1e-5 for s in sizes)
        assert sizes[-1] == pytest.approx(0.5, rel=1e-4)  # 3 steps of 0.3 leave the ball: projected back on it
    after = params(model)
    assert all(torch.equal(after[k], clean[k]) for k in clean)  # restored bit for bit
    # the update's gradient: the clean one plus the last perturbed pass's
    final = grads(model)
    for k in clean_grads:
        assert torch.allclose(final[k], clean_grads[k] + pass_grads[-1][k], atol=1e-6), k


def test_default_epsilon_moves_the_loss_and_the_config_is_checked():
    model = tiny_classifier()
    model.eval()
    clean_loss = model(batch()).loss.mean()
    clean_loss.backward()
    losses = []

    def loss_fn():
        loss = model(batch()).loss.mean()
        losses.append(float(loss.detach()))
        return loss

    Adversary(model, AdversarialConfig()).attack(loss_fn, lambda loss: loss.backward())
    assert losses[0] > float(clean_loss) + 1e-3  # the default 1.0 is an attack, UER-py's 1e-6 is not
    with pytest.raises(UsageError, match="--fgm_epsilon"):
        AdversarialConfig(fgm_epsilon=0.0)
    with pytest.raises(UsageError, match="word embedding"):
        Adversary(nn.Linear(2, 2), AdversarialConfig())


# ---------------------------------------------------------------------------------------------------------
# metrics against the references

def test_regression_metrics_equal_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 6, size=80).astype(float)  # many ties, as STS-B
    pred = gold + rng.normal(scale=2.0, size=80)
    pred[:10] = pred[0]  # ties in the predictions too
    assert average_ranks(pred).tolist() == stats.rankdata(pred).tolist()
    assert spearman(gold, pred) == pytest.approx(stats.spearmanr(gold, pred).statistic, abs=1e-12)
    assert pearson(gold, pred) == pytest.approx(stats.pearsonr(gold, pred).statistic, abs=1e-12)
    report = regression_report(gold, pred)
    assert report.mse == pytest.approx(((gold - pred) ** 2).mean())
    assert "Spearman corr: " in report.format()
    assert math.isnan(spearman(gold, np.ones(80)))  # constant predictions: undefined, as scipy


def test_multi_label_metrics_equal_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(2)
    gold = rng.integers(0, 2, size=(50, 5))
    pred = rng.integers(0, 2, size=(50, 5))
    gold[:, 4] = pred[:, 4] = 0  # a label never gold nor predicted: F1 0 in the macro mean
    report = multi_label_report(gold, pred)
    assert report.micro_f1 == pytest.approx(metrics.f1_score(gold, pred, average="micro"))
    assert report.macro_f1 == pytest.approx(metrics.f1_score(gold, pred, average="macro", zero_division=0))
    assert report.accuracy == pytest.approx(metrics.accuracy_score(gold, pred))  # subset accuracy
    assert list(report.f1) == pytest.approx(metrics.f1_score(gold, pred, average=None, zero_division=0).tolist())
