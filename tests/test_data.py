"""Splits: disjoint, exact sizes, stratified, seeded, cleaned; packaged tasks load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from essential_sparsity.catalog import sources
from essential_sparsity.catalog.sources import TaskData
from essential_sparsity.data import splitting

SIZES = {"train_size": 30, "validation_size": 12, "test_size": 20, "min_chars": 3}


def task_of(counts: list[int], prefix: str = "example", fixed_test=None) -> TaskData:
    labels = np.repeat(np.arange(len(counts)), counts)
    frame = pd.DataFrame({"text": [f"{prefix} number {i}" for i in range(len(labels))],
                          "text_pair": "", "label": labels})
    return TaskData(frame, [f"class{c}" for c in range(len(counts))], fixed_test)


def keys(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame["text"], frame["text_pair"], strict=True))


def class_counts(frame: pd.DataFrame, n_classes: int) -> np.ndarray:
    return frame["label"].value_counts().reindex(range(n_classes), fill_value=0).to_numpy()


def test_splits_are_disjoint_with_exact_sizes():
    splits = splitting.make_splits(task_of([40, 25, 15]), SIZES, seed=0)
    assert len(splits["train"]) == 30 and len(splits["validation"]) == 12
    assert len(splits["test"]) == 20
    sets = [keys(splits[s]) for s in splitting.SPLITS]
    assert sum(len(s) for s in sets) == len(set().union(*sets))
    assert all(list(f.columns) == ["text", "text_pair", "label"] for f in splits.values())


@settings(max_examples=50, deadline=None)
@given(counts=st.lists(st.integers(1, 40), min_size=2, max_size=4),
       fractions=st.tuples(st.floats(0.05, 0.45), st.floats(0.0, 0.3), st.floats(0.05, 1.0)),
       seed=st.integers(0, 2**16))
def test_splits_are_stratified_and_exact(counts, fractions, seed):
    total = sum(counts)
    n_train = max(1, int(fractions[0] * total))
    n_val = int(fractions[1] * total)
    n_test = max(1, int(fractions[2] * total))
    sizes = {"train_size": n_train, "validation_size": n_val, "test_size": n_test, "min_chars": 3}
    if total - n_train - n_val < 1:
        with pytest.raises(ValueError):
            splitting.make_splits(task_of(counts), sizes, seed)
        return
    splits = splitting.make_splits(task_of(counts), sizes, seed)
    assert len(splits["train"]) == n_train and len(splits["validation"]) == n_val
    assert len(splits["test"]) == min(n_test, total - n_train - n_val)
    sets = [keys(splits[s]) for s in splitting.SPLITS]
    assert sum(len(s) for s in sets) == len(set().union(*sets))
    # Each split is drawn (test, then validation, then train) in proportion to the examples still
    # available at that point, to within one example per class. Relative to the whole pool that
    # drifts a little for the later splits (sequential rounding), but stays below 3 examples.
    available = np.array(counts)
    for split in splitting.SPLITS[::-1]:
        got = class_counts(splits[split], len(counts))
        share = available / available.sum()
        assert np.abs(got - share * len(splits[split])).max() < 1 + 1e-9, split
        assert np.abs(got - np.array(counts) / total * len(splits[split])).max() < 3, split
        available = available - got

def test_every_class_share_within_one_example_on_a_balanced_grid():
    splits = splitting.make_splits(task_of([50, 30, 20]), {**SIZES, "test_size": 30}, seed=3)
    share = np.array([50, 30, 20]) / 100
    for split, frame in splits.items():
        dev = np.abs(class_counts(frame, 3) - share * len(frame))
        assert dev.max() <= 1, split


def test_same_seed_same_splits_other_seed_other_splits():
    task = task_of([40, 25, 15])
    first = splitting.make_splits(task, SIZES, seed=7)
    again = splitting.make_splits(task, SIZES, seed=7)
    other = splitting.make_splits(task, SIZES, seed=8)
    for split in splitting.SPLITS:
        pd.testing.assert_frame_equal(first[split], again[split])
    assert keys(first["train"]) != keys(other["train"])
    assert keys(first["test"]) != keys(other["test"])


def test_duplicates_and_short_texts_are_removed():
    frame = pd.DataFrame({
        "text": ["same text", " same text ", "same text", "ok", "  ", "x", "other text",
                 "pair text", "pair text"] + [f"filler {i}" for i in range(30)],
        "text_pair": ["", "", "", "", "", "", "", "a", "b"] + [""] * 30,
        "label": [0, 0, 1, 1, 0, 1, 0, 1, 1] + [0, 1] * 15,
    })
    cleaned = splitting.clean(frame, min_chars=3)
    assert "ok" not in set(cleaned["text"]) and "x" not in set(cleaned["text"])
    assert "" not in set(cleaned["text"])
    assert (cleaned["text"] == "same text").sum() == 1  # stripped copies are duplicates too
    assert (cleaned["text"] == "pair text").sum() == 2  # a different pair is a different example
    assert len(cleaned) == 1 + 1 + 2 + 30
    splits = splitting.make_splits(TaskData(frame, ["a", "b"]),
                              {"train_size": 10, "validation_size": 4, "test_size": 100,
                               "min_chars": 3}, seed=0)
    texts = pd.concat(splits.values())
    assert len(texts) == len(cleaned)
    assert not texts.duplicated(subset=["text", "text_pair"]).any()
    assert (texts["text"].str.len() >= 3).all()


def test_fixed_test_set_is_kept_as_test():
    fixed = task_of([6, 6], prefix="official").examples
    task = task_of([30, 20], fixed_test=fixed)
    splits = splitting.make_splits(task, {**SIZES, "train_size": 20, "test_size": 100}, seed=0)
    assert keys(splits["test"]) == keys(fixed)
    assert len(splits["train"]) == 20 and len(splits["validation"]) == 12
    assert not keys(splits["train"]) & keys(fixed)


def test_fixed_test_set_capped_at_test_size():
    fixed = task_of([10, 10], prefix="official").examples
    splits = splitting.make_splits(task_of([30, 20], fixed_test=fixed),
                                   {**SIZES, "test_size": 8}, 0)
    assert len(splits["test"]) == 8 and keys(splits["test"]) <= keys(fixed)
    assert class_counts(splits["test"], 2).tolist() == [4, 4]


def test_train_size_null_takes_the_rest():
    splits = splitting.make_splits(task_of([30, 20]), {**SIZES, "train_size": None}, seed=0)
    assert len(splits["train"]) == 50 - 12 - 20


@pytest.mark.parametrize("fixed", [False, True])
def test_too_small_pool_raises_a_clear_error(fixed):
    fixed_test = task_of([5, 5], prefix="official").examples if fixed else None
    task = task_of([10, 10], fixed_test=fixed_test)
    with pytest.raises(ValueError, match=r"tiny: 20 usable examples.*train_size \(30\)"):
        splitting.make_splits(task, SIZES, seed=0, name="tiny")


def test_pool_filled_by_train_and_validation_leaves_no_test_set():
    with pytest.raises(ValueError, match="a test set"):
        splitting.make_splits(task_of([21, 21]), SIZES, seed=0)


def test_write_and_read_splits_round_trip(tmp_path):
    splits = splitting.make_splits(task_of([40, 25, 15]), SIZES, seed=0)
    splitting.write_splits(tmp_path, splits, ["a", "b", "c"], {"seed": 0})
    for split in splitting.SPLITS:
        back = splitting.read_split(tmp_path, split)
        pd.testing.assert_frame_equal(back[["text", "text_pair", "label"]], splits[split],
                                      check_dtype=False)
    assert splitting.label_names(tmp_path) == ["a", "b", "c"]


@pytest.mark.parametrize(("task", "n_labels"), [("bbc-news", 5), ("tweet-sentiment", 3)])
def test_packaged_tasks_load(task, n_labels):
    source = sources.load_task(task)
    assert len(source.label_names) == n_labels
    assert set(source.examples["label"]) == set(range(n_labels))
    assert {"text", "text_pair", "label"} <= set(source.examples.columns)
    assert len(source.examples) > 1000
