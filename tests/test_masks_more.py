"""Random, N:M and LTH masks, and mask similarity: the invariants Figures 2, 5, 9 and 10 rest on."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from essential_sparsity.config import levels
from essential_sparsity.pruning import masks

PROPERTY = settings(max_examples=50, deadline=None)
TIED_VALUES = [0.0, 0.0, 1.0, -1.0, 2.0, -0.5, 0.5, 3.0]
PATTERNS = [(1, 4), (2, 4), (2, 8), (4, 8), (1, 1), (3, 3)]


@st.composite
def weight_dicts(draw, multiple_of: int = 1):
    """Matrices whose row length is a multiple of `multiple_of`, with many tied magnitudes."""
    weights = {}
    for i in range(draw(st.integers(1, 3))):
        rows, cols = draw(st.integers(1, 4)), multiple_of * draw(st.integers(1, 3))
        flat = draw(st.lists(st.sampled_from(TIED_VALUES), min_size=rows * cols,
                             max_size=rows * cols))
        weights[f"m{i}.weight"] = torch.tensor(flat).view(rows, cols)
    return weights


def pruned(mask: dict[str, torch.Tensor]) -> int:
    return sum(int((~keep).sum()) for keep in mask.values())


def total(mask: dict[str, torch.Tensor]) -> int:
    return sum(keep.numel() for keep in mask.values())


# --- random -------------------------------------------------------------------------------------

@PROPERTY
@given(weight_dicts(), st.lists(st.floats(0.0, 0.99), min_size=1, max_size=4, unique=True),
       st.integers(0, 2**31))
def test_random_masks_are_exact_nested_and_seeded(weights, sparsities, seed):
    result = masks.random_masks(weights, sparsities, seed)
    again = masks.random_masks(weights, sparsities, seed)
    for s in sparsities:
        assert pruned(result[s]) == masks.n_pruned(s, total(result[s]))
        assert all(torch.equal(result[s][k], again[s][k]) for k in weights)
    for denser, sparser in itertools.pairwise(sorted(sparsities)):
        assert not any((result[sparser][k] & ~result[denser][k]).any() for k in weights)


def test_random_masks_ignore_the_weights_and_follow_the_seed():
    small_first = {"a": torch.arange(1.0, 401.0).view(20, 20)}
    mask = masks.random_masks(small_first, [0.5], seed=0)[0.5]["a"].reshape(-1)
    # OMP would prune exactly the first half; a uniform draw prunes about half of each half
    assert 70 < int((~mask[:200]).sum()) < 130
    other = masks.random_masks(small_first, [0.5], seed=1)[0.5]["a"].reshape(-1)
    assert not torch.equal(mask, other)


# --- N:M ----------------------------------------------------------------------------------------

@PROPERTY
@given(st.sampled_from(PATTERNS).flatmap(
    lambda nm: st.tuples(st.just(nm), weight_dicts(multiple_of=nm[1]))))
def test_nm_keeps_exactly_n_of_every_m_consecutive_weights(case):
    (n, m), weights = case
    mask = masks.nm_mask(weights, n, m)
    for name, keep in mask.items():
        assert keep.shape == weights[name].shape and keep.dtype == torch.bool
        groups = keep.reshape(-1, m)
        assert (groups.sum(1) == n).all()
        magnitude = weights[name].abs().reshape(-1, m)
        for kept_group, group in zip(groups, magnitude, strict=True):
            if n < m:
                assert group[~kept_group].max() <= group[kept_group].min()
    assert pruned(mask) == round(total(mask) * levels.nm_sparsity(n, m))


def test_nm_groups_run_along_rows_and_ties_prune_the_earlier_weight():
    weights = {"w": torch.tensor([[1.0, 1.0, 1.0, 1.0, 4.0, 3.0, 2.0, 1.0]])}
    keep = masks.nm_mask(weights, 2, 4)["w"]
    assert keep.tolist() == [[False, False, True, True, True, True, False, False]]


def test_nm_rejects_patterns_that_do_not_fit():
    with pytest.raises(ValueError, match=r"layer\.0\.w.*input size 6 .* M = 4"):
        masks.nm_mask({"layer.0.w": torch.ones(2, 6)}, 2, 4)
    with pytest.raises(ValueError, match=r"N .* between 1 and M"):
        masks.nm_mask({"w": torch.ones(2, 4)}, 5, 4)


def test_nm_method_names_round_trip():
    assert levels.nm_method(2, 4) == "nm-2-4"
    assert levels.parse_nm("nm-2-4") == (2, 4)
    assert levels.parse_nm("omp-global") is None
    assert levels.nm_sparsity(2, 8) == 0.75


# --- LTH ----------------------------------------------------------------------------------------

def test_lth_schedule_removes_rate_of_the_original_weights_per_round():
    assert levels.lth_sparsities(0.1, 0.9) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert levels.lth_sparsities(0.25, 0.9) == [0.25, 0.5, 0.75, 0.9]
    assert levels.lth_sparsities(0.5, 0.5) == [0.5]


@PROPERTY
@given(weight_dicts(), st.sampled_from([0.1, 0.2, 0.35]), st.integers(0, 2**31))
def test_lth_rounds_reach_the_scheduled_sparsity_inside_the_previous_mask(weights, rate, seed):
    generator = torch.Generator().manual_seed(seed)
    mask = {k: torch.ones_like(w, dtype=torch.bool) for k, w in weights.items()}
    for sparsity in levels.lth_sparsities(rate, 0.9):
        # "fine-tuning": new magnitudes, with the pruned weights held at zero
        tuned = {k: (w + torch.randn(w.shape, generator=generator)) * mask[k]
                 for k, w in weights.items()}
        new = masks.lth_prune(tuned, mask, sparsity)
        assert pruned(new) == masks.n_pruned(sparsity, total(new))
        assert not any((new[k] & ~mask[k]).any() for k in weights)   # nested
        removed = torch.cat([tuned[k][mask[k] & ~new[k]].abs() for k in weights])
        survived = torch.cat([tuned[k][new[k]].abs() for k in weights])
        if len(removed) and len(survived):
            assert removed.max() <= survived.min()
        mask = new


def test_lth_prunes_previously_pruned_weights_first_even_against_kept_zeros():
    weights = {"w": torch.tensor([[0.0, 0.0, 5.0, 1.0]])}
    previous = {"w": torch.tensor([[True, False, True, True]])}
    assert masks.lth_prune(weights, previous, 0.5)["w"].tolist() == [[False, False, True, True]]
    with pytest.raises(ValueError, match="restore"):
        masks.lth_prune(weights, {"w": torch.tensor([[False, False, False, True]])}, 0.5)


# --- similarity ---------------------------------------------------------------------------------

@st.composite
def mask_dicts(draw):
    shapes = draw(st.lists(st.tuples(st.integers(1, 4), st.integers(1, 5)), min_size=1,
                           max_size=3))
    mask = {}
    for i, (r, c) in enumerate(shapes):
        bits = draw(st.lists(st.booleans(), min_size=r * c, max_size=r * c))
        mask[f"m{i}"] = torch.tensor(bits).view(r, c)
    return mask


@PROPERTY
@given(mask_dicts())
def test_cosine_is_one_with_itself_and_zero_with_its_complement(mask):
    kept = sum(int(t.sum()) for t in mask.values())
    if kept == 0:
        with pytest.raises(ValueError, match="undefined"):
            masks.cosine_similarity(mask, mask)
        return
    assert masks.cosine_similarity(mask, mask) == pytest.approx(1.0)
    complement = {k: ~t for k, t in mask.items()}
    if kept < total(mask):
        assert masks.cosine_similarity(mask, complement) == 0.0


def test_cosine_of_overlapping_masks():
    a = {"w": torch.tensor([True, True, False, False])}
    b = {"w": torch.tensor([True, False, True, True])}
    assert masks.cosine_similarity(a, b) == pytest.approx(1 / math.sqrt(2 * 3))


def test_pruned_density_is_the_share_pruned_in_each_block():
    keep = torch.ones(8, 12, dtype=torch.bool)
    keep[:, :6] = False  # the left half pruned
    keep[0, 6] = False  # and one weight of the top right block's 24
    density = masks.pruned_density(keep, cells=2)
    assert density.tolist() == [[1.0, pytest.approx(1 / 24)], [1.0, 0.0]]
    assert masks.pruned_density(keep, cells=100).shape == keep.shape  # no finer than one weight
    assert torch.equal(masks.pruned_density(keep, cells=100), (~keep).float())


@PROPERTY
@given(mask_dicts(), st.integers(1, 6))
def test_pruned_density_keeps_the_share_pruned_when_blocks_divide_the_matrix(mask, cells):
    for keep in mask.values():
        rows, cols = keep.shape
        if rows % min(cells, rows) == 0 and cols % min(cells, cols) == 0:
            density = masks.pruned_density(keep, cells)
            assert float(density.mean()) == pytest.approx(float((~keep).float().mean()))
            assert 0 <= float(density.min()) <= float(density.max()) <= 1
