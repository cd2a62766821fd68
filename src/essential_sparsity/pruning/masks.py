"""Pruning masks: one-shot magnitude pruning (OMP), random, N:M and LTH masks, mask files, their
sparsity reports and their similarity.

A mask is a dict of bool tensors (True = kept) keyed by encoder parameter names. OMP removes the
round(s x N) in-scope weights of smallest |w|, ties broken by position (matrix order, then
row-major index): exactly what a stable sort of all magnitudes would give, found without one.
Because every sparsity cuts the same order, masks of one model are nested: a sparser mask lies
inside every denser one. Random masks cut a seeded random order the same way; an LTH round cuts
the fine-tuned magnitudes of the weights the previous round kept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from ..records.io import ArtefactError, read_metadata_json, read_tensors, write_json, write_tensors

METHODS = ("omp-global", "omp-layerwise", "random")


def n_pruned(sparsity: float, total: int) -> int:
    """round(sparsity x total) with halves rounded up (never banker's rounding)."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity {sparsity} is outside [0, 1)")
    return math.floor(sparsity * total + 0.5)


# The selection engine. |w| as float32 has the same order as its bit pattern read as an int32
# (IEEE-754, non-negative), so the k-th smallest magnitude is found by a two-pass radix select:
# a histogram of the top 15 bits, then of the low 16 bits inside the buckets that hold the cuts.
# Memory is the masks plus one chunk of keys; no global concatenation or sort.
_LOW_BITS = 16
_CHUNK = 1 << 22  # elements per pass over a matrix: bounds transient memory


KeyChunks = Callable[[str], Iterator[torch.Tensor]]


def magnitude_keys(weights: dict[str, torch.Tensor]) -> KeyChunks:
    """|w| as int32 sort keys, chunk by chunk in row-major order."""
    def chunks(name: str) -> Iterator[torch.Tensor]:
        flat = weights[name].detach().reshape(-1)
        for start in range(0, flat.numel(), _CHUNK):
            yield flat[start:start + _CHUNK].abs().float().view(torch.int32)
    return chunks


def cut_points(shapes: dict[str, torch.Size], keys: KeyChunks,
                counts: list[int]) -> list[tuple[int, int]]:
    """For each count k: (t, r) such that the k smallest weights are every key below t and the
    first r weights with key t in position order (matrix order, then row-major)."""
    high = sum(torch.bincount(k >> _LOW_BITS, minlength=1 << 15)
               for name in shapes for k in keys(name))
    cum_high = high.cumsum(0)
    buckets = sorted({int(torch.searchsorted(cum_high, k)) for k in counts if k > 0})
    slot_of = torch.full((1 << 15,), -1, dtype=torch.int64)
    slot_of[buckets] = torch.arange(len(buckets))
    low = torch.zeros(len(buckets) << _LOW_BITS, dtype=torch.int64)
    for name in shapes:
        for key in keys(name):
            slot = slot_of[key >> _LOW_BITS]
            chosen = slot >= 0
            low += torch.bincount((slot[chosen] << _LOW_BITS) | (key[chosen] & 0xFFFF).long(),
                                  minlength=low.numel())
    cum_low = low.view(len(buckets), 1 << _LOW_BITS).cumsum(1)
    cuts = []
    for k in counts:
        if k == 0:
            cuts.append((-1, 0))
            continue
        bucket = int(torch.searchsorted(cum_high, k))
        below = int(cum_high[bucket - 1]) if bucket else 0
        row = cum_low[buckets.index(bucket)]
        j = int(torch.searchsorted(row, k - below))
        before = below + (int(row[j - 1]) if j else 0)
        cuts.append(((bucket << _LOW_BITS) | j, k - before))
    return cuts


def _masks_at(shapes: dict[str, torch.Size], keys: KeyChunks,
              cuts: list[tuple[int, int]]) -> list[dict[str, torch.Tensor]]:
    """The keep-mask of every cut in one pass over the keys, so a grid computes each chunk's keys
    once."""
    ties = [r for _, r in cuts]
    per_matrix = {name: matrix_masks(shape, keys(name), cuts, ties)
                  for name, shape in shapes.items()}
    return [{name: per_matrix[name][i] for name in shapes} for i in range(len(cuts))]


def matrix_masks(shape: torch.Size, chunks: Iterator[torch.Tensor], cuts: list[tuple[int, int]],
                  ties: list[int]) -> list[torch.Tensor]:
    """One matrix's keep-mask at every cut. A cut (t, r) keeps every key above t and the keys
    equal to t after the first r; `ties` counts each cut's ties still to prune and is used up in
    place, so calls made matrix by matrix in position order continue one selection (the sharded
    path holds one matrix at a time). Once a cut's ties are found, one comparison (key >= t) does
    the rest of its chunks."""
    keeps = [torch.empty(shape.numel(), dtype=torch.bool) for _ in cuts]
    start = 0
    for key in chunks:
        stop = start + key.numel()
        for i, (cut, _) in enumerate(cuts):
            part = keeps[i][start:stop]
            if not ties[i]:
                torch.ge(key, cut, out=part)
                continue
            torch.gt(key, cut, out=part)
            at_cut = torch.nonzero(key == cut).view(-1)
            pruned_here = min(ties[i], at_cut.numel())
            part[at_cut[pruned_here:]] = True
            ties[i] -= pruned_here
        start = stop
    return [keep.view(shape) for keep in keeps]


def _select(shapes: dict[str, torch.Size], keys: KeyChunks,
            counts: dict[float, int]) -> dict[float, dict[str, torch.Tensor]]:
    """For each level, the mask removing its count of smallest keys (ties: earlier first)."""
    with torch.no_grad():
        cuts = cut_points(shapes, keys, list(counts.values()))
        return dict(zip(counts, _masks_at(shapes, keys, cuts), strict=True))


def omp_global(weights: dict[str, torch.Tensor],
               sparsities: list[float]) -> dict[float, dict[str, torch.Tensor]]:
    """One threshold over the whole scope: exactly round(s x N) weights removed for each s."""
    total = sum(w.numel() for w in weights.values())
    shapes = {name: w.shape for name, w in weights.items()}
    return _select(shapes, magnitude_keys(weights), {s: n_pruned(s, total) for s in sparsities})


def omp_layerwise(weights: dict[str, torch.Tensor],
                  sparsities: list[float]) -> dict[float, dict[str, torch.Tensor]]:
    """Each matrix pruned to the same sparsity: round(s x n) of its own n weights removed."""
    per_matrix = {name: omp_global({name: w}, sparsities) for name, w in weights.items()}
    return {s: {name: per_matrix[name][s][name] for name in weights} for s in sparsities}


def random_masks(weights: dict[str, torch.Tensor], sparsities: list[float],
                 seed: int) -> dict[float, dict[str, torch.Tensor]]:
    """The control the paper lacks: round(s x N) weights drawn uniformly over the scope, nested
    across sparsities (one seeded random order, cut at every level) and blind to the weights."""
    generator = torch.Generator().manual_seed(seed)
    scores = {name: torch.rand(w.shape, generator=generator) for name, w in weights.items()}
    return omp_global(scores, sparsities)


def grid_masks(weights: dict[str, torch.Tensor], sparsities: list[float], method: str,
               seed: int = 0) -> dict[float, dict[str, torch.Tensor]]:
    """The masks of one grid method at every sparsity (`seed` draws the random ones)."""
    if method == "omp-global":
        return omp_global(weights, sparsities)
    if method == "omp-layerwise":
        return omp_layerwise(weights, sparsities)
    if method == "random":
        return random_masks(weights, sparsities, seed)
    raise ValueError(f"pruning method {method!r} is unknown (allowed: {', '.join(METHODS)})")


# N:M. The paper's and NVIDIA's reading: N is the number of weights KEPT in every M consecutive
# weights along a row (the input dimension), so 2:4 keeps 2 of 4 and is 50% sparse. Wanda's and
# SparseGPT's `prune_n` counts the pruned weights instead.


def keep_nm(scores: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Keep the n highest scores of every m consecutive weights along each row; among equal
    scores the earlier weight goes first, as in OMP. Magnitudes here, Wanda's and SparseGPT's
    scores in `calibrated`."""
    groups = scores.reshape(-1, m)
    pruned = torch.argsort(groups, dim=1, stable=True)[:, :m - n]
    return torch.ones_like(groups, dtype=torch.bool).scatter_(1, pruned, False).view(scores.shape)


def nm_mask(weights: dict[str, torch.Tensor], n: int, m: int) -> dict[str, torch.Tensor]:
    """Keep the n largest |w| of every m consecutive weights along each row."""
    if not 1 <= n <= m:
        raise ValueError(f"N:M pattern {n}:{m}: N (weights kept) must be between 1 and M")
    mask = {}
    for name, w in weights.items():
        if w.shape[-1] % m:
            raise ValueError(f"N:M pattern {n}:{m} does not fit {name}: its input size "
                             f"{w.shape[-1]} is not a multiple of M = {m}")
        mask[name] = keep_nm(w.detach().abs().float(), n, m)
    return mask


# LTH: iterative magnitude pruning with rewinding (BERT-Tickets). Each round removes a further
# `rate` of the scope's original weights, chosen by the fine-tuned magnitudes among the weights the
# previous round kept; the survivors restart from their pre-trained values.


def lth_prune(weights: dict[str, torch.Tensor], mask: dict[str, torch.Tensor],
              sparsity: float) -> dict[str, torch.Tensor]:
    """The next round's mask: inside `mask`, with round(s x N) weights removed in all; the
    weights it adds to the pruned set are the kept ones of smallest fine-tuned |w|."""
    total = sum(w.numel() for w in weights.values())
    already = sum(int((~keep).sum()) for keep in mask.values())
    target = n_pruned(sparsity, total)
    if target < already:
        raise ValueError(f"LTH round to sparsity {sparsity} would have to restore weights: the "
                         f"previous mask already prunes {already} of {total}")

    def keys(name: str) -> Iterator[torch.Tensor]:
        # pruned weights get key 0, kept ones their |w| bit pattern + 1: every pruned weight comes
        # before every kept one (even a kept zero), and kept weights keep their magnitude order
        flat = weights[name].detach().reshape(-1)
        kept = mask[name].reshape(-1)
        for start in range(0, flat.numel(), _CHUNK):
            bits = flat[start:start + _CHUNK].abs().float().view(torch.int32) + 1
            yield torch.where(kept[start:start + _CHUNK], bits, 0)

    shapes = {name: w.shape for name, w in weights.items()}
    return _select(shapes, keys, {sparsity: target})[sparsity]


def cosine_similarity(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Cosine of two masks as 0/1 vectors over the scope (1 = kept), as in the paper's Figure 10:
    |a and b| / sqrt(|a| |b|)."""
    if set(a) != set(b):
        raise ValueError("the two masks cover different weights; compare masks of one model")
    both = sum(int((a[name] & b[name]).sum()) for name in a)
    size_a = sum(int(t.sum()) for t in a.values())
    size_b = sum(int(t.sum()) for t in b.values())
    if not size_a or not size_b:
        raise ValueError("a mask that keeps no weight has no direction: cosine is undefined")
    return both / math.sqrt(size_a * size_b)


def sparsity_report(mask: dict[str, torch.Tensor], model_type: str) -> dict:
    """Total and per-matrix counts of pruned weights: what a reviewer checks a mask against."""
    from .scope import classify

    matrices = []
    for name, keep in mask.items():
        component, layer = classify(name, model_type) or ("other", -1)
        pruned = int((~keep).sum())
        matrices.append({"name": name, "component": component, "layer": layer,
                         "weights": keep.numel(), "pruned": pruned,
                         "sparsity": pruned / keep.numel()})
    total = sum(m["weights"] for m in matrices)
    pruned = sum(m["pruned"] for m in matrices)
    return {"weights": total, "pruned": pruned, "sparsity": pruned / total, "matrices": matrices}


def pruned_density(keep: torch.Tensor, cells: int) -> torch.Tensor:
    """The share of pruned weights in each block of a grid at most `cells` by `cells` over the
    matrix: where pruning lands, as Figure 1 draws it. A full-size image of single weights is a
    megapixel of noise per matrix (a 5.8 MB PNG for MiniLM) that no page shows at that size."""
    grid = (min(cells, keep.shape[0]), min(cells, keep.shape[1]))
    pruned = (~keep).float()[None, None]
    return torch.nn.functional.adaptive_avg_pool2d(pruned, grid)[0, 0]


def save_mask(path: str | Path, mask: dict[str, torch.Tensor], info: dict,
              packed: bool = False) -> None:
    """The mask as safetensors and its sparsity report as JSON beside it. Packed masks store 8
    weights a byte (a causal LM's bool mask would be a byte a weight: 106 MB for 135M weights);
    their shapes go in the metadata, and `load_mask` reads both forms."""
    path = Path(path)
    report = {**info, **sparsity_report(mask, info["model_type"])}
    metadata = {"info": json.dumps(info, sort_keys=True)}
    tensors = mask
    if packed:
        import numpy as np

        tensors = {name: torch.from_numpy(np.packbits(keep.reshape(-1).numpy()))
                   for name, keep in mask.items()}
        metadata["packed_shapes"] = json.dumps({name: list(keep.shape)
                                                for name, keep in mask.items()})
    write_tensors(path, tensors, metadata=metadata)
    write_json(path.with_suffix(".json"), report)


def _unpack(path: str | Path, stored: dict[str, torch.Tensor],
            shapes: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    import numpy as np

    if set(stored) != set(shapes) or not all(
            isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)
            for shape in shapes.values()):
        raise ArtefactError(f"{path}: its packed shapes do not give a shape to each stored "
                            f"tensor; the file is corrupt: rebuild it with snakemake {path}")
    mask = {}
    for name, bits in stored.items():
        numel = math.prod(shapes[name])
        if bits.dtype != torch.uint8 or bits.numel() != (numel + 7) // 8:
            raise ArtefactError(f"{path}: {name} holds {bits.numel()} {bits.dtype} values, not "
                                f"the bits of {numel} weights; rebuild it with snakemake {path}")
        unpacked = np.unpackbits(bits.numpy(), count=numel).astype(bool)
        mask[name] = torch.from_numpy(unpacked).view(shapes[name])
    return mask


def load_mask(path: str | Path) -> dict[str, torch.Tensor]:
    mask = read_tensors(path)
    shapes = read_metadata_json(path, "packed_shapes", required=False)
    if shapes is not None:
        return _unpack(path, mask, shapes)
    bad = [name for name, t in mask.items() if t.dtype != torch.bool]
    if bad:
        raise ArtefactError(f"{path}: {bad[0]} is {mask[bad[0]].dtype}, not a bool mask; "
                            f"rebuild it with snakemake {path}")
    return mask


MASK_INFO = ("model", "method", "target_sparsity", "model_type")  # what every mask's info holds


def mask_info(path: str | Path) -> dict:
    """What made the mask (model, method, target sparsity, ...), from its metadata."""
    info = read_metadata_json(path, "info")
    missing = [key for key in MASK_INFO if key not in info]
    if not missing and not isinstance(info["target_sparsity"], int | float):
        missing = ["target_sparsity"]
    if missing:
        raise ArtefactError(f"{path}: its info metadata has no valid {missing[0]}; rebuild it "
                            f"with snakemake {path}")
    return info


def apply_mask(weights: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> None:
    """Zero the pruned weights in place; the mask must cover exactly the weights given."""
    if set(weights) != set(mask):
        missing = sorted(set(weights) ^ set(mask))[:3]
        raise ArtefactError(f"mask and model scope differ (e.g. {missing}); the mask was made for "
                            f"another model or scope: rebuild it")
    with torch.no_grad():
        for name, w in weights.items():
            if mask[name].shape != w.shape:
                raise ArtefactError(f"mask {name} has shape {tuple(mask[name].shape)}, the model "
                                    f"{tuple(w.shape)}: the mask belongs to another model")
            w.mul_(mask[name].to(w.dtype))


def checkpoint_weight(state: dict[str, torch.Tensor], name: str, path: str | Path,
                      model_type: str) -> torch.Tensor:
    """An in-scope weight (`scope.views`) of a classifier checkpoint, whose names carry the
    head's prefix."""
    from .scope import views
    parameter = name.split(":")[0]
    found = [key for key in state if key == parameter or key.endswith("." + parameter)]
    if len(found) != 1:
        raise ArtefactError(f"{path}: {'no' if not found else 'several'} tensors named like "
                            f"{parameter}; the checkpoint belongs to another model: rebuild it")
    matrices = views(parameter, state[found[0]], model_type)
    if name not in matrices:
        raise ArtefactError(f"{path}: {parameter} holds no matrix {name}; the mask was made for "
                            f"another model: rebuild it")
    return matrices[name]
