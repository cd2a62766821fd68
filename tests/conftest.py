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
    from essential_sparsity.params import load_params

    return load_params(ROOT / "params.yaml", "smoke")


def needs_the_smoke_builds(item: pytest.Item) -> bool:
    return "smoke_builds" in item.fixturenames


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests of the smoke builds run last, in their order, so that the build through Slurm,
    started with the session, runs beside every other test."""
    items.sort(key=needs_the_smoke_builds)


@pytest.fixture(scope="session", autouse=True)
def slurm_build(request, tmp_path_factory):
    """The smoke profile through the Slurm profile, started with the session when a test needs
    it. Its jobs spend much of their life waiting on the scheduler, and the other tests fill
    that time (before this, the two smoke builds left both cores idle for minutes)."""
    if not any(map(needs_the_smoke_builds, request.session.items)):
        yield None
        return
    from smoke import smoke_repo, start_slurm_build

    repo = smoke_repo(tmp_path_factory.mktemp("slurm") / "repo")
    build = start_slurm_build(repo)
    yield repo, build
    if build.poll() is None:
        build.terminate()  # Snakemake cancels its Slurm jobs
        build.wait()


@pytest.fixture(scope="session")
def smoke_builds(slurm_build, tmp_path_factory) -> dict:
    """The smoke profile built twice: through Slurm without a break (started with the session),
    and by the README's `make figures`, killed while a fine-tuning job ran and started again.
    The repositories, and the killed job's run."""
    from smoke import finished, killed_and_resumed_build, smoke_repo

    slurm, through_slurm = slurm_build
    repo = smoke_repo(tmp_path_factory.mktemp("built") / "repo")
    killed = killed_and_resumed_build(repo)
    finished(through_slurm, slurm)
    return {"repo": repo, "killed": killed, "slurm": slurm}


@pytest.fixture(scope="session")
def built(smoke_builds) -> Path:
    return smoke_builds["repo"]
