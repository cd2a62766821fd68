"""Where a job computes: the GPU it was given, or the CPU.

A scheduler hands each job its own GPU by setting CUDA_VISIBLE_DEVICES (Slurm does for `--gpus`),
so the first visible GPU is always the job's own and no device index is ever hard-coded.
"""

from __future__ import annotations

import functools
import os
import sys

import torch

# cuBLAS is deterministic only with a fixed workspace; the runs ask for deterministic algorithms.
CUBLAS_WORKSPACE = ":4096:8"


def job_device(setting: str) -> torch.device:
    """`resources.device` of params.yaml: auto (the job's GPU if it has one), cpu, or cuda (a GPU
    or a clear error)."""
    if setting != "cpu" and torch.cuda.is_available():
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        return torch.device("cuda")
    if setting == "cuda":
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
        raise RuntimeError(f"resources.device = cuda, but this job sees no GPU "
                           f"(CUDA_VISIBLE_DEVICES={visible}); ask the scheduler for one "
                           f"(resources.<class>.gpus) or set resources.device: auto")
    return torch.device("cpu")


def device_name(device: torch.device) -> str:
    """What the provenance records: the GPU's model, or the CPU."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def native_bf16(device: torch.device) -> bool:
    """Whether the device computes bfloat16 in hardware: a GPU that says so, or a CPU whose
    oneDNN has bf16 kernels (AVX512-BF16 or AMX). Elsewhere bf16 autocast is emulated, about ten
    times slower than fp32 on the CPU, for no gain in what the runs measure."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


@functools.cache
def precision(setting: str, device_type: str) -> str:
    """The precision a section's `precision:` setting means on this device: `auto` is bf16 where
    the device computes it natively and fp32 elsewhere; `bf16` and `fp32` force one. The choice
    and its reason go to the log once per job, and `chosen_precisions` remembers it."""
    if setting == "auto":
        native = native_bf16(torch.device(device_type))
        chosen = "bf16" if native else "fp32"
        why = "computes bf16 natively" if native else "has no native bf16 (it would be emulated)"
        print(f"precision auto -> {chosen}: the {device_type} {why}", file=sys.stderr)
    else:
        chosen = setting
        print(f"precision {chosen}: forced by params.yaml", file=sys.stderr)
    _CHOSEN.add(chosen)
    return chosen


_CHOSEN: set[str] = set()


def chosen_precisions() -> list[str]:
    """The precisions this job computed in (for its provenance)."""
    return sorted(_CHOSEN)
