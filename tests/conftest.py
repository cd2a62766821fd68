"""Shared fixtures: tiny models built from configs, the project's params, and the smoke builds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

# Tests never reach a hub: everything is packaged or made here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def tiny_bert_config(**overrides):
    from transformers import BertConfig

    settings = dict(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=32, max_position_embeddings=32, num_labels=3)
    return BertConfig(**{**settings, **overrides})


@pytest.fixture
def tiny_bert():
    """A 2-layer BERT classifier with random weights (seeded): fast enough for any test."""
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    return BertForSequenceClassification(tiny_bert_config())


@pytest.fixture
def params():
    from essential_sparsity.config.params import load_params

    return load_params(ROOT / "params.yaml", "smoke")


@pytest.fixture(scope="session")
def smoke_builds(tmp_path_factory) -> dict:
    """The smoke profile built twice, side by side (several minutes on 2 cores): by the README's
    `make figures`, killed while a fine-tuning job ran and started again, and through the Slurm
    profile without a break. The repositories, and the killed job's run."""
    from smoke import finished, killed_and_resumed_build, smoke_repo, start_slurm_build

    slurm = smoke_repo(tmp_path_factory.mktemp("slurm") / "repo")
    through_slurm = start_slurm_build(slurm)
    try:
        repo = smoke_repo(tmp_path_factory.mktemp("built") / "repo")
        killed = killed_and_resumed_build(repo)
    except BaseException:
        through_slurm.terminate()  # Snakemake cancels its Slurm jobs
        through_slurm.wait()
        raise
    finished(through_slurm, slurm)
    return {"repo": repo, "killed": killed, "slurm": slurm}


@pytest.fixture(scope="session")
def built(smoke_builds) -> Path:
    return smoke_builds["repo"]
