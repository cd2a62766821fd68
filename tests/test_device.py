"""Where jobs compute: `resources.device` picks the job's GPU or the CPU, and asking for a GPU that
the job was not given fails in one line. The GPU checks run only where a GPU is visible (CI has
none)."""

from __future__ import annotations

import os

import pytest
import torch
from test_vision import digits, tiny_settings

from essential_sparsity.training import device, finetune, vision_pretrain

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


@pytest.fixture
def fresh_precision(monkeypatch):
    """Each test decides afresh: the choice is cached and remembered per process."""
    device.precision.cache_clear()
    monkeypatch.setattr(device, "_CHOSEN", set())
    yield
    device.precision.cache_clear()


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_only_where_the_cpu_has_it(monkeypatch, fresh_precision, native):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native)
    assert device.native_bf16(torch.device("cpu")) is native
    assert device.precision("auto", "cpu") == ("bf16" if native else "fp32")
    layer = torch.nn.Linear(4, 4)
    with finetune.autocast(layer, "auto"):
        assert layer(torch.ones(1, 4)).dtype == (torch.bfloat16 if native else torch.float32)


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_asks_the_gpu(monkeypatch, fresh_precision, native):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: native)
    assert device.precision("auto", "cuda") == ("bf16" if native else "fp32")


def test_bf16_and_fp32_are_forced_whatever_the_device(monkeypatch, fresh_precision, capsys):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    assert device.precision("bf16", "cpu") == "bf16"
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert device.precision("fp32", "cpu") == "fp32"
    assert device.precision("auto", "cpu") == "bf16"
    assert device.chosen_precisions() == ["bf16", "fp32"]
    log = capsys.readouterr().err.splitlines()
    assert log == ["precision bf16: forced by params.yaml", "precision fp32: forced by params.yaml",
                   "precision auto -> bf16: the cpu computes bf16 natively"]
