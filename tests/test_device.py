"""Where jobs compute: `resources.device` picks the job's GPU or the CPU, and asking for a GPU that
the job was not given fails in one line. The GPU checks run only where a GPU is visible (CI has
none)."""

from __future__ import annotations

import os

import pytest
import torch
from test_vision import digits, tiny_settings

from essential_sparsity import device, vision_pretrain

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU visible")


def test_cpu_is_always_the_cpu():
    assert device.job_device("cpu") == torch.device("cpu")
    assert device.device_name(torch.device("cpu")) == "cpu"


def test_auto_takes_the_jobs_gpu_only_when_it_has_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device.job_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    assert device.job_device("auto") == torch.device("cuda")
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == device.CUBLAS_WORKSPACE


def test_cuda_without_a_gpu_names_the_fix(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(RuntimeError) as error:
        device.job_device("cuda")
    message = str(error.value)
    assert "\n" not in message
    assert "resources.device" in message and "resources.<class>.gpus" in message


@gpu
@pytest.mark.parametrize("objective", ["supervised", "dino"])
def test_vision_pre_training_on_the_gpu_follows_the_cpu_run(tmp_path, objective):
    """The views are cut on the CPU, so both runs see the same images; only floating-point
    order differs between devices."""
    settings = tiny_settings()
    runs = {where: vision_pretrain.run(objective, digits(), digits(16), 10, settings,
                                       tmp_path / where, "fp", log=lambda _: None, device=where)
            for where in ("cpu", "cuda")}
    for cpu_row, gpu_row in zip(runs["cpu"], runs["cuda"], strict=True):
        assert gpu_row["heldout_loss"] == pytest.approx(cpu_row["heldout_loss"], rel=1e-3)
