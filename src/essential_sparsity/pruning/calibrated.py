"""One-shot pruners for causal LMs with no fine-tuning afterwards (the paper's Section 7): OMP,
Wanda and SparseGPT over the same scope as every other mask.

OMP needs only the weights (`masks.omp_global`, `masks.omp_layerwise`, `masks.nm_mask`). Wanda and
SparseGPT need the inputs each matrix sees, so they run as their papers do: calibration text goes
through the decoder one block at a time, each block's matrices are pruned from the statistics of
their inputs, and the block's pruned outputs are the next block's inputs.

Sparsity is exact per matrix: round(s x n) of a matrix's n weights are removed (Wanda spreads them
over the rows, SparseGPT over its column blocks). N:M keeps N of every M consecutive weights along
a row, as everywhere in this project; Wanda's and SparseGPT's `prune_n` counts the pruned ones, so
their M - N is our N.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable

import numpy as np
import torch

from . import masks
from .scope import FAMILIES, classify

CALIBRATED = ("wanda", "sparsegpt")


class _Captured(Exception):
    """Raised by the hook that records the first block's inputs, to stop the forward pass."""


def _block_inputs(model: torch.nn.Module,
                  ids: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """The hidden states entering the first decoder block, one calibration sequence at a time,
    and the keyword arguments the model passes every block (attention mask, positions, rotary
    embeddings), which are the same for every sequence of one length."""
    captured: dict = {"hidden": []}

    def hook(_module, args, kwargs):
        captured["hidden"].append(args[0] if args else kwargs.pop("hidden_states"))
        captured["kwargs"] = {k: v for k, v in kwargs.items() if k != "hidden_states"}
        raise _Captured

    handle = model.base_model.layers[0].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        for row in ids:
            with contextlib.suppress(_Captured):
                model(row.unsqueeze(0).to(model.device), use_cache=False)
    finally:
        handle.remove()
    return torch.cat(captured["hidden"]), captured["kwargs"]


def _run_block(block: torch.nn.Module, hidden: torch.Tensor, kwargs: dict) -> torch.Tensor:
    out = block(hidden, **kwargs)
    return out[0] if isinstance(out, tuple) else out


def _scoped_linears(block: torch.nn.Module, layer: int, model_type: str,
                    components: list[str]) -> dict[str, torch.nn.Linear]:
    """The block's in-scope linear layers, by their names in the base model."""
    found = {}
    for name, module in block.named_modules():
        full = f"layers.{layer}.{name}.weight"
        where = classify(full, model_type)
        if isinstance(module, torch.nn.Linear) and where and where[0] in components:
            found[full] = module
    return found


def _block_outputs(block: torch.nn.Module, hidden: torch.Tensor, kwargs: dict,
                   batch_size: int) -> torch.Tensor:
    """The block applied to the calibration sequences, a batch at a time (bounds the memory of
    the activations; the keyword arguments were captured for one sequence and broadcast)."""
    return torch.cat([_run_block(block, hidden[i:i + batch_size], kwargs)
                      for i in range(0, hidden.shape[0], batch_size)])


def _input_statistics(block, hidden, kwargs, linears, method,
                      batch_size: int) -> dict[str, torch.Tensor]:
    """Per matrix, what its pruner needs of its inputs X (tokens x inputs): Wanda the squared
    column norms sum(X**2), SparseGPT the Hessian 2 X^T X / sequences of the layer-wise problem,
    scaled by calibration sequences as the reference implementation's `add_batch` scales it (the
    scale matters where inputs are always zero: their diagonal is set to 1, not scaled, before
    the damping relative to the mean diagonal). Matrices that read the same input (query, key
    and value; gate and up) share one product."""
    stats: dict[str, torch.Tensor] = {}
    last: dict = {"input": None}

    def of_input(inputs: torch.Tensor) -> torch.Tensor:
        if last["input"] is not inputs:
            x = inputs.detach().reshape(-1, inputs.shape[-1]).float()
            last.update(input=inputs, stat=(x * x).sum(0) if method == "wanda" else x.T @ x)
        return last["stat"]

    def make_hook(name):
        def hook(_module, args, _output):
            stats[name] = stats.get(name, 0) + of_input(args[0])
        return hook

    handles = [linear.register_forward_hook(make_hook(name)) for name, linear in linears.items()]
    try:
        _block_outputs(block, hidden, kwargs, batch_size)
    finally:
        for handle in handles:
            handle.remove()
    if method == "sparsegpt":
        stats = {name: 2 * h / hidden.shape[0] for name, h in stats.items()}
    return stats


def _row_counts(rows: int, cols: int, sparsity: float) -> torch.Tensor:
    """Weights to prune in each row so the matrix loses exactly round(s x rows x cols)."""
    total = masks.n_pruned(sparsity, rows * cols)
    counts = torch.full((rows,), total // rows, dtype=torch.long)
    counts[: total % rows] += 1
    return counts


def _keep_lowest(scores: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Keep-mask pruning the counts[r] lowest scores of each row r (ties: earlier column).

    Each row's threshold comes from numpy's linear-time partition, not a sort: a stable torch
    argsort costs ten times as much on CPU and was a third of Wanda's and SparseGPT's time."""
    kth = sorted({max(int(c) - 1, 0) for c in counts.unique()})
    parted = torch.from_numpy(np.partition(scores.detach().cpu().numpy(), kth, axis=1))
    threshold = parted.gather(1, (counts - 1).clamp(min=0).unsqueeze(1)).to(scores.device)
    threshold[counts == 0] = -math.inf
    below = scores < threshold
    tied = scores == threshold
    need = counts.to(scores.device).unsqueeze(1) - below.sum(1, keepdim=True)
    return ~(below | (tied & (tied.cumsum(1) <= need)))


def wanda(weight: torch.Tensor, norms_sq: torch.Tensor, sparsity: float,
          nm: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Wanda: score |W_ij| x ||X_j||, compared within each output row; weights unchanged."""
    scores = weight.detach().abs().float() * norms_sq.sqrt().unsqueeze(0)
    if nm:
        keep = masks.keep_nm(scores, *nm)
    else:
        keep = _keep_lowest(scores, _row_counts(*weight.shape, sparsity))
    return keep, weight.detach() * keep


def _block_counts(rows: int, cols: int, block: int, sparsity: float) -> list[int]:
    """Pruned weights per column block such that the matrix total is exactly round(s x n)."""
    edges = [*range(0, cols, block), cols]
    return [masks.n_pruned(sparsity, rows * hi) - masks.n_pruned(sparsity, rows * lo)
            for lo, hi in itertools.pairwise(edges)]


def _inverse_hessian_factor(hessian: torch.Tensor, damp: float) -> torch.Tensor:
    """Upper Cholesky factor of the damped inverse Hessian: its rows give the OBS updates of the
    columns to the right of each pruned one."""
    h = hessian.clone()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1
    h += damp * torch.mean(torch.diag(h)) * torch.eye(h.shape[0], dtype=h.dtype)
    inverse = torch.cholesky_inverse(torch.linalg.cholesky(h))
    return torch.linalg.cholesky(inverse, upper=True)


def sparsegpt(weight: torch.Tensor, hessian: torch.Tensor, sparsity: float,
              nm: tuple[int, int] | None = None, block_size: int = 128,
              damp: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """SparseGPT (Frantar and Alistarh 2023): prune column block by column block, choosing by
    w^2 / [H^-1]_jj^2 and updating the remaining weights by optimal brain surgeon steps, so the
    layer's output on the calibration inputs changes as little as possible. A block is held
    transposed, so each step reads and updates contiguous memory."""
    w = weight.detach().clone().float()
    rows, cols = w.shape
    w[:, torch.diag(hessian) == 0] = 0
    hinv = _inverse_hessian_factor(hessian.float(), damp)
    keep = torch.ones_like(w, dtype=torch.bool)
    counts = _block_counts(rows, cols, block_size, sparsity)
    for index, start in enumerate(range(0, cols, block_size)):
        stop = min(start + block_size, cols)
        block = w[:, start:stop].T.contiguous()  # columns as rows
        h1 = hinv[start:stop, start:stop]
        d = torch.diag(h1)
        err = torch.zeros_like(block)
        if not nm:
            saliency = (block ** 2 / d.unsqueeze(1) ** 2).T.reshape(1, -1)
            keep[:, start:stop] = _keep_lowest(saliency, torch.tensor([counts[index]])
                                               ).view(rows, -1)
        for i in range(stop - start):
            if nm and i % nm[1] == 0:
                group = block[i:i + nm[1]] ** 2 / d[i:i + nm[1]].unsqueeze(1) ** 2
                keep[:, start + i:start + i + nm[1]] = masks.keep_nm(group.T.contiguous(), *nm)
            kept = keep[:, start + i]
            torch.mul(block[i], ~kept, out=err[i]).div_(d[i])
            block[i:].addr_(h1[i, i:], err[i], alpha=-1)
            block[i].mul_(kept)
        w[:, start:stop] = block.T
        w[:, stop:] -= err.T @ hinv[start:stop, stop:]
    return keep, (w * keep).to(weight.dtype)


def calibrated_prune(model: torch.nn.Module, ids: torch.Tensor, components: list[str],
                     method: str, sparsity: float, nm: tuple[int, int] | None = None,
                     block_size: int = 128, damp: float = 0.01, batch_size: int = 8,
                     progress: Callable[[int], None] | None = None) -> dict[str, torch.Tensor]:
    """Wanda or SparseGPT over the whole decoder, block by block on the calibration ids
    (sequences x tokens). The model's weights are replaced by the pruned ones; returns the mask."""
    if method not in CALIBRATED:
        raise ValueError(f"calibrated pruning method {method!r} is unknown "
                         f"(allowed: {', '.join(CALIBRATED)})")
    model_type = model.base_model.config.model_type
    if FAMILIES.get(model_type) != "llama":
        decoders = ", ".join(t for t, layout in FAMILIES.items() if layout == "llama")
        raise ValueError(f"{method} runs block by block on Llama-style decoders (model_type "
                         f"{decoders}), not on {model_type!r}: prune it with omp-global")
    mask: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        hidden, kwargs = _block_inputs(model, ids)
        for layer, block in enumerate(model.base_model.layers):
            linears = _scoped_linears(block, layer, model_type, components)
            stats = _input_statistics(block, hidden, kwargs, linears, method, batch_size)
            for name, linear in linears.items():
                if method == "wanda":
                    keep, pruned = wanda(linear.weight, stats[name], sparsity, nm)
                else:
                    keep, pruned = sparsegpt(linear.weight, stats[name], sparsity, nm,
                                             block_size, damp)
                linear.weight.copy_(pruned)
                mask[name] = keep
            hidden = _block_outputs(block, hidden, kwargs, batch_size)
            if progress:
                progress(layer)
    return mask
