"""Shared helpers for the benchmark scripts: timing medians, peak memory in a fresh process,
and model-shaped random weights. Benchmarks print numbers; they are never timed tests."""

from __future__ import annotations

import gc
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

# (name, out_features, in_features) of one transformer block's in-scope matrices
BLOCKS = {
    "bert-base": (12, [("query", 768, 768), ("key", 768, 768), ("value", 768, 768),
                       ("attention_output", 768, 768), ("ffn_in", 3072, 768),
                       ("ffn_out", 768, 3072)]),
    # two of a 7B LLaMA-style model's 32 blocks: enough to see memory scale, small enough for here
    "7b-2-blocks": (2, [("query", 4096, 4096), ("key", 4096, 4096), ("value", 4096, 4096),
                        ("attention_output", 4096, 4096), ("gate", 11008, 4096),
                        ("ffn_in", 11008, 4096), ("ffn_out", 4096, 11008)]),
}


def shaped_weights(shape: str, dtype: torch.dtype = torch.float32, seed: int = 0,
                   distinct: bool = True) -> dict[str, torch.Tensor]:
    """Random weights in a model's shapes. With `distinct`, every magnitude is a different float
    (consecutive float32 bit patterns, shuffled), so masks are unambiguous and comparable."""
    layers, matrices = BLOCKS[shape]
    sizes = [(f"layer.{i}.{name}", (out, inp))
             for i in range(layers) for name, out, inp in matrices]
    total = sum(o * i for _, (o, i) in sizes)
    generator = torch.Generator().manual_seed(seed)
    if distinct:
        base = torch.tensor(1e-3, dtype=torch.float32).view(torch.int32)
        bits = base + torch.randperm(total, generator=generator, dtype=torch.int32)
        flat = bits.view(torch.float32)
        flat = flat * (torch.randint(0, 2, (total,), generator=generator) * 2 - 1)
    else:
        flat = torch.randn(total, generator=generator) * 0.02
    flat = flat.to(dtype)
    parts = torch.split(flat, [o * i for _, (o, i) in sizes])
    return {name: p.view(shape_).clone() for (name, shape_), p in zip(sizes, parts, strict=True)}


def median_seconds(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def _proc_status_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return None


def peak_rss_bytes() -> int:
    """High-water mark of resident memory: VmHWM (which reset_peak_rss lowers), else ru_maxrss."""
    peak = _proc_status_bytes("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> int:
    """Lower the high-water mark to the current resident memory and return that, so the next
    peak_rss_bytes() counts only what comes after (not, say, generating the weights, whose
    temporaries are several times the weights). Linux >= 4.0; elsewhere the old peak stays and
    the extra memory measured after it can only come out low."""
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return peak_rss_bytes()
    current = _proc_status_bytes("VmRSS")
    return current if current is not None else peak_rss_bytes()


def in_fresh_process(module: str, *args: str) -> dict:
    """Run `python -m module args` and parse the JSON it prints last: peak memory needs a process
    whose high-water mark nothing else has raised."""
    result = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])
