"""Extractive question answering (SQuAD v1.1, Table 1's F1): span labels, span decoding, scores.

A question and its context are encoded as one pair, question first, and only the context is
truncated to `max_length` (no sliding window: a context longer than that loses its tail, and an
answer in the lost part cannot be found; the question itself must fit). The model (a
span-prediction head over the pruned encoder or decoder) scores every token as the answer's
start and end; the best span inside the context is mapped back to the context's characters
through the tokenizer's offsets. Scores are those of the official SQuAD v1.1 evaluation script:
answers normalised (lower case, no punctuation, no articles, single spaces), token-overlap F1 and
exact match, each the best over the gold answers, averaged in percent.
"""

from __future__ import annotations

import re
import string
from collections import Counter

import numpy as np
import pandas as pd
import torch

from .device import to_device
from .finetune import autocast, batches, rows

# Longest answer considered when decoding, in tokens: the limit of BERT's run_squad.py and
# transformers' run_qa.py (SQuAD v1.1's answers are a few words).
MAX_ANSWER_TOKENS = 30
NO_ANSWER = (0, 0)  # start and end label of an answer cut off by truncation: the first token
OUTSIDE = -1  # character offset of a token that is not part of the context
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """The official script's normalisation: lower case, punctuation and articles removed,
    whitespace collapsed."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def f1_score(prediction: str, gold: str) -> float:
    """Token-overlap F1 of two normalised answers (0 when they share no token)."""
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def squad_per_example(predictions: list[str], golds: list[list[str]]) -> dict[str, list[float]]:
    """Each example's F1 and exact match (0 to 1), each the best over its gold answers."""
    return {"f1": [max(f1_score(p, g) for g in gs) for p, gs in zip(predictions, golds,
                                                                      strict=True)],
            "exact_match": [max(exact_match(p, g) for g in gs)
                            for p, gs in zip(predictions, golds, strict=True)]}


def squad_scores(per_example: dict[str, list[float]]) -> dict[str, float]:
    """F1 and exact match in percent over the examples (`squad_per_example`)."""
    return {name: 100.0 * float(np.mean(values)) for name, values in per_example.items()}


def answer_tokens(offsets: np.ndarray, context: np.ndarray, start: int,
                  end: int) -> tuple[int, int]:
    """First and last token of the answer at characters [start, end) of the context: the last
    context token starting at or before `start`, the first ending at or after `end`;
    NO_ANSWER when truncation cut the answer off."""
    tokens = np.flatnonzero(context)
    if not len(tokens) or offsets[tokens[0], 0] > start or offsets[tokens[-1], 1] < end:
        return NO_ANSWER
    first = tokens[np.searchsorted(offsets[tokens, 0], start, side="right") - 1]
    last = tokens[np.searchsorted(offsets[tokens, 1], end, side="left")]
    return int(first), int(last)


def encode(tokenizer, frame: pd.DataFrame, max_length: int) -> dict[str, torch.Tensor]:
    """Token ids of (question, context) pairs, the first gold answer's start and end tokens
    (the training labels), and each token's character span in the context (OUTSIDE for
    question, special and padding tokens) for decoding."""
    tokenizer.padding_side = "right"  # batches() trims trailing padding
    batch = tokenizer(frame["text"].tolist(), frame["text_pair"].tolist(),
                      truncation="only_second", max_length=max_length, padding="max_length",
                      return_offsets_mapping=True, return_tensors="np")
    offsets = batch.pop("offset_mapping")
    context = np.array([[s == 1 for s in batch.sequence_ids(i)] for i in range(len(frame))])
    labels = [answer_tokens(offsets[i], context[i], starts[0], starts[0] + len(texts[0]))
              for i, (texts, starts) in enumerate(zip(frame["answer_texts"],
                                                      frame["answer_starts"], strict=True))]
    spans = np.where(context[..., None], offsets, OUTSIDE).astype(np.int32)  # half of int64
    encoded = {k: torch.from_numpy(np.asarray(v, dtype=np.int64)) for k, v in batch.items()}
    positions = torch.tensor(labels, dtype=torch.long).reshape(-1, 2)
    return {**encoded, "start_positions": positions[:, 0], "end_positions": positions[:, 1],
            "char_start": torch.from_numpy(np.ascontiguousarray(spans[..., 0])),
            "char_end": torch.from_numpy(np.ascontiguousarray(spans[..., 1]))}


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A stored batch without the character spans, which only decoding reads."""
    return {k: v for k, v in batch.items() if k not in ("char_start", "char_end")}


def best_spans(start_logits: torch.Tensor, end_logits: torch.Tensor, in_context: torch.Tensor,
               max_tokens: int = MAX_ANSWER_TOKENS) -> tuple[torch.Tensor, torch.Tensor]:
    """(start, end) token of the highest-scoring span per row: start <= end < start +
    max_tokens, both inside the context."""
    length = start_logits.shape[1]
    scores = start_logits[:, :, None] + end_logits[:, None, :]
    offset = torch.arange(length)[None, :] - torch.arange(length)[:, None]  # end - start
    valid = (offset >= 0) & (offset < max_tokens)
    valid = valid & in_context[:, :, None] & in_context[:, None, :]
    best = scores.masked_fill(~valid, float("-inf")).flatten(1).argmax(1)
    return best // length, best % length


def predictions(batch: dict[str, torch.Tensor], start_logits: torch.Tensor,
                end_logits: torch.Tensor, contexts: list[str]) -> list[str]:
    """The answer text of each row: its best span's characters of the context ("" when no
    context token survived truncation)."""
    start, end = best_spans(start_logits.float(), end_logits.float(),
                            batch["char_start"] != OUTSIDE)
    rows = torch.arange(len(start))
    first, last = batch["char_start"][rows, start], batch["char_end"][rows, end]
    return [context[a:b] if a != OUTSIDE else ""
            for context, a, b in zip(contexts, first.tolist(), last.tolist(), strict=True)]


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: dict[str, torch.Tensor], frame: pd.DataFrame,
             batch_size: int, precision: str = "fp32") -> dict:
    """SQuAD F1 and exact match in percent of the decoded answers against every gold answer of
    `frame` (the split `data` encodes, in the same order), the mean span loss, and each
    question's F1 and exact match (`per_example`; its score is the F1)."""
    model.eval()
    device = next(model.parameters()).device
    answers, loss_sum = [], 0.0
    contexts = frame["text_pair"].tolist()
    for batch in batches(data, batch_size, torch.arange(len(frame))):
        with autocast(model, precision):
            out = model(**model_inputs(to_device(batch, device)))
        done = len(answers)
        size = rows(batch)
        answers += predictions(batch, out.start_logits.cpu(), out.end_logits.cpu(),
                               contexts[done:done + size])
        loss_sum += float(out.loss) * size
    n = len(frame)
    per_example = squad_per_example(answers, frame["answer_texts"].tolist())
    points = {name: [100.0 * v for v in values] for name, values in per_example.items()}
    return {**squad_scores(per_example), "loss": loss_sum / n, "examples": n,
            "per_example": {**points, "score": points["f1"]}}
