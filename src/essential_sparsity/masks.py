"""Pruning masks: one-shot magnitude pruning (OMP), mask files and their sparsity reports.

A mask is a dict of bool tensors (True = kept) keyed by encoder parameter names. OMP removes the
round(s x N) in-scope weights of smallest |w|, ties broken by position (matrix order, then
row-major index): exactly what a stable sort of all magnitudes would give, found without one.
Because every sparsity cuts the same order, masks of one model are nested: a sparser mask lies
inside every denser one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import torch

from .io import ArtefactError, read_metadata, read_tensors, write_json, write_tensors

METHODS = ("omp-global", "omp-layerwise")


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


def _keys(w: torch.Tensor) -> Iterator[torch.Tensor]:
    """|w| as int32 sort keys, chunk by chunk in row-major order."""
    flat = w.detach().reshape(-1)
    for start in range(0, flat.numel(), _CHUNK):
        yield flat[start:start + _CHUNK].abs().float().view(torch.int32)


def _cut_points(weights: dict[str, torch.Tensor], counts: list[int]) -> list[tuple[int, int]]:
    """For each count k: (t, r) such that the k smallest weights are every |w| below key t and the
    first r weights with key t in position order (matrix order, then row-major)."""
    high = sum(torch.bincount(k >> _LOW_BITS, minlength=1 << 15)
               for w in weights.values() for k in _keys(w))
    cum_high = high.cumsum(0)
    buckets = sorted({int(torch.searchsorted(cum_high, k)) for k in counts if k > 0})
    slot_of = torch.full((1 << 15,), -1, dtype=torch.int64)
    slot_of[buckets] = torch.arange(len(buckets))
    low = torch.zeros(len(buckets) << _LOW_BITS, dtype=torch.int64)
    for w in weights.values():
        for key in _keys(w):
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


def _mask_at(weights: dict[str, torch.Tensor], cut: int, ties: int) -> dict[str, torch.Tensor]:
    mask = {}
    for name, w in weights.items():
        keep = torch.empty(w.numel(), dtype=torch.bool)
        start = 0
        for key in _keys(w):
            part = keep[start:start + key.numel()]
            torch.gt(key, cut, out=part)
            at_cut = torch.nonzero(key == cut).view(-1)
            pruned_here = min(ties, at_cut.numel())
            part[at_cut[pruned_here:]] = True
            ties -= pruned_here
            start += key.numel()
        mask[name] = keep.view(w.shape)
    return mask


def omp_global(weights: dict[str, torch.Tensor],
               sparsities: list[float]) -> dict[float, dict[str, torch.Tensor]]:
    """One threshold over the whole scope: exactly round(s x N) weights removed for each s."""
    total = sum(w.numel() for w in weights.values())
    with torch.no_grad():
        cuts = _cut_points(weights, [n_pruned(s, total) for s in sparsities])
        return {s: _mask_at(weights, *cut) for s, cut in zip(sparsities, cuts, strict=True)}


def omp_layerwise(weights: dict[str, torch.Tensor],
                  sparsities: list[float]) -> dict[float, dict[str, torch.Tensor]]:
    """Each matrix pruned to the same sparsity: round(s x n) of its own n weights removed."""
    per_matrix = {name: omp_global({name: w}, sparsities) for name, w in weights.items()}
    return {s: {name: per_matrix[name][s][name] for name in weights} for s in sparsities}


def omp_masks(weights: dict[str, torch.Tensor], sparsities: list[float],
              method: str) -> dict[float, dict[str, torch.Tensor]]:
    if method == "omp-global":
        return omp_global(weights, sparsities)
    if method == "omp-layerwise":
        return omp_layerwise(weights, sparsities)
    raise ValueError(f"pruning method {method!r} is unknown (allowed: {', '.join(METHODS)})")


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


def save_mask(path: str | Path, mask: dict[str, torch.Tensor], info: dict) -> None:
    """The mask as safetensors (bool) and its sparsity report as JSON beside it."""
    path = Path(path)
    report = {**info, **sparsity_report(mask, info["model_type"])}
    write_tensors(path, mask, metadata={"info": json.dumps(info, sort_keys=True)})
    write_json(path.with_suffix(".json"), report)


def load_mask(path: str | Path) -> dict[str, torch.Tensor]:
    mask = read_tensors(path)
    bad = [name for name, t in mask.items() if t.dtype != torch.bool]
    if bad:
        raise ArtefactError(f"{path}: {bad[0]} is {mask[bad[0]].dtype}, not a bool mask; "
                            f"rebuild it with snakemake {path}")
    return mask


def mask_info(path: str | Path) -> dict:
    return json.loads(read_metadata(path).get("info", "{}"))


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
