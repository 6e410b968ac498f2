"""The fine-tuning task contract: groups stay whole (batches, evaluation, ranks), per-token fields are padded
with IGNORE_INDEX, prediction returns unpadded per-instance outputs in file order, and the loop's statistics
are weighted sums (a rank's filler counts 0)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from uer.data.finetune_data import (IGNORE_INDEX, Instances, collate, evaluation_batches, split_for_rank,
                                    training_batches)
from uer.finetune.contract import HeadOutput
from uer.finetune.loop import predict, report_scalars, weighted_sums

# 5 groups of sizes 3, 2, 4, 1, 2 (ids need not be sorted, only contiguous)
GROUP_IDS = [7, 7, 7, 2, 2, 5, 5, 5, 5, 0, 9, 9]


def grouped() -> Instances:
    lengths = [3, 5, 2, 4, 4, 6, 1, 2, 3, 7, 2, 5]
    sequences = [(list(range(10 + i, 10 + i + n)), n) for i, n in enumerate(lengths)]
    tags = [[i * 10 + t for t in range(n)] for i, n in enumerate(lengths)]
    return Instances.from_sequences(sequences, {"label": np.arange(len(lengths))}, {"tags": tags}, GROUP_IDS)


def groups_of(data: Instances, batch: np.ndarray) -> list[int]:
    ids = data.groups[batch]
    return [int(g) for k, g in enumerate(ids) if k == 0 or ids[k - 1] != g]


def assert_whole_groups(data: Instances, batch: np.ndarray) -> None:
    for g in groups_of(data, batch):
        members = np.flatnonzero(data.groups == g)
        assert sorted(batch[data.groups[batch] == g].tolist()) == members.tolist(), (g, batch)


def test_groups_are_contiguous_or_rejected():
    with pytest.raises(ValueError, match="contiguous"):
        Instances.from_sequences([([1], 1)] * 3, groups=[4, 5, 4])
    assert grouped().group_bounds().tolist() == [0, 3, 5, 9, 10, 12]


@pytest.mark.parametrize("bucketing", [False, True])
def test_training_batches_count_groups_and_keep_them_whole(bucketing):
    data = grouped()
    batches = training_batches(data, 2, np.random.default_rng(3), bucketing)
    assert [len(groups_of(data, b)) for b in batches] in ([2, 2, 1], [2, 1, 2], [1, 2, 2])
    for batch in batches:
        assert_whole_groups(data, batch)
    assert sorted(np.concatenate(batches).tolist()) == list(range(12))


def test_evaluation_batches_keep_groups_whole_longest_group_first():
    data = grouped()
    batches = evaluation_batches(data, 2)
    # longest instance per group: 5, 4, 6, 7, 5 -> order 0 (7), 5 (6), then 7 and 9 (5, stable), 2 (4)
    assert [groups_of(data, b) for b in batches] == [[0, 5], [7, 9], [2]]
    assert batches[0].tolist() == [9, 5, 6, 7, 8]


def test_two_ranks_get_whole_groups_and_a_lone_group_makes_a_weight_0_filler():
    data = grouped()
    batch = np.arange(12)  # 5 groups: rank 0 takes the first 3 (9 instances), rank 1 the other 2
    parts = [split_for_rank(batch, r, 2, data.groups[batch]) for r in range(2)]
    assert parts[0][0].tolist() == list(range(9)) and parts[1][0].tolist() == [9, 10, 11]
    assert parts[0][1].tolist() == [1.0] * 9 and parts[1][1].tolist() == [1.0] * 3
    # one group of 4 instances for 2 ranks: rank 1 repeats it with weight 0 (every rank must run the step)
    lone = np.array([5, 6, 7, 8])
    part0, w0 = split_for_rank(lone, 0, 2, data.groups[lone])
    part1, w1 = split_for_rank(lone, 1, 2, data.groups[lone])
    assert part0.tolist() == part1.tolist() == [5, 6, 7, 8]
    assert w0.tolist() == [1.0] * 4 and w1.tolist() == [0.0] * 4


def test_token_fields_are_padded_with_the_ignore_index():
    data = grouped()
    batch = collate(data, np.array([2, 0]), pad_id=0)
    assert IGNORE_INDEX == -100
    assert batch["tags"].tolist() == [[20, 21, -100], [0, 1, 2]]
    assert collate(data, np.array([6]), pad_id=0, pad_to=4)["tags"].tolist() == [[60, -100, -100, -100]]
    floats = Instances.from_sequences([([1, 2], 2), ([3], 1)], token_fields={"w": [[0.5, 1.5], [2.5]]})
    assert collate(floats, np.array([0, 1]), 0)["w"].tolist() == [[0.5, 1.5], [2.5, 0.0]]
    # subsets carry token fields and groups along
    sub = data.subset(np.array([3, 4]))
    assert sub.token_fields["tags"].tolist() == [30, 31, 32, 33, 40, 41, 42, 43] and sub.groups.tolist() == [2, 2]


class EchoTagger(nn.Module):
    """Per-token outputs that are the input ids (so each prediction shows where it came from) and one
    per-instance output."""

    def forward(self, batch: dict[str, torch.Tensor]) -> HeadOutput:
        src = batch["src"].float()
        tags = torch.stack([src, -src], dim=-1)  # [B x L x 2]
        return HeadOutput(None, {"tag_scores": tags, "first": src[:, 0], "argmax": tags.argmax(-1)},
                          token_outputs=("tag_scores", "argmax"))


def test_predict_returns_file_order_cut_to_each_length():
    data = grouped()
    predictions = predict(EchoTagger(), data, batch_size=2, pad_id=0, device=torch.device("cpu"))
    assert len(predictions) == len(data)
    for i, p in enumerate(predictions):
        ids = data.tokens[data.offsets[i]:data.offsets[i + 1]]
        assert p["tag_scores"].shape == (len(ids), 2) and p["tag_scores"].dtype == np.float32
        assert p["tag_scores"][:, 0].tolist() == ids.tolist()  # this instance's own tokens, no padding
        assert p["argmax"].tolist() == [0] * len(ids) and p["argmax"].dtype == np.int64
        assert p["first"].shape == () and float(p["first"]) == 10 + i


def test_statistics_are_weighted_sums_and_the_filler_counts_zero():
    out = HeadOutput(torch.tensor([1.0, 2.0, 4.0]), {}, {"correct": torch.tensor([1.0, 0.0, 1.0]),
                                                         "count": torch.tensor([1.0, 1.0, 1.0])})
    sums = {k: float(v) for k, v in weighted_sums(out, torch.tensor([1.0, 1.0, 0.0])).items()}
    assert sums == {"loss": 3.0, "instances": 2.0, "loss_count": 2.0, "correct": 1.0, "count": 2.0}
    assert report_scalars(sums) == {"loss": 1.5, "acc": 0.5}
    # a token-level head: loss summed over tokens, statistics over tokens, examples still counted as instances
    tokens = HeadOutput(torch.tensor([3.0, 6.0]), {}, {"correct": torch.tensor([2.0, 1.0]),
                                                       "count": torch.tensor([3.0, 4.0])},
                        loss_count=torch.tensor([3.0, 4.0]))
    sums = {k: float(v) for k, v in weighted_sums(tokens, torch.tensor([1.0, 1.0])).items()}
    assert sums["instances"] == 2.0 and report_scalars(sums) == {"loss": 9.0 / 7.0, "acc": 3.0 / 7.0}


class RecordingTagger(nn.Module):
    """A per-token head (loss summed over tokens, ``loss_count`` = tokens) that records the groups of every
    training batch it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(64, 3)
        self.seen: list[list[int]] = []

    def forward(self, batch: dict[str, torch.Tensor]) -> HeadOutput:
        if self.training:
            self.seen.append(batch["qid"].tolist())
        logits = self.emb(batch["src"])  # [B x L x 3]
        tags = batch["tags"] % 3
        tags = torch.where(batch["tags"] == IGNORE_INDEX, IGNORE_INDEX, tags)
        per_token = torch.nn.functional.cross_entropy(logits.transpose(1, 2), tags, reduction="none")
        real = (tags != IGNORE_INDEX).float()
        correct = ((logits.argmax(-1) == tags).float() * real).sum(-1)
        return HeadOutput((per_token * real).sum(-1), {"tag_logits": logits},
                          {"correct": correct, "count": real.sum(-1)}, ("tag_logits",), loss_count=real.sum(-1))


def test_the_loop_runs_a_grouped_token_level_task(tmp_path, caplog):
    from uer.finetune.loop import FinetuneConfig, FineTuner
    from uer.utils.distributed import DistContext

    data = grouped()
    data.fields["qid"] = data.groups.copy()
    torch.manual_seed(0)
    head = RecordingTagger()
    # learning rate 0: the head stays as it is, so the reported epoch loss and accuracy can be computed here
    cfg = FinetuneConfig(output_model_path=str(tmp_path / "tagger.bin"), epochs_num=2, batch_size=2,
                         learning_rate=0.0, report_steps=100, seed=1)
    with caplog.at_level("INFO"):
        FineTuner(head, cfg, DistContext(), pad_id=0).fit(data)
    assert "3 steps per epoch" in caplog.text  # 5 groups in batches of 2 groups
    assert len(head.seen) == 6
    for qids in head.seen:
        assert 1 <= len(set(qids)) <= 2
        for g in set(qids):
            assert qids.count(g) == int((data.groups == g).sum())  # the whole group, no more, no less
    with torch.no_grad():
        out = head.eval()(collate(data, np.arange(len(data)), 0))
    tokens = float(out.loss_count.sum())
    assert tokens == data.lengths.sum() == 44
    # per token, not per instance (that would be loss / 12)
    expected = f"| loss {float(out.loss.sum()) / tokens:.4f} | acc {float(out.stats['correct'].sum()) / tokens:.4f} |"
    reports = [line for line in caplog.text.splitlines() if "examples/s" in line]
    assert len(reports) == 2 and all(expected in line for line in reports), (expected, reports)
