"""What a fine-tuning run does by its task's kind, in one table: the head its model gets, how its
text becomes token ids, what one batch gives the model and how a split is scored. Extractive
question answering predicts a span and is scored by SQuAD's F1 and exact match against the split's
gold answers; every other kind classifies and is scored by accuracy. The stages ask `head(task)`
instead of testing the task's kind, so a new kind is one row here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..catalog import sources
from ..catalog.tasks import QA, Task
from ..data import splitting
from . import finetune, qa


@dataclass(frozen=True)
class Head:
    load: Callable[[sources.Model, list[str], int], torch.nn.Module]
    encode: Callable[..., dict[str, torch.Tensor]]
    inputs: Callable[[dict], dict]
    score: Callable[..., dict]
    extra_scores: tuple[str, ...]  # what its runs report beside the task's metric


def _classifier(model: sources.Model, labels: list[str], seed: int):
    return sources.load_classifier(model, len(labels), seed)


def _span_predictor(model: sources.Model, labels: list[str], seed: int):
    return sources.load_span_predictor(model, seed)


def _accuracy(net: torch.nn.Module, encoded: dict, data_dir: str | Path, split: str,
              prepare: Callable[[dict], dict], **options) -> dict:
    return finetune.evaluate(net, encoded, prepare=prepare, **options)


def _squad(net: torch.nn.Module, encoded: dict, data_dir: str | Path, split: str,
           prepare: Callable[[dict], dict], **options) -> dict:
    """The decoded answers against the split's contexts and gold answers, read again."""
    return qa.evaluate(net, encoded, splitting.read_split(data_dir, split), **options)


CLASSIFY = Head(load=_classifier, encode=finetune.encode, inputs=finetune.identity,
                score=_accuracy, extra_scores=())
HEADS = {QA: Head(load=_span_predictor, encode=qa.encode, inputs=qa.model_inputs, score=_squad,
                  extra_scores=("exact_match",))}


def head(task: Task) -> Head:
    return HEADS.get(task.kind, CLASSIFY)
