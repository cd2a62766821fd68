"""Pruning masks: one-shot magnitude pruning (OMP), mask files and their sparsity reports.

A mask is a dict of bool tensors (True = kept) keyed by encoder parameter names. OMP ranks every
in-scope weight by |w| once, breaking ties by position (matrix order, then row-major index), and
removes the round(s x N) lowest-ranked weights. Because every sparsity cuts the same ranking,
masks of one model are nested: a sparser mask lies inside every denser one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from .io import ArtefactError, read_metadata, read_tensors, write_json, write_tensors

METHODS = ("omp-global", "omp-layerwise")


def n_pruned(sparsity: float, total: int) -> int:
    """round(sparsity x total) with halves rounded up (never banker's rounding)."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity {sparsity} is outside [0, 1)")
    return math.floor(sparsity * total + 0.5)


def magnitude_ranks(flat: torch.Tensor) -> torch.Tensor:
    """Rank of every entry by |w| (0 = smallest), ties broken by position."""
    order = torch.argsort(flat.abs(), stable=True)
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(flat.numel(), device=flat.device)
    return ranks


def _split(flat: torch.Tensor, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    sizes = [w.numel() for w in weights.values()]
    return {name: part.view(w.shape) for (name, w), part in
            zip(weights.items(), torch.split(flat, sizes), strict=True)}


def omp_global(weights: dict[str, torch.Tensor],
               sparsities: list[float]) -> dict[float, dict[str, torch.Tensor]]:
    """One threshold over the whole scope: exactly round(s x N) weights removed for each s."""
    with torch.no_grad():
        flat = torch.cat([w.detach().reshape(-1).float() for w in weights.values()])
        ranks = magnitude_ranks(flat)
        return {s: _split(ranks >= n_pruned(s, flat.numel()), weights) for s in sparsities}


def omp_layerwise(weights: dict[str, torch.Tensor],
                  sparsities: list[float]) -> dict[float, dict[str, torch.Tensor]]:
    """Each matrix pruned to the same sparsity: round(s x n) of its own n weights removed."""
    with torch.no_grad():
        ranks = {name: magnitude_ranks(w.detach().reshape(-1).float()).view(w.shape)
                 for name, w in weights.items()}
        return {s: {name: r >= n_pruned(s, r.numel()) for name, r in ranks.items()}
                for s in sparsities}


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
