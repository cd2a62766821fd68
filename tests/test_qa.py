"""SQuAD v1.1 (Table 1's F1): the official script's scores, and span labels and decoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from essential_sparsity import qa

# --- the official scores, checked by hand --------------------------------------------------------

@pytest.mark.parametrize(("text", "normal"), [
    ("The Denver Broncos!", "denver broncos"),
    ("  Super   Bowl 50. ", "super bowl 50"),
    ("U.S.", "us"),
    ("Theodore and an apple", "theodore and apple"),   # articles only as whole words
    ("a an the", ""),
])
def test_normalize_answer_is_the_official_scripts(text, normal):
    assert qa.normalize_answer(text) == normal


@pytest.mark.parametrize(("prediction", "gold", "f1", "em"), [
    ("the Denver Broncos", "Denver Broncos", 1.0, 1.0),
    ("Broncos won", "Denver Broncos", 0.5, 0.0),          # 1 shared of 2 and 2: P = R = 1/2
    ("Denver Broncos team", "Broncos", 0.5, 0.0),         # P = 1/3, R = 1: 2PR/(P+R) = 1/2
    ("Denver Broncos team", "Denver Broncos", 0.8, 0.0),  # P = 2/3, R = 1: 0.8
    ("cat cat cat", "the cat", 0.5, 0.0),                 # a gold token is matched once
    ("Carolina Panthers.", "carolina panthers", 1.0, 1.0),
    ("", "Denver Broncos", 0.0, 0.0),
    ("Theodore", "odore", 0.0, 0.0),
])
def test_f1_and_exact_match_of_one_pair(prediction, gold, f1, em):
    assert qa.f1_score(prediction, gold) == pytest.approx(f1)
    assert qa.exact_match(prediction, gold) == em


def test_squad_scores_take_the_best_gold_and_average_in_percent():
    predictions = ["Denver Broncos team", "Broncos won", "the Carolina Panthers."]
    golds = [["Broncos", "Denver Broncos"], ["Denver Broncos"], ["Carolina Panthers", "Panthers"]]
    scores = qa.squad_scores(predictions, golds)
    assert scores["f1"] == pytest.approx(100 * (0.8 + 0.5 + 1.0) / 3)
    assert scores["exact_match"] == pytest.approx(100 / 3)


# --- span labels and decoding --------------------------------------------------------------------

def test_answer_tokens_cover_the_answer_or_say_it_was_cut_off():
    # tokens: [CLS] q [SEP] c0 c1 c2 [SEP]; the context tokens cover characters 0-4, 5-8, 9-12
    offsets = np.array([[0, 0], [0, 3], [0, 0], [0, 4], [5, 8], [9, 12], [0, 0]])
    context = np.array([False, False, False, True, True, True, False])
    assert qa.answer_tokens(offsets, context, 5, 8) == (4, 4)
    assert qa.answer_tokens(offsets, context, 6, 12) == (4, 5)   # inside a token: the whole one
    assert qa.answer_tokens(offsets, context, 0, 12) == (3, 5)
    assert qa.answer_tokens(offsets, context, 9, 15) == qa.NO_ANSWER   # truncated after 12


def test_best_spans_is_the_best_valid_pair():
    generator = torch.Generator().manual_seed(0)
    start, end = torch.randn(20, 9, generator=generator), torch.randn(20, 9, generator=generator)
    inside = torch.rand(20, 9, generator=generator) > 0.3
    inside[:, 4] = True   # every row has a context token
    first, last = qa.best_spans(start, end, inside, max_tokens=3)
    for row in range(20):
        pairs = [(start[row, i] + end[row, j], i, j) for i in range(9) for j in range(i, i + 3)
                 if j < 9 and inside[row, i] and inside[row, j]]
        _, i, j = max(pairs)
        assert (int(first[row]), int(last[row])) == (i, j)
