"""Streaming global OMP over sharded checkpoints: masks identical to the in-memory omp_global,
exact counts, nesting, scope and order, one source tensor in memory at a time."""

from __future__ import annotations

import itertools
import tempfile
import weakref
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from essential_sparsity.config.params import format_sparsity
from essential_sparsity.pruning import masks, sharded
from essential_sparsity.records.io import ArtefactError, read_json, write_tensors

SPARSITIES = [0.0, 0.2, 0.5, 0.7, 0.9]
# Few distinct magnitudes: ties within matrices, across matrices and across shards.
TIED_VALUES = [0.0, 0.0, 1.0, -1.0, 2.0, -0.5, 0.5, 3.0]


def in_scope(name: str) -> bool:
    return name.endswith("proj.weight")


def tied(*shape: int) -> torch.Tensor:
    picks = torch.randint(len(TIED_VALUES), shape)
    return torch.tensor(TIED_VALUES)[picks]


def write_checkpoint(directory: Path, dtype: torch.dtype) -> list[Path]:
    """Three shards of a tiny decoder: in-scope projections of different shapes (some tied, some
    continuous), an embedding, norm vectors and a head that are out of scope, and a last shard
    with nothing in scope."""
    torch.manual_seed(0)
    layout = {
        "model-00001-of-00003.safetensors": {
            "model.embed_tokens.weight": torch.randn(11, 6),
            "model.layers.0.self_attn.q_proj.weight": torch.randn(6, 6),
            "model.layers.0.self_attn.k_proj.weight": tied(4, 6),
            "model.layers.0.input_layernorm.weight": torch.ones(6),
        },
        "model-00002-of-00003.safetensors": {
            "model.layers.0.mlp.up_proj.weight": tied(8, 6),
            "model.layers.1.self_attn.q_proj.weight": tied(6, 6),
            "model.layers.1.mlp.down_proj.weight": torch.randn(6, 8),
        },
        "model-00003-of-00003.safetensors": {
            "model.norm.weight": torch.ones(6),
            "lm_head.weight": torch.randn(11, 6),
        },
    }
    for file, tensors in layout.items():
        write_tensors(directory / file, {k: v.to(dtype) for k, v in tensors.items()})
    return [directory / file for file in layout]


def in_memory_scope(shards: list[Path]) -> dict[str, torch.Tensor]:
    """The documented position order, built independently: shards as given, names sorted."""
    weights = {}
    for shard in shards:
        tensors = load_file(str(shard))
        weights.update((name, tensors[name]) for name in sorted(tensors) if in_scope(name))
    return weights


def pruned_count(mask: dict[str, torch.Tensor]) -> int:
    return sum(int((~keep).sum()) for keep in mask.values())


def assert_identical(result: dict[float, Path], expected: dict[float, dict[str, torch.Tensor]]):
    assert list(result) == list(expected)
    for sparsity, directory in result.items():
        mask = sharded.load_sharded_mask(directory)
        assert list(mask) == list(expected[sparsity])
        assert all(torch.equal(mask[name], keep) for name, keep in expected[sparsity].items())


@pytest.fixture
def checkpoint(tmp_path):
    return write_checkpoint(tmp_path / "checkpoint", torch.float32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_sharded_masks_are_identical_to_in_memory_omp_global(tmp_path, dtype):
    shards = write_checkpoint(tmp_path / "checkpoint", dtype)
    result = sharded.omp_global_sharded(shards, in_scope, SPARSITIES, tmp_path / "masks")
    assert_identical(result, masks.omp_global(in_memory_scope(shards), SPARSITIES))


def test_sharded_masks_prune_exact_counts_and_are_nested(checkpoint, tmp_path):
    total = sum(w.numel() for w in in_memory_scope(checkpoint).values())
    result = sharded.omp_global_sharded(checkpoint, in_scope, SPARSITIES, tmp_path / "masks")
    loaded = {s: sharded.load_sharded_mask(directory) for s, directory in result.items()}
    for sparsity, directory in result.items():
        assert directory == tmp_path / "masks" / format_sparsity(sparsity)
        index = read_json(directory / sharded.INDEX)
        assert index["weights"] == total
        assert index["pruned"] == pruned_count(loaded[sparsity]) == masks.n_pruned(sparsity, total)
    flat = [torch.cat([keep.reshape(-1) for keep in loaded[s].values()]) for s in SPARSITIES]
    for denser, sparser in itertools.pairwise(flat):
        assert not (sparser & ~denser).any()


def test_out_of_scope_tensors_and_shards_get_no_mask(checkpoint, tmp_path):
    (directory,) = sharded.omp_global_sharded(checkpoint, in_scope, [0.5], tmp_path).values()
    index = read_json(directory / sharded.INDEX)
    assert [entry["file"] for entry in index["shards"]] == [shard.name for shard in checkpoint[:2]]
    assert not (directory / checkpoint[2].name).exists()
    for entry in index["shards"]:
        mask = load_file(str(directory / entry["file"]))
        assert sorted(mask) == sorted(entry["tensors"])
        assert all(in_scope(name) and keep.dtype == torch.bool for name, keep in mask.items())


def test_scope_is_read_from_headers_in_shard_then_name_order(checkpoint, monkeypatch):
    monkeypatch.setattr(sharded, "_read_tensor", pytest.fail)
    scope = sharded.scope_tensors(checkpoint, in_scope)
    expected = in_memory_scope(checkpoint)
    assert list(scope) == list(expected)
    assert scope["model.layers.1.mlp.down_proj.weight"] == (checkpoint[1], torch.Size([6, 8]))
    assert all(scope[name][1] == w.shape for name, w in expected.items())


def test_at_most_one_source_tensor_is_in_memory_at_a_time(checkpoint, monkeypatch, tmp_path):
    read = sharded._read_tensor
    loaded: list[weakref.ref] = []

    def tracked(shard: Path, name: str) -> torch.Tensor:
        assert all(ref() is None for ref in loaded), "an earlier tensor is still in memory"
        tensor = read(shard, name)
        loaded.append(weakref.ref(tensor))
        return tensor

    monkeypatch.setattr(sharded, "_read_tensor", tracked)
    sharded.omp_global_sharded(checkpoint, in_scope, SPARSITIES, tmp_path / "masks")
    # two passes for the threshold, one per sparsity for the masks
    assert len(loaded) == (2 + len(SPARSITIES)) * len(in_memory_scope(checkpoint))


def test_a_tensor_in_two_shards_is_an_error(checkpoint, tmp_path):
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes(checkpoint[1].read_bytes())
    with pytest.raises(ArtefactError, match=r"both \S*00002-of-00003\S* and \S*copy\.safetensors"):
        sharded.scope_tensors([*checkpoint, copy], in_scope)


def test_shards_sharing_a_file_name_are_an_error(checkpoint, tmp_path):
    other = tmp_path / "other" / checkpoint[2].name
    write_tensors(other, {"x.proj.weight": torch.ones(2, 2)})
    with pytest.raises(ArtefactError, match="share a file name"):
        sharded.omp_global_sharded([*checkpoint, other], in_scope, [0.5], tmp_path / "masks")


def test_a_checkpoint_with_nothing_in_scope_is_an_error(checkpoint, tmp_path):
    with pytest.raises(ArtefactError, match=r"no tensor .* is in the pruning scope"):
        sharded.omp_global_sharded(checkpoint, lambda name: False, [0.5], tmp_path / "masks")


@st.composite
def sharded_layouts(draw):
    """1-3 shards of 0-3 tied matrices each (at least one in all), named out of sort order."""
    layout = []
    for shard in range(draw(st.integers(1, 3))):
        tensors = {}
        for i in range(draw(st.integers(0, 3))):
            rows, cols = draw(st.integers(1, 4)), draw(st.integers(1, 5))
            flat = draw(st.lists(st.sampled_from(TIED_VALUES), min_size=rows * cols,
                                 max_size=rows * cols))
            tensors[f"{draw(st.sampled_from('zyx'))}{shard}{i}.proj.weight"] = (
                torch.tensor(flat).view(rows, cols))
        layout.append(tensors)
    if not any(layout):
        layout[0]["a.proj.weight"] = torch.ones(1, 1)
    return layout


@settings(max_examples=25, deadline=None)
@given(sharded_layouts(),
       st.lists(st.integers(0, 99).map(lambda p: p / 100), min_size=1, max_size=4, unique=True))
def test_sharded_masks_match_omp_global_for_any_layout_with_ties(layout, sparsities):
    with tempfile.TemporaryDirectory() as tmp:
        shards = [Path(tmp, f"shard-{i}.safetensors") for i in range(len(layout))]
        for shard, tensors in zip(shards, layout, strict=True):
            write_tensors(shard, tensors)
        result = sharded.omp_global_sharded(shards, in_scope, sparsities, Path(tmp, "masks"))
        assert_identical(result, masks.omp_global(in_memory_scope(shards), sparsities))
