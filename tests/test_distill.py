"""Layer distillation (uer/distill.py): each loss against a hand computation, the recorded layers and the
recomputed attention against the model's own computation, the frozen teacher, and general distillation in
pretrain.py end to end."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

from conftest import run_script, shared_path
from uer.distill import (DistillConfig, LayerDistiller, PretrainDistillation, attention_loss, frozen, hidden_loss,
                         logits_loss, uniform_layer_map)
from uer.errors import UsageError
from uer.model_builder import build_model
from uer.model_config import ModelConfig
from uer.model_saver import save_model


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_hidden_loss_by_hand():
    s = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]])  # the third position is padding
    t = torch.tensor([[[1.0, 0.0], [0.0, 4.0], [0.0, 0.0]]])
    real = torch.tensor([[1.0, 1.0, 0.0]])
    # position 1: ((0)^2 + (2)^2) / 2 = 2; position 2: (3^2 + 0) / 2 = 4.5; mean over the 2 real ones = 3.25
    assert hidden_loss(s, t, real).tolist() == [3.25]


def test_attention_loss_by_hand():
    scores = torch.log(torch.tensor([[[[0.5, 0.5], [0.9, 0.1]]]]))  # [1 x 1 head x 2 x 2], student
    teacher = torch.tensor([[[[0.25, 0.75], [0.9, 0.1]]]])
    real = torch.tensor([[1.0, 1.0]])
    kl_row0 = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert attention_loss(scores, teacher, real).item() == pytest.approx(kl_row0 / 2, rel=1e-6)
    # different head counts: head-averaged distributions
    two_heads = torch.log(torch.tensor([[[[0.5, 0.5], [0.5, 0.5]], [[0.1, 0.9], [0.5, 0.5]]]]))
    avg = np.array([[0.3, 0.7], [0.5, 0.5]])
    t = np.array([[0.25, 0.75], [0.9, 0.1]])
    expected = np.mean([(t[q] * np.log(t[q] / avg[q])).sum() for q in range(2)])
    assert attention_loss(two_heads, teacher, real).item() == pytest.approx(expected, rel=1e-5)


def test_logits_loss_by_hand():
    s, t, temp = torch.tensor([[1.0, 2.0, 0.0]]), torch.tensor([[0.5, 0.0, 1.5]]), 2.0
    p = np.exp(t.numpy()[0] / temp) / np.exp(t.numpy()[0] / temp).sum()
    q = np.exp(s.numpy()[0] / temp) / np.exp(s.numpy()[0] / temp).sum()
    assert logits_loss(s, t, temp).item() == pytest.approx(temp ** 2 * (p * np.log(p / q)).sum(), rel=1e-5)


def test_uniform_layer_map_and_options():
    assert uniform_layer_map(2, 4) == [2, 4]
    assert uniform_layer_map(4, 12) == [3, 6, 9, 12]
    assert uniform_layer_map(3, 4) == [1, 3, 4]
    with pytest.raises(UsageError, match="one non-negative weight per loss"):
        DistillConfig(("hidden", "logits"), (1.0,))
    with pytest.raises(UsageError, match="temperature"):
        DistillConfig(temperature=0.0)


def tiny(layers: int, hidden: int, heads: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(ModelConfig(vocab_size=40, hidden_size=hidden, emb_size=hidden, feedforward_size=2 * hidden,
                                   heads_num=heads, layers_num=layers, dropout=0.0, target=("mlm",)))


def test_recorded_layers_and_recomputed_attention_are_the_models_own():
    student, teacher = tiny(2, 16, 2, 0), frozen(tiny(4, 24, 4, 1))
    distiller = LayerDistiller(DistillConfig(("hidden", "attention"), (1.0, 1.0)), student.encoder, teacher.encoder,
                               16, 24)
    src = torch.randint(5, 40, (3, 7))
    seg = torch.tensor([[1] * 7, [1] * 5 + [0] * 2, [1] * 3 + [2] * 2 + [0] * 2])
    attended: list[torch.Tensor] = []
    handles = [layer.self_attn.register_forward_hook(lambda m, a, o: attended.append(o))
               for layer in student.encoder.transformer]
    out = student.encode(src, seg)
    for h in handles:
        h.remove()
    # hidden states: the recorder's are each layer's output, the last one the encoder's
    assert torch.equal(distiller.student.outputs[-1], out)
    recorded = list(distiller.student.inputs)
    probs_all = [distiller.student.attention(depth) for depth in range(2)]
    mask = student.encoder.attention_mask(seg, torch.float32)
    h = student.embedding(src, seg)
    for depth, layer in enumerate(student.encoder.transformer):
        assert torch.allclose(recorded[depth], h)
        # the recomputed distributions give the attention module's output with its own value/output projections
        probs = probs_all[depth]
        attn = layer.self_attn
        v = attn.linear_layers[2](h).view(3, 7, 2, 8).transpose(1, 2)
        ctx = (probs @ v).transpose(1, 2).reshape(3, 7, 16)
        assert torch.allclose(attn.final_linear(ctx), attended[depth], atol=1e-5)
        h = layer(h, mask)
    assert distiller.layer_map == [2, 4]
    student.encode(src, seg)
    with torch.no_grad():
        teacher.encode(src, seg)
    losses = distiller.layer_losses(seg)
    real = (seg > 0).float()
    expected_hidden = sum(hidden_loss(distiller.projection(distiller.student.outputs[i]),
                                      distiller.teacher.outputs[t - 1], real) for i, t in enumerate([2, 4]))
    assert torch.allclose(losses["hidden"], expected_hidden)


def test_teacher_gets_no_gradient_and_runs_once_per_batch():
    student, teacher = tiny(2, 16, 2, 0), frozen(tiny(4, 24, 4, 1))
    distill = PretrainDistillation(DistillConfig(), student, teacher, 16, 24)
    student.target.add("distill", distill)
    calls = []
    teacher.encoder.register_forward_hook(lambda m, a, o: calls.append(1))
    src = torch.randint(5, 40, (4, 9))
    batch = {"src": src, "seg": torch.ones_like(src), "mlm_positions": torch.tensor([1, 12, 20, 30]),
             "mlm_labels": torch.tensor([7, 8, 9, 10])}
    out = student(batch)
    assert len(calls) == 1
    loss = out["distill"].loss_sum + out["mlm"].loss_sum
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert distill.layers.projection.weight.grad is not None
    assert all(p.grad is not None for p in student.encoder.parameters())
    assert not any(k.startswith("target.distill.") and "teacher" in k for k in student.state_dict())
    assert {k for k in student.state_dict() if k.startswith("target.distill")} == {"target.distill.layers.projection.weight"}
    assert sum(p.numel() for p in student.parameters()) < sum(p.numel() for p in teacher.parameters()) + 16 * 24 + 1


@pytest.mark.slow
def test_general_distillation_in_pretraining(tmp_path):
    """pretrain.py --teacher_model_path: the distillation loss is reported and falls."""
    vocab = str(shared_path("models/google_zh_vocab.txt"))
    corpus = tmp_path / "docs.txt"
    lines = open(shared_path("corpora/CLUECorpusSmall_sampled.txt"), encoding="utf-8").readlines()[:200]
    corpus.write_text("".join(lines), encoding="utf-8")
    run_script("preprocess.py", "--corpus_path", str(corpus), "--vocab_path", vocab, "--dataset_path",
               str(tmp_path / "mlm.pt"), "--target", "mlm", "--seq_length", "48", "--dynamic_masking")
    teacher_cfg = json.load(open("models/bert/tiny_config.json"))
    teacher_cfg.update(layers_num=4, hidden_size=64, emb_size=64, feedforward_size=128, heads_num=4)
    (tmp_path / "teacher.json").write_text(json.dumps(teacher_cfg))
    common = ["--dataset_path", str(tmp_path / "mlm.pt"), "--vocab_path", vocab, "--batch_size", "16",
              "--learning_rate", "1e-3", "--target", "mlm", "--report_steps", "6"]
    torch.manual_seed(0)  # a teacher as pretrain.py would write it (its weights need no training for this test)
    teacher = build_model(ModelConfig(vocab_size=21128, hidden_size=64, emb_size=64, feedforward_size=128, heads_num=4,
                                      layers_num=4, dropout=0.0, target=("mlm",), tie_weights=True))
    save_model(teacher, str(tmp_path / "teacher.bin-20"))
    out = run_script("pretrain.py", "--threads", "1", *common, "--config_path", "models/bert/tiny_config.json", "--output_model_path",
                     str(tmp_path / "student.bin"), "--total_steps", "24", "--save_checkpoint_steps", "24",
                     "--teacher_model_path", str(tmp_path / "teacher.bin-20"), "--teacher_config_path",
                     str(tmp_path / "teacher.json"), "--distill_losses", "hidden", "attention", "logits",
                     "--distill_weights", "1", "1", "0.5", "--distill_temperature", "2").stdout
    assert "layer map [2, 4]" in out
    values = [float(v) for v in re.findall(r"loss_distill\s+([0-9.]+)", out)]
    assert len(values) == 4 and values[-1] < 0.7 * values[0], values
    state = torch.load(str(tmp_path / "student.bin-24"), weights_only=True)
    assert state["target.distill.layers.projection.weight"].shape == (64, 128)


def classifier(layers: int, hidden: int, heads: int, seed: int):
    from uer.finetune.tasks.classifier import Classifier

    base = tiny(layers, hidden, heads, seed)
    torch.manual_seed(seed + 10)
    return Classifier(base.embedding, base.encoder, hidden, 2)


def test_fine_tuning_distillation_adds_the_losses_in_training_only():
    from uer.distill import attach_distillation

    student, teacher = classifier(2, 16, 2, 0), classifier(4, 24, 4, 1)
    cfg = DistillConfig(("hidden", "attention", "logits"), (1.0, 0.5, 2.0), temperature=2.0)
    attach_distillation(student, teacher, cfg, 16, 24)
    src = torch.randint(5, 40, (3, 6))
    batch = {"src": src, "seg": torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [2] * 2 + [0] * 2]),
             "label": torch.tensor([0, 1, 1])}
    student.train()
    out = student(batch)
    # by hand: the head's cross-entropy plus the weighted losses of uer.distill's functions
    real = (batch["seg"] > 0).float()
    rec_s, rec_t = student.distill.student, student.distill.teacher
    hidden = sum(hidden_loss(student.distill.projection(rec_s.outputs[i]), rec_t.outputs[t], real)
                 for i, t in enumerate([1, 3]))
    attention = sum(attention_loss(torch.log(rec_s.attention(i)), rec_t.attention(t), real) for i, t in enumerate([1, 3]))
    with torch.no_grad():
        teacher_logits = teacher.logits(batch)
    expected = (torch.nn.functional.cross_entropy(out.outputs["logits"], batch["label"], reduction="none")
                + hidden + 0.5 * attention + 2.0 * logits_loss(out.outputs["logits"], teacher_logits, 2.0))
    assert torch.allclose(out.loss, expected, atol=1e-5)
    out.loss.sum().backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert student.distill.projection.weight.grad is not None
    assert not any(k.startswith("distill.") for k in student.state_dict())  # the fine-tuned file is a plain classifier
    student.eval()
    plain = student(batch)
    assert torch.allclose(plain.loss, torch.nn.functional.cross_entropy(plain.outputs["logits"], batch["label"],
                                                                        reduction="none"))


@pytest.mark.slow
def test_layer_distillation_in_run_classifier(tmp_path):
    """run_classifier.py with a fine-tuned teacher: the log names the distillation and the student's file is a
    plain classifier that inference reads (the loss itself: test_fine_tuning_distillation_adds_the_losses...)."""
    data = shared_path("datasets/test_data/chnsenticorp")
    vocab = str(shared_path("models/google_zh_vocab.txt"))
    teacher_cfg = json.load(open("models/bert/tiny_config.json"))
    teacher_cfg.update(layers_num=4, hidden_size=64, emb_size=64, feedforward_size=128, heads_num=4)
    (tmp_path / "teacher.json").write_text(json.dumps(teacher_cfg))
    common = ["--threads", "1", "--vocab_path", vocab, "--train_path", str(data / "train.tsv"), "--dev_path",
              str(data / "dev.tsv"), "--epochs_num", "1", "--batch_size", "32", "--seq_length", "32",
              "--learning_rate", "1e-3", "--report_steps", "5"]
    run_script("run_classifier.py", *common, "--config_path", str(tmp_path / "teacher.json"),
               "--output_model_path", str(tmp_path / "teacher.bin"))
    out = run_script("run_classifier.py", *common, "--config_path", "models/bert/tiny_config.json",
                     "--output_model_path", str(tmp_path / "student.bin"), "--teacher_model_path",
                     str(tmp_path / "teacher.bin"), "--teacher_config_path", str(tmp_path / "teacher.json"),
                     "--distill_losses", "hidden", "attention", "logits", "--distill_temperature", "2").stdout
    assert "distillation from" in out and "layer map [2, 4]" in out
    state = torch.load(str(tmp_path / "student.bin"), weights_only=True)
    assert not [k for k in state if "distill" in k]
    run_script("inference/run_classifier_infer.py", "--threads", "1", "--load_model_path", str(tmp_path / "student.bin"),
               "--vocab_path", vocab, "--config_path", "models/bert/tiny_config.json", "--test_path",
               str(data / "test_nolabel.tsv"), "--prediction_path", str(tmp_path / "pred.tsv"), "--labels_num", "2",
               "--seq_length", "32")
    assert len((tmp_path / "pred.tsv").read_text().splitlines()) == 51
