"""MLM masking: budget, 80/10/10 split, specials never masked, span statistics, determinism."""
from __future__ import annotations

import numpy as np
import pytest

from uer.data.masking import (GeneratorUniforms, HashUniforms, MaskingConfig, _select_spans, mask_batch,
                               maskable_positions, sample_span_lengths, span_length_cdf)

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
VOCAB = 5000


def config(**kw) -> MaskingConfig:
    return MaskingConfig(vocab_size=VOCAB, pad_id=PAD, cls_id=CLS, sep_id=SEP, mask_id=MASK, unk_id=UNK, **kw)


def pair_batch(n: int, width: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """[CLS] A [SEP] B [SEP] instances of random lengths, padded; ids in [5, VOCAB)."""
    rng = np.random.default_rng(seed)
    src = rng.integers(5, VOCAB, size=(n, width))
    lengths = rng.integers(5, width + 1, size=n)
    seg_a = np.array([rng.integers(2, ln - 2) for ln in lengths]) + 1
    src[:, 0] = CLS
    src[np.arange(n), seg_a - 1] = SEP
    src[np.arange(n), lengths - 1] = SEP
    src[np.arange(width)[None, :] >= lengths[:, None]] = PAD
    return src, lengths


def budget_of(src: np.ndarray, lengths: np.ndarray, cfg: MaskingConfig) -> np.ndarray:
    m = maskable_positions(src, lengths, cfg).sum(1)
    return np.where(m > 0, np.maximum(1, np.floor(0.15 * m + 0.5)), 0).astype(int)


@pytest.mark.parametrize("span", [False, True])
def test_budget_specials_and_80_10_10(span: bool) -> None:
    cfg = config(span_masking=span, span_geo_prob=0.2, span_max_length=10)
    src, lengths = pair_batch(4000)
    out = mask_batch(src, lengths, cfg, GeneratorUniforms(np.random.default_rng(1), len(src)))
    # Exactly the budget per instance, only maskable positions, labels are the original ids.
    counts = np.bincount(out.rows, minlength=len(src))
    assert (counts == budget_of(src, lengths, cfg)).all()
    assert maskable_positions(src, lengths, cfg)[out.rows, out.cols].all()
    assert (out.labels == src[out.rows, out.cols]).all()
    # Positions are row-major sorted and unique.
    flat = out.rows * src.shape[1] + out.cols
    assert (np.diff(flat) > 0).all()
    # Fraction of maskable tokens masked ~ 15%.
    frac = len(out.rows) / maskable_positions(src, lengths, cfg).sum()
    assert abs(frac - 0.15) < 0.005
    # Everything else unchanged.
    untouched = np.ones_like(src, dtype=bool)
    untouched[out.rows, out.cols] = False
    assert (out.src[untouched] == src[untouched]).all()
    # 80 / 10 / 10 (token level; with spans the decision is per span, so allow more noise).
    new = out.src[out.rows, out.cols]
    is_mask = new == MASK
    kept = new == out.labels
    randomised = ~is_mask & ~kept
    tol = 0.02 if not span else 0.035
    assert abs(is_mask.mean() - 0.8) < tol
    assert abs(kept.mean() - 0.1) < tol
    assert abs(randomised.mean() - 0.1) < tol
    # Random replacements are real tokens: never special, inside the vocabulary.
    assert (new[randomised] >= 1).all() and (new[randomised] < VOCAB).all()
    assert not np.isin(new[randomised], [PAD, UNK, CLS, SEP, MASK]).any()


def test_at_least_one_and_none_when_nothing_maskable() -> None:
    cfg = config()
    src = np.array([[CLS, SEP, PAD, PAD], [CLS, 77, SEP, PAD], [CLS, SEP, SEP, PAD]])
    lengths = np.array([2, 3, 3])
    out = mask_batch(src, lengths, cfg, HashUniforms(3, np.arange(3)))
    assert out.rows.tolist() == [1] and out.cols.tolist() == [1] and out.labels.tolist() == [77]


def test_deterministic_and_seed_dependent() -> None:
    cfg = config()
    src, lengths = pair_batch(64)
    a = mask_batch(src, lengths, cfg, GeneratorUniforms(np.random.default_rng(5), 64))
    b = mask_batch(src, lengths, cfg, GeneratorUniforms(np.random.default_rng(5), 64))
    c = mask_batch(src, lengths, cfg, GeneratorUniforms(np.random.default_rng(6), 64))
    assert (a.src == b.src).all() and (a.cols == b.cols).all()
    assert not np.array_equal(a.src, c.src)
    h1 = mask_batch(src, lengths, cfg, HashUniforms(7, np.arange(64)))
    h2 = mask_batch(src, lengths, cfg, HashUniforms(7, np.arange(64)))
    h3 = mask_batch(src, lengths, cfg, HashUniforms(8, np.arange(64)))
    assert (h1.src == h2.src).all()
    assert not np.array_equal(h1.src, h3.src)


@pytest.mark.parametrize("span", [False, True])
def test_hash_masks_depend_only_on_row_key_not_on_batch_or_padding(span: bool) -> None:
    """Dynamic masking relies on this: an instance's mask is a function of (seed, its key) alone."""
    cfg = config(span_masking=span)
    src, lengths = pair_batch(32)
    keys = np.arange(1000, 1032)
    full = mask_batch(src, lengths, cfg, HashUniforms(11, keys))
    # Half the batch, in another order, trimmed to its own longest instance.
    pick = np.array([7, 3, 19, 30])
    width = int(lengths[pick].max())
    part = mask_batch(src[pick, :width], lengths[pick], cfg, HashUniforms(11, keys[pick]))
    for j, i in enumerate(pick):
        assert (part.src[j, :lengths[i]] == full.src[i, :lengths[i]]).all()
        assert part.cols[part.rows == j].tolist() == full.cols[full.rows == i].tolist()


def test_hash_uniforms_look_uniform_and_independent() -> None:
    u = HashUniforms(7, np.arange(2000)).uniform(3, 128)
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    hist = np.histogram(u, bins=10, range=(0, 1))[0] / u.size
    assert np.abs(hist - 0.1).max() < 0.005
    # Neighbouring rows and streams are uncorrelated.
    assert abs(np.corrcoef(u[:-1].ravel(), u[1:].ravel())[0, 1]) < 0.01
    v = HashUniforms(7, np.arange(2000)).uniform(4, 128)
    assert abs(np.corrcoef(u.ravel(), v.ravel())[0, 1]) < 0.01


def test_span_length_distribution_is_clipped_geometric() -> None:
    p, kmax = 0.2, 10
    lens = sample_span_lengths(np.random.default_rng(0).random(400_000), span_length_cdf(p, kmax))
    k = np.arange(1, kmax + 1)
    expected = p * (1 - p) ** (k - 1)
    expected /= expected.sum()
    observed = np.bincount(lens, minlength=kmax + 1)[1:] / len(lens)
    assert lens.min() == 1 and lens.max() == kmax
    assert np.abs(observed - expected).max() < 0.003


def test_span_masking_masks_consecutive_runs_decided_per_span() -> None:
    src, lengths = pair_batch(2000, seed=3)

    def mean_run(out) -> float:
        sel = np.zeros(src.shape, dtype=bool)
        sel[out.rows, out.cols] = True
        starts = sel & ~np.pad(sel, ((0, 0), (1, 0)))[:, :-1]
        return sel.sum() / starts.sum()

    token = mask_batch(src, lengths, config(), HashUniforms(1, np.arange(2000)))
    spans = mask_batch(src, lengths, config(span_masking=True, span_geo_prob=0.2, span_max_length=10),
                       HashUniforms(1, np.arange(2000)))
    assert mean_run(token) < 1.3
    assert mean_run(spans) > 2.5
    # The 80/10/10 choice is per span: inside one span, tokens are all [MASK] or none is.
    cfg = config(span_masking=True, span_geo_prob=0.2, span_max_length=10)
    rand = HashUniforms(1, np.arange(2000))
    maskable = maskable_positions(src, lengths, cfg)
    m = maskable.sum(1)
    budget = np.where(m > 0, np.maximum(1, np.floor(0.15 * m + 0.5)), 0)
    selected, tile = _select_spans(maskable, m, budget.astype(np.int64), cfg, rand)
    sel_rows, sel_cols = np.nonzero(selected)
    assert (sel_rows == spans.rows).all() and (sel_cols == spans.cols).all()
    is_mask = spans.src[sel_rows, sel_cols] == MASK
    span_key = sel_rows * 1000 + tile[sel_rows, sel_cols]
    _, inverse = np.unique(span_key, return_inverse=True)
    all_mask = np.bincount(inverse, weights=is_mask) == np.bincount(inverse)
    no_mask = np.bincount(inverse, weights=is_mask) == 0
    assert (all_mask | no_mask).all()
    assert 0.75 < all_mask.mean() < 0.85


def test_config_from_vocab_like_object_and_validation() -> None:
    class V:
        pad_id, unk_id, cls_id, sep_id, mask_id = 0, 100, 101, 102, 103

        def __len__(self) -> int:
            return 21128

    cfg = MaskingConfig.from_vocab(V(), span_masking=True, span_geo_prob=0.3, span_max_length=5)
    assert cfg.vocab_size == 21128 and cfg.mask_id == 103 and cfg.span_max_length == 5
    assert not np.isin(cfg.replacement_ids, [0, 100, 101, 102, 103]).any()
    assert len(cfg.replacement_ids) == 21128 - 5
    with pytest.raises(ValueError, match="span_geo_prob"):
        config(span_masking=True, span_geo_prob=0.0)
