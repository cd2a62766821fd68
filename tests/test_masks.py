"""OMP masks: exact counts, magnitude order, nesting, determinism, mask files."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from essential_sparsity.pruning import masks
from essential_sparsity.pruning.scope import COMPONENTS, scope_weights
from essential_sparsity.records.io import ArtefactError, write_tensors

PROPERTY = settings(max_examples=50, deadline=None)

# Few distinct magnitudes and many zeros: ties everywhere, within and across matrices.
TIED_VALUES = [0.0, 0.0, 0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0]


@st.composite
def weight_dicts(draw):
    values = st.sampled_from(TIED_VALUES)
    n_matrices = draw(st.integers(1, 4))
    weights = {}
    for i in range(n_matrices):
        rows, cols = draw(st.integers(1, 5)), draw(st.integers(1, 6))
        flat = draw(st.lists(values, min_size=rows * cols, max_size=rows * cols))
        weights[f"m{i}.weight"] = torch.tensor(flat, dtype=torch.float32).view(rows, cols)
    return weights


@st.composite
def distinct_weight_dicts(draw):
    """Magnitudes all different, so the threshold is unambiguous."""
    shapes = draw(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 6)), min_size=1,
                           max_size=4))
    total = sum(r * c for r, c in shapes)
    magnitudes = draw(st.lists(st.integers(1, 10_000), min_size=total, max_size=total,
                               unique=True))
    signs = draw(st.lists(st.sampled_from([-1, 1]), min_size=total, max_size=total))
    flat = torch.tensor([m * s / 100 for m, s in zip(magnitudes, signs, strict=True)])
    parts = torch.split(flat, [r * c for r, c in shapes])
    return {f"m{i}.weight": p.view(shape) for i, (p, shape) in enumerate(zip(parts, shapes,
                                                                           strict=True))}


sparsity_lists = st.lists(st.floats(0.0, 0.99), min_size=1, max_size=5, unique=True)


def flat_of(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors.values()])


def pruned_count(mask: dict[str, torch.Tensor]) -> int:
    return int(sum((~m).sum() for m in mask.values()))


def test_n_pruned_rounds_halves_up():
    assert masks.n_pruned(0.5, 3) == 2  # 1.5 -> 2
    assert masks.n_pruned(0.25, 2) == 1  # 0.5 -> 1, not banker's 0
    assert masks.n_pruned(0.0, 10) == 0
    assert masks.n_pruned(0.2, 10) == 2
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="outside"):
            masks.n_pruned(bad, 10)


# --- global OMP ---------------------------------------------------------------------------------

@PROPERTY
@given(weight_dicts(), sparsity_lists)
def test_global_prunes_exactly_round_s_n_over_the_scope(weights, sparsities):
    total = sum(w.numel() for w in weights.values())
    for s, mask in masks.omp_global(weights, sparsities).items():
        assert list(mask) == list(weights)
        assert all(m.dtype == torch.bool and m.shape == weights[k].shape for k, m in mask.items())
        assert pruned_count(mask) == math.floor(s * total + 0.5) == masks.n_pruned(s, total)


@PROPERTY
@given(weight_dicts(), sparsity_lists)
def test_global_removes_only_the_smallest_magnitudes(weights, sparsities):
    magnitude = flat_of(weights).abs()
    for mask in masks.omp_global(weights, sparsities).values():
        keep = flat_of(mask)
        if keep.any() and (~keep).any():
            assert magnitude[~keep].max() <= magnitude[keep].min()


@PROPERTY
@given(weight_dicts(), sparsity_lists)
def test_global_masks_are_nested(weights, sparsities):
    result = masks.omp_global(weights, sparsities)
    ordered = [flat_of(result[s]) for s in sorted(sparsities)]
    for denser, sparser in itertools.pairwise(ordered):
        assert not (sparser & ~denser).any()


@PROPERTY
@given(weight_dicts(), sparsity_lists)
def test_global_is_deterministic_under_ties(weights, sparsities):
    first = masks.omp_global(weights, sparsities)
    second = masks.omp_global({k: w.clone() for k, w in weights.items()}, list(sparsities))
    for s in sparsities:
        assert all(torch.equal(first[s][k], second[s][k]) for k in weights)


@PROPERTY
@given(weight_dicts())
def test_zero_sparsity_keeps_everything(weights):
    for method in masks.METHODS:
        (mask,) = masks.grid_masks(weights, [0.0], method).values()
        assert all(m.all() for m in mask.values())


def test_ties_are_broken_by_matrix_then_row_major_position():
    weights = {"a": torch.ones(2, 2), "b": torch.ones(1, 3)}
    mask = masks.omp_global(weights, [3 / 7])[3 / 7]
    assert mask["a"].tolist() == [[False, False], [False, True]]
    assert mask["b"].all()


@PROPERTY
@given(distinct_weight_dicts(), sparsity_lists)
def test_global_matches_kthvalue_threshold_without_ties(weights, sparsities):
    magnitude = flat_of(weights).abs()
    for s, mask in masks.omp_global(weights, sparsities).items():
        k = masks.n_pruned(s, magnitude.numel())
        if k == 0:
            expected = torch.ones_like(magnitude, dtype=torch.bool)
        else:
            threshold = torch.kthvalue(magnitude, k).values
            expected = magnitude > threshold
        assert torch.equal(flat_of(mask), expected)


def test_global_uses_one_threshold_across_matrices():
    """A matrix of large weights keeps all of them; layer-wise would prune it too."""
    weights = {"small": torch.arange(1.0, 9.0).view(2, 4), "large": torch.full((2, 4), 100.0)}
    mask = masks.omp_global(weights, [0.5])[0.5]
    assert not mask["small"].any() and mask["large"].all()
    layerwise = masks.omp_layerwise(weights, [0.5])[0.5]
    assert pruned_count({"large": layerwise["large"]}) == 4


# --- layer-wise OMP -----------------------------------------------------------------------------

@PROPERTY
@given(weight_dicts(), sparsity_lists)
def test_layerwise_prunes_exactly_round_s_n_per_matrix(weights, sparsities):
    for s, mask in masks.omp_layerwise(weights, sparsities).items():
        assert list(mask) == list(weights)
        for name, keep in mask.items():
            assert keep.dtype == torch.bool and keep.shape == weights[name].shape
            assert int((~keep).sum()) == masks.n_pruned(s, keep.numel())


@PROPERTY
@given(weight_dicts(), sparsity_lists)
def test_layerwise_orders_by_magnitude_within_each_matrix(weights, sparsities):
    for mask in masks.omp_layerwise(weights, sparsities).values():
        for name, keep in mask.items():
            magnitude = weights[name].abs()
            if keep.any() and (~keep).any():
                assert magnitude[~keep].max() <= magnitude[keep].min()


@PROPERTY
@given(weight_dicts(), sparsity_lists)
def test_layerwise_masks_are_nested_and_deterministic(weights, sparsities):
    result = masks.omp_layerwise(weights, sparsities)
    again = masks.omp_layerwise({k: w.clone() for k, w in weights.items()}, sparsities)
    ordered = sorted(sparsities)
    for name in weights:
        assert all(torch.equal(result[s][name], again[s][name]) for s in sparsities)
        for denser, sparser in itertools.pairwise(ordered):
            assert not (result[sparser][name] & ~result[denser][name]).any()


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="omp-global"):
        masks.grid_masks({"a": torch.ones(2, 2)}, [0.5], "bogus")


# --- mask files ---------------------------------------------------------------------------------

INFO = {"model": "tiny", "method": "omp-global", "target_sparsity": 0.5, "model_type": "bert",
        "scope": list(COMPONENTS)}


@pytest.fixture
def tiny_mask(tiny_bert):
    weights = scope_weights(tiny_bert, list(COMPONENTS))
    return masks.omp_global(weights, [0.5])[0.5]


def test_save_load_round_trip_with_report(tmp_path, tiny_mask):
    path = tmp_path / "mask.safetensors"
    masks.save_mask(path, tiny_mask, INFO)
    loaded = masks.load_mask(path)
    assert set(loaded) == set(tiny_mask)
    for name, keep in tiny_mask.items():
        assert loaded[name].dtype == torch.bool and torch.equal(loaded[name], keep)
    assert masks.mask_info(path) == INFO
    report = json.loads((tmp_path / "mask.json").read_text())
    total = sum(m.numel() for m in tiny_mask.values())
    assert report["weights"] == total
    assert report["pruned"] == pruned_count(tiny_mask) == masks.n_pruned(0.5, total)
    assert report["sparsity"] == pytest.approx(report["pruned"] / total)
    assert report["model"] == "tiny" and report["target_sparsity"] == 0.5
    by_name = {m["name"]: m for m in report["matrices"]}
    assert set(by_name) == set(tiny_mask)
    for name, keep in tiny_mask.items():
        assert by_name[name]["weights"] == keep.numel()
        assert by_name[name]["pruned"] == int((~keep).sum())
    assert by_name["encoder.layer.1.intermediate.dense.weight"]["component"] == "ffn_in"
    assert by_name["encoder.layer.1.intermediate.dense.weight"]["layer"] == 1


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_mask_file_names_the_file(tmp_path, tiny_mask, damage):
    path = tmp_path / "broken.safetensors"
    masks.save_mask(path, tiny_mask, INFO)
    raw = path.read_bytes()
    path.write_bytes({"truncate": raw[: len(raw) // 2], "garbage": b"\x00not a mask" * 10,
                      "empty": b""}[damage])
    with pytest.raises(ArtefactError, match=r"broken\.safetensors"):
        masks.load_mask(path)
    with pytest.raises(ArtefactError, match=r"broken\.safetensors"):
        masks.mask_info(path)


def test_missing_mask_file_names_the_file(tmp_path):
    with pytest.raises(ArtefactError, match=r"absent\.safetensors"):
        masks.load_mask(tmp_path / "absent.safetensors")


def test_non_bool_mask_is_rejected(tmp_path, tiny_mask):
    path = tmp_path / "float.safetensors"
    write_tensors(path, {k: v.float() for k, v in tiny_mask.items()})
    with pytest.raises(ArtefactError, match=r"float\.safetensors.*not a bool mask"):
        masks.load_mask(path)


def test_apply_mask_zeroes_exactly_the_pruned_weights(tiny_bert, tiny_mask):
    weights = scope_weights(tiny_bert, list(COMPONENTS))
    before = {k: w.detach().clone() for k, w in weights.items()}
    masks.apply_mask(weights, tiny_mask)
    for name, keep in tiny_mask.items():
        assert (weights[name][~keep] == 0).all()
        assert torch.equal(weights[name][keep], before[name][keep])


def test_apply_mask_rejects_other_names_or_shapes(tiny_bert, tiny_mask):
    weights = scope_weights(tiny_bert, list(COMPONENTS))
    fewer = dict(list(tiny_mask.items())[1:])
    with pytest.raises(ArtefactError, match="scope differ"):
        masks.apply_mask(weights, fewer)
    name = next(iter(tiny_mask))
    reshaped = {**tiny_mask, name: tiny_mask[name].reshape(-1)}
    with pytest.raises(ArtefactError, match="shape"):
        masks.apply_mask(weights, reshaped)


def sorted_reference(weights: dict[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """The definition itself: stable-sort every |w| in position order, drop the first round(sN)."""
    flat = flat_of(weights).abs()
    order = torch.argsort(flat, stable=True)
    keep = torch.ones_like(flat, dtype=torch.bool)
    keep[order[:masks.n_pruned(sparsity, flat.numel())]] = False
    parts = torch.split(keep, [w.numel() for w in weights.values()])
    return {name: part.view(w.shape) for (name, w), part in zip(weights.items(), parts,
                                                                 strict=True)}


@PROPERTY
@given(weights=weight_dicts(), sparsities=sparsity_lists, chunk=st.sampled_from([1, 3, 7, 1 << 22]))
def test_radix_select_equals_a_stable_sort_with_ties_across_chunks(weights, sparsities, chunk):
    original = masks._CHUNK
    masks._CHUNK = chunk  # small chunks put ties and cuts on chunk boundaries
    try:
        result = masks.omp_global(weights, sparsities)
    finally:
        masks._CHUNK = original
    for s in sparsities:
        reference = sorted_reference(weights, s)
        assert all(torch.equal(result[s][n], reference[n]) for n in weights)


def test_radix_select_handles_magnitudes_spanning_the_float_range():
    values = torch.tensor([0.0, 1e-45, 1e-38, 3e-39, 1e-10, 0.5, 1.0, 7e4, 3e38, -1e-45, -0.0])
    weights = {"a": values[:6].view(2, 3), "b": values[6:].view(5, 1)}
    for s in (0.1, 0.3, 0.5, 0.7, 0.9):
        reference = sorted_reference(weights, s)
        assert all(torch.equal(masks.omp_global(weights, [s])[s][n], reference[n])
                   for n in weights)
