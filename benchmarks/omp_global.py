"""Global OMP masks: our radix-select engine against torch.nn.utils.prune.global_unstructured and
a plain concatenate-and-kthvalue, on bert-base-shaped weights (85M in scope, float32) and on two
7B-shaped blocks in bfloat16 (memory). Also: a whole nested sparsity grid at once vs one mask.

    python -m benchmarks.omp_global            # prints a markdown report
"""

from __future__ import annotations

import argparse
import json

import torch
from torch.nn.utils import prune

from benchmarks.common import (
    in_fresh_process,
    median_seconds,
    peak_rss_bytes,
    reset_peak_rss,
    shaped_weights,
)
from essential_sparsity.pruning import masks

SPARSITY = 0.5
GRID = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def engine(weights: dict[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    return masks.omp_global(weights, [sparsity])[sparsity]


def kthvalue(weights: dict[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    flat = torch.cat([w.reshape(-1).abs().float() for w in weights.values()])
    threshold = flat.kthvalue(masks.n_pruned(sparsity, flat.numel())).values
    return {name: w.abs().float() > threshold for name, w in weights.items()}


def torch_global_unstructured(weights: dict[str, torch.Tensor],
                              sparsity: float) -> dict[str, torch.Tensor]:
    modules = {}
    for name, w in weights.items():
        module = torch.nn.Linear(w.shape[1], w.shape[0], bias=False, device="meta")
        module.weight = torch.nn.Parameter(w, requires_grad=False)
        modules[name] = module
    total = sum(w.numel() for w in weights.values())
    prune.global_unstructured([(m, "weight") for m in modules.values()],
                              pruning_method=prune.L1Unstructured,
                              amount=masks.n_pruned(sparsity, total))
    return {name: m.weight_mask.bool() for name, m in modules.items()}


METHODS = {"engine": engine, "kthvalue": kthvalue, "torch-prune": torch_global_unstructured}


def _peak(method: str, shape: str, dtype: str) -> dict:
    """In a fresh process: memory beyond the weights themselves while one mask is computed."""
    weights = shaped_weights(shape, getattr(torch, dtype))
    weight_bytes = sum(w.numel() * w.element_size() for w in weights.values())
    baseline = reset_peak_rss()
    METHODS[method](weights, SPARSITY)
    return {"extra_bytes": peak_rss_bytes() - baseline, "weight_bytes": weight_bytes}


def compare(shape: str, dtype: torch.dtype, methods: list[str], repeats: int) -> list[dict]:
    weights = shaped_weights(shape, dtype)
    results = {name: METHODS[name](weights, SPARSITY) for name in methods}
    rows = []
    for name in methods:
        seconds, _ = median_seconds(lambda n=name: METHODS[n](weights, SPARSITY), repeats)
        peak = in_fresh_process("benchmarks.omp_global", "--peak", name, "--shape", shape,
                                "--dtype", str(dtype).removeprefix("torch."))
        same = all(torch.equal(results[name][k], results[methods[0]][k]) for k in weights)
        rows.append({"shape": shape, "dtype": str(dtype).removeprefix("torch."), "method": name,
                     "seconds": seconds, "extra_memory_x_weights":
                     peak["extra_bytes"] / peak["weight_bytes"],
                     "weights_gb": peak["weight_bytes"] / 1e9, "mask_equal_to_engine": same})
    return rows


def grid(shape: str, repeats: int) -> dict:
    weights = shaped_weights(shape)
    one, _ = median_seconds(lambda: masks.omp_global(weights, [SPARSITY]), repeats)
    together, _ = median_seconds(lambda: masks.omp_global(weights, GRID), repeats)
    apart, _ = median_seconds(lambda: [masks.omp_global(weights, [s]) for s in GRID], 1)
    return {"shape": shape, "grid": len(GRID), "one_mask_s": one, "grid_at_once_s": together,
            "grid_one_at_a_time_s": apart, "grid_over_one": together / one}


def report(repeats: int) -> str:
    rows = compare("bert-base", torch.float32, ["engine", "kthvalue", "torch-prune"], repeats)
    rows += compare("7b-2-blocks", torch.bfloat16, ["engine", "kthvalue"], max(1, repeats - 1))
    base = {r["shape"]: r["seconds"] for r in rows if r["method"] == "engine"}
    lines = ["## Global OMP mask at 50% sparsity", "",
             f"Median of {repeats} runs on this machine ({torch.get_num_threads()} threads); extra "
             "memory is the peak resident memory beyond the weights, in a fresh process, as a "
             "multiple of the weights' bytes.", "",
             "| weights | dtype | method | seconds | x engine time | extra memory / weights "
             "| same mask as engine |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['shape']} ({r['weights_gb']:.2f} GB) | {r['dtype']} | {r['method']} "
                     f"| {r['seconds']:.2f} | {r['seconds'] / base[r['shape']]:.1f} "
                     f"| {r['extra_memory_x_weights']:.2f} | {r['mask_equal_to_engine']} |")
    g = grid("bert-base", repeats)
    lines += ["", f"## All nested masks of a {g['grid']}-point grid (bert-base shape)", "",
              "| one mask (s) | whole grid at once (s) | grid one mask at a time (s) "
              "| grid at once / one mask |", "|---|---|---|---|",
              f"| {g['one_mask_s']:.2f} | {g['grid_at_once_s']:.2f} "
              f"| {g['grid_one_at_a_time_s']:.2f} | {g['grid_over_one']:.2f} |"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peak", choices=sorted(METHODS))
    parser.add_argument("--shape", default="bert-base")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    if args.peak:
        print(json.dumps(_peak(args.peak, args.shape, args.dtype)))
    else:
        print(report(args.repeats))


if __name__ == "__main__":
    main()
