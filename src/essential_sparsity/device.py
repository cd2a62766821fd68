"""Where a job computes: the GPU it was given, or the CPU.

A scheduler hands each job its own GPU by setting CUDA_VISIBLE_DEVICES (Slurm does for `--gpus`),
so the first visible GPU is always the job's own and no device index is ever hard-coded.
"""

from __future__ import annotations

import os

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
